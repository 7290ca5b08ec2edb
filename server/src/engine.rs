//! The container engine: the Docker Engine API (Docker, or Podman's
//! compatible service) spoken directly, JSON over the engine's unix socket
//! (API version 1.41, which Podman 4.3 serves), with the same small HTTP
//! client that reaches agents: the half dozen calls workspaces and builds
//! need do not justify a client crate. Images are never pulled implicitly.

use axum::body::Body;
use axum::http::{header, Method, Request};
use http_body_util::BodyExt;

use crate::agent_client::AgentClient;
use crate::config::Settings;
use crate::error::{Error, Result};

const API: &str = "/v1.41";

pub fn engine(settings: &Settings) -> Result<AgentClient> {
    settings
        .container_socket
        .as_ref()
        .map(AgentClient::new)
        .ok_or_else(|| {
            Error::Unprocessable(
                "the container backend is not configured on this server (set container_socket / NUBO_CONTAINER_SOCKET to a Docker or Podman API socket)".into(),
            )
        })
}

/// One engine call; answers the status and the JSON body (if any).
pub async fn call(
    engine: &AgentClient,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{API}{path}"))
        .header(header::HOST, "engine");
    let body = match body {
        Some(v) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let request = builder
        .body(body)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let response = engine.send(request).await.map_err(|_| {
        Error::Conflict("the container engine does not answer on its socket".into())
    })?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::Internal(format!("reading the container engine's answer: {e}")))?
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

pub fn engine_error(what: &str, status: u16, body: &serde_json::Value) -> Error {
    let message = body["message"].as_str().unwrap_or("no details");
    Error::Internal(format!("{what} failed ({status}): {message}"))
}

/// Creates the container `name` from the Engine API's create `body`;
/// `what` names it in the error.
pub async fn create_container(
    engine: &AgentClient,
    name: &str,
    body: serde_json::Value,
    what: &str,
) -> Result<()> {
    let path = format!("/containers/create?name={name}");
    let (status, created) = call(engine, Method::POST, &path, Some(body)).await?;
    if status != 201 {
        return Err(engine_error(&format!("creating {what}"), status, &created));
    }
    Ok(())
}

/// Starts the container `name` (already running is fine).
pub async fn start_container(engine: &AgentClient, name: &str, what: &str) -> Result<()> {
    let path = format!("/containers/{name}/start");
    let (status, body) = call(engine, Method::POST, &path, None).await?;
    if status != 204 && status != 304 {
        return Err(engine_error(&format!("starting {what}"), status, &body));
    }
    Ok(())
}

/// Stops the container `name` (gone or stopped already is fine), giving
/// its processes 3 s.
pub async fn stop_container(engine: &AgentClient, name: &str, what: &str) -> Result<()> {
    let path = format!("/containers/{name}/stop?t=3");
    let (s, body) = call(engine, Method::POST, &path, None).await?;
    if !matches!(s, 204 | 304 | 404) {
        return Err(engine_error(&format!("stopping {what}"), s, &body));
    }
    Ok(())
}

/// Removes the container `name` and its anonymous volumes (gone is fine).
pub async fn remove_container(engine: &AgentClient, name: &str, what: &str) -> Result<()> {
    let path = format!("/containers/{name}?force=true&v=true");
    let (s, body) = call(engine, Method::DELETE, &path, None).await?;
    if !matches!(s, 204 | 404) {
        return Err(engine_error(&format!("removing {what}"), s, &body));
    }
    Ok(())
}

/// Whether container workspaces can be made here: the engine answers.
pub async fn available(settings: &Settings) -> Result<()> {
    let engine = engine(settings)?;
    let (status, _) = call(&engine, Method::GET, "/_ping", None).await?;
    if status != 200 {
        return Err(Error::Conflict("the container engine is not ready".into()));
    }
    Ok(())
}

/// Whether the engine has `image` (images are never pulled implicitly).
pub async fn image_available(settings: &Settings, image: &str) -> Result<()> {
    let valid = !image.is_empty()
        && image.len() <= 255
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "./:_-@".contains(c));
    if !valid {
        return Err(Error::Unprocessable(format!(
            "{image:?} is not an image reference"
        )));
    }
    let engine = engine(settings)?;
    let (s, body) = call(&engine, Method::GET, &format!("/images/{image}/json"), None).await?;
    match s {
        200 => Ok(()),
        404 => Err(Error::Unprocessable(format!(
            "the image {image} is not available to the container engine (build the Nubo image with workspace-image/build.sh, or pull yours)"
        ))),
        _ => Err(engine_error("looking up the image", s, &body)),
    }
}
