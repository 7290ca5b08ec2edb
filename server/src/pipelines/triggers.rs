//! What starts executions: a push to a pipeline's source branch (the
//! default trigger), and a manual start on a branch, tag or commit.

use std::collections::BTreeMap;

use super::{start, Pipeline, Trigger};
use crate::ctx::Ctx;
use crate::error::{Error, Result};
use crate::events::RefUpdate;

const ZERO: &str = "0000000000000000000000000000000000000000";

/// The pipelines a push of `ref_name` to `repo` starts.
pub fn matching<'p>(pipelines: &'p [Pipeline], repo: &str, ref_name: &str) -> Vec<&'p Pipeline> {
    let Some(branch) = ref_name.strip_prefix("refs/heads/") else {
        return Vec::new();
    };
    pipelines
        .iter()
        .filter(|p| {
            p.declaration
                .source()
                .is_some_and(|(r, b)| r.eq_ignore_ascii_case(repo) && b == branch)
        })
        .collect()
}

/// Starts the pipelines a pushed ref update matches; answers their
/// execution ids. A deleted branch starts nothing.
pub async fn on_push(ctx: &Ctx, update: &RefUpdate) -> Result<Vec<String>> {
    if update.new == ZERO || update.new.chars().all(|c| c == '0') {
        return Ok(Vec::new());
    }
    let all = super::list_all(&ctx.pool).await?;
    let mut started = Vec::new();
    for p in matching(&all, &update.repo, &update.ref_name) {
        // The creator runs it: they must still be able to read the source.
        let owner = super::owner(&ctx.pool, p).await?;
        if let Err(e) =
            crate::repos::authorize(&ctx.pool, &update.repo, &owner, "codecommit:GitPull").await
        {
            tracing::warn!(pipeline = %p.name, error = %e, "a push did not start the pipeline: its creator cannot read the repository");
            continue;
        }
        let trigger = Trigger {
            kind: "push".into(),
            by: update.pusher.clone(),
            ref_name: update.ref_name.clone(),
        };
        let branch = update.ref_name.trim_start_matches("refs/heads/");
        started.push(start(ctx, p, trigger, &update.new, branch, &BTreeMap::new()).await?);
    }
    Ok(started)
}

/// The commit `rev` (a branch, a tag or a commit id; default: the source
/// branch) names in the pipeline's source repository, and its branch.
pub async fn resolve(
    ctx: &Ctx,
    locks: &crate::repos::Locks,
    pipeline: &Pipeline,
    rev: Option<&str>,
) -> Result<(String, String)> {
    let (repo_name, branch) = pipeline
        .declaration
        .source()
        .ok_or_else(|| Error::Conflict("the pipeline has no source action Nubo can run".into()))?;
    let repo = crate::repos::find(&ctx.pool, repo_name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no repository named {repo_name:?}")))?;
    let (dir, _) = crate::repos::working_copy(ctx, locks, &repo, false).await?;
    let rev = rev
        .unwrap_or(branch)
        .trim()
        .trim_start_matches("refs/heads/")
        .to_string();
    let r = rev.clone();
    let commits = tokio::task::spawn_blocking(move || nubo_git::browse::log(&dir, &r, 1))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|_| {
            Error::invalid(
                "ref",
                format!("no branch, tag or commit {rev:?} in {repo_name}"),
            )
        })?;
    let commit = commits
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid("ref", format!("{rev:?} has no commits")))?;
    let on = if commit.id.starts_with(&rev) {
        branch.to_string()
    } else {
        rev
    };
    Ok((commit.id, on))
}

/// A commit's message and time, for the source action's variables.
pub async fn commit_info(
    ctx: &Ctx,
    locks: &crate::repos::Locks,
    repo_name: &str,
    commit: &str,
) -> Option<nubo_git::browse::CommitInfo> {
    let repo = crate::repos::find(&ctx.pool, repo_name).await.ok()??;
    let (dir, _) = crate::repos::working_copy(ctx, locks, &repo, false)
        .await
        .ok()?;
    let c = commit.to_string();
    tokio::task::spawn_blocking(move || nubo_git::browse::log(&dir, &c, 1))
        .await
        .ok()?
        .ok()?
        .into_iter()
        .next()
}
