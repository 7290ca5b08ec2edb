//! The webhook, events and notification rules on a pipeline's page, and
//! the forms that turn the webhook on (showing its secret once) or off and
//! add and remove a rule.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use nubo_frontend::pipeline_events::{EventRow, Lower, RuleRow};
use nubo_frontend::Flash;

use crate::error::{Error, Result};
use crate::http::auth::PageUser;
use crate::http::pages::{capitalise, set_flash, PageResult};
use crate::pipelines::events::{self, RULE_EVENTS};
use crate::pipelines::{self, Pipeline};
use crate::repos::webhooks::{self, NewWebhook, Owner};
use crate::state::AppState;

/// The webhook, the latest events and every rule with its recent
/// deliveries.
pub async fn lower(state: &AppState, p: &Pipeline, manage: bool) -> Result<Lower> {
    let events = events::list(&state.pool, &p.id, None, 25)
        .await?
        .into_iter()
        .map(|e| EventRow {
            what: match (&e.stage, &e.action) {
                (Some(s), Some(a)) => format!("action {s}/{a}"),
                (Some(s), None) => format!("stage {s}"),
                _ => "execution".to_string(),
            },
            summary: e.event["detail"]["summary"].as_str().map(str::to_string),
            time: e.time,
            execution: e.execution,
            state: e.state,
        })
        .collect();
    let mut rules = Vec::new();
    let list = if manage {
        webhooks::list_for_pipeline(&state.pool, &p.id).await?
    } else {
        Vec::new()
    };
    for r in list {
        let deliveries = webhooks::recent(&state.pool, Owner::Pipeline(&p.id), &r.id, 5).await?;
        rules.push(RuleRow {
            events: r.events.join(", "),
            id: r.id,
            url: r.url,
            deliveries,
        });
    }
    Ok(Lower {
        manage,
        webhook: crate::pipelines::webhook::status(&state.pool, p).await?,
        webhook_url: address(state, &p.name),
        events,
        rules,
    })
}

async fn back(user: &PageUser, name: &str, flash: Flash) -> PageResult {
    set_flash(&user.session, flash).await;
    Ok(Redirect::to(&format!("/pipelines/{name}")).into_response())
}

/// The rule form: `url`, `secret` and any number of `events`.
pub async fn add(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    body: String,
) -> PageResult {
    let p = pipelines::for_user(&state.pool, &user.user, &name).await?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let field = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let chosen: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "events")
        .map(|(_, v)| v.clone())
        .collect();
    if chosen.is_empty() {
        let flash = Flash::Error("Pick at least one change to be told about.".into());
        return back(&user, &p.name, flash).await;
    }
    let (repo, _) = p.declaration.source().unwrap_or_default();
    let Some(repo) = crate::repos::find(&state.pool, repo).await? else {
        let flash = Flash::Error(format!("The source repository {repo} does not exist."));
        return back(&user, &p.name, flash).await;
    };
    let rule = NewWebhook {
        url: field("url"),
        secret: Some(field("secret")),
        events: Some(chosen),
        branches: None,
    };
    match webhooks::create_in(&state, &repo.id, Some(&p.id), rule, RULE_EVENTS).await {
        Ok(_) => {
            back(
                &user,
                &p.name,
                Flash::Ok("Added the notification rule.".into()),
            )
            .await
        }
        Err(e @ (Error::Invalid { .. } | Error::Unprocessable(_))) => {
            back(&user, &p.name, Flash::Error(capitalise(&e.to_string()))).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn remove(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, id)): Path<(String, String)>,
) -> PageResult {
    let p = pipelines::for_user(&state.pool, &user.user, &name).await?;
    webhooks::delete_of(&state.pool, Owner::Pipeline(&p.id), &id).await?;
    back(
        &user,
        &p.name,
        Flash::Ok("The notification rule was removed.".into()),
    )
    .await
}

fn address(state: &AppState, name: &str) -> String {
    let base = crate::pipelines::events::base_url(state);
    format!("{base}/api/v1/pipelines/{name}/webhook/trigger")
}

/// Turns the webhook on (or makes a new secret) and shows the secret once.
pub async fn webhook_on(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    let p = pipelines::for_user(&state.pool, &user.user, &name).await?;
    let secret = crate::pipelines::webhook::enable(&state, &p, &user.user).await?;
    let ctx = crate::http::pages::context(&user, &p.name, nubo_frontend::Nav::Pipelines).await;
    let html = nubo_frontend::pipeline_events::webhook_secret_page(
        &ctx,
        &p.name,
        &address(&state, &p.name),
        &secret,
    );
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::response::Html(html),
    )
        .into_response())
}

pub async fn webhook_off(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    let p = pipelines::for_user(&state.pool, &user.user, &name).await?;
    crate::pipelines::webhook::disable(&state.pool, &p).await?;
    back(&user, &p.name, Flash::Ok("The webhook is off.".into())).await
}
