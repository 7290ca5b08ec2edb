//! The policy simulator: what IAM would decide for a user, an action and
//! a resource of any domain (a repository, a stored secret or parameter).
//! It names resources of several domains, so it lives in the transport
//! shared by all of them rather than in one domain.

use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Form, Router};
use nubo_frontend::identity as view;
use nubo_frontend::{Flash, Nav};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Error, ErrorBody, Json, Result};
use crate::http::auth::{CurrentUser, PageUser};
use crate::http::pages::{context, require_admin, PageResult};
use crate::identity::{accounts, iam};
use crate::repos;
use crate::state::AppState;

/// `POST /api/v1/policy-simulator`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(simulate))
}

/// The simulator's page, `/admin/simulator`.
pub fn pages() -> Router<AppState> {
    Router::new().route("/admin/simulator", get(simulator_page).post(simulate_form))
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
    responses((status = 200, body = crate::identity::policy::Decision), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn simulate(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<SimulationRequest>,
) -> Result<Json<crate::identity::policy::Decision>> {
    if !current.user.name.eq_ignore_ascii_case(&body.user) {
        current.require_admin()?;
    }
    if !crate::identity::policy::ACTIONS.contains(&body.action.as_str()) {
        return Err(Error::Unprocessable(format!(
            "action must be one of {}",
            crate::identity::policy::ACTIONS.join(", ")
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
            arn = crate::identity::policy::stored_value_arn(
                kind,
                &crate::identity::policy::canonical_name(kind, &subject),
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

async fn simulator_page(user: PageUser) -> PageResult {
    require_admin(&user, "use the policy simulator")?;
    let ctx = context(&user, "Policy simulator", Nav::Simulator).await;
    let sim = view::Simulation {
        action: "codecommit:GitPush".into(),
        ..Default::default()
    };
    Ok(Html(view::simulator(&ctx, crate::identity::policy::ACTIONS, sim)).into_response())
}

#[derive(Deserialize)]
struct SimulationForm {
    user: String,
    action: String,
    repo: String,
    #[serde(default)]
    reference: String,
}

async fn simulate_form(
    State(state): State<AppState>,
    user: PageUser,
    Form(form): Form<SimulationForm>,
) -> PageResult {
    require_admin(&user, "use the policy simulator")?;
    let mut ctx = context(&user, "Policy simulator", Nav::Simulator).await;
    let mut sim = view::Simulation {
        user: form.user.trim().to_string(),
        action: form.action.clone(),
        repo: form.repo.trim().to_string(),
        reference: form.reference.trim().to_string(),
        answer: None,
    };
    if !crate::identity::policy::ACTIONS.contains(&form.action.as_str()) {
        ctx.flash = Some(Flash::Error("Choose one of the listed actions.".into()));
    } else if let Some(subject) = accounts::find_by_name(&state.pool, &sim.user).await? {
        let value_kind = stored_value_kind(&sim.action);
        let repo = match value_kind {
            Some(_) => None,
            None => repos::find(&state.pool, &sim.repo).await?,
        };
        let arn;
        let target = match (value_kind, &repo) {
            (Some(kind), _) => {
                arn = crate::identity::policy::stored_value_arn(
                    kind,
                    &crate::identity::policy::canonical_name(kind, &sim.repo),
                );
                crate::identity::iam::Target::stored_value(&arn)
            }
            (None, Some(r)) => r.target(),
            (None, None) => crate::identity::iam::Target::repo(&sim.repo, None),
        };
        let reference = (!sim.reference.is_empty()).then_some(sim.reference.as_str());
        let d =
            crate::identity::iam::decide(&state.pool, &subject, &sim.action, &target, reference)
                .await?;
        sim.answer = Some((d.allowed, d.basis, d.statement));
    } else {
        ctx.flash = Some(Flash::Error(format!(
            "There is no user named {:?}.",
            sim.user
        )));
    }
    Ok(Html(view::simulator(&ctx, crate::identity::policy::ACTIONS, sim)).into_response())
}
