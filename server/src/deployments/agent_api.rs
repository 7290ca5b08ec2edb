//! The deployment agents' protocol (`/api/v1/deploy/agent/…`, the types in
//! `nubo_agent::deploy::wire`): register, long-poll, acknowledge, download
//! the bundle, heartbeat, complete. Its own extractor: an agent token,
//! never a user's token or session, and that token can do nothing else.

use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use nubo_agent::deploy::wire;

use super::{agents, commands, revisions};
use crate::error::{Error, Json, Result};
use crate::state::AppState;

/// How long a poll waits for a command before answering none.
const POLL_WAIT: Duration = Duration::from_secs(20);

pub fn routes() -> Router<AppState> {
    let p = wire::PREFIX;
    Router::new()
        .route(&format!("{p}/register"), post(register))
        .route(&format!("{p}/poll"), post(poll))
        .route(&format!("{p}/heartbeat"), post(heartbeat))
        .route(&format!("{p}/commands/{{id}}/ack"), post(ack))
        .route(&format!("{p}/commands/{{id}}/complete"), post(complete))
        .route(&format!("{p}/commands/{{id}}/bundle"), get(bundle))
}

/// The caller's agent token (its id).
pub struct Agent {
    token_id: String,
}

impl FromRequestParts<AppState> for Agent {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Agent> {
        let refused = || {
            Error::Unauthorized("a deployment agent token is needed (revoked or unknown)".into())
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(refused)?;
        let id = agents::verify(&state.pool, token)
            .await?
            .ok_or_else(refused)?;
        Ok(Agent { token_id: id })
    }
}

async fn register(
    State(state): State<AppState>,
    agent: Agent,
    Json(r): Json<wire::Register>,
) -> Result<Json<serde_json::Value>> {
    let version: String = r.version.chars().take(40).collect();
    agents::register(&state.pool, &agent.token_id, &r.name, &r.tags, &version).await?;
    tracing::info!(target_name = %r.name, "deployment target registered");
    Ok(Json(serde_json::json!({"name": r.name})))
}

async fn heartbeat(
    State(state): State<AppState>,
    agent: Agent,
    Json(p): Json<wire::Poll>,
) -> Result<Json<serde_json::Value>> {
    agents::touch(&state.pool, &agent.token_id, &p.name).await?;
    Ok(Json(serde_json::json!({})))
}

async fn poll(
    State(state): State<AppState>,
    agent: Agent,
    Json(p): Json<wire::Poll>,
) -> Result<Json<wire::PollAnswer>> {
    let target = agents::touch(&state.pool, &agent.token_id, &p.name).await?;
    let deadline = tokio::time::Instant::now() + POLL_WAIT;
    loop {
        let notified = state.deployments.commands.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(c) = commands::dispatch(&state, &state.deployments, &target).await? {
            return Ok(Json(wire::PollAnswer { command: Some(c) }));
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            agents::touch(&state.pool, &agent.token_id, &p.name).await?;
            return Ok(Json(wire::PollAnswer { command: None }));
        }
    }
}

async fn ack(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<String>,
    Json(a): Json<wire::Ack>,
) -> Result<Json<serde_json::Value>> {
    let target = agents::touch(&state.pool, &agent.token_id, &a.name).await?;
    commands::ack(&state, &target, &id).await?;
    Ok(Json(serde_json::json!({})))
}

async fn complete(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<String>,
    Json(c): Json<wire::Complete>,
) -> Result<Json<serde_json::Value>> {
    let target = agents::touch(&state.pool, &agent.token_id, &c.name).await?;
    commands::complete(&state, &state.deployments, &target, &id, &c).await?;
    Ok(Json(serde_json::json!({})))
}

#[derive(serde::Deserialize)]
struct Who {
    name: String,
}

/// The bundle, made again from its revision, while the command's
/// DownloadBundle runs (that is the link's lifetime).
async fn bundle(
    State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<String>,
    Query(who): Query<Who>,
) -> Result<Response> {
    let target = agents::touch(&state.pool, &agent.token_id, &who.name).await?;
    let (rev, sha) = commands::bundle_of(&state, &target, &id).await?;
    let tmp = revisions::scratch(&state)?;
    revisions::write_bundle(&state, &state.repo_locks, None, &rev, &tmp.0).await?;
    let file = tokio::fs::File::open(&tmp.0)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .len();
    // The open file is read to its end; its name goes now.
    drop(tmp);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::HeaderName::from_static("x-nubo-bundle-sha256"), sha),
        ],
        body,
    )
        .into_response())
}
