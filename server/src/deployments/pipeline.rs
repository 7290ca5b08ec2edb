//! Pipelines' CodeDeploy actions, from this side: each running Deploy
//! action gets one deployment (per attempt) of its input artifact, created
//! as the pipeline's user, and hears how it ended.

use super::engine::{self, Creator, Engine};
use super::revisions::{self, Revision};
use crate::ctx::Ctx;
use crate::error::Result;
use crate::pipelines::deploy_action::{self, Request};

async fn start(
    ctx: &Ctx,
    engine: &Engine,
    locks: &crate::repos::Locks,
    req: &Request,
) -> Result<String> {
    let rev = match &req.revision {
        deploy_action::Revision::Commit { repo, commit } => Revision {
            repo: Some(repo.clone()),
            commit: Some(commit.clone()),
            build_id: None,
        },
        deploy_action::Revision::Build(id) => Revision {
            repo: None,
            commit: None,
            build_id: Some(id.clone()),
        },
    };
    let (a, g) = super::group_for(&ctx.pool, &req.user, &req.application, &req.group).await?;
    let checked = revisions::check(ctx, locks, &req.user, &rev).await?;
    let creator = Creator::Pipeline {
        user: &req.user,
        execution: &req.execution_id,
        action: &req.key,
    };
    engine::create(ctx, engine, &a, &g, &checked, creator).await
}

/// Creates the deployments asked for, and reports those that ended.
pub async fn serve_actions(ctx: &Ctx, engine: &Engine, locks: &crate::repos::Locks) -> Result<()> {
    for req in deploy_action::requested(ctx).await? {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT id FROM deployments WHERE pipeline_execution_id = $1 AND pipeline_action = $2",
        )
        .bind(&req.execution_id)
        .bind(&req.key)
        .fetch_optional(&ctx.pool)
        .await?;
        if exists.is_some() {
            continue;
        }
        let target = format!("{}/{}", req.application, req.group);
        match start(ctx, engine, locks, &req).await {
            Ok(id) => {
                tracing::info!(pipeline = %req.pipeline, deployment = %id, "pipeline deployment created");
                deploy_action::report(
                    ctx,
                    &req.execution_id,
                    &req.key,
                    "InProgress",
                    &format!("deployment {id} to {target}"),
                )
                .await?
            }
            Err(e) => {
                let why = format!("cannot deploy to {target}: {}", e.public_message());
                deploy_action::report(ctx, &req.execution_id, &req.key, "Failed", &why).await?
            }
        }
    }
    type Ended = (String, String, String, String, Option<String>);
    let ended: Vec<Ended> = sqlx::query_as(
        "SELECT id, status, pipeline_execution_id, pipeline_action, message FROM deployments
         WHERE pipeline_execution_id IS NOT NULL AND NOT pipeline_reported AND status IN ('Succeeded', 'Failed', 'Stopped')",
    )
    .fetch_all(&ctx.pool)
    .await?;
    for (id, status, execution, key, message) in ended {
        let summary = match message {
            Some(m) => format!("deployment {id} {}: {m}", status.to_lowercase()),
            None => format!("deployment {id} {}", status.to_lowercase()),
        };
        let result = if status == "Succeeded" {
            "Succeeded"
        } else {
            "Failed"
        };
        deploy_action::report(ctx, &execution, &key, result, &summary).await?;
        sqlx::query("UPDATE deployments SET pipeline_reported = TRUE WHERE id = $1")
            .bind(&id)
            .execute(&ctx.pool)
            .await?;
    }
    Ok(())
}
