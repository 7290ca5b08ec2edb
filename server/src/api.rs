//! The JSON API under `/api/v1`. Every route is registered through
//! `utoipa_axum::routes!`, so the OpenAPI document cannot miss one.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::accounts::{self, User};
use crate::error::{Error, ErrorBody, Json, Result};
use crate::git_credentials;
use crate::http::auth::{CurrentUser, Via};
use crate::iam;
use crate::repos::{self, Repo};
use crate::state::AppState;
use crate::tokens::{self, TokenInfo};

#[derive(OpenApi)]
#[openapi(
    info(title = "Nubo API", description = "Nubo's HTTP API. Authenticate with `Authorization: Bearer <token>` (create tokens in the UI or with `nubo token create`). Browser sessions work too, with the `x-csrf-token` header on writes."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The `/api/v1` router and its OpenAPI document.
pub fn router() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(list_repos, create_repo))
        .routes(routes!(get_repo, delete_repo))
        .routes(routes!(list_pushes))
        .routes(routes!(list_git_credentials, create_git_credential))
        .routes(routes!(revoke_git_credential))
        .routes(routes!(create_temporary_credential))
        .routes(routes!(list_ssh_keys, add_ssh_key))
        .routes(routes!(delete_ssh_key))
        .routes(routes!(list_user_policies))
        .routes(routes!(put_user_policy, delete_user_policy))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group))
        .routes(routes!(add_group_member, remove_group_member))
        .routes(routes!(list_group_policies))
        .routes(routes!(put_group_policy, delete_group_policy))
        .routes(routes!(simulate))
        .routes(routes!(audit_log))
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(repo_refs))
        .routes(routes!(repo_tree))
        .routes(routes!(repo_blob))
        .routes(routes!(repo_commits))
        .routes(routes!(repo_commit))
        .merge(crate::workspace_api::router())
        .merge(crate::build_api::router());
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api)
        .split_for_parts();
    let path = "/api/v1/openapi.json";
    doc.paths.paths.insert(
        path.to_string(),
        utoipa::openapi::PathItem::new(
            utoipa::openapi::HttpMethod::Get,
            utoipa::openapi::path::OperationBuilder::new()
                .summary(Some("This OpenAPI document"))
                .operation_id(Some("openapi"))
                .security(utoipa::openapi::security::SecurityRequirement::default())
                .response(
                    "200",
                    utoipa::openapi::Response::new("The OpenAPI 3.1 document"),
                ),
        ),
    );
    (router, doc)
}

/// The caller, as `GET /api/v1/me` reports them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub name: String,
    pub admin: bool,
    pub must_change_password: bool,
    /// RFC 3339.
    pub created_at: String,
    /// `token` or `session`.
    pub auth: String,
}

/// Who am I?
#[utoipa::path(get, path = "/me", tag = "account",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn me(current: CurrentUser) -> Json<Me> {
    let u = current.user;
    Json(Me {
        name: u.name,
        admin: u.admin,
        must_change_password: u.must_change_password,
        created_at: u.created_at,
        auth: match current.via {
            Via::Token => "token",
            Via::Session => "session",
        }
        .into(),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// Change my password (the current one is required).
#[utoipa::path(put, path = "/me/password", tag = "account", request_body = ChangePassword,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<ChangePassword>,
) -> Result<StatusCode> {
    match accounts::check_login(&state.pool, &current.user.name, &body.current_password).await? {
        accounts::Login::Ok(_) => {}
        _ => return Err(Error::Unprocessable("the current password is wrong".into())),
    }
    accounts::set_password(&state.pool, &current.user.id, &body.new_password, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List my API tokens (metadata only).
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>), (status = 401, body = ErrorBody)))]
async fn list_tokens(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<TokenInfo>>> {
    Ok(Json(tokens::list(&state.pool, &current.user.id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for, e.g. "CI on my laptop".
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The secret. Shown only in this response.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// Create an API token. The secret is in this response only.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_token(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<CreateToken>,
) -> Result<impl IntoResponse> {
    let (info, token) = tokens::create(&state.pool, &current.user.id, &body.description).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, info })))
}

/// Revoke one of my API tokens.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    tokens::revoke(&state.pool, &id, Some(&current.user.id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List all users (administrators only).
#[utoipa::path(get, path = "/users", tag = "users",
    responses((status = 200, body = Vec<User>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<User>>> {
    current.require_admin()?;
    Ok(Json(accounts::list(&state.pool).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub admin: bool,
}

/// Create a user (administrators only).
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<CreateUser>,
) -> Result<impl IntoResponse> {
    current.require_admin()?;
    let user =
        accounts::create_user(&state.pool, &body.name, &body.password, body.admin, false).await?;
    tracing::info!(user = %user.name, by = %current.user.name, "user created");
    Ok((StatusCode::CREATED, Json(user)))
}

/// Describe a user (administrators, or the user themself).
#[utoipa::path(get, path = "/users/{name}", tag = "users",
    params(("name" = String, Path, description = "User name")),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<User>> {
    if !current.user.name.eq_ignore_ascii_case(&name) {
        current.require_admin()?;
    }
    Ok(Json(accounts::require_by_name(&state.pool, &name).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// Disable (true) or enable (false) the account.
    pub disabled: Option<bool>,
}

/// Disable or enable a user (administrators only; not yourself).
#[utoipa::path(patch, path = "/users/{name}", tag = "users", request_body = UpdateUser,
    params(("name" = String, Path, description = "User name")),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    Json(body): Json<UpdateUser>,
) -> Result<Json<User>> {
    current.require_admin()?;
    let mut user = accounts::require_by_name(&state.pool, &name).await?;
    if let Some(disabled) = body.disabled {
        if disabled && user.id == current.user.id {
            return Err(Error::Unprocessable(
                "you cannot disable your own account".into(),
            ));
        }
        user = accounts::set_disabled(&state.pool, &name, disabled).await?;
        tracing::info!(user = %user.name, disabled, by = %current.user.name, "user updated");
    }
    Ok(Json(user))
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
    crate::iam::require(
        &state.pool,
        &current.user,
        "codecommit:CreateRepository",
        &crate::iam::Target::repo(&body.name, None),
        None,
    )
    .await?;
    let repo = repos::create(
        &state.pool,
        &state.master,
        &body.name,
        &body.description,
        &current.user,
    )
    .await?;
    tracing::info!(repo = %repo.name, by = %current.user.name, "repository created");
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
    let repo = repos::authorize(
        &state.pool,
        &name,
        &current.user,
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
    tracing::info!(repo = %repo.name, by = %current.user.name, "repository deleted");
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
        crate::events::list(&state.pool, &repo.id, &repo.name, 100).await?,
    ))
}

/// List my HTTPS git credentials (no passwords).
#[utoipa::path(get, path = "/me/git-credentials", tag = "credentials",
    responses((status = 200, body = Vec<git_credentials::GitCredential>), (status = 401, body = ErrorBody)))]
async fn list_git_credentials(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<git_credentials::GitCredential>>> {
    Ok(Json(
        git_credentials::list(&state.pool, &current.user.id).await?,
    ))
}

/// Generate an HTTPS git credential: a user name and password for git,
/// shown only in this response.
#[utoipa::path(post, path = "/me/git-credentials", tag = "credentials",
    responses((status = 201, body = git_credentials::NewGitCredential), (status = 401, body = ErrorBody)))]
async fn create_git_credential(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<impl IntoResponse> {
    let made = git_credentials::create(&state.pool, &current.user, None).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// Revoke one of my git credentials.
#[utoipa::path(delete, path = "/me/git-credentials/{id}", tag = "credentials",
    params(("id" = String, Path, description = "Credential id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_git_credential(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    git_credentials::revoke(&state.pool, &current.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a temporary credential may do.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemporaryCredentialRequest {
    /// Repositories it is limited to; omit for all the repositories you can access.
    pub repos: Option<Vec<String>>,
    /// `read` (GitPull) or `read-write` (GitPull and GitPush).
    pub access: String,
    /// Lifetime in seconds, at most 43200 (12 h). Default 3600.
    pub ttl_seconds: Option<u64>,
}

/// Mint a temporary git credential, limited to chosen repositories and
/// access, that expires by itself (instead of sharing keys).
#[utoipa::path(post, path = "/me/temporary-credentials", tag = "credentials", request_body = TemporaryCredentialRequest,
    responses((status = 201, body = git_credentials::NewGitCredential), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_temporary_credential(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<TemporaryCredentialRequest>,
) -> Result<impl IntoResponse> {
    let can_write = match body.access.as_str() {
        "read" => false,
        "read-write" => true,
        other => {
            return Err(Error::Unprocessable(format!(
                "access must be `read` or `read-write`, not {other:?}"
            )))
        }
    };
    let made = git_credentials::create(
        &state.pool,
        &current.user,
        Some((body.repos, can_write, body.ttl_seconds.unwrap_or(3600))),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(made)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSshKey {
    /// One OpenSSH public key line, e.g. the content of `id_ed25519.pub`.
    pub public_key: String,
}

/// List my SSH public keys.
#[utoipa::path(get, path = "/me/ssh-keys", tag = "credentials",
    responses((status = 200, body = Vec<crate::ssh_keys::SshKey>), (status = 401, body = ErrorBody)))]
async fn list_ssh_keys(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<crate::ssh_keys::SshKey>>> {
    Ok(Json(
        crate::ssh_keys::list(&state.pool, &current.user.id).await?,
    ))
}

/// Register an SSH public key (ed25519, ECDSA, or RSA of 2048 bits or more) for git over SSH.
#[utoipa::path(post, path = "/me/ssh-keys", tag = "credentials", request_body = AddSshKey,
    responses((status = 201, body = crate::ssh_keys::SshKey), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_ssh_key(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<AddSshKey>,
) -> Result<impl IntoResponse> {
    let key = crate::ssh_keys::add(&state.pool, &current.user, &body.public_key).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// Remove one of my SSH keys.
#[utoipa::path(delete, path = "/me/ssh-keys/{id}", tag = "credentials",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_ssh_key(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    crate::ssh_keys::delete(&state.pool, &current.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn require_admin(current: &CurrentUser) -> Result<()> {
    current.require_admin()
}

/// The policies attached to a user (administrators only).
#[utoipa::path(get, path = "/users/{name}/policies", tag = "iam",
    params(("name" = String, Path, description = "User name")),
    responses((status = 200, body = Vec<iam::StoredPolicy>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_user_policies(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<Vec<iam::StoredPolicy>>> {
    require_admin(&current)?;
    let user = accounts::require_by_name(&state.pool, &name).await?;
    Ok(Json(
        iam::list_policies(&state.pool, "user", &user.id).await?,
    ))
}

/// Attach (or replace) a policy document on a user (administrators only).
#[utoipa::path(put, path = "/users/{name}/policies/{policy}", tag = "iam",
    params(("name" = String, Path, description = "User name"), ("policy" = String, Path, description = "Policy name")),
    request_body(content = Object, description = "An IAM-style policy document"),
    responses((status = 200, body = iam::StoredPolicy), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_user_policy(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, policy)): Path<(String, String)>,
    Json(document): Json<serde_json::Value>,
) -> Result<Json<iam::StoredPolicy>> {
    require_admin(&current)?;
    let user = accounts::require_by_name(&state.pool, &name).await?;
    Ok(Json(
        iam::put_policy(
            &state.pool,
            "user",
            &user.id,
            &policy,
            &document.to_string(),
        )
        .await?,
    ))
}

/// Detach a policy from a user (administrators only).
#[utoipa::path(delete, path = "/users/{name}/policies/{policy}", tag = "iam",
    params(("name" = String, Path, description = "User name"), ("policy" = String, Path, description = "Policy name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_user_policy(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, policy)): Path<(String, String)>,
) -> Result<StatusCode> {
    require_admin(&current)?;
    let user = accounts::require_by_name(&state.pool, &name).await?;
    iam::delete_policy(&state.pool, "user", &user.id, &policy).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List groups with their members (administrators only).
#[utoipa::path(get, path = "/groups", tag = "iam",
    responses((status = 200, body = Vec<iam::Group>), (status = 403, body = ErrorBody)))]
async fn list_groups(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<iam::Group>>> {
    require_admin(&current)?;
    Ok(Json(iam::list_groups(&state.pool).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    pub name: String,
}

/// Create a group (administrators only).
#[utoipa::path(post, path = "/groups", tag = "iam", request_body = CreateGroup,
    responses((status = 201, body = iam::Group), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_group(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<CreateGroup>,
) -> Result<impl IntoResponse> {
    require_admin(&current)?;
    Ok((
        StatusCode::CREATED,
        Json(iam::create_group(&state.pool, &body.name).await?),
    ))
}

/// Describe a group (administrators only).
#[utoipa::path(get, path = "/groups/{group}", tag = "iam",
    params(("group" = String, Path, description = "Group name")),
    responses((status = 200, body = iam::Group), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_group(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(group): Path<String>,
) -> Result<Json<iam::Group>> {
    require_admin(&current)?;
    Ok(Json(iam::find_group(&state.pool, &group).await?))
}

/// Add a user to a group (administrators only).
#[utoipa::path(put, path = "/groups/{group}/members/{user}", tag = "iam",
    params(("group" = String, Path, description = "Group name"), ("user" = String, Path, description = "User name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn add_group_member(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((group, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    require_admin(&current)?;
    let g = iam::find_group(&state.pool, &group).await?;
    let u = accounts::require_by_name(&state.pool, &user).await?;
    iam::set_member(&state.pool, &g, &u, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user from a group (administrators only).
#[utoipa::path(delete, path = "/groups/{group}/members/{user}", tag = "iam",
    params(("group" = String, Path, description = "Group name"), ("user" = String, Path, description = "User name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_group_member(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((group, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    require_admin(&current)?;
    let g = iam::find_group(&state.pool, &group).await?;
    let u = accounts::require_by_name(&state.pool, &user).await?;
    iam::set_member(&state.pool, &g, &u, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The policies attached to a group (administrators only).
#[utoipa::path(get, path = "/groups/{group}/policies", tag = "iam",
    params(("group" = String, Path, description = "Group name")),
    responses((status = 200, body = Vec<iam::StoredPolicy>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_group_policies(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(group): Path<String>,
) -> Result<Json<Vec<iam::StoredPolicy>>> {
    require_admin(&current)?;
    let g = iam::find_group(&state.pool, &group).await?;
    Ok(Json(iam::list_policies(&state.pool, "group", &g.id).await?))
}

/// Attach (or replace) a policy document on a group (administrators only).
#[utoipa::path(put, path = "/groups/{group}/policies/{policy}", tag = "iam",
    params(("group" = String, Path, description = "Group name"), ("policy" = String, Path, description = "Policy name")),
    request_body(content = Object, description = "An IAM-style policy document"),
    responses((status = 200, body = iam::StoredPolicy), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_group_policy(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((group, policy)): Path<(String, String)>,
    Json(document): Json<serde_json::Value>,
) -> Result<Json<iam::StoredPolicy>> {
    require_admin(&current)?;
    let g = iam::find_group(&state.pool, &group).await?;
    Ok(Json(
        iam::put_policy(&state.pool, "group", &g.id, &policy, &document.to_string()).await?,
    ))
}

/// Detach a policy from a group (administrators only).
#[utoipa::path(delete, path = "/groups/{group}/policies/{policy}", tag = "iam",
    params(("group" = String, Path, description = "Group name"), ("policy" = String, Path, description = "Policy name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_group_policy(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((group, policy)): Path<(String, String)>,
) -> Result<StatusCode> {
    require_admin(&current)?;
    let g = iam::find_group(&state.pool, &group).await?;
    iam::delete_policy(&state.pool, "group", &g.id, &policy).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulationRequest {
    /// The user to ask about (administrators may ask about anyone; others only about themselves).
    pub user: String,
    /// e.g. `codecommit:GitPush`.
    pub action: String,
    /// The repository, for `codecommit:` actions.
    #[serde(default)]
    pub repo: Option<String>,
    /// The secret or parameter name, for `secretsmanager:` and `ssm:` actions.
    #[serde(default)]
    pub name: Option<String>,
    /// e.g. `refs/heads/main`, for ref-level rules.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
}

/// Policy simulator: can USER do ACTION on REPO (and REF), and which
/// statement decided? Nothing is recorded.
#[utoipa::path(post, path = "/policy-simulator", tag = "iam", request_body = SimulationRequest,
    responses((status = 200, body = crate::policy::Decision), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn simulate(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<SimulationRequest>,
) -> Result<Json<crate::policy::Decision>> {
    if !current.user.name.eq_ignore_ascii_case(&body.user) {
        require_admin(&current)?;
    }
    if !crate::policy::ACTIONS.contains(&body.action.as_str()) {
        return Err(Error::Unprocessable(format!(
            "action must be one of {}",
            crate::policy::ACTIONS.join(", ")
        )));
    }
    let user = accounts::require_by_name(&state.pool, &body.user).await?;
    let value_kind = stored_value_kind(&body.action);
    let (subject, what) = match value_kind {
        Some(_) => (body.name.clone(), "name (the secret or parameter)"),
        None => (body.repo.clone(), "repo"),
    };
    let subject = subject
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::Unprocessable(format!("{} needs {what}", body.action)))?;
    let repo = match value_kind {
        Some(_) => None,
        None => repos::find(&state.pool, &subject).await?,
    };
    let arn;
    let target = match (value_kind, &repo) {
        (Some(kind), _) => {
            arn = crate::policy::stored_value_arn(
                kind,
                &crate::builds::canonical_name(kind, &subject),
            );
            iam::Target::stored_value(&arn)
        }
        (None, Some(r)) => r.target(),
        (None, None) => iam::Target::repo(&subject, None),
    };
    Ok(Json(
        iam::decide(
            &state.pool,
            &user,
            &body.action,
            &target,
            body.reference.as_deref(),
        )
        .await?,
    ))
}

/// `parameter` or `secret` for the stores' actions, None for repositories'.
pub fn stored_value_kind(action: &str) -> Option<&'static str> {
    if action.starts_with("ssm:") {
        Some("parameter")
    } else if action.starts_with("secretsmanager:") {
        Some("secret")
    } else {
        None
    }
}

/// The audit log of allow/deny decisions, newest first (administrators only).
#[utoipa::path(get, path = "/audit", tag = "iam",
    responses((status = 200, body = Vec<iam::AuditEntry>), (status = 403, body = ErrorBody)))]
async fn audit_log(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<iam::AuditEntry>>> {
    require_admin(&current)?;
    Ok(Json(iam::audit(&state.pool, 500).await?))
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
    responses((status = 200, body = Vec<crate::webhooks::Webhook>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_webhooks(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<Vec<crate::webhooks::Webhook>>> {
    let repo = webhook_repo(&state, &current, &name).await?;
    Ok(Json(crate::webhooks::list(&state.pool, &repo.id).await?))
}

/// Add a webhook: every matching ref update is POSTed to the URL as JSON,
/// signed in `X-Nubo-Signature-256` (HMAC-SHA256 with the secret), and retried
/// with backoff until it gets a 2xx.
#[utoipa::path(post, path = "/repos/{name}/webhooks", tag = "repositories", request_body = crate::webhooks::NewWebhook,
    params(("name" = String, Path, description = "Repository name")),
    responses((status = 201, body = crate::webhooks::CreatedWebhook), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_webhook(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    Json(body): Json<crate::webhooks::NewWebhook>,
) -> Result<impl IntoResponse> {
    let repo = webhook_repo(&state, &current, &name).await?;
    let made = crate::webhooks::create(&state, &repo.id, body).await?;
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
    crate::webhooks::delete(&state.pool, &repo.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's delivery history, newest first.
#[utoipa::path(get, path = "/repos/{name}/webhooks/{id}/deliveries", tag = "repositories",
    params(("name" = String, Path, description = "Repository name"), ("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = Vec<crate::webhooks::Delivery>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Vec<crate::webhooks::Delivery>>> {
    let repo = webhook_repo(&state, &current, &name).await?;
    Ok(Json(
        crate::webhooks::deliveries(&state.pool, &repo.id, &id).await?,
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
    let (_, dir) = crate::browse::working_copy(&state, &name, &current.user).await?;
    let refs = crate::browse::read(move || nubo_git::browse::refs(&dir)).await?;
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
    let (_, dir) = crate::browse::working_copy(&state, &name, &current.user).await?;
    let (rev, path) = crate::browse::split_rev(dir.clone(), rest).await?;
    let (r, p) = (rev.clone(), path.clone());
    let entries = crate::browse::read(move || nubo_git::browse::tree(&dir, &r, &p)).await?;
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
    let (_, dir) = crate::browse::working_copy(&state, &name, &current.user).await?;
    let (rev, path) = crate::browse::split_rev(dir.clone(), rest).await?;
    let data = crate::browse::read(move || nubo_git::browse::blob(&dir, &rev, &path)).await?;
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
    let (_, dir) = crate::browse::working_copy(&state, &name, &current.user).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let rev = match q.reference {
        Some(r) => r,
        None => {
            let d = dir.clone();
            crate::browse::read(move || nubo_git::browse::refs(&d))
                .await?
                .head
                .unwrap_or_else(|| "main".into())
        }
    };
    let commits = crate::browse::read(move || nubo_git::browse::log(&dir, &rev, limit)).await?;
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
    let (_, dir) = crate::browse::working_copy(&state, &name, &current.user).await?;
    let (commit, changes) =
        crate::browse::read(move || nubo_git::browse::commit(&dir, &sha)).await?;
    Ok(Json(
        serde_json::json!({"commit": commit, "changes": changes}),
    ))
}
