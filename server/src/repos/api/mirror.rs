//! `/api/v1/repos/{name}/mirror`: follow an external git repository,
//! polled on an interval or on demand; its updates are pushes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Error, ErrorBody, Json, Result};
use crate::http::auth::CurrentUser;
use crate::repos::{self, mirror, Repo};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_mirror, set_mirror, delete_mirror))
        .routes(routes!(poll_mirror))
}

/// The repository's managers set its mirror; its updates are pushed as
/// the one who set it, who must be able to push.
async fn managed(state: &AppState, current: &CurrentUser, name: &str) -> Result<Repo> {
    let repo = repos::authorize(
        &state.pool,
        name,
        &current.user,
        "codecommit:DeleteRepository",
    )
    .await?;
    repos::authorize(&state.pool, name, &current.user, "codecommit:GitPush").await?;
    Ok(repo)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMirror {
    /// `https://…`, `http://…` or `git://…`, without credentials.
    pub url: String,
    /// How often it is polled (10 to 86400; default 300).
    #[serde(default)]
    pub interval_seconds: Option<i64>,
}

#[utoipa::path(get, path = "/repos/{name}/mirror", tag = "repositories",
    params(("name" = String, Path, description = "Repository name")),
    responses((status = 200, body = mirror::Mirror), (status = 404, body = ErrorBody)))]
async fn get_mirror(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<mirror::Mirror>> {
    let repo = repos::authorize(&state.pool, &name, &current.user, "codecommit:GitPull").await?;
    mirror::get(&state.pool, &repo)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("{} has no mirror", repo.name)))
}

/// Follow an external repository: polled at once, then every
/// `interval_seconds`; what is new there is pushed here (branches and
/// tags, forced as upstream moved them; nothing is deleted).
#[utoipa::path(put, path = "/repos/{name}/mirror", tag = "repositories", request_body = SetMirror,
    params(("name" = String, Path, description = "Repository name")),
    responses((status = 200, body = mirror::Mirror), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_mirror(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    Json(body): Json<SetMirror>,
) -> Result<Json<mirror::Mirror>> {
    let repo = managed(&state, &current, &name).await?;
    let interval = body.interval_seconds.unwrap_or(300);
    Ok(Json(
        mirror::set(&state, &repo, &current.user, body.url.trim(), interval).await?,
    ))
}

#[utoipa::path(delete, path = "/repos/{name}/mirror", tag = "repositories",
    params(("name" = String, Path, description = "Repository name")),
    responses((status = 204, description = "No longer followed"), (status = 403, body = ErrorBody)))]
async fn delete_mirror(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    let repo = managed(&state, &current, &name).await?;
    mirror::remove(&state.pool, &repo).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Poll now; answers what it did (`{"result"}`) or why it could not (`{"error"}`).
#[utoipa::path(post, path = "/repos/{name}/mirror/poll", tag = "repositories",
    params(("name" = String, Path, description = "Repository name")),
    responses((status = 200, description = "`{result}` or `{error}`"), (status = 404, body = ErrorBody)))]
async fn poll_mirror(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let repo = managed(&state, &current, &name).await?;
    Ok(Json(
        match mirror::poll(&state, &state.repo_locks, &repo).await? {
            Ok(result) => serde_json::json!({"result": result}),
            Err(error) => serde_json::json!({"error": error}),
        },
    ))
}
