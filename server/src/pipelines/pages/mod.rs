//! Pipelines' pages: the list and the create form, one pipeline's live
//! execution view and history, and the forms behind its buttons (start,
//! approve or reject, retry, stop). `…/live` answers the execution part
//! alone, for the page's island to swap while it runs.

mod notify;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use nubo_frontend::pipelines as view;
use nubo_frontend::{Flash, FormEcho, Nav};
use serde::Deserialize;

use crate::error::Error;
use crate::http::auth::PageUser;
use crate::http::pages::{context, refused_form, set_flash, PageResult};
use crate::pipelines::{self, control, executions, transitions, Trigger};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/pipelines", get(list_page).post(create))
        .route("/pipelines/{name}", get(pipeline_page))
        .route("/pipelines/{name}/start", post(start))
        .route("/pipelines/{name}/transitions/{stage}", post(transition))
        .route("/pipelines/{name}/notifications", post(notify::add))
        .route("/pipelines/{name}/webhook", post(notify::webhook_on))
        .route(
            "/pipelines/{name}/webhook/delete",
            post(notify::webhook_off),
        )
        .route(
            "/pipelines/{name}/notifications/{id}/delete",
            post(notify::remove),
        )
        .route("/pipelines/{name}/executions/{id}", get(execution_page))
        .route("/pipelines/{name}/executions/{id}/live", get(live))
        .route("/pipelines/{name}/executions/{id}/approval", post(approve))
        .route("/pipelines/{name}/executions/{id}/retry", post(retry))
        .route("/pipelines/{name}/executions/{id}/stop", post(stop))
}

async fn list_page(State(state): State<AppState>, user: PageUser) -> PageResult {
    render_list(&state, &user, &FormEcho::default(), StatusCode::OK).await
}

async fn render_list(
    state: &AppState,
    user: &PageUser,
    echo: &FormEcho,
    status: StatusCode,
) -> PageResult {
    let mut rows = Vec::new();
    for p in pipelines::list_for(&state.pool, &user.user).await? {
        let latest = match executions::rows_of(&state.pool, &p.id, 1)
            .await?
            .into_iter()
            .next()
        {
            Some(row) => {
                let e = executions::state(&state.pool, &p.name, &row).await?;
                Some((
                    e.number,
                    e.status,
                    e.stages.into_iter().map(|s| (s.name, s.status)).collect(),
                ))
            }
            None => None,
        };
        let (repo, branch) = p.declaration.source().unwrap_or_default();
        rows.push(view::PipelineRow {
            source: format!("{repo}@{branch}"),
            name: p.name,
            owner: p.owner,
            latest,
        });
    }
    let problems = pipelines::in_repo::problems_for(&state.pool, &user.user)
        .await?
        .into_iter()
        .map(|p| nubo_frontend::pipeline_events::ProblemRow {
            repository: p.repository,
            branch: p.branch,
            path: p.path,
            commit: p.commit,
            problem: p.problem,
            pusher: p.pusher,
            time: p.time,
        })
        .collect();
    let waiting = pipelines::awaiting::for_user(&state.pool, &user.user)
        .await?
        .into_iter()
        .map(|w| nubo_frontend::pipeline_events::WaitingRow {
            pipeline: w.pipeline,
            number: w.number,
            stage: w.stage,
            action: w.action,
            commit: w.commit,
            custom_data: w.custom_data,
            since: w.since,
            path: w.path,
        })
        .collect();
    let ctx = context(user, "Pipelines", Nav::Pipelines).await;
    Ok((
        status,
        Html(view::pipelines_page(&ctx, rows, problems, waiting, echo)),
    )
        .into_response())
}

#[derive(Deserialize, serde::Serialize)]
struct CreateForm {
    declaration: String,
}

async fn create(
    State(state): State<AppState>,
    user: PageUser,
    Form(form): Form<CreateForm>,
) -> PageResult {
    let refused = |message: String, status: StatusCode| {
        let echo = refused_form(&form, Some("declaration"), &message);
        let (state, user) = (&state, &user);
        async move { render_list(state, user, &echo, status).await }
    };
    match pipelines::read(&state.pool, &form.declaration, &user.user).await? {
        Err(pipelines::Refused(list)) => {
            let text = list
                .iter()
                .map(|p| {
                    if p.line > 0 {
                        format!("line {}: {}: {}", p.line, p.path, p.message)
                    } else {
                        format!("{}: {}", p.path, p.message)
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
            refused(text, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Ok((decl, warnings)) => match pipelines::create(&state.pool, &decl, &user.user).await {
            Ok(p) => {
                let mut text = format!("Created pipeline {}.", p.name);
                for w in warnings {
                    text.push_str(&format!(" {}: {}.", w.path, w.message));
                }
                set_flash(&user.session, Flash::Ok(text)).await;
                Ok(Redirect::to(&format!("/pipelines/{}", p.name)).into_response())
            }
            Err(e @ Error::Conflict(_)) => refused(e.to_string(), StatusCode::CONFLICT).await,
            Err(e) => Err(e.into()),
        },
    }
}

fn trigger_text(t: &Trigger) -> String {
    match t.kind.as_str() {
        "push" => format!("push by {} to {}", t.by, t.ref_name),
        "webhook" => format!("webhook call (as {}) for {}", t.by, t.ref_name),
        "rollback" => format!("rollback (for {})", t.by),
        _ => format!("started by {}", t.by),
    }
}

/// A history row: the execution without its stages, so the history reads
/// no action rows.
fn history_view(row: &executions::Row) -> view::ExecutionView {
    view::ExecutionView {
        manage: false,
        id: row.id.clone(),
        number: row.number,
        status: row.status.clone(),
        commit: row.commit.clone(),
        branch: row.branch.clone(),
        trigger: trigger_text(&row.trigger),
        waiting: row.waiting.clone(),
        reason: row.reason.clone(),
        started_at: crate::db::rfc3339(row.started_at),
        stages: Vec::new(),
    }
}

fn execution_view(
    e: executions::Execution,
    row: &executions::Row,
    transitions: &[transitions::Transition],
    manage: bool,
) -> view::ExecutionView {
    let trigger = trigger_text(&e.trigger);
    let stages = e
        .stages
        .into_iter()
        .enumerate()
        .map(|(si, s)| view::StageView {
            note: s.note,
            inbound: transitions
                .iter()
                .find(|t| t.stage == s.name && si > 0)
                .map(|t| view::TransitionView {
                    enabled: t.enabled,
                    note: t.disabled_by.as_ref().map(|by| {
                        format!("Disabled by {by}: {}", t.reason.clone().unwrap_or_default())
                    }),
                }),
            name: s.name,
            status: s.status,
            actions: s
                .actions
                .into_iter()
                .enumerate()
                .map(|(ai, a)| view::ActionView {
                    awaiting_approval: a.status.as_deref() == Some("InProgress")
                        && row.declaration.stages[si].actions[ai].runs()
                            == nubo_runner::pipeline::Runs::Approval,
                    name: a.name,
                    provider: a.provider,
                    status: a.status,
                    run_order: a.run_order,
                    build_id: a.build_id,
                    summary: a.summary,
                    duration: a.duration_ms.map(view::human_ms),
                    started_at: a.started_at,
                    finished_at: a.finished_at,
                })
                .collect(),
        })
        .collect();
    view::ExecutionView {
        manage,
        id: e.id,
        number: e.number,
        status: e.status,
        commit: e.source_revision.commit,
        branch: e.source_revision.branch,
        trigger,
        waiting: e.waiting,
        reason: e.reason,
        started_at: e.started_at,
        stages,
    }
}

async fn render_pipeline(
    state: &AppState,
    user: &PageUser,
    name: &str,
    id: Option<&str>,
) -> PageResult {
    let (p, manage) = pipelines::visible_to(&state.pool, &user.user, name).await?;
    let rows = executions::rows_of(&state.pool, &p.id, 30).await?;
    let chosen = match id {
        Some(id) => Some(
            control::visible_execution(&state.pool, &user.user, name, id)
                .await?
                .1,
        ),
        None => rows.first().cloned(),
    };
    let current = match chosen {
        Some(row) => Some(execution_view(
            executions::state(&state.pool, &p.name, &row).await?,
            &row,
            &transitions::list(&state.pool, &p).await?,
            manage,
        )),
        None => None,
    };
    let history = rows.iter().map(history_view).collect();
    let (repo, branch) = p.declaration.source().unwrap_or_default();
    let ctx = context(user, &p.name, Nav::Pipelines).await;
    let lower = notify::lower(state, &p, manage).await?;
    Ok(Html(view::pipeline_page(
        &ctx,
        &p.name,
        &format!("{repo}@{branch}"),
        current,
        history,
        lower,
    ))
    .into_response())
}

async fn pipeline_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> PageResult {
    render_pipeline(&state, &user, &name, None).await
}

async fn execution_page(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, id)): Path<(String, String)>,
) -> PageResult {
    render_pipeline(&state, &user, &name, Some(&id)).await
}

/// The execution part alone (for the live view).
async fn live(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, id)): Path<(String, String)>,
) -> PageResult {
    let (p, row, manage) = control::visible_execution(&state.pool, &user.user, &name, &id).await?;
    let e = execution_view(
        executions::state(&state.pool, &p.name, &row).await?,
        &row,
        &transitions::list(&state.pool, &p).await?,
        manage,
    );
    let ctx = context(&user, &p.name, Nav::Pipelines).await;
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Html(view::execution_part(&ctx, &p.name, &e)),
    )
        .into_response())
}

#[derive(Deserialize)]
struct StartForm {
    #[serde(default, rename = "ref")]
    rev: String,
}

async fn start(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<StartForm>,
) -> PageResult {
    let p = pipelines::for_user(&state.pool, &user.user, &name).await?;
    let rev = Some(form.rev.trim()).filter(|r| !r.is_empty());
    let started = async {
        let (commit, branch) =
            pipelines::triggers::resolve(&state, &state.repo_locks, &p, rev).await?;
        let p =
            pipelines::in_repo::at_commit(&state, &state.repo_locks, p.clone(), &commit).await?;
        let trigger = Trigger {
            kind: "manual".into(),
            by: user.user.name.clone(),
            ref_name: rev.unwrap_or(&branch).to_string(),
        };
        pipelines::start(&state, &p, trigger, &commit, &branch, &Default::default()).await
    }
    .await;
    match started {
        Ok(id) => {
            state.pipelines.wake.notify_one();
            Ok(Redirect::to(&format!("/pipelines/{}/executions/{id}", p.name)).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::NotFound(_) | Error::Conflict(_))) => {
            set_flash(
                &user.session,
                Flash::Error(crate::http::pages::capitalise(&e.to_string())),
            )
            .await;
            Ok(Redirect::to(&format!("/pipelines/{}", p.name)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct ApprovalForm {
    stage: String,
    action: String,
    result: String,
    #[serde(default)]
    comment: String,
}

/// Answers the control call with a flash and back to the execution.
async fn after(
    state: &AppState,
    user: &PageUser,
    name: &str,
    id: &str,
    done: Result<String, Error>,
) -> PageResult {
    let flash = match done {
        Ok(message) => {
            state.pipelines.wake.notify_one();
            Flash::Ok(message)
        }
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            Flash::Error(crate::http::pages::capitalise(&e.to_string()))
        }
        Err(Error::Denied { words, .. }) => Flash::Error(crate::http::pages::capitalise(&words)),
        Err(e) => return Err(e.into()),
    };
    set_flash(&user.session, flash).await;
    Ok(Redirect::to(&format!("/pipelines/{name}/executions/{id}")).into_response())
}

async fn approve(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, id)): Path<(String, String)>,
    Form(f): Form<ApprovalForm>,
) -> PageResult {
    let done = control::approve(
        &state, &user.user, &name, &id, &f.stage, &f.action, &f.result, &f.comment,
    )
    .await
    .map(|()| format!("{} {}/{}.", f.result, f.stage, f.action));
    after(&state, &user, &name, &id, done).await
}

#[derive(Deserialize)]
struct RetryForm {
    stage: String,
}

async fn retry(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, id)): Path<(String, String)>,
    Form(f): Form<RetryForm>,
) -> PageResult {
    let done = control::retry(&state, &user.user, &name, &id, &f.stage, "FAILED_ACTIONS")
        .await
        .map(|()| format!("Retrying stage {}.", f.stage));
    after(&state, &user, &name, &id, done).await
}

async fn stop(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, id)): Path<(String, String)>,
) -> PageResult {
    let done = control::stop(&state, &state.builds, &user.user, &name, &id, false)
        .await
        .map(|s| format!("The execution is {}.", s.to_lowercase()));
    after(&state, &user, &name, &id, done).await
}

#[derive(Deserialize)]
struct TransitionForm {
    enabled: bool,
    #[serde(default)]
    reason: String,
}

async fn transition(
    State(state): State<AppState>,
    user: PageUser,
    Path((name, stage)): Path<(String, String)>,
    Form(f): Form<TransitionForm>,
) -> PageResult {
    let p = pipelines::for_user(&state.pool, &user.user, &name).await?;
    let done = transitions::set(
        &state.pool,
        &p,
        &user.user,
        &stage,
        f.enabled,
        Some(&f.reason),
    )
    .await;
    let flash = match done {
        Ok(t) => {
            state.pipelines.wake.notify_one();
            let word = if t.enabled { "enabled" } else { "disabled" };
            Flash::Ok(format!("The transition into {stage} is {word}."))
        }
        Err(e @ Error::Invalid { .. }) => {
            Flash::Error(crate::http::pages::capitalise(&e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    set_flash(&user.session, flash).await;
    Ok(Redirect::to(&format!("/pipelines/{}", p.name)).into_response())
}
