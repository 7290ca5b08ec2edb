//! `/api/v1/pipelines/{name}/webhook`: set up (or rotate) and turn off a
//! pipeline's incoming webhook, and `…/webhook/trigger`, the signed call
//! that starts an execution (no session or token: the signature is the
//! credential).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Error, ErrorBody, Json, Result};
use crate::http::auth::CurrentUser;
use crate::pipelines::{self, webhook};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_webhook, enable_webhook, disable_webhook))
        .routes(routes!(trigger))
}

fn trigger_path(name: &str) -> String {
    format!("/api/v1/pipelines/{name}/webhook/trigger")
}

/// Whether the pipeline's webhook is on, where it is and who set it up.
#[utoipa::path(get, path = "/pipelines/{name}/webhook", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    responses((status = 200, description = "`{enabled, path, created_by, created_at}`"), (status = 404, body = ErrorBody)))]
async fn get_webhook(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    let on = webhook::status(&state.pool, &p).await?;
    Ok(Json(serde_json::json!({
        "enabled": on.is_some(),
        "path": trigger_path(&p.name),
        "created_by": on.as_ref().map(|o| o.0.clone()),
        "created_at": on.map(|o| o.1),
    })))
}

/// Turn the webhook on with a new secret (any earlier one stops working).
/// The secret is in this answer only; executions it starts run as you.
#[utoipa::path(post, path = "/pipelines/{name}/webhook", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    responses((status = 201, description = "`{path, secret}`"), (status = 404, body = ErrorBody)))]
async fn enable_webhook(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    let secret = webhook::enable(&state, &p, &current.user).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"path": trigger_path(&p.name), "secret": secret})),
    ))
}

#[utoipa::path(delete, path = "/pipelines/{name}/webhook", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    responses((status = 204, description = "Off"), (status = 404, body = ErrorBody)))]
async fn disable_webhook(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    webhook::disable(&state.pool, &p).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start an execution: the body (empty, or `{"ref", "variables"}`) signed
/// with the webhook's secret in `X-Nubo-Signature-256: sha256=<hex>`; an
/// optional `X-Nubo-Delivery` id makes a retried call start nothing new.
#[utoipa::path(post, path = "/pipelines/{name}/webhook/trigger", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    request_body(content = Object, description = "Empty, or `{ref, variables}`; signed"),
    responses((status = 201, description = "`{id}`"), (status = 200, description = "`{id, duplicate: true}`: that delivery started it already"),
              (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn trigger(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response> {
    if body.len() > webhook::MAX_BODY {
        return Err(Error::PayloadTooLarge(format!(
            "a trigger call carries at most {} bytes",
            webhook::MAX_BODY
        )));
    }
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    let signature = header("x-nubo-signature-256");
    let (p, user) = webhook::verify(&state, &name, signature, &body).await?;
    let call: webhook::Call = if body.iter().all(u8::is_ascii_whitespace) {
        webhook::Call::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::Unprocessable(format!("the request body is not valid: {e}")))?
    };
    let delivery = header("x-nubo-delivery");
    let (id, duplicate) =
        webhook::trigger(&state, &state.repo_locks, p, &user, delivery, call).await?;
    if duplicate {
        return Ok(Json(serde_json::json!({"id": id, "duplicate": true})).into_response());
    }
    state.pipelines.wake.notify_one();
    tracing::info!(pipeline = %name, execution = %id, "pipeline started by its webhook");
    Ok((StatusCode::CREATED, Json(serde_json::json!({"id": id}))).into_response())
}
