//! Pipelines' pages: the list (each pipeline's latest execution by stage),
//! a form to create one from its declaration, and one pipeline's live view
//! (stages as columns, actions by run order, approvals, retry and stop)
//! with its execution history.

use leptos::prelude::*;

use crate::layout::shell;
use crate::{FormEcho, PageContext};

/// Each stage's name and status, in order.
pub type StageChips = Vec<(String, Option<String>)>;

/// A pipeline in the list.
#[derive(Debug, Clone)]
pub struct PipelineRow {
    pub name: String,
    pub source: String,
    pub owner: String,
    /// The latest execution's number, status and stages' (name, status).
    pub latest: Option<(i64, String, StageChips)>,
}

/// An action as the live view draws it.
#[derive(Debug, Clone)]
pub struct ActionView {
    pub name: String,
    pub provider: String,
    pub status: Option<String>,
    pub run_order: u32,
    pub build_id: Option<String>,
    pub summary: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// How long it took, once it ended ("2.4 s", "3 min 5 s").
    pub duration: Option<String>,
    /// A manual approval waiting for an answer.
    pub awaiting_approval: bool,
}

/// The transition into a stage: enabled, or disabled with a note
/// ("disabled by alice: waiting for the freeze to end").
#[derive(Debug, Clone)]
pub struct TransitionView {
    pub enabled: bool,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StageView {
    pub name: String,
    pub status: Option<String>,
    pub actions: Vec<ActionView>,
    /// None for the first stage (nothing transitions into it).
    pub inbound: Option<TransitionView>,
    /// What its conditions found or did ("skipped by its entry condition: …").
    pub note: Option<String>,
}

/// One execution.
#[derive(Debug, Clone)]
pub struct ExecutionView {
    /// The viewer manages the pipeline: retry, stop and transition
    /// controls are shown (approvals are shown to every viewer).
    pub manage: bool,
    pub id: String,
    pub number: i64,
    pub status: String,
    pub commit: String,
    pub branch: String,
    /// "push by alice to refs/heads/main", "started by bob".
    pub trigger: String,
    pub waiting: Option<String>,
    pub reason: Option<String>,
    pub started_at: String,
    pub stages: Vec<StageView>,
}

/// The CSS class of a status word.
fn tone(status: Option<&str>) -> &'static str {
    match status {
        Some("Succeeded") => "ok",
        Some("Failed") => "bad",
        Some("InProgress" | "Stopping") => "running",
        Some("Stopped" | "Abandoned" | "Superseded" | "Skipped") => "muted",
        _ => "idle",
    }
}

fn badge(status: Option<&str>) -> impl IntoView {
    let text = status.unwrap_or("Not reached").to_string();
    let class = format!("status {}", tone(status));
    let data = text.clone();
    view! { <span class=class data-status=data>{text}</span> }
}

/// The list, and the create form (`echo` fills it again after a refusal).
pub fn pipelines_page(
    ctx: &PageContext,
    rows: Vec<PipelineRow>,
    problems: Vec<crate::pipeline_events::ProblemRow>,
    waiting: Vec<crate::pipeline_events::WaitingRow>,
    echo: &FormEcho,
) -> String {
    let list = if rows.is_empty() {
        view! {
            <section class="card empty" data-testid="empty-state">
                <h2>"No pipelines yet"</h2>
                <p>"A pipeline turns a push into a build and an approval. Paste a CodePipeline declaration below, or use "
                   <code>"nubo pipeline create"</code>" or the API; see docs/pipelines.md."</p>
            </section>
        }
        .into_any()
    } else {
        let rows = rows
            .into_iter()
            .map(|r| {
                let href = format!("/pipelines/{}", r.name);
                let latest = match r.latest {
                    Some((n, status, stages)) => {
                        let chips = stages
                            .into_iter()
                            .map(|(name, s)| view! { <span class=format!("chip {}", tone(s.as_deref())) title=s.clone().unwrap_or_default()>{name}</span> })
                            .collect_view();
                        view! { <span class="muted">{format!("#{n} ")}</span>{badge(Some(&status))}" "<span class="chips">{chips}</span> }.into_any()
                    }
                    None => view! { <span class="muted">"never run"</span> }.into_any(),
                };
                view! {
                    <tr data-pipeline=r.name.clone()>
                        <td><a href=href>{r.name.clone()}</a></td>
                        <td><code>{r.source}</code></td>
                        <td>{r.owner}</td>
                        <td>{latest}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <section class="card">
                <table>
                    <thead><tr><th>"Name"</th><th>"Source"</th><th>"Owner"</th><th>"Latest execution"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
        }
        .into_any()
    };
    let content = view! {
        {crate::pipeline_events::approvals_card(waiting)}
        {crate::pipeline_events::problems_card(problems)}
        {list}
        <section class="card">
            <h2>"Create a pipeline"</h2>
            <form class="stack" method="post" action="/pipelines">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                {echo.form_error()}
                <label>"Declaration (CodePipeline JSON as get-pipeline prints it, or the same in YAML)"
                    <textarea name="declaration" rows="14" class="mono" spellcheck="false" required
                        aria-invalid=echo.invalid("declaration")>{crate::forms::textarea_text(echo.value("declaration", ""))}</textarea>
                    {echo.error_for("declaration")}
                </label>
                <button type="submit">"Create pipeline"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}

fn action_card(ctx: &PageContext, base: &str, stage: &str, a: ActionView) -> impl IntoView {
    let build = a.build_id.clone().map(|id| {
        let href = format!("/builds/{id}");
        view! { <p class="small"><a href=href data-testid="build-link">"Build log"</a></p> }
    });
    let approval = a.awaiting_approval.then(|| {
        let action = format!("{base}/approval");
        view! {
            <form class="stack approval" method="post" action=action data-testid="approval">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <input type="hidden" name="stage" value=stage.to_string()/>
                <input type="hidden" name="action" value=a.name.clone()/>
                <input type="text" name="comment" placeholder="Comment" aria-label="Comment" maxlength="512"/>
                <div class="row">
                    <button type="submit" name="result" value="Approved">"Approve"</button>
                    <button type="submit" name="result" value="Rejected" class="danger">"Reject"</button>
                </div>
            </form>
        }
    });
    let took = a
        .duration
        .clone()
        .map(|d| view! { " · took " <span data-testid="duration">{d}</span> });
    let times = a.started_at.clone().map(|t| {
        view! { <p class="muted small">"started " <time datetime=t.clone() data-relative>{t.clone()}</time>{took}</p> }
    });
    view! {
        <div class="action" data-action=a.name.clone() data-run-order=a.run_order.to_string()>
            <div class="action-head"><strong>{a.name.clone()}</strong>" "{badge(a.status.as_deref())}</div>
            <div class="muted small">{a.provider.clone()}</div>
            {a.summary.clone().filter(|s| !s.is_empty()).map(|s| view! { <p class="small summary">{s}</p> })}
            {times}
            {build}
            {approval}
        </div>
    }
}

/// The toggle of the transition into `stage`.
fn transition_form(
    ctx: &PageContext,
    pipeline: &str,
    stage: &str,
    t: TransitionView,
) -> impl IntoView {
    let action = format!("/pipelines/{pipeline}/transitions/{stage}");
    let state = if t.enabled { "enabled" } else { "disabled" };
    let body = if t.enabled {
        view! {
            <input type="hidden" name="enabled" value="false"/>
            <input type="text" name="reason" placeholder="Why disable it?" aria-label="Reason" maxlength="300" required/>
            <button type="submit" class="secondary small">"Disable transition"</button>
        }
        .into_any()
    } else {
        view! {
            <p class="small warn">{t.note.clone().unwrap_or_default()}</p>
            <input type="hidden" name="enabled" value="true"/>
            <button type="submit" class="small">"Enable transition"</button>
        }
        .into_any()
    };
    view! {
        <form class="transition" method="post" action=action data-transition=state>
            <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
            {body}
        </form>
    }
}

/// An execution's stages as columns; the live view swaps this part.
pub fn execution_part(ctx: &PageContext, pipeline: &str, e: &ExecutionView) -> String {
    let base = format!("/pipelines/{pipeline}/executions/{}", e.id);
    let open = matches!(e.status.as_str(), "InProgress" | "Stopping");
    let stages = e
        .stages
        .iter()
        .map(|s| {
            let actions = s
                .actions
                .iter()
                .cloned()
                .map(|a| action_card(ctx, &base, &s.name, a))
                .collect_view();
            let retry = (e.manage && e.status == "Failed" && s.status.as_deref() == Some("Failed")).then(|| {
                view! {
                    <form method="post" action=format!("{base}/retry")>
                        <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                        <input type="hidden" name="stage" value=s.name.clone()/>
                        <button type="submit" class="secondary" data-testid="retry">"Retry failed actions"</button>
                    </form>
                }
            });
            let inbound = s.inbound.clone().map(|t| {
                if e.manage {
                    transition_form(ctx, pipeline, &s.name, t).into_any()
                } else {
                    let note = if t.enabled { None } else { t.note.clone() };
                    view! { <p class="small warn transition" data-transition="disabled">{note}</p> }.into_any()
                }
            });
            view! {
                <section class="card stage" data-tone=tone(s.status.as_deref()) data-stage=s.name.clone()>
                    {inbound}
                    <h3>{s.name.clone()}" "{badge(s.status.as_deref())}</h3>
                    {s.note.clone().map(|n| view! { <p class="small muted" data-testid="stage-note">{n}</p> })}
                    {actions}
                    {retry}
                </section>
            }
        })
        .collect_view();
    let stop = (open && e.manage).then(|| {
        view! {
            <form class="inline" method="post" action=format!("{base}/stop") data-confirm="Stop this execution? Running actions finish first.">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <button type="submit" class="danger">"Stop"</button>
            </form>
        }
    });
    let short: String = e.commit.chars().take(10).collect();
    let live = if open { "yes" } else { "no" };
    view! {
        <div id="execution" data-live=live data-live-url=format!("{base}/live") data-execution=e.id.clone() data-status=e.status.clone()>
            <div class="execution-head">
                <h2>{format!("Execution #{} ", e.number)}{badge(Some(&e.status))}</h2>
                <p class="muted">{e.trigger.clone()}" · " <code>{short}</code>" on " {e.branch.clone()}" · "
                    <time datetime=e.started_at.clone() data-relative>{e.started_at.clone()}</time></p>
                {e.waiting.clone().map(|w| view! { <p class="flash warn" data-testid="waiting">{w}</p> })}
                {e.reason.clone().filter(|_| !open).map(|r| view! { <p class="muted" data-testid="reason">{r}</p> })}
                {stop}
            </div>
            <div class="stages">{stages}</div>
        </div>
    }
    .to_html()
}

/// One pipeline: the execution in view, live while it runs, and history.
pub fn pipeline_page(
    ctx: &PageContext,
    name: &str,
    source: &str,
    current: Option<ExecutionView>,
    history: Vec<ExecutionView>,
    lower: crate::pipeline_events::Lower,
) -> String {
    let current = match current {
        Some(e) => view! { <section class="card execution" inner_html=execution_part(ctx, name, &e)></section> }.into_any(),
        None => view! { <section class="card empty"><p>"Never run. Push to the source branch, or start it here."</p></section> }.into_any(),
    };
    let rows = history
        .into_iter()
        .map(|e| {
            let href = format!("/pipelines/{name}/executions/{}", e.id);
            let short: String = e.commit.chars().take(10).collect();
            view! {
                <tr data-execution=e.id.clone()>
                    <td><a href=href>{format!("#{}", e.number)}</a></td>
                    <td>{badge(Some(&e.status))}</td>
                    <td><code>{short}</code></td>
                    <td>{e.trigger}</td>
                    <td><time datetime=e.started_at.clone() data-relative>{e.started_at.clone()}</time></td>
                </tr>
            }
        })
        .collect_view();
    let content = view! {
        <section class="card">
            <p>"Source: " <code>{source.to_string()}</code></p>
            {lower.manage.then(|| view! {
                <form class="inline" method="post" action=format!("/pipelines/{name}/start")>
                    <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                    <input type="text" name="ref" placeholder="branch, tag or commit (default: the source branch)" aria-label="Ref"/>
                    " "<button type="submit" data-testid="start">"Start"</button>
                </form>
            })}
            {(!lower.manage).then(|| view! { <p class="muted small">"You can follow this pipeline and answer the approvals your policies allow; its owner manages it."</p> })}
        </section>
        {current}
        <section class="card">
            <h2>"History"</h2>
            <table>
                <thead><tr><th>"Execution"</th><th>"Status"</th><th>"Commit"</th><th>"Started by"</th><th>"When"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
        {lower.manage.then(|| crate::pipeline_events::webhook_card(ctx, name, lower.webhook, &lower.webhook_url))}
        {crate::pipeline_events::events_card(name, lower.events)}
        {lower.manage.then(|| crate::pipeline_events::rules_card(ctx, name, lower.rules))}
    };
    shell(ctx, content)
}

/// A duration as the live view shows it: "850 ms", "2.4 s", "3 min 5 s".
pub fn human_ms(ms: i64) -> String {
    match ms {
        ..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}
