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
            .map(|e| match e.path.as_str() {
                "" => format!("{}:{}: {}", e.pos.line, e.pos.col, e.message),
                path => format!("{}:{}: {path}: {}", e.pos.line, e.pos.col, e.message),
            })
            .collect();
        return Err(problems.join("; "));
    };
    match decl.source() {
        Some((r, _)) if r.eq_ignore_ascii_case(repo) => Ok(decl),
        _ => Err(format!("its source must be this repository ({repo})")),
    }
}

/// What the definitions at a commit are: (path, declaration) for the
/// valid ones, (path, why) for the others.
pub type Read = (Vec<(String, Declaration)>, Vec<(String, String)>);

/// The definitions at `commit`: the valid ones, and the invalid ones with
/// their problems (logged too).
pub async fn definitions(dir: PathBuf, repo: &str, commit: &str) -> Read {
    let (repo, commit) = (repo.to_string(), commit.to_string());
    tokio::task::spawn_blocking(move || {
        let Ok(entries) = nubo_git::browse::tree(&dir, &commit, DIR) else {
            return (Vec::new(), Vec::new());
        };
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        for e in entries.iter().filter(|e| e.kind == "blob" && is_definition(&e.name)).take(MAX_FILES) {
            let path = format!("{DIR}/{}", e.name);
            match read_one(&dir, &repo, &commit, &path) {
                Ok(decl) => out.push((path, decl)),
                Err(why) => {
                    tracing::warn!(%repo, %path, %commit, problems = %why, "a pipeline definition in the repository is not valid");
                    bad.push((path, why));
                }
            }
        }
        (out, bad)
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

/// A definition file the last push to a branch could not use, and why.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DefinitionProblem {
    pub repository: String,
    pub branch: String,
    pub path: String,
    pub commit: String,
    pub problem: String,
    pub pusher: String,
    /// RFC 3339.
    pub time: String,
}

/// Replaces what is known to be wrong with the definitions on `branch`
/// by `problems` (none: all of them were read).
pub async fn record_problems(
    pool: &SqlitePool,
    repo: &str,
    branch: &str,
    commit: &str,
    pusher: &str,
    problems: &[(String, String)],
) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM pipeline_definition_problems WHERE repo_name = $1 AND branch = $2")
        .bind(repo)
        .bind(branch)
        .execute(&mut *tx)
        .await?;
    for (path, problem) in problems {
        sqlx::query(
            "INSERT INTO pipeline_definition_problems (repo_name, branch, path, commit_sha, problem, pusher, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(repo)
        .bind(branch)
        .bind(path)
        .bind(commit)
        .bind(problem)
        .bind(pusher)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The problems in the repositories `user` can read.
pub async fn problems_for(pool: &SqlitePool, user: &User) -> Result<Vec<DefinitionProblem>> {
    let readable = crate::repos::readable_names(pool, user).await?;
    type R = (String, String, String, String, String, String, i64);
    let rows: Vec<R> = sqlx::query_as(
        "SELECT repo_name, branch, path, commit_sha, problem, pusher, at FROM pipeline_definition_problems
         ORDER BY at DESC, repo_name, path LIMIT 200",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| readable.contains(&r.0.to_lowercase()))
        .map(|r| DefinitionProblem {
            repository: r.0,
            branch: r.1,
            path: r.2,
            commit: r.3,
            problem: r.4,
            pusher: r.5,
            time: crate::db::rfc3339(r.6),
        })
        .collect())
}
