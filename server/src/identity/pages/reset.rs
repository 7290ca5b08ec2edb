//! The signed-out page where a password reset link is used. The link's code
//! is in its fragment; the page's script copies it into the form (or the
//! user pastes it), so it reaches the server only in a POST body.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use axum::{Form, Router};
use nubo_frontend::users as view;
use nubo_frontend::{Flash, FormEcho};
use serde::Deserialize;
use tower_sessions::Session;

use crate::error::Error;
use crate::http::auth;
use crate::http::pages::{capitalise, set_flash, PageResult};
use crate::identity::resets;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/reset-password", get(reset_page).post(reset_submit))
}

async fn reset_page(session: Session) -> PageResult {
    let csrf = auth::csrf_token(&session).await?;
    Ok(Html(view::reset_password(&csrf, None, &FormEcho::default())).into_response())
}

#[derive(Deserialize)]
struct ResetForm {
    code: String,
    new_password: String,
    confirm_password: String,
}

async fn reset_submit(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<ResetForm>,
) -> PageResult {
    let csrf = auth::csrf_token(&session).await?;
    // The code comes back (it is the user's own link); passwords never do.
    let refused = |field: &str, message: String, status: StatusCode| {
        let mut echo = FormEcho {
            field: Some(field.to_string()),
            error: Some(capitalise(&message)),
            ..FormEcho::default()
        };
        echo.values
            .insert("code".into(), form.code.trim().to_string());
        Ok((status, Html(view::reset_password(&csrf, None, &echo))).into_response())
    };
    if form.new_password != form.confirm_password {
        let m = "the new passwords do not match.".to_string();
        return refused("confirm_password", m, StatusCode::UNPROCESSABLE_ENTITY);
    }
    match resets::redeem(&state.pool, &form.code, &form.new_password).await {
        Ok(user) => {
            tracing::info!(user = %user.name, "password reset with a link");
            // Her own session here ended with the reset, like all the others.
            if session
                .get::<String>(auth::SESSION_USER)
                .await
                .ok()
                .flatten()
                == Some(user.id.clone())
            {
                let _ = session.flush().await;
            }
            set_flash(
                &session,
                Flash::Ok(format!(
                    "Your password was changed, {}. Sign in with it.",
                    user.name
                )),
            )
            .await;
            Ok(Redirect::to("/login").into_response())
        }
        Err(e @ Error::Invalid { .. }) => {
            let field = e.field().unwrap_or("code").to_string();
            refused(&field, e.to_string(), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}
