//! The deployment engine: a deployment's state machine in the database.
//! A deployment starts when its group has no other one running, then
//! takes its targets in batches its configuration allows (AWS's minimum
//! healthy rule), gives each target one command per lifecycle event in
//! order, and ends Succeeded or Failed; a failure in a group with
//! automatic rollback starts a new deployment of the last good revision.
//! The agents' calls (`dispatch`, `ack`, `complete`) and a periodic tick
//! (offline targets, queued deployments, restarts) move it.

use std::sync::Arc;
use std::time::Duration;

use nubo_agent::deploy::wire;
use nubo_runner::appspec::Event;

use super::revisions::{Checked, Revision};
use super::{agents, Application, Group};
use crate::ctx::Ctx;
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use crate::identity::accounts::User;

#[derive(Default)]
pub struct Engine {
    /// Where managed targets' server sockets go to be served (set by
    /// `nubo serve`), and which are served by this process.
    pub listeners:
        std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<tokio::net::UnixListener>>>,
    pub bound: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Round robin over the targets behind an app URL.
    pub next_target: std::sync::atomic::AtomicUsize,
    /// Wakes the engine's loop.
    pub wake: tokio::sync::Notify,
    /// Wakes agents waiting in a poll (new commands may be there).
    pub commands: tokio::sync::Notify,
    /// One state change at a time.
    moving: tokio::sync::Mutex<()>,
}

/// Runs the engine until the server stops.
pub fn spawn(ctx: Ctx, engine: Arc<Engine>, locks: crate::repos::Locks) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = tick(&ctx, &engine).await {
                tracing::error!(error = %e, "deployment engine tick failed");
            }
            if let Err(e) = super::pipeline::serve_actions(&ctx, &engine, &locks).await {
                tracing::error!(error = %e, "pipeline deploy actions failed");
            }
            let listeners = engine.listeners.lock().expect("listeners").clone();
            if let Some(tx) = listeners {
                if let Err(e) = super::managed::reconcile(&ctx, &tx, &engine.bound).await {
                    tracing::error!(error = %e, "managed targets could not be started");
                }
            }
            tokio::select! {
                _ = engine.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
}

/// `d-` and nine letters or digits, as AWS names deployments.
fn deployment_id() -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let r: [u8; 9] = rand::random();
    let tail: String = r
        .iter()
        .map(|b| ABC[*b as usize % ABC.len()] as char)
        .collect();
    format!("d-{tail}")
}

/// Who (or what) starts a deployment.
pub enum Creator<'a> {
    User(&'a User),
    /// An automatic rollback of the deployment named.
    Rollback(&'a str),
    /// A pipeline's Deploy action, as the pipeline's user.
    Pipeline {
        user: &'a User,
        execution: &'a str,
        action: &'a str,
    },
}

/// Creates a deployment of a checked revision to the group's targets.
pub async fn create(
    ctx: &Ctx,
    engine: &Engine,
    app: &Application,
    group: &Group,
    checked: &Checked,
    creator: Creator<'_>,
) -> Result<String> {
    if !group.queue {
        let busy: Option<String> = sqlx::query_scalar(
            "SELECT id FROM deployments WHERE group_id = $1 AND status IN ('Created', 'Queued', 'InProgress') LIMIT 1",
        )
        .bind(&group.id)
        .fetch_optional(&ctx.pool)
        .await?;
        if let Some(other) = busy {
            return Err(Error::Conflict(format!(
                "deployment {other} is running in {}; this group refuses a second one (queue: false)",
                group.name
            )));
        }
    }
    // A blue/green deployment picks its targets (a side) when it starts.
    let targets = if group.blue_green.is_some() {
        vec![]
    } else {
        agents::select(&ctx.pool, &app.owner_id, app.owner_admin, &group.tags).await?
    };
    let id = deployment_id();
    let now = now_ms();
    let (kind, by, rollback_of, execution, action) = match &creator {
        Creator::User(u) => (
            "user",
            Some(u.id.clone()),
            None,
            None::<String>,
            None::<String>,
        ),
        Creator::Rollback(of) => ("codeDeployRollback", None, Some(of.to_string()), None, None),
        Creator::Pipeline {
            user,
            execution,
            action,
        } => (
            "pipeline",
            Some(user.id.clone()),
            None,
            Some(execution.to_string()),
            Some(action.to_string()),
        ),
    };
    let mut tx = ctx.pool.begin().await?;
    sqlx::query(
        "INSERT INTO deployments (id, group_id, status, revision_json, revision_label, bundle_sha256, bundle_size,
             creator, created_by, rollback_of, pipeline_execution_id, pipeline_action, created_at, phase)
         VALUES ($1, $2, 'Created', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&id)
    .bind(&group.id)
    .bind(serde_json::to_string(&checked.revision).unwrap_or_default())
    .bind(checked.revision.label())
    .bind(&checked.sha256)
    .bind(checked.size)
    .bind(kind)
    .bind(by)
    .bind(&rollback_of)
    .bind(execution)
    .bind(action)
    .bind(now)
    .bind(group.blue_green.as_ref().map(|_| super::blue_green::PROVISION))
    .execute(&mut *tx)
    .await?;
    for (i, t) in targets.iter().enumerate() {
        sqlx::query(
            "INSERT INTO deployment_targets (deployment_id, target_id, position, status) VALUES ($1, $2, $3, 'Pending')",
        )
        .bind(&id)
        .bind(&t.id)
        .bind(i as i64)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(of) = &rollback_of {
        sqlx::query("UPDATE deployments SET rolled_back_by = $1 WHERE id = $2")
            .bind(&id)
            .bind(of)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    tracing::info!(deployment = %id, group = %group.name, targets = targets.len(), "deployment created");
    engine.wake.notify_one();
    Ok(id)
}

#[derive(sqlx::FromRow)]
pub(super) struct Row {
    pub id: String,
    pub group_id: String,
    pub status: String,
    pub creator: String,
    pub revision_json: String,
    /// A blue/green deployment's phase.
    pub phase: Option<String>,
}

async fn load(ctx: &Ctx, id: &str) -> Result<Option<Row>> {
    Ok(sqlx::query_as(
        "SELECT id, group_id, status, creator, revision_json, phase FROM deployments WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&ctx.pool)
    .await?)
}

/// Moves every open deployment; fails commands of targets gone offline.
pub async fn tick(ctx: &Ctx, engine: &Engine) -> Result<()> {
    let stale = now_ms() - agents::OFFLINE_AFTER_MS;
    let lost: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.id, t.name FROM deployment_commands c JOIN deploy_targets t ON t.id = c.target_id
         WHERE c.status IN ('Dispatched', 'InProgress') AND t.last_seen_at < $1",
    )
    .bind(stale)
    .fetch_all(&ctx.pool)
    .await?;
    for (cmd, name) in lost {
        let message = format!(
            "the target {name} stopped answering (offline for more than {} s) during this event",
            agents::OFFLINE_AFTER_MS / 1000
        );
        super::commands::finish_command(
            ctx,
            engine,
            &cmd,
            false,
            wire::code::UNKNOWN,
            None,
            &message,
            "",
        )
        .await?;
    }
    let open: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM deployments WHERE status IN ('Created', 'Queued', 'InProgress') ORDER BY created_at",
    )
    .fetch_all(&ctx.pool)
    .await?;
    for id in open {
        advance(ctx, engine, &id).await?;
    }
    Ok(())
}

/// Moves one deployment as far as it can go now.
pub async fn advance(ctx: &Ctx, engine: &Engine, id: &str) -> Result<()> {
    let _one = engine.moving.lock().await;
    let Some(d) = load(ctx, id).await? else {
        return Ok(());
    };
    let now = now_ms();
    if matches!(d.status.as_str(), "Created" | "Queued") {
        let ahead: Option<String> = sqlx::query_scalar(
            "SELECT id FROM deployments WHERE group_id = $1 AND id <> $2
               AND (status = 'InProgress' OR (status IN ('Created', 'Queued') AND created_at < (SELECT created_at FROM deployments WHERE id = $2)))
             LIMIT 1",
        )
        .bind(&d.group_id)
        .bind(&d.id)
        .fetch_optional(&ctx.pool)
        .await?;
        if ahead.is_some() {
            if d.status == "Created" {
                set_status(ctx, &d.id, "Queued", None).await?;
            }
            return Ok(());
        }
        sqlx::query("UPDATE deployments SET status = 'InProgress', started_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&d.id)
            .execute(&ctx.pool)
            .await?;
    } else if d.status != "InProgress" {
        return Ok(());
    }
    let group = super::group_by_id(&ctx.pool, &d.group_id).await?;
    if group.blue_green.is_some() && d.phase.is_some() {
        return super::blue_green::advance(ctx, engine, &d, &group).await;
    }
    let rule = super::config(&ctx.pool, &group.config).await?;
    let targets: Vec<(String, String)> = sqlx::query_as(
        "SELECT target_id, status FROM deployment_targets WHERE deployment_id = $1 ORDER BY position",
    )
    .bind(&d.id)
    .fetch_all(&ctx.pool)
    .await?;
    let n = targets.len() as i64;
    let count = |s: &str| targets.iter().filter(|(_, st)| st == s).count() as i64;
    let (failed, succeeded, running) = (count("Failed"), count("Succeeded"), count("InProgress"));
    let pending: Vec<&String> = targets
        .iter()
        .filter(|(_, s)| s == "Pending")
        .map(|(t, _)| t)
        .collect();
    let healthy = rule.of(n);
    if n == 0 {
        return fail(
            ctx,
            engine,
            &d,
            &group,
            "no targets match the group's tags (or none is enrolled for the application's owner)",
        )
        .await;
    }
    if healthy > n {
        return fail(
            ctx,
            engine,
            &d,
            &group,
            &format!(
                "{} needs {healthy} healthy targets, but the group has {n}",
                group.config
            ),
        )
        .await;
    }
    if healthy > 0 && n - failed < healthy {
        return fail(
            ctx,
            engine,
            &d,
            &group,
            &format!(
                "{failed} of {n} targets failed; {} needs at least {healthy} healthy",
                group.config
            ),
        )
        .await;
    }
    if pending.is_empty() && running == 0 {
        if succeeded == 0 {
            return fail(
                ctx,
                engine,
                &d,
                &group,
                "the deployment failed on every target",
            )
            .await;
        }
        return succeed(ctx, engine, &d).await;
    }
    let batch = (n - healthy).max(1);
    let room = (batch - running).max(0) as usize;
    for t in pending.into_iter().take(room) {
        start_target(ctx, &d.id, t).await?;
        engine.commands.notify_waiters();
    }
    Ok(())
}

pub(super) async fn set_status(
    ctx: &Ctx,
    id: &str,
    status: &str,
    message: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE deployments SET status = $1, message = COALESCE($2, message) WHERE id = $3",
    )
    .bind(status)
    .bind(message)
    .bind(id)
    .execute(&ctx.pool)
    .await?;
    Ok(())
}

async fn start_target(ctx: &Ctx, deployment: &str, target: &str) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("UPDATE deployment_targets SET status = 'InProgress', started_at = $1 WHERE deployment_id = $2 AND target_id = $3")
        .bind(now_ms())
        .bind(deployment)
        .bind(target)
        .execute(&mut *tx)
        .await?;
    for (i, e) in Event::IN_PLACE.iter().enumerate() {
        sqlx::query(
            "INSERT INTO deployment_commands (id, deployment_id, target_id, event, position, status) VALUES ($1, $2, $3, $4, $5, 'Pending')",
        )
        .bind(new_id())
        .bind(deployment)
        .bind(target)
        .bind(e.name())
        .bind(i as i64)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Ends the deployment: what has not started is skipped.
pub(super) async fn close(ctx: &Ctx, id: &str, status: &str, message: Option<&str>) -> Result<()> {
    let now = now_ms();
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("UPDATE deployments SET status = $1, message = COALESCE($2, message), finished_at = $3 WHERE id = $4")
        .bind(status)
        .bind(message)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE deployment_targets SET status = 'Skipped', finished_at = $1 WHERE deployment_id = $2 AND status = 'Pending'")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE deployment_commands SET status = 'Skipped' WHERE deployment_id = $1 AND status IN ('Pending', 'Held', 'Dispatched')")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn succeed(ctx: &Ctx, engine: &Engine, d: &Row) -> Result<()> {
    close(ctx, &d.id, "Succeeded", None).await?;
    let label = serde_json::from_str::<Revision>(&d.revision_json)
        .map(|r| r.label())
        .unwrap_or_default();
    sqlx::query(
        "UPDATE deploy_targets SET revision = $1 WHERE id IN
           (SELECT target_id FROM deployment_targets WHERE deployment_id = $2 AND status = 'Succeeded'
              AND (role IS NULL OR role = 'green'))",
    )
    .bind(&label)
    .bind(&d.id)
    .execute(&ctx.pool)
    .await?;
    tracing::info!(deployment = %d.id, "deployment succeeded");
    engine.wake.notify_one();
    Ok(())
}

pub(super) async fn fail(
    ctx: &Ctx,
    engine: &Engine,
    d: &Row,
    group: &Group,
    why: &str,
) -> Result<()> {
    close(ctx, &d.id, "Failed", Some(why)).await?;
    tracing::info!(deployment = %d.id, reason = why, "deployment failed");
    engine.wake.notify_one();
    // Blue/green rolls back by switching traffic back, not by redeploying.
    if !group.auto_rollback || d.creator == "codeDeployRollback" || group.blue_green.is_some() {
        return Ok(());
    }
    let good: Option<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, revision_json, bundle_sha256, bundle_size FROM deployments
         WHERE group_id = $1 AND status = 'Succeeded' ORDER BY finished_at DESC LIMIT 1",
    )
    .bind(&group.id)
    .fetch_optional(&ctx.pool)
    .await?;
    let Some((_, json, sha256, size)) = good else {
        set_status(ctx, &d.id, "Failed", Some(&format!("{why}; no earlier revision succeeded in this group, so there is nothing to roll back to"))).await?;
        return Ok(());
    };
    let app = super::application_by_id(&ctx.pool, &group.app_id).await?;
    let revision: Revision =
        serde_json::from_str(&json).map_err(|e| Error::Internal(e.to_string()))?;
    let checked = Checked {
        revision,
        sha256,
        size,
    };
    // `create` only inserts, so it may run under `moving`'s guard.
    let id = create(ctx, engine, &app, group, &checked, Creator::Rollback(&d.id)).await?;
    tracing::info!(deployment = %d.id, rollback = %id, "automatic rollback started");
    Ok(())
}

/// Stops a deployment: nothing new starts; the event running on a target
/// finishes there (a script is not killed halfway).
pub async fn stop(ctx: &Ctx, engine: &Engine, id: &str) -> Result<()> {
    let _one = engine.moving.lock().await;
    let d = load(ctx, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no deployment {id}")))?;
    if !matches!(d.status.as_str(), "Created" | "Queued" | "InProgress") {
        return Err(Error::Conflict(format!(
            "deployment {id} has ended ({})",
            d.status
        )));
    }
    close(ctx, id, "Stopped", Some("stopped by a user")).await?;
    let group = super::group_by_id(&ctx.pool, &d.group_id).await?;
    super::blue_green::stopped(ctx, &group).await?;
    engine.wake.notify_one();
    Ok(())
}

/// Checks the revision as `user` and deploys it to APP/GROUP.
pub async fn deploy(
    ctx: &Ctx,
    engine: &Engine,
    locks: &crate::repos::Locks,
    user: &User,
    (app, group): (&str, &str),
    rev: &Revision,
) -> Result<String> {
    let (a, g) = super::group_for(&ctx.pool, user, app, group).await?;
    let checked = super::revisions::check(ctx, locks, user, rev).await?;
    create(ctx, engine, &a, &g, &checked, Creator::User(user)).await
}

/// Redeploys an earlier deployment's revision (`to`; by default the last
/// that succeeded) as a new deployment; answers it and the one redeployed.
pub async fn redeploy(
    ctx: &Ctx,
    engine: &Engine,
    locks: &crate::repos::Locks,
    user: &User,
    (app, group): (&str, &str),
    to: Option<&str>,
) -> Result<(String, super::view::Deployment)> {
    let (_, g) = super::group_for(&ctx.pool, user, app, group).await?;
    let earlier = super::view::list(&ctx.pool, &g, 200).await?;
    let pick = match to {
        Some(id) => earlier
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| Error::NotFound(format!("no deployment {id} in {}", g.name)))?,
        None => earlier
            .into_iter()
            .find(|d| d.status == "Succeeded")
            .ok_or_else(|| {
                Error::Unprocessable(format!("no deployment of {} has succeeded yet", g.name))
            })?,
    };
    let id = deploy(ctx, engine, locks, user, (app, group), &pick.revision).await?;
    Ok((id, pick))
}
