//! The pipeline engine: each tick moves every open execution as far as it
//! can — enter the next stage when its lock is free (SUPERSEDED, QUEUED;
//! PARALLEL has no locks), start the next run-order group, follow builds
//! and approvals, end the stage and the execution. All state is in the
//! database; ticks come from a wake-up (a push, an approval, an API call)
//! or every half second, and one runs at a time. After a restart the
//! first tick carries on: builds cut by the restart are failed by the
//! builds' recovery, which fails their actions here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nubo_runner::pipeline::{substitute, Action, Runs};

use super::conditions::{self, Entry, Failure};
use super::events::{self, Subject};
use super::executions::{self, Row};
use super::supersede;
use crate::builds;
use crate::ctx::Ctx;
use crate::db::now_ms;
use crate::error::Result;

/// How long an approval waits for an answer (CodePipeline's 7 days).
pub const APPROVAL_TIMEOUT_MS: i64 = 7 * 24 * 3_600_000;

/// The engine's registry: its wake-up and its one-tick-at-a-time lock.
#[derive(Default)]
pub struct Engine {
    pub wake: tokio::sync::Notify,
    ticking: tokio::sync::Mutex<()>,
}

/// Runs the engine until the server stops.
pub fn spawn(ctx: Ctx, running: Arc<builds::Running>, engine: Arc<Engine>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = tick(&ctx, &running, &engine).await {
                tracing::error!(error = %e, "pipeline engine tick failed");
            }
            tokio::select! {
                _ = engine.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    });
}

/// Moves every open execution as far as it can.
pub async fn tick(ctx: &Ctx, running: &builds::Running, engine: &Engine) -> Result<()> {
    let _one = engine.ticking.lock().await;
    for row in executions::open(&ctx.pool).await? {
        // Several steps per tick: a source stage and the next stage's
        // start need no waiting.
        let mut id = Some(row.id);
        for _ in 0..8 {
            let Some(current) = id.take() else { break };
            let Some(row) = executions::load(&ctx.pool, &current).await? else {
                break;
            };
            if !matches!(row.status.as_str(), "InProgress" | "Stopping") {
                break;
            }
            match advance(ctx, running, &row).await {
                Ok(true) => id = Some(current),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(execution = %row.id, error = %e, "a pipeline step failed");
                    end(
                        ctx,
                        &row.id,
                        "Failed",
                        &format!("the engine failed: {}", e.public_message()),
                    )
                    .await?;
                }
            }
        }
    }
    Ok(())
}

async fn end(ctx: &Ctx, id: &str, status: &str, reason: &str) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    let done = sqlx::query(
        "UPDATE pipeline_executions SET status = $1, reason = $2, waiting = NULL, finished_at = $3
         WHERE id = $4 AND status IN ('InProgress', 'Stopping')",
    )
    .bind(status)
    .bind(reason)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() > 0 {
        if let Some(row) = executions::load(&mut *tx, id).await? {
            events::record_in(&mut tx, ctx, &row, Subject::Execution, status, Some(reason)).await?;
        }
    }
    tx.commit().await?;
    tracing::info!(execution = %id, status, reason, "pipeline execution ended");
    Ok(())
}

async fn set_waiting(ctx: &Ctx, id: &str, why: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE pipeline_executions SET waiting = $1 WHERE id = $2")
        .bind(why)
        .bind(id)
        .execute(&ctx.pool)
        .await?;
    Ok(())
}

pub(super) async fn set_action(
    ctx: &Ctx,
    row: &Row,
    ai: usize,
    status: &str,
    summary: Option<&str>,
    build: Option<&str>,
) -> Result<()> {
    let now = now_ms();
    let done = status != "InProgress";
    let before: Option<Option<String>> = sqlx::query_scalar(
        "SELECT status FROM pipeline_actions WHERE execution_id = $1 AND stage_index = $2 AND action_index = $3",
    )
    .bind(&row.id)
    .bind(row.stage_index as i64)
    .bind(ai as i64)
    .fetch_optional(&ctx.pool)
    .await?;
    // The change and its event in one transaction (one sync), writing
    // first: a read-then-write transaction can fail under SQLite when
    // another connection writes in between.
    let mut tx = ctx.pool.begin().await?;
    sqlx::query(
        "UPDATE pipeline_actions SET status = $1, summary = COALESCE($2, summary), build_id = COALESCE($3, build_id),
             started_at = COALESCE(started_at, $4), finished_at = CASE WHEN $5 THEN $4 ELSE NULL END
         WHERE execution_id = $6 AND stage_index = $7 AND action_index = $8",
    )
    .bind(status)
    .bind(summary)
    .bind(build)
    .bind(now)
    .bind(done)
    .bind(&row.id)
    .bind(row.stage_index as i64)
    .bind(ai as i64)
    .execute(&mut *tx)
    .await?;
    if before.flatten().as_deref() != Some(status) {
        let subject = Subject::Action(row.stage_index, ai);
        events::record_in(&mut tx, ctx, row, subject, status, summary).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn save_variables(
    ctx: &Ctx,
    row: &Row,
    ns: &str,
    values: BTreeMap<String, String>,
) -> Result<()> {
    let mut vars = executions::load(&ctx.pool, &row.id)
        .await?
        .map(|r| r.variables)
        .unwrap_or_default();
    vars.insert(ns.to_string(), values);
    sqlx::query("UPDATE pipeline_executions SET variables_json = $1 WHERE id = $2")
        .bind(serde_json::to_string(&vars).unwrap_or_default())
        .bind(&row.id)
        .execute(&ctx.pool)
        .await?;
    Ok(())
}

/// One step of one execution; answers whether it moved (worth another step).
async fn advance(ctx: &Ctx, running: &builds::Running, row: &Row) -> Result<bool> {
    let stages = &row.declaration.stages;
    let Some(stage) = stages.get(row.stage_index) else {
        end(ctx, &row.id, "Succeeded", "every stage succeeded").await?;
        return Ok(false);
    };
    if !row.entered {
        if row.status == "Stopping" {
            end(ctx, &row.id, "Stopped", "stopped").await?;
            return Ok(false);
        }
        return enter(ctx, row, &stage.name).await;
    }
    let stored = executions::actions(&ctx.pool, &row.id, row.stage_index).await?;
    // Follow what runs.
    let mut moved = false;
    for (ai, action) in stage.actions.iter().enumerate() {
        let state = stored.get(&ai).cloned().unwrap_or_default();
        if state.status.as_deref() == Some("InProgress") {
            moved |= follow(ctx, row, ai, action, &state).await?;
        }
    }
    let stored = executions::actions(&ctx.pool, &row.id, row.stage_index).await?;
    let status = |ai: usize| stored.get(&ai).and_then(|a| a.status.clone());
    let running_now =
        (0..stage.actions.len()).any(|ai| status(ai).as_deref() == Some("InProgress"));
    let failed = (0..stage.actions.len()).find(|ai| status(*ai).as_deref() == Some("Failed"));
    if let (Some(ai), false) = (failed, running_now) {
        let why = stored
            .get(&ai)
            .and_then(|a| a.summary.clone())
            .unwrap_or_default();
        let reason = format!(
            "stage {} failed: {}: {why}",
            stage.name, stage.actions[ai].name
        );
        let subject = Subject::Stage(row.stage_index);
        events::record(ctx, row, subject, "Failed", Some(&reason)).await?;
        match conditions::on_failure(ctx, row, stage).await? {
            Failure::Retried => return Ok(true),
            Failure::Fails(more) => end(ctx, &row.id, "Failed", &format!("{reason}{more}")).await?,
        }
        return Ok(false);
    }
    if row.status == "Stopping" {
        if !running_now {
            end(ctx, &row.id, "Stopped", "stopped").await?;
        }
        return Ok(false);
    }
    if failed.is_some() {
        return Ok(moved);
    }
    // The lowest run order with work left.
    let next = stage
        .actions
        .iter()
        .enumerate()
        .filter(|(ai, _)| status(*ai).as_deref() != Some("Succeeded"))
        .map(|(_, a)| a.run_order)
        .min();
    let Some(order) = next else {
        if let Some(why) = conditions::on_success(ctx, row, stage).await? {
            let subject = Subject::Stage(row.stage_index);
            events::record(ctx, row, subject, "Failed", Some(&why)).await?;
            end(ctx, &row.id, "Failed", &why).await?;
            return Ok(false);
        }
        let mut tx = ctx.pool.begin().await?;
        sqlx::query("UPDATE pipeline_executions SET stage_index = stage_index + 1, entered = FALSE, waiting = NULL WHERE id = $1")
            .bind(&row.id)
            .execute(&mut *tx)
            .await?;
        let subject = Subject::Stage(row.stage_index);
        events::record_in(&mut tx, ctx, row, subject, "Succeeded", None).await?;
        tx.commit().await?;
        return Ok(true);
    };
    for (ai, action) in stage.actions.iter().enumerate() {
        if action.run_order == order && status(ai).is_none() {
            begin(ctx, running, row, ai, action).await?;
            moved = true;
        }
    }
    Ok(moved)
}

/// Enters the stage if its lock allows (SUPERSEDED and QUEUED: one
/// execution per stage; PARALLEL: no lock). Under SUPERSEDED an older
/// execution waiting for the same stage is superseded by this one.
async fn enter(ctx: &Ctx, row: &Row, stage: &str) -> Result<bool> {
    let mode = row.declaration.execution_mode.as_str();
    if mode != "PARALLEL" {
        if mode == "SUPERSEDED" {
            let older: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM pipeline_executions
                 WHERE pipeline_id = $1 AND status = 'InProgress' AND NOT entered AND stage_index = $2 AND number < $3",
            )
            .bind(&row.pipeline_id)
            .bind(row.stage_index as i64)
            .bind(row.number)
            .fetch_all(&ctx.pool)
            .await?;
            for id in older {
                let why = format!(
                    "superseded by execution #{} while waiting for stage {stage}",
                    row.number
                );
                supersede::superseded(ctx, &id, &why, "AND NOT entered").await?;
            }
        }
        let held: Option<(String, i64)> = sqlx::query_as(
            "SELECT id, number FROM pipeline_executions WHERE pipeline_id = $1 AND id != $2
                 AND status IN ('InProgress', 'Stopping') AND stage_index = $3 AND entered
                 ORDER BY number LIMIT 1",
        )
        .bind(&row.pipeline_id)
        .bind(&row.id)
        .bind(row.stage_index as i64)
        .fetch_optional(&ctx.pool)
        .await?;
        let mut holder = held.as_ref().map(|(_, n)| *n);
        // Better than AWS: an older execution that only waits at approvals
        // marked `Supersede: true` is replaced by this newer one, so an old
        // commit is not promoted by accident.
        if let Some((id, n)) = &held {
            if mode == "SUPERSEDED"
                && *n < row.number
                && supersede::at_approval(ctx, id, row, stage).await?
            {
                holder = None;
            }
        }
        let older_waiting: Option<i64> = sqlx::query_scalar(
            "SELECT number FROM pipeline_executions WHERE pipeline_id = $1 AND status = 'InProgress'
                 AND NOT entered AND stage_index = $2 AND number < $3 ORDER BY number LIMIT 1",
        )
        .bind(&row.pipeline_id)
        .bind(row.stage_index as i64)
        .bind(row.number)
        .fetch_optional(&ctx.pool)
        .await?;
        let blocked_by = holder.or(older_waiting);
        if let Some(n) = blocked_by {
            let why = if holder.is_some() {
                format!("waiting for execution #{n} to leave stage {stage}")
            } else {
                format!("queued behind execution #{n} for stage {stage}")
            };
            if row.waiting.as_deref() != Some(why.as_str()) {
                set_waiting(ctx, &row.id, Some(&why)).await?;
            }
            return Ok(false);
        }
    }
    if row.stage_index > 0 {
        if let Some((reason, by)) =
            super::transitions::disabled(&ctx.pool, &row.pipeline_id, stage).await?
        {
            let why = format!("the transition into stage {stage} is disabled by {by}: {reason}");
            if row.waiting.as_deref() != Some(why.as_str()) {
                set_waiting(ctx, &row.id, Some(&why)).await?;
            }
            return Ok(false);
        }
    }
    let decl_stage = &row.declaration.stages[row.stage_index];
    match conditions::before_entry(ctx, row, decl_stage).await? {
        Entry::Enter => {}
        Entry::Skip(why) => {
            tracing::info!(execution = %row.id, stage, why, "stage skipped");
            sqlx::query("UPDATE pipeline_executions SET stage_index = stage_index + 1, entered = FALSE, waiting = NULL WHERE id = $1")
                .bind(&row.id)
                .execute(&ctx.pool)
                .await?;
            return Ok(true);
        }
        Entry::Fail(why) => {
            events::record(
                ctx,
                row,
                Subject::Stage(row.stage_index),
                "Failed",
                Some(&why),
            )
            .await?;
            end(ctx, &row.id, "Failed", &why).await?;
            return Ok(false);
        }
    }
    let mut tx = ctx.pool.begin().await?;
    sqlx::query("UPDATE pipeline_executions SET entered = TRUE, waiting = NULL WHERE id = $1 AND NOT entered")
        .bind(&row.id)
        .execute(&mut *tx)
        .await?;
    for ai in 0..row.declaration.stages[row.stage_index].actions.len() {
        sqlx::query(
            "INSERT INTO pipeline_actions (execution_id, stage_index, action_index) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(&row.id)
        .bind(row.stage_index as i64)
        .bind(ai as i64)
        .execute(&mut *tx)
        .await?;
    }
    let subject = Subject::Stage(row.stage_index);
    events::record_in(&mut tx, ctx, row, subject, "InProgress", None).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) fn resolve(row: &Row, text: &str) -> String {
    substitute(text, |ns, key| {
        row.variables.get(ns).and_then(|m| m.get(key)).cloned()
    })
}

/// Starts an action.
async fn begin(
    ctx: &Ctx,
    running: &builds::Running,
    row: &Row,
    ai: usize,
    action: &Action,
) -> Result<()> {
    set_action(ctx, row, ai, "InProgress", None, None).await?;
    match action.runs() {
        Runs::Source => {
            let (repo, _) = row.declaration.source().unwrap_or_default();
            let mut vars: BTreeMap<String, String> = [
                ("CommitId", row.commit.clone()),
                ("BranchName", row.branch.clone()),
                ("RepositoryName", repo.to_string()),
            ]
            .map(|(k, v)| (k.to_string(), v))
            .into();
            if let Some(info) =
                super::triggers::commit_info(ctx, &running.repos, repo, &row.commit).await
            {
                vars.insert("CommitMessage".into(), info.message.trim_end().to_string());
                vars.insert("AuthorDate".into(), crate::db::rfc3339(info.time * 1000));
            }
            if let Some(ns) = &action.namespace {
                save_variables(ctx, row, ns, vars).await?;
            }
            let summary = format!("{repo} at {}", &row.commit[..row.commit.len().min(10)]);
            set_action(ctx, row, ai, "Succeeded", Some(&summary), None).await
        }
        Runs::Build => match super::build_action::start(ctx, running, row, action).await {
            Ok(build) => {
                let summary = format!("build {} queued", build.id);
                set_action(ctx, row, ai, "InProgress", Some(&summary), Some(&build.id)).await
            }
            Err(e) => set_action(ctx, row, ai, "Failed", Some(&e.public_message()), None).await,
        },
        Runs::Approval => {
            let data = action
                .config("CustomData")
                .map(|d| resolve(row, d))
                .unwrap_or_default();
            let why = format!(
                "waiting for approval of {}/{}",
                row.declaration.stages[row.stage_index].name, action.name
            );
            set_waiting(ctx, &row.id, Some(&why)).await?;
            set_action(ctx, row, ai, "InProgress", Some(&data), None).await
        }
        // The deployment engine takes it from here (deploy_action).
        Runs::Deploy => {
            let (app, group) = (
                resolve(row, action.config("ApplicationName").unwrap_or_default()),
                resolve(
                    row,
                    action.config("DeploymentGroupName").unwrap_or_default(),
                ),
            );
            let summary = format!("deploying to {app}/{group}");
            set_action(ctx, row, ai, "InProgress", Some(&summary), None).await
        }
        Runs::NotHere => {
            let why = format!("not runnable here: {}", action.action_type_id.provider);
            set_action(ctx, row, ai, "Failed", Some(&why), None).await
        }
    }
}

/// Follows a running action; answers whether it ended.
async fn follow(
    ctx: &Ctx,
    row: &Row,
    ai: usize,
    action: &Action,
    state: &executions::ActionRow,
) -> Result<bool> {
    match action.runs() {
        Runs::Build => {
            let Some(id) = &state.build_id else {
                return Ok(false);
            };
            let Some(build) = builds::find_build(&ctx.pool, id).await? else {
                set_action(ctx, row, ai, "Failed", Some("its build was deleted"), None).await?;
                return Ok(true);
            };
            match build.status.as_str() {
                "QUEUED" | "IN_PROGRESS" => Ok(false),
                "SUCCEEDED" => {
                    if let Some(ns) = &action.namespace {
                        save_variables(
                            ctx,
                            row,
                            ns,
                            build.exported_variables.iter().cloned().collect(),
                        )
                        .await?;
                    }
                    let summary = format!("build {} succeeded", build.id);
                    set_action(ctx, row, ai, "Succeeded", Some(&summary), None).await?;
                    Ok(true)
                }
                other => {
                    let why = build.reason.clone().unwrap_or_else(|| other.to_lowercase());
                    let summary = format!("build {} {}: {why}", build.id, other.to_lowercase());
                    set_action(ctx, row, ai, "Failed", Some(&summary), None).await?;
                    Ok(true)
                }
            }
        }
        Runs::Approval => {
            let answer: Option<(String, String, String)> = sqlx::query_as(
                "SELECT result, comment, by_user FROM pipeline_approvals
                 WHERE execution_id = $1 AND stage_index = $2 AND action_index = $3",
            )
            .bind(&row.id)
            .bind(row.stage_index as i64)
            .bind(ai as i64)
            .fetch_optional(&ctx.pool)
            .await?;
            let limit = action
                .timeout_in_minutes
                .map_or(APPROVAL_TIMEOUT_MS, |m| i64::from(m) * 60_000);
            let timed_out = state.started_at.is_some_and(|t| now_ms() - t > limit);
            let (status, summary) = match answer {
                Some((result, comment, by)) if result == "Approved" => {
                    ("Succeeded", format!("approved by {by}: {comment}"))
                }
                Some((_, comment, by)) => ("Failed", format!("rejected by {by}: {comment}")),
                None if timed_out => {
                    let within = match action.timeout_in_minutes {
                        None => "7 days".to_string(),
                        Some(1) => "1 minute".to_string(),
                        Some(m) => format!("{m} minutes"),
                    };
                    ("Failed", format!("no answer within {within}: timed out"))
                }
                None => return Ok(false),
            };
            set_waiting(ctx, &row.id, None).await?;
            set_action(ctx, row, ai, status, Some(&summary), None).await?;
            Ok(true)
        }
        // Source and the rest end when they begin.
        _ => Ok(false),
    }
}
