//! Executions as stored, and as the API and pages show them (CodePipeline's
//! status words: execution `InProgress|Stopping|Stopped|Succeeded|
//! Superseded|Failed`; stage and action `InProgress|Succeeded|Failed|
//! Stopped|Abandoned`, or none when not reached).

use std::collections::BTreeMap;

use nubo_runner::pipeline::Pipeline as Declaration;
use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use super::{time, Trigger};
use crate::error::{Error, Result};

/// An execution's row, as the engine works with it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub pipeline_id: String,
    pub number: i64,
    pub status: String,
    pub trigger: Trigger,
    pub commit: String,
    pub branch: String,
    pub declaration: Declaration,
    pub variables: BTreeMap<String, BTreeMap<String, String>>,
    pub stage_index: usize,
    pub entered: bool,
    pub waiting: Option<String>,
    pub reason: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// A rollback's: the execution whose commit, variables and artifacts
    /// it re-uses, and the stage it starts at.
    pub based_on: Option<String>,
    pub first_stage: usize,
}

#[derive(sqlx::FromRow)]
struct Raw {
    id: String,
    pipeline_id: String,
    number: i64,
    status: String,
    trigger_json: String,
    commit_sha: String,
    branch: String,
    definition_json: String,
    variables_json: String,
    stage_index: i64,
    entered: bool,
    waiting: Option<String>,
    reason: Option<String>,
    started_at: i64,
    finished_at: Option<i64>,
    based_on: Option<String>,
    first_stage: i64,
}
const SELECT: &str = "SELECT id, pipeline_id, number, status, trigger_json, commit_sha, branch, definition_json,
        variables_json, stage_index, entered, waiting, reason, started_at, finished_at, based_on, first_stage
        FROM pipeline_executions";

fn from_raw(r: Raw) -> Result<Row> {
    let bad =
        |e: serde_json::Error| Error::Internal(format!("execution {} is stored badly: {e}", r.id));
    Ok(Row {
        trigger: serde_json::from_str(&r.trigger_json).map_err(bad)?,
        declaration: serde_json::from_str(&r.definition_json).map_err(bad)?,
        variables: serde_json::from_str(&r.variables_json).map_err(bad)?,
        id: r.id.clone(),
        pipeline_id: r.pipeline_id,
        number: r.number,
        status: r.status,
        commit: r.commit_sha,
        branch: r.branch,
        stage_index: r.stage_index.max(0) as usize,
        entered: r.entered,
        waiting: r.waiting,
        reason: r.reason,
        started_at: r.started_at,
        finished_at: r.finished_at,
        based_on: r.based_on,
        first_stage: r.first_stage.max(0) as usize,
    })
}

pub async fn load<'e>(
    pool: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    id: &str,
) -> Result<Option<Row>> {
    let raw: Option<Raw> = sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    raw.map(from_raw).transpose()
}

/// Executions not yet ended, oldest first in each pipeline.
pub async fn open(pool: &SqlitePool) -> Result<Vec<Row>> {
    let raws: Vec<Raw> = sqlx::query_as(&format!(
        "{SELECT} WHERE status IN ('InProgress', 'Stopping') ORDER BY pipeline_id, number"
    ))
    .fetch_all(pool)
    .await?;
    raws.into_iter().map(from_raw).collect()
}

/// A pipeline's executions, newest first.
pub async fn rows_of(pool: &SqlitePool, pipeline_id: &str, limit: i64) -> Result<Vec<Row>> {
    let raws: Vec<Raw> = sqlx::query_as(&format!(
        "{SELECT} WHERE pipeline_id = $1 ORDER BY number DESC LIMIT $2"
    ))
    .bind(pipeline_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    raws.into_iter().map(from_raw).collect()
}

/// One action's state.
#[derive(Debug, Clone, Default)]
pub struct ActionRow {
    pub status: Option<String>,
    pub build_id: Option<String>,
    pub summary: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

type ActionRaw = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

/// The action rows of one stage, by action index.
pub async fn actions(
    pool: &SqlitePool,
    id: &str,
    stage: usize,
) -> Result<BTreeMap<usize, ActionRow>> {
    let rows: Vec<ActionRaw> = sqlx::query_as(
        "SELECT action_index, status, build_id, summary, started_at, finished_at FROM pipeline_actions
         WHERE execution_id = $1 AND stage_index = $2",
    )
    .bind(id)
    .bind(stage as i64)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.0 as usize,
                ActionRow {
                    status: r.1,
                    build_id: r.2,
                    summary: r.3,
                    started_at: r.4,
                    finished_at: r.5,
                },
            )
        })
        .collect())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceRevision {
    pub commit: String,
    pub branch: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionState {
    pub name: String,
    pub category: String,
    pub provider: String,
    pub status: Option<String>,
    pub run_order: u32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// What happened (a failure's reason, an approval's comment).
    pub summary: Option<String>,
    /// From its start to its end, once it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageState {
    pub name: String,
    /// As its actions', or `Skipped` (by its entry condition).
    pub status: Option<String>,
    pub actions: Vec<ActionState>,
    /// What its conditions found or did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An execution as the API answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Execution {
    pub id: String,
    pub pipeline: String,
    pub number: i64,
    pub status: String,
    pub trigger: Trigger,
    pub source_revision: SourceRevision,
    /// Why it is waiting (a stage held by another execution, an approval).
    pub waiting: Option<String>,
    pub reason: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub stages: Vec<StageState>,
}

/// A stage's status from its actions': failed if one failed, in progress
/// while one runs or some are still to run, succeeded when all did.
pub fn stage_status(actions: &[Option<String>], reached: bool) -> Option<String> {
    if !reached {
        return None;
    }
    let any = |s: &str| actions.iter().any(|a| a.as_deref() == Some(s));
    let status = if any("InProgress") {
        "InProgress"
    } else if any("Failed") {
        "Failed"
    } else if any("Abandoned") {
        "Abandoned"
    } else if any("Stopped") {
        "Stopped"
    } else if actions.iter().all(|a| a.as_deref() == Some("Succeeded")) {
        "Succeeded"
    } else {
        "InProgress"
    };
    Some(status.to_string())
}

/// The execution's full state.
pub async fn state(pool: &SqlitePool, pipeline: &str, row: &Row) -> Result<Execution> {
    let mut stages = Vec::new();
    for (si, stage) in row.declaration.stages.iter().enumerate() {
        let stored = actions(pool, &row.id, si).await?;
        let reached =
            si < row.stage_index || (si == row.stage_index && row.entered) || !stored.is_empty();
        let list: Vec<ActionState> = stage
            .actions
            .iter()
            .enumerate()
            .map(|(ai, a)| {
                let s = stored.get(&ai).cloned().unwrap_or_default();
                ActionState {
                    name: a.name.clone(),
                    category: a.action_type_id.category.clone(),
                    provider: a.action_type_id.provider.clone(),
                    status: s.status,
                    run_order: a.run_order,
                    started_at: time(s.started_at),
                    finished_at: time(s.finished_at),
                    duration_ms: s.started_at.zip(s.finished_at).map(|(a, b)| (b - a).max(0)),
                    build_id: s.build_id,
                    summary: s.summary,
                }
            })
            .collect();
        let statuses: Vec<Option<String>> = list.iter().map(|a| a.status.clone()).collect();
        let note = super::conditions::stage_note(pool, &row.id, si).await?;
        let skipped = note.as_ref().is_some_and(|n| n.0);
        stages.push(StageState {
            name: stage.name.clone(),
            status: if skipped {
                Some("Skipped".into())
            } else {
                stage_status(&statuses, reached && !stored.is_empty())
            },
            actions: list,
            note: note.and_then(|n| n.1),
        });
    }
    Ok(Execution {
        id: row.id.clone(),
        pipeline: pipeline.to_string(),
        number: row.number,
        status: row.status.clone(),
        trigger: row.trigger.clone(),
        source_revision: SourceRevision {
            commit: row.commit.clone(),
            branch: row.branch.clone(),
        },
        waiting: row.waiting.clone(),
        reason: row.reason.clone(),
        started_at: crate::db::rfc3339(row.started_at),
        finished_at: time(row.finished_at),
        stages,
    })
}
