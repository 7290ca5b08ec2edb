//! Browser pages: sign-in, dashboard shell, account, API tokens and user
//! administration. Forms post back here (with the CSRF field) and follow the
//! post/redirect/get pattern; one-shot messages travel in the session.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use nubo_frontend::pages::{self, Section};
use nubo_frontend::{Flash, Nav};
use serde::Deserialize;

use crate::error::Error;
use crate::http::auth::PageUser;
use crate::http::pages::{asset, capitalise, context, require_admin, set_flash, PageResult};
use crate::repos;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(crate::identity::pages::routes())
        .merge(crate::http::simulator::pages())
        .route("/", get(dashboard))
        .route("/repos", get(repos_page).post(create_repo))
        .route("/repos/{name}", get(repo_page))
        .route("/repos/{name}/delete", post(delete_repo))
        .route("/repos/{name}/webhooks", post(add_webhook))
        .route("/repos/{name}/webhooks/{id}/delete", post(remove_webhook))
        .route("/repos/{name}/tree/{*rest}", get(tree_page))
        .route("/repos/{name}/blob/{*rest}", get(blob_page))
        .route("/repos/{name}/raw/{*rest}", get(raw_page))
        .route("/repos/{name}/commits/{*rest}", get(commits_page))
        .route("/repos/{name}/commit/{sha}", get(commit_page))
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
        .route("/admin/stores", get(stores_page))
        .route("/admin/stores/{kind}", post(put_stored))
        .route("/admin/stores/{kind}/delete", post(delete_stored))
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

async fn repos_page(State(state): State<AppState>, user: PageUser) -> PageResult {
    let rows = repos::list_for(&state.pool, &user.user)
        .await?
        .into_iter()
        .map(|r| pages::RepoRow {
            name: r.name,
            description: r.description,
            owner: r.owner,
            created_at: r.created_at,
        })
        .collect();
    let ctx = context(&user, "Repositories", Nav::Repositories).await;
    Ok(Html(pages::repos(&ctx, rows)).into_response())
}

#[derive(Deserialize)]
struct RepoForm {
    name: String,
    #[serde(default)]
    description: String,
}

async fn create_repo(
    State(state): State<AppState>,
    user: PageUser,
    Form(form): Form<RepoForm>,
) -> PageResult {
    let name = form.name.trim();
    let target = crate::identity::iam::Target::repo(name, None);
    if let Err(Error::Forbidden(m)) = crate::identity::iam::require(
        &state.pool,
        &user.user,
        "codecommit:CreateRepository",
        &target,
        None,
    )
    .await
    {
        set_flash(&user.session, Flash::Error(capitalise(&m))).await;
        return Ok(Redirect::to("/repos").into_response());
    }
    match repos::create(
        &state.pool,
        &state.master,
        name,
        &form.description,
        &user.user,
    )
    .await
    {
        Ok(repo) => {
            tracing::info!(repo = %repo.name, by = %user.user.name, "repository created");
            set_flash(
                &user.session,
                Flash::Ok(format!("Created repository {}.", repo.name)),
            )
            .await;
            Ok(Redirect::to(&format!("/repos/{}", repo.name)).into_response())
        }
        Err(Error::Unprocessable(m) | Error::Conflict(m)) => {
            set_flash(&user.session, Flash::Error(capitalise(&m))).await;
            Ok(Redirect::to("/repos").into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn repo_page(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    let repo = repos::authorize(&state.pool, &name, &user.user, "codecommit:GetRepository").await?;
    let pushes = crate::events::list(&state.pool, &repo.id, &repo.name, 20)
        .await?
        .into_iter()
        .map(|u| pages::PushRow {
            ref_name: u.ref_name,
            old: u.old,
            new: u.new,
            pusher: u.pusher,
            time: u.time,
        })
        .collect();
    // Code, branches and README need GitPull; without it the page shows the rest.
    let mut head = None;
    let (mut branches, mut tags, mut readme_html) = (Vec::new(), Vec::new(), None);
    let can_read = crate::identity::iam::decide(
        &state.pool,
        &user.user,
        "codecommit:GitPull",
        &repo.target(),
        None,
    )
    .await?
    .allowed;
    if can_read {
        let (_, dir) = crate::browse::working_copy(&state, &repo.name, &user.user).await?;
        let d = dir.clone();
        let refs = crate::browse::read(move || nubo_git::browse::refs(&d)).await?;
        branches = refs.branches.into_iter().map(|(n, _)| n).collect();
        tags = refs.tags.into_iter().map(|(n, _)| n).collect();
        if let Some(h) = refs.head.filter(|h| branches.contains(h)) {
            let rev = h.clone();
            readme_html = crate::browse::read(move || Ok(nubo_git::browse::readme(&dir, &rev)))
                .await?
                .map(|(_, text)| crate::browse::markdown(&text));
            head = Some(h);
        }
    }
    let manage = crate::identity::iam::decide(
        &state.pool,
        &user.user,
        "codecommit:DeleteRepository",
        &repo.target(),
        None,
    )
    .await?
    .allowed;
    let webhooks = if manage {
        let mut rows = Vec::new();
        for h in crate::webhooks::list(&state.pool, &repo.id).await? {
            let deliveries = crate::webhooks::deliveries(&state.pool, &repo.id, &h.id)
                .await?
                .into_iter()
                .take(5)
                .map(|d| {
                    let last = d
                        .last_error
                        .or(d.last_status.map(|s| format!("HTTP {s}")))
                        .unwrap_or_default();
                    (d.event, d.state, d.attempts, last)
                })
                .collect();
            let filter = if h.branches.is_empty() {
                "all refs".to_string()
            } else {
                h.branches.join(", ")
            };
            rows.push(pages::WebhookRow {
                id: h.id,
                url: h.url,
                filter: format!("{} · {filter}", h.events.join(", ")),
                deliveries,
            });
        }
        Some(rows)
    } else {
        None
    };
    let page = pages::RepoPage {
        webhooks,
        pushes,
        head,
        branches,
        tags,
        readme_html,
        clone_url_http: repo.clone_url(&crate::http::base_url(&state, &headers)),
        clone_url_ssh: repo.ssh_clone_url(
            &crate::http::base_url(&state, &headers),
            state.settings.ssh.port(),
        ),
        name: repo.name.clone(),
        description: repo.description,
        owner: repo.owner,
        user: user.user.name.clone(),
    };
    let ctx = context(&user, &repo.name, Nav::Repositories).await;
    Ok(Html(pages::repo(&ctx, page)).into_response())
}

async fn tree_page(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, rest)): Path<(String, String)>,
) -> PageResult {
    let (repo, dir) = crate::browse::working_copy(&state, &name, &user.user).await?;
    let (rev, path) = crate::browse::split_rev(dir.clone(), rest).await?;
    let (r, p) = (rev.clone(), path.clone());
    let entries = crate::browse::read(move || nubo_git::browse::tree(&dir, &r, &p))
        .await?
        .into_iter()
        .map(|e| pages::BrowseEntry {
            name: e.name,
            kind: e.kind,
        })
        .collect();
    let ctx = context(&user, &repo.name, Nav::Repositories).await;
    Ok(Html(pages::tree_page(&ctx, &repo.name, &rev, &path, entries)).into_response())
}

async fn blob_page(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, rest)): Path<(String, String)>,
) -> PageResult {
    let (repo, dir) = crate::browse::working_copy(&state, &name, &user.user).await?;
    let (rev, path) = crate::browse::split_rev(dir.clone(), rest).await?;
    let (r, p) = (rev.clone(), path.clone());
    let data = crate::browse::read(move || nubo_git::browse::blob(&dir, &r, &p)).await?;
    let size = data.len();
    let text = (size <= nubo_git::browse::MAX_INLINE && !data.contains(&0))
        .then(|| String::from_utf8(data).ok())
        .flatten();
    let ctx = context(&user, &repo.name, Nav::Repositories).await;
    Ok(Html(pages::blob_page(&ctx, &repo.name, &rev, &path, text, size)).into_response())
}

async fn raw_page(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, rest)): Path<(String, String)>,
) -> PageResult {
    let (_, dir) = crate::browse::working_copy(&state, &name, &user.user).await?;
    let (rev, path) = crate::browse::split_rev(dir.clone(), rest).await?;
    let data = crate::browse::read(move || nubo_git::browse::blob(&dir, &rev, &path)).await?;
    // Served as plain text or bytes, never as HTML of this origin.
    let kind = if std::str::from_utf8(&data).is_ok() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    Ok(([(header::CONTENT_TYPE, kind)], data).into_response())
}

async fn commits_page(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, rest)): Path<(String, String)>,
) -> PageResult {
    let (repo, dir) = crate::browse::working_copy(&state, &name, &user.user).await?;
    let (rev, _) = crate::browse::split_rev(dir.clone(), rest).await?;
    let r = rev.clone();
    let commits = crate::browse::read(move || nubo_git::browse::log(&dir, &r, 100))
        .await?
        .into_iter()
        .map(|c| pages::CommitRow {
            id: c.id,
            summary: c.summary,
            author: c.author,
            time: crate::browse::time(c.time),
        })
        .collect();
    let ctx = context(&user, &repo.name, Nav::Repositories).await;
    Ok(Html(pages::commits_page(&ctx, &repo.name, &rev, commits)).into_response())
}

async fn commit_page(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, sha)): Path<(String, String)>,
) -> PageResult {
    let (repo, dir) = crate::browse::working_copy(&state, &name, &user.user).await?;
    let (c, changes) = crate::browse::read(move || nubo_git::browse::commit(&dir, &sha)).await?;
    let row = pages::CommitRow {
        id: c.id.clone(),
        summary: c.summary.clone(),
        author: c.author.clone(),
        time: crate::browse::time(c.time),
    };
    let changes = changes
        .into_iter()
        .map(|f| pages::ChangeRow {
            path: f.path,
            change: f.change,
            patch: f.patch,
            binary: f.binary,
        })
        .collect();
    let ctx = context(&user, &repo.name, Nav::Repositories).await;
    Ok(Html(pages::commit_page(
        &ctx, &repo.name, row, c.message, c.parents, changes,
    ))
    .into_response())
}

#[derive(Deserialize)]
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
    let branches: Vec<String> = form
        .branches
        .split(',')
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .collect();
    // The secret comes from the form, so the page never has to show one.
    let body = crate::webhooks::NewWebhook {
        url: form.url.trim().to_string(),
        secret: Some(form.secret),
        events: None,
        branches: Some(branches),
    };
    let flash = match crate::webhooks::create(&state, &repo.id, body).await {
        Ok(_) => Flash::Ok("Added the webhook.".into()),
        Err(Error::Unprocessable(m)) => Flash::Error(capitalise(&m)),
        Err(e) => return Err(e.into()),
    };
    set_flash(&user.session, flash).await;
    Ok(Redirect::to(&format!("/repos/{}", repo.name)).into_response())
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
    crate::webhooks::delete(&state.pool, &repo.id, &id).await?;
    set_flash(&user.session, Flash::Ok("The webhook was removed.".into())).await;
    Ok(Redirect::to(&format!("/repos/{}", repo.name)).into_response())
}

async fn delete_repo(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    let repo = repos::authorize(
        &state.pool,
        &name,
        &user.user,
        "codecommit:DeleteRepository",
    )
    .await?;
    repos::delete(
        &state.pool,
        &state.settings.data_dir,
        &state.cache_dir,
        &repo,
    )
    .await?;
    tracing::info!(repo = %repo.name, by = %user.user.name, "repository deleted");
    set_flash(
        &user.session,
        Flash::Ok(format!("Deleted repository {}.", repo.name)),
    )
    .await;
    Ok(Redirect::to("/repos").into_response())
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

async fn stores_page(State(state): State<AppState>, user: PageUser) -> PageResult {
    require_admin(&user)?;
    let rows = |list: Vec<crate::builds::StoredValue>| {
        list.into_iter()
            .map(|v| pages::StoredRow {
                name: v.name,
                updated_at: v.updated_at,
            })
            .collect::<Vec<_>>()
    };
    let parameters = rows(crate::builds::list_values(&state.pool, "parameter").await?);
    let secrets = rows(crate::builds::list_values(&state.pool, "secret").await?);
    let ctx = context(&user, "Parameters & secrets", Nav::Stores).await;
    Ok(Html(pages::stores_page(&ctx, parameters, secrets)).into_response())
}

#[derive(Deserialize)]
struct StoredForm {
    name: String,
    #[serde(default)]
    value: String,
}

fn store_kind(kind: &str) -> Result<&'static str, Error> {
    match kind {
        "parameter" => Ok("parameter"),
        "secret" => Ok("secret"),
        _ => Err(Error::NotFound(format!("no store {kind:?}"))),
    }
}

async fn put_stored(
    State(state): State<AppState>,
    user: PageUser,
    Path(kind): Path<String>,
    Form(form): Form<StoredForm>,
) -> PageResult {
    require_admin(&user)?;
    let kind = store_kind(&kind)?;
    let name = crate::identity::policy::canonical_name(kind, &form.name);
    let value = form
        .value
        .strip_suffix("\r\n")
        .or(form.value.strip_suffix('\n'))
        .unwrap_or(&form.value);
    match crate::builds::put_value(
        &state.pool,
        &state.master,
        kind,
        &name,
        value,
        &user.user.name,
    )
    .await
    {
        Ok(()) => set_flash(&user.session, Flash::Ok(format!("Saved {kind} {name}."))).await,
        Err(Error::Unprocessable(m) | Error::PayloadTooLarge(m)) => {
            set_flash(&user.session, Flash::Error(capitalise(&m))).await
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Redirect::to("/admin/stores").into_response())
}

async fn delete_stored(
    State(state): State<AppState>,
    user: PageUser,
    Path(kind): Path<String>,
    Form(form): Form<StoredForm>,
) -> PageResult {
    require_admin(&user)?;
    let kind = store_kind(&kind)?;
    match crate::builds::delete_value(&state.pool, kind, &form.name).await {
        Ok(()) => {
            set_flash(
                &user.session,
                Flash::Ok(format!("Deleted {kind} {}.", form.name)),
            )
            .await
        }
        Err(Error::NotFound(m)) => set_flash(&user.session, Flash::Error(capitalise(&m))).await,
        Err(e) => return Err(e.into()),
    }
    Ok(Redirect::to("/admin/stores").into_response())
}
