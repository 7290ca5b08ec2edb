//! A repository's Settings tab: webhooks (add, remove, recent deliveries),
//! the mirror (set, poll now, stop) and deleting the repository.

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
        .route("/repos/{name}/mirror", post(set_mirror))
        .route("/repos/{name}/mirror/poll", post(poll_mirror))
        .route("/repos/{name}/mirror/delete", post(remove_mirror))
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
    let mirror = crate::repos::mirror::get(&state.pool, &repo)
        .await?
        .map(|m| view::MirrorView {
            url: m.url,
            interval_seconds: m.interval_seconds,
            pusher: m.pusher,
            last_polled_at: m.last_polled_at,
            last_result: m.last_result,
            last_error: m.last_error,
        });
    let html = view::settings_page(&ctx, &nav, head.as_deref(), rows, mirror, echo);
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

#[derive(Deserialize)]
struct MirrorForm {
    url: String,
    #[serde(default)]
    interval_seconds: Option<i64>,
}

/// The mirror's managers: the repository's, who can push to it.
async fn mirror_repo(state: &AppState, user: &PageUser, name: &str) -> Result<repos::Repo, Error> {
    let repo =
        repos::authorize(&state.pool, name, &user.user, "codecommit:DeleteRepository").await?;
    repos::authorize(&state.pool, name, &user.user, "codecommit:GitPush").await?;
    Ok(repo)
}

async fn back_to_settings(user: &PageUser, repo: &str, flash: Flash) -> PageResult {
    set_flash(&user.session, flash).await;
    Ok(Redirect::to(&format!("/repos/{repo}/settings")).into_response())
}

async fn set_mirror(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<MirrorForm>,
) -> PageResult {
    let repo = mirror_repo(&state, &user, &name).await?;
    let interval = form.interval_seconds.unwrap_or(300);
    let flash =
        match crate::repos::mirror::set(&state, &repo, &user.user, form.url.trim(), interval).await
        {
            Ok(_) => Flash::Ok(
                "The repository follows that URL now; the first poll is under way.".into(),
            ),
            Err(e @ Error::Invalid { .. }) => {
                Flash::Error(crate::http::pages::capitalise(&e.to_string()))
            }
            Err(e) => return Err(e.into()),
        };
    back_to_settings(&user, &repo.name, flash).await
}

async fn poll_mirror(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    let repo = mirror_repo(&state, &user, &name).await?;
    let flash = match crate::repos::mirror::poll(&state, &state.repo_locks, &repo).await? {
        Ok(result) => Flash::Ok(format!("Polled: {result}.")),
        Err(why) => Flash::Error(format!("The poll failed: {why}")),
    };
    back_to_settings(&user, &repo.name, flash).await
}

async fn remove_mirror(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    let repo = mirror_repo(&state, &user, &name).await?;
    crate::repos::mirror::remove(&state.pool, &repo).await?;
    back_to_settings(
        &user,
        &repo.name,
        Flash::Ok("The repository no longer follows its mirror.".into()),
    )
    .await
}
