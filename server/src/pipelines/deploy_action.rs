//! A CodeDeploy action: a deployment of its input artifact to a Nubo
//! application's deployment group. Deployments are a later domain than
//! pipelines, so this side only asks and is told: the action waits
//! `InProgress`; the deployment engine lists what is asked ([`requested`]),
//! creates each deployment and reports back ([`report`]).

use nubo_runner::pipeline::Runs;

use super::build_action::{made, run_as, Made};
use super::engine::{resolve, set_action};
use super::executions;
use crate::ctx::Ctx;
use crate::error::Result;
use crate::identity::accounts::User;

/// What a Deploy action deploys.
pub enum Revision {
    /// The source artifact: the execution's commit of the source repository.
    Commit { repo: String, commit: String },
    /// A build's output artifacts.
    Build(String),
}

pub struct Request {
    pub execution_id: String,
    /// One attempt of one action (a retried stage asks again):
    /// `STAGE/ACTION/STARTED_AT`.
    pub key: String,
    pub application: String,
    pub group: String,
    pub revision: Revision,
    /// Whom the deployment runs as.
    pub user: User,
    pub pipeline: String,
}

/// Every running Deploy action. One whose input cannot be found fails here.
pub async fn requested(ctx: &Ctx) -> Result<Vec<Request>> {
    let mut out = Vec::new();
    for row in executions::open(&ctx.pool).await? {
        if !row.entered || row.status != "InProgress" {
            continue;
        }
        let Some(stage) = row.declaration.stages.get(row.stage_index) else {
            continue;
        };
        if !stage.actions.iter().any(|a| a.runs() == Runs::Deploy) {
            continue;
        }
        let stored = executions::actions(&ctx.pool, &row.id, row.stage_index).await?;
        for (ai, action) in stage.actions.iter().enumerate() {
            let Some(state) = stored.get(&ai) else {
                continue;
            };
            if action.runs() != Runs::Deploy || state.status.as_deref() != Some("InProgress") {
                continue;
            }
            let key = format!("{}/{ai}/{}", row.stage_index, state.started_at.unwrap_or(0));
            let input = action
                .input_artifacts
                .first()
                .map(|a| a.name.clone())
                .unwrap_or_default();
            let revision = match made(ctx, &row, &input).await {
                Ok(Made::Source) => {
                    let (repo, _) = row.declaration.source().unwrap_or_default();
                    Revision::Commit {
                        repo: repo.to_string(),
                        commit: row.commit.clone(),
                    }
                }
                Ok(Made::Build { build_id, .. }) => Revision::Build(build_id),
                Err(e) => {
                    set_action(ctx, &row, ai, "Failed", Some(&e.public_message()), None).await?;
                    continue;
                }
            };
            let (pipeline, user) = run_as(ctx, &row).await?;
            out.push(Request {
                execution_id: row.id.clone(),
                key,
                application: resolve(&row, action.config("ApplicationName").unwrap_or_default()),
                group: resolve(
                    &row,
                    action.config("DeploymentGroupName").unwrap_or_default(),
                ),
                revision,
                user,
                pipeline: pipeline.name,
            });
        }
    }
    Ok(out)
}

/// The deployment engine's word on a request: `InProgress` (with the
/// deployment named), `Succeeded` or `Failed`. A request the execution has
/// moved past (stopped, retried) is left alone.
pub async fn report(
    ctx: &Ctx,
    execution_id: &str,
    key: &str,
    status: &str,
    summary: &str,
) -> Result<()> {
    let mut parts = key.split('/').map(|p| p.parse::<i64>().unwrap_or(-1));
    let (Some(si), Some(ai), Some(started)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(());
    };
    let Some(row) = executions::load(&ctx.pool, execution_id).await? else {
        return Ok(());
    };
    if row.stage_index as i64 != si
        || !row.entered
        || !matches!(row.status.as_str(), "InProgress" | "Stopping")
    {
        return Ok(());
    }
    let stored = executions::actions(&ctx.pool, &row.id, row.stage_index).await?;
    let Some(state) = stored.get(&(ai as usize)) else {
        return Ok(());
    };
    if state.status.as_deref() != Some("InProgress") || state.started_at.unwrap_or(0) != started {
        return Ok(());
    }
    set_action(ctx, &row, ai as usize, status, Some(summary), None).await
}
