//! Pipelines defined in their repository: `.nubo/pipelines/*.yml` (or
//! `.yaml`, `.json`) at a commit, versioned with the code. A push to a
//! branch reads the files of its commit; each valid one registers (or
//! refreshes) the pipeline it names and, when the push matches its
//! triggers, runs that file's declaration — the definition of the commit
//! it runs. Its source must be that repository. Executions run as the user
//! who pushed or started them, never as whoever pushed the file first: a
//! pusher cannot borrow someone else's build projects by editing a file.

use std::path::PathBuf;

use nubo_runner::pipeline::{check, Pipeline as Declaration};
use sqlx::SqlitePool;

use super::Pipeline;
use crate::ctx::Ctx;
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use crate::identity::accounts::User;

/// Where a repository's pipeline definitions live.
pub const DIR: &str = ".nubo/pipelines";
/// The most definition files read at a commit.
const MAX_FILES: usize = 20;

fn is_definition(name: &str) -> bool {
    [".yml", ".yaml", ".json"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Reads and checks one definition file at `commit`.
fn read_one(
    dir: &std::path::Path,
    repo: &str,
    commit: &str,
    path: &str,
) -> std::result::Result<Declaration, String> {
    let data = nubo_git::browse::blob(dir, commit, path).map_err(|e| e.to_string())?;
    let text = String::from_utf8(data).map_err(|_| "not UTF-8 text".to_string())?;
    let checked = check(&text, &Default::default());
    let Some(decl) = checked.pipeline else {
        let problems: Vec<String> = checked
            .errors
            .iter()
            .map(|e| format!("{}:{}: {}: {}", e.pos.line, e.pos.col, e.path, e.message))
            .collect();
        return Err(problems.join("; "));
    };
    match decl.source() {
        Some((r, _)) if r.eq_ignore_ascii_case(repo) => Ok(decl),
        _ => Err(format!("its source must be this repository ({repo})")),
    }
}

/// The valid definitions at `commit`: (path, declaration). Invalid ones
/// are logged with their problems and skipped.
pub async fn definitions(dir: PathBuf, repo: &str, commit: &str) -> Vec<(String, Declaration)> {
    let (repo, commit) = (repo.to_string(), commit.to_string());
    tokio::task::spawn_blocking(move || {
        let Ok(entries) = nubo_git::browse::tree(&dir, &commit, DIR) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries.iter().filter(|e| e.kind == "blob" && is_definition(&e.name)).take(MAX_FILES) {
            let path = format!("{DIR}/{}", e.name);
            match read_one(&dir, &repo, &commit, &path) {
                Ok(decl) => out.push((path, decl)),
                Err(why) => tracing::warn!(%repo, %path, %commit, problems = %why, "a pipeline definition in the repository is not valid"),
            }
        }
        out
    })
    .await
    .unwrap_or_default()
}

/// Registers (or refreshes) the pipeline a definition file names; answers
/// it with that file's declaration, or `None` when another pipeline has
/// the name (an API one, or another file's).
pub async fn register(
    pool: &SqlitePool,
    repo: &str,
    path: &str,
    decl: &Declaration,
    pusher: &User,
) -> Result<Option<Pipeline>> {
    let json = serde_json::to_string(decl).unwrap_or_default();
    match super::find(pool, &decl.name).await? {
        Some(p)
            if p.defined_in
                .as_ref()
                .is_some_and(|(r, f)| r.eq_ignore_ascii_case(repo) && f == path) =>
        {
            sqlx::query("UPDATE pipelines SET definition_json = $1, updated_at = $2 WHERE id = $3")
                .bind(&json)
                .bind(now_ms())
                .bind(&p.id)
                .execute(pool)
                .await?;
            Ok(Some(Pipeline {
                declaration: decl.clone(),
                ..p
            }))
        }
        Some(p) => {
            tracing::warn!(pipeline = %p.name, %repo, %path, "a definition in the repository names a pipeline that exists elsewhere; it is not run");
            Ok(None)
        }
        None => {
            let id = new_id();
            sqlx::query(
                "INSERT INTO pipelines (id, name, definition_json, created_by, created_at, updated_at, repo_name, repo_path)
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(&decl.name)
            .bind(&json)
            .bind(&pusher.id)
            .bind(now_ms())
            .bind(repo)
            .bind(path)
            .execute(pool)
            .await?;
            tracing::info!(pipeline = %decl.name, %repo, %path, by = %pusher.name, "pipeline defined in its repository");
            super::find_by_id(pool, &id).await
        }
    }
}

/// The pipeline as it runs at `commit`: an API pipeline as it is, a
/// repository's with the declaration of its file at that commit.
pub async fn at_commit(
    ctx: &Ctx,
    locks: &crate::repos::Locks,
    pipeline: Pipeline,
    commit: &str,
) -> Result<Pipeline> {
    let Some((repo_name, path)) = pipeline.defined_in.clone() else {
        return Ok(pipeline);
    };
    let repo = crate::repos::find(&ctx.pool, &repo_name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no repository named {repo_name:?}")))?;
    let (dir, _) = crate::repos::working_copy(ctx, locks, &repo, false).await?;
    let (c, p, r) = (commit.to_string(), path.clone(), repo_name.clone());
    let decl = tokio::task::spawn_blocking(move || read_one(&dir, &r, &c, &p))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|why| {
            Error::invalid(
                "ref",
                format!("{path} at {commit} is not a pipeline Nubo can run: {why}"),
            )
        })?;
    Ok(Pipeline {
        declaration: decl,
        ..pipeline
    })
}
