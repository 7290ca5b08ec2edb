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

mod apart;
pub mod api;
pub mod artifacts;
pub mod batches;
pub mod cli;
pub mod container;
pub mod external;
mod inputs;
pub mod pages;
pub mod run;
mod source;
mod start;
mod started_by;
pub mod worker;

pub use artifacts::zip_dirs;
pub use start::{check_start, start, Input, StartBuild};
use started_by::started_by_pipeline;
pub use started_by::PipelineLink;
pub use worker::{recover, spawn_workers, stop, Running};

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::ctx::Ctx;
use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::User;
use crate::keys::MasterKey;

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
    /// The pipeline execution that started it, if one did.
    pub pipeline: Option<PipelineLink>,
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
    env_json: String,
}

const BUILD_SELECT: &str =
    "SELECT b.id, p.name AS project, b.project_id, b.number, b.status, b.current_phase,
        b.phases_json, b.branch, b.commit_sha, b.initiator, b.queued_at, b.started_at, b.ended_at,
        b.exported_json, b.artifacts, b.reason, b.reports_json, b.batch_id, b.identifier, b.env_json
    FROM builds b JOIN build_projects p ON p.id = b.project_id";

fn build_from(r: BuildRow) -> Build {
    Build {
        pipeline: started_by_pipeline(&r.env_json),
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

/// Every build project (the CLI's list), by name.
pub async fn list_all_projects(pool: &SqlitePool) -> Result<Vec<Project>> {
    let rows: Vec<ProjectRow> = sqlx::query_as(&format!("{PROJECT_SELECT} ORDER BY lower(p.name)"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(project_from).collect())
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

pub(crate) fn validate_env(env: &[(String, String)]) -> Result<()> {
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
    validate_project_name(&req.name).map_err(|e| e.on_field("name"))?;
    let repo = crate::repos::authorize(pool, &req.repo, owner, "codecommit:GitPull").await?;
    let timeout = req.timeout_minutes.unwrap_or(60);
    if !(5..=480).contains(&timeout) {
        return Err(Error::invalid(
            "timeout_minutes",
            "timeout_minutes must be between 5 and 480",
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
            return Err(Error::invalid(
                "inline_buildspec",
                format!("the inline buildspec is not valid: {first}"),
            ));
        }
    }
    if let Some(image) = &req.image {
        // Container builds need the engine and the image, now.
        crate::engine::available(settings)
            .await
            .map_err(|e| e.on_field("image"))?;
        crate::engine::image_available(settings, image)
            .await
            .map_err(|e| e.on_field("image"))?;
    }
    let path = req
        .buildspec_path
        .clone()
        .unwrap_or_else(|| "buildspec.yml".into());
    if path.starts_with('/') || path.split('/').any(|p| p == "..") {
        return Err(Error::invalid(
            "buildspec_path",
            "buildspec_path must be a path inside the repository",
        ));
    }
    let env: Vec<(String, String)> = req.env.clone().unwrap_or_default().into_iter().collect();
    validate_env(&env).map_err(|e| e.on_field("env"))?;
    if req.memory_mb.is_some_and(|m| m < 64)
        || req
            .cpus
            .is_some_and(|c| c.is_nan() || c <= 0.0 || c > 1024.0)
        || req.pids.is_some_and(|p| p < 16)
    {
        return Err(Error::invalid(
            "memory_mb",
            "limits: memory_mb at least 64, cpus above 0, pids at least 16",
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

pub async fn delete_project(ctx: &Ctx, running: &Running, project: &Project) -> Result<()> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM builds WHERE project_id = $1")
        .bind(&project.id)
        .fetch_all(&ctx.pool)
        .await?;
    for id in &ids {
        running.cancel(id);
    }
    sqlx::query("DELETE FROM build_projects WHERE id = $1")
        .bind(&project.id)
        .execute(&ctx.pool)
        .await?;
    for id in ids {
        let _ = std::fs::remove_dir_all(build_dir(&ctx.settings.data_dir, &id));
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

/// A line or a change of a running build, for live viewers.
#[derive(Debug, Clone)]
pub enum LogEvent {
    /// The line's index in the log (from 0) and its text.
    Line(u64, String),
    Phase(PhaseInfo),
    End(String),
}
