//! A CodeBuild action: its build, started as the pipeline's creator (or,
//! for a definition in a repository, as whoever pushed or started it),
//! with the action's `EnvironmentVariables` (variables resolved) and its
//! input artifacts: an earlier build's output is put in the new build's
//! source (the primary one over the checkout, others in
//! `.codepipeline/NAME`); the source artifact is the checkout itself.

use std::collections::BTreeMap;

use nubo_runner::pipeline::{Action, Runs};

use super::engine::resolve;
use super::executions::{self, Row};
use crate::builds;
use crate::ctx::Ctx;
use crate::error::{Error, Result};

/// Starts a CodeBuild action's build as the pipeline's creator, with its
/// `EnvironmentVariables` (variables resolved); the execution's commit
/// when the project builds the pipeline's source repository.
pub(super) async fn start(
    ctx: &Ctx,
    running: &builds::Running,
    row: &Row,
    action: &Action,
) -> Result<builds::Build> {
    let (pipeline, owner) = run_as(ctx, row).await?;
    let name = action.config("ProjectName").unwrap_or_default();
    let project = builds::project_for(&ctx.pool, &owner, name).await?;
    crate::repos::authorize(&ctx.pool, &project.repo, &owner, "codecommit:GitPull").await?;
    let mut env = BTreeMap::new();
    if let Some(text) = action.config("EnvironmentVariables") {
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&resolve(row, text)).map_err(|e| {
                Error::invalid(
                    "EnvironmentVariables",
                    format!("EnvironmentVariables is not a JSON list: {e}"),
                )
            })?;
        for v in list {
            let kind = v["type"].as_str().unwrap_or("PLAINTEXT");
            if kind != "PLAINTEXT" {
                return Err(Error::invalid("EnvironmentVariables", format!("variables of type {kind} are not supported here: use the buildspec's env instead")));
            }
            let (Some(k), Some(val)) = (v["name"].as_str(), v["value"].as_str()) else {
                return Err(Error::invalid(
                    "EnvironmentVariables",
                    "each variable needs a name and a value",
                ));
            };
            env.insert(k.to_string(), val.to_string());
        }
    }
    env.insert("CODEPIPELINE_EXECUTION_ID".into(), row.id.clone());
    env.insert("CODEPIPELINE_PIPELINE_NAME".into(), pipeline.name.clone());
    let (repo, _) = row.declaration.source().unwrap_or_default();
    let same_repo = project.repo.eq_ignore_ascii_case(repo);
    let request = builds::StartBuild {
        branch: same_repo.then(|| row.branch.clone()),
        commit: same_repo.then(|| row.commit.clone()),
        env: Some(env),
        inputs: inputs(ctx, row, action).await?,
    };
    let build = builds::start(&ctx.pool, &project, &owner, request).await?;
    running.wake.notify_one();
    Ok(build)
}

/// The pipeline and the user its actions run as: its creator, or, for a
/// definition in a repository, whoever pushed or started the execution.
pub(super) async fn run_as(
    ctx: &Ctx,
    row: &Row,
) -> Result<(super::Pipeline, crate::identity::accounts::User)> {
    let pipeline = super::find_by_id(&ctx.pool, &row.pipeline_id)
        .await?
        .ok_or_else(|| Error::NotFound("the pipeline was deleted".into()))?;
    let owner = match &pipeline.defined_in {
        Some(_) => crate::identity::accounts::require_by_name(&ctx.pool, &row.trigger.by).await?,
        None => super::owner(&ctx.pool, &pipeline).await?,
    };
    Ok((pipeline, owner))
}

/// Who made an input artifact in this execution.
pub(super) enum Made<'a> {
    /// The source action: the execution's commit.
    Source,
    /// A build; `action` made it (with its other output artifacts).
    Build {
        build_id: String,
        action: &'a Action,
    },
}

/// The earlier action that made input artifact `name`, and its build.
pub(super) async fn made<'a>(ctx: &Ctx, row: &'a Row, name: &str) -> Result<Made<'a>> {
    let producer = row
        .declaration
        .stages
        .iter()
        .enumerate()
        .take(row.stage_index + 1)
        .flat_map(|(si, s)| s.actions.iter().enumerate().map(move |(ai, a)| (si, ai, a)))
        .find(|(_, _, a)| a.output_artifacts.iter().any(|o| o.name == name));
    let Some((si, ai, made_by)) = producer else {
        return Err(Error::invalid(
            "inputArtifacts",
            format!("no earlier action makes input artifact {name}"),
        ));
    };
    if made_by.runs() != Runs::Build {
        return Ok(Made::Source);
    }
    // A rollback takes what stages before its first were given.
    let made_in = match &row.based_on {
        Some(earlier) if si < row.first_stage => earlier.as_str(),
        _ => row.id.as_str(),
    };
    let stored = executions::actions(&ctx.pool, made_in, si).await?;
    let Some(build_id) = stored.get(&ai).and_then(|a| a.build_id.clone()) else {
        return Err(Error::Conflict(format!(
            "input artifact {name} was not made in this execution: {} has no build",
            made_by.name
        )));
    };
    Ok(Made::Build {
        build_id,
        action: made_by,
    })
}

/// The earlier builds' artifacts the action takes as input.
async fn inputs(ctx: &Ctx, row: &Row, action: &Action) -> Result<Vec<builds::Input>> {
    let primary = action
        .config("PrimarySource")
        .map(str::to_string)
        .or_else(|| action.input_artifacts.first().map(|a| a.name.clone()));
    let mut out = Vec::new();
    for art in &action.input_artifacts {
        // The source artifact is the build's own checkout of the commit.
        let Made::Build {
            build_id,
            action: made_by,
        } = made(ctx, row, &art.name).await?
        else {
            continue;
        };
        out.push(builds::Input {
            name: art.name.clone(),
            build_id,
            primary: primary.as_deref() == Some(art.name.as_str()),
            subdir: (made_by.output_artifacts.len() > 1).then(|| art.name.clone()),
        });
    }
    Ok(out)
}
