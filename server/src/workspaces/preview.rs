//! Previews of apps listening in a workspace, served on an origin of their
//! own: the preview listener (`preview_http`, paths `/w/{id}/{port}/…`) or,
//! with `preview_domain`, one host per workspace and port
//! (`{port}-{id}.{domain}`). A page a workspace serves (a cloned
//! repository's, an npm package's) then never shares an origin with Nubo's
//! pages: it cannot read them, take a CSRF token, or register a service
//! worker over them.
//!
//! Owner access: Nubo's session cookie means nothing to the preview
//! listener. The entry on Nubo's origin (`/w/{id}/preview/{port}/…`)
//! checks the session and redirects with a token that is short-lived (60 s)
//! and good for that workspace and port only; the preview listener trades
//! it for a cookie of its own, scoped to that preview's path (or host),
//! and redirects to the page. Shared previews need no token: they are
//! public, and sandboxed by CSP into an opaque origin besides.

use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::any;
use axum::Router;

use crate::error::{Error, Result};
use crate::http::auth::CurrentUser;
use crate::state::AppState;
use crate::workspaces::{self};

const TOKEN_TTL_MS: i64 = 60_000;
const COOKIE_TTL_MS: i64 = 12 * 3_600_000;
const COOKIE: &str = "nubo_preview";
/// The token exchange, inside each preview's space.
const AUTH_PATH: &str = "__nubo/auth";

fn host_of(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = if let Some(rest) = host.strip_prefix('[') {
        format!("[{}]", rest.split(']').next()?)
    } else {
        host.split(':').next()?.to_string()
    };
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then_some(name)
}

fn scheme(state: &AppState) -> &'static str {
    if state.settings.secure_cookies() {
        "https"
    } else {
        "http"
    }
}

/// Where a workspace's port is previewed: an origin and a path prefix
/// (empty on a preview host of its own).
pub fn base(state: &AppState, headers: &HeaderMap, ws: &str, port: u16) -> String {
    let s = &state.settings;
    if let Some(domain) = &s.preview_domain {
        return format!("{}://{port}-{ws}.{domain}", scheme(state));
    }
    if let Some(url) = &s.preview_url {
        return format!("{}/w/{ws}/{port}", url.trim_end_matches('/'));
    }
    let host = host_of(headers).unwrap_or_else(|| "127.0.0.1".into());
    format!("http://{host}:{}/w/{ws}/{port}", s.preview_http.port())
}

/// The preview origins Nubo's pages may frame (the IDE's `frame-src`).
pub fn frame_sources(state: &AppState, headers: &HeaderMap) -> String {
    let s = &state.settings;
    if let Some(domain) = &s.preview_domain {
        return format!("{}://*.{domain}", scheme(state));
    }
    if let Some(url) = &s.preview_url {
        return origin_of(url);
    }
    let host = host_of(headers).unwrap_or_else(|| "127.0.0.1".into());
    format!("http://{host}:{}", s.preview_http.port())
}

fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest))
}

/// The origins that may frame a preview (Nubo's own pages).
fn frame_ancestors(state: &AppState, headers: &HeaderMap) -> String {
    let s = &state.settings;
    if let Some(url) = &s.public_url {
        return origin_of(url);
    }
    let host = host_of(headers).unwrap_or_else(|| "127.0.0.1".into());
    let mut list = format!("http://{host}:{}", s.http.port());
    if let Some(https) = s.https {
        list.push_str(&format!(" https://{host}:{}", https.port()));
    }
    list
}

/// `/w/{id}/preview/{port}/…` on Nubo's origin: the way into a preview.
/// The owner (by session or token) is sent to the preview's origin with a
/// fresh token; anyone, to a shared preview. Nothing of the workspace's is
/// served on Nubo's origin.
pub async fn entry(
    State(state): State<AppState>,
    axum::extract::Path(params): axum::extract::Path<Vec<(String, String)>>,
    request: Request,
) -> Result<Response> {
    use axum::extract::FromRequestParts;
    if !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ) {
        return Err(Error::NotFound(
            "previews are served on their own origin; open them with GET".into(),
        ));
    }
    let (mut parts, _) = request.into_parts();
    let current = CurrentUser::from_request_parts(&mut parts, &state)
        .await
        .ok();
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (id, port) = (get("id"), get("port"));
    let port: u16 = port
        .parse()
        .map_err(|_| Error::BadRequest(format!("{port:?} is not a port")))?;
    let ws = workspaces::find(&state.pool, &id)
        .await?
        .ok_or_else(|| Error::NotFound("no such preview".into()))?;
    let owner = current.as_ref().is_some_and(|c| c.user.id == ws.owner_id);
    if !owner && !ws.preview_shared {
        return Err(match current {
            None => Error::Unauthorized("sign in to see this preview".into()),
            Some(_) => Error::NotFound("no such preview".into()),
        });
    }
    let original = parts
        .extensions
        .get::<OriginalUri>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| parts.uri.clone());
    let prefix = format!("/w/{id}/preview/{port}");
    let rest = original.path().strip_prefix(&prefix).unwrap_or("/");
    let rest = if rest.is_empty() { "/" } else { rest };
    let target = match original.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let base = base(&state, &parts.headers, &ws.id, port);
    let location = match (owner, current) {
        (true, Some(c)) => {
            let token = state
                .preview_key
                .sign("t", &ws.id, port, &c.user.id, TOKEN_TTL_MS);
            format!(
                "{base}/{AUTH_PATH}?token={token}&next={}",
                crate::http::auth::urlencode(&target)
            )
        }
        _ => format!("{base}{target}"),
    };
    let mut r = Redirect::to(&location).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// The preview listener's router: previews and nothing of Nubo's.
pub fn router(state: AppState) -> Router {
    Router::new()
        .fallback(any(serve))
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
}

/// Which workspace and port a preview request is for, and the app's path.
fn target_of(state: &AppState, headers: &HeaderMap, path: &str) -> Option<(String, u16, String)> {
    if let Some(domain) = &state.settings.preview_domain {
        let host = headers
            .get(header::HOST)?
            .to_str()
            .ok()?
            .split(':')
            .next()?;
        let label = host.strip_suffix(&format!(".{domain}"))?;
        let (port, id) = label.split_once('-')?;
        return Some((id.to_string(), port.parse().ok()?, path.to_string()));
    }
    let rest = path.strip_prefix("/w/")?;
    let mut parts = rest.splitn(3, '/');
    let id = parts.next()?.to_string();
    let port = parts.next()?.parse().ok()?;
    let app_path = format!("/{}", parts.next().unwrap_or(""));
    Some((id, port, app_path))
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_SECURITY_POLICY, "default-src 'none'")],
        Html(nubo_frontend::pages::message(title, text)),
    )
        .into_response()
}

async fn serve(State(state): State<AppState>, request: Request) -> Response {
    match serve_inner(&state, request).await {
        Ok(r) => r,
        Err(e) => {
            let status = e.status();
            page(status, "Preview unavailable", &e.public_message())
        }
    }
}

async fn serve_inner(state: &AppState, request: Request) -> Result<Response> {
    let headers = request.headers().clone();
    let uri = request.uri().clone();
    let Some((id, port, app_path)) = target_of(state, &headers, uri.path()) else {
        return Err(Error::NotFound(
            "there is no preview at this address".into(),
        ));
    };
    let ws = workspaces::find(&state.pool, &id)
        .await?
        .ok_or_else(|| Error::NotFound("no such preview".into()))?;
    let scope = match &state.settings.preview_domain {
        Some(_) => "/".to_string(),
        None => format!("/w/{id}/{port}/"),
    };
    // The token exchange.
    if app_path == format!("/{AUTH_PATH}") {
        let query: Vec<(String, String)> =
            serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
        let field = |k: &str| {
            query
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let user = state
            .preview_key
            .verify("t", &field("token"), &ws.id, port)
            .filter(|u| *u == ws.owner_id)
            .ok_or_else(|| {
                Error::Unauthorized(
                    "this preview link has expired; open the preview from Nubo again".into(),
                )
            })?;
        let next = field("next");
        let next = if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
            next
        } else {
            "/".into()
        };
        let cookie_value = state
            .preview_key
            .sign("c", &ws.id, port, &user, COOKIE_TTL_MS);
        let secure = if state.settings.secure_cookies() {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{COOKIE}={cookie_value}; Path={scope}; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            COOKIE_TTL_MS / 1000
        );
        let location = format!("{}{}", scope.trim_end_matches('/'), next);
        let mut r = Redirect::to(&location).into_response();
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(r);
    }
    if !ws.preview_shared {
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")))
            .find_map(|v| state.preview_key.verify("c", v, &ws.id, port))
            .filter(|u| *u == ws.owner_id);
        if cookie.is_none() {
            let entry = format!(
                "{}/w/{id}/preview/{port}{app_path}",
                state.settings.base_url_for(None)
            );
            return Ok(page(
                StatusCode::UNAUTHORIZED,
                "Open this preview from Nubo",
                &format!("This preview is private to the workspace's owner. Open it from the workspace in Nubo ({entry})."),
            ));
        }
    }
    if ws.state != "running" {
        return Err(Error::Conflict(format!(
            "the workspace {} is {}",
            ws.name, ws.state
        )));
    }
    let path = match uri.query() {
        Some(q) => format!("{app_path}?{q}"),
        None => app_path,
    };
    let client = workspaces::agent(&state.settings, &ws);
    let sender = crate::agent_client::tunnel(&client, port).await?;
    state.workspaces.activity.touch(&ws.id);
    let activity = state.workspaces.activity.clone();
    let ws_id = ws.id.clone();
    let mut response =
        crate::agent_client::forward(sender, &path, request, move || activity.open(&ws_id)).await?;
    let h = response.headers_mut();
    // Framed by Nubo's IDE only; a shared preview is sandboxed besides.
    let ancestors = frame_ancestors(state, &headers);
    let csp = if ws.preview_shared {
        format!("frame-ancestors {ancestors}; sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads")
    } else {
        format!("frame-ancestors {ancestors}")
    };
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.remove(header::X_FRAME_OPTIONS);
    Ok(response)
}
