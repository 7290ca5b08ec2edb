//! Identity's pages: sign-in and out, the account (password, API tokens,
//! git credentials, SSH keys), and the administrators' users and audit log.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use nubo_frontend::identity as view;
use nubo_frontend::{Flash, FormEcho, Nav};
use serde::Deserialize;
use tower_sessions::Session;

use crate::db::now_ms;
use crate::error::Error;
use crate::http::auth::{self, PageUser, SESSION_LOGIN_AT, SESSION_USER};
use crate::http::pages::{
    capitalise, context, refused_form, require_admin, set_flash, take_flash, PageResult,
};
use crate::identity::accounts::{self, Login};
use crate::identity::tokens;
use crate::state::AppState;

mod reset;
mod users;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/account", get(account_page))
        .route("/account/password", post(change_password))
        .route("/account/tokens", get(tokens_page).post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
        .route(
            "/account/git-credentials",
            get(git_credentials_page).post(create_git_credential),
        )
        .route(
            "/account/git-credentials/{id}/revoke",
            post(revoke_git_credential),
        )
        .route("/account/ssh-keys", post(add_ssh_key))
        .route("/account/ssh-keys/{id}/delete", post(delete_ssh_key))
        .route("/admin/audit", get(admin_audit))
        .merge(users::routes())
        .merge(reset::routes())
}

/// Only same-site absolute paths are followed after sign-in: a path that,
/// as given and once more percent-decoded, starts with exactly one `/` (not
/// `//` or `/\\`) and holds no control characters (browsers drop
/// tabs and newlines from a `Location`, so `/\t/evil.example` would become
/// `//evil.example`).
fn safe_next(next: Option<&str>) -> &str {
    fn local(p: &str) -> bool {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.starts_with("/\\")
            && !p.chars().any(|c| c.is_control())
    }
    match next {
        Some(n) if local(n) && local(&percent_decode(n)) => n,
        _ => "/",
    }
}

/// `%XX` escapes decoded (invalid ones kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<NextQuery>,
) -> PageResult {
    if auth::session_user(&session, &state).await?.is_some() {
        return Ok(Redirect::to(safe_next(q.next.as_deref())).into_response());
    }
    let csrf = auth::csrf_token(&session).await?;
    let message = take_flash(&session).await;
    Ok(Html(view::login(
        &csrf,
        message,
        safe_next(q.next.as_deref()),
        "",
    ))
    .into_response())
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let next = safe_next(form.next.as_deref()).to_string();
    let name = form.username.trim();
    let refuse = |status: StatusCode, message: &str, csrf: &str| {
        (
            status,
            Html(view::login(
                csrf,
                Some(Flash::Error(message.to_string())),
                &next,
                name,
            )),
        )
            .into_response()
    };
    let csrf = auth::csrf_token(&session).await?;
    if let Err(wait) = state.limiter.check(name, peer.ip(), Instant::now()) {
        let secs = wait.as_secs().max(1);
        tracing::warn!(account = %name, address = %peer.ip(), "sign-in throttled");
        let mut r = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed sign-ins. Try again in {secs} seconds."),
            &csrf,
        );
        r.headers_mut().insert(header::RETRY_AFTER, secs.into());
        return Ok(r);
    }
    match accounts::check_login(&state.pool, name, &form.password).await? {
        Login::Ok(user) => {
            state.limiter.record_success(name);
            let internal =
                |e: tower_sessions::session::Error| Error::Internal(format!("session store: {e}"));
            // A new id at sign-in defeats session fixation; a new CSRF token
            // keeps tokens from before sign-in useless afterwards.
            session.cycle_id().await.map_err(internal)?;
            session
                .remove_value(auth::SESSION_CSRF)
                .await
                .map_err(internal)?;
            auth::csrf_token(&session).await?;
            session
                .insert(SESSION_USER, &user.id)
                .await
                .map_err(internal)?;
            session
                .insert(SESSION_LOGIN_AT, now_ms())
                .await
                .map_err(internal)?;
            tracing::info!(user = %user.name, "signed in");
            Ok(Redirect::to(&next).into_response())
        }
        Login::Disabled => Ok(refuse(
            StatusCode::FORBIDDEN,
            "This account is disabled. Ask an administrator to enable it.",
            &csrf,
        )),
        Login::Invalid => {
            state
                .limiter
                .record_failure(name, peer.ip(), Instant::now());
            tracing::info!(account = %name, address = %peer.ip(), "sign-in failed");
            Ok(refuse(
                StatusCode::UNAUTHORIZED,
                "Wrong user name or password.",
                &csrf,
            ))
        }
    }
}

async fn logout(session: Session) -> PageResult {
    session
        .flush()
        .await
        .map_err(|e| Error::Internal(format!("session store: {e}")))?;
    Ok(Redirect::to("/login").into_response())
}

async fn account_page(user: PageUser) -> Response {
    render_account(&user, &FormEcho::default(), StatusCode::OK).await
}

/// The account page; `echo` marks the input at fault after a refusal.
async fn render_account(user: &PageUser, echo: &FormEcho, status: StatusCode) -> Response {
    let ctx = context(user, "Account", Nav::Account).await;
    (status, Html(view::account(&ctx, echo))).into_response()
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    user: PageUser,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    let refused = |field: &str, message: String, status: StatusCode| {
        let echo = FormEcho {
            values: Default::default(),
            field: Some(field.to_string()),
            error: Some(message),
        };
        let user = &user;
        async move { Ok(render_account(user, &echo, status).await) }
    };
    if form.new_password != form.confirm_password {
        let m = "The new passwords do not match.".to_string();
        return refused("confirm_password", m, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    match accounts::check_login(&state.pool, &user.user.name, &form.current_password).await? {
        Login::Ok(_) => {
            match accounts::set_password(&state.pool, &user.user.id, &form.new_password, false)
                .await
            {
                Ok(()) => {
                    set_flash(
                        &user.session,
                        Flash::Ok("Your password was changed.".into()),
                    )
                    .await;
                    Ok(Redirect::to("/account").into_response())
                }
                Err(Error::Unprocessable(m)) => {
                    refused(
                        "new_password",
                        capitalise(&m),
                        StatusCode::UNPROCESSABLE_ENTITY,
                    )
                    .await
                }
                Err(e) => Err(e.into()),
            }
        }
        _ => {
            let m = "The current password is wrong.".to_string();
            refused("current_password", m, StatusCode::FORBIDDEN).await
        }
    }
}

/// The tokens page; `echo` fills the create form again after a refusal
/// (answered 422 then).
async fn render_tokens(
    state: &AppState,
    user: &PageUser,
    new_token: Option<String>,
    echo: &FormEcho,
) -> PageResult {
    let rows = tokens::list(&state.pool, &user.user.id)
        .await?
        .into_iter()
        .map(|t| view::TokenRow {
            id: t.id,
            description: t.description,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        })
        .collect();
    let ctx = context(user, "API tokens", Nav::Tokens).await;
    let status = if echo.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Html(view::tokens(&ctx, rows, new_token, echo))).into_response())
}

async fn tokens_page(State(state): State<AppState>, user: PageUser) -> PageResult {
    render_tokens(&state, &user, None, &FormEcho::default()).await
}

#[derive(Deserialize, serde::Serialize)]
struct TokenForm {
    description: String,
}

async fn create_token(
    State(state): State<AppState>,
    user: PageUser,
    Form(form): Form<TokenForm>,
) -> PageResult {
    match tokens::create(&state.pool, &user.user.id, &form.description).await {
        // Rendered directly, not redirected: the secret must not be stored
        // anywhere, the session included.
        Ok((_, secret)) => render_tokens(&state, &user, Some(secret), &FormEcho::default()).await,
        Err(Error::Unprocessable(m)) => {
            let echo = refused_form(&form, Some("description"), &m);
            render_tokens(&state, &user, None, &echo).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> PageResult {
    tokens::revoke(&state.pool, &id, Some(&user.user.id)).await?;
    set_flash(&user.session, Flash::Ok("The token was revoked.".into())).await;
    Ok(Redirect::to("/account/tokens").into_response())
}

/// The git credentials page; `echo` fills the SSH key form again after a
/// refusal (answered with `status` then).
async fn render_git_credentials(
    state: &AppState,
    user: &PageUser,
    new: Option<(String, String)>,
    echo: &FormEcho,
    status: StatusCode,
) -> PageResult {
    let rows = crate::identity::git_credentials::list(&state.pool, &user.user.id)
        .await?
        .into_iter()
        .map(|c| view::GitCredentialRow {
            scope: match (&c.repos, c.can_write) {
                (None, true) => "all your repositories, read-write".into(),
                (None, false) => "all your repositories, read".into(),
                (Some(r), w) => format!(
                    "{}, {}",
                    r.join(", "),
                    if w { "read-write" } else { "read" }
                ),
            },
            id: c.id,
            username: c.username,
            created_at: c.created_at,
            expires_at: c.expires_at,
        })
        .collect();
    let keys = crate::identity::ssh_keys::list(&state.pool, &user.user.id)
        .await?
        .into_iter()
        .map(|k| view::SshKeyRow {
            id: k.id,
            fingerprint: k.fingerprint,
            algorithm: k.algorithm,
            comment: k.comment,
        })
        .collect();
    let ctx = context(user, "Git credentials", Nav::GitCredentials).await;
    Ok((
        status,
        Html(view::git_credentials(&ctx, keys, rows, new, echo)),
    )
        .into_response())
}

async fn git_credentials_page(State(state): State<AppState>, user: PageUser) -> PageResult {
    render_git_credentials(&state, &user, None, &FormEcho::default(), StatusCode::OK).await
}

async fn create_git_credential(State(state): State<AppState>, user: PageUser) -> PageResult {
    let made = crate::identity::git_credentials::create(&state.pool, &user.user, None).await?;
    let new = Some((made.username, made.password));
    render_git_credentials(&state, &user, new, &FormEcho::default(), StatusCode::OK).await
}

async fn revoke_git_credential(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> PageResult {
    crate::identity::git_credentials::revoke(&state.pool, &user.user.id, &id).await?;
    set_flash(
        &user.session,
        Flash::Ok("The git credential was revoked.".into()),
    )
    .await;
    Ok(Redirect::to("/account/git-credentials").into_response())
}

#[derive(Deserialize, serde::Serialize)]
struct SshKeyForm {
    public_key: String,
}

async fn add_ssh_key(
    State(state): State<AppState>,
    user: PageUser,
    Form(form): Form<SshKeyForm>,
) -> PageResult {
    let (message, status) =
        match crate::identity::ssh_keys::add(&state.pool, &user.user, &form.public_key).await {
            Ok(key) => {
                let added = Flash::Ok(format!("Added SSH key {}.", key.fingerprint));
                set_flash(&user.session, added).await;
                return Ok(Redirect::to("/account/git-credentials").into_response());
            }
            Err(Error::Unprocessable(m)) => (m, StatusCode::UNPROCESSABLE_ENTITY),
            Err(Error::Conflict(m)) => (m, StatusCode::CONFLICT),
            Err(e) => return Err(e.into()),
        };
    let echo = refused_form(&form, Some("public_key"), &message);
    render_git_credentials(&state, &user, None, &echo, status).await
}

async fn delete_ssh_key(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> PageResult {
    crate::identity::ssh_keys::delete(&state.pool, &user.user.id, &id).await?;
    set_flash(&user.session, Flash::Ok("The SSH key was removed.".into())).await;
    Ok(Redirect::to("/account/git-credentials").into_response())
}

async fn admin_audit(State(state): State<AppState>, user: PageUser) -> PageResult {
    require_admin(&user, "see the audit log")?;
    let rows = crate::identity::iam::audit(&state.pool, 200)
        .await?
        .into_iter()
        .map(|e| view::AuditRow {
            time: e.time,
            user: e.user,
            action: e.action,
            repo: e.repo,
            reference: e.ref_name,
            allowed: e.allowed,
            basis: e.basis,
            statement: e.statement,
            outcome: e.outcome,
        })
        .collect();
    let ctx = context(&user, "Audit log", Nav::Audit).await;
    Ok(Html(view::audit(&ctx, rows)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/repos")), "/repos");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
        // Browsers drop tabs and newlines: these would lead off-site.
        for bad in [
            "/\t/evil.example",
            "/%09/evil.example",
            "/%2F/evil.example",
            "/%5Cevil.example",
            "/\n/evil.example",
            "/%0a/evil.example",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(Some("/repos/a%20b")), "/repos/a%20b");
        assert_eq!(safe_next(Some("/repos/x?tab=1")), "/repos/x?tab=1");
    }
}
