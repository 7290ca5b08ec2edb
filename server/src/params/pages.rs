//! Params' page: Administration › Parameters & secrets.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use nubo_frontend::params as view;
use nubo_frontend::{Flash, FormEcho, Nav};
use serde::Deserialize;

use crate::error::Error;
use crate::http::auth::PageUser;
use crate::http::pages::{capitalise, context, refused_form, require_admin, set_flash, PageResult};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/stores", get(stores_page))
        .route("/admin/stores/{kind}", post(put_stored))
        .route("/admin/stores/{kind}/delete", post(delete_stored))
}

async fn stores_page(State(state): State<AppState>, user: PageUser) -> PageResult {
    render(&state, &user, None, StatusCode::OK).await
}

/// The stores page; `refused` names the form (parameter or secret) to fill
/// in again, with its name only: a value is never sent back.
async fn render(
    state: &AppState,
    user: &PageUser,
    refused: Option<(&'static str, FormEcho)>,
    status: StatusCode,
) -> PageResult {
    require_admin(user, "manage parameters and secrets")?;
    let rows = |list: Vec<crate::params::StoredValue>| {
        list.into_iter()
            .map(|v| view::StoredRow {
                name: v.name,
                updated_at: v.updated_at,
            })
            .collect::<Vec<_>>()
    };
    let parameters = rows(crate::params::list_values(&state.pool, "parameter").await?);
    let secrets = rows(crate::params::list_values(&state.pool, "secret").await?);
    let ctx = context(user, "Parameters & secrets", Nav::Stores).await;
    let html = view::stores_page(&ctx, parameters, secrets, refused);
    Ok((status, Html(html)).into_response())
}

#[derive(Deserialize, serde::Serialize)]
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
    require_admin(&user, "manage parameters and secrets")?;
    let kind = store_kind(&kind)?;
    let name = crate::identity::policy::canonical_name(kind, &form.name);
    let value = form
        .value
        .strip_suffix("\r\n")
        .or(form.value.strip_suffix('\n'))
        .unwrap_or(&form.value);
    match crate::params::put_value(
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
        Err(e @ (Error::Invalid { .. } | Error::Unprocessable(_) | Error::PayloadTooLarge(_))) => {
            let field = match &e {
                Error::PayloadTooLarge(_) => Some("value"),
                other => other.field(),
            };
            let mut echo = refused_form(&form, field, &e.to_string());
            echo.values.remove("value");
            return render(&state, &user, Some((kind, echo)), e.status()).await;
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
    require_admin(&user, "manage parameters and secrets")?;
    let kind = store_kind(&kind)?;
    match crate::params::delete_value(&state.pool, kind, &form.name).await {
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
