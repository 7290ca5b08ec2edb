//! Repository triggers as CodeCommit has them: per-repository webhooks
//! (URL, events, branch filter) called with a JSON payload signed with
//! HMAC-SHA256, retried with exponential backoff, with a delivery history.
//!
//! Deliveries are rows in the database before any attempt, so a restart
//! resumes them. A worker task sends what is due.

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

pub use super::hookshot::spawn_worker;

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
pub(super) fn literal_refused(policy: &crate::netguard::Policy, url: &str) -> Option<String> {
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
    create_in(ctx, repo_id, None, body, EVENTS).await
}

/// A webhook of a repository or, with `pipeline_id`, a pipeline's
/// notification rule (kept with its source repository, sent by the same
/// worker), taking the events in `allowed`.
pub async fn create_in(
    ctx: &Ctx,
    repo_id: &str,
    pipeline_id: Option<&str>,
    body: NewWebhook,
    allowed: &[&str],
) -> Result<CreatedWebhook> {
    check_url(&body.url).map_err(|e| e.on_field("url"))?;
    let policy = crate::netguard::Policy::new(&ctx.settings.webhook_allowed_networks);
    if let Some(why) = literal_refused(&policy, &body.url) {
        return Err(Error::invalid("url", format!("webhook URL: {why}")));
    }
    let events = body.events.unwrap_or_else(|| vec!["all".into()]);
    if events.is_empty() || events.iter().any(|e| !allowed.contains(&e.as_str())) {
        return Err(Error::invalid(
            "events",
            format!("events must be some of {}", allowed.join(", ")),
        ));
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
        "INSERT INTO webhooks (id, repo_id, url, sealed_secret, events, branches, created_at, pipeline_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(repo_id)
    .bind(&body.url)
    .bind(&sealed)
    .bind(serde_json::to_string(&events).unwrap_or_default())
    .bind(serde_json::to_string(&branches).unwrap_or_default())
    .bind(now)
    .bind(pipeline_id)
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
        "SELECT id, url, events, branches, created_at FROM webhooks WHERE repo_id = $1 AND pipeline_id IS NULL
         ORDER BY created_at, id",
    )
    .bind(repo_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// A pipeline's notification rules.
pub async fn list_for_pipeline<'e>(
    pool: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    pipeline_id: &str,
) -> Result<Vec<Webhook>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, url, events, branches, created_at FROM webhooks WHERE pipeline_id = $1 ORDER BY created_at, id",
    )
    .bind(pipeline_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Records one delivery of `payload` to `hook_id` (sent by the worker).
pub async fn enqueue_one(
    conn: &mut sqlx::SqliteConnection,
    hook_id: &str,
    event: &str,
    payload: &serde_json::Value,
) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, webhook_id, event, payload, attempts, state, created_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, 0, 'pending', $5, $5)",
    )
    .bind(new_id())
    .bind(hook_id)
    .bind(event)
    .bind(payload.to_string())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whose webhook: a repository's own, or a pipeline's notification rule.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Repo(&'a str),
    Pipeline(&'a str),
}

impl Owner<'_> {
    fn condition(&self) -> (&'static str, &str) {
        match self {
            Owner::Repo(id) => ("w.repo_id = $2 AND w.pipeline_id IS NULL", id),
            Owner::Pipeline(id) => ("w.pipeline_id = $2", id),
        }
    }
}

pub async fn delete(pool: &SqlitePool, repo_id: &str, id: &str) -> Result<()> {
    delete_of(pool, Owner::Repo(repo_id), id).await
}

pub async fn delete_of(pool: &SqlitePool, owner: Owner<'_>, id: &str) -> Result<()> {
    let (cond, value) = owner.condition();
    let done = sqlx::query(&format!(
        "DELETE FROM webhooks WHERE id IN (SELECT w.id FROM webhooks w WHERE w.id = $1 AND {cond})"
    ))
    .bind(id)
    .bind(value)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("no webhook with id {id:?}")));
    }
    Ok(())
}

pub async fn deliveries(pool: &SqlitePool, repo_id: &str, id: &str) -> Result<Vec<Delivery>> {
    deliveries_of(pool, Owner::Repo(repo_id), id).await
}

pub async fn deliveries_of(pool: &SqlitePool, owner: Owner<'_>, id: &str) -> Result<Vec<Delivery>> {
    let (cond, value) = owner.condition();
    type D = (
        String,
        String,
        String,
        i64,
        Option<i64>,
        Option<String>,
        i64,
    );
    let rows: Vec<D> = sqlx::query_as(&format!(
        "SELECT d.id, d.event, d.state, d.attempts, d.last_status, d.last_error, d.created_at
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE w.id = $1 AND {cond} ORDER BY d.created_at DESC, d.id LIMIT 100"
    ))
    .bind(id)
    .bind(value)
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

/// The latest `n` deliveries of a webhook as pages list them: event,
/// state, attempts, and the last HTTP status or error.
pub async fn recent(
    pool: &SqlitePool,
    owner: Owner<'_>,
    id: &str,
    n: usize,
) -> Result<Vec<(String, String, i64, String)>> {
    Ok(deliveries_of(pool, owner, id)
        .await?
        .into_iter()
        .take(n)
        .map(|d| {
            let last = d
                .last_error
                .or(d.last_status.map(|s| format!("HTTP {s}")))
                .unwrap_or_default();
            (d.event, d.state, d.attempts, last)
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
        enqueue_one(&mut *conn, &hook.id, event, &payload).await?;
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
