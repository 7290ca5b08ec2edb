//! Repositories' API: create, list, delete, their pushes and webhooks, and
//! the read-only browser (refs, trees, blobs, commits).

mod mirror;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ErrorBody, Json, Result};
use crate::http::auth::CurrentUser;
use crate::repos::{self, Repo};
use crate::state::AppState;

/// Repositories' routes (under `/api/v1`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(mirror::router())
        .routes(routes!(list_repos, create_repo))
        .routes(routes!(get_repo, delete_repo))
        .routes(routes!(list_pushes))
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(repo_refs))
        .routes(routes!(repo_tree))
        .routes(routes!(repo_blob))
        .routes(routes!(repo_commits))
        .routes(routes!(repo_commit))
}

/// A repository with its clone URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepoView {
    #[serde(flatten)]
    pub repo: Repo,
    /// `git clone` URL over HTTP(S).
    pub clone_url_http: String,
    /// `git clone` URL over SSH.
    pub clone_url_ssh: String,
}

fn repo_view(state: &AppState, base_url: &str, repo: Repo) -> RepoView {
    let clone_url_http = repo.clone_url(base_url);
    let clone_url_ssh = repo.ssh_clone_url(base_url, state.settings.ssh.port());
    RepoView {
        repo,
        clone_url_http,
        clone_url_ssh,
    }
}

/// List the repositories I can access.
#[utoipa::path(get, path = "/repos", tag = "repositories",
    responses((status = 200, body = Vec<RepoView>), (status = 401, body = ErrorBody)))]
async fn list_repos(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
) -> Result<Json<Vec<RepoView>>> {
    let repos = repos::list_for(&state.pool, &current.user).await?;
    let base = crate::http::base_url(&state, &headers);
    Ok(Json(
        repos
            .into_iter()
            .map(|r| repo_view(&state, &base, r))
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRepo {
    /// 1-100 letters, digits, '.', '_' or '-'; not ending in `.git`.
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// Create a repository (empty, default branch `main`).
#[utoipa::path(post, path = "/repos", tag = "repositories", request_body = CreateRepo,
    responses((status = 201, body = RepoView), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
    Json(body): Json<CreateRepo>,
) -> Result<impl IntoResponse> {
    let repo = repos::create_as(&state, &body.name, &body.description, &current.user).await?;
    Ok((
        StatusCode::CREATED,
        Json(repo_view(
            &state,
            &crate::http::base_url(&state, &headers),
            repo,
        )),
    ))
}

/// Describe a repository.
#[utoipa::path(get, path = "/repos/{name}", tag = "repositories",
    params(("name" = String, Path, description = "Repository name")),
    responses((status = 200, body = RepoView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<RepoView>> {
    let repo = repos::authorize(
        &state.pool,
        &name,
        &current.user,
        "codecommit:GetRepository",
    )
    .await?;
    Ok(Json(repo_view(
        &state,
        &crate::http::base_url(&state, &headers),
        repo,
    )))
}

/// Delete a repository and all its data.
#[utoipa::path(delete, path = "/repos/{name}", tag = "repositories",
    params(("name" = String, Path, description = "Repository name")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_repo(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    repos::delete_as(&state, &name, &current.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The ref updates pushed to a repository, newest first (at most 100).
#[utoipa::path(get, path = "/repos/{name}/pushes", tag = "repositories",
    params(("name" = String, Path, description = "Repository name")),
    responses((status = 200, body = Vec<crate::events::RefUpdate>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_pushes(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<Vec<crate::events::RefUpdate>>> {
    let repo = repos::authorize(
        &state.pool,
        &name,
        &current.user,
        "codecommit:GetRepository",
    )
    .await?;
    Ok(Json(
        crate::repos::pushes::list(&state.pool, &repo.id, &repo.name, 100).await?,
    ))
}

/// Webhooks need the same permission as deleting the repository: they see
/// every push.
async fn webhook_repo(state: &AppState, current: &CurrentUser, name: &str) -> Result<Repo> {
    repos::authorize(
        &state.pool,
        name,
        &current.user,
        "codecommit:DeleteRepository",
    )
    .await
}

/// List a repository's webhooks (triggers).
#[utoipa::path(get, path = "/repos/{name}/webhooks", tag = "repositories",
    params(("name" = String, Path, description = "Repository name")),
    responses((status = 200, body = Vec<crate::repos::webhooks::Webhook>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_webhooks(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<Vec<crate::repos::webhooks::Webhook>>> {
    let repo = webhook_repo(&state, &current, &name).await?;
    Ok(Json(
        crate::repos::webhooks::list(&state.pool, &repo.id).await?,
    ))
}

/// Add a webhook: every matching ref update is POSTed to the URL as JSON,
/// signed in `X-Nubo-Signature-256` (HMAC-SHA256 with the secret), and retried
/// with backoff until it gets a 2xx.
#[utoipa::path(post, path = "/repos/{name}/webhooks", tag = "repositories", request_body = crate::repos::webhooks::NewWebhook,
    params(("name" = String, Path, description = "Repository name")),
    responses((status = 201, body = crate::repos::webhooks::CreatedWebhook), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_webhook(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    Json(body): Json<crate::repos::webhooks::NewWebhook>,
) -> Result<impl IntoResponse> {
    let repo = webhook_repo(&state, &current, &name).await?;
    let made = crate::repos::webhooks::create(&state, &repo.id, body).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// Remove a webhook.
#[utoipa::path(delete, path = "/repos/{name}/webhooks/{id}", tag = "repositories",
    params(("name" = String, Path, description = "Repository name"), ("id" = String, Path, description = "Webhook id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_webhook(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let repo = webhook_repo(&state, &current, &name).await?;
    crate::repos::webhooks::delete(&state.pool, &repo.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's delivery history, newest first.
#[utoipa::path(get, path = "/repos/{name}/webhooks/{id}/deliveries", tag = "repositories",
    params(("name" = String, Path, description = "Repository name"), ("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = Vec<crate::repos::webhooks::Delivery>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Vec<crate::repos::webhooks::Delivery>>> {
    let repo = webhook_repo(&state, &current, &name).await?;
    Ok(Json(
        crate::repos::webhooks::deliveries(&state.pool, &repo.id, &id).await?,
    ))
}

/// Branches, tags and the default branch.
#[utoipa::path(get, path = "/repos/{name}/refs", tag = "browse",
    params(("name" = String, Path, description = "Repository name")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn repo_refs(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let (_, dir) =
        crate::repos::browse::working_copy(&state, &state.repo_locks, &name, &current.user).await?;
    let refs = crate::repos::browse::read(move || nubo_git::browse::refs(&dir)).await?;
    Ok(Json(serde_json::json!({
        "head": refs.head,
        "branches": refs.branches.iter().map(|(n, id)| serde_json::json!({"name": n, "commit": id})).collect::<Vec<_>>(),
        "tags": refs.tags.iter().map(|(n, id)| serde_json::json!({"name": n, "commit": id})).collect::<Vec<_>>(),
    })))
}

/// A directory at a ref: `/repos/{name}/tree/{ref}/{path}` (the path may be empty).
#[utoipa::path(get, path = "/repos/{name}/tree/{*rest}", tag = "browse",
    params(("name" = String, Path, description = "Repository name"), ("rest" = String, Path, description = "Ref, then the directory path")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn repo_tree(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, rest)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>> {
    let (_, dir) =
        crate::repos::browse::working_copy(&state, &state.repo_locks, &name, &current.user).await?;
    let (rev, path) = crate::repos::browse::split_rev(dir.clone(), rest).await?;
    let (r, p) = (rev.clone(), path.clone());
    let entries = crate::repos::browse::read(move || nubo_git::browse::tree(&dir, &r, &p)).await?;
    Ok(Json(
        serde_json::json!({"ref": rev, "path": path, "entries": entries}),
    ))
}

/// A file's raw content at a ref: `/repos/{name}/blob/{ref}/{path}`.
#[utoipa::path(get, path = "/repos/{name}/blob/{*rest}", tag = "browse",
    params(("name" = String, Path, description = "Repository name"), ("rest" = String, Path, description = "Ref, then the file path")),
    responses((status = 200, description = "The file's bytes", content_type = "application/octet-stream"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn repo_blob(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, rest)): Path<(String, String)>,
) -> Result<axum::response::Response> {
    let (_, dir) =
        crate::repos::browse::working_copy(&state, &state.repo_locks, &name, &current.user).await?;
    let (rev, path) = crate::repos::browse::split_rev(dir.clone(), rest).await?;
    let data =
        crate::repos::browse::read(move || nubo_git::browse::blob(&dir, &rev, &path)).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/octet-stream"),
            (axum::http::header::CONTENT_DISPOSITION, "attachment"),
        ],
        data,
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CommitsQuery {
    /// Branch, tag or commit (default: the default branch).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<usize>,
}

/// The history of a ref, newest first.
#[utoipa::path(get, path = "/repos/{name}/commits", tag = "browse",
    params(("name" = String, Path, description = "Repository name"), CommitsQuery),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn repo_commits(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    axum::extract::Query(q): axum::extract::Query<CommitsQuery>,
) -> Result<Json<serde_json::Value>> {
    let (_, dir) =
        crate::repos::browse::working_copy(&state, &state.repo_locks, &name, &current.user).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let rev = match q.reference {
        Some(r) => r,
        None => {
            let d = dir.clone();
            crate::repos::browse::read(move || nubo_git::browse::refs(&d))
                .await?
                .head
                .unwrap_or_else(|| "main".into())
        }
    };
    let commits =
        crate::repos::browse::read(move || nubo_git::browse::log(&dir, &rev, limit)).await?;
    Ok(Json(serde_json::to_value(commits).unwrap_or_default()))
}

/// One commit and its diff against its first parent.
#[utoipa::path(get, path = "/repos/{name}/commits/{sha}", tag = "browse",
    params(("name" = String, Path, description = "Repository name"), ("sha" = String, Path, description = "Commit id")),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn repo_commit(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, sha)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>> {
    let (_, dir) =
        crate::repos::browse::working_copy(&state, &state.repo_locks, &name, &current.user).await?;
    let (commit, changes) =
        crate::repos::browse::read(move || nubo_git::browse::commit(&dir, &sha)).await?;
    Ok(Json(
        serde_json::json!({"commit": commit, "changes": changes}),
    ))
}
