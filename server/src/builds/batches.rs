//! Batch builds on the server: a build started from a buildspec with
//! `batch:` becomes a batch of builds (build-list, build-matrix,
//! build-graph). The batch's plan and every build in it are rows made in
//! one transaction when it starts; builds waiting for their dependencies
//! are `PENDING`, the others `QUEUED` for the normal queue (its concurrency
//! limit applies). Whenever a build of a batch ends, [`advance`] applies the
//! runner's rules (`nubo_runner::batch::step`): start what may start, skip
//! what never will, stop the rest on fast-fail, and end the batch. A timer
//! re-runs it for every open batch, so a restart or a missed wake-up only
//! delays it.

use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use nubo_runner::batch::{Batch, State};

use crate::builds::Running;
use crate::builds::{self, Project, StartBuild};
use crate::ctx::Ctx;
use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::User;

/// One build of a batch, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchEntry {
    pub identifier: String,
    pub build_id: String,
    pub status: String,
    pub depends_on: Vec<String>,
    pub ignore_failure: bool,
    pub reason: Option<String>,
}

/// A batch, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BuildBatch {
    pub id: String,
    /// The same id, for clients that started it with `POST …/builds`.
    pub batch_id: String,
    pub project: String,
    /// `build-list`, `build-matrix` or `build-graph`.
    pub kind: String,
    /// IN_PROGRESS, SUCCEEDED, FAILED or STOPPED.
    pub status: String,
    pub fast_fail: bool,
    pub combine_artifacts: bool,
    pub branch: String,
    pub commit: Option<String>,
    pub initiator: String,
    pub created_at: String,
    pub ended_at: Option<String>,
    pub reason: Option<String>,
    pub builds: Vec<BatchEntry>,
    #[serde(skip)]
    pub project_id: String,
    #[serde(skip)]
    pub created_at_ms: i64,
    #[serde(skip)]
    pub ended_at_ms: Option<i64>,
}

/// What a build of a batch carries besides an ordinary build's settings.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Child {
    pub buildspec: Option<String>,
    pub image: Option<String>,
    pub memory_mb: Option<u64>,
    pub cpus: Option<f64>,
    pub privileged_mode: bool,
    pub variables: Vec<(String, String)>,
}

type BatchRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<String>,
    String,
);

const SELECT: &str = "SELECT b.id, b.project_id, p.name, b.status, b.kind, b.branch, b.commit_sha,
        b.initiator, b.created_at, b.ended_at, b.reason, b.plan_json
    FROM build_batches b JOIN build_projects p ON p.id = b.project_id";

async fn view(pool: &SqlitePool, r: BatchRow) -> Result<BuildBatch> {
    let plan: Batch = serde_json::from_str(&r.11)
        .map_err(|e| Error::Internal(format!("a batch's plan does not read: {e}")))?;
    let children: Vec<(String, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, status, identifier, reason FROM builds WHERE batch_id = $1")
            .bind(&r.0)
            .fetch_all(pool)
            .await?;
    let builds = plan
        .builds
        .iter()
        .filter_map(|b| {
            let row = children
                .iter()
                .find(|c| c.2.as_deref() == Some(b.identifier.as_str()))?;
            Some(BatchEntry {
                identifier: b.identifier.clone(),
                build_id: row.0.clone(),
                status: row.1.clone(),
                depends_on: b.depend_on.clone(),
                ignore_failure: b.ignore_failure,
                reason: row.3.clone(),
            })
        })
        .collect();
    Ok(BuildBatch {
        batch_id: r.0.clone(),
        id: r.0,
        project_id: r.1,
        project: r.2,
        status: r.3,
        kind: r.4,
        branch: r.5,
        commit: r.6,
        initiator: r.7,
        created_at: rfc3339(r.8),
        created_at_ms: r.8,
        ended_at: r.9.map(rfc3339),
        ended_at_ms: r.9,
        reason: r.10,
        fast_fail: plan.fast_fail,
        combine_artifacts: plan.combine_artifacts,
        builds,
    })
}

pub async fn find(pool: &SqlitePool, id: &str) -> Result<Option<BuildBatch>> {
    let row: Option<BatchRow> = sqlx::query_as(&format!("{SELECT} WHERE b.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    match row {
        Some(r) => Ok(Some(view(pool, r).await?)),
        None => Ok(None),
    }
}

/// The batch, if `user` may see it (its project's owner, or an admin).
pub async fn batch_for(pool: &SqlitePool, user: &User, id: &str) -> Result<BuildBatch> {
    let batch = find(pool, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no build batch {id:?}")))?;
    let owner: String = sqlx::query_scalar("SELECT owner_id FROM build_projects WHERE id = $1")
        .bind(&batch.project_id)
        .fetch_one(pool)
        .await?;
    if owner == user.id || user.admin {
        Ok(batch)
    } else {
        Err(Error::NotFound(format!("no build batch {id:?}")))
    }
}

pub async fn list(pool: &SqlitePool, project: &Project, limit: i64) -> Result<Vec<BuildBatch>> {
    let rows: Vec<BatchRow> = sqlx::query_as(&format!(
        "{SELECT} WHERE b.project_id = $1 ORDER BY b.created_at DESC LIMIT $2"
    ))
    .bind(&project.id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        out.push(view(pool, r).await?);
    }
    Ok(out)
}

/// Starts a batch: the batch and all its builds in one transaction.
pub async fn start(
    pool: &SqlitePool,
    project: &Project,
    initiator: &User,
    req: &StartBuild,
    branch: &str,
    commit: Option<String>,
    plan: &Batch,
) -> Result<BuildBatch> {
    let start_env: Vec<(String, String)> =
        req.env.clone().unwrap_or_default().into_iter().collect();
    let id = format!("{}:batch-{}", project.name, new_id());
    let now = now_ms();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO build_batches (id, project_id, status, kind, plan_json, branch, commit_sha, initiator, created_at)
         VALUES ($1, $2, 'IN_PROGRESS', $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(&project.id)
    .bind(&plan.kind)
    .bind(serde_json::to_string(plan).unwrap_or_default())
    .bind(branch)
    .bind(&commit)
    .bind(&initiator.name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for b in &plan.builds {
        let number: i64 = sqlx::query_scalar(
            "UPDATE build_projects SET next_number = next_number + 1 WHERE id = $1 RETURNING next_number - 1",
        )
        .bind(&project.id)
        .fetch_one(&mut *tx)
        .await?;
        // A compute type's CPUs, at most this machine's (a container
        // engine refuses more than there are).
        let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let (memory_mb, cpus) = b
            .limits()
            .map(|(m, c)| (Some(m), Some(c.min(host_cpus))))
            .unwrap_or((None, None));
        let child = Child {
            buildspec: b.buildspec.clone(),
            image: b.image.clone(),
            memory_mb,
            cpus,
            privileged_mode: b.privileged_mode,
            variables: nubo_runner::local_batch::child_variables(b),
        };
        let status = if b.depend_on.is_empty() {
            "QUEUED"
        } else {
            "PENDING"
        };
        sqlx::query(
            "INSERT INTO builds (id, project_id, number, status, phases_json, branch, commit_sha, initiator,
                 env_json, queued_at, exported_json, batch_id, identifier, child_json)
             VALUES ($1, $2, $3, $4, '[]', $5, $6, $7, $8, $9, '[]', $10, $11, $12)",
        )
        .bind(format!("{}:{}", project.name, new_id()))
        .bind(&project.id)
        .bind(number)
        .bind(status)
        .bind(branch)
        .bind(&commit)
        .bind(&initiator.name)
        .bind(serde_json::to_string(&start_env).unwrap_or_default())
        .bind(now)
        .bind(&id)
        .bind(&b.identifier)
        .bind(serde_json::to_string(&child).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(find(pool, &id).await?.expect("just made"))
}

/// A build's batch settings, if it belongs to one.
pub async fn child_of(pool: &SqlitePool, build_id: &str) -> Result<Option<(String, Child)>> {
    let row: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT batch_id, child_json FROM builds WHERE id = $1")
            .bind(build_id)
            .fetch_optional(pool)
            .await?;
    Ok(match row {
        Some((Some(batch), json)) => Some((
            batch,
            json.and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
        )),
        _ => None,
    })
}

/// Moves a batch on: starts what may start, skips what never will, stops
/// the rest on fast-fail or when asked, and ends the batch when all is
/// done. Idempotent; every change is conditional on the state it expects.
pub async fn advance(ctx: &Ctx, running: &Running, batch_id: &str) -> Result<()> {
    let pool = &ctx.pool;
    let row: Option<(String, String, bool)> =
        sqlx::query_as("SELECT status, plan_json, stop_requested FROM build_batches WHERE id = $1")
            .bind(batch_id)
            .fetch_optional(pool)
            .await?;
    let Some((status, plan_json, stop_requested)) = row else {
        return Ok(());
    };
    if status != "IN_PROGRESS" {
        return Ok(());
    }
    let plan: Batch = serde_json::from_str(&plan_json)
        .map_err(|e| Error::Internal(format!("a batch's plan does not read: {e}")))?;
    let children: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, status, identifier FROM builds WHERE batch_id = $1")
            .bind(batch_id)
            .fetch_all(pool)
            .await?;
    let by_id = |identifier: &str| children.iter().find(|c| c.2.as_deref() == Some(identifier));
    let states: Vec<State> = plan
        .builds
        .iter()
        .map(|b| {
            by_id(&b.identifier)
                .map(|c| State::from_status(&c.1))
                .unwrap_or(State::Stopped)
        })
        .collect();
    let mut woke = false;
    let stop_one = |id: &str, reason: &str| {
        let (pool, id, reason) = (pool.clone(), id.to_string(), reason.to_string());
        async move {
            sqlx::query(
                "UPDATE builds SET status = 'STOPPED', ended_at = $1, reason = $2
                 WHERE id = $3 AND status IN ('PENDING', 'QUEUED')",
            )
            .bind(now_ms())
            .bind(reason)
            .bind(id)
            .execute(&pool)
            .await
        }
    };
    if stop_requested {
        let mut any_running = false;
        for c in &children {
            match c.1.as_str() {
                "PENDING" | "QUEUED" => {
                    stop_one(&c.0, "stopped by a user").await?;
                }
                "IN_PROGRESS" => {
                    any_running = true;
                    running.cancel(&c.0);
                }
                _ => {}
            }
        }
        if !any_running {
            end(pool, batch_id, "STOPPED", Some("stopped by a user")).await?;
        }
        return Ok(());
    }
    let step = nubo_runner::batch::step(&plan, &states);
    for i in &step.start {
        if let Some(c) = by_id(&plan.builds[*i].identifier) {
            let moved = sqlx::query(
                "UPDATE builds SET status = 'QUEUED', queued_at = $1 WHERE id = $2 AND status = 'PENDING'",
            )
            .bind(now_ms())
            .bind(&c.0)
            .execute(pool)
            .await?;
            woke |= moved.rows_affected() > 0;
        }
    }
    for (i, why) in &step.skip {
        if let Some(c) = by_id(&plan.builds[*i].identifier) {
            stop_one(&c.0, why).await?;
        }
    }
    for i in &step.stop {
        if let Some(c) = by_id(&plan.builds[*i].identifier) {
            running.cancel(&c.0);
        }
    }
    if let Some(done) = step.done {
        end(pool, batch_id, done, None).await?;
    }
    if woke {
        running.wake.notify_one();
    }
    Ok(())
}

async fn end(pool: &SqlitePool, id: &str, status: &str, reason: Option<&str>) -> Result<()> {
    sqlx::query(
        "UPDATE build_batches SET status = $1, ended_at = $2, reason = $3 WHERE id = $4 AND status = 'IN_PROGRESS'",
    )
    .bind(status)
    .bind(now_ms())
    .bind(reason)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stops a batch: its waiting builds at once, its running ones at their
/// next check; answers the batch once it has ended (or after 5 s).
pub async fn stop(ctx: &Ctx, running: &Running, batch: &BuildBatch) -> Result<BuildBatch> {
    sqlx::query(
        "UPDATE build_batches SET stop_requested = TRUE WHERE id = $1 AND status = 'IN_PROGRESS'",
    )
    .bind(&batch.id)
    .execute(&ctx.pool)
    .await?;
    for _ in 0..100 {
        advance(ctx, running, &batch.id).await?;
        let b = find(&ctx.pool, &batch.id).await?.expect("exists");
        if b.status != "IN_PROGRESS" {
            return Ok(b);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(find(&ctx.pool, &batch.id).await?.expect("exists"))
}

/// Every open batch moved on (the backstop of the wake-ups).
pub async fn advance_all(ctx: &Ctx, running: &Running) -> Result<()> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM build_batches WHERE status = 'IN_PROGRESS'")
            .fetch_all(&ctx.pool)
            .await?;
    for id in ids {
        advance(ctx, running, &id).await?;
    }
    Ok(())
}

/// The plan of a batch buildspec for this start, if the buildspec the
/// project would run is one: the project's inline buildspec, or its file
/// at the branch (or commit) in the repository. Answers the plan and the
/// commit the batch's builds will all check out.
pub async fn plan_for(
    dir: &std::path::Path,
    project: &Project,
    branch: &str,
    commit: Option<&str>,
) -> Result<Option<(Batch, Option<String>)>> {
    let rev = match commit {
        Some(c) => c.to_string(),
        None => format!("refs/heads/{branch}"),
    };
    let resolved = git_out(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .await
    .map(|s| s.trim().to_string());
    let text = match &project.inline_buildspec {
        Some(t) => Some(t.clone()),
        None => match &resolved {
            Some(sha) => {
                git_out(
                    dir,
                    &[
                        "cat-file",
                        "blob",
                        &format!("{sha}:{}", project.buildspec_path),
                    ],
                )
                .await
            }
            None => None,
        },
    };
    let Some(text) = text.filter(|t| t.len() <= 1 << 20) else {
        return Ok(None);
    };
    let (spec, _) = nubo_runner::buildspec::parse(&text);
    Ok(spec
        .and_then(|s| s.batch)
        .map(|b| (b, resolved.filter(|s| !s.is_empty()))))
}

async fn git_out(dir: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts a build or, when the buildspec is a batch one, a batch. Answers
/// the JSON the API shows for it.
pub async fn start_any(
    ctx: &Ctx,
    running: &Running,
    project: &Project,
    initiator: &User,
    req: StartBuild,
) -> Result<Started> {
    let branch = req
        .branch
        .clone()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| project.branch.clone());
    // Checked before git sees them.
    builds::check_start(&branch, &req)?;
    let plan = match crate::repos::find(&ctx.pool, &project.repo).await? {
        Some(repo) => {
            let (dir, _) = crate::repos::working_copy(ctx, &running.repos, &repo, false).await?;
            plan_for(&dir, project, &branch, req.commit.as_deref()).await?
        }
        None => None,
    };
    if let Some((plan, commit)) = plan {
        let batch = start(&ctx.pool, project, initiator, &req, &branch, commit, &plan).await?;
        advance(ctx, running, &batch.id).await?;
        running.wake.notify_one();
        return Ok(Started::Batch(Box::new(
            find(&ctx.pool, &batch.id).await?.expect("made"),
        )));
    }
    let build = builds::start(&ctx.pool, project, initiator, req).await?;
    running.wake.notify_one();
    Ok(Started::Build(Box::new(build)))
}

/// A started build or batch.
pub enum Started {
    Build(Box<builds::Build>),
    Batch(Box<BuildBatch>),
}
