//! Repositories' pages: the list and the create form, one repository
//! (clone URLs, README, pushes, webhooks), and the browser (tree, blob,
//! raw, commits, one commit).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use axum::{Form, Router};
use nubo_frontend::repos as view;
use nubo_frontend::{Flash, FormEcho, Nav};
use serde::Deserialize;

use crate::error::Error;
use crate::http::auth::PageUser;
use crate::http::pages::{context, refusal_text, refused_form, set_flash, PageResult};
use crate::repos;
use crate::state::AppState;

mod access;
mod settings;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(settings::routes())
        .merge(access::routes())
        .route("/repos", get(repos_page).post(create_repo))
        .route("/repos/{name}", get(repo_page))
        .route("/repos/{name}/tree/{*rest}", get(tree_page))
        .route("/repos/{name}/blob/{*rest}", get(blob_page))
        .route("/repos/{name}/raw/{*rest}", get(raw_page))
        .route("/repos/{name}/commits/{*rest}", get(commits_page))
        .route("/repos/{name}/commit/{sha}", get(commit_page))
}

async fn repos_page(State(state): State<AppState>, user: PageUser) -> PageResult {
    render_repos(&state, &user, &FormEcho::default(), StatusCode::OK).await
}

/// The repositories page; `echo` fills the create form again after a
/// refusal (answered 422 or 403 then, as `status` says).
async fn render_repos(
    state: &AppState,
    user: &PageUser,
    echo: &FormEcho,
    status: StatusCode,
) -> PageResult {
    let rows = repos::list_for(&state.pool, &user.user)
        .await?
        .into_iter()
        .map(|r| view::RepoRow {
            name: r.name,
            description: r.description,
            owner: r.owner,
            created_at: r.created_at,
        })
        .collect();
    let ctx = context(user, "Repositories", Nav::Repositories).await;
    Ok((status, Html(view::repos(&ctx, rows, echo))).into_response())
}

#[derive(Deserialize, serde::Serialize)]
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
    let refused = |field: Option<&str>, message: String, status: StatusCode| {
        let echo = refused_form(&form, field, &message);
        let (state, user) = (&state, &user);
        async move { render_repos(state, user, &echo, status).await }
    };
    match repos::create_as(&state, name, &form.description, &user.user).await {
        Ok(repo) => {
            set_flash(
                &user.session,
                Flash::Ok(format!("Created repository {}.", repo.name)),
            )
            .await;
            Ok(Redirect::to(&format!("/repos/{}", repo.name)).into_response())
        }
        Err(Error::Invalid { field, message }) => {
            refused(Some(field), message, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(Error::Conflict(m)) => refused(Some("name"), m, StatusCode::CONFLICT).await,
        Err(Error::Forbidden(m)) => refused(None, m, StatusCode::FORBIDDEN).await,
        Err(e @ Error::Denied { .. }) => {
            refused(None, refusal_text(&e), StatusCode::FORBIDDEN).await
        }
        Err(Error::Unprocessable(m)) => refused(None, m, StatusCode::UNPROCESSABLE_ENTITY).await,
        Err(e) => Err(e.into()),
    }
}

async fn repo_page(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    render_repo(&state, &headers, &user, &name).await
}

/// Whether `user` may manage `repo` (its Access and Settings tabs).
pub(super) async fn may_manage(
    state: &AppState,
    user: &PageUser,
    repo: &repos::Repo,
) -> Result<bool, Error> {
    Ok(crate::identity::iam::decide(
        &state.pool,
        &user.user,
        "codecommit:DeleteRepository",
        &repo.target(),
        None,
    )
    .await?
    .allowed)
}

/// The repository's tabs as `user` sees them.
pub(super) async fn nav(
    state: &AppState,
    user: &PageUser,
    repo: &repos::Repo,
) -> Result<view::RepoNav, Error> {
    Ok(view::RepoNav {
        name: repo.name.clone(),
        manage: may_manage(state, user, repo).await?,
    })
}

/// Commits looked at to find each file's last commit, and counted.
const HISTORY_BUDGET: usize = 2000;

fn commit_row(c: nubo_git::browse::CommitInfo) -> view::CommitRow {
    view::CommitRow {
        id: c.id,
        summary: c.summary,
        author: c.author,
        time: crate::repos::browse::time(c.time),
    }
}

/// A repository's page.
async fn render_repo(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    user: &PageUser,
    name: &str,
) -> PageResult {
    let repo = repos::authorize(&state.pool, name, &user.user, "codecommit:GetRepository").await?;
    let pushes = crate::repos::pushes::list(&state.pool, &repo.id, &repo.name, 20)
        .await?
        .into_iter()
        .map(|u| view::PushRow {
            ref_name: u.ref_name,
            old: u.old,
            new: u.new,
            pusher: u.pusher,
            time: u.time,
        })
        .collect();
    // Code, branches and README need GitPull; without it the page shows the rest.
    let can_read = crate::identity::iam::decide(
        &state.pool,
        &user.user,
        "codecommit:GitPull",
        &repo.target(),
        None,
    )
    .await?
    .allowed;
    let mut page = view::RepoPage {
        nav: nav(state, user, &repo).await?,
        description: repo.description.clone(),
        owner: repo.owner.clone(),
        clone_url_http: repo.clone_url(&crate::http::base_url(state, headers)),
        clone_url_ssh: repo.ssh_clone_url(
            &crate::http::base_url(state, headers),
            state.settings.ssh.port(),
        ),
        user: user.user.name.clone(),
        pushes,
        can_read,
        head: None,
        branches: Vec::new(),
        tags: Vec::new(),
        latest: None,
        commit_count: String::new(),
        files: Vec::new(),
        readme_html: None,
    };
    if can_read {
        let (_, dir) =
            crate::repos::browse::working_copy(state, &state.repo_locks, &repo.name, &user.user)
                .await?;
        let d = dir.clone();
        let refs = crate::repos::browse::read(move || nubo_git::browse::refs(&d)).await?;
        page.branches = refs.branches.into_iter().map(|(n, _)| n).collect();
        page.tags = refs.tags.into_iter().map(|(n, _)| n).collect();
        // HEAD's branch; when it was never pushed, the first branch there is.
        let head = refs
            .head
            .filter(|h| page.branches.contains(h))
            .or_else(|| page.branches.first().cloned());
        if let Some(head) = head {
            let rev = head.clone();
            let (files, latest, count, readme) = crate::repos::browse::read(move || {
                let files = nubo_git::browse::tree_with_commits(&dir, &rev, "", HISTORY_BUDGET)?;
                let latest = nubo_git::browse::log(&dir, &rev, 1)?.into_iter().next();
                let count = nubo_git::browse::count(&dir, &rev, HISTORY_BUDGET + 1)?;
                Ok((files, latest, count, nubo_git::browse::readme(&dir, &rev)))
            })
            .await?;
            page.files = files
                .into_iter()
                .map(|f| view::FileRow {
                    name: f.entry.name,
                    kind: f.entry.kind,
                    commit: f.commit.map(commit_row),
                })
                .collect();
            page.latest = latest.map(commit_row);
            page.commit_count = if count > HISTORY_BUDGET {
                format!("{HISTORY_BUDGET}+")
            } else {
                count.to_string()
            };
            page.readme_html = readme.map(|(_, text)| crate::repos::browse::markdown(&text));
            page.head = Some(head);
        }
    }
    let ctx = context(user, &repo.name, Nav::Repositories).await;
    Ok(Html(view::repo(&ctx, page)).into_response())
}

async fn tree_page(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, rest)): Path<(String, String)>,
) -> PageResult {
    let (repo, dir) =
        crate::repos::browse::working_copy(&state, &state.repo_locks, &name, &user.user).await?;
    let (rev, path) = crate::repos::browse::split_rev(dir.clone(), rest).await?;
    let (r, p) = (rev.clone(), path.clone());
    let entries = crate::repos::browse::read(move || nubo_git::browse::tree(&dir, &r, &p))
        .await?
        .into_iter()
        .map(|e| view::BrowseEntry {
            name: e.name,
            kind: e.kind,
        })
        .collect();
    let ctx = context(&user, &repo.name, Nav::Repositories).await;
    Ok(Html(view::tree_page(
        &ctx,
        &nav(&state, &user, &repo).await?,
        &rev,
        &path,
        entries,
    ))
    .into_response())
}

async fn blob_page(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, rest)): Path<(String, String)>,
) -> PageResult {
    let (repo, dir) =
        crate::repos::browse::working_copy(&state, &state.repo_locks, &name, &user.user).await?;
    let (rev, path) = crate::repos::browse::split_rev(dir.clone(), rest).await?;
    let (r, p) = (rev.clone(), path.clone());
    let data = crate::repos::browse::read(move || nubo_git::browse::blob(&dir, &r, &p)).await?;
    let size = data.len();
    let text = (size <= nubo_git::browse::MAX_INLINE && !data.contains(&0))
        .then(|| String::from_utf8(data).ok())
        .flatten();
    let ctx = context(&user, &repo.name, Nav::Repositories).await;
    Ok(Html(view::blob_page(
        &ctx,
        &nav(&state, &user, &repo).await?,
        &rev,
        &path,
        text,
        size,
    ))
    .into_response())
}

async fn raw_page(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, rest)): Path<(String, String)>,
) -> PageResult {
    let (_, dir) =
        crate::repos::browse::working_copy(&state, &state.repo_locks, &name, &user.user).await?;
    let (rev, path) = crate::repos::browse::split_rev(dir.clone(), rest).await?;
    let data =
        crate::repos::browse::read(move || nubo_git::browse::blob(&dir, &rev, &path)).await?;
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
    let (repo, dir) =
        crate::repos::browse::working_copy(&state, &state.repo_locks, &name, &user.user).await?;
    let (rev, _) = crate::repos::browse::split_rev(dir.clone(), rest).await?;
    let r = rev.clone();
    let commits = crate::repos::browse::read(move || nubo_git::browse::log(&dir, &r, 100))
        .await?
        .into_iter()
        .map(commit_row)
        .collect();
    let ctx = context(&user, &repo.name, Nav::Repositories).await;
    Ok(Html(view::commits_page(
        &ctx,
        &nav(&state, &user, &repo).await?,
        &rev,
        commits,
    ))
    .into_response())
}

#[derive(Deserialize)]
struct DiffQuery {
    /// `split` for two columns; anything else is unified.
    view: Option<String>,
}

async fn commit_page(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, sha)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<DiffQuery>,
) -> PageResult {
    let (repo, dir) =
        crate::repos::browse::working_copy(&state, &state.repo_locks, &name, &user.user).await?;
    let (c, changes) =
        crate::repos::browse::read(move || nubo_git::browse::commit(&dir, &sha)).await?;
    let row = view::CommitRow {
        id: c.id.clone(),
        summary: c.summary.clone(),
        author: c.author.clone(),
        time: crate::repos::browse::time(c.time),
    };
    let changes = changes
        .into_iter()
        .map(|f| view::ChangeRow {
            path: f.path,
            change: f.change,
            patch: f.patch,
            binary: f.binary,
        })
        .collect();
    let ctx = context(&user, &repo.name, Nav::Repositories).await;
    let split = q.view.as_deref() == Some("split");
    Ok(Html(view::commit_page(
        &ctx,
        &nav(&state, &user, &repo).await?,
        row,
        c.message,
        c.parents,
        changes,
        split,
    ))
    .into_response())
}
