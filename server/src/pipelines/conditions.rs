//! Stage conditions as the engine applies them: `beforeEntry` (a failing
//! rule fails the execution, or skips the stage), `onSuccess` (a failing
//! rule fails it, or rolls the stage back) and `onFailure` (fail, retry
//! once by `retryConfiguration.retryMode`, or roll back). A rollback is a
//! new execution (trigger `rollback`) that starts at the failed stage with
//! the commit, variables and artifacts of the latest execution that got
//! through that stage; a rollback that fails is not rolled back again.

use nubo_runner::pipeline::{first_failing, Condition, Stage};

use super::engine::resolve;
use super::events::{self, Subject};
use super::executions::{self, Row};
use super::Trigger;
use crate::ctx::Ctx;
use crate::db::{new_id, now_ms};
use crate::error::Result;

/// What `beforeEntry` decides.
#[derive(Debug)]
pub enum Entry {
    Enter,
    Skip(String),
    Fail(String),
}

fn check(row: &Row, conditions: &[Condition]) -> std::result::Result<String, (String, String)> {
    match first_failing(conditions, |t| resolve(row, t)) {
        Ok(seen) => Ok(seen.join("; ")),
        Err((c, why)) => Err((c.result.clone(), why)),
    }
}

async fn note(ctx: &Ctx, row: &Row, si: usize, skipped: bool, text: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO pipeline_stage_notes (execution_id, stage_index, skipped, note) VALUES ($1, $2, $3, $4)
         ON CONFLICT (execution_id, stage_index) DO UPDATE SET skipped = excluded.skipped, note = excluded.note",
    )
    .bind(&row.id)
    .bind(si as i64)
    .bind(skipped)
    .bind(text)
    .execute(&ctx.pool)
    .await?;
    Ok(())
}

/// A stage's note (what its conditions found) and whether it was skipped.
pub async fn stage_note(
    pool: &sqlx::SqlitePool,
    id: &str,
    si: usize,
) -> Result<Option<(bool, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT skipped, note FROM pipeline_stage_notes WHERE execution_id = $1 AND stage_index = $2",
    )
    .bind(id)
    .bind(si as i64)
    .fetch_optional(pool)
    .await?)
}

/// Applies the stage's `beforeEntry` conditions.
pub async fn before_entry(ctx: &Ctx, row: &Row, stage: &Stage) -> Result<Entry> {
    let Some(gate) = &stage.before_entry else {
        return Ok(Entry::Enter);
    };
    let si = row.stage_index;
    match check(row, &gate.conditions) {
        Ok(seen) => {
            note(
                ctx,
                row,
                si,
                false,
                &format!("entry conditions met: {seen}"),
            )
            .await?;
            Ok(Entry::Enter)
        }
        Err((result, why)) if result == "SKIP" => {
            let text = format!("skipped by its entry condition: {why}");
            note(ctx, row, si, true, &text).await?;
            events::record(ctx, row, Subject::Stage(si), "Skipped", Some(&text)).await?;
            Ok(Entry::Skip(text))
        }
        Err((_, why)) => {
            let text = format!("stage {}'s entry condition failed: {why}", stage.name);
            note(ctx, row, si, false, &text).await?;
            Ok(Entry::Fail(text))
        }
    }
}

/// Applies `onSuccess`: None to go on, or why the execution fails (after
/// a rollback was started, when that is the result).
pub async fn on_success(ctx: &Ctx, row: &Row, stage: &Stage) -> Result<Option<String>> {
    let Some(gate) = &stage.on_success else {
        return Ok(None);
    };
    match check(row, &gate.conditions) {
        Ok(_) => Ok(None),
        Err((result, why)) => {
            let mut text = format!("stage {}'s success condition failed: {why}", stage.name);
            note(ctx, row, row.stage_index, false, &text).await?;
            if result == "ROLLBACK" {
                text.push_str(&rollback(ctx, row).await?);
            }
            Ok(Some(text))
        }
    }
}

/// What `onFailure` did.
#[derive(Debug)]
pub enum Failure {
    /// The stage runs again (its automatic retry).
    Retried,
    /// The execution fails; the text is added to its reason.
    Fails(String),
}

/// Applies `onFailure` to a failed stage.
pub async fn on_failure(ctx: &Ctx, row: &Row, stage: &Stage) -> Result<Failure> {
    let Some(of) = &stage.on_failure else {
        return Ok(Failure::Fails(String::new()));
    };
    if row.status != "InProgress" {
        // Being stopped: nothing is retried or rolled back.
        return Ok(Failure::Fails(String::new()));
    }
    match of.result.as_str() {
        "RETRY" => {
            let si = row.stage_index;
            let used: Option<i64> = sqlx::query_scalar(
                "SELECT auto_retries FROM pipeline_stage_notes WHERE execution_id = $1 AND stage_index = $2",
            )
            .bind(&row.id)
            .bind(si as i64)
            .fetch_optional(&ctx.pool)
            .await?;
            if used.unwrap_or(0) >= 1 {
                return Ok(Failure::Fails(
                    " (retried automatically once already)".into(),
                ));
            }
            let mode = of.retry_mode();
            let mut tx = ctx.pool.begin().await?;
            super::control::reset_stage(&mut tx, &row.id, si, mode).await?;
            sqlx::query(
                "INSERT INTO pipeline_stage_notes (execution_id, stage_index, auto_retries, note) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (execution_id, stage_index) DO UPDATE SET auto_retries = 1, note = excluded.note",
            )
            .bind(&row.id)
            .bind(si as i64)
            .bind(format!("retried automatically ({mode})"))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            let why = format!("stage {} retried automatically ({mode})", stage.name);
            events::record(ctx, row, Subject::Execution, "Resumed", Some(&why)).await?;
            tracing::info!(execution = %row.id, stage = %stage.name, mode, "stage retried automatically");
            Ok(Failure::Retried)
        }
        "ROLLBACK" => Ok(Failure::Fails(rollback(ctx, row).await?)),
        _ => Ok(Failure::Fails(String::new())),
    }
}

/// Starts the rollback of the row's stage; answers what to add to the
/// failed execution's reason.
async fn rollback(ctx: &Ctx, row: &Row) -> Result<String> {
    let si = row.stage_index;
    if row.based_on.is_some() {
        return Ok(" (a rollback is not rolled back again)".into());
    }
    let target: Option<String> = sqlx::query_scalar(
        "SELECT e.id FROM pipeline_executions e WHERE e.pipeline_id = $1 AND e.id != $2
             AND (e.stage_index > $3 OR e.status = 'Succeeded')
             AND NOT EXISTS (SELECT 1 FROM pipeline_stage_notes n
                 WHERE n.execution_id = e.id AND n.stage_index = $3 AND n.skipped)
         ORDER BY e.number DESC LIMIT 1",
    )
    .bind(&row.pipeline_id)
    .bind(&row.id)
    .bind(si as i64)
    .fetch_optional(&ctx.pool)
    .await?;
    let Some(target) = target.and_then(|t| Some(t).filter(|t| !t.is_empty())) else {
        return Ok("; no earlier execution got through this stage: nothing to roll back to".into());
    };
    let Some(t) = executions::load(&ctx.pool, &target).await? else {
        return Ok(String::new());
    };
    let id = new_id();
    let trigger = Trigger {
        kind: "rollback".into(),
        by: row.trigger.by.clone(),
        ref_name: t.commit.clone(),
    };
    let mut vars = t.variables.clone();
    vars.insert(
        "codepipeline".into(),
        [("PipelineExecutionId".to_string(), id.clone())].into(),
    );
    sqlx::query(
        "INSERT INTO pipeline_executions (id, pipeline_id, number, status, trigger_json, commit_sha, branch,
             definition_json, variables_json, started_at, stage_index, first_stage, based_on, reason)
         SELECT $1, $2, COALESCE(MAX(number), 0) + 1, 'InProgress', $3, $4, $5, $6, $7, $8, $9, $9, $10, $11
         FROM pipeline_executions WHERE pipeline_id = $2",
    )
    .bind(&id)
    .bind(&row.pipeline_id)
    .bind(serde_json::to_string(&trigger).unwrap_or_default())
    .bind(&t.commit)
    .bind(&t.branch)
    .bind(serde_json::to_string(&row.declaration).unwrap_or_default())
    .bind(serde_json::to_string(&vars).unwrap_or_default())
    .bind(now_ms())
    .bind(si as i64)
    .bind(&t.id)
    .bind(format!(
        "rollback of execution #{} to execution #{}'s commit",
        row.number, t.number
    ))
    .execute(&ctx.pool)
    .await?;
    let Some(new) = executions::load(&ctx.pool, &id).await? else {
        return Ok(String::new());
    };
    let why = format!("rollback of #{} to #{}", row.number, t.number);
    events::record(ctx, &new, Subject::Execution, "InProgress", Some(&why)).await?;
    tracing::info!(execution = %row.id, rollback = %id, target = %t.id, "stage rolled back");
    Ok(format!(
        "; rolled back by execution #{} (to execution #{}'s commit)",
        new.number, t.number
    ))
}
