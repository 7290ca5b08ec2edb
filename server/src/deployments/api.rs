//! `/api/v1/deploy/…`: agent tokens (administrators), targets,
//! configurations, applications, deployment groups and deployments.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::engine;
use super::revisions::Revision;
use super::{agents, view, Application, Config, Group, NewGroup};
use crate::error::{Error, ErrorBody, Json, Result};
use crate::http::auth::CurrentUser;
use crate::identity::accounts;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(list_targets))
        .routes(routes!(create_config, list_configs))
        .routes(routes!(create_application, list_applications))
        .routes(routes!(get_application))
        .routes(routes!(create_group))
        .routes(routes!(get_group))
        .routes(routes!(create_deployment))
        .routes(routes!(rollback))
        .routes(routes!(get_deployment))
        .routes(routes!(stop_deployment))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewToken {
    description: String,
    /// The user whose applications may deploy to its targets (you by default).
    #[serde(default)]
    owner: Option<String>,
}

/// Mint a token for deployment agents (administrators). It is in this
/// answer only, and can only register targets and poll as them.
#[utoipa::path(post, path = "/deploy/agent-tokens", tag = "deployments", request_body = NewToken,
    responses((status = 201, description = "`{token, id}`"), (status = 403, body = ErrorBody)))]
async fn create_token(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(t): Json<NewToken>,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    current.require_admin()?;
    let owner = match &t.owner {
        Some(name) => accounts::find_by_name(&state.pool, name)
            .await?
            .ok_or_else(|| Error::Invalid {
                field: "owner",
                message: format!("no user named {name:?}"),
            })?,
        None => current.user.clone(),
    };
    let (token, id) =
        agents::create_token(&state.pool, &current.user, &owner, &t.description).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"token": token, "id": id})),
    ))
}

#[utoipa::path(get, path = "/deploy/agent-tokens", tag = "deployments",
    responses((status = 200, body = Vec<agents::AgentToken>), (status = 403, body = ErrorBody)))]
async fn list_tokens(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<agents::AgentToken>>> {
    current.require_admin()?;
    Ok(Json(agents::list_tokens(&state.pool).await?))
}

/// Revoke an agent token: its targets' next call is refused and the agents stop.
#[utoipa::path(delete, path = "/deploy/agent-tokens/{id}", tag = "deployments",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    current.require_admin()?;
    agents::revoke_token(&state.pool, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The targets you may deploy to, online or not, with the revision each runs.
#[utoipa::path(get, path = "/deploy/targets", tag = "deployments",
    responses((status = 200, body = Vec<agents::Target>)))]
async fn list_targets(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<agents::Target>>> {
    Ok(Json(agents::list_for(&state.pool, &current.user).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewConfig {
    name: String,
    /// HOST_COUNT or FLEET_PERCENT (minimum healthy targets).
    kind: String,
    value: i64,
}

#[utoipa::path(post, path = "/deploy/configs", tag = "deployments", request_body = NewConfig,
    responses((status = 201, body = Config), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_config(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(c): Json<NewConfig>,
) -> Result<(StatusCode, Json<Config>)> {
    let c = super::create_config(&state.pool, &current.user, &c.name, &c.kind, c.value).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

#[utoipa::path(get, path = "/deploy/configs", tag = "deployments", responses((status = 200, body = Vec<Config>)))]
async fn list_configs(
    State(state): State<AppState>,
    _current: CurrentUser,
) -> Result<Json<Vec<Config>>> {
    Ok(Json(super::list_configs(&state.pool).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewApplication {
    name: String,
}

#[utoipa::path(post, path = "/deploy/applications", tag = "deployments", request_body = NewApplication,
    responses((status = 201, body = Application), (status = 409, body = ErrorBody)))]
async fn create_application(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(a): Json<NewApplication>,
) -> Result<(StatusCode, Json<Application>)> {
    let a = super::create_application(&state.pool, &current.user, &a.name).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[utoipa::path(get, path = "/deploy/applications", tag = "deployments", responses((status = 200, body = Vec<Application>)))]
async fn list_applications(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<Application>>> {
    Ok(Json(
        super::list_applications(&state.pool, &current.user).await?,
    ))
}

/// An application and its deployment groups.
#[utoipa::path(get, path = "/deploy/applications/{app}", tag = "deployments",
    params(("app" = String, Path, description = "Application name")),
    responses((status = 200, description = "`{application, groups}`"), (status = 404, body = ErrorBody)))]
async fn get_application(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(app): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let a = super::application_for(&state.pool, &current.user, &app).await?;
    let groups = super::list_groups(&state.pool, &a).await?;
    Ok(Json(
        serde_json::json!({"application": a, "groups": groups}),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewGroupBody {
    name: String,
    /// A configuration name (CodeDeployDefault.OneAtATime by default).
    #[serde(default)]
    config: Option<String>,
    /// The targets it deploys to: every tag must match (leave out with `managed`).
    #[serde(default)]
    tags: BTreeMap<String, String>,
    /// Targets Nubo runs for the group itself: `{"count", "port", "image"?}`
    /// (the port the app listens on, served at the group's app URL; with
    /// `image`, containers of it on the container backend).
    #[serde(default)]
    managed: Option<ManagedBody>,
    /// The port the app listens on, for enrolled targets' groups too.
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    auto_rollback: bool,
    /// A deployment while another runs waits (true, the default) or is refused.
    #[serde(default = "yes")]
    queue: bool,
    /// Blue/green with `managed`: `{"health_path", "health_timeout_seconds",
    /// "drain_seconds", "keep_blue_seconds"}` (each optional).
    #[serde(default)]
    blue_green: Option<super::BlueGreen>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ManagedBody {
    count: i64,
    port: u16,
    /// Run them as containers of this image on the container backend
    /// (local sandboxes when absent).
    #[serde(default)]
    image: Option<String>,
}

fn yes() -> bool {
    true
}

#[utoipa::path(post, path = "/deploy/applications/{app}/groups", tag = "deployments", request_body = NewGroupBody,
    params(("app" = String, Path, description = "Application name")),
    responses((status = 201, body = Group), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_group(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(app): Path<String>,
    Json(g): Json<NewGroupBody>,
) -> Result<(StatusCode, Json<Group>)> {
    let a = super::application_for(&state.pool, &current.user, &app).await?;
    let g = super::create_group(
        &state,
        &a,
        NewGroup {
            name: g.name,
            config: g.config,
            tags: g.tags,
            auto_rollback: g.auto_rollback,
            queue: g.queue,
            managed_count: g.managed.as_ref().map_or(0, |m| m.count),
            managed_image: g.managed.as_ref().and_then(|m| m.image.clone()),
            app_port: g.managed.as_ref().map(|m| m.port).or(g.port),
            blue_green: g.blue_green,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(g)))
}

/// A group, the targets it selects now and its recent deployments.
#[utoipa::path(get, path = "/deploy/applications/{app}/groups/{group}", tag = "deployments",
    params(("app" = String, Path, description = "Application name"), ("group" = String, Path, description = "Group name")),
    responses((status = 200, description = "`{group, targets, deployments}`"), (status = 404, body = ErrorBody)))]
async fn get_group(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: axum::http::HeaderMap,
    Path((app, group)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>> {
    let (a, g) = super::group_for(&state.pool, &current.user, &app, &group).await?;
    let targets = agents::select(&state.pool, &a.owner_id, a.owner_admin, &g.tags).await?;
    let deployments = view::list(&state.pool, &g, 20).await?;
    let app_url = g
        .app_port
        .map(|_| super::app_proxy::app_url(&state, &headers, &a.name, &g.name));
    Ok(Json(
        serde_json::json!({"group": g, "targets": targets, "deployments": deployments, "app_url": app_url}),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewDeployment {
    revision: Revision,
}

/// Deploy a revision: `{"repo", "commit"}` (its tree holds appspec.yml) or
/// `{"build_id"}` (a build's artifacts). The appspec is checked first.
#[utoipa::path(post, path = "/deploy/applications/{app}/groups/{group}/deployments", tag = "deployments", request_body = NewDeployment,
    params(("app" = String, Path, description = "Application name"), ("group" = String, Path, description = "Group name")),
    responses((status = 201, description = "`{id}`"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_deployment(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((app, group)): Path<(String, String)>,
    Json(d): Json<NewDeployment>,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let id = engine::deploy(
        &state,
        &state.deployments,
        &state.repo_locks,
        &current.user,
        (&app, &group),
        &d.revision,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"id": id}))))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// Redeploy the revision of this earlier deployment (default: the last
    /// one that succeeded).
    #[serde(default)]
    to: Option<String>,
}

/// Roll back by redeploying an earlier revision as a new deployment (it
/// does not undo what scripts did).
#[utoipa::path(post, path = "/deploy/applications/{app}/groups/{group}/rollback", tag = "deployments", request_body = RollbackBody,
    params(("app" = String, Path, description = "Application name"), ("group" = String, Path, description = "Group name")),
    responses((status = 201, description = "`{id}`"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((app, group)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let body: RollbackBody = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::Unprocessable(format!("the request body is not valid: {e}")))?
    };
    let (id, pick) = engine::redeploy(
        &state,
        &state.deployments,
        &state.repo_locks,
        &current.user,
        (&app, &group),
        body.to.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": id, "redeploys": pick.id})),
    ))
}

/// A deployment: status, its targets and each target's lifecycle events.
#[utoipa::path(get, path = "/deploy/deployments/{id}", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id (d-…)")),
    responses((status = 200, body = view::Deployment), (status = 404, body = ErrorBody)))]
async fn get_deployment(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<view::Deployment>> {
    Ok(Json(view::for_user(&state.pool, &current.user, &id).await?))
}

/// Stop a deployment: nothing more starts; an event already running on a
/// target finishes there.
#[utoipa::path(post, path = "/deploy/deployments/{id}/stop", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id")),
    responses((status = 200, body = view::Deployment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn stop_deployment(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<view::Deployment>> {
    view::for_user(&state.pool, &current.user, &id).await?;
    engine::stop(&state, &state.deployments, &id).await?;
    Ok(Json(view::for_user(&state.pool, &current.user, &id).await?))
}
