//! Workspaces: a directory of files, a `nubo-agent` serving it, and (for the
//! container backend) the container the agent runs in.
//!
//! Layout under `<data_dir>/workspaces/<id>/`: `files/` (the workspace root,
//! `/workspace` in containers), `home/` (the user's home: shell history,
//! `.gitconfig`), `run/agent.sock` (the agent's API socket) and `agent.log`.
//!
//! The server reaches every agent through its socket only, so agents (and
//! their terminals) outlive browser tabs and server restarts. Local agents
//! run in their own process group, detached from the server.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::agent_client::AgentClient;
use crate::config::Settings;
use crate::ctx::Ctx;
use crate::db::rfc3339;
use crate::error::{Error, Result};
use crate::identity::accounts::User;
use crate::repos;

pub mod api;
pub mod cli;
pub mod container;
pub mod isolation;
mod lifecycle;
pub mod pages;
pub mod preview;
pub mod preview_key;

pub use lifecycle::{create, delete, reap_when_done, recover, spawn_reaper, start, stop};

/// How long a workspace's git credential lives; it is renewed at half-life.
pub const CREDENTIAL_TTL_SECONDS: u64 = 3600;
pub const DEFAULT_IDLE_MINUTES: i64 = 30;

/// A workspace as users see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub owner: String,
    #[serde(skip)]
    pub owner_id: String,
    /// The repository checked out in it, if any.
    pub repo: Option<String>,
    /// The checked-out branch, when the workspace runs.
    pub branch: Option<String>,
    /// `local` or `container`.
    pub backend: String,
    /// How its code is confined: `container`, `sandbox` (the local
    /// backend's bubblewrap sandbox) or `none` (administrators only).
    pub isolation: Option<String>,
    pub image: Option<String>,
    /// `creating`, `starting`, `running`, `stopping`, `stopped` or `error`.
    pub state: String,
    /// Why it is in `error` (or why it stopped unasked).
    pub error: Option<String>,
    /// Stops after this long without a viewer or request; 0 = never.
    pub idle_timeout_seconds: i64,
    /// Whether preview URLs work for every signed-in user, not only the owner.
    pub preview_shared: bool,
    /// RFC 3339.
    pub created_at: String,
    pub started_at: Option<String>,
    pub stopped_at: Option<String>,
    #[serde(skip)]
    pub started_at_ms: Option<i64>,
    #[serde(skip)]
    pub agent_pid: Option<i64>,
    #[serde(skip)]
    pub credential_id: Option<String>,
    #[serde(skip)]
    pub credential_expires_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    owner: String,
    owner_id: String,
    repo_name: Option<String>,
    backend: String,
    image: Option<String>,
    state: String,
    error: Option<String>,
    idle_timeout_seconds: i64,
    preview_shared: bool,
    created_at: i64,
    started_at: Option<i64>,
    stopped_at: Option<i64>,
    agent_pid: Option<i64>,
    credential_id: Option<String>,
    credential_expires_at: Option<i64>,
}

const SELECT: &str = "SELECT w.id, w.name, u.name AS owner, w.owner_id, w.repo_name,
        w.backend, w.image, w.state, w.error, w.idle_timeout_seconds, w.preview_shared,
        w.created_at, w.started_at, w.stopped_at, w.agent_pid,
        w.credential_id, w.credential_expires_at
    FROM workspaces w JOIN users u ON u.id = w.owner_id";

fn from_row(r: Row) -> Workspace {
    Workspace {
        id: r.id,
        name: r.name,
        owner: r.owner,
        owner_id: r.owner_id,
        repo: r.repo_name,
        branch: None,
        backend: r.backend,
        isolation: None,
        image: r.image,
        state: r.state,
        error: r.error,
        idle_timeout_seconds: r.idle_timeout_seconds,
        preview_shared: r.preview_shared,
        created_at: rfc3339(r.created_at),
        started_at_ms: r.started_at,
        started_at: r.started_at.map(rfc3339),
        stopped_at: r.stopped_at.map(rfc3339),
        agent_pid: r.agent_pid,
        credential_id: r.credential_id,
        credential_expires_at: r.credential_expires_at,
    }
}

/// What workspace operations need: the shared context and, inside
/// `nubo serve`, the server's registry. The CLI runs without one (it has no
/// repository locks, no activity to record and serves no git).
#[derive(Clone)]
pub struct Env {
    pub ctx: Ctx,
    pub server: Option<Server>,
}

impl std::ops::Deref for Env {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}

/// The server's registry for workspaces.
#[derive(Clone)]
pub struct Server {
    /// When each running workspace was last used (for the idle stop).
    pub activity: Arc<Activity>,
    /// The repositories' working-copy locks (a checkout reads under them).
    pub locks: repos::Locks,
    /// Where a confined workspace's git socket is handed, bound and checked,
    /// to be served by the server's git transport.
    pub git: tokio::sync::mpsc::UnboundedSender<tokio::net::UnixListener>,
}

pub fn dir(settings: &Settings, id: &str) -> PathBuf {
    settings.data_dir.join("workspaces").join(id)
}

pub fn files_dir(settings: &Settings, id: &str) -> PathBuf {
    dir(settings, id).join("files")
}

pub fn agent(settings: &Settings, ws: &Workspace) -> AgentClient {
    AgentClient::new(dir(settings, &ws.id).join("run").join("agent.sock"))
}

pub async fn find(pool: &SqlitePool, id: &str) -> Result<Option<Workspace>> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE w.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(from_row))
}

/// The workspace if `user` owns it (admins may see every workspace).
pub async fn owned(pool: &SqlitePool, user: &User, id: &str) -> Result<Workspace> {
    let ws = find(pool, id).await?;
    match ws {
        Some(ws) if ws.owner_id == user.id || user.admin => Ok(ws),
        _ => Err(Error::NotFound(format!("no workspace with id {id:?}"))),
    }
}

/// The workspace for using it (terminals, files, exec): its owner only.
pub async fn usable(pool: &SqlitePool, user: &User, id: &str) -> Result<Workspace> {
    let ws = find(pool, id).await?;
    match ws {
        Some(ws) if ws.owner_id == user.id => Ok(ws),
        Some(_) if user.admin => Err(Error::Forbidden(
            "only the owner of a workspace can use it".into(),
        )),
        _ => Err(Error::NotFound(format!("no workspace with id {id:?}"))),
    }
}

pub async fn list_for(pool: &SqlitePool, user: &User) -> Result<Vec<Workspace>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE w.owner_id = $1 ORDER BY w.created_at DESC"
    ))
    .bind(&user.id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

pub async fn list_all(pool: &SqlitePool) -> Result<Vec<Workspace>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} ORDER BY w.created_at DESC"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

#[derive(Debug, Clone, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    /// 1-64 letters, digits, '.', '_' or '-'; unique per user.
    pub name: String,
    /// A repository to check out in `/workspace`.
    #[serde(default)]
    pub repo: Option<String>,
    /// `local` (default) or `container`.
    #[serde(default)]
    pub backend: Option<String>,
    /// The container image (container backend); default the Nubo workspace image.
    #[serde(default)]
    pub image: Option<String>,
    /// Stop after this many minutes without use (default 30; 0 = never).
    #[serde(default)]
    pub idle_timeout_minutes: Option<i64>,
    /// The same in seconds (wins over minutes).
    #[serde(default)]
    pub idle_timeout_seconds: Option<i64>,
    /// Start it right away (default true).
    #[serde(default)]
    pub start: Option<bool>,
}

pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::Unprocessable(format!(
            "invalid workspace name {name:?}: use 1-64 letters, digits, '.', '_' or '-', not starting with '.'"
        )))
    }
}

pub fn idle_seconds(req: &CreateWorkspace) -> Result<i64> {
    let secs = match (req.idle_timeout_seconds, req.idle_timeout_minutes) {
        (Some(s), _) => s,
        (None, Some(m)) => m.saturating_mul(60),
        (None, None) => DEFAULT_IDLE_MINUTES * 60,
    };
    if !(0..=7 * 24 * 3600).contains(&secs) {
        return Err(Error::Unprocessable(
            "the idle timeout must be between 0 (never) and 7 days".into(),
        ));
    }
    Ok(secs)
}

async fn set_state(pool: &SqlitePool, id: &str, state: &str, error: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE workspaces SET state = $1, error = $2 WHERE id = $3")
        .bind(state)
        .bind(error)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A valid workspace name from `base` (a repository's name, say) that
/// `user` has no workspace by: the characters a workspace name allows, cut
/// to fit, with `-2`, `-3`, … when the name is taken.
pub async fn free_name(pool: &SqlitePool, user: &User, base: &str) -> Result<String> {
    let mut stem: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    stem = stem.trim_start_matches('.').to_string();
    if stem.is_empty() {
        stem = "workspace".into();
    }
    let taken: std::collections::HashSet<String> = list_for(pool, user)
        .await?
        .into_iter()
        .map(|w| w.name.to_ascii_lowercase())
        .collect();
    for n in 1.. {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let mut name = stem.clone();
        name.truncate(64 - suffix.len());
        name.push_str(&suffix);
        if !taken.contains(&name.to_ascii_lowercase()) {
            return Ok(name);
        }
    }
    unreachable!("some suffix is free")
}

/// Sets how long the workspace may go unused before it is stopped.
pub async fn set_idle_timeout(pool: &SqlitePool, id: &str, seconds: i64) -> Result<()> {
    sqlx::query("UPDATE workspaces SET idle_timeout_seconds = $1 WHERE id = $2")
        .bind(seconds)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Makes the workspace's previews public (sandboxed) or owner-only.
pub async fn set_preview_shared(pool: &SqlitePool, id: &str, shared: bool) -> Result<()> {
    sqlx::query("UPDATE workspaces SET preview_shared = $1 WHERE id = $2")
        .bind(shared)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The URL git in the workspace reaches the server at.
pub fn server_url(settings: &Settings, confined: bool) -> String {
    if confined {
        return format!(
            "http://127.0.0.1:{}/",
            crate::workspaces::container::GIT_RELAY_PORT
        );
    }
    let mut addr = settings.http;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::IpAddr::from([127, 0, 0, 1]));
    }
    format!("http://{addr}/")
}

/// The running server's loopback HTTP address, as `serve` recorded it.
pub fn recorded_http(settings: &Settings) -> Option<std::net::SocketAddr> {
    let text = std::fs::read_to_string(settings.data_dir.join("server.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["http"].as_str()?.parse().ok()
}

/// The checked-out branch, read from `.git/HEAD`, which the workspace's
/// user controls: read without following links, at most 512 bytes, off the
/// async threads.
pub async fn branch(settings: &Settings, ws: &mut Workspace) {
    let files = files_dir(settings, &ws.id);
    let head = tokio::task::spawn_blocking(move || {
        crate::safe_fs::read_capped(&files, ".git/HEAD", 512).ok()
    })
    .await
    .ok()
    .flatten();
    ws.branch = head.and_then(|h| {
        String::from_utf8_lossy(&h)
            .trim()
            .strip_prefix("ref: refs/heads/")
            .filter(|b| b.chars().all(|c| !c.is_control()))
            .map(str::to_string)
    });
}

/// In-memory activity of running workspaces, for the idle stop.
#[derive(Default)]
pub struct Activity {
    map: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, usize)>>,
}

impl Activity {
    /// Something used the workspace just now.
    pub fn touch(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id.to_string())
            .or_insert((std::time::Instant::now(), 0))
            .0 = std::time::Instant::now();
    }

    /// A long-lived connection (terminal, events) opened; the workspace is in
    /// use until it closes.
    pub fn open(self: &Arc<Self>, id: &str) -> Box<dyn FnOnce() + Send> {
        {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            let e = map
                .entry(id.to_string())
                .or_insert((std::time::Instant::now(), 0));
            e.1 += 1;
            e.0 = std::time::Instant::now();
        }
        let me = self.clone();
        let id = id.to_string();
        Box::new(move || {
            let mut map = me.map.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = map.get_mut(&id) {
                e.1 = e.1.saturating_sub(1);
                e.0 = std::time::Instant::now();
            }
        })
    }

    /// How long the workspace has gone unused (zero while a viewer is open).
    pub fn idle_for(&self, id: &str) -> std::time::Duration {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let e = map
            .entry(id.to_string())
            .or_insert((std::time::Instant::now(), 0));
        if e.1 > 0 {
            std::time::Duration::ZERO
        } else {
            e.0.elapsed()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_timeouts_are_checked() {
        assert!(validate_name("web-app_1.0").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        let mut req = CreateWorkspace::default();
        assert_eq!(idle_seconds(&req).unwrap(), 1800);
        req.idle_timeout_minutes = Some(0);
        assert_eq!(idle_seconds(&req).unwrap(), 0);
        req.idle_timeout_seconds = Some(5);
        assert_eq!(idle_seconds(&req).unwrap(), 5);
        req.idle_timeout_seconds = Some(-1);
        assert!(idle_seconds(&req).is_err());
    }

    #[test]
    fn activity_counts_open_viewers_as_use() {
        let a = Arc::new(Activity::default());
        let close = a.open("w1");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(a.idle_for("w1"), std::time::Duration::ZERO);
        close();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(a.idle_for("w1") >= std::time::Duration::from_millis(15));
    }
}
