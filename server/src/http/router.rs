//! The whole application router: every domain's pages and API merged,
//! with the layers every request passes (sessions, CSRF, body limit,
//! metrics, tracing, security headers).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;
use tracing::Level;

use crate::error::Error;
use crate::http::auth;
use crate::state::AppState;
use crate::{identity::accounts, repos::git_http};

/// The whole application router. `tls` marks the router of the HTTPS
/// listener, whose cookies are always `Secure`.
pub fn router(state: AppState, tls: bool) -> Router {
    let api = utoipa_axum::router::OpenApiRouter::new()
        .merge(crate::identity::api::router())
        .merge(crate::repos::api::router())
        .merge(crate::params::api::router())
        .merge(crate::http::simulator::router())
        .merge(crate::workspaces::api::router())
        .merge(crate::builds::api::router())
        .merge(crate::pipelines::api::router())
        .merge(crate::deployments::api::router());
    let (api, openapi) = crate::http::openapi::document(api);
    let openapi_json: Arc<str> = serde_json::to_string_pretty(&openapi)
        .unwrap_or_else(|_| "{}".into())
        .into();
    let sessions = SessionManagerLayer::new(SqliteStore::new(state.pool.clone()))
        .with_name("nubo_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(tls || state.settings.secure_cookies())
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            state.settings.session_idle_minutes as i64,
        )));
    Router::new()
        .merge(crate::http::dashboard::routes())
        .merge(crate::identity::pages::routes())
        .merge(crate::repos::pages::routes())
        .merge(crate::params::pages::routes())
        .merge(crate::builds::pages::routes())
        .merge(crate::pipelines::pages::routes())
        .merge(crate::deployments::pages::routes())
        .merge(crate::workspaces::pages::routes())
        .merge(crate::http::simulator::pages())
        .merge(git_http::routes())
        .merge(crate::deployments::agent_api::routes())
        .route(
            "/api/v1/workspaces/{id}/files/",
            get(crate::workspaces::api::list_root_slash),
        )
        // The way into a preview: a redirect to its own origin.
        .route(
            "/w/{id}/preview/{port}",
            any(crate::workspaces::preview::entry),
        )
        .route(
            "/w/{id}/preview/{port}/",
            any(crate::workspaces::preview::entry),
        )
        .route(
            "/w/{id}/preview/{port}/{*rest}",
            any(crate::workspaces::preview::entry),
        )
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = openapi_json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        doc.to_string(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::csrf_guard,
        ))
        .layer(middleware::from_fn(crate::http::pages::viewer_scope))
        .layer(sessions)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // The path only: query strings may carry values users typed.
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
            ),
        ))
        .with_state(state)
}

async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    state
        .metrics
        .record(&method, &route, response.status().as_u16(), start.elapsed());
    response
}

/// `/metrics`: off unless `metrics_token` is set, then only for a request
/// that carries it as a bearer token.
async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Error> {
    let Some(expected) = &state.settings.metrics_token else {
        return Err(Error::NotFound(
            "metrics are off on this server (an administrator can set metrics_token)".into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !auth::secret_matches(expected, given.trim()) {
        let mut r = Error::Unauthorized(
            "send the metrics token as `Authorization: Bearer <metrics_token>`".into(),
        )
        .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"nubo metrics\""),
        );
        return Ok(r);
    }
    let users = accounts::count(&state.pool).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(users),
    )
        .into_response())
}

async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    if path.starts_with("/api/") {
        Error::NotFound(format!("no API route {} {path}", request.method())).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Html(nubo_frontend::pages::message(
                "Not found",
                "There is no page at this address.",
            )),
        )
            .into_response()
    }
}
