//! Approvals waiting for someone: the in-app side of approval
//! notifications. Every open manual approval the user could answer now —
//! they see the pipeline and their policies give them
//! `codepipeline:PutApprovalResult` on it — with its `CustomData` and the
//! place to answer it.

use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use super::executions;
use crate::error::Result;
use crate::identity::accounts::User;
use crate::identity::{iam, policy};

/// An approval waiting for an answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Waiting {
    pub pipeline: String,
    pub execution: String,
    pub number: i64,
    pub stage: String,
    pub action: String,
    pub commit: String,
    /// The approval's `CustomData`, variables resolved.
    pub custom_data: Option<String>,
    /// Since when (RFC 3339).
    pub since: Option<String>,
    /// The execution's page, where it is answered.
    pub path: String,
}

/// The approvals `user` may answer now, oldest first.
pub async fn for_user(pool: &SqlitePool, user: &User) -> Result<Vec<Waiting>> {
    let rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT a.execution_id, a.stage_index, a.action_index, a.started_at FROM pipeline_actions a
         JOIN pipeline_executions e ON e.id = a.execution_id
         WHERE a.status = 'InProgress' AND e.status = 'InProgress' ORDER BY a.started_at LIMIT 200",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for (id, si, ai, since) in rows {
        let Some(row) = executions::load(pool, &id).await? else {
            continue;
        };
        let Some(stage) = row.declaration.stages.get(si as usize) else {
            continue;
        };
        let Some(action) = stage.actions.get(ai as usize) else {
            continue;
        };
        if action.runs() != nubo_runner::pipeline::Runs::Approval {
            continue;
        }
        let Some(p) = super::find_by_id(pool, &row.pipeline_id).await? else {
            continue;
        };
        if super::visible_to(pool, user, &p.name).await.is_err() {
            continue;
        }
        let resource = policy::pipeline_action_arn(&p.name, &stage.name, &action.name);
        let target = iam::Target::pipeline_action(&p.name, &p.owner_id, resource);
        let decision =
            iam::authorize(pool, user, "codepipeline:PutApprovalResult", &target, None).await?;
        if !decision.allowed {
            continue;
        }
        out.push(Waiting {
            path: format!("/pipelines/{}/executions/{}", p.name, row.id),
            custom_data: action
                .config("CustomData")
                .map(|d| super::engine::resolve(&row, d)),
            pipeline: p.name,
            execution: row.id.clone(),
            number: row.number,
            stage: stage.name.clone(),
            action: action.name.clone(),
            commit: row.commit.clone(),
            since: since.map(crate::db::rfc3339),
        });
    }
    Ok(out)
}
