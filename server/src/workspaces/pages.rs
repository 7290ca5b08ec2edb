//! The workspaces' pages: the list with the create form, and a workspace's
//! page (the IDE) with its start, stop and delete actions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use nubo_frontend::{Flash, FormEcho, Nav};
use serde::Deserialize;

use crate::error::Error;
use crate::http::auth::PageUser;
use crate::http::pages::{capitalise, context, refusal_text, refused_form, set_flash, PageResult};
use crate::repos;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/workspaces", get(workspaces_page).post(create_workspace))
        .route("/workspaces/{id}", get(workspace_page))
        .route("/workspaces/{id}/{action}", post(workspace_action))
}

fn workspace_row(ws: super::Workspace) -> nubo_frontend::WorkspaceRow {
    nubo_frontend::WorkspaceRow {
        id: ws.id,
        name: ws.name,
        repo: ws.repo,
        backend: ws.backend,
        image: ws.image,
        state: ws.state,
        started_at: ws.started_at_ms,
        idle_timeout_minutes: ws.idle_timeout_seconds / 60,
        error: ws.error,
    }
}

async fn workspaces_page(State(state): State<AppState>, user: PageUser) -> PageResult {
    render_list(&state, &user, &FormEcho::default(), StatusCode::OK).await
}

/// The workspaces page; `echo` fills the create form again after a refusal
/// (answered with `status` then).
async fn render_list(
    state: &AppState,
    user: &PageUser,
    echo: &FormEcho,
    status: StatusCode,
) -> PageResult {
    let list: Vec<_> = super::list_for(&state.pool, &user.user)
        .await?
        .into_iter()
        .map(workspace_row)
        .collect();
    let repos: Vec<String> = repos::list_for(&state.pool, &user.user)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let ctx = context(user, "Workspaces", Nav::Workspaces).await;
    let html = Html(nubo_frontend::workspaces_page(&ctx, &list, &repos, echo));
    Ok((status, html).into_response())
}

#[derive(Deserialize, serde::Serialize)]
struct WorkspaceForm {
    name: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    backend: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    idle_timeout_minutes: Option<String>,
    /// Set by one-click forms (a repository's page): `name` is a wish, and
    /// a free valid name is derived from it.
    #[serde(default)]
    derive_name: Option<String>,
}

async fn create_workspace(
    State(state): State<AppState>,
    user: PageUser,
    Form(form): Form<WorkspaceForm>,
) -> PageResult {
    let refused = |field: Option<&str>, message: String, status: StatusCode| {
        let echo = refused_form(&form, field, &message);
        let (state, user) = (&state, &user);
        async move { render_list(state, user, &echo, status).await }
    };
    let idle = match form.idle_timeout_minutes.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                let m = format!("The idle timeout {v:?} is not a number of minutes.");
                return refused(
                    Some("idle_timeout_minutes"),
                    m,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        },
    };
    let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let name = match form.derive_name.as_deref() {
        Some("1") => super::free_name(&state.pool, &user.user, form.name.trim()).await?,
        _ => form.name.trim().to_string(),
    };
    let request = super::CreateWorkspace {
        name,
        repo: non_empty(&form.repo),
        backend: non_empty(&form.backend),
        image: non_empty(&form.image),
        idle_timeout_minutes: idle,
        idle_timeout_seconds: None,
        start: Some(true),
    };
    let env = state.workspace_env();
    match super::create(&env, &user.user, request).await {
        Ok(ws) => {
            tracing::info!(workspace = %ws.id, by = %user.user.name, "workspace created");
            Ok(Redirect::to(&format!("/workspaces/{}", ws.id)).into_response())
        }
        Err(Error::Invalid { field, message }) => {
            refused(Some(field), message, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(Error::Conflict(m)) => refused(Some("name"), m, StatusCode::CONFLICT).await,
        Err(Error::NotFound(m)) => refused(Some("repo"), m, StatusCode::NOT_FOUND).await,
        Err(Error::Forbidden(m)) => refused(None, m, StatusCode::FORBIDDEN).await,
        Err(e @ Error::Denied { .. }) => {
            refused(None, refusal_text(&e), StatusCode::FORBIDDEN).await
        }
        Err(Error::Unprocessable(m)) => refused(None, m, StatusCode::UNPROCESSABLE_ENTITY).await,
        Err(e) => Err(e.into()),
    }
}

async fn workspace_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> PageResult {
    let ws = super::usable(&state.pool, &user.user, &id).await?;
    let title = ws.name.clone();
    let ctx = context(&user, &title, Nav::Workspaces).await;
    let mut response =
        Html(nubo_frontend::workspace_ide_page(&ctx, &workspace_row(ws))).into_response();
    // CodeMirror and xterm.js add style elements at run time; the preview
    // pane frames the preview origin (never Nubo's own).
    let csp = format!(
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-src {}; frame-ancestors 'none'; form-action 'self'",
        super::preview::frame_sources(&state, &headers)
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(response)
}

async fn workspace_action(
    State(state): State<AppState>,
    user: PageUser,
    Path((id, action)): Path<(String, String)>,
) -> PageResult {
    let env = state.workspace_env();
    let ws = super::owned(&state.pool, &user.user, &id).await?;
    let result = match action.as_str() {
        "start" => super::start(&env, &ws).await.map(|_| "started"),
        "stop" => super::stop(&env, &ws, None).await.map(|_| "stopped"),
        "delete" => super::delete(&env, &ws).await.map(|_| "deleted"),
        _ => return Err(Error::NotFound(format!("no action {action:?}")).into()),
    };
    match result {
        Ok(done) => {
            set_flash(
                &user.session,
                Flash::Ok(format!("Workspace {} {done}.", ws.name)),
            )
            .await;
            let to = if action == "start" {
                format!("/workspaces/{}", ws.id)
            } else {
                "/workspaces".to_string()
            };
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) => {
            set_flash(&user.session, Flash::Error(capitalise(&e.public_message()))).await;
            Ok(Redirect::to("/workspaces").into_response())
        }
    }
}
