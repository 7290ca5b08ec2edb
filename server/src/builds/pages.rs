//! Builds' pages: the projects with the create form, one project (its
//! settings, the start form, its history with batches and their builds),
//! one build (phases, log) and one batch.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use nubo_frontend::{Flash, FormEcho, Nav};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::http::auth::PageUser;
use crate::http::pages::{capitalise, context, refusal_text, refused_form, set_flash, PageResult};
use crate::repos;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects", get(projects_page).post(create_project_form))
        .route("/projects/{name}", get(project_page))
        .route("/projects/{name}/start", post(start_build_form))
        .route("/projects/{name}/delete", post(delete_project_form))
        .route("/builds/{id}", get(build_page))
        .route("/builds/{id}/stop", post(stop_build_form))
        .route("/batches/{id}", get(batch_page))
        .route("/batches/{id}/stop", post(stop_batch_form))
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
        pipeline: b
            .pipeline
            .as_ref()
            .map(|l| (l.pipeline.clone(), l.execution.clone())),
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
    render_projects(&state, &user, &FormEcho::default()).await
}

/// The projects page; `echo` fills the create form again after a refusal
/// (answered 422 then, so the page is not taken for a success).
async fn render_projects(state: &AppState, user: &PageUser, echo: &FormEcho) -> PageResult {
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
    let ctx = context(user, "Builds", Nav::Builds).await;
    let html = Html(nubo_frontend::projects_page(&ctx, &rows, &repos, echo));
    let status = if echo.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, html).into_response())
}

#[derive(Deserialize, Serialize)]
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
    let back = |field: Option<&'static str>, m: String| {
        let echo = refused_form(&form, field, &m);
        let (state, user) = (&state, &user);
        async move { render_projects(state, user, &echo).await }
    };
    let mut env = std::collections::BTreeMap::new();
    for line in form.env.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((k, v)) => {
                env.insert(k.trim().to_string(), v.to_string());
            }
            None => {
                return back(
                    Some("env"),
                    format!("Each variable line must be KEY=VALUE, not {line:?}."),
                )
                .await
            }
        }
    }
    let timeout = match form.timeout_minutes.trim() {
        "" => None,
        t => match t.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                return back(
                    Some("timeout_minutes"),
                    format!("The timeout {t:?} is not a number of minutes."),
                )
                .await
            }
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
        _ => {
            return back(
                Some("memory_mb"),
                "The container limits must be numbers.".into(),
            )
            .await
        }
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
        Err(Error::Invalid { field, message }) => back(Some(field), capitalise(&message)).await,
        Err(Error::Conflict(m)) => back(Some("name"), capitalise(&m)).await,
        Err(Error::NotFound(m) | Error::Forbidden(m)) => back(Some("repo"), capitalise(&m)).await,
        Err(e @ Error::Denied { .. }) => back(Some("repo"), refusal_text(&e)).await,
        Err(Error::Unprocessable(m)) => back(None, capitalise(&m)).await,
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
    let batches = crate::builds::batches::list(&state.pool, &p, 50).await?;
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
    let ctx = context(&user, &p.name, Nav::Builds).await;
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
    batch: &crate::builds::batches::BuildBatch,
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
    let batch = crate::builds::batches::batch_for(&state.pool, &user.user, &id).await?;
    let row = batch_row(&state, &batch).await?;
    let ctx = context(&user, &format!("{} batch", batch.project), Nav::Builds).await;
    Ok(Html(nubo_frontend::batch_page(&ctx, &row)).into_response())
}

async fn stop_batch_form(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> PageResult {
    let batch = crate::builds::batches::batch_for(&state.pool, &user.user, &id).await?;
    let batch = crate::builds::batches::stop(&state, &state.builds, &batch).await?;
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
        ..Default::default()
    };
    let started = async {
        crate::repos::authorize(&state.pool, &p.repo, &user.user, "codecommit:GitPull").await?;
        crate::builds::batches::start_any(&state, &state.builds, &p, &user.user, request).await
    }
    .await;
    match started {
        Ok(crate::builds::batches::Started::Build(b)) => {
            Ok(Redirect::to(&format!("/builds/{}", b.id)).into_response())
        }
        Ok(crate::builds::batches::Started::Batch(b)) => {
            Ok(Redirect::to(&format!("/batches/{}", b.id)).into_response())
        }
        Err(Error::Unprocessable(m) | Error::Forbidden(m) | Error::NotFound(m)) => {
            set_flash(&user.session, Flash::Error(capitalise(&m))).await;
            Ok(Redirect::to(&format!("/projects/{}", p.name)).into_response())
        }
        Err(e @ Error::Denied { .. }) => {
            set_flash(&user.session, Flash::Error(refusal_text(&e))).await;
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
    crate::builds::delete_project(&state, &state.builds, &p).await?;
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
    let ctx = context(&user, &title, Nav::Builds).await;
    Ok(Html(nubo_frontend::build_page(&ctx, &build_row(&b), &shown)).into_response())
}

async fn stop_build_form(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> PageResult {
    let b = crate::builds::build_for(&state.pool, &user.user, &id).await?;
    let b = crate::builds::stop(&state, &state.builds, &b).await?;
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
