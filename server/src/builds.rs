//! Build projects and builds (CodeBuild's part) on the server.
//!
//! The `builds` table is the queue: starting a build inserts a `QUEUED`
//! row; a worker claims rows (QUEUED → IN_PROGRESS in one statement) up to
//! `build_concurrency` at a time, checks the source out of the repository
//! into `<data_dir>/builds/<id>/src`, runs the buildspec with the local
//! runner and records the outcome. The log goes to
//! `<data_dir>/builds/<id>/build.log` line by line and to live viewers.
//! Artifacts are kept in `<data_dir>/builds/<id>/artifacts/`. A build that
//! was running when the server stopped is marked FAILED at the next start.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::User;
use crate::keys::MasterKey;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Project {
    pub name: String,
    pub owner: String,
    /// The source repository.
    pub repo: String,
    pub branch: String,
    /// The buildspec's path in the repository (when not inline).
    pub buildspec_path: String,
    /// A buildspec given here instead of the repository's file.
    pub inline_buildspec: Option<String>,
    /// Container image (container builds are not available yet).
    pub image: Option<String>,
    /// Project variables (override the buildspec's).
    pub env: Vec<(String, String)>,
    pub timeout_minutes: i64,
    /// Container build limits; None: the server's `workspace_*` settings.
    pub memory_mb: Option<i64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    pub created_at: String,
    #[serde(skip)]
    pub created_at_ms: i64,
    #[serde(skip)]
    pub id: String,
    #[serde(skip)]
    pub owner_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PhaseInfo {
    pub phase: String,
    pub status: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Build {
    pub id: String,
    pub project: String,
    pub number: i64,
    /// QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, STOPPED or TIMED_OUT.
    pub status: String,
    pub current_phase: Option<String>,
    pub phases: Vec<PhaseInfo>,
    pub branch: String,
    /// The commit built (resolved once the source is checked out).
    pub commit: Option<String>,
    pub initiator: String,
    pub queued_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub exported_variables: Vec<(String, String)>,
    /// Number of artifact files kept.
    pub artifacts: i64,
    /// Why it failed or stopped, when the log is not the whole story.
    pub reason: Option<String>,
    /// Test reports: per JUnit report group, counts and failing tests.
    #[schema(value_type = Vec<Object>)]
    pub reports: Vec<nubo_runner::reports::Report>,
    /// The batch it belongs to, if any, and its identifier there.
    pub batch_id: Option<String>,
    pub identifier: Option<String>,
    #[serde(skip)]
    pub queued_at_ms: i64,
    #[serde(skip)]
    pub started_at_ms: Option<i64>,
    #[serde(skip)]
    pub ended_at_ms: Option<i64>,
    #[serde(skip)]
    pub project_id: String,
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: String,
    name: String,
    owner: String,
    owner_id: String,
    repo: String,
    branch: String,
    buildspec_path: String,
    inline_buildspec: Option<String>,
    image: Option<String>,
    env_json: String,
    timeout_minutes: i64,
    created_at: i64,
    memory_mb: Option<i64>,
    cpus: Option<f64>,
    pids: Option<i64>,
}

const PROJECT_SELECT: &str = "SELECT p.id, p.name, u.name AS owner, p.owner_id, r.name AS repo,
        p.branch, p.buildspec_path, p.inline_buildspec, p.image, p.env_json, p.timeout_minutes, p.created_at,
        p.memory_mb, p.cpus, p.pids
    FROM build_projects p JOIN users u ON u.id = p.owner_id JOIN repos r ON r.id = p.repo_id";

fn project_from(r: ProjectRow) -> Project {
    Project {
        name: r.name,
        owner: r.owner,
        repo: r.repo,
        branch: r.branch,
        buildspec_path: r.buildspec_path,
        inline_buildspec: r.inline_buildspec,
        image: r.image,
        env: serde_json::from_str(&r.env_json).unwrap_or_default(),
        timeout_minutes: r.timeout_minutes,
        memory_mb: r.memory_mb,
        cpus: r.cpus,
        pids: r.pids,
        created_at: rfc3339(r.created_at),
        created_at_ms: r.created_at,
        id: r.id,
        owner_id: r.owner_id,
    }
}

#[derive(sqlx::FromRow)]
struct BuildRow {
    id: String,
    project: String,
    project_id: String,
    number: i64,
    status: String,
    current_phase: Option<String>,
    phases_json: String,
    branch: String,
    commit_sha: Option<String>,
    initiator: String,
    queued_at: i64,
    started_at: Option<i64>,
    ended_at: Option<i64>,
    exported_json: String,
    artifacts: i64,
    reason: Option<String>,
    reports_json: String,
    batch_id: Option<String>,
    identifier: Option<String>,
}

const BUILD_SELECT: &str =
    "SELECT b.id, p.name AS project, b.project_id, b.number, b.status, b.current_phase,
        b.phases_json, b.branch, b.commit_sha, b.initiator, b.queued_at, b.started_at, b.ended_at,
        b.exported_json, b.artifacts, b.reason, b.reports_json, b.batch_id, b.identifier
    FROM builds b JOIN build_projects p ON p.id = b.project_id";

fn build_from(r: BuildRow) -> Build {
    Build {
        duration_ms: match (r.started_at, r.ended_at) {
            (Some(s), Some(e)) => Some(e - s),
            (Some(s), None) => Some(now_ms() - s),
            _ => None,
        },
        id: r.id,
        project: r.project,
        number: r.number,
        status: r.status,
        current_phase: r.current_phase,
        phases: serde_json::from_str(&r.phases_json).unwrap_or_default(),
        branch: r.branch,
        commit: r.commit_sha,
        initiator: r.initiator,
        queued_at: rfc3339(r.queued_at),
        started_at: r.started_at.map(rfc3339),
        ended_at: r.ended_at.map(rfc3339),
        exported_variables: serde_json::from_str(&r.exported_json).unwrap_or_default(),
        artifacts: r.artifacts,
        reason: r.reason,
        reports: serde_json::from_str(&r.reports_json).unwrap_or_default(),
        batch_id: r.batch_id,
        identifier: r.identifier,
        queued_at_ms: r.queued_at,
        started_at_ms: r.started_at,
        ended_at_ms: r.ended_at,
        project_id: r.project_id,
    }
}

/// A build's directory (the id's ':' becomes '-': bind mounts split on ':').
pub fn build_dir(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("builds").join(id.replace(':', "-"))
}

pub async fn find_project(pool: &SqlitePool, name: &str) -> Result<Option<Project>> {
    let row: Option<ProjectRow> =
        sqlx::query_as(&format!("{PROJECT_SELECT} WHERE lower(p.name) = lower($1)"))
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(project_from))
}

/// The project, if `user` owns it (or is an administrator).
pub async fn project_for(pool: &SqlitePool, user: &User, name: &str) -> Result<Project> {
    match find_project(pool, name).await? {
        Some(p) if p.owner_id == user.id || user.admin => Ok(p),
        _ => Err(Error::NotFound(format!("no build project named {name:?}"))),
    }
}

pub async fn list_projects(pool: &SqlitePool, user: &User) -> Result<Vec<Project>> {
    let rows: Vec<ProjectRow> = if user.admin {
        sqlx::query_as(&format!("{PROJECT_SELECT} ORDER BY lower(p.name)"))
            .fetch_all(pool)
            .await?
    } else {
        sqlx::query_as(&format!(
            "{PROJECT_SELECT} WHERE p.owner_id = $1 ORDER BY lower(p.name)"
        ))
        .bind(&user.id)
        .fetch_all(pool)
        .await?
    };
    Ok(rows.into_iter().map(project_from).collect())
}

#[derive(Debug, Clone, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// 2-255 letters, digits, '-' or '_' (CodeBuild's rule).
    pub name: String,
    /// The source repository.
    pub repo: String,
    #[serde(default)]
    pub branch: Option<String>,
    /// Default `buildspec.yml`.
    #[serde(default)]
    pub buildspec_path: Option<String>,
    /// A buildspec instead of the repository's file.
    #[serde(default)]
    pub buildspec: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// 5-480, default 60.
    #[serde(default)]
    pub timeout_minutes: Option<i64>,
    /// Container builds: memory in MiB (at least 64).
    #[serde(default)]
    pub memory_mb: Option<i64>,
    /// Container builds: CPUs (e.g. 1.5).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Container builds: most processes (at least 16).
    #[serde(default)]
    pub pids: Option<i64>,
}

fn validate_project_name(name: &str) -> Result<()> {
    let ok = (2..=255).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Unprocessable(format!(
            "invalid project name {name:?}: 2-255 letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
}

fn validate_env(env: &[(String, String)]) -> Result<()> {
    for (k, _) in env {
        let ok = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Error::Unprocessable(format!(
                "{k:?} is not a valid variable name"
            )));
        }
        if k.starts_with("CODEBUILD_") {
            return Err(Error::Unprocessable(format!(
                "{k}: the CODEBUILD_ prefix is reserved"
            )));
        }
    }
    Ok(())
}

pub async fn create_project(
    pool: &SqlitePool,
    settings: &crate::config::Settings,
    owner: &User,
    req: CreateProject,
) -> Result<Project> {
    validate_project_name(&req.name)?;
    let repo = crate::repos::authorize(pool, &req.repo, owner, "codecommit:GitPull").await?;
    let timeout = req.timeout_minutes.unwrap_or(60);
    if !(5..=480).contains(&timeout) {
        return Err(Error::Unprocessable(
            "timeout_minutes must be between 5 and 480".into(),
        ));
    }
    if let Some(text) = &req.buildspec {
        let (spec, diags) = nubo_runner::buildspec::parse(text);
        if spec.is_none() {
            let first = diags
                .iter()
                .find(|d| d.severity == nubo_runner::buildspec::Severity::Error)
                .map(|d| d.render("buildspec"))
                .unwrap_or_default();
            return Err(Error::Unprocessable(format!(
                "the inline buildspec is not valid: {first}"
            )));
        }
    }
    if let Some(image) = &req.image {
        // Container builds need the engine and the image, now.
        crate::engine::available(settings).await?;
        crate::engine::image_available(settings, image).await?;
    }
    let path = req
        .buildspec_path
        .clone()
        .unwrap_or_else(|| "buildspec.yml".into());
    if path.starts_with('/') || path.split('/').any(|p| p == "..") {
        return Err(Error::Unprocessable(
            "buildspec_path must be a path inside the repository".into(),
        ));
    }
    let env: Vec<(String, String)> = req.env.clone().unwrap_or_default().into_iter().collect();
    validate_env(&env)?;
    if req.memory_mb.is_some_and(|m| m < 64)
        || req
            .cpus
            .is_some_and(|c| c.is_nan() || c <= 0.0 || c > 1024.0)
        || req.pids.is_some_and(|p| p < 16)
    {
        return Err(Error::Unprocessable(
            "limits: memory_mb at least 64, cpus above 0, pids at least 16".into(),
        ));
    }
    let inserted = sqlx::query(
        "INSERT INTO build_projects (id, name, owner_id, repo_id, branch, buildspec_path, inline_buildspec,
             image, env_json, timeout_minutes, created_at, memory_mb, cpus, pids)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(new_id())
    .bind(&req.name)
    .bind(&owner.id)
    .bind(&repo.id)
    .bind(req.branch.clone().filter(|b| !b.is_empty()).unwrap_or_else(|| "main".into()))
    .bind(&path)
    .bind(req.buildspec.clone().filter(|b| !b.trim().is_empty()))
    .bind(&req.image)
    .bind(serde_json::to_string(&env).unwrap_or_default())
    .bind(timeout)
    .bind(now_ms())
    .bind(req.memory_mb)
    .bind(req.cpus)
    .bind(req.pids)
    .execute(pool)
    .await;
    match inserted {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(Error::Conflict(format!(
                "a build project named {:?} exists",
                req.name
            )))
        }
        other => {
            other?;
        }
    }
    Ok(find_project(pool, &req.name).await?.expect("just made"))
}

pub async fn delete_project(state: &AppState, project: &Project) -> Result<()> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM builds WHERE project_id = $1")
        .bind(&project.id)
        .fetch_all(&state.pool)
        .await?;
    for id in &ids {
        state.builds.cancel(id);
    }
    sqlx::query("DELETE FROM build_projects WHERE id = $1")
        .bind(&project.id)
        .execute(&state.pool)
        .await?;
    for id in ids {
        let _ = std::fs::remove_dir_all(build_dir(&state.settings.data_dir, &id));
    }
    Ok(())
}

pub async fn find_build(pool: &SqlitePool, id: &str) -> Result<Option<Build>> {
    let row: Option<BuildRow> = sqlx::query_as(&format!("{BUILD_SELECT} WHERE b.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(build_from))
}

/// The build, if `user` may see it (its project's owner, or an admin).
pub async fn build_for(pool: &SqlitePool, user: &User, id: &str) -> Result<Build> {
    let build = find_build(pool, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no build {id:?}")))?;
    let owner: String = sqlx::query_scalar("SELECT owner_id FROM build_projects WHERE id = $1")
        .bind(&build.project_id)
        .fetch_one(pool)
        .await?;
    if owner == user.id || user.admin {
        Ok(build)
    } else {
        Err(Error::NotFound(format!("no build {id:?}")))
    }
}

pub async fn list_builds(pool: &SqlitePool, project: &Project, limit: i64) -> Result<Vec<Build>> {
    let rows: Vec<BuildRow> = sqlx::query_as(&format!(
        "{BUILD_SELECT} WHERE b.project_id = $1 ORDER BY b.number DESC LIMIT $2"
    ))
    .bind(&project.id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(build_from).collect())
}

/// The project's builds that are not part of a batch, newest first (the
/// project page shows a batch's builds under the batch).
pub async fn list_single_builds(
    pool: &SqlitePool,
    project: &Project,
    limit: i64,
) -> Result<Vec<Build>> {
    let rows: Vec<BuildRow> = sqlx::query_as(&format!(
        "{BUILD_SELECT} WHERE b.project_id = $1 AND b.batch_id IS NULL ORDER BY b.number DESC LIMIT $2"
    ))
    .bind(&project.id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(build_from).collect())
}

/// A batch's builds, in the order they were made.
pub async fn batch_builds(pool: &SqlitePool, batch_id: &str) -> Result<Vec<Build>> {
    let rows: Vec<BuildRow> = sqlx::query_as(&format!(
        "{BUILD_SELECT} WHERE b.batch_id = $1 ORDER BY b.number"
    ))
    .bind(batch_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(build_from).collect())
}

#[derive(Debug, Clone, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StartBuild {
    /// Default: the project's branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// A commit to build instead of the branch's head.
    #[serde(default)]
    pub commit: Option<String>,
    /// Variables overriding the project's and the buildspec's.
    #[serde(default)]
    pub env: Option<std::collections::BTreeMap<String, String>>,
}

/// Checks what a start request names: a branch, a commit, variables.
pub fn check_start(branch: &str, req: &StartBuild) -> Result<()> {
    if branch.starts_with('-') || branch.contains("..") || branch.contains(char::is_whitespace) {
        return Err(Error::Unprocessable(format!(
            "{branch:?} is not a branch name"
        )));
    }
    if let Some(c) = &req.commit {
        if !(4..=64).contains(&c.len()) || !c.chars().all(|ch| ch.is_ascii_hexdigit()) {
            return Err(Error::Unprocessable(format!("{c:?} is not a commit id")));
        }
    }
    let env: Vec<(String, String)> = req.env.clone().unwrap_or_default().into_iter().collect();
    validate_env(&env)
}

/// Queues a build; answers it (QUEUED).
pub async fn start(
    pool: &SqlitePool,
    project: &Project,
    initiator: &User,
    req: StartBuild,
) -> Result<Build> {
    let branch = req
        .branch
        .clone()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| project.branch.clone());
    check_start(&branch, &req)?;
    let env: Vec<(String, String)> = req.env.clone().unwrap_or_default().into_iter().collect();
    let mut tx = pool.begin().await?;
    let number: i64 = sqlx::query_scalar(
        "UPDATE build_projects SET next_number = next_number + 1 WHERE id = $1 RETURNING next_number - 1",
    )
    .bind(&project.id)
    .fetch_one(&mut *tx)
    .await?;
    let id = format!("{}:{}", project.name, new_id());
    sqlx::query(
        "INSERT INTO builds (id, project_id, number, status, phases_json, branch, commit_sha, initiator,
             env_json, queued_at, exported_json)
         VALUES ($1, $2, $3, 'QUEUED', '[]', $4, $5, $6, $7, $8, '[]')",
    )
    .bind(&id)
    .bind(&project.id)
    .bind(number)
    .bind(&branch)
    .bind(&req.commit)
    .bind(&initiator.name)
    .bind(serde_json::to_string(&env).unwrap_or_default())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(find_build(pool, &id).await?.expect("just made"))
}

/// A line or a change of a running build, for live viewers.
#[derive(Debug, Clone)]
pub enum LogEvent {
    /// The line's index in the log (from 0) and its text.
    Line(u64, String),
    Phase(PhaseInfo),
    End(String),
}

#[derive(Default)]
struct Live {
    channel: Option<broadcast::Sender<LogEvent>>,
    cancel: Option<Arc<AtomicBool>>,
}

/// The server's running builds: their live channels and stop switches.
#[derive(Default)]
pub struct Running {
    map: Mutex<HashMap<String, Live>>,
    pub wake: tokio::sync::Notify,
}

impl Running {
    pub fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<LogEvent>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id)
            .and_then(|l| l.channel.as_ref())
            .map(|c| c.subscribe())
    }

    /// Asks a running build to stop; answers whether it was running here.
    pub fn cancel(&self, id: &str) -> bool {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(id).and_then(|l| l.cancel.as_ref()) {
            Some(c) => {
                c.store(true, std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

/// Stops a build: a queued one at once, a running one at its next check.
pub async fn stop(state: &AppState, build: &Build) -> Result<Build> {
    let stopped = sqlx::query(
        "UPDATE builds SET status = 'STOPPED', ended_at = $1, reason = $2 WHERE id = $3 AND status = 'QUEUED'",
    )
    .bind(now_ms())
    .bind("stopped before it started")
    .bind(&build.id)
    .execute(&state.pool)
    .await?;
    if stopped.rows_affected() == 0 && build.status == "IN_PROGRESS" {
        state.builds.cancel(&build.id);
        for _ in 0..100 {
            let b = find_build(&state.pool, &build.id).await?.expect("exists");
            if b.status != "IN_PROGRESS" {
                return Ok(b);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    Ok(find_build(&state.pool, &build.id).await?.expect("exists"))
}

/// Kills processes left by builds that were running in a stopped server
/// (found by the `NUBO_BUILD_ID` every build process inherits).
fn kill_leftovers(ids: &[String]) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let environ = String::from_utf8_lossy(&environ);
        if environ
            .split('\0')
            .any(|v| ids.iter().any(|id| v == format!("NUBO_BUILD_ID={id}")))
        {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// On start: builds that were running when the server stopped failed, and
/// what they left for their runner (the secrets file among it) is removed.
pub async fn recover(pool: &SqlitePool, data_dir: &Path) -> Result<()> {
    if let Ok(entries) = std::fs::read_dir(data_dir.join("builds")) {
        for e in entries.flatten() {
            for leftover in ["out", "sandbox-etc"] {
                let _ = std::fs::remove_dir_all(e.path().join(leftover));
            }
        }
    }
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM builds WHERE status = 'IN_PROGRESS'")
        .fetch_all(pool)
        .await?;
    kill_leftovers(&ids);
    for id in &ids {
        crate::cgroup::Cgroup::existing(&sandbox_name(id)).remove();
    }
    let n = sqlx::query(
        "UPDATE builds SET status = 'FAILED', ended_at = $1,
             reason = 'the server stopped while the build was running'
         WHERE status = 'IN_PROGRESS'",
    )
    .bind(now_ms())
    .execute(pool)
    .await?;
    if n.rows_affected() > 0 {
        tracing::warn!(
            builds = n.rows_affected(),
            "builds interrupted by a restart were marked failed"
        );
    }
    Ok(())
}

/// Starts the workers that take builds off the queue.
pub fn spawn_workers(state: AppState) {
    // Queued builds that waited too long fail (checked apart from the
    // workers, which may all be busy).
    {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                let limit = state.settings.build_queue_timeout_seconds as i64;
                let _ = sqlx::query(
                    "UPDATE builds SET status = 'FAILED', ended_at = $1, reason = $2
                     WHERE status = 'QUEUED' AND queued_at < $3",
                )
                .bind(now_ms())
                .bind(format!(
                    "waited in the queue longer than {}",
                    crate::workspaces::human_duration(limit)
                ))
                .bind(now_ms() - limit * 1000)
                .execute(&state.pool)
                .await;
                // Batches move on when their builds end; this is the backstop.
                if let Err(e) = crate::build_batches::advance_all(&state).await {
                    tracing::warn!(error = %e, "cannot move batches on");
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        });
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(
        state.settings.build_concurrency.max(1),
    ));
    tokio::spawn(async move {
        loop {
            let permit = match slots.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => return,
            };
            match claim(&state.pool).await {
                Ok(Some(id)) => {
                    let state = state.clone();
                    tokio::spawn(async move {
                        if let Err(e) = execute(&state, &id).await {
                            tracing::error!(build = %id, error = %e, "build failed to run");
                            let _ = sqlx::query(
                                "UPDATE builds SET status = 'FAILED', ended_at = $1, reason = $2 WHERE id = $3 AND status = 'IN_PROGRESS'",
                            )
                            .bind(now_ms())
                            .bind(e.public_message())
                            .bind(&id)
                            .execute(&state.pool)
                            .await;
                        }
                        drop(permit);
                        state.builds.wake.notify_one();
                    });
                }
                Ok(None) => {
                    drop(permit);
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_millis(500),
                        state.builds.wake.notified(),
                    )
                    .await;
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "cannot read the build queue");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
}

async fn claim(pool: &SqlitePool) -> Result<Option<String>> {
    let id: Option<String> = sqlx::query_scalar(
        "UPDATE builds SET status = 'IN_PROGRESS', started_at = $1, current_phase = 'PROVISIONING'
         WHERE id = (SELECT id FROM builds WHERE status = 'QUEUED' ORDER BY queued_at LIMIT 1)
           AND status = 'QUEUED'
         RETURNING id",
    )
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    Ok(id)
}

/// Resolves the buildspec's parameter-store and secrets-manager entries,
/// as far as the project's owner may read them.
async fn resolve_secrets(
    pool: &SqlitePool,
    master: &MasterKey,
    owner: &User,
    spec: &nubo_runner::buildspec::Buildspec,
) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (var, name) in &spec.env.parameter_store {
        let value = crate::params::value_for(pool, master, owner, "parameter", name, var).await?;
        out.push((var.clone(), value));
    }
    for (var, reference) in &spec.env.secrets_manager {
        let mut parts = reference.splitn(2, ':');
        let id = parts.next().unwrap_or_default();
        let key = parts
            .next()
            .and_then(|r| r.split(':').next())
            .filter(|k| !k.is_empty());
        let value = crate::params::value_for(pool, master, owner, "secret", id, var).await?;
        let value = match key {
            None => value,
            Some(k) => serde_json::from_str::<serde_json::Value>(&value)
                .ok()
                .and_then(|v| v.get(k).cloned())
                .map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .ok_or_else(|| format!("secret {id} has no JSON key {k} (for {var})"))?,
        };
        out.push((var.clone(), value));
    }
    Ok(out)
}

async fn execute(state: &AppState, id: &str) -> Result<()> {
    let build = find_build(&state.pool, id).await?.expect("claimed");
    let project: ProjectRow = sqlx::query_as(&format!("{PROJECT_SELECT} WHERE p.id = $1"))
        .bind(&build.project_id)
        .fetch_one(&state.pool)
        .await?;
    let mut project = project_from(project);
    // A build of a batch: its own buildspec, image, limits and variables.
    let child = crate::build_batches::child_of(&state.pool, id).await?;
    if let Some((_, c)) = &child {
        if c.image.is_some() {
            project.image = c.image.clone();
        }
        if let Some(m) = c.memory_mb {
            project.memory_mb = Some(m as i64);
        }
        if c.cpus.is_some() {
            project.cpus = c.cpus;
        }
    }
    let dir = build_dir(&state.settings.data_dir, id);
    let src = dir.join("src");
    std::fs::create_dir_all(&dir).map_err(|e| Error::Internal(e.to_string()))?;
    let (tx, _) = broadcast::channel(4096);
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let mut map = state.builds.map.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(
            id.to_string(),
            Live {
                channel: Some(tx.clone()),
                cancel: Some(cancel.clone()),
            },
        );
    }
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("build.log"))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let writer = Arc::new(Mutex::new((std::io::BufWriter::new(log_file), 0u64)));
    let emit = {
        let writer = writer.clone();
        let tx = tx.clone();
        move |line: &str| {
            let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(w.0, "{line}");
            let _ = w.0.flush();
            let n = w.1;
            w.1 += 1;
            let _ = tx.send(LogEvent::Line(n, line.to_string()));
        }
    };
    let stamp = nubo_runner::local::now_stamp;
    // DOWNLOAD_SOURCE: a checkout of the branch or commit.
    let phase = |phase: &str, status: &str, duration_ms: u64| {
        let _ = tx.send(LogEvent::Phase(PhaseInfo {
            phase: phase.into(),
            status: status.into(),
            duration_ms,
        }));
    };
    phase("PROVISIONING", "SUCCEEDED", 0);
    phase("DOWNLOAD_SOURCE", "IN_PROGRESS", 0);
    let fetch_started = std::time::Instant::now();
    let owner = crate::identity::accounts::find_by_id(&state.pool, &project.owner_id)
        .await?
        .ok_or_else(|| Error::NotFound("the project's owner no longer exists".into()))?;
    let place = runner_for(&state.settings, &project, &owner);
    emit(&format!(
        "[Container] {} {}",
        stamp(),
        match &place {
            Ok(Runner::Apart(crate::build_external::Place::Container { image })) =>
                format!("Running in an ephemeral container of {image}"),
            Ok(Runner::Apart(crate::build_external::Place::Sandbox(_))) =>
                "Running in the local sandbox".to_string(),
            Ok(Runner::Server) =>
                "Running on the server's local runner (not confined: the project's owner is an administrator)".to_string(),
            Err(_) => "No runner for this build".to_string(),
        }
    ));
    emit(&format!(
        "[Container] {} Entering phase DOWNLOAD_SOURCE",
        stamp()
    ));
    let checkout = match &place {
        Ok(_) => checkout(state, &project, &build, &src).await,
        Err(why) => Err(why.clone()),
    };
    let outcome_error = match checkout {
        Err(reason) => Some(reason),
        Ok(commit) => {
            sqlx::query("UPDATE builds SET commit_sha = $1, current_phase = 'DOWNLOAD_SOURCE' WHERE id = $2")
                .bind(&commit)
                .bind(id)
                .execute(&state.pool)
                .await?;
            None
        }
    };
    let mut spec_source = String::new();
    let own_path = child.as_ref().and_then(|(_, c)| c.buildspec.clone());
    let spec_text = match (&outcome_error, &own_path, &project.inline_buildspec) {
        (Some(_), _, _) => None,
        (None, Some(path), _) => Some(read_buildspec(&src, path, &build.branch)),
        (None, None, Some(inline)) => Some(Ok(inline.clone())),
        (None, None, None) => Some(read_buildspec(&src, &project.buildspec_path, &build.branch)),
    };
    let mut reason = outcome_error;
    let mut spec = None;
    if reason.is_none() {
        match spec_text {
            None => {}
            Some(Err(why)) => reason = Some(why),
            Some(Ok(text)) => {
                spec_source = text.clone();
                let (parsed, diags) = nubo_runner::buildspec::parse(&text);
                let shown = match (&own_path, &project.inline_buildspec) {
                    (Some(path), _) => path.as_str(),
                    (None, Some(_)) => "buildspec (inline)",
                    (None, None) => project.buildspec_path.as_str(),
                };
                for d in &diags {
                    emit(&d.render(shown));
                }
                match parsed {
                    Some(s) => match batch_rules(s, child.as_ref().map(|(_, c)| c)) {
                        Ok(s) => spec = Some(s),
                        Err(why) => reason = Some(why),
                    },
                    None => reason = Some("YAML_FILE_ERROR: the buildspec is not valid".into()),
                }
            }
        }
    }
    let mut secrets = Vec::new();
    if let (None, Some(s)) = (&reason, &spec) {
        match resolve_secrets(&state.pool, &state.master, &owner, s).await {
            Ok(v) => secrets = v,
            Err(e) => reason = Some(format!("DECRYPTED_VARIABLES_ERROR: {e}")),
        }
    }
    let fetch_ms = fetch_started.elapsed().as_millis() as u64;
    if let Some(why) = &reason {
        phase("DOWNLOAD_SOURCE", "FAILED", fetch_ms);
        emit(&format!(
            "[Container] {} Phase complete: DOWNLOAD_SOURCE State: FAILED",
            stamp()
        ));
        emit(&format!(
            "[Container] {} Phase context status code: {why}",
            stamp()
        ));
        let phases = vec![PhaseInfo {
            phase: "DOWNLOAD_SOURCE".into(),
            status: "FAILED".into(),
            duration_ms: 0,
        }];
        finish(state, id, "FAILED", &phases, &[], 0, Some(why)).await?;
        let _ = tx.send(LogEvent::End("FAILED".into()));
        cleanup(state, id, &src);
        if let Some((batch, _)) = &child {
            crate::build_batches::advance(state, batch).await?;
        }
        return Ok(());
    }
    let place = place.expect("checked with the checkout");
    // The host path only where the build runs as a host process.
    emit(&format!(
        "[Container] {} CODEBUILD_SRC_DIR={}",
        stamp(),
        match &place {
            Runner::Server => src.display().to_string(),
            Runner::Apart(_) => "/codebuild/src".to_string(),
        }
    ));
    emit(&format!(
        "[Container] {} Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED",
        stamp()
    ));
    phase("DOWNLOAD_SOURCE", "SUCCEEDED", fetch_ms);
    let spec = spec.expect("checked");
    if let Some(name) = spec.artifacts.as_ref().and_then(|a| a.name.clone()) {
        let _ = std::fs::write(dir.join("artifact-name"), name);
    }
    let mut overrides = project.env.clone();
    if let Some((_, c)) = &child {
        overrides.extend(c.variables.iter().cloned());
    }
    let build_env: Vec<(String, String)> = {
        let json: String = sqlx::query_scalar("SELECT env_json FROM builds WHERE id = $1")
            .bind(id)
            .fetch_one(&state.pool)
            .await?;
        serde_json::from_str(&json).unwrap_or_default()
    };
    overrides.extend(build_env);
    // Marks every process of this build, so a restart can find leftovers.
    overrides.push(("NUBO_BUILD_ID".into(), id.to_string()));
    // Caches are kept per project.
    let cache_dir = state
        .settings
        .data_dir
        .join("build-cache")
        .join(&build.project_id);
    let options = nubo_runner::local::Options {
        source: src.clone(),
        spec,
        overrides,
        secrets,
        artifacts_dir: Some(dir.join("artifacts")),
        timeout: std::time::Duration::from_secs(project.timeout_minutes.max(1) as u64 * 60),
        project: project.name.clone(),
        initiator: build.initiator.clone(),
        image: "nubo/local".into(),
        log_cap: state.settings.build_log_cap_bytes,
        cancel: Some(cancel),
        announce_source: false,
        cache_dir: Some(cache_dir.clone()),
    };
    // Phase changes from the log, as they happen.
    let (phase_tx, mut phase_rx) = tokio::sync::mpsc::unbounded_channel::<PhaseInfo>();
    let pool = state.pool.clone();
    let build_id = id.to_string();
    let live = tx.clone();
    let phases_task = tokio::spawn(async move {
        while let Some(p) = phase_rx.recv().await {
            let _ = sqlx::query("UPDATE builds SET current_phase = $1 WHERE id = $2")
                .bind(&p.phase)
                .bind(&build_id)
                .execute(&pool)
                .await;
            let _ = live.send(LogEvent::Phase(p));
        }
    });
    // The outcome, and why the build failed when the outcome cannot say.
    let (outcome, failure) = match place {
        Runner::Server => tokio::task::spawn_blocking(move || {
            let mut entered = None;
            nubo_runner::local::run(&options, &mut |line| {
                emit(line);
                if let Some(p) = phase_of(line, &mut entered) {
                    let _ = phase_tx.send(p);
                }
            })
        })
        .await
        .map(|o| (o, None))
        .map_err(|e| Error::Internal(format!("the build runner panicked: {e}")))?,
        Runner::Apart(place) => {
            // Owned here, so the phase channel closes when this arm ends.
            let phase_tx = phase_tx;
            let image = match &place {
                crate::build_external::Place::Container { image } => image.clone(),
                crate::build_external::Place::Sandbox(_) => "nubo/local-sandbox".into(),
            };
            let out = dir.join("out");
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).map_err(|e| Error::Internal(e.to_string()))?;
            std::fs::write(out.join("buildspec.yml"), &spec_source)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let secrets: std::collections::BTreeMap<_, _> =
                options.secrets.iter().cloned().collect();
            // Read (and removed) by the runner inside; what a killed server
            // leaves is removed at the next start (recover).
            crate::tls::write_private(
                &out.join("secrets.json"),
                serde_json::to_string(&secrets)
                    .unwrap_or_default()
                    .as_bytes(),
            )
            .map_err(|e| Error::Internal(e.to_string()))?;
            let mut args: Vec<String> = [
                "--source",
                "/codebuild/src",
                "--buildspec",
                "/codebuild/out/buildspec.yml",
                "--artifacts",
                "/codebuild/out/artifacts",
                "--outcome",
                "/codebuild/out/outcome.json",
                "--secrets-file",
                "/codebuild/out/secrets.json",
                "--cache-dir",
                "/codebuild/cache",
                "--log-file",
                "/codebuild/out/build.log",
                // A batch's builds (and a batch buildspec started as one
                // build) run their phases: batches are the server's work.
                "--ignore-batch",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.push("--timeout".into());
            args.push(format!("{}m", project.timeout_minutes));
            args.push("--log-cap".into());
            args.push(state.settings.build_log_cap_bytes.to_string());
            for (k, v) in options
                .overrides
                .iter()
                .filter(|(k, _)| k != "NUBO_BUILD_ID")
            {
                args.push("--env".into());
                args.push(format!("{k}={v}"));
            }
            let _ = std::fs::create_dir_all(&cache_dir);
            let home = match &place {
                crate::build_external::Place::Container { .. } => "/root",
                crate::build_external::Place::Sandbox(_) => "/tmp",
            };
            let s = &state.settings;
            let external = crate::build_external::ExternalBuild {
                name: sandbox_name(id),
                place,
                src: src.clone(),
                out: out.clone(),
                cache: cache_dir.clone(),
                args,
                env: vec![
                    ("NUBO_PROJECT".into(), project.name.clone()),
                    ("NUBO_IMAGE".into(), image),
                    ("NUBO_BUILD_ID".into(), id.to_string()),
                    ("HOME".into(), home.into()),
                    (
                        "PATH".into(),
                        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                    ),
                ],
                cancel: options.cancel.clone().expect("set above"),
                limits: crate::cgroup::Limits {
                    memory_mb: project
                        .memory_mb
                        .map(|m| m as u64)
                        .unwrap_or(s.workspace_memory_mb),
                    cpus: project.cpus.unwrap_or(s.workspace_cpus),
                    pids: project.pids.unwrap_or(s.workspace_pids),
                },
                hard_timeout: std::time::Duration::from_secs(
                    project.timeout_minutes.max(1) as u64 * 60 + 300,
                ),
            };
            let mut entered = None;
            let say = emit.clone();
            let mut on_line = |line: &str| {
                emit(line);
                if let Some(p) = phase_of(line, &mut entered) {
                    let _ = phase_tx.send(p);
                }
            };
            let ended = crate::build_external::run(&state.settings, external, &mut on_line).await;
            if let Ok(crate::build_external::Ended::Stopped) = &ended {
                // Killed from outside: the log says where it stopped.
                if let Some((phase, started)) = entered.take() {
                    say(&format!(
                        "[Container] {} Phase complete: {phase} State: STOPPED",
                        stamp()
                    ));
                    say(&format!(
                        "[Container] {} Phase context status code: BUILD_STOPPED Message: The build was stopped",
                        stamp()
                    ));
                    let _ = phase_tx.send(PhaseInfo {
                        phase,
                        status: "STOPPED".into(),
                        duration_ms: started.elapsed().as_millis() as u64,
                    });
                }
                say(&format!("[Container] {} Build STOPPED", stamp()));
            }
            let kept =
                crate::build_external::take_artifacts(&out, &dir.join("artifacts"), &mut |l| {
                    say(l)
                });
            let outcome = crate::build_external::read_outcome(&out).map(|mut o| {
                // What was kept, not what the build said it made.
                o.artifacts = kept;
                o
            });
            let _ = std::fs::remove_dir_all(&out);
            let empty = |status: &str| nubo_runner::local::Outcome {
                build_id: id.to_string(),
                succeeded: false,
                status: status.into(),
                phases: vec![],
                exported_variables: vec![],
                artifacts: 0,
                reports: vec![],
            };
            use crate::build_external::Ended;
            match (ended, outcome) {
                (Err(e), _) => (empty("FAILED"), Some(e.public_message())),
                (Ok(Ended::Stopped), _) => (empty("STOPPED"), None),
                (Ok(Ended::Exited(_)), Some(o)) => (o, None),
                (Ok(Ended::Exited(code)), None) => (
                    empty("FAILED"),
                    Some(format!(
                        "the build ended with status {code} before finishing{}",
                        if code == 137 {
                            " (killed: out of memory?)"
                        } else {
                            ""
                        }
                    )),
                ),
            }
        }
    };
    let _ = phases_task.await;
    let phases: Vec<PhaseInfo> = outcome
        .phases
        .iter()
        .map(|p| PhaseInfo {
            phase: p.phase.clone(),
            status: p.status.clone(),
            duration_ms: p.duration_ms,
        })
        .collect();
    let reason = failure.or_else(|| match outcome.status.as_str() {
        "STOPPED" => Some("stopped by a user".to_string()),
        "TIMED_OUT" => Some(format!(
            "timed out after {} minutes",
            project.timeout_minutes
        )),
        _ => None,
    });
    finish(
        state,
        id,
        &outcome.status,
        &phases,
        &outcome.exported_variables,
        outcome.artifacts as i64,
        reason.as_deref(),
    )
    .await?;
    sqlx::query("UPDATE builds SET reports_json = $1 WHERE id = $2")
        .bind(serde_json::to_string(&outcome.reports).unwrap_or_default())
        .bind(id)
        .execute(&state.pool)
        .await?;
    let _ = tx.send(LogEvent::End(outcome.status.clone()));
    cleanup(state, id, &src);
    if let Some((batch, _)) = &child {
        crate::build_batches::advance(state, batch).await?;
    }
    Ok(())
}

/// What a build does with a buildspec's `batch:`: a batch's own build runs
/// the phases (the batch is the server's work); a build started alone from
/// a batch-only buildspec has nothing to run.
fn batch_rules(
    spec: nubo_runner::buildspec::Buildspec,
    child: Option<&crate::build_batches::Child>,
) -> std::result::Result<nubo_runner::buildspec::Buildspec, String> {
    if child.is_some_and(|c| c.privileged_mode) {
        return Err(
            "CLIENT_ERROR: privileged-mode is refused: Nubo's builds have no Docker daemon".into(),
        );
    }
    let is_batch = spec.batch.is_some();
    let spec = nubo_runner::buildspec::Buildspec {
        batch: None,
        ..spec
    };
    if spec.phases.is_empty() && is_batch {
        return Err(match child {
            Some(_) => "YAML_FILE_ERROR: this build names no buildspec and the batch buildspec has no phases".into(),
            None => "YAML_FILE_ERROR: this is a batch buildspec; start the project again to run its batch".into(),
        });
    }
    Ok(spec)
}

/// The name of a build's container or sandbox (and its control group).
fn sandbox_name(id: &str) -> String {
    format!("nubo-build-{}", id.replace(':', "-"))
}

/// Where a build runs.
enum Runner {
    /// Apart from the server: a container, or the local sandbox.
    Apart(crate::build_external::Place),
    /// In the server's process (image-less builds with no sandbox here,
    /// for administrators' projects only).
    Server,
}

/// A container for a project with an image; else the local sandbox; else
/// the server itself, only when the project's owner is an administrator.
fn runner_for(
    settings: &crate::config::Settings,
    project: &Project,
    owner: &User,
) -> std::result::Result<Runner, String> {
    use crate::build_external::Place;
    if let Some(image) = &project.image {
        return Ok(Runner::Apart(Place::Container {
            image: image.clone(),
        }));
    }
    match crate::sandbox::available(settings) {
        Ok(sandbox) => Ok(Runner::Apart(Place::Sandbox(sandbox))),
        Err(_) if owner.admin => Ok(Runner::Server),
        Err(why) => Err(format!(
            "CLIENT_ERROR: builds without an image run in the local sandbox, and none can be set up on this server ({why}); give the project an image, or ask an administrator to install bubblewrap"
        )),
    }
}

/// The buildspec from the checkout: the repository controls it, so it is
/// read without following links (a link to a host file would otherwise be
/// read and quoted in the log) and at most 1 MiB.
fn read_buildspec(src: &Path, path: &str, branch: &str) -> std::result::Result<String, String> {
    match crate::safe_fs::read_capped(src, path, 1 << 20) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| format!("YAML_FILE_ERROR: the buildspec {path} is not UTF-8 text")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "YAML_FILE_ERROR: no buildspec at {path} on {branch}"
        )),
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => Err(format!(
            "YAML_FILE_ERROR: the buildspec {path} is larger than 1 MiB"
        )),
        Err(_) => Err(format!(
            "YAML_FILE_ERROR: the buildspec {path} is a symbolic link or not a regular file; builds read only a regular file of the repository"
        )),
    }
}

/// A phase change told by a log line (`Entering phase X`, `Phase complete:
/// X State: S`), with the time spent since it was entered.
pub fn phase_of(
    line: &str,
    entered: &mut Option<(String, std::time::Instant)>,
) -> Option<PhaseInfo> {
    if let Some(rest) = line.split("Entering phase ").nth(1) {
        let phase = rest.trim().to_string();
        *entered = Some((phase.clone(), std::time::Instant::now()));
        return Some(PhaseInfo {
            phase,
            status: "IN_PROGRESS".into(),
            duration_ms: 0,
        });
    }
    let rest = line.split("Phase complete: ").nth(1)?;
    let mut parts = rest.split(" State: ");
    let (phase, status) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let duration_ms = entered
        .as_ref()
        .filter(|(p, _)| p == phase)
        .map(|(_, t)| t.elapsed().as_millis() as u64)
        .unwrap_or(0);
    Some(PhaseInfo {
        phase: phase.to_string(),
        status: status.trim().to_string(),
        duration_ms,
    })
}

fn cleanup(state: &AppState, id: &str, src: &Path) {
    let _ = std::fs::remove_dir_all(src);
    state
        .builds
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(id);
}

async fn finish(
    state: &AppState,
    id: &str,
    status: &str,
    phases: &[PhaseInfo],
    exported: &[(String, String)],
    artifacts: i64,
    reason: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE builds SET status = $1, phases_json = $2, exported_json = $3, artifacts = $4,
             reason = $5, ended_at = $6, current_phase = 'COMPLETED' WHERE id = $7",
    )
    .bind(status)
    .bind(serde_json::to_string(phases).unwrap_or_default())
    .bind(serde_json::to_string(exported).unwrap_or_default())
    .bind(artifacts)
    .bind(reason)
    .bind(now_ms())
    .bind(id)
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// Clones the repository's working copy and checks out the commit (or the
/// branch's head); answers the commit id, or why it could not.
async fn checkout(
    state: &AppState,
    project: &Project,
    build: &Build,
    src: &Path,
) -> std::result::Result<String, String> {
    let repo = crate::repos::find(&state.pool, &project.repo)
        .await
        .map_err(|e| e.public_message())?
        .ok_or("CLIENT_ERROR: the source repository no longer exists")?;
    let (cache, _) = state
        .working_copy(&repo, false)
        .await
        .map_err(|e| e.public_message())?;
    let _ = std::fs::remove_dir_all(src);
    let out = tokio::process::Command::new("git")
        .args(["clone", "-q", "--no-hardlinks", "--no-checkout"])
        .arg(&cache)
        .arg(src)
        .output()
        .await
        .map_err(|e| format!("CLIENT_ERROR: cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "CLIENT_ERROR: cannot clone {}: {}",
            project.repo,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let target = match &build.commit {
        Some(c) => c.clone(),
        None => format!("origin/{}", build.branch),
    };
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(src)
        .args(["checkout", "-q", "--detach", &target, "--"])
        .output()
        .await
        .map_err(|e| format!("CLIENT_ERROR: cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(match &build.commit {
            Some(c) => format!("CLIENT_ERROR: no commit {c} in {}", project.repo),
            None => format!(
                "CLIENT_ERROR: no branch {} in {}",
                build.branch, project.repo
            ),
        });
    }
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(src)
        .args(["rev-parse", "HEAD"])
        .output()
        .await
        .map_err(|e| format!("CLIENT_ERROR: cannot run git: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

// ---- the parameter store and the secrets manager ----

// ---- artifacts as a zip (stored, not compressed) ----

fn crc32(data: &[u8], mut crc: u32) -> u32 {
    crc = !crc;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Writes a zip archive (method "stored") of every regular file under
/// `dirs` into `out`, streaming: links and special files are skipped and
/// never followed (the tree was written by a build), files are opened
/// with `O_NOFOLLOW`, and the archive stops at the zip format's limits.
/// Several directories, each under its prefix (a folder in the archive;
/// empty for the top).
pub fn zip_dirs(dirs: &[(String, PathBuf)], out: &mut impl Write) -> std::io::Result<()> {
    fn walk(d: &Path, base: &Path, depth: usize, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(d) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = || {
                p.strip_prefix(base)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned()
            };
            match e.file_type() {
                Ok(t) if t.is_dir() && depth < 64 => walk(&p, base, depth + 1, out),
                Ok(t) if t.is_file() => out.push(rel()),
                _ => {}
            }
        }
    }
    // (name in the archive, directory, path below it)
    let mut files: Vec<(String, &Path, String)> = Vec::new();
    for (prefix, dir) in dirs {
        let mut found = Vec::new();
        walk(dir, dir, 0, &mut found);
        for rel in found {
            let name = if prefix.is_empty() {
                rel.clone()
            } else {
                format!("{prefix}/{rel}")
            };
            files.push((name, dir.as_path(), rel));
        }
    }
    files.truncate(u16::MAX as usize);
    let mut offset: u64 = 0;
    let mut central = Vec::new();
    let mut count: u16 = 0;
    for (name, dir, rel) in &files {
        let Ok(file) = crate::safe_fs::open_regular(dir, rel) else {
            continue;
        };
        let len = file.metadata()?.len();
        if offset + len + 1024 > u32::MAX as u64 {
            break;
        }
        // One pass for the CRC, one to copy: the file is not held in memory.
        let mut crc = 0u32;
        {
            let mut r = std::io::BufReader::new(&file);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = std::io::Read::read(&mut r, &mut buf)?;
                if n == 0 {
                    break;
                }
                crc = crc32(&buf[..n], crc);
            }
        }
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if central {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // version needed
            h.extend_from_slice(&0x0800u16.to_le_bytes()); // UTF-8 names
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u16.to_le_bytes()); // time
            h.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(len as u32).to_le_bytes());
            h.extend_from_slice(&(len as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                h.extend_from_slice(&0u16.to_le_bytes()); // comment
                h.extend_from_slice(&0u16.to_le_bytes()); // disk
                h.extend_from_slice(&0u16.to_le_bytes()); // internal attrs
                h.extend_from_slice(&0u32.to_le_bytes()); // external attrs
                h.extend_from_slice(&(offset as u32).to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        let local = header(0x0403_4b50, false);
        out.write_all(&local)?;
        let mut f = &file;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))?;
        let copied = std::io::copy(&mut std::io::Read::take(f, len), out)?;
        if copied != len {
            return Err(std::io::Error::other(format!(
                "{name} changed while it was zipped"
            )));
        }
        central.extend(header(0x0201_4b50, true));
        offset += local.len() as u64 + len;
        count += 1;
    }
    out.write_all(&central)?;
    out.write_all(&0x0605_4b50u32.to_le_bytes())?;
    out.write_all(&[0, 0, 0, 0])?;
    out.write_all(&count.to_le_bytes())?;
    out.write_all(&count.to_le_bytes())?;
    out.write_all(&(central.len() as u32).to_le_bytes())?;
    out.write_all(&(offset as u32).to_le_bytes())?;
    out.write_all(&0u16.to_le_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(super::crc32(b"123456789", 0), 0xCBF4_3926);
    }

    #[test]
    fn names_are_checked() {
        assert!(super::validate_project_name("web-app_1").is_ok());
        for bad in ["a", "-x", "a b", "a/b"] {
            assert!(super::validate_project_name(bad).is_err(), "{bad}");
        }
    }
}
