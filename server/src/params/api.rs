//! Params' API: `/parameters` and `/secrets` (administrators only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ErrorBody, Json, Result};
use crate::http::auth::CurrentUser;
use crate::params::StoredValue;
use crate::state::AppState;

/// Params' routes (under `/api/v1`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_parameters))
        .routes(routes!(put_parameter, delete_parameter))
        .routes(routes!(list_secrets))
        .routes(routes!(put_secret, delete_secret))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutValue {
    pub value: String,
}

fn admin(current: &CurrentUser) -> Result<()> {
    current.require_admin()
}

/// Parameter names (values are never listed). Administrators only.
#[utoipa::path(get, path = "/parameters", tag = "stores",
    responses((status = 200, body = Vec<StoredValue>), (status = 403, body = ErrorBody)))]
async fn list_parameters(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<StoredValue>>> {
    admin(&current)?;
    Ok(Json(
        crate::params::list_values(&state.pool, "parameter").await?,
    ))
}

/// Set a parameter (`env.parameter-store` in buildspecs), stored encrypted.
#[utoipa::path(put, path = "/parameters/{*name}", tag = "stores", request_body = PutValue,
    params(("name" = String, Path, description = "Parameter name, e.g. /prod/db/password")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_parameter(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    Json(body): Json<PutValue>,
) -> Result<StatusCode> {
    admin(&current)?;
    crate::params::put_value(
        &state.pool,
        &state.master,
        "parameter",
        &name,
        &body.value,
        &current.user.name,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/parameters/{*name}", tag = "stores",
    params(("name" = String, Path, description = "Parameter name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_parameter(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    admin(&current)?;
    crate::params::delete_value(&state.pool, "parameter", &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Secret ids (values are never listed). Administrators only.
#[utoipa::path(get, path = "/secrets", tag = "stores",
    responses((status = 200, body = Vec<StoredValue>), (status = 403, body = ErrorBody)))]
async fn list_secrets(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<StoredValue>>> {
    admin(&current)?;
    Ok(Json(
        crate::params::list_values(&state.pool, "secret").await?,
    ))
}

/// Set a secret (`env.secrets-manager`: `id` or `id:json-key`); the value
/// may be a JSON object whose keys builds pick.
#[utoipa::path(put, path = "/secrets/{name}", tag = "stores", request_body = PutValue,
    params(("name" = String, Path, description = "Secret id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_secret(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    Json(body): Json<PutValue>,
) -> Result<StatusCode> {
    admin(&current)?;
    crate::params::put_value(
        &state.pool,
        &state.master,
        "secret",
        &name,
        &body.value,
        &current.user.name,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/secrets/{name}", tag = "stores",
    params(("name" = String, Path, description = "Secret id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_secret(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    admin(&current)?;
    crate::params::delete_value(&state.pool, "secret", &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
