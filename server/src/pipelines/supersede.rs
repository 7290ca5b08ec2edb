//! Superseding, SUPERSEDED's one way out of a stage's queue: an older
//! execution waiting in front of a stage gives way to a newer one that
//! arrives there, and (Nubo's addition) one that only waits at approvals
//! marked `Supersede: true` gives way too, its approvals abandoned.

use nubo_runner::pipeline::Runs;

use super::events::{self, Subject};
use super::executions::{self, Row};
use crate::ctx::Ctx;
use crate::db::now_ms;
use crate::error::Result;

/// Supersedes the execution `id` if all it runs in this stage are
/// approvals marked `Supersede: true`; answers whether it did.
pub(super) async fn at_approval(ctx: &Ctx, id: &str, newer: &Row, stage: &str) -> Result<bool> {
    let Some(older) = executions::load(&ctx.pool, id).await? else {
        return Ok(false);
    };
    let Some(decl_stage) = older.declaration.stages.get(older.stage_index) else {
        return Ok(false);
    };
    let stored = executions::actions(&ctx.pool, id, older.stage_index).await?;
    let running: Vec<usize> = stored
        .iter()
        .filter(|(_, a)| a.status.as_deref() == Some("InProgress"))
        .map(|(ai, _)| *ai)
        .collect();
    let all_gates = !running.is_empty()
        && running.iter().all(|ai| {
            decl_stage.actions.get(*ai).is_some_and(|a| {
                a.runs() == Runs::Approval
                    && a.config("Supersede")
                        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            })
        });
    if !all_gates || older.status != "InProgress" {
        return Ok(false);
    }
    let now = now_ms();
    let why = format!(
        "superseded by execution #{} while waiting for approval in stage {stage} (Supersede: true)",
        newer.number
    );
    let gates: Vec<i64> = sqlx::query_scalar(
        "SELECT action_index FROM pipeline_actions WHERE execution_id = $1 AND stage_index = $2 AND status = 'InProgress'",
    )
    .bind(id)
    .bind(older.stage_index as i64)
    .fetch_all(&ctx.pool)
    .await?;
    let mut tx = ctx.pool.begin().await?;
    sqlx::query(
        "UPDATE pipeline_actions SET status = 'Abandoned', summary = $1, finished_at = $2
         WHERE execution_id = $3 AND status = 'InProgress'",
    )
    .bind(&why)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    for ai in gates {
        let subject = Subject::Action(older.stage_index, ai as usize);
        events::record(ctx, &older, subject, "Abandoned", Some(&why)).await?;
    }
    tracing::info!(execution = %id, by = %newer.id, stage, "superseded at an approval");
    superseded(ctx, id, &why, "").await
}

/// Marks the open execution `id` Superseded (with `also`, an extra
/// condition); answers whether it was.
pub(super) async fn superseded(ctx: &Ctx, id: &str, why: &str, also: &str) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE pipeline_executions SET status = 'Superseded', reason = $1, waiting = NULL, finished_at = $2
         WHERE id = $3 AND status = 'InProgress' {also}"
    ))
    .bind(why)
    .bind(now_ms())
    .bind(id)
    .execute(&ctx.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    if let Some(row) = executions::load(&ctx.pool, id).await? {
        events::record(ctx, &row, Subject::Execution, "Superseded", Some(why)).await?;
    }
    tracing::info!(execution = %id, why, "execution superseded");
    Ok(true)
}
