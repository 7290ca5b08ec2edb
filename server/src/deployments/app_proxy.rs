//! App URLs: `/apps/{app}/{group}/…` on the preview listener — the origin
//! apart from Nubo's pages — proxied to the app's HTTP port on a managed
//! target that runs the group's current revision (round robin, the next
//! one tried when one does not answer). Public. Responses carry a CSP
//! sandbox (an opaque origin), so one app's scripts cannot read another
//! app or a workspace preview served from the same origin.

use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::any;
use axum::Router;

use super::managed;
use crate::agent_client::{self, AgentClient};
use crate::error::{Error, Result};
use crate::state::AppState;

const SANDBOX: &str = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads allow-top-navigation-by-user-activation";

pub fn routes() -> Router<AppState> {
    Router::new().route("/apps/{*rest}", any(serve))
}

async fn serve(State(state): State<AppState>, request: Request) -> Response {
    match inner(&state, request).await {
        Ok(r) => r,
        Err(e) => (
            e.status(),
            [(header::CONTENT_SECURITY_POLICY, "default-src 'none'")],
            Html(nubo_frontend::pages::message(
                "App unavailable",
                &e.public_message(),
            )),
        )
            .into_response(),
    }
}

async fn inner(state: &AppState, request: Request) -> Result<Response> {
    let uri = request.uri().clone();
    let rest = uri
        .path()
        .strip_prefix("/apps/")
        .unwrap_or_default()
        .to_string();
    let mut parts = rest.splitn(3, '/');
    let (app, group, tail) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next(),
    );
    let missing = || Error::NotFound("there is no app at this address".into());
    if app.is_empty() || group.is_empty() {
        return Err(missing());
    }
    let Some(tail) = tail else {
        let q = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        return Ok(Redirect::permanent(&format!("/apps/{app}/{group}/{q}")).into_response());
    };
    let a = super::find_application(&state.pool, app)
        .await?
        .ok_or_else(missing)?;
    let g = super::find_group(&state.pool, &a, group)
        .await?
        .ok_or_else(missing)?;
    let port = g
        .app_port
        .ok_or_else(|| Error::NotFound(format!("{app}/{group} exposes no HTTP port")))?;
    let ids = managed::serving(state, &g).await?;
    if ids.is_empty() {
        return Err(Error::BadGateway(format!(
            "no target of {app}/{group} runs a successful deployment yet"
        )));
    }
    let path = match uri.query() {
        Some(q) => format!("/{tail}?{q}"),
        None => format!("/{tail}"),
    };
    let first = state
        .deployments
        .next_target
        .fetch_add(1, Ordering::Relaxed);
    let mut request = Some(request);
    for k in 0..ids.len() {
        let id = &ids[(first + k) % ids.len()];
        let agent = AgentClient::new(managed::agent_socket(state, id));
        let Ok(sender) = agent_client::tunnel(&agent, port).await else {
            continue;
        };
        let req = request.take().expect("one request");
        let mut r = agent_client::forward(sender, &path, req, || Box::new(|| {})).await?;
        r.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SANDBOX),
        );
        if let Ok(v) = HeaderValue::from_str(id) {
            r.headers_mut().insert("x-nubo-target", v);
        }
        return Ok(r);
    }
    Err(Error::BadGateway(format!(
        "the app of {app}/{group} is not answering on port {port}"
    )))
}

/// Where a group's app is served.
pub fn app_url(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    app: &str,
    group: &str,
) -> String {
    let s = &state.settings;
    let origin = if let Some(domain) = &s.preview_domain {
        let scheme = if s.secure_cookies() { "https" } else { "http" };
        format!("{scheme}://apps.{domain}")
    } else if let Some(url) = &s.preview_url {
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest))
    } else {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| {
                h.rsplit_once(':')
                    .map(|(h, _)| h.to_string())
                    .or(Some(h.to_string()))
            })
            .filter(|h| {
                h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c))
            })
            .unwrap_or_else(|| "127.0.0.1".into());
        format!("http://{host}:{}", s.preview_http.port())
    };
    format!("{origin}/apps/{app}/{group}/")
}
