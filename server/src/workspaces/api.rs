//! `/api/v1/workspaces`: lifecycle in the server, and everything inside a
//! workspace (files, exec, terminals, events, ports) passed through to its
//! agent after the owner check. Also the preview proxy under `/w/`.

use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Error, ErrorBody, Json, Result};
use crate::http::auth::{CurrentUser, Via};
use crate::state::AppState;
use crate::workspaces::{self, CreateWorkspace, Workspace};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workspaces, create_workspace))
        .routes(routes!(get_workspace, update_workspace, delete_workspace))
        .routes(routes!(start_workspace))
        .routes(routes!(stop_workspace))
        .routes(routes!(restart_workspace))
        .routes(routes!(list_root))
        .routes(routes!(read_file, write_file, delete_file))
        .routes(routes!(make_dir))
        .routes(routes!(move_path))
        .routes(routes!(exec))
        .routes(routes!(list_terminals, create_terminal))
        .routes(routes!(close_terminal))
        .routes(routes!(attach_terminal))
        .routes(routes!(events))
        .routes(routes!(ports))
}

async fn view(state: &AppState, mut ws: Workspace) -> Workspace {
    workspaces::branch(&state.settings, &mut ws).await;
    let env = state.workspace_env();
    ws.isolation = Some(
        crate::workspaces::isolation::of(&env, &ws.backend)
            .name()
            .into(),
    );
    ws
}

/// Your workspaces (admins: everyone's).
#[utoipa::path(get, path = "/workspaces", tag = "workspaces",
    responses((status = 200, body = Vec<Workspace>), (status = 401, body = ErrorBody)))]
async fn list_workspaces(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<Workspace>>> {
    let list = if current.user.admin {
        workspaces::list_all(&state.pool).await?
    } else {
        workspaces::list_for(&state.pool, &current.user).await?
    };
    let mut out = Vec::with_capacity(list.len());
    for w in list {
        out.push(view(&state, w).await);
    }
    Ok(Json(out))
}

/// Create a workspace (checking out `repo`, if given) and start it.
#[utoipa::path(post, path = "/workspaces", tag = "workspaces", request_body = CreateWorkspace,
    responses((status = 201, body = Workspace), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn create_workspace(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<CreateWorkspace>,
) -> Result<impl IntoResponse> {
    let ws = workspaces::create(&state.workspace_env(), &current.user, body).await?;
    tracing::info!(workspace = %ws.id, name = %ws.name, by = %current.user.name, "workspace created");
    Ok((StatusCode::CREATED, Json(view(&state, ws).await)))
}

#[utoipa::path(get, path = "/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 200, body = Workspace), (status = 404, body = ErrorBody)))]
async fn get_workspace(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Workspace>> {
    let ws = workspaces::owned(&state.pool, &current.user, &id).await?;
    Ok(Json(view(&state, ws).await))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkspace {
    /// Stop after this many minutes without use (0 = never).
    #[serde(default)]
    pub idle_timeout_minutes: Option<i64>,
    #[serde(default)]
    pub idle_timeout_seconds: Option<i64>,
    /// Make preview URLs public (sandboxed) or owner-only again.
    #[serde(default)]
    pub preview_shared: Option<bool>,
}

/// Change the idle timeout or preview sharing.
#[utoipa::path(patch, path = "/workspaces/{id}", tag = "workspaces", request_body = UpdateWorkspace,
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 200, body = Workspace), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_workspace(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<UpdateWorkspace>,
) -> Result<Json<Workspace>> {
    let ws = workspaces::usable(&state.pool, &current.user, &id).await?;
    if body.idle_timeout_minutes.is_some() || body.idle_timeout_seconds.is_some() {
        let secs = workspaces::idle_seconds(&CreateWorkspace {
            idle_timeout_minutes: body.idle_timeout_minutes,
            idle_timeout_seconds: body.idle_timeout_seconds,
            ..Default::default()
        })?;
        workspaces::set_idle_timeout(&state.pool, &ws.id, secs).await?;
    }
    if let Some(shared) = body.preview_shared {
        workspaces::set_preview_shared(&state.pool, &ws.id, shared).await?;
    }
    let ws = workspaces::find(&state.pool, &id).await?.expect("exists");
    Ok(Json(view(&state, ws).await))
}

/// Stop and delete a workspace with its files.
#[utoipa::path(delete, path = "/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_workspace(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let ws = workspaces::owned(&state.pool, &current.user, &id).await?;
    workspaces::delete(&state.workspace_env(), &ws).await?;
    tracing::info!(workspace = %ws.id, by = %current.user.name, "workspace deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/workspaces/{id}/start", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 200, body = Workspace), (status = 404, body = ErrorBody)))]
async fn start_workspace(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Workspace>> {
    let ws = workspaces::usable(&state.pool, &current.user, &id).await?;
    let ws = workspaces::start(&state.workspace_env(), &ws).await?;
    Ok(Json(view(&state, ws).await))
}

#[utoipa::path(post, path = "/workspaces/{id}/stop", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 200, body = Workspace), (status = 404, body = ErrorBody)))]
async fn stop_workspace(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Workspace>> {
    let ws = workspaces::owned(&state.pool, &current.user, &id).await?;
    let ws = workspaces::stop(&state.workspace_env(), &ws, None).await?;
    Ok(Json(view(&state, ws).await))
}

#[utoipa::path(post, path = "/workspaces/{id}/restart", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 200, body = Workspace), (status = 404, body = ErrorBody)))]
async fn restart_workspace(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Workspace>> {
    let ws = workspaces::usable(&state.pool, &current.user, &id).await?;
    let env = state.workspace_env();
    let ws = workspaces::stop(&env, &ws, None).await?;
    let ws = workspaces::start(&env, &ws).await?;
    Ok(Json(view(&state, ws).await))
}

/// Refuses cross-site WebSocket handshakes made with the session cookie.
fn same_origin(current: &CurrentUser, headers: &HeaderMap) -> Result<()> {
    if !matches!(current.via, Via::Session) {
        return Ok(());
    }
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return Ok(());
    };
    let origin_host = origin.split("://").nth(1).unwrap_or_default();
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "cross-site requests to a workspace are refused".into(),
        ))
    }
}

/// Passes the request to the workspace's agent: the part of the path after
/// `/api/v1/workspaces/{id}` is the agent's route.
async fn pass(
    state: AppState,
    current: CurrentUser,
    id: String,
    request: Request,
) -> Result<Response> {
    let ws = workspaces::usable(&state.pool, &current.user, &id).await?;
    if ws.state != "running" {
        return Err(Error::Conflict(format!(
            "the workspace {} is {}; start it first",
            ws.name, ws.state
        )));
    }
    same_origin(&current, request.headers())?;
    // Uploads and exec bodies stream through to the agent: capped here by
    // max_body_bytes, declared or not.
    let max = state.settings.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(Error::PayloadTooLarge(format!(
            "the request body is larger than this server accepts ({max} bytes, max_body_bytes)"
        )));
    }
    let request = request.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, max)));
    let original = request
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| request.uri().clone());
    let prefix = format!("/api/v1/workspaces/{id}");
    let rest = original.path().strip_prefix(&prefix).unwrap_or("/");
    let path = match original.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    state.workspaces.activity.touch(&ws.id);
    let activity = state.workspaces.activity.clone();
    let ws_id = ws.id.clone();
    let streaming = rest == "/events";
    let client = workspaces::agent(&state.settings, &ws);
    let response = client
        .proxy(&path, request, move || activity.open(&ws_id))
        .await?;
    if streaming {
        // An open event stream is a viewer: the workspace is in use.
        let close = state.workspaces.activity.open(&ws.id);
        let guard = OnDrop(Some(close));
        let (parts, body) = response.into_parts();
        let stream = body.into_data_stream();
        let stream = futures_util::StreamExt::map(stream, move |chunk| {
            let _keep = &guard;
            chunk
        });
        return Ok(Response::from_parts(
            parts,
            axum::body::Body::from_stream(stream),
        ));
    }
    Ok(response)
}

struct OnDrop(Option<Box<dyn FnOnce() + Send>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// The root directory of the workspace, as JSON.
#[utoipa::path(get, path = "/workspaces/{id}/files", tag = "workspace files",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "`{\"path\", \"entries\": [{\"name\", \"kind\", \"size\", \"mtime_ms\"}]}`"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn list_root(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// The root directory with a trailing slash (`/files/`), as `/files`.
pub async fn list_root_slash(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// A file's bytes (`ETag`, `X-Nubo-Kind: file`; `?download=1` for an
/// attachment) or a directory listing as JSON (`X-Nubo-Kind: dir`).
#[utoipa::path(get, path = "/workspaces/{id}/files/{*path}", tag = "workspace files",
    params(("id" = String, Path, description = "Workspace id"), ("path" = String, Path, description = "Path relative to the workspace root")),
    responses((status = 200, description = "File bytes or a directory listing"),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn read_file(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((id, _path)): Path<(String, String)>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// Write a file (raw body; parents are created). `If-Match: <etag>` makes
/// it fail with 412 when the file changed on disk since it was read.
#[utoipa::path(put, path = "/workspaces/{id}/files/{*path}", tag = "workspace files",
    params(("id" = String, Path, description = "Workspace id"), ("path" = String, Path, description = "Path relative to the workspace root")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "`{\"etag\", \"size\", \"mtime_ms\"}`"),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 412, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn write_file(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((id, _path)): Path<(String, String)>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// Delete a file, a symlink (not its target) or a directory tree.
#[utoipa::path(delete, path = "/workspaces/{id}/files/{*path}", tag = "workspace files",
    params(("id" = String, Path, description = "Workspace id"), ("path" = String, Path, description = "Path relative to the workspace root")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_file(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((id, _path)): Path<(String, String)>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// Documents the body the agent takes (the server passes it through).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
pub struct MkdirBody {
    pub path: String,
}

/// Create a directory (and its parents): `{"path"}`.
#[utoipa::path(post, path = "/workspaces/{id}/mkdir", tag = "workspace files", request_body = MkdirBody,
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 201), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn make_dir(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// Documents the body the agent takes (the server passes it through).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
pub struct MoveBody {
    pub from: String,
    pub to: String,
}

/// Rename or move a file or directory: `{"from", "to"}`; never over an
/// existing path.
#[utoipa::path(post, path = "/workspaces/{id}/move", tag = "workspace files", request_body = MoveBody,
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn move_path(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// Documents the body the agent takes (the server passes it through).
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
pub struct ExecBody {
    /// Program and arguments (no shell; use `["sh", "-c", "..."]` for one).
    pub command: Vec<String>,
    /// Working directory relative to the workspace root.
    pub cwd: Option<String>,
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// Default 300, at most 86400.
    pub timeout_s: Option<u64>,
    /// Text fed to the command's standard input.
    pub stdin: Option<String>,
}

/// Run a command to completion: `{"exit_code", "stdout", "stderr",
/// "timed_out", "truncated"}` (each stream capped at 8 MiB).
#[utoipa::path(post, path = "/workspaces/{id}/exec", tag = "workspaces", request_body = ExecBody,
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "`{\"exit_code\", \"stdout\", \"stderr\", \"timed_out\", \"truncated\"}`"),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn exec(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// The workspace's terminals: `[{"id", "title", "alive", "exit_code", "created_at"}]`;
/// POST `{"cols", "rows"}` opens a new one.
#[utoipa::path(get, path = "/workspaces/{id}/terminals", tag = "terminals",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "The terminals"), (status = 409, body = ErrorBody)))]
async fn list_terminals(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// Open a terminal (a login shell in `/workspace`).
#[utoipa::path(post, path = "/workspaces/{id}/terminals", tag = "terminals",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 201, description = "`{\"id\", \"title\", ...}`"), (status = 409, body = ErrorBody)))]
async fn create_terminal(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// Close a terminal: its shell ends.
#[utoipa::path(delete, path = "/workspaces/{id}/terminals/{tid}", tag = "terminals",
    params(("id" = String, Path, description = "Workspace id"), ("tid" = String, Path, description = "Terminal id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn close_terminal(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((id, _tid)): Path<(String, String)>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// Attach to a terminal (WebSocket). Framing: binary frames are output
/// (server → client) and input (client → server); text frames are JSON
/// control messages: `hello`, `exit`, `skipped`, `pong` from the server;
/// `resize {cols, rows}`, `ack {bytes}`, `ping` from the client. At most
/// 512 KiB of output is sent unacknowledged. See docs/workspaces.md.
#[utoipa::path(get, path = "/workspaces/{id}/terminals/{tid}/attach", tag = "terminals",
    params(("id" = String, Path, description = "Workspace id"), ("tid" = String, Path, description = "Terminal id")),
    responses((status = 101, description = "WebSocket"), (status = 404, body = ErrorBody)))]
async fn attach_terminal(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((id, _tid)): Path<(String, String)>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// File changes as server-sent events: `event: fs`, data `{"paths": [...]}`.
#[utoipa::path(get, path = "/workspaces/{id}/events", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "text/event-stream"), (status = 409, body = ErrorBody)))]
async fn events(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response> {
    pass(state, current, id, request).await
}

/// TCP ports the workspace listens on, with their preview URLs.
#[utoipa::path(get, path = "/workspaces/{id}/ports", tag = "workspaces",
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "`[{\"port\", \"url\"}]`"), (status = 409, body = ErrorBody)))]
async fn ports(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let ws = workspaces::usable(&state.pool, &current.user, &id).await?;
    if ws.state != "running" {
        return Err(Error::Conflict(format!(
            "the workspace {} is {}",
            ws.name, ws.state
        )));
    }
    let ports: Vec<serde_json::Value> = workspaces::agent(&state.settings, &ws)
        .json(axum::http::Method::GET, "/ports", None)
        .await?;
    let list: Vec<_> = ports
        .into_iter()
        .filter_map(|p| p["port"].as_u64())
        .map(|port| serde_json::json!({"port": port, "url": format!("/w/{}/preview/{port}/", ws.id)}))
        .collect();
    Ok(Json(serde_json::Value::Array(list)))
}
