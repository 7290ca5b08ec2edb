//! Administrators' users page: create users, make or unmake
//! administrators, disable and enable, make a password reset link, and
//! manage groups and their members.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use nubo_frontend::users as view;
use nubo_frontend::{Flash, FormEcho, Nav};
use serde::Deserialize;

use crate::error::Error;
use crate::http::auth::PageUser;
use crate::http::pages::{context, refused_form, require_admin, set_flash, PageResult};
use crate::identity::{accounts, iam, resets};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(admin_users).post(admin_create_user))
        .route("/admin/users/{name}/reset-link", post(reset_link))
        .route("/admin/users/{name}/{action}", post(admin_change_user))
        .route("/admin/groups", post(create_group))
        .route("/admin/groups/{group}/members", post(add_member))
        .route(
            "/admin/groups/{group}/members/{name}/remove",
            post(remove_member),
        )
}

async fn admin_users(State(state): State<AppState>, user: PageUser) -> PageResult {
    render_users(&state, &user, None, &FormEcho::default(), StatusCode::OK).await
}

/// The users page; `echo` fills a create form again after a refusal
/// (answered with `status` then); `reset` shows a link just made.
async fn render_users(
    state: &AppState,
    user: &PageUser,
    reset: Option<view::NewResetLink>,
    echo: &FormEcho,
    status: StatusCode,
) -> PageResult {
    require_admin(user, "manage users")?;
    let groups = iam::list_groups(&state.pool).await?;
    let rows = accounts::list(&state.pool)
        .await?
        .into_iter()
        .map(|u| view::UserRow {
            groups: groups
                .iter()
                .filter(|g| g.members.contains(&u.name))
                .map(|g| g.name.clone())
                .collect(),
            name: u.name,
            admin: u.admin,
            disabled: u.disabled,
            created_at: u.created_at,
        })
        .collect();
    let groups = groups
        .into_iter()
        .map(|g| view::GroupRow {
            name: g.name,
            members: g.members,
        })
        .collect();
    let ctx = context(user, "Users", Nav::Admin).await;
    let html = view::admin_users(&ctx, rows, groups, reset, echo);
    Ok((status, Html(html)).into_response())
}

#[derive(Deserialize, serde::Serialize)]
struct NewUserForm {
    username: String,
    password: String,
    admin: Option<String>,
}

async fn admin_create_user(
    State(state): State<AppState>,
    user: PageUser,
    Form(form): Form<NewUserForm>,
) -> PageResult {
    require_admin(&user, "manage users")?;
    let admin = form.admin.as_deref() == Some("true");
    let flash = match accounts::create_user(
        &state.pool,
        form.username.trim(),
        &form.password,
        admin,
        true,
    )
    .await
    {
        Ok(created) => {
            tracing::info!(user = %created.name, by = %user.user.name, "user created");
            Flash::Ok(format!(
                "Created {}. They must choose a new password after signing in.",
                created.name
            ))
        }
        Err(e @ (Error::Invalid { .. } | Error::Unprocessable(_) | Error::Conflict(_))) => {
            let field = match &e {
                Error::Conflict(_) => Some("username"),
                other => other.field(),
            };
            let mut echo = refused_form(&form, field, &e.to_string());
            echo.values.remove("password");
            return render_users(&state, &user, None, &echo, e.status()).await;
        }
        Err(e) => return Err(e.into()),
    };
    set_flash(&user.session, flash).await;
    Ok(Redirect::to("/admin/users").into_response())
}

/// Disable, enable, make administrator, remove administrator; never on
/// oneself (an administrator cannot lock themselves out).
async fn admin_change_user(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, action)): Path<(String, String)>,
) -> PageResult {
    require_admin(&user, "manage users")?;
    if !matches!(
        action.as_str(),
        "disable" | "enable" | "make-admin" | "remove-admin"
    ) {
        return Err(Error::NotFound("no such action".into()).into());
    }
    let flash = if name.eq_ignore_ascii_case(&user.user.name) && action != "enable" {
        Flash::Error("You cannot change your own account here.".into())
    } else {
        let pool = &state.pool;
        let (changed, now) = match action.as_str() {
            "disable" => (accounts::set_disabled(pool, &name, true).await?, "disabled"),
            "enable" => (accounts::set_disabled(pool, &name, false).await?, "enabled"),
            "make-admin" => (
                accounts::set_admin(pool, &name, true).await?,
                "an administrator",
            ),
            _ => (
                accounts::set_admin(pool, &name, false).await?,
                "an ordinary user",
            ),
        };
        tracing::info!(user = %changed.name, %action, by = %user.user.name, "user updated");
        Flash::Ok(format!("{} is now {now}.", changed.name))
    };
    set_flash(&user.session, flash).await;
    Ok(Redirect::to("/admin/users").into_response())
}

/// Makes a one-time reset link and shows it on this response only (it is
/// never stored in the session, a flash or a log).
async fn reset_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    require_admin(&user, "manage users")?;
    let target = accounts::require_by_name(&state.pool, &name).await?;
    let code = resets::create(&state.pool, &target, &user.user).await?;
    tracing::info!(user = %target.name, by = %user.user.name, "password reset link made");
    let link = format!(
        "{}/reset-password#{code}",
        crate::http::base_url(&state, &headers).trim_end_matches('/')
    );
    let reset = Some((target.name, link));
    render_users(&state, &user, reset, &FormEcho::default(), StatusCode::OK).await
}

#[derive(Deserialize, serde::Serialize)]
struct GroupForm {
    group: String,
}

async fn create_group(
    State(state): State<AppState>,
    user: PageUser,
    Form(form): Form<GroupForm>,
) -> PageResult {
    require_admin(&user, "manage groups")?;
    match iam::create_group(&state.pool, form.group.trim()).await {
        Ok(g) => {
            tracing::info!(group = %g.name, by = %user.user.name, "group created");
            set_flash(
                &user.session,
                Flash::Ok(format!("Created group {}.", g.name)),
            )
            .await;
            Ok(Redirect::to("/admin/users").into_response())
        }
        Err(e @ (Error::Unprocessable(_) | Error::Conflict(_))) => {
            let echo = refused_form(&form, Some("group"), &e.to_string());
            render_users(&state, &user, None, &echo, e.status()).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct MemberForm {
    username: String,
}

async fn add_member(
    State(state): State<AppState>,
    user: PageUser,
    Path(group): Path<String>,
    Form(form): Form<MemberForm>,
) -> PageResult {
    set_membership(&state, &user, &group, form.username.trim(), true).await
}

async fn remove_member(
    State(state): State<AppState>,
    user: PageUser,
    Path((group, name)): Path<(String, String)>,
) -> PageResult {
    set_membership(&state, &user, &group, &name, false).await
}

async fn set_membership(
    state: &AppState,
    user: &PageUser,
    group: &str,
    name: &str,
    member: bool,
) -> PageResult {
    require_admin(user, "manage groups")?;
    let group = iam::find_group(&state.pool, group).await?;
    let flash = match accounts::find_by_name(&state.pool, name).await? {
        Some(who) => {
            iam::set_member(&state.pool, &group, &who, member).await?;
            tracing::info!(group = %group.name, user = %who.name, member, by = %user.user.name, "group membership changed");
            let how = if member { "now in" } else { "no longer in" };
            Flash::Ok(format!("{} is {how} {}.", who.name, group.name))
        }
        None => Flash::Error(format!("There is no user named {name:?}.")),
    };
    set_flash(&user.session, flash).await;
    Ok(Redirect::to("/admin/users").into_response())
}
