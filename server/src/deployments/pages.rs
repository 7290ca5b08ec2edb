//! Deployments' pages: `/deployments` (applications, targets), an
//! application's groups, a group (deploy, history, redeploy), and a
//! deployment's live grid (`…/live` answers the grid alone for the island).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use nubo_frontend::deployments as page;
use nubo_frontend::{Flash, FormEcho, Nav};
use serde::{Deserialize, Serialize};

use super::revisions::Revision;
use super::{agents, engine, view, NewGroup};
use crate::error::Error;
use crate::http::auth::PageUser;
use crate::http::pages::{context, refused_form, set_flash, PageResult};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/deployments", get(list_page).post(create_app))
        .route("/deployments/d/{id}", get(deployment_page))
        .route("/deployments/d/{id}/live", get(live))
        .route("/deployments/d/{id}/stop", post(stop))
        .route("/deployments/{app}", get(app_page))
        .route("/deployments/{app}/groups", post(create_group))
        .route("/deployments/{app}/{group}", get(group_page))
        .route("/deployments/{app}/{group}/deploy", post(deploy))
        .route("/deployments/{app}/{group}/rollback", post(rollback))
}

fn target_rows(ts: Vec<agents::Target>) -> Vec<page::TargetRow> {
    ts.into_iter()
        .map(|t| page::TargetRow {
            tags: tags_text(&t.tags),
            name: t.name,
            online: t.online,
            revision: t.revision,
            owner: t.owner,
            last_seen: crate::db::rfc3339(t.last_seen_at),
        })
        .collect()
}

fn tags_text(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn list_page(
    State(state): State<AppState>,
    user: PageUser,
    headers: HeaderMap,
) -> PageResult {
    render_list(
        &state,
        &user,
        &headers,
        &FormEcho::default(),
        StatusCode::OK,
    )
    .await
}

async fn render_list(
    state: &AppState,
    user: &PageUser,
    headers: &HeaderMap,
    echo: &FormEcho,
    status: StatusCode,
) -> PageResult {
    let mut apps = Vec::new();
    for a in super::list_applications(&state.pool, &user.user).await? {
        let groups = super::list_groups(&state.pool, &a).await?.len();
        apps.push(page::AppRow {
            name: a.name,
            owner: a.owner,
            groups,
        });
    }
    let targets = target_rows(agents::list_for(&state.pool, &user.user).await?);
    let ctx = context(user, "Deployments", Nav::Deployments).await;
    let url = crate::http::base_url(state, headers);
    Ok((
        status,
        Html(page::deployments_page(&ctx, apps, targets, &url, echo)),
    )
        .into_response())
}

#[derive(Deserialize, Serialize)]
struct AppForm {
    name: String,
}

async fn create_app(
    State(state): State<AppState>,
    user: PageUser,
    headers: HeaderMap,
    Form(f): Form<AppForm>,
) -> PageResult {
    match super::create_application(&state.pool, &user.user, f.name.trim()).await {
        Ok(a) => {
            set_flash(
                &user.session,
                Flash::Ok(format!("Application {} created.", a.name)),
            )
            .await;
            Ok(Redirect::to(&format!("/deployments/{}", a.name)).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            let echo = refused_form(&f, Some("name"), &e.to_string());
            render_list(
                &state,
                &user,
                &headers,
                &echo,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn app_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(app): Path<String>,
) -> PageResult {
    render_app(&state, &user, &app, &FormEcho::default(), StatusCode::OK).await
}

async fn render_app(
    state: &AppState,
    user: &PageUser,
    app: &str,
    echo: &FormEcho,
    status: StatusCode,
) -> PageResult {
    let a = super::application_for(&state.pool, &user.user, app).await?;
    let mut groups = Vec::new();
    for g in super::list_groups(&state.pool, &a).await? {
        let latest = view::list(&state.pool, &g, 1)
            .await?
            .into_iter()
            .next()
            .map(|d| (d.id, d.status));
        groups.push(page::GroupRow {
            tags: tags_text(&g.tags),
            name: g.name,
            config: g.config,
            auto_rollback: g.auto_rollback,
            latest,
            app_url: None,
            blue_green: None,
        });
    }
    let configs = super::list_configs(&state.pool)
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let ctx = context(user, &format!("Application {}", a.name), Nav::Deployments).await;
    Ok((
        status,
        Html(page::application_page(&ctx, &a.name, groups, configs, echo)),
    )
        .into_response())
}

#[derive(Deserialize, Serialize)]
struct GroupForm {
    name: String,
    config: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    managed: String,
    /// Containers of this image when set.
    #[serde(default)]
    image: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    auto_rollback: Option<String>,
    /// Blue/green when set.
    #[serde(default)]
    health_path: String,
}

async fn create_group(
    State(state): State<AppState>,
    user: PageUser,
    Path(app): Path<String>,
    Form(f): Form<GroupForm>,
) -> PageResult {
    let a = super::application_for(&state.pool, &user.user, &app).await?;
    let mut tags = BTreeMap::new();
    for pair in f.tags.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) => {
                tags.insert(k.trim().to_string(), v.trim().to_string());
            }
            None => {
                let echo = refused_form(&f, Some("tags"), &format!("{pair:?} is not k=v"));
                return render_app(&state, &user, &app, &echo, StatusCode::UNPROCESSABLE_ENTITY)
                    .await;
            }
        }
    }
    let g = NewGroup {
        name: f.name.trim().to_string(),
        config: Some(f.config.clone()),
        tags,
        auto_rollback: f.auto_rollback.is_some(),
        queue: true,
        managed_count: f.managed.trim().parse().unwrap_or(0),
        managed_image: Some(f.image.trim().to_string()).filter(|i| !i.is_empty()),
        app_port: f.port.trim().parse().ok(),
        blue_green: (!f.health_path.trim().is_empty()).then(|| super::BlueGreen {
            health_path: f.health_path.trim().to_string(),
            health_timeout_seconds: super::default_health_timeout(),
            drain_seconds: super::default_drain(),
            keep_blue_seconds: super::default_keep(),
        }),
    };
    match super::create_group(&state, &a, g).await {
        Ok(g) => {
            set_flash(
                &user.session,
                Flash::Ok(format!("Group {} created.", g.name)),
            )
            .await;
            Ok(Redirect::to(&format!("/deployments/{}/{}", a.name, g.name)).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            let field = if let Error::Invalid { field, .. } = &e {
                Some(*field)
            } else {
                Some("name")
            };
            let echo = refused_form(&f, field, &e.to_string());
            render_app(&state, &user, &app, &echo, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn group_page(
    State(state): State<AppState>,
    user: PageUser,
    headers: HeaderMap,
    Path((app, group)): Path<(String, String)>,
) -> PageResult {
    render_group(
        &state,
        &user,
        &headers,
        &app,
        &group,
        &FormEcho::default(),
        StatusCode::OK,
    )
    .await
}

fn creator_text(d: &view::Deployment) -> String {
    match (d.creator.as_str(), &d.rollback_of, &d.created_by) {
        ("codeDeployRollback", Some(of), _) => format!("automatic rollback of {of}"),
        ("pipeline", _, Some(by)) => format!("a pipeline, as {by}"),
        (_, _, Some(by)) => by.clone(),
        _ => d.creator.clone(),
    }
}

async fn render_group(
    state: &AppState,
    user: &PageUser,
    headers: &HeaderMap,
    app: &str,
    group: &str,
    echo: &FormEcho,
    status: StatusCode,
) -> PageResult {
    let (a, g) = super::group_for(&state.pool, &user.user, app, group).await?;
    let targets =
        target_rows(agents::select(&state.pool, &a.owner_id, a.owner_admin, &g.tags).await?);
    let history: Vec<page::DeploymentRow> = view::list(&state.pool, &g, 50)
        .await?
        .into_iter()
        .map(|d| page::DeploymentRow {
            creator: creator_text(&d),
            id: d.id,
            status: d.status,
            revision: d.revision_label,
            created_at: crate::db::rfc3339(d.created_at),
        })
        .collect();
    let row = page::GroupRow {
        tags: tags_text(&g.tags),
        name: g.name.clone(),
        config: g.config.clone(),
        auto_rollback: g.auto_rollback,
        latest: None,
        app_url: g
            .app_port
            .map(|_| super::app_proxy::app_url(state, headers, &a.name, &g.name)),
        blue_green: g.blue_green.as_ref().map(|b| {
            let side = match g.active_side {
                Some(0) => "serving side A (targets 0…)".to_string(),
                Some(_) => format!("serving side B (targets {}…)", g.managed_count),
                None => "nothing served yet".to_string(),
            };
            format!(
                "Blue/green: {side}; green must answer GET {} with a 2xx within {} s; blue drains for {} s and is kept {} s",
                b.health_path, b.health_timeout_seconds, b.drain_seconds, b.keep_blue_seconds
            )
        }),
    };
    let ctx = context(user, &format!("{}/{}", a.name, g.name), Nav::Deployments).await;
    Ok((
        status,
        Html(page::group_page(&ctx, &a.name, row, targets, history, echo)),
    )
        .into_response())
}

#[derive(Deserialize, Serialize)]
struct DeployForm {
    #[serde(default)]
    repo: String,
    #[serde(default)]
    commit: String,
    #[serde(default)]
    build_id: String,
}

async fn deploy(
    State(state): State<AppState>,
    user: PageUser,
    headers: HeaderMap,
    Path((app, group)): Path<(String, String)>,
    Form(f): Form<DeployForm>,
) -> PageResult {
    let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let rev = match some(&f.build_id) {
        Some(b) => Revision {
            repo: None,
            commit: None,
            build_id: Some(b),
        },
        None => Revision {
            repo: some(&f.repo),
            commit: some(&f.commit),
            build_id: None,
        },
    };
    match engine::deploy(
        &state,
        &state.deployments,
        &state.repo_locks,
        &user.user,
        (&app, &group),
        &rev,
    )
    .await
    {
        Ok(id) => Ok(Redirect::to(&format!("/deployments/d/{id}")).into_response()),
        Err(
            e @ (Error::Invalid { .. }
            | Error::Conflict(_)
            | Error::Unprocessable(_)
            | Error::Denied { .. }
            | Error::Forbidden(_)),
        ) => {
            let message = match &e {
                Error::Denied { words, .. } => words.clone(),
                e => e.to_string(),
            };
            let echo = refused_form(&f, None, &message);
            render_group(
                &state,
                &user,
                &headers,
                &app,
                &group,
                &echo,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct RollbackForm {
    to: String,
}

async fn rollback(
    State(state): State<AppState>,
    user: PageUser,
    Path((app, group)): Path<(String, String)>,
    Form(f): Form<RollbackForm>,
) -> PageResult {
    match engine::redeploy(
        &state,
        &state.deployments,
        &state.repo_locks,
        &user.user,
        (&app, &group),
        Some(&f.to),
    )
    .await
    {
        Ok((id, pick)) => {
            set_flash(
                &user.session,
                Flash::Ok(format!(
                    "Redeploying {} ({}) as {id}.",
                    pick.revision_label, pick.id
                )),
            )
            .await;
            Ok(Redirect::to(&format!("/deployments/d/{id}")).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_) | Error::Unprocessable(_))) => {
            set_flash(&user.session, Flash::Error(e.to_string())).await;
            Ok(Redirect::to(&format!("/deployments/{app}/{group}")).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn load(state: &AppState, user: &PageUser, id: &str) -> Result<page::DeploymentView, Error> {
    let d = view::for_user(&state.pool, &user.user, id).await?;
    let group_id: String = {
        let a = super::application_for(&state.pool, &user.user, &d.application).await?;
        super::find_group(&state.pool, &a, &d.group)
            .await?
            .map(|g| g.id)
            .unwrap_or_default()
    };
    Ok(page::DeploymentView {
        creator: creator_text(&d),
        id: d.id,
        application: d.application,
        group: d.group,
        group_id,
        status: d.status,
        revision: d.revision_label,
        rollback_of: d.rollback_of,
        rolled_back_by: d.rolled_back_by,
        message: d.message,
        created_at: crate::db::rfc3339(d.created_at),
        targets: d
            .targets
            .into_iter()
            .map(|t| page::TargetLine {
                name: t.name,
                status: t.status,
                events: t
                    .events
                    .into_iter()
                    .map(|e| page::EventCell {
                        name: e.name,
                        status: e.status,
                        error_code: e.error_code,
                        duration: e.duration_ms.map(|ms| {
                            if ms < 1000 {
                                format!("{ms} ms")
                            } else {
                                format!("{:.1} s", ms as f64 / 1000.0)
                            }
                        }),
                        message: e.message,
                        log_tail: e.log_tail,
                    })
                    .collect(),
            })
            .collect(),
    })
}

async fn deployment_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> PageResult {
    let d = load(&state, &user, &id).await?;
    let ctx = context(&user, &format!("Deployment {id}"), Nav::Deployments).await;
    Ok(Html(page::deployment_page(&ctx, &d)).into_response())
}

async fn live(State(state): State<AppState>, user: PageUser, Path(id): Path<String>) -> PageResult {
    let d = load(&state, &user, &id).await?;
    let ctx = context(&user, &format!("Deployment {id}"), Nav::Deployments).await;
    Ok(Html(page::deployment_part(&ctx, &d)).into_response())
}

async fn stop(State(state): State<AppState>, user: PageUser, Path(id): Path<String>) -> PageResult {
    view::for_user(&state.pool, &user.user, &id).await?;
    let flash = match engine::stop(&state, &state.deployments, &id).await {
        Ok(()) => Flash::Ok(format!("Deployment {id} stopped.")),
        Err(e @ Error::Conflict(_)) => Flash::Error(e.to_string()),
        Err(e) => return Err(e.into()),
    };
    set_flash(&user.session, flash).await;
    Ok(Redirect::to(&format!("/deployments/d/{id}")).into_response())
}
