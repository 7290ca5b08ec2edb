//! The pages of no one domain: the dashboard and the embedded assets.

use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use nubo_frontend::pages::{self, ActivityRow, Overview};
use nubo_frontend::Nav;

use crate::http::auth::PageUser;
use crate::http::pages::{asset, context, PageResult};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
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

async fn dashboard(State(state): State<AppState>, user: PageUser) -> PageResult {
    let pool = &state.pool;
    let repos = crate::repos::list_for(pool, &user.user).await?;
    let workspaces = crate::workspaces::list_for(pool, &user.user).await?;
    let projects = crate::builds::list_projects(pool, &user.user).await?;
    let mut activity = Vec::new();
    for repo in repos.iter().take(50) {
        for push in crate::repos::pushes::list(pool, &repo.id, &repo.name, 5).await? {
            let short = push
                .ref_name
                .rsplit('/')
                .next()
                .unwrap_or(&push.ref_name)
                .to_string();
            activity.push(ActivityRow {
                at: push.time,
                kind: "push".into(),
                text: format!("{} pushed to {short} in {}", push.pusher, repo.name),
                href: format!("/repos/{}", repo.name),
            });
        }
    }
    for project in projects.iter().take(50) {
        for build in crate::builds::list_builds(pool, project, 5).await? {
            activity.push(ActivityRow {
                at: build.queued_at.clone(),
                kind: "build".into(),
                text: format!(
                    "Build #{} of {}: {}",
                    build.number,
                    project.name,
                    nubo_frontend::builds::status_label(&build.status)
                ),
                href: format!("/builds/{}", build.id),
            });
        }
    }
    for ws in &workspaces {
        if let Some(at) = &ws.started_at {
            activity.push(ActivityRow {
                at: at.clone(),
                kind: "workspace".into(),
                text: format!("Workspace {} started", ws.name),
                href: format!("/workspaces/{}", ws.id),
            });
        }
    }
    activity.sort_by(|a, b| b.at.cmp(&a.at));
    activity.truncate(10);
    let overview = Overview {
        repos: repos.len(),
        workspaces: workspaces.len(),
        projects: projects.len(),
        activity,
    };
    let ctx = context(&user, "Dashboard", Nav::Dashboard).await;
    Ok(Html(pages::dashboard(&ctx, &overview)).into_response())
}
