//! A repository's Settings tab: webhooks (add, remove, recent deliveries)
//! and deleting the repository.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use nubo_frontend::repos as view;
use nubo_frontend::{Flash, FormEcho, Nav};
use serde::Deserialize;

use crate::error::Error;
use crate::http::auth::PageUser;
use crate::http::pages::{comma_list, context, refused_form, set_flash, PageResult};
use crate::repos;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/repos/{name}/settings", get(settings_page))
        .route("/repos/{name}/delete", post(delete_repo))
        .route("/repos/{name}/webhooks", post(add_webhook))
        .route("/repos/{name}/webhooks/{id}/delete", post(remove_webhook))
}

async fn settings_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    render_settings(&state, &user, &name, &FormEcho::default(), StatusCode::OK).await
}

/// The branch the tabs point at: HEAD's when it exists, else the first.
pub(super) async fn head_of(
    state: &AppState,
    user: &PageUser,
    repo: &repos::Repo,
) -> Option<String> {
    let (_, dir) =
        crate::repos::browse::working_copy(state, &state.repo_locks, &repo.name, &user.user)
            .await
            .ok()?;
    let refs = crate::repos::browse::read(move || nubo_git::browse::refs(&dir))
        .await
        .ok()?;
    let branches: Vec<String> = refs.branches.into_iter().map(|(n, _)| n).collect();
    refs.head
        .filter(|h| branches.contains(h))
        .or_else(|| branches.first().cloned())
}

/// The Settings tab, for those who may manage the repository; `echo`
/// fills the webhook form again after a refusal (answered with `status`
/// then; the secret is never sent back).
async fn render_settings(
    state: &AppState,
    user: &PageUser,
    name: &str,
    echo: &FormEcho,
    status: StatusCode,
) -> PageResult {
    let repo =
        repos::authorize(&state.pool, name, &user.user, "codecommit:DeleteRepository").await?;
    let mut rows = Vec::new();
    for h in crate::repos::webhooks::list(&state.pool, &repo.id).await? {
        let owner = crate::repos::webhooks::Owner::Repo(&repo.id);
        let deliveries = crate::repos::webhooks::recent(&state.pool, owner, &h.id, 5).await?;
        let filter = if h.branches.is_empty() {
            "all refs".to_string()
        } else {
            h.branches.join(", ")
        };
        rows.push(view::WebhookRow {
            id: h.id,
            url: h.url,
            filter: format!("{} · {filter}", h.events.join(", ")),
            deliveries,
        });
    }
    let nav = view::RepoNav {
        name: repo.name.clone(),
        manage: true,
    };
    let head = head_of(state, user, &repo).await;
    let ctx = context(
        user,
        &format!("{} · Settings", repo.name),
        Nav::Repositories,
    )
    .await;
    let html = view::settings_page(&ctx, &nav, head.as_deref(), rows, echo);
    Ok((status, Html(html)).into_response())
}

#[derive(Deserialize, serde::Serialize)]
struct WebhookForm {
    url: String,
    secret: String,
    #[serde(default)]
    branches: String,
}

async fn add_webhook(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<WebhookForm>,
) -> PageResult {
    let repo = repos::authorize(
        &state.pool,
        &name,
        &user.user,
        "codecommit:DeleteRepository",
    )
    .await?;
    let branches = comma_list(&form.branches);
    // The secret comes from the form, so the page never has to show one.
    let body = crate::repos::webhooks::NewWebhook {
        url: form.url.trim().to_string(),
        secret: Some(form.secret.clone()),
        events: None,
        branches: Some(branches),
    };
    match crate::repos::webhooks::create(&state, &repo.id, body).await {
        Ok(_) => {
            set_flash(&user.session, Flash::Ok("Added the webhook.".into())).await;
            Ok(Redirect::to(&format!("/repos/{}/settings", repo.name)).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Unprocessable(_))) => {
            let mut echo = refused_form(&form, e.field(), &e.to_string());
            echo.values.remove("secret");
            render_settings(&state, &user, &repo.name, &echo, e.status()).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn remove_webhook(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, id)): Path<(String, String)>,
) -> PageResult {
    let repo = repos::authorize(
        &state.pool,
        &name,
        &user.user,
        "codecommit:DeleteRepository",
    )
    .await?;
    crate::repos::webhooks::delete(&state.pool, &repo.id, &id).await?;
    set_flash(&user.session, Flash::Ok("The webhook was removed.".into())).await;
    Ok(Redirect::to(&format!("/repos/{}/settings", repo.name)).into_response())
}

async fn delete_repo(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    let repo = repos::delete_as(&state, &name, &user.user).await?;
    set_flash(
        &user.session,
        Flash::Ok(format!("Deleted repository {}.", repo.name)),
    )
    .await;
    Ok(Redirect::to("/repos").into_response())
}
