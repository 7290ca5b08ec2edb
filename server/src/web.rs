//! Browser pages: sign-in, dashboard shell, account, API tokens and user
//! administration. Forms post back here (with the CSRF field) and follow the
//! post/redirect/get pattern; one-shot messages travel in the session.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use nubo_frontend::pages::{self, Section};
use nubo_frontend::{Flash, Nav};
use serde::Deserialize;

use crate::error::Error;
use crate::http::auth::PageUser;
use crate::http::pages::{asset, capitalise, context, set_flash, PageResult};
use crate::repos;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(crate::identity::pages::routes())
        .merge(crate::repos::pages::routes())
        .merge(crate::params::pages::routes())
        .merge(crate::http::simulator::pages())
        .route("/", get(dashboard))
        .route("/projects", get(projects_page).post(create_project_form))
        .route("/projects/{name}", get(project_page))
        .route("/projects/{name}/start", post(start_build_form))
        .route("/projects/{name}/delete", post(delete_project_form))
        .route("/builds/{id}", get(build_page))
        .route("/builds/{id}/stop", post(stop_build_form))
        .route("/batches/{id}", get(batch_page))
        .route("/batches/{id}/stop", post(stop_batch_form))
        .route("/workspaces", get(workspaces_page).post(create_workspace))
        .route("/workspaces/{id}", get(workspace_page))
        .route("/workspaces/{id}/{action}", post(workspace_action))
        .route(
            "/pipelines",
            get(|u: PageUser| section(u, Section::Pipelines)),
        )
        .route(
            "/deployments",
            get(|u: PageUser| section(u, Section::Deployments)),
        )
        .route("/assets/{*path}", get(asset))
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

fn workspace_row(ws: crate::workspaces::Workspace) -> nubo_frontend::WorkspaceRow {
    nubo_frontend::WorkspaceRow {
        id: ws.id,
        name: ws.name,
        repo: ws.repo,
        backend: ws.backend,
        image: ws.image,
        state: ws.state,
        started_at: ws.started_at_ms,
        idle_timeout_minutes: ws.idle_timeout_seconds / 60,
        error: ws.error,
    }
}

async fn workspaces_page(State(state): State<AppState>, user: PageUser) -> PageResult {
    let list: Vec<_> = crate::workspaces::list_for(&state.pool, &user.user)
        .await?
        .into_iter()
        .map(workspace_row)
        .collect();
    let repos: Vec<String> = repos::list_for(&state.pool, &user.user)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let ctx = context(&user, "Workspaces", Nav::Workspaces).await;
    Ok(Html(nubo_frontend::workspaces_page(&ctx, &list, &repos)).into_response())
}

#[derive(Deserialize)]
struct WorkspaceForm {
    name: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    backend: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    idle_timeout_minutes: Option<String>,
}

async fn create_workspace(
    State(state): State<AppState>,
    user: PageUser,
    Form(form): Form<WorkspaceForm>,
) -> PageResult {
    let idle = match form.idle_timeout_minutes.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                set_flash(
                    &user.session,
                    Flash::Error(format!(
                        "The idle timeout {v:?} is not a number of minutes."
                    )),
                )
                .await;
                return Ok(Redirect::to("/workspaces").into_response());
            }
        },
    };
    let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let request = crate::workspaces::CreateWorkspace {
        name: form.name.trim().to_string(),
        repo: non_empty(&form.repo),
        backend: non_empty(&form.backend),
        image: non_empty(&form.image),
        idle_timeout_minutes: idle,
        idle_timeout_seconds: None,
        start: Some(true),
    };
    let env = crate::workspaces::Env::from_state(&state);
    match crate::workspaces::create(&env, &user.user, request).await {
        Ok(ws) => {
            tracing::info!(workspace = %ws.id, by = %user.user.name, "workspace created");
            Ok(Redirect::to(&format!("/workspaces/{}", ws.id)).into_response())
        }
        Err(
            Error::Unprocessable(m) | Error::Conflict(m) | Error::NotFound(m) | Error::Forbidden(m),
        ) => {
            set_flash(&user.session, Flash::Error(capitalise(&m))).await;
            Ok(Redirect::to("/workspaces").into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn workspace_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> PageResult {
    let ws = crate::workspaces::usable(&state.pool, &user.user, &id).await?;
    let title = ws.name.clone();
    let ctx = context(&user, &title, Nav::Workspaces).await;
    let mut response =
        Html(nubo_frontend::workspace_ide_page(&ctx, &workspace_row(ws))).into_response();
    // CodeMirror and xterm.js add style elements at run time; the preview
    // pane frames the preview origin (never Nubo's own).
    let csp = format!(
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-src {}; frame-ancestors 'none'; form-action 'self'",
        crate::preview::frame_sources(&state, &headers)
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(response)
}

async fn workspace_action(
    State(state): State<AppState>,
    user: PageUser,
    Path((id, action)): Path<(String, String)>,
) -> PageResult {
    let env = crate::workspaces::Env::from_state(&state);
    let ws = crate::workspaces::owned(&state.pool, &user.user, &id).await?;
    let result = match action.as_str() {
        "start" => crate::workspaces::start(&env, &ws).await.map(|_| "started"),
        "stop" => crate::workspaces::stop(&env, &ws, None)
            .await
            .map(|_| "stopped"),
        "delete" => crate::workspaces::delete(&env, &ws)
            .await
            .map(|_| "deleted"),
        _ => return Err(Error::NotFound(format!("no action {action:?}")).into()),
    };
    match result {
        Ok(done) => {
            set_flash(
                &user.session,
                Flash::Ok(format!("Workspace {} {done}.", ws.name)),
            )
            .await;
            let to = if action == "start" {
                format!("/workspaces/{}", ws.id)
            } else {
                "/workspaces".to_string()
            };
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) => {
            set_flash(&user.session, Flash::Error(capitalise(&e.public_message()))).await;
            Ok(Redirect::to("/workspaces").into_response())
        }
    }
}

fn project_row(
    p: &crate::builds::Project,
    last: Option<&crate::builds::Build>,
) -> nubo_frontend::ProjectRow {
    nubo_frontend::ProjectRow {
        name: p.name.clone(),
        repo: p.repo.clone(),
        branch: p.branch.clone(),
        buildspec_path: p.buildspec_path.clone(),
        inline_buildspec: p.inline_buildspec.clone(),
        image: p.image.clone(),
        timeout_minutes: p.timeout_minutes,
        env: p.env.clone(),
        created_at: p.created_at_ms,
        last_status: last.map(|b| b.status.clone()),
        last_build_id: last.map(|b| b.id.clone()),
    }
}

fn build_row(b: &crate::builds::Build) -> nubo_frontend::BuildRow {
    nubo_frontend::BuildRow {
        id: b.id.clone(),
        project: b.project.clone(),
        number: b.number,
        status: b.status.clone(),
        current_phase: b.current_phase.clone(),
        phases: b
            .phases
            .iter()
            .map(|p| nubo_frontend::PhaseRow {
                phase: p.phase.clone(),
                status: p.status.clone(),
                duration_ms: p.duration_ms,
            })
            .collect(),
        branch: b.branch.clone(),
        commit: b.commit.clone(),
        initiator: b.initiator.clone(),
        queued_at: b.queued_at_ms,
        started_at: b.started_at_ms,
        ended_at: b.ended_at_ms,
        exported: b.exported_variables.clone(),
        artifacts: b.artifacts,
        reason: b.reason.clone(),
        batch: b
            .batch_id
            .clone()
            .zip(b.identifier.clone())
            .map(|(batch_id, identifier)| nubo_frontend::BatchLink {
                batch_id,
                identifier,
            }),
        reports: b
            .reports
            .iter()
            .map(|r| nubo_frontend::ReportRow {
                group: r.group.clone(),
                total: r.total,
                passed: r.passed,
                failed: r.failed,
                skipped: r.skipped,
                failures: r
                    .failures
                    .iter()
                    .map(|f| (f.suite.clone(), f.name.clone(), f.message.clone()))
                    .collect(),
            })
            .collect(),
    }
}

async fn projects_page(State(state): State<AppState>, user: PageUser) -> PageResult {
    let projects = crate::builds::list_projects(&state.pool, &user.user).await?;
    let mut rows = Vec::new();
    for p in &projects {
        let last = crate::builds::list_builds(&state.pool, p, 1).await?;
        rows.push(project_row(p, last.first()));
    }
    let repos: Vec<String> = repos::list_for(&state.pool, &user.user)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let ctx = context(&user, "Builds", Nav::Pipelines).await;
    Ok(Html(nubo_frontend::projects_page(&ctx, &rows, &repos)).into_response())
}

#[derive(Deserialize)]
struct ProjectForm {
    name: String,
    repo: String,
    #[serde(default)]
    branch: String,
    #[serde(default)]
    buildspec_path: String,
    #[serde(default)]
    inline_buildspec: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    timeout_minutes: String,
    #[serde(default)]
    env: String,
    #[serde(default)]
    memory_mb: String,
    #[serde(default)]
    cpus: String,
    #[serde(default)]
    pids: String,
}

async fn create_project_form(
    State(state): State<AppState>,
    user: PageUser,
    Form(form): Form<ProjectForm>,
) -> PageResult {
    let back = |m: String| async {
        set_flash(&user.session, Flash::Error(m)).await;
        Ok(Redirect::to("/projects").into_response())
    };
    let mut env = std::collections::BTreeMap::new();
    for line in form.env.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((k, v)) => {
                env.insert(k.trim().to_string(), v.to_string());
            }
            None => {
                return back(format!(
                    "Each variable line must be KEY=VALUE, not {line:?}."
                ))
                .await
            }
        }
    }
    let timeout = match form.timeout_minutes.trim() {
        "" => None,
        t => match t.parse() {
            Ok(n) => Some(n),
            Err(_) => return back(format!("The timeout {t:?} is not a number of minutes.")).await,
        },
    };
    let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let (memory_mb, cpus, pids) = match (
        non_empty(&form.memory_mb)
            .map(|v| v.parse::<i64>())
            .transpose(),
        non_empty(&form.cpus).map(|v| v.parse::<f64>()).transpose(),
        non_empty(&form.pids).map(|v| v.parse::<i64>()).transpose(),
    ) {
        (Ok(m), Ok(c), Ok(p)) => (m, c, p),
        _ => return back("The container limits must be numbers.".into()).await,
    };
    let request = crate::builds::CreateProject {
        memory_mb,
        cpus,
        pids,
        name: form.name.trim().to_string(),
        repo: form.repo.trim().to_string(),
        branch: non_empty(&form.branch),
        buildspec_path: non_empty(&form.buildspec_path),
        buildspec: Some(form.inline_buildspec.clone()).filter(|s| !s.trim().is_empty()),
        image: non_empty(&form.image),
        env: Some(env),
        timeout_minutes: timeout,
    };
    match crate::builds::create_project(&state.pool, &state.settings, &user.user, request).await {
        Ok(p) => {
            set_flash(
                &user.session,
                Flash::Ok(format!("Created build project {}.", p.name)),
            )
            .await;
            Ok(Redirect::to(&format!("/projects/{}", p.name)).into_response())
        }
        Err(
            Error::Unprocessable(m) | Error::Conflict(m) | Error::NotFound(m) | Error::Forbidden(m),
        ) => back(capitalise(&m)).await,
        Err(e) => Err(e.into()),
    }
}

async fn project_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    let p = crate::builds::project_for(&state.pool, &user.user, &name).await?;
    let last = crate::builds::list_builds(&state.pool, &p, 1).await?;
    let singles = crate::builds::list_single_builds(&state.pool, &p, 100).await?;
    let batches = crate::build_batches::list(&state.pool, &p, 50).await?;
    // Newest first: builds by when they were queued, batches by when they
    // were started.
    let mut history: Vec<(i64, nubo_frontend::HistoryItem)> = singles
        .iter()
        .map(|b| {
            (
                b.queued_at_ms,
                nubo_frontend::HistoryItem::Build(build_row(b)),
            )
        })
        .collect();
    for batch in &batches {
        let row = batch_row(&state, batch).await?;
        history.push((batch.created_at_ms, nubo_frontend::HistoryItem::Batch(row)));
    }
    history.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let history: Vec<_> = history.into_iter().map(|(_, item)| item).collect();
    let ctx = context(&user, &p.name, Nav::Pipelines).await;
    Ok(Html(nubo_frontend::project_page(
        &ctx,
        &project_row(&p, last.first()),
        &history,
    ))
    .into_response())
}

/// A batch with its builds, as the pages show it.
async fn batch_row(
    state: &AppState,
    batch: &crate::build_batches::BuildBatch,
) -> Result<nubo_frontend::BatchRow, Error> {
    let builds = crate::builds::batch_builds(&state.pool, &batch.id).await?;
    let children = batch
        .builds
        .iter()
        .filter_map(|entry| {
            let b = builds.iter().find(|b| b.id == entry.build_id)?;
            Some(nubo_frontend::BatchChildRow {
                identifier: entry.identifier.clone(),
                depends_on: entry.depends_on.clone(),
                ignore_failure: entry.ignore_failure,
                build: build_row(b),
            })
        })
        .collect();
    Ok(nubo_frontend::BatchRow {
        id: batch.id.clone(),
        project: batch.project.clone(),
        kind: batch.kind.clone(),
        status: batch.status.clone(),
        branch: batch.branch.clone(),
        commit: batch.commit.clone(),
        initiator: batch.initiator.clone(),
        created_at: batch.created_at_ms,
        ended_at: batch.ended_at_ms,
        reason: batch.reason.clone(),
        fast_fail: batch.fast_fail,
        combine_artifacts: batch.combine_artifacts,
        builds: children,
    })
}

async fn batch_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> PageResult {
    let batch = crate::build_batches::batch_for(&state.pool, &user.user, &id).await?;
    let row = batch_row(&state, &batch).await?;
    let ctx = context(&user, &format!("{} batch", batch.project), Nav::Pipelines).await;
    Ok(Html(nubo_frontend::batch_page(&ctx, &row)).into_response())
}

async fn stop_batch_form(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> PageResult {
    let batch = crate::build_batches::batch_for(&state.pool, &user.user, &id).await?;
    let batch = crate::build_batches::stop(&state, &batch).await?;
    set_flash(
        &user.session,
        Flash::Ok(format!(
            "The batch is {}.",
            batch.status.to_lowercase().replace('_', " ")
        )),
    )
    .await;
    Ok(Redirect::to(&format!("/batches/{}", batch.id)).into_response())
}

#[derive(Deserialize)]
struct StartForm {
    #[serde(default)]
    branch: String,
    #[serde(default)]
    commit: String,
}

async fn start_build_form(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<StartForm>,
) -> PageResult {
    let p = crate::builds::project_for(&state.pool, &user.user, &name).await?;
    let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let request = crate::builds::StartBuild {
        branch: non_empty(&form.branch),
        commit: non_empty(&form.commit),
        env: None,
    };
    let started = async {
        crate::repos::authorize(&state.pool, &p.repo, &user.user, "codecommit:GitPull").await?;
        crate::build_batches::start_any(&state, &p, &user.user, request).await
    }
    .await;
    match started {
        Ok(crate::build_batches::Started::Build(b)) => {
            Ok(Redirect::to(&format!("/builds/{}", b.id)).into_response())
        }
        Ok(crate::build_batches::Started::Batch(b)) => {
            Ok(Redirect::to(&format!("/batches/{}", b.id)).into_response())
        }
        Err(Error::Unprocessable(m) | Error::Forbidden(m) | Error::NotFound(m)) => {
            set_flash(&user.session, Flash::Error(capitalise(&m))).await;
            Ok(Redirect::to(&format!("/projects/{}", p.name)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete_project_form(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    let p = crate::builds::project_for(&state.pool, &user.user, &name).await?;
    crate::builds::delete_project(&state, &p).await?;
    set_flash(
        &user.session,
        Flash::Ok(format!("Deleted build project {}.", p.name)),
    )
    .await;
    Ok(Redirect::to("/projects").into_response())
}

async fn build_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> PageResult {
    let b = crate::builds::build_for(&state.pool, &user.user, &id).await?;
    let path = crate::builds::build_dir(&state.settings.data_dir, &b.id).join("build.log");
    let log = tokio::fs::read(&path).await.unwrap_or_default();
    // The page shows the last 2 MiB; the whole log is a link away.
    let cut = log.len().saturating_sub(2 << 20);
    let mut shown = String::new();
    if cut > 0 {
        shown.push_str(&format!("[{cut} earlier bytes are in the full log]\n"));
    }
    shown.push_str(&String::from_utf8_lossy(&log[cut..]));
    let title = format!("{} #{}", b.project, b.number);
    let ctx = context(&user, &title, Nav::Pipelines).await;
    Ok(Html(nubo_frontend::build_page(&ctx, &build_row(&b), &shown)).into_response())
}

async fn stop_build_form(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> PageResult {
    let b = crate::builds::build_for(&state.pool, &user.user, &id).await?;
    let b = crate::builds::stop(&state, &b).await?;
    set_flash(
        &user.session,
        Flash::Ok(format!(
            "Build #{} is {}.",
            b.number,
            b.status.to_lowercase()
        )),
    )
    .await;
    Ok(Redirect::to(&format!("/builds/{}", b.id)).into_response())
}
