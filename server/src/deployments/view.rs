//! Deployments as the API and the pages show them: each target with one
//! row per lifecycle event (status, error code, the end of its log).

use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use super::revisions::Revision;
use super::Group;
use crate::error::{Error, Result};
use crate::identity::accounts::User;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub name: String,
    /// Pending, Dispatched, InProgress, Succeeded, Failed or Skipped.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TargetView {
    pub name: String,
    /// Pending, InProgress, Succeeded, Failed or Skipped.
    pub status: String,
    pub events: Vec<EventView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deployment {
    pub id: String,
    pub application: String,
    pub group: String,
    /// Created, Queued, InProgress, Succeeded, Failed or Stopped.
    pub status: String,
    pub revision: Revision,
    pub revision_label: String,
    pub bundle_sha256: String,
    /// user, codeDeployRollback or pipeline.
    pub creator: String,
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub targets: Vec<TargetView>,
    #[serde(skip)]
    pub owner_id: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    app: String,
    grp: String,
    status: String,
    revision_json: String,
    revision_label: String,
    bundle_sha256: String,
    creator: String,
    created_by: Option<String>,
    rollback_of: Option<String>,
    rolled_back_by: Option<String>,
    message: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    owner_id: String,
}

const SELECT: &str = "SELECT d.id, a.name AS app, g.name AS grp, d.status, d.revision_json, d.revision_label, d.bundle_sha256,
        d.creator, u.name AS created_by, d.rollback_of, d.rolled_back_by, d.message, d.created_at, d.started_at, d.finished_at, a.owner_id
     FROM deployments d JOIN deploy_groups g ON g.id = d.group_id JOIN deploy_applications a ON a.id = g.app_id
     LEFT JOIN users u ON u.id = d.created_by";

async fn targets(pool: &SqlitePool, id: &str) -> Result<Vec<TargetView>> {
    let ts: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT dt.target_id, t.name, dt.status FROM deployment_targets dt JOIN deploy_targets t ON t.id = dt.target_id
         WHERE dt.deployment_id = $1 ORDER BY dt.position",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    type Cmd = (
        String,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );
    let mut out = Vec::new();
    for (tid, name, status) in ts {
        let cmds: Vec<Cmd> = sqlx::query_as(
            "SELECT event, status, error_code, script_name, message, log_tail, started_at, finished_at FROM deployment_commands
             WHERE deployment_id = $1 AND target_id = $2 ORDER BY position",
        )
        .bind(id)
        .bind(&tid)
        .fetch_all(pool)
        .await?;
        let events = if cmds.is_empty() {
            let st = if status == "Pending" {
                "Pending"
            } else {
                "Skipped"
            };
            nubo_runner::appspec::Event::IN_PLACE
                .iter()
                .map(|e| EventView {
                    name: e.name().into(),
                    status: st.into(),
                    error_code: None,
                    script_name: None,
                    message: None,
                    log_tail: None,
                    duration_ms: None,
                })
                .collect()
        } else {
            cmds.into_iter()
                .map(
                    |(name, status, error_code, script_name, message, log_tail, s, f)| EventView {
                        name,
                        status,
                        error_code,
                        script_name,
                        message,
                        log_tail,
                        duration_ms: s.zip(f).map(|(s, f)| f - s),
                    },
                )
                .collect()
        };
        out.push(TargetView {
            name,
            status,
            events,
        });
    }
    Ok(out)
}

async fn of_row(pool: &SqlitePool, r: Row) -> Result<Deployment> {
    Ok(Deployment {
        targets: targets(pool, &r.id).await?,
        revision: serde_json::from_str(&r.revision_json).unwrap_or(Revision {
            repo: None,
            commit: None,
            build_id: None,
        }),
        id: r.id,
        application: r.app,
        group: r.grp,
        status: r.status,
        revision_label: r.revision_label,
        bundle_sha256: r.bundle_sha256,
        creator: r.creator,
        created_by: r.created_by,
        rollback_of: r.rollback_of,
        rolled_back_by: r.rolled_back_by,
        message: r.message,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        owner_id: r.owner_id,
    })
}

pub async fn find(pool: &SqlitePool, id: &str) -> Result<Option<Deployment>> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    match row {
        Some(r) => Ok(Some(of_row(pool, r).await?)),
        None => Ok(None),
    }
}

/// The deployment, if `user` manages its application.
pub async fn for_user(pool: &SqlitePool, user: &User, id: &str) -> Result<Deployment> {
    match find(pool, id).await? {
        Some(d) if d.owner_id == user.id || user.admin => Ok(d),
        _ => Err(Error::NotFound(format!("no deployment {id}"))),
    }
}

/// The group's deployments, newest first.
pub async fn list(pool: &SqlitePool, group: &Group, limit: i64) -> Result<Vec<Deployment>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE d.group_id = $1 ORDER BY d.created_at DESC LIMIT $2"
    ))
    .bind(&group.id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        out.push(of_row(pool, r).await?);
    }
    Ok(out)
}
