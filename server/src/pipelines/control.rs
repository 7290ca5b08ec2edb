//! What people do to executions: answer an approval, retry a failed stage,
//! stop. Each changes the rows and leaves the moving to the engine.

use sqlx::SqlitePool;

use super::events::{self, Subject};
use super::executions::{self, Row};
use super::Pipeline;
use crate::builds;
use crate::ctx::Ctx;
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::identity::accounts::User;
use crate::identity::{iam, policy};

/// The pipeline and one of its executions, for one who manages it (or,
/// with `any_user`, for anyone: approvers are checked by IAM instead).
pub async fn execution(
    pool: &SqlitePool,
    user: &User,
    name: &str,
    id: &str,
    any_user: bool,
) -> Result<(Pipeline, Row)> {
    let p = if any_user {
        super::find(pool, name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no pipeline named {name:?}")))?
    } else {
        super::for_user(pool, user, name).await?
    };
    match executions::load(pool, id).await? {
        Some(row) if row.pipeline_id == p.id => Ok((p, row)),
        _ => Err(Error::NotFound(format!(
            "no execution {id:?} of pipeline {}",
            p.name
        ))),
    }
}

/// The pipeline and one of its executions, for one who may see it; and
/// whether they manage it.
pub async fn visible_execution(
    pool: &SqlitePool,
    user: &User,
    name: &str,
    id: &str,
) -> Result<(Pipeline, Row, bool)> {
    let (p, manage) = super::visible_to(pool, user, name).await?;
    match executions::load(pool, id).await? {
        Some(row) if row.pipeline_id == p.id => Ok((p, row, manage)),
        _ => Err(Error::NotFound(format!(
            "no execution {id:?} of pipeline {}",
            p.name
        ))),
    }
}

fn find_action(row: &Row, stage: &str, action: &str) -> Result<(usize, usize)> {
    let si = row
        .declaration
        .stages
        .iter()
        .position(|s| s.name == stage)
        .ok_or_else(|| Error::invalid("stage", format!("the pipeline has no stage {stage:?}")))?;
    let ai = row.declaration.stages[si]
        .actions
        .iter()
        .position(|a| a.name == action)
        .ok_or_else(|| {
            Error::invalid("action", format!("stage {stage} has no action {action:?}"))
        })?;
    Ok((si, ai))
}

/// Records an approval's answer, if `user` holds
/// `codepipeline:PutApprovalResult` on it (audited either way).
#[allow(clippy::too_many_arguments)]
pub async fn approve(
    ctx: &Ctx,
    user: &User,
    name: &str,
    id: &str,
    stage: &str,
    action: &str,
    result: &str,
    comment: &str,
) -> Result<()> {
    if result != "Approved" && result != "Rejected" {
        return Err(Error::invalid(
            "result",
            format!("result {result:?} is not Approved or Rejected"),
        ));
    }
    if comment.len() > 512 {
        return Err(Error::invalid(
            "comment",
            "a comment may have at most 512 characters",
        ));
    }
    let (p, row) = execution(&ctx.pool, user, name, id, true).await?;
    let (si, ai) = find_action(&row, stage, action)?;
    let resource = policy::pipeline_action_arn(&p.name, stage, action);
    let target = iam::Target::pipeline_action(&p.name, &p.owner_id, resource);
    iam::require(
        &ctx.pool,
        user,
        "codepipeline:PutApprovalResult",
        &target,
        None,
    )
    .await?;
    let waiting: Option<Option<String>> = sqlx::query_scalar(
        "SELECT status FROM pipeline_actions WHERE execution_id = $1 AND stage_index = $2 AND action_index = $3",
    )
    .bind(&row.id)
    .bind(si as i64)
    .bind(ai as i64)
    .fetch_optional(&ctx.pool)
    .await?;
    let is_approval =
        row.declaration.stages[si].actions[ai].runs() == nubo_runner::pipeline::Runs::Approval;
    if !is_approval
        || waiting.flatten().as_deref() != Some("InProgress")
        || row.status != "InProgress"
    {
        return Err(Error::Conflict(format!(
            "{stage}/{action} is not waiting for an approval in this execution"
        )));
    }
    let done = sqlx::query(
        "INSERT INTO pipeline_approvals (execution_id, stage_index, action_index, result, comment, by_user, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(&row.id)
    .bind(si as i64)
    .bind(ai as i64)
    .bind(result)
    .bind(comment)
    .bind(&user.name)
    .bind(now_ms())
    .execute(&ctx.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::Conflict(format!(
            "{stage}/{action} was answered already"
        )));
    }
    tracing::info!(pipeline = %p.name, execution = %row.id, stage, action, result, by = %user.name, "approval answered");
    Ok(())
}

/// Makes a stage's actions (`ALL_ACTIONS`) or its failed, stopped and
/// abandoned ones (`FAILED_ACTIONS`) not run yet, and forgets its
/// approvals' answers, so the engine runs them again: a retry by hand and
/// `onFailure: RETRY` alike.
pub async fn reset_stage(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    si: usize,
    mode: &str,
) -> Result<()> {
    let which = if mode == "ALL_ACTIONS" {
        "1 = 1"
    } else {
        "status IN ('Failed', 'Stopped', 'Abandoned')"
    };
    sqlx::query(&format!(
        "UPDATE pipeline_actions SET status = NULL, summary = NULL, build_id = NULL, started_at = NULL, finished_at = NULL
         WHERE execution_id = $1 AND stage_index = $2 AND {which}"
    ))
    .bind(id)
    .bind(si as i64)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM pipeline_approvals WHERE execution_id = $1 AND stage_index = $2")
        .bind(id)
        .bind(si as i64)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Retries a failed stage: `FAILED_ACTIONS` runs its failed ones again,
/// `ALL_ACTIONS` all of them. Not once another execution entered it.
pub async fn retry(
    ctx: &Ctx,
    user: &User,
    name: &str,
    id: &str,
    stage: &str,
    mode: &str,
) -> Result<()> {
    if mode != "FAILED_ACTIONS" && mode != "ALL_ACTIONS" {
        return Err(Error::invalid(
            "mode",
            format!("mode {mode:?} is not FAILED_ACTIONS or ALL_ACTIONS"),
        ));
    }
    let (p, row) = execution(&ctx.pool, user, name, id, false).await?;
    let si = row
        .declaration
        .stages
        .iter()
        .position(|s| s.name == stage)
        .ok_or_else(|| Error::invalid("stage", format!("the pipeline has no stage {stage:?}")))?;
    if row.status != "Failed" || row.stage_index != si {
        return Err(Error::Conflict(format!(
            "stage {stage} of this execution is not the one that failed"
        )));
    }
    let later: Option<i64> = sqlx::query_scalar(
        "SELECT number FROM pipeline_executions WHERE pipeline_id = $1 AND number > $2
             AND (stage_index > $3 OR (stage_index = $3 AND entered)) LIMIT 1",
    )
    .bind(&p.id)
    .bind(row.number)
    .bind(si as i64)
    .fetch_optional(&ctx.pool)
    .await?;
    if let Some(n) = later {
        return Err(Error::Conflict(format!("execution #{n} has entered stage {stage} since: this one can no longer be retried there")));
    }
    let mut tx = ctx.pool.begin().await?;
    reset_stage(&mut tx, &row.id, si, mode).await?;
    // Back in the stage only when its lock is free: otherwise it waits.
    sqlx::query(
        "UPDATE pipeline_executions SET status = 'InProgress', entered = FALSE, reason = NULL, finished_at = NULL WHERE id = $1",
    )
    .bind(&row.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let why = format!("stage {stage} retried by {} ({mode})", user.name);
    events::record(ctx, &row, Subject::Execution, "Resumed", Some(&why)).await?;
    tracing::info!(pipeline = %p.name, execution = %row.id, stage, mode, by = %user.name, "stage retried");
    Ok(())
}

/// Stops an execution: running actions finish (`Stopping`, then
/// `Stopped`), or with `abandon` are abandoned at once (their builds are
/// stopped). Answers the execution's status.
pub async fn stop(
    ctx: &Ctx,
    running: &builds::Running,
    user: &User,
    name: &str,
    id: &str,
    abandon: bool,
) -> Result<String> {
    let (p, row) = execution(&ctx.pool, user, name, id, false).await?;
    if !matches!(row.status.as_str(), "InProgress" | "Stopping") {
        return Err(Error::Conflict(format!(
            "the execution is {} already",
            row.status
        )));
    }
    let status = if abandon {
        let cut: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT stage_index, action_index, build_id FROM pipeline_actions WHERE execution_id = $1 AND status = 'InProgress'",
        )
        .bind(&row.id)
        .fetch_all(&ctx.pool)
        .await?;
        for (si, ai, _) in &cut {
            let subject = Subject::Action(*si as usize, *ai as usize);
            events::record(ctx, &row, subject, "Abandoned", None).await?;
        }
        for b in cut.into_iter().filter_map(|c| c.2) {
            if let Some(build) = builds::find_build(&ctx.pool, &b).await? {
                let _ = builds::stop(ctx, running, &build).await;
            }
        }
        sqlx::query(
            "UPDATE pipeline_actions SET status = 'Abandoned', finished_at = $1 WHERE execution_id = $2 AND status = 'InProgress'",
        )
        .bind(now_ms())
        .bind(&row.id)
        .execute(&ctx.pool)
        .await?;
        sqlx::query(
            "UPDATE pipeline_executions SET status = 'Stopped', reason = $1, waiting = NULL, finished_at = $2 WHERE id = $3",
        )
        .bind(format!("stopped by {} (running actions abandoned)", user.name))
        .bind(now_ms())
        .bind(&row.id)
        .execute(&ctx.pool)
        .await?;
        let why = format!("stopped by {}", user.name);
        events::record(ctx, &row, Subject::Execution, "Stopped", Some(&why)).await?;
        "Stopped"
    } else {
        sqlx::query(
            "UPDATE pipeline_executions SET status = 'Stopping', reason = $1 WHERE id = $2",
        )
        .bind(format!("stopped by {}", user.name))
        .bind(&row.id)
        .execute(&ctx.pool)
        .await?;
        let why = format!("stopped by {}", user.name);
        events::record(ctx, &row, Subject::Execution, "Stopping", Some(&why)).await?;
        "Stopping"
    };
    tracing::info!(pipeline = %p.name, execution = %row.id, abandon, by = %user.name, "execution stopped");
    Ok(status.to_string())
}
