//! A repository's Access tab: give a user or group read, write or admin
//! (optionally limited to branches), edit the policy written for them,
//! take it away, and see who has access and why. Only those who may manage
//! the repository reach it; what they write is scoped to the repository
//! ([`crate::repos::access`]).

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
use crate::repos::{self, access};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/repos/{name}/access", get(access_page).post(give))
        .route("/repos/{name}/access/policy", post(edit))
        .route("/repos/{name}/access/revoke", post(revoke))
}

/// The repository, if `user` may manage it (and so share it).
async fn managed(state: &AppState, user: &PageUser, name: &str) -> Result<repos::Repo, Error> {
    repos::authorize(&state.pool, name, &user.user, "codecommit:DeleteRepository").await
}

async fn access_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    render(&state, &user, &name, &FormEcho::default(), StatusCode::OK).await
}

async fn render(
    state: &AppState,
    user: &PageUser,
    name: &str,
    echo: &FormEcho,
    status: StatusCode,
) -> PageResult {
    let repo = managed(state, user, name).await?;
    let head = super::settings::head_of(state, user, &repo).await;
    let push_branch = head.clone().unwrap_or_else(|| "main".to_string());
    let grants = access::grants(&state.pool, &repo)
        .await?
        .into_iter()
        .map(|(kind, principal, doc)| view::Grant {
            level: access::level_of(&repo.name, &doc),
            branches: access_branches(&doc),
            document: serde_json::to_string_pretty(&doc).unwrap_or_default(),
            kind,
            principal,
        })
        .collect();
    let who = access::who(&state.pool, &repo, &format!("refs/heads/{push_branch}"))
        .await?
        .into_iter()
        .map(|(u, read, push, manage)| view::AccessRow {
            user: u.name,
            read,
            push,
            manage,
        })
        .collect();
    let users = crate::identity::accounts::list(&state.pool)
        .await?
        .into_iter()
        .filter(|u| !u.disabled)
        .map(|u| u.name)
        .collect();
    let groups = crate::identity::iam::list_groups(&state.pool)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    let page = view::AccessPage {
        nav: view::RepoNav {
            name: repo.name.clone(),
            manage: true,
        },
        head,
        push_branch,
        grants,
        who,
        users,
        groups,
    };
    let ctx = context(user, &format!("{} · Access", repo.name), Nav::Repositories).await;
    Ok((status, Html(view::access_page(&ctx, page, echo))).into_response())
}

/// The branches a grant limits pushes to, for its card.
fn access_branches(doc: &serde_json::Value) -> Vec<String> {
    let text = doc.to_string();
    let mut out = Vec::new();
    for part in text.split("refs/heads/").skip(1) {
        if let Some(end) = part.find('"') {
            let b = part[..end].to_string();
            if !out.contains(&b) {
                out.push(b);
            }
        }
    }
    out
}

#[derive(Deserialize, serde::Serialize)]
struct GiveForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    principal: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    branches: String,
}

async fn give(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<GiveForm>,
) -> PageResult {
    let repo = managed(&state, &user, &name).await?;
    let branches = comma_list(&form.branches);
    let done = async {
        let doc = access::document(&repo.name, &form.level, &branches)?;
        let (id, who) = access::principal(&state.pool, &form.kind, &form.principal).await?;
        access::guard(&state.pool, &repo, &form.kind, &id, &doc).await?;
        access::put(&state.pool, &repo, &form.kind, &id, &doc).await?;
        Ok::<_, Error>(who)
    }
    .await;
    match done {
        Ok(who) => {
            tracing::info!(repo = %repo.name, by = %user.user.name, kind = %form.kind, principal = %who, level = %form.level, "access given");
            let message = format!("{} {who} now has {} access.", form.kind, form.level);
            set_flash(&user.session, Flash::Ok(message)).await;
            Ok(Redirect::to(&format!("/repos/{}/access", repo.name)).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Unprocessable(_))) => {
            let echo = refused_form(&form, e.field(), &e.to_string());
            render(&state, &user, &repo.name, &echo, e.status()).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, serde::Serialize)]
struct EditForm {
    edit_kind: String,
    edit_principal: String,
    document: String,
}

async fn edit(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<EditForm>,
) -> PageResult {
    let repo = managed(&state, &user, &name).await?;
    let done = async {
        let doc = access::check_scoped(&repo.name, &form.document)?;
        let (id, who) =
            access::principal(&state.pool, &form.edit_kind, &form.edit_principal).await?;
        access::guard(&state.pool, &repo, &form.edit_kind, &id, &doc).await?;
        access::put(&state.pool, &repo, &form.edit_kind, &id, &doc).await?;
        Ok::<_, Error>(who)
    }
    .await;
    match done {
        Ok(who) => {
            tracing::info!(repo = %repo.name, by = %user.user.name, kind = %form.edit_kind, principal = %who, "access policy edited");
            let message = format!("Saved the policy of {} {who}.", form.edit_kind);
            set_flash(&user.session, Flash::Ok(message)).await;
            Ok(Redirect::to(&format!("/repos/{}/access", repo.name)).into_response())
        }
        // The JSON comes back as typed, the reason under it.
        Err(e @ (Error::Invalid { .. } | Error::Unprocessable(_))) => {
            let echo = refused_form(&form, Some("document"), &e.to_string());
            render(&state, &user, &repo.name, &echo, e.status()).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct RevokeForm {
    kind: String,
    principal: String,
}

async fn revoke(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<RevokeForm>,
) -> PageResult {
    let repo = managed(&state, &user, &name).await?;
    let (id, who) = access::principal(&state.pool, &form.kind, &form.principal).await?;
    access::revoke(&state.pool, &repo, &form.kind, &id).await?;
    tracing::info!(repo = %repo.name, by = %user.user.name, kind = %form.kind, principal = %who, "access removed");
    set_flash(
        &user.session,
        Flash::Ok(format!(
            "{} {who} no longer has the access given here.",
            form.kind
        )),
    )
    .await;
    Ok(Redirect::to(&format!("/repos/{}/access", repo.name)).into_response())
}
