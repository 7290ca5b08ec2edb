//! Stage transitions, as CodePipeline's DisableStageTransition has them:
//! the transition into a stage (every stage but the first) can be disabled
//! with a reason; executions that reach it wait before the stage (under
//! SUPERSEDED only the newest waits, as on AWS) until it is enabled again.

use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use super::Pipeline;
use crate::db::{now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::User;

/// A stage's inbound transition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Transition {
    /// The stage the transition leads into.
    pub stage: String,
    pub enabled: bool,
    /// Why it was disabled, by whom and when (RFC 3339); none when enabled.
    pub reason: Option<String>,
    pub disabled_by: Option<String>,
    pub disabled_at: Option<String>,
}

/// The longest reason CodePipeline takes.
const MAX_REASON: usize = 300;

/// Why the transition into `stage` is disabled (the reason and who), if it is.
pub async fn disabled(
    pool: &SqlitePool,
    pipeline_id: &str,
    stage: &str,
) -> Result<Option<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT reason, by_user FROM pipeline_transitions WHERE pipeline_id = $1 AND stage = $2",
    )
    .bind(pipeline_id)
    .bind(stage)
    .fetch_optional(pool)
    .await?)
}

/// Every stage's inbound transition but the first stage's (it has none).
pub async fn list(pool: &SqlitePool, pipeline: &Pipeline) -> Result<Vec<Transition>> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT stage, reason, by_user, at FROM pipeline_transitions WHERE pipeline_id = $1",
    )
    .bind(&pipeline.id)
    .fetch_all(pool)
    .await?;
    Ok(pipeline
        .declaration
        .stages
        .iter()
        .skip(1)
        .map(|s| {
            let row = rows.iter().find(|r| r.0 == s.name);
            Transition {
                stage: s.name.clone(),
                enabled: row.is_none(),
                reason: row.map(|r| r.1.clone()),
                disabled_by: row.map(|r| r.2.clone()),
                disabled_at: row.map(|r| rfc3339(r.3)),
            }
        })
        .collect())
}

/// Disables (with a reason) or enables the transition into `stage`.
pub async fn set(
    pool: &SqlitePool,
    pipeline: &Pipeline,
    user: &User,
    stage: &str,
    enabled: bool,
    reason: Option<&str>,
) -> Result<Transition> {
    let position = pipeline
        .declaration
        .stages
        .iter()
        .position(|s| s.name == stage)
        .ok_or_else(|| Error::invalid("stage", format!("the pipeline has no stage {stage:?}")))?;
    if position == 0 {
        return Err(Error::invalid(
            "stage",
            format!("{stage} is the first stage: nothing transitions into it"),
        ));
    }
    if enabled {
        sqlx::query("DELETE FROM pipeline_transitions WHERE pipeline_id = $1 AND stage = $2")
            .bind(&pipeline.id)
            .bind(stage)
            .execute(pool)
            .await?;
    } else {
        let reason = reason.map(str::trim).unwrap_or_default();
        if reason.is_empty() {
            return Err(Error::invalid(
                "reason",
                "say why the transition is disabled: the reason is shown to everyone it holds",
            ));
        }
        if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
            return Err(Error::invalid(
                "reason",
                format!("a reason is one line of at most {MAX_REASON} characters"),
            ));
        }
        sqlx::query(
            "INSERT INTO pipeline_transitions (pipeline_id, stage, reason, by_user, at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (pipeline_id, stage) DO UPDATE SET reason = excluded.reason, by_user = excluded.by_user, at = excluded.at",
        )
        .bind(&pipeline.id)
        .bind(stage)
        .bind(reason)
        .bind(&user.name)
        .bind(now_ms())
        .execute(pool)
        .await?;
    }
    tracing::info!(pipeline = %pipeline.name, stage, enabled, by = %user.name, "stage transition changed");
    list(pool, pipeline)
        .await?
        .into_iter()
        .find(|t| t.stage == stage)
        .ok_or_else(|| Error::Internal("the transition vanished".into()))
}
