//! The pages of no one domain: the dashboard, the sections still to come
//! (pipelines, deployments) and the embedded assets.

use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use nubo_frontend::pages::{self, Section};
use nubo_frontend::Nav;

use crate::http::auth::PageUser;
use crate::http::pages::{asset, context};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route(
            "/pipelines",
            get(|u: PageUser| section(u, Section::Pipelines)),
        )
        .route(
            "/deployments",
            get(|u: PageUser| section(u, Section::Deployments)),
        )
        .route("/assets/{*path}", get(asset))
        // Browsers ask for it whatever the page says: the same icon.
        .route(
            "/favicon.ico",
            get(|headers: axum::http::HeaderMap| {
                asset(
                    axum::extract::Path("favicon.svg".to_string()),
                    axum::extract::RawQuery(None),
                    headers,
                )
            }),
        )
}

async fn dashboard(user: PageUser) -> Response {
    let ctx = context(&user, "Dashboard", Nav::Dashboard).await;
    Html(pages::dashboard(&ctx)).into_response()
}

async fn section(user: PageUser, section: Section) -> Response {
    let (title, nav) = match section {
        Section::Workspaces => ("Workspaces", Nav::Workspaces),
        Section::Pipelines => ("Pipelines", Nav::Pipelines),
        Section::Deployments => ("Deployments", Nav::Deployments),
    };
    let ctx = context(&user, title, nav).await;
    Html(pages::empty_section(&ctx, section)).into_response()
}
