//! What starts executions: a push — to the source action's branch, or,
//! when the declaration has push filters (V2 `triggers`), to a branch or
//! tag they admit, with a changed file they admit when they name file
//! paths — and a manual start on a branch, tag or commit. The dry run
//! answers which pipelines a push would start, and why.

use std::collections::BTreeMap;

use super::{start, Pipeline, Trigger};
use crate::ctx::Ctx;
use crate::error::{Error, Result};
use crate::events::RefUpdate;

/// The most changed paths looked at for file-path filters.
const MAX_PATHS: usize = 10_000;

fn zero(id: &str) -> bool {
    id.chars().all(|c| c == '0')
}

/// Whether a push of `ref_name` to `repo` that changed `paths` starts
/// `pipeline`, and why, in words.
pub fn evaluate(
    pipeline: &Pipeline,
    repo: &str,
    ref_name: &str,
    paths: &[String],
) -> (bool, String) {
    let Some((source, branch)) = pipeline.declaration.source() else {
        return (false, "it has no source action Nubo runs".into());
    };
    if !source.eq_ignore_ascii_case(repo) {
        return (false, format!("its source is the repository {source}"));
    }
    let filters = &pipeline.declaration.push_filters;
    if filters.is_empty() {
        return if ref_name == format!("refs/heads/{branch}") {
            (true, format!("a push to its source branch {branch}"))
        } else {
            (
                false,
                format!("it starts on pushes to {branch} only (it has no push filters)"),
            )
        };
    }
    nubo_runner::pipeline::decide(filters, ref_name, paths)
}

fn wants_paths(p: &Pipeline) -> bool {
    p.declaration
        .push_filters
        .iter()
        .any(|f| f.file_paths.is_some())
}

/// Starts the pipelines a pushed ref update starts; answers their
/// execution ids. A deleted ref starts nothing.
pub async fn on_push(
    ctx: &Ctx,
    locks: &crate::repos::Locks,
    update: &RefUpdate,
) -> Result<Vec<String>> {
    if zero(&update.new) {
        return Ok(Vec::new());
    }
    // Pipelines from the API; those defined in a repository run only from
    // the files of the pushed commit (below).
    let mut candidates: Vec<Pipeline> = super::list_all(&ctx.pool)
        .await?
        .into_iter()
        .filter(|p| p.defined_in.is_none())
        .filter(|p| {
            p.declaration
                .source()
                .is_some_and(|(r, _)| r.eq_ignore_ascii_case(&update.repo))
        })
        .collect();
    let repo = crate::repos::find(&ctx.pool, &update.repo)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no repository named {:?}", update.repo)))?;
    let (dir, _) = crate::repos::working_copy(ctx, locks, &repo, false).await?;
    if update.ref_name.starts_with("refs/heads/") {
        if let Some(pusher) =
            crate::identity::accounts::find_by_name(&ctx.pool, &update.pusher).await?
        {
            let (valid, mut invalid) =
                super::in_repo::definitions(dir.clone(), &repo.name, &update.new).await;
            for (path, decl) in valid {
                match super::in_repo::register(&ctx.pool, &repo.name, &path, &decl, &pusher).await?
                {
                    Some(p) => candidates.push(p),
                    None => invalid.push((
                        path,
                        format!(
                            "it names pipeline {}, which is defined elsewhere: it is not run",
                            decl.name
                        ),
                    )),
                }
            }
            let branch = update.ref_name.trim_start_matches("refs/heads/");
            super::in_repo::record_problems(
                &ctx.pool,
                &repo.name,
                branch,
                &update.new,
                &pusher.name,
                &invalid,
            )
            .await?;
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let paths = if candidates.iter().any(wants_paths) {
        let (d, old, new) = (dir.clone(), update.old.clone(), update.new.clone());
        tokio::task::spawn_blocking(move || {
            let old = (!zero(&old)).then_some(old);
            nubo_git::browse::changed_paths(&d, old.as_deref(), &new, MAX_PATHS)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(e.to_string()))?
    } else {
        Vec::new()
    };
    // A tag's commit (an annotated tag points at a tag object).
    let (d, new) = (dir.clone(), update.new.clone());
    let commit = tokio::task::spawn_blocking(move || nubo_git::browse::log(&d, &new, 1))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(e.to_string()))?
        .into_iter()
        .next()
        .map(|c| c.id)
        .unwrap_or_else(|| update.new.clone());
    let mut started = Vec::new();
    for p in &candidates {
        let (starts, why) = evaluate(p, &update.repo, &update.ref_name, &paths);
        if !starts {
            tracing::debug!(pipeline = %p.name, reference = %update.ref_name, why, "a push did not start the pipeline");
            continue;
        }
        // The creator runs it: they must still be able to read the source.
        // Who runs it (the creator, or the pusher for a definition in the
        // repository) must still be able to read the source.
        let owner = match &p.defined_in {
            Some(_) => {
                crate::identity::accounts::require_by_name(&ctx.pool, &update.pusher).await?
            }
            None => super::owner(&ctx.pool, p).await?,
        };
        if let Err(e) =
            crate::repos::authorize(&ctx.pool, &update.repo, &owner, "codecommit:GitPull").await
        {
            tracing::warn!(pipeline = %p.name, error = %e, "a push did not start the pipeline: its creator cannot read the repository");
            continue;
        }
        let branch = match update.ref_name.strip_prefix("refs/heads/") {
            Some(b) => b.to_string(),
            None => p
                .declaration
                .source()
                .map(|(_, b)| b.to_string())
                .unwrap_or_default(),
        };
        let trigger = Trigger {
            kind: "push".into(),
            by: update.pusher.clone(),
            ref_name: update.ref_name.clone(),
        };
        tracing::info!(pipeline = %p.name, why, "a push starts the pipeline");
        started.push(start(ctx, p, trigger, &commit, &branch, &BTreeMap::new()).await?);
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
