//! Repository triggers as CodeCommit has them: per-repository webhooks
//! (URL, events, branch filter) called with a JSON payload signed with
//! HMAC-SHA256, retried with exponential backoff, with a delivery history.
//!
//! Deliveries are rows in the database before any attempt, so a restart
//! resumes them. A worker task sends what is due.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::ctx::Ctx;
use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::events::RefUpdate;
use crate::identity::policy::glob;

/// Attempts per delivery before it is marked failed.
pub const MAX_ATTEMPTS: i64 = 6;
const EVENTS: &[&str] = &[
    "all",
    "createReference",
    "updateReference",
    "deleteReference",
];
pub const SECRET_CONTEXT: &[u8] = b"nubo:webhook-secret";

/// A webhook as the API shows it (never the secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// Branch names or globs; empty means every ref.
    pub branches: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// What creating a webhook takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
    /// The signing secret; generated (and returned once) when omitted.
    pub secret: Option<String>,
    /// Default `["all"]`.
    pub events: Option<Vec<String>>,
    /// Default: every ref.
    pub branches: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret, shown only here.
    pub secret: String,
}

/// One delivery with its latest outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

fn check_url(url: &str) -> Result<()> {
    let bad = || {
        Error::Unprocessable(format!(
            "webhook URL {url:?} must be an http:// or https:// URL without credentials"
        ))
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty()
        || authority.contains('@')
        || url.len() > 2000
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(())
}

/// A URL whose host is an address literal the policy refuses.
fn literal_refused(policy: &crate::netguard::Policy, url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    policy.check(ip).err().map(|e| e.0)
}

pub async fn create(ctx: &Ctx, repo_id: &str, body: NewWebhook) -> Result<CreatedWebhook> {
    check_url(&body.url).map_err(|e| e.on_field("url"))?;
    let policy = crate::netguard::Policy::new(&ctx.settings.webhook_allowed_networks);
    if let Some(why) = literal_refused(&policy, &body.url) {
        return Err(Error::invalid("url", format!("webhook URL: {why}")));
    }
    let events = body.events.unwrap_or_else(|| vec!["all".into()]);
    if events.is_empty() || events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
        return Err(Error::Unprocessable(format!(
            "events must be some of {}",
            EVENTS.join(", ")
        )));
    }
    let branches = body.branches.unwrap_or_default();
    if branches.iter().any(|b| b.is_empty() || b.len() > 200) {
        return Err(Error::invalid(
            "branches",
            "branch filters must be 1-200 characters",
        ));
    }
    let secret = match body.secret {
        Some(s) if s.len() >= 16 && s.len() <= 256 => s,
        Some(_) => {
            return Err(Error::invalid(
                "secret",
                "a webhook secret must be 16-256 characters",
            ))
        }
        None => {
            let mut b = [0u8; 24];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
            hex::encode(b)
        }
    };
    let (mut tx, key) = ctx.master.sealing(&ctx.pool).await?;
    let sealed = nubo_git::crypto::seal(&key, SECRET_CONTEXT, secret.as_bytes());
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO webhooks (id, repo_id, url, sealed_secret, events, branches, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(repo_id)
    .bind(&body.url)
    .bind(&sealed)
    .bind(serde_json::to_string(&events).unwrap_or_default())
    .bind(serde_json::to_string(&branches).unwrap_or_default())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(CreatedWebhook {
        webhook: Webhook {
            id,
            url: body.url,
            events,
            branches,
            created_at: rfc3339(now),
        },
        secret,
    })
}

type Row = (String, String, String, String, i64);

fn from_row(r: Row) -> Webhook {
    Webhook {
        id: r.0,
        url: r.1,
        events: serde_json::from_str(&r.2).unwrap_or_default(),
        branches: serde_json::from_str(&r.3).unwrap_or_default(),
        created_at: rfc3339(r.4),
    }
}

pub async fn list<'e>(
    pool: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    repo_id: &str,
) -> Result<Vec<Webhook>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, url, events, branches, created_at FROM webhooks WHERE repo_id = $1 ORDER BY created_at, id",
    )
    .bind(repo_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

pub async fn delete(pool: &SqlitePool, repo_id: &str, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND repo_id = $2")
        .bind(id)
        .bind(repo_id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("no webhook with id {id:?}")));
    }
    Ok(())
}

pub async fn deliveries(pool: &SqlitePool, repo_id: &str, id: &str) -> Result<Vec<Delivery>> {
    type D = (
        String,
        String,
        String,
        i64,
        Option<i64>,
        Option<String>,
        i64,
    );
    let rows: Vec<D> = sqlx::query_as(
        "SELECT d.id, d.event, d.state, d.attempts, d.last_status, d.last_error, d.created_at
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE w.id = $1 AND w.repo_id = $2 ORDER BY d.created_at DESC, d.id LIMIT 100",
    )
    .bind(id)
    .bind(repo_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Delivery {
            id: r.0,
            event: r.1,
            state: r.2,
            attempts: r.3,
            last_status: r.4,
            last_error: r.5,
            created_at: rfc3339(r.6),
        })
        .collect())
}

fn event_of(u: &RefUpdate) -> &'static str {
    let zero = |s: &str| s.chars().all(|c| c == '0');
    if zero(&u.old) {
        "createReference"
    } else if zero(&u.new) {
        "deleteReference"
    } else {
        "updateReference"
    }
}

fn matches(hook: &Webhook, event: &str, reference: &str) -> bool {
    let event_ok = hook.events.iter().any(|e| e == "all" || e == event);
    let branch = reference.strip_prefix("refs/heads/").unwrap_or(reference);
    let branch_ok = hook.branches.is_empty()
        || hook
            .branches
            .iter()
            .any(|b| glob(b, branch) || glob(b, reference));
    event_ok && branch_ok
}

/// Records a delivery for every webhook of the repository that wants this
/// update. The pre-receive hook calls it in the transaction that accepts
/// the push, so an acknowledged push never loses its deliveries.
pub async fn enqueue(
    conn: &mut sqlx::SqliteConnection,
    repo_id: &str,
    update: &RefUpdate,
) -> Result<usize> {
    let event = event_of(update);
    let mut n = 0;
    for hook in list(&mut *conn, repo_id).await? {
        if !matches(&hook, event, &update.ref_name) {
            continue;
        }
        let payload = serde_json::json!({
            "event": event,
            "repository": update.repo,
            "ref": update.ref_name,
            "old": update.old,
            "new": update.new,
            "pusher": update.pusher,
            "time": update.time,
        });
        let now = now_ms();
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, event, payload, attempts, state, created_at, next_attempt_at)
             VALUES ($1, $2, $3, $4, 0, 'pending', $5, $5)",
        )
        .bind(new_id())
        .bind(&hook.id)
        .bind(event)
        .bind(payload.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        n += 1;
    }
    Ok(n)
}

/// `sha256=<hex>` of HMAC-SHA256 over the body.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

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

/// Master key rotation: every webhook's secret re-sealed.
pub async fn reseal(
    conn: &mut sqlx::SqliteConnection,
    old: &nubo_git::crypto::SecretKey,
    new: &nubo_git::crypto::SecretKey,
) -> Result<()> {
    let hooks: Vec<(String, String)> = sqlx::query_as("SELECT id, sealed_secret FROM webhooks")
        .fetch_all(&mut *conn)
        .await?;
    for (id, sealed) in &hooks {
        let what = format!("webhook {id}'s secret");
        sqlx::query("UPDATE webhooks SET sealed_secret = $1 WHERE id = $2")
            .bind(crate::keys::reseal_value(
                old,
                new,
                SECRET_CONTEXT,
                sealed,
                &what,
            )?)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(events: &[&str], branches: &[&str]) -> Webhook {
        Webhook {
            id: "h".into(),
            url: "http://x".into(),
            events: events.iter().map(|s| s.to_string()).collect(),
            branches: branches.iter().map(|s| s.to_string()).collect(),
            created_at: String::new(),
        }
    }

    #[test]
    fn filters_by_event_and_branch() {
        let h = hook(&["createReference"], &["main", "release/*"]);
        assert!(matches(&h, "createReference", "refs/heads/main"));
        assert!(matches(&h, "createReference", "refs/heads/release/1.0"));
        assert!(!matches(&h, "createReference", "refs/heads/feature"));
        assert!(!matches(&h, "deleteReference", "refs/heads/main"));
        assert!(matches(
            &hook(&["all"], &[]),
            "updateReference",
            "refs/tags/v1"
        ));
    }

    #[test]
    fn signatures_are_hmac_sha256() {
        // RFC 4231 test case 2.
        let s = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            s,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn urls_are_checked() {
        check_url("https://ci.example.org/hook").unwrap();
        check_url("http://127.0.0.1:9000/x").unwrap();
        for bad in [
            "ftp://x",
            "https://user:pw@x/",
            "https:///x",
            "http://a b",
            "javascript:alert(1)",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
