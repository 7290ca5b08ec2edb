//! Pipeline events, as CodePipeline sends them to EventBridge: every
//! pipeline, stage and action state change is a row (in order per
//! pipeline), listed per pipeline and execution, and delivered to the
//! pipeline's notification rules — webhooks of its source repository that
//! belong to the pipeline, so they are signed, retried and kept in the
//! delivery history exactly as repository webhooks are. A rule picks
//! states as `SCOPE.STATE` (`pipeline.FAILED`, `stage.SUCCEEDED`,
//! `action.STARTED`, `approval.STARTED` for a manual approval waiting with
//! its review URL and `CustomData`), or `all`.

use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use super::executions::Row;
use crate::ctx::Ctx;
use crate::db::{new_id, now_ms, rfc3339};
use crate::error::Result;
use crate::repos::webhooks;

/// What a rule can ask for.
pub const RULE_EVENTS: &[&str] = &[
    "all",
    "pipeline.STARTED",
    "pipeline.SUCCEEDED",
    "pipeline.FAILED",
    "pipeline.STOPPING",
    "pipeline.STOPPED",
    "pipeline.SUPERSEDED",
    "pipeline.RESUMED",
    "stage.STARTED",
    "stage.SUCCEEDED",
    "stage.FAILED",
    "action.STARTED",
    "action.SUCCEEDED",
    "action.FAILED",
    "action.ABANDONED",
    "approval.STARTED",
    "approval.SUCCEEDED",
    "approval.FAILED",
];

/// An event as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// Its place in the pipeline's events (1, 2, …).
    pub seq: i64,
    pub execution: String,
    /// `pipeline`, `stage` or `action`.
    pub scope: String,
    pub stage: Option<String>,
    pub action: Option<String>,
    pub state: String,
    /// RFC 3339.
    pub time: String,
    /// The event as notification rules receive it.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// The event word of a status (CodePipeline's events are upper case).
pub fn state_word(status: &str) -> String {
    match status {
        "InProgress" => "STARTED".into(),
        other => other.to_uppercase(),
    }
}

/// Where people reach this server: `public_url`, else its HTTP port on
/// loopback.
pub fn base_url(ctx: &Ctx) -> String {
    match &ctx.settings.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://127.0.0.1:{}", ctx.settings.http.port()),
    }
}

/// Where a person reviews the execution.
pub fn review_url(ctx: &Ctx, pipeline: &str, execution: &str) -> String {
    format!(
        "{}/pipelines/{pipeline}/executions/{execution}",
        base_url(ctx)
    )
}

/// What changed: the execution, a stage, or an action of a stage.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    Execution,
    Stage(usize),
    Action(usize, usize),
}

/// Records that `subject` of `row` reached `status` and queues its
/// deliveries. `extra` goes into the event's detail (a failure's reason,
/// an approval's CustomData).
pub async fn record(
    ctx: &Ctx,
    row: &Row,
    subject: Subject,
    status: &str,
    extra: Option<&str>,
) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    record_in(&mut tx, ctx, row, subject, status, extra).await?;
    tx.commit().await?;
    Ok(())
}

/// As [`record`], in the caller's transaction: the state change and its
/// event (and deliveries) are written together, with one sync.
pub async fn record_in(
    conn: &mut sqlx::SqliteConnection,
    ctx: &Ctx,
    row: &Row,
    subject: Subject,
    status: &str,
    extra: Option<&str>,
) -> Result<()> {
    let state = state_word(status);
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM pipelines WHERE id = $1")
        .bind(&row.pipeline_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(pipeline) = name else {
        return Ok(());
    };
    let stages = &row.declaration.stages;
    let (scope, stage, action) = match subject {
        Subject::Execution => ("pipeline", None, None),
        Subject::Stage(si) => ("stage", stages.get(si), None),
        Subject::Action(si, ai) => (
            "action",
            stages.get(si),
            stages.get(si).and_then(|s| s.actions.get(ai)),
        ),
    };
    let detail_type = match scope {
        "pipeline" => "CodePipeline Pipeline Execution State Change",
        "stage" => "CodePipeline Stage Execution State Change",
        _ => "CodePipeline Action Execution State Change",
    };
    let now = now_ms();
    let mut detail = serde_json::json!({
        "pipeline": pipeline,
        "execution-id": row.id,
        "execution-number": row.number,
        "state": state,
        "commit": row.commit,
    });
    if let Some(s) = stage {
        detail["stage"] = s.name.clone().into();
    }
    let approval = action.is_some_and(|a| a.runs() == nubo_runner::pipeline::Runs::Approval);
    if let Some(a) = action {
        detail["action"] = a.name.clone().into();
        detail["type"] = serde_json::json!({"category": a.action_type_id.category,
            "owner": a.action_type_id.owner, "provider": a.action_type_id.provider});
        if approval {
            detail["approval"] = serde_json::json!({
                "review-url": review_url(ctx, &pipeline, &row.id),
                "custom-data": a.config("CustomData").map(|d| super::engine::resolve(row, d)),
            });
        }
    }
    if let Some(x) = extra.filter(|x| !x.is_empty()) {
        detail["summary"] = x.into();
    }
    let id = new_id();
    let event = serde_json::json!({
        "id": id,
        "detail-type": detail_type,
        "source": "nubo.codepipeline",
        "time": rfc3339(now),
        "resources": [format!("arn:nubo:codepipeline:::{pipeline}")],
        "detail": detail,
    });
    sqlx::query(
        "INSERT INTO pipeline_events (id, pipeline_id, seq, execution_id, scope, stage, action, state, event_json, at)
         SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6, $7, $8, $9
         FROM pipeline_events WHERE pipeline_id = $2",
    )
    .bind(&id)
    .bind(&row.pipeline_id)
    .bind(&row.id)
    .bind(scope)
    .bind(stage.map(|s| s.name.clone()))
    .bind(action.map(|a| a.name.clone()))
    .bind(&state)
    .bind(event.to_string())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let wanted = [
        format!("{scope}.{state}"),
        if approval {
            format!("approval.{state}")
        } else {
            String::new()
        },
    ];
    for rule in webhooks::list_for_pipeline(&mut *conn, &row.pipeline_id).await? {
        if rule.events.iter().any(|e| e == "all" || wanted.contains(e)) {
            webhooks::enqueue_one(&mut *conn, &rule.id, &wanted[0], &event).await?;
        }
    }
    Ok(())
}

/// A pipeline's events, newest first (of one execution, if given).
pub async fn list(
    pool: &SqlitePool,
    pipeline_id: &str,
    execution: Option<&str>,
    limit: i64,
) -> Result<Vec<Event>> {
    type R = (
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        String,
        i64,
    );
    let rows: Vec<R> = sqlx::query_as(
        "SELECT seq, execution_id, scope, stage, action, state, event_json, at FROM pipeline_events
         WHERE pipeline_id = $1 AND ($2 IS NULL OR execution_id = $2) ORDER BY seq DESC LIMIT $3",
    )
    .bind(pipeline_id)
    .bind(execution)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Event {
            seq: r.0,
            execution: r.1,
            scope: r.2,
            stage: r.3,
            action: r.4,
            state: r.5,
            event: serde_json::from_str(&r.6).unwrap_or_default(),
            time: rfc3339(r.7),
        })
        .collect())
}
