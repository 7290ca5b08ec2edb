//! `/api/v1/pipelines/{name}/events` and `…/notifications`: a pipeline's
//! state changes as stored, and the rules that send them as signed
//! webhooks (with their delivery history).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Error, ErrorBody, Json, Result};
use crate::http::auth::CurrentUser;
use crate::pipelines::events::{self, Event, RULE_EVENTS};
use crate::pipelines::{self, Pipeline};
use crate::repos::webhooks::{self, CreatedWebhook, Delivery, NewWebhook, Owner, Webhook};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(delete_rule))
        .routes(routes!(rule_deliveries))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Only this execution's events.
    pub execution: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// The pipeline's events, newest first: every pipeline, stage and action
/// state change (EventBridge's CodePipeline events).
#[utoipa::path(get, path = "/pipelines/{name}/events", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name"), EventsQuery),
    responses((status = 200, body = Vec<Event>), (status = 404, body = ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Vec<Event>>> {
    let (p, _) = pipelines::visible_to(&state.pool, &current.user, &name).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        events::list(&state.pool, &p.id, q.execution.as_deref(), limit).await?,
    ))
}

/// The pipeline's source repository's id (rules are kept with it).
async fn repo_id(state: &AppState, p: &Pipeline) -> Result<String> {
    let (repo, _) = p.declaration.source().unwrap_or_default();
    crate::repos::find(&state.pool, repo)
        .await?
        .map(|r| r.id)
        .ok_or_else(|| {
            Error::Conflict(format!(
                "the pipeline's source repository {repo:?} does not exist"
            ))
        })
}

/// The pipeline's notification rules (never their secrets).
#[utoipa::path(get, path = "/pipelines/{name}/notifications", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    responses((status = 200, body = Vec<Webhook>), (status = 404, body = ErrorBody)))]
async fn list_rules(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<Vec<Webhook>>> {
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    Ok(Json(webhooks::list_for_pipeline(&state.pool, &p.id).await?))
}

/// Add a rule: the events it wants (`pipeline.FAILED`, `approval.STARTED`,
/// … or `all`) are POSTed to `url` as JSON signed with HMAC-SHA256 in
/// `X-Nubo-Signature-256`, retried with backoff. The secret is generated
/// when omitted and shown only in this answer.
#[utoipa::path(post, path = "/pipelines/{name}/notifications", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name")),
    request_body = NewWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_rule(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    Json(body): Json<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>)> {
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    if body.branches.as_ref().is_some_and(|b| !b.is_empty()) {
        return Err(Error::invalid(
            "branches",
            "a notification rule has no branch filter: it follows its pipeline",
        ));
    }
    let repo = repo_id(&state, &p).await?;
    let made = webhooks::create_in(&state, &repo, Some(&p.id), body, RULE_EVENTS).await?;
    tracing::info!(pipeline = %p.name, rule = %made.webhook.id, by = %current.user.name, "notification rule added");
    Ok((StatusCode::CREATED, Json(made)))
}

#[utoipa::path(delete, path = "/pipelines/{name}/notifications/{id}", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name"), ("id" = String, Path, description = "Rule id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
async fn delete_rule(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    webhooks::delete_of(&state.pool, Owner::Pipeline(&p.id), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A rule's deliveries, newest first, with each one's latest outcome.
#[utoipa::path(get, path = "/pipelines/{name}/notifications/{id}/deliveries", tag = "pipelines",
    params(("name" = String, Path, description = "Pipeline name"), ("id" = String, Path, description = "Rule id")),
    responses((status = 200, body = Vec<Delivery>), (status = 404, body = ErrorBody)))]
async fn rule_deliveries(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Vec<Delivery>>> {
    let p = pipelines::for_user(&state.pool, &current.user, &name).await?;
    Ok(Json(
        webhooks::deliveries_of(&state.pool, Owner::Pipeline(&p.id), &id).await?,
    ))
}
