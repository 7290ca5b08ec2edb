//! Starting a build: the request (branch, commit, variables, and a
//! pipeline's input artifacts) checked and queued as a `QUEUED` row.

use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use utoipa::ToSchema;

use super::{find_build, validate_env, Build, Project};
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use crate::identity::accounts::User;

#[derive(Debug, Clone, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StartBuild {
    /// Default: the project's branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// A commit to build instead of the branch's head.
    #[serde(default)]
    pub commit: Option<String>,
    /// Variables overriding the project's and the buildspec's.
    #[serde(default)]
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// Earlier builds' artifacts to put in the source (a pipeline's input
    /// artifacts); not part of the API.
    #[serde(skip)]
    #[schema(ignore)]
    pub inputs: Vec<Input>,
}

/// An input artifact: an earlier build's artifacts, laid over the checkout
/// (the primary input, as CodeBuild's CODEBUILD_SRC_DIR holds it) or put in
/// `.codepipeline/NAME` with `CODEBUILD_SRC_DIR_NAME` pointing there.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub build_id: String,
    pub primary: bool,
    /// The producing build's secondary artifact of this name, when it had
    /// several output artifacts (CodeBuild maps them by identifier).
    #[serde(default)]
    pub subdir: Option<String>,
}

/// Checks what a start request names: a branch, a commit, variables.
pub fn check_start(branch: &str, req: &StartBuild) -> Result<()> {
    if branch.starts_with('-') || branch.contains("..") || branch.contains(char::is_whitespace) {
        return Err(Error::Unprocessable(format!(
            "{branch:?} is not a branch name"
        )));
    }
    if let Some(c) = &req.commit {
        if !(4..=64).contains(&c.len()) || !c.chars().all(|ch| ch.is_ascii_hexdigit()) {
            return Err(Error::Unprocessable(format!("{c:?} is not a commit id")));
        }
    }
    let env: Vec<(String, String)> = req.env.clone().unwrap_or_default().into_iter().collect();
    validate_env(&env)
}

/// Queues a build; answers it (QUEUED).
pub async fn start(
    pool: &SqlitePool,
    project: &Project,
    initiator: &User,
    req: StartBuild,
) -> Result<Build> {
    let branch = req
        .branch
        .clone()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| project.branch.clone());
    check_start(&branch, &req)?;
    let env: Vec<(String, String)> = req.env.clone().unwrap_or_default().into_iter().collect();
    let mut tx = pool.begin().await?;
    let number: i64 = sqlx::query_scalar(
        "UPDATE build_projects SET next_number = next_number + 1 WHERE id = $1 RETURNING next_number - 1",
    )
    .bind(&project.id)
    .fetch_one(&mut *tx)
    .await?;
    let id = format!("{}:{}", project.name, new_id());
    sqlx::query(
        "INSERT INTO builds (id, project_id, number, status, phases_json, branch, commit_sha, initiator,
             env_json, queued_at, exported_json, inputs_json)
         VALUES ($1, $2, $3, 'QUEUED', '[]', $4, $5, $6, $7, $8, '[]', $9)",
    )
    .bind(&id)
    .bind(&project.id)
    .bind(number)
    .bind(&branch)
    .bind(&req.commit)
    .bind(&initiator.name)
    .bind(serde_json::to_string(&env).unwrap_or_default())
    .bind(now_ms())
    .bind(serde_json::to_string(&req.inputs).unwrap_or_default())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(find_build(pool, &id).await?.expect("just made"))
}
