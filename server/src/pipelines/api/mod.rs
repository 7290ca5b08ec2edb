//! `/api/v1/pipelines`: declarations (CodePipeline's JSON), executions,
//! approvals, retry and stop.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Error, ErrorBody, Json, Result};
use crate::http::auth::CurrentUser;
use crate::pipelines::transitions::{self, Transition};
use crate::pipelines::{self, control, executions, Execution, Problem, Refused, Trigger};
use crate::state::AppState;

mod notify;
mod webhook;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(notify::router())
        .merge(webhook::router())
        .routes(routes!(list_pipelines, create_pipeline))
        .routes(routes!(dry_run))
        .routes(routes!(definition_problems))
        .routes(routes!(waiting_approvals))
        .routes(routes!(get_pipeline, put_pipeline, delete_pipeline))
        .routes(routes!(list_executions, start_execution))
        .routes(routes!(get_execution))
        .routes(routes!(approve))
        .routes(routes!(retry))
        .routes(routes!(stop))
        .routes(routes!(list_transitions))
        .routes(routes!(set_transition))
}

/// A refused declaration: 422 with every problem and its place.
fn refused(Refused(list): Refused) -> Response {
    let message = list
        .iter()
        .map(|p| {
            if p.line > 0 {
                format!(
                    "{} (line {}, column {}): {}",
                    p.path, p.line, p.column, p.message
                )
            } else {
                format!("{}: {}", p.path, p.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let body = serde_json::json!({"error": {"code": "validation_failed",
        "message": format!("the pipeline is not valid: {message}"), "problems": list}});
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

fn warnings(list: Vec<Problem>) -> serde_json::Value {
    serde_json::Value::Array(
        list.into_iter()
            .map(|w| serde_json::json!({"path": w.path, "message": w.message, "line": w.line, "column": w.column}))
            .collect(),
    )
}

/// Your pipelines (administrators: all), each with its latest execution.
#[utoipa::path(get, path = "/pipelines", tag = "pipelines",
    responses((status = 200, description = "`[{name, owner, source, latest_execution}]`"), (status = 401, body = ErrorBody)))]
async fn list_pipelines(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<serde_json::Value>> {
    let mut out = Vec::new();
    for p in pipelines::list_for(&state.pool, &current.user).await? {
        let latest = executions::rows_of(&state.pool, &p.id, 1)
            .await?
            .into_iter()
            .next();
        let (repo, branch) = p.declaration.source().unwrap_or_default();
        out.push(serde_json::json!({"name": p.name, "owner": p.owner,
            "source": {"repository": repo, "branch": branch},
            "latest_execution": latest.map(|e| serde_json::json!({"id": e.id, "status": e.status}))}));
    }
    Ok(Json(serde_json::Value::Array(out)))
}

/// Create a pipeline from CodePipeline's declaration JSON
/// (`{"pipeline": {...}}`; `roleArn` and `artifactStore` accepted and
/// ignored). Answers its name and warnings (such as "not runnable here").
#[utoipa::path(post, path = "/pipelines", tag = "pipelines",
    request_body(content = Object, description = "CodePipeline's declaration"),
    responses((status = 201, description = "`{name, warnings: [{path, message}]}`"),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_pipeline(
    State(state): State<AppState>,
    current: CurrentUser,
    body: String,
) -> Result<Response> {
    let (decl, warns) = match pipelines::read(&state.pool, &body, &current.user).await? {
        Ok(read) => read,
        Err(r) => return Ok(refused(r)),
    };
    let p = pipelines::create(&state.pool, &decl, &current.user).await?;
    tracing::info!(pipeline = %p.name, by = %current.user.name, "pipeline created");
    let body = serde_json::json!({"name": p.name, "warnings": warnings(warns)});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The declaration, as get-pipeline prints it.
#[utoipa::path(get, path = "/pipelines/{name}", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    responses((status = 200, description = "`{pipeline, metadata}`"), (status = 404, body = ErrorBody)))]
async fn get_pipeline(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let (p, _) = pipelines::visible_to(&state.pool, &current.user, &name).await?;
    Ok(Json(
        serde_json::json!({"pipeline": p.declaration, "metadata": {
        "owner": p.owner, "created": crate::db::rfc3339(p.created_at), "updated": crate::db::rfc3339(p.updated_at)}}),
    ))
}

/// Replace the declaration (running executions keep the one they started with).
#[utoipa::path(put, path = "/pipelines/{name}", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    request_body(content = Object, description = "CodePipeline's declaration"),
    responses((status = 200, description = "`{name, warnings}`"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_pipeline(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    body: String,
) -> Result<Response> {
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    if let Some((repo, path)) = &p.defined_in {
        return Err(Error::Conflict(format!(
            "{} is defined in {repo}:{path}: change it there, and push",
            p.name
        )));
    }
    let (decl, warns) = match pipelines::read(&state.pool, &body, &current.user).await? {
        Ok(read) => read,
        Err(r) => return Ok(refused(r)),
    };
    pipelines::update(&state.pool, &p, &decl).await?;
    Ok(Json(serde_json::json!({"name": p.name, "warnings": warnings(warns)})).into_response())
}

#[utoipa::path(delete, path = "/pipelines/{name}", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    responses((status = 204, description = "Deleted with its executions"), (status = 404, body = ErrorBody)))]
async fn delete_pipeline(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    pipelines::delete(&state.pool, &p).await?;
    tracing::info!(pipeline = %p.name, by = %current.user.name, "pipeline deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A pipeline's executions, newest first.
#[utoipa::path(get, path = "/pipelines/{name}/executions", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    responses((status = 200, body = Vec<Execution>), (status = 404, body = ErrorBody)))]
async fn list_executions(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<Vec<Execution>>> {
    let (p, _) = pipelines::visible_to(&state.pool, &current.user, &name).await?;
    let mut out = Vec::new();
    for row in executions::rows_of(&state.pool, &p.id, 50).await? {
        out.push(executions::state(&state.pool, &p.name, &row).await?);
    }
    Ok(Json(out))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartExecution {
    /// A branch, tag or commit of the source repository (default: its branch).
    #[serde(default, rename = "ref")]
    pub ref_name: Option<String>,
    /// Pipeline variables' values for this execution.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// Start an execution by hand.
#[utoipa::path(post, path = "/pipelines/{name}/executions", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    request_body(content = StartExecution, description = "Optional"),
    responses((status = 201, description = "`{id}`"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn start_execution(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let req: StartExecution = if body.iter().all(u8::is_ascii_whitespace) {
        StartExecution::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::Unprocessable(format!("the request body is not valid: {e}")))?
    };
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    let (commit, branch) =
        pipelines::triggers::resolve(&state, &state.repo_locks, &p, req.ref_name.as_deref())
            .await?;
    let p = pipelines::in_repo::at_commit(&state, &state.repo_locks, p, &commit).await?;
    let trigger = Trigger {
        kind: "manual".into(),
        by: current.user.name.clone(),
        ref_name: req.ref_name.unwrap_or_else(|| branch.clone()),
    };
    let id = pipelines::start(&state, &p, trigger, &commit, &branch, &req.variables).await?;
    state.pipelines.wake.notify_one();
    Ok((StatusCode::CREATED, Json(serde_json::json!({"id": id}))).into_response())
}

/// An execution's state: stages and actions with CodePipeline's status words.
#[utoipa::path(get, path = "/pipelines/{name}/executions/{id}", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name"), ("id" = String, Path, description = "Execution id")),
    responses((status = 200, body = Execution), (status = 404, body = ErrorBody)))]
async fn get_execution(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Execution>> {
    let (p, row, _) = control::visible_execution(&state.pool, &current.user, &name, &id).await?;
    Ok(Json(executions::state(&state.pool, &p.name, &row).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub stage: String,
    pub action: String,
    /// `Approved` or `Rejected`.
    pub result: String,
    #[serde(default)]
    pub comment: String,
}

/// Approve or reject a waiting manual approval; needs
/// `codepipeline:PutApprovalResult` on `arn:nubo:codepipeline:::PIPELINE/STAGE/ACTION`.
#[utoipa::path(post, path = "/pipelines/{name}/executions/{id}/approval", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name"), ("id" = String, Path, description = "Execution id")),
    request_body = Approval,
    responses((status = 200, description = "Recorded"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, id)): Path<(String, String)>,
    Json(body): Json<Approval>,
) -> Result<Json<serde_json::Value>> {
    control::approve(
        &state,
        &current.user,
        &name,
        &id,
        &body.stage,
        &body.action,
        &body.result,
        &body.comment,
    )
    .await?;
    state.pipelines.wake.notify_one();
    Ok(Json(serde_json::json!({"result": body.result})))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub stage: String,
    /// `FAILED_ACTIONS` (the default) or `ALL_ACTIONS`.
    #[serde(default)]
    pub mode: Option<String>,
}

/// Retry a failed stage: its failed actions, or all of them.
#[utoipa::path(post, path = "/pipelines/{name}/executions/{id}/retry", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name"), ("id" = String, Path, description = "Execution id")),
    request_body = Retry,
    responses((status = 200, description = "Retrying"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, id)): Path<(String, String)>,
    Json(body): Json<Retry>,
) -> Result<Json<serde_json::Value>> {
    let mode = body.mode.unwrap_or_else(|| "FAILED_ACTIONS".into());
    control::retry(&state, &current.user, &name, &id, &body.stage, &mode).await?;
    state.pipelines.wake.notify_one();
    Ok(Json(
        serde_json::json!({"retrying": body.stage, "mode": mode}),
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    /// Abandon running actions instead of letting them finish.
    #[serde(default)]
    pub abandon: bool,
}

/// Stop an execution: let running actions finish, or abandon them.
#[utoipa::path(post, path = "/pipelines/{name}/executions/{id}/stop", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name"), ("id" = String, Path, description = "Execution id")),
    request_body = Stop,
    responses((status = 200, description = "Stopping or stopped"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn stop(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>> {
    let req: Stop = if body.iter().all(u8::is_ascii_whitespace) {
        Stop::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::Unprocessable(format!("the request body is not valid: {e}")))?
    };
    let status = control::stop(
        &state,
        &state.builds,
        &current.user,
        &name,
        &id,
        req.abandon,
    )
    .await?;
    state.pipelines.wake.notify_one();
    Ok(Json(serde_json::json!({"status": status})))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    /// The repository pushed to.
    pub repository: String,
    /// The ref pushed: `refs/heads/B` or `refs/tags/T`.
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// The files the push changed (for file-path filters).
    #[serde(default)]
    pub paths: Vec<String>,
}

/// Which of your pipelines a push would start, and why (nothing is started).
#[utoipa::path(post, path = "/pipelines/dry-run", tag = "pipelines", request_body = DryRun,
    responses((status = 200, description = "`{results: [{pipeline, starts, why}], summary}`")))]
async fn dry_run(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<DryRun>,
) -> Result<Json<serde_json::Value>> {
    let mut results = Vec::new();
    for p in pipelines::list_for(&state.pool, &current.user).await? {
        if !p
            .declaration
            .source()
            .is_some_and(|(r, _)| r.eq_ignore_ascii_case(&body.repository))
        {
            continue;
        }
        let (starts, why) =
            pipelines::triggers::evaluate(&p, &body.repository, &body.ref_name, &body.paths);
        results.push(serde_json::json!({"pipeline": p.name, "starts": starts, "why": why}));
    }
    let n = results.iter().filter(|r| r["starts"] == true).count();
    let summary = match n {
        0 => "no pipeline would start".to_string(),
        1 => "1 pipeline would start".to_string(),
        n => format!("{n} pipelines would start"),
    };
    Ok(Json(
        serde_json::json!({"results": results, "summary": summary}),
    ))
}

/// The transitions into each stage but the first: enabled, or disabled
/// with who, when and why.
#[utoipa::path(get, path = "/pipelines/{name}/transitions", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    responses((status = 200, body = Vec<Transition>), (status = 404, body = ErrorBody)))]
async fn list_transitions(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<Vec<Transition>>> {
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    Ok(Json(transitions::list(&state.pool, &p).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTransition {
    pub enabled: bool,
    /// Why (required to disable; at most 300 characters, one line).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Disable (with a reason) or enable the transition into a stage.
/// Executions reaching a disabled transition wait before the stage (under
/// SUPERSEDED only the newest); enabling it lets them in.
#[utoipa::path(post, path = "/pipelines/{name}/transitions/{stage}", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name"), ("stage" = String, Path, description = "The stage the transition leads into")),
    request_body = SetTransition,
    responses((status = 200, body = Transition), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_transition(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, stage)): Path<(String, String)>,
    Json(body): Json<SetTransition>,
) -> Result<Json<Transition>> {
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    let t = transitions::set(
        &state.pool,
        &p,
        &current.user,
        &stage,
        body.enabled,
        body.reason.as_deref(),
    )
    .await?;
    state.pipelines.wake.notify_one();
    Ok(Json(t))
}

/// The pipeline definitions in repositories you can read that their last
/// push could not use (`.nubo/pipelines/*`), with why.
#[utoipa::path(get, path = "/pipelines/definitions/problems", tag = "pipelines",
    responses((status = 200, body = Vec<pipelines::in_repo::DefinitionProblem>)))]
async fn definition_problems(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<pipelines::in_repo::DefinitionProblem>>> {
    Ok(Json(
        pipelines::in_repo::problems_for(&state.pool, &current.user).await?,
    ))
}

/// The manual approvals you may answer now (you see the pipeline and hold
/// `codepipeline:PutApprovalResult` on the action), oldest first.
#[utoipa::path(get, path = "/pipelines/approvals/waiting", tag = "pipelines",
    responses((status = 200, body = Vec<pipelines::awaiting::Waiting>)))]
async fn waiting_approvals(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<pipelines::awaiting::Waiting>>> {
    Ok(Json(
        pipelines::awaiting::for_user(&state.pool, &current.user).await?,
    ))
}
