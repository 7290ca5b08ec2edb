//! Polling an external git repository: a repository can follow one URL
//! (`http`, `https` or `git`), fetched on an interval (and on demand). What
//! is new there is pushed into the repository as the user who set the
//! mirror up — through the same pre-receive hook as any push (encrypted,
//! durable, policies checked) — and published as ref updates, so the
//! pipelines and webhooks of the repository start as on a push.
//!
//! The server fetches a URL someone typed: the host is resolved here and
//! checked against `webhook_allowed_networks` (public addresses only by
//! default), and git connects to that address alone (`http.curloptResolve`
//! for HTTP, the address itself for `git://`), with no redirects, no other
//! transport (no `ext::`, no `file`), no prompt and a deadline. A URL with
//! credentials in it is refused: they would be stored and shown.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use super::{Locks, Repo};
use crate::ctx::Ctx;
use crate::db::{now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::{self, User};

/// The shortest and longest polling intervals, in seconds.
pub const MIN_INTERVAL: i64 = 10;
pub const MAX_INTERVAL: i64 = 86_400;
/// How long one fetch may take.
const FETCH_DEADLINE: Duration = Duration::from_secs(120);

/// A mirror as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Mirror {
    pub url: String,
    pub interval_seconds: i64,
    /// Whose pushes its updates are.
    pub pusher: String,
    pub last_polled_at: Option<String>,
    /// What the last poll did ("up to date", "updated 2 refs"), or why it failed.
    pub last_result: Option<String>,
    pub last_error: Option<String>,
}

/// Where to connect: the URL as git is given it, and for HTTP the
/// `host:port:address` pin.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    url: String,
    pin: Option<String>,
}

/// Checks a URL's form (no address is looked up).
pub fn check_url(url: &str) -> Result<reqwest::Url> {
    let bad = |m: &str| Error::invalid("url", m.to_string());
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https" | "git") {
        return Err(bad("a mirror URL is http://, https:// or git://"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "a URL with credentials in it is not stored: mirror a repository that can be read without them",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) || url.len() > 2000 {
        return Err(bad("a mirror URL needs a host"));
    }
    Ok(parsed)
}

/// Resolves the URL's host and keeps only an address the policy allows.
async fn target(ctx: &Ctx, url: &str) -> std::result::Result<Target, String> {
    let parsed = check_url(url).map_err(|e| e.to_string())?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    let port = parsed.port_or_known_default().unwrap_or(9418);
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let policy = crate::netguard::Policy::new(&ctx.settings.webhook_allowed_networks);
    let addresses: Vec<IpAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((bare.as_str(), port))
            .await
            .map_err(|_| format!("cannot resolve {host}"))?
            .map(|a| a.ip())
            .collect(),
    };
    let mut why = format!("{host} has no address");
    let Some(ip) = addresses.into_iter().find(|ip| match policy.check(*ip) {
        Ok(()) => true,
        Err(e) => {
            why = e.0;
            false
        }
    }) else {
        return Err(why);
    };
    let literal = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    if parsed.scheme() == "git" {
        let mut pinned = parsed.clone();
        pinned
            .set_host(Some(&literal))
            .map_err(|_| "cannot use that address".to_string())?;
        Ok(Target {
            url: pinned.to_string(),
            pin: None,
        })
    } else {
        Ok(Target {
            url: parsed.to_string(),
            pin: Some(format!("{bare}:{port}:{literal}")),
        })
    }
}

/// Sets (or replaces) the repository's mirror, polled at once.
pub async fn set(
    ctx: &Ctx,
    repo: &Repo,
    user: &User,
    url: &str,
    interval_seconds: i64,
) -> Result<Mirror> {
    let parsed = check_url(url)?;
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval_seconds) {
        return Err(Error::invalid(
            "interval_seconds",
            format!("the interval is {MIN_INTERVAL} to {MAX_INTERVAL} seconds"),
        ));
    }
    // An address literal the policy refuses is refused now.
    if let Some(Ok(ip)) = parsed.host_str().map(|h| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
    }) {
        let policy = crate::netguard::Policy::new(&ctx.settings.webhook_allowed_networks);
        policy
            .check(ip)
            .map_err(|e| Error::invalid("url", format!("mirror URL: {e}")))?;
    }
    sqlx::query(
        "INSERT INTO repo_mirrors (repo_id, url, interval_seconds, created_by, next_poll_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (repo_id) DO UPDATE SET url = excluded.url, interval_seconds = excluded.interval_seconds,
             created_by = excluded.created_by, next_poll_at = excluded.next_poll_at,
             last_result = NULL, last_error = NULL",
    )
    .bind(&repo.id)
    .bind(url)
    .bind(interval_seconds)
    .bind(&user.id)
    .bind(now_ms())
    .execute(&ctx.pool)
    .await?;
    tracing::info!(repo = %repo.name, by = %user.name, "repository mirror set");
    get(&ctx.pool, repo)
        .await?
        .ok_or_else(|| Error::Internal("the mirror vanished".into()))
}

pub async fn get(pool: &SqlitePool, repo: &Repo) -> Result<Option<Mirror>> {
    type R = (
        String,
        i64,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let row: Option<R> = sqlx::query_as(
        "SELECT m.url, m.interval_seconds, u.name, m.last_polled_at, m.last_result, m.last_error
         FROM repo_mirrors m JOIN users u ON u.id = m.created_by WHERE m.repo_id = $1",
    )
    .bind(&repo.id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| Mirror {
        url: r.0,
        interval_seconds: r.1,
        pusher: r.2,
        last_polled_at: r.3.map(rfc3339),
        last_result: r.4,
        last_error: r.5,
    }))
}

pub async fn remove(pool: &SqlitePool, repo: &Repo) -> Result<()> {
    sqlx::query("DELETE FROM repo_mirrors WHERE repo_id = $1")
        .bind(&repo.id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Runs git with the mirror's safety settings; answers its output or why not.
async fn git(dir: &Path, pin: Option<&str>, args: &[&str]) -> std::result::Result<String, String> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C").arg(dir);
    for c in [
        "protocol.allow=never",
        "protocol.http.allow=always",
        "protocol.https.allow=always",
        "protocol.git.allow=always",
        "http.followRedirects=false",
        "http.lowSpeedLimit=1000",
        "http.lowSpeedTime=30",
        "credential.helper=",
        "core.askPass=",
    ] {
        cmd.arg("-c").arg(c);
    }
    if let Some(p) = pin {
        cmd.arg("-c").arg(format!("http.curloptResolve={p}"));
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .kill_on_drop(true);
    let out = tokio::time::timeout(FETCH_DEADLINE, cmd.output())
        .await
        .map_err(|_| format!("git took longer than {} s", FETCH_DEADLINE.as_secs()))?
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(last.trim().chars().take(300).collect())
    }
}

/// Fetches the mirror's URL and pushes what is new into the repository;
/// answers what it did (or why it could not), which is also recorded.
pub async fn poll(
    ctx: &Ctx,
    locks: &Locks,
    repo: &Repo,
) -> Result<std::result::Result<String, String>> {
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT url, created_by, interval_seconds FROM repo_mirrors WHERE repo_id = $1",
    )
    .bind(&repo.id)
    .fetch_optional(&ctx.pool)
    .await?;
    let Some((url, by, interval)) = row else {
        return Err(Error::NotFound(format!("{} has no mirror", repo.name)));
    };
    let outcome = match accounts::find_by_id(&ctx.pool, &by).await? {
        None => Err("the user who set the mirror up no longer exists".to_string()),
        Some(user) => sync(ctx, locks, repo, &user, &url).await?,
    };
    let (result, error) = match &outcome {
        Ok(r) => (Some(r.clone()), None),
        Err(e) => (None, Some(e.clone())),
    };
    let now = now_ms();
    sqlx::query(
        "UPDATE repo_mirrors SET last_polled_at = $1, next_poll_at = $2, last_result = $3, last_error = $4 WHERE repo_id = $5",
    )
    .bind(now)
    .bind(now + interval * 1000)
    .bind(result)
    .bind(&error)
    .bind(&repo.id)
    .execute(&ctx.pool)
    .await?;
    if let Some(e) = &error {
        tracing::warn!(repo = %repo.name, error = %e, "mirror poll failed");
    }
    Ok(outcome)
}

async fn sync(
    ctx: &Ctx,
    locks: &Locks,
    repo: &Repo,
    user: &User,
    url: &str,
) -> Result<std::result::Result<String, String>> {
    let t = match target(ctx, url).await {
        Ok(t) => t,
        Err(why) => return Ok(Err(why)),
    };
    let tmp = tempfile::tempdir().map_err(|e| Error::Internal(e.to_string()))?;
    let bare = tmp.path().join("mirror.git");
    std::fs::create_dir(&bare).map_err(|e| Error::Internal(e.to_string()))?;
    if let Err(e) = git(&bare, None, &["init", "-q", "--bare"]).await {
        return Ok(Err(e));
    }
    let fetched = git(
        &bare,
        t.pin.as_deref(),
        &[
            "fetch",
            "-q",
            "--no-tags",
            "--",
            &t.url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ],
    )
    .await;
    if let Err(e) = fetched {
        return Ok(Err(format!("fetching failed: {e}")));
    }
    // The same cap as a push over HTTP or SSH.
    let size = dir_size(&bare);
    if size > ctx.settings.max_push_bytes {
        return Ok(Err(format!(
            "the upstream repository ({size} bytes) is larger than this server's push limit of {} bytes",
            ctx.settings.max_push_bytes
        )));
    }
    let (dir, guard) = super::working_copy(ctx, locks, repo, true).await?;
    let before = super::cached_version(&dir);
    let target_dir = dir.to_string_lossy().into_owned();
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(&bare)
        .args([
            "push",
            "--porcelain",
            "--",
            &target_dir,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ])
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true);
    for (k, v) in super::hook_env(&ctx.settings, repo, user) {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(FETCH_DEADLINE, cmd.output())
        .await
        .map_err(|_| Error::Internal("pushing the mirror's refs took too long".into()))?
        .map_err(|e| Error::Internal(e.to_string()))?;
    crate::repos::pushes::publish_since(&ctx.pool, &ctx.events, &repo.id, &repo.name, before).await;
    drop(guard);
    let text = String::from_utf8_lossy(&out.stdout);
    let updated = text
        .lines()
        .filter(|l| l.starts_with(' ') || l.starts_with('+') || l.starts_with('*'))
        .count();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let why = err
            .lines()
            .filter(|l| l.starts_with("remote:"))
            .map(|l| l.trim_start_matches("remote:").trim())
            .collect::<Vec<_>>()
            .join("; ");
        return Ok(Err(format!(
            "the repository refused the mirror's refs: {why}"
        )));
    }
    Ok(Ok(match updated {
        0 => "up to date".to_string(),
        1 => "updated 1 ref".to_string(),
        n => format!("updated {n} refs"),
    }))
}

/// The bytes of the files under `dir` (links not followed).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Polls the mirrors that are due, for the life of the server.
pub fn spawn_worker(ctx: Ctx, locks: Locks) {
    tokio::spawn(async move {
        loop {
            let due: Vec<String> = sqlx::query_scalar(
                "SELECT repo_id FROM repo_mirrors WHERE next_poll_at <= $1 ORDER BY next_poll_at LIMIT 20",
            )
            .bind(now_ms())
            .fetch_all(&ctx.pool)
            .await
            .unwrap_or_default();
            for id in due {
                let repo: Option<Repo> = super::find_by_id(&ctx.pool, &id).await.ok().flatten();
                if let Some(repo) = repo {
                    if let Err(e) = poll(&ctx, &locks, &repo).await {
                        tracing::warn!(repo = %repo.name, error = %e, "mirror poll failed");
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
}
