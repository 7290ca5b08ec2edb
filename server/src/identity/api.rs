//! Identity's API: the caller (`/me`), passwords, API tokens, users, git
//! credentials and SSH keys, IAM policies and groups, the audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Error, ErrorBody, Json, Result};
use crate::http::auth::{CurrentUser, Via};
use crate::identity::accounts::{self, User};
use crate::identity::tokens::{self, TokenInfo};
use crate::identity::{git_credentials, iam};
use crate::state::AppState;

/// Identity's routes (under `/api/v1`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
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
        .routes(routes!(audit_log))
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
    responses((status = 200, body = Vec<crate::identity::ssh_keys::SshKey>), (status = 401, body = ErrorBody)))]
async fn list_ssh_keys(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<crate::identity::ssh_keys::SshKey>>> {
    Ok(Json(
        crate::identity::ssh_keys::list(&state.pool, &current.user.id).await?,
    ))
}

/// Register an SSH public key (ed25519, ECDSA, or RSA of 2048 bits or more) for git over SSH.
#[utoipa::path(post, path = "/me/ssh-keys", tag = "credentials", request_body = AddSshKey,
    responses((status = 201, body = crate::identity::ssh_keys::SshKey), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_ssh_key(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<AddSshKey>,
) -> Result<impl IntoResponse> {
    let key = crate::identity::ssh_keys::add(&state.pool, &current.user, &body.public_key).await?;
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
    crate::identity::ssh_keys::delete(&state.pool, &current.user.id, &id).await?;
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
