//! The webhook sender: every due delivery (repository webhooks and
//! pipelines' notification rules alike) POSTed with its signature, the
//! outcome recorded and the next attempt scheduled with exponential
//! backoff, by a worker that runs for the life of the server.

use std::time::Duration;

use super::webhooks::{literal_refused, signature, MAX_ATTEMPTS, SECRET_CONTEXT};
use crate::ctx::Ctx;
use crate::db::now_ms;
use crate::error::Result;

/// Sends every due delivery once; returns how many were attempted.
pub async fn deliver_due(ctx: &Ctx, http: &reqwest::Client) -> Result<usize> {
    type Due = (String, String, String, i64, String, String);
    let due: Vec<Due> = sqlx::query_as(
        "SELECT d.id, d.event, d.payload, d.attempts, w.url, w.sealed_secret
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.next_attempt_at LIMIT 50",
    )
    .bind(now_ms())
    .fetch_all(&ctx.pool)
    .await?;
    let policy = crate::netguard::Policy::new(&ctx.settings.webhook_allowed_networks);
    for (id, event, payload, attempts, url, sealed) in &due {
        let secret = ctx.master.open(SECRET_CONTEXT, sealed)?;
        // Address literals never reach the resolver: checked here.
        if let Some(why) = literal_refused(&policy, url) {
            record_attempt(ctx, id, *attempts, None, Some(why)).await?;
            continue;
        }
        let result = http
            .post(url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("Nubo-Hookshot/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-nubo-event", event.as_str())
            .header("x-nubo-delivery", id.as_str())
            .header(
                "x-nubo-signature-256",
                signature(&secret, payload.as_bytes()),
            )
            .body(payload.clone())
            .send()
            .await;
        let (status, error) = match result {
            Ok(r) => (
                Some(r.status().as_u16() as i64),
                (!r.status().is_success()).then(|| format!("HTTP {}", r.status())),
            ),
            Err(e) => (
                None,
                Some(if e.is_timeout() {
                    "timed out".to_string()
                } else if let Some(why) = crate::netguard::refusal(&e) {
                    why
                } else {
                    "connection failed".to_string()
                }),
            ),
        };
        record_attempt(ctx, id, *attempts, status, error).await?;
    }
    Ok(due.len())
}

/// Records one attempt's outcome and when the next one is due.
async fn record_attempt(
    ctx: &Ctx,
    id: &str,
    attempts: i64,
    status: Option<i64>,
    error: Option<String>,
) -> Result<()> {
    let base = ctx.settings.webhook_retry_base_ms as i64;
    let tries = attempts + 1;
    let (state_name, next, finished) = match &error {
        None => ("delivered", now_ms(), Some(now_ms())),
        Some(_) if tries >= MAX_ATTEMPTS => ("failed", now_ms(), Some(now_ms())),
        Some(_) => (
            "pending",
            now_ms() + base * (1i64 << (tries - 1).min(16)),
            None,
        ),
    };
    sqlx::query(
            "UPDATE webhook_deliveries SET attempts = $1, state = $2, last_status = $3, last_error = $4,
             next_attempt_at = $5, finished_at = $6 WHERE id = $7",
        )
        .bind(tries)
        .bind(state_name)
        .bind(status)
        .bind(&error)
        .bind(next)
        .bind(finished)
        .bind(id)
        .execute(&ctx.pool)
        .await?;
    Ok(())
}

/// Runs for the life of the server: sends the deliveries that are due (the
/// pre-receive hook records them with the push), waking at once on a push.
pub fn spawn_worker(ctx: Ctx) {
    let mut events = ctx.events.subscribe();
    tokio::spawn(async move {
        // No redirects (a public URL could send the delivery to an inner
        // address), no proxy from the environment, and only addresses the
        // policy allows, checked after resolution.
        let policy = crate::netguard::Policy::new(&ctx.settings.webhook_allowed_networks);
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(policy.resolver())
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook client unavailable");
                return;
            }
        };
        loop {
            if let Err(e) = deliver_due(&ctx, &http).await {
                tracing::warn!(error = %e, "webhook delivery round failed");
            }
            // A push wakes the worker; the timer is the backstop (and the
            // pace of retries).
            let woken = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
            if let Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) = woken {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
}
