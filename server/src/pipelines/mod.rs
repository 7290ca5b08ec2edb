//! Pipelines: CodePipeline declarations stored as JSON, and their
//! executions as state machines in the database (`engine` moves them;
//! `triggers` starts them on pushes). Who may do what: a pipeline's
//! creator (or an administrator) manages it and its executions run as
//! them, re-checked at every build they start; approving needs
//! `codepipeline:PutApprovalResult` on `arn:nubo:codepipeline:::P/STAGE/ACTION`.

use std::collections::BTreeMap;

use nubo_runner::pipeline::{self as model, Pipeline as Declaration, Runs};
use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::ctx::Ctx;
use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::{self, User};

pub mod api;
pub mod awaiting;
mod build_action;
pub mod cli;
pub mod conditions;
pub mod control;
pub mod deploy_action;
pub mod engine;
pub mod events;
pub mod executions;
pub mod in_repo;
pub mod pages;
pub mod supersede;
pub mod transitions;
pub mod triggers;
pub mod webhook;

pub use executions::Execution;

/// A stored pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub id: String,
    pub name: String,
    pub declaration: Declaration,
    pub owner_id: String,
    pub owner: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// (repository, path) when it is defined in a repository's
    /// `.nubo/pipelines/`; its executions then run the file of their
    /// commit, as the user who pushed (or started) them.
    pub defined_in: Option<(String, String)>,
}

/// A problem of a declaration, as the API answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A declaration that was refused: every problem with its place.
#[derive(Debug)]
pub struct Refused(pub Vec<Problem>);

fn problems(list: Vec<model::Problem>) -> Vec<Problem> {
    list.into_iter()
        .map(|p| Problem {
            path: p.path,
            line: p.pos.line,
            column: p.pos.col,
            message: p.message,
        })
        .collect()
}

/// Reads a declaration and checks what it names against Nubo: its source
/// repository exists and `user` may read it; each build project exists
/// and is `user`'s. Answers it with its warnings, or every problem.
pub async fn read(
    pool: &SqlitePool,
    text: &str,
    user: &User,
) -> Result<std::result::Result<(Declaration, Vec<Problem>), Refused>> {
    let checked = model::check(text, &BTreeMap::new());
    let warnings = problems(checked.warnings);
    let Some(decl) = checked.pipeline else {
        return Ok(Err(Refused(problems(checked.errors))));
    };
    if decl.name.eq_ignore_ascii_case("dry-run") {
        let message =
            "the name dry-run is taken by the API (/api/v1/pipelines/dry-run)".to_string();
        return Ok(Err(Refused(vec![Problem {
            path: "pipeline.name".into(),
            line: 0,
            column: 0,
            message,
        }])));
    }
    let mut refused = Vec::new();
    let mut refuse = |path: String, message: String| {
        refused.push(Problem {
            path,
            line: 0,
            column: 0,
            message,
        });
    };
    for (si, stage) in decl.stages.iter().enumerate() {
        for (ai, action) in stage.actions.iter().enumerate() {
            let path = format!("pipeline.stages[{si}].actions[{ai}].configuration");
            match action.runs() {
                Runs::Source => {
                    let (repo, _) = decl.source().unwrap_or_default();
                    let ok = crate::repos::authorize(pool, repo, user, "codecommit:GitPull").await;
                    if let Err(e) = ok {
                        refuse(
                            format!("{path}.RepositoryName"),
                            format!("repository {repo:?}: {}", e.public_message()),
                        );
                    }
                }
                Runs::Build => {
                    let name = action.config("ProjectName").unwrap_or_default();
                    if crate::builds::project_for(pool, user, name).await.is_err() {
                        refuse(
                            format!("{path}.ProjectName"),
                            format!("there is no build project of yours named {name:?}"),
                        );
                    }
                }
                _ => {}
            }
        }
    }
    if refused.is_empty() {
        Ok(Ok((decl, warnings)))
    } else {
        Ok(Err(Refused(refused)))
    }
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
);
const SELECT: &str =
    "SELECT p.id, p.name, p.definition_json, p.created_by, u.name, p.created_at, p.updated_at, p.repo_name, p.repo_path
                      FROM pipelines p JOIN users u ON u.id = p.created_by";

fn from_row(r: Row) -> Result<Pipeline> {
    let declaration = serde_json::from_str(&r.2)
        .map_err(|e| Error::Internal(format!("pipeline {} is stored badly: {e}", r.1)))?;
    Ok(Pipeline {
        id: r.0,
        name: r.1,
        declaration,
        owner_id: r.3,
        owner: r.4,
        created_at: r.5,
        updated_at: r.6,
        defined_in: r.7.zip(r.8),
    })
}

pub async fn find(pool: &SqlitePool, name: &str) -> Result<Option<Pipeline>> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE lower(p.name) = lower($1)"))
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.map(from_row).transpose()
}

pub async fn find_by_id(pool: &SqlitePool, id: &str) -> Result<Option<Pipeline>> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE p.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(from_row).transpose()
}

/// The pipeline, if `user` manages it (its creator or an administrator).
pub async fn for_user(pool: &SqlitePool, user: &User, name: &str) -> Result<Pipeline> {
    match find(pool, name).await? {
        Some(p) if p.owner_id == user.id || user.admin => Ok(p),
        _ => Err(Error::NotFound(format!("no pipeline named {name:?}"))),
    }
}

/// The pipeline, if `user` may see it — its managers, and whoever can
/// read its source repository (they see its executions and events, and
/// answer approvals their policies allow) — and whether they manage it.
pub async fn visible_to(pool: &SqlitePool, user: &User, name: &str) -> Result<(Pipeline, bool)> {
    let missing = || Error::NotFound(format!("no pipeline named {name:?}"));
    let p = find(pool, name).await?.ok_or_else(missing)?;
    if p.owner_id == user.id || user.admin {
        return Ok((p, true));
    }
    let (repo, _) = p.declaration.source().unwrap_or_default();
    match crate::repos::authorize(pool, repo, user, "codecommit:GitPull").await {
        Ok(_) => Ok((p, false)),
        Err(_) => Err(missing()),
    }
}

/// Every pipeline (for the engine and the triggers).
pub async fn list_all(pool: &SqlitePool) -> Result<Vec<Pipeline>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} ORDER BY lower(p.name)"))
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(from_row).collect()
}

/// The pipelines `user` manages or can see (their source repository is
/// readable to them).
pub async fn list_for(pool: &SqlitePool, user: &User) -> Result<Vec<Pipeline>> {
    let readable = crate::repos::readable_names(pool, user).await?;
    Ok(list_all(pool)
        .await?
        .into_iter()
        .filter(|p| {
            user.admin
                || p.owner_id == user.id
                || p.declaration
                    .source()
                    .is_some_and(|(r, _)| readable.contains(&r.to_lowercase()))
        })
        .collect())
}

fn to_json(decl: &Declaration) -> String {
    serde_json::to_string(decl).unwrap_or_default()
}

pub async fn create(pool: &SqlitePool, decl: &Declaration, user: &User) -> Result<Pipeline> {
    let id = new_id();
    let now = now_ms();
    let done = sqlx::query(
        "INSERT INTO pipelines (id, name, definition_json, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&id)
    .bind(&decl.name)
    .bind(to_json(decl))
    .bind(&user.id)
    .bind(now)
    .execute(pool)
    .await;
    match done {
        Ok(_) => Ok(find_by_id(pool, &id).await?.expect("just made")),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(Error::Conflict(format!(
            "a pipeline named {:?} already exists",
            decl.name
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Replaces a pipeline's declaration; running executions keep theirs.
pub async fn update(pool: &SqlitePool, pipeline: &Pipeline, decl: &Declaration) -> Result<()> {
    if !decl.name.eq_ignore_ascii_case(&pipeline.name) {
        return Err(Error::invalid(
            "name",
            format!(
                "the declaration is named {:?}, not {:?}: a pipeline keeps its name",
                decl.name, pipeline.name
            ),
        ));
    }
    sqlx::query("UPDATE pipelines SET definition_json = $1, updated_at = $2 WHERE id = $3")
        .bind(to_json(decl))
        .bind(now_ms())
        .bind(&pipeline.id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn delete(pool: &SqlitePool, pipeline: &Pipeline) -> Result<()> {
    sqlx::query("DELETE FROM pipelines WHERE id = $1")
        .bind(&pipeline.id)
        .execute(pool)
        .await?;
    Ok(())
}

/// What started an execution.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Trigger {
    /// `push`, `manual`, `webhook` or `rollback`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The user who pushed or started it.
    pub by: String,
    #[serde(rename = "ref")]
    pub ref_name: String,
}

/// Starts an execution of `pipeline` at `commit` (on `branch`), with
/// pipeline variables overridden by `variables`.
pub async fn start(
    ctx: &Ctx,
    pipeline: &Pipeline,
    trigger: Trigger,
    commit: &str,
    branch: &str,
    variables: &BTreeMap<String, String>,
) -> Result<String> {
    let decl = &pipeline.declaration;
    for name in variables.keys() {
        if !decl.variables.iter().any(|v| &v.name == name) {
            return Err(Error::invalid(
                "variables",
                format!("the pipeline has no variable {name:?}"),
            ));
        }
    }
    let mut vars: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let pipeline_vars = decl
        .variables
        .iter()
        .map(|v| {
            let value = variables
                .get(&v.name)
                .cloned()
                .unwrap_or_else(|| v.default_value.clone());
            (v.name.clone(), value)
        })
        .collect();
    vars.insert("variables".into(), pipeline_vars);
    let id = new_id();
    vars.insert(
        "codepipeline".into(),
        [("PipelineExecutionId".to_string(), id.clone())].into(),
    );
    // One statement: its number is taken as it is written (a read then a
    // write in one transaction can fail under SQLite when the engine
    // writes in between).
    let mut tx = ctx.pool.begin().await?;
    sqlx::query(
        "INSERT INTO pipeline_executions (id, pipeline_id, number, status, trigger_json, commit_sha, branch,
             definition_json, variables_json, started_at)
         SELECT $1, $2, COALESCE(MAX(number), 0) + 1, 'InProgress', $3, $4, $5, $6, $7, $8
         FROM pipeline_executions WHERE pipeline_id = $2",
    )
    .bind(&id)
    .bind(&pipeline.id)
    .bind(serde_json::to_string(&trigger).unwrap_or_default())
    .bind(commit)
    .bind(branch)
    .bind(to_json(decl))
    .bind(serde_json::to_string(&vars).unwrap_or_default())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    // The execution and its first event together (the insert came first,
    // so this transaction holds the write lock).
    if let Some(row) = executions::load(&mut *tx, &id).await? {
        let subject = events::Subject::Execution;
        events::record_in(&mut tx, ctx, &row, subject, "InProgress", None).await?;
    }
    tx.commit().await?;
    tracing::info!(pipeline = %pipeline.name, execution = %id, commit, by = %trigger.by, "pipeline execution started");
    Ok(id)
}

/// The user a pipeline's executions run as.
pub async fn owner(pool: &SqlitePool, pipeline: &Pipeline) -> Result<User> {
    accounts::find_by_id(pool, &pipeline.owner_id)
        .await?
        .ok_or_else(|| Error::NotFound("the pipeline's creator no longer exists".into()))
}

/// RFC 3339, for the API.
pub fn time(ms: Option<i64>) -> Option<String> {
    ms.map(rfc3339)
}
