//! A pipeline page's lower half: its incoming webhook, its latest events
//! (every pipeline, stage and action state change) and its notification
//! rules with their recent deliveries and the form to add one; and the
//! page that shows a new webhook secret, once.

use leptos::prelude::*;

use crate::PageContext;

/// What the lower half shows.
#[derive(Debug, Clone, Default)]
pub struct Lower {
    /// The viewer manages the pipeline (else the webhook and the rules
    /// are not shown).
    pub manage: bool,
    /// Who set the webhook up and when; none when it is off.
    pub webhook: Option<(String, String)>,
    pub webhook_url: String,
    pub events: Vec<EventRow>,
    pub rules: Vec<RuleRow>,
}

/// An event as the page lists it.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub time: String,
    pub execution: String,
    /// "pipeline", "stage Build", "action Build/Compile".
    pub what: String,
    pub state: String,
    pub summary: Option<String>,
}

/// A notification rule and its recent deliveries.
#[derive(Debug, Clone)]
pub struct RuleRow {
    pub id: String,
    pub url: String,
    pub events: String,
    /// (event, state, attempts, last status or error)
    pub deliveries: Vec<(String, String, i64, String)>,
}

/// The states a rule form offers (the API takes every one of them).
const OFFERED: &[(&str, &str)] = &[
    ("approval.STARTED", "An approval is waiting"),
    ("pipeline.FAILED", "An execution failed"),
    ("pipeline.SUCCEEDED", "An execution succeeded"),
    ("pipeline.STARTED", "An execution started"),
    ("stage.FAILED", "A stage failed"),
    ("all", "Every change"),
];

pub fn events_card(pipeline: &str, events: Vec<EventRow>) -> impl IntoView {
    let empty = events
        .is_empty()
        .then(|| view! { <p class="muted">"No events yet."</p> });
    let rows = events
        .into_iter()
        .map(|e| {
            let href = format!("/pipelines/{pipeline}/executions/{}", e.execution);
            let short: String = e.execution.chars().take(8).collect();
            let state = e.state.clone();
            view! {
                <tr data-state=state>
                    <td><time datetime=e.time.clone() data-relative>{e.time.clone()}</time></td>
                    <td><a href=href><code>{short}</code></a></td>
                    <td>{e.what}</td>
                    <td><strong>{e.state}</strong></td>
                    <td class="small muted">{e.summary.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" data-testid="events">
            <h2>"Events"</h2>
            {empty}
            <table>
                <thead><tr><th>"When"</th><th>"Execution"</th><th>"What"</th><th>"State"</th><th>"Detail"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}

pub fn rules_card(ctx: &PageContext, pipeline: &str, rules: Vec<RuleRow>) -> impl IntoView {
    let list = rules
        .into_iter()
        .map(|r| {
            let remove = format!("/pipelines/{pipeline}/notifications/{}/delete", r.id);
            let deliveries = crate::repos::settings::deliveries_list(r.deliveries);
            view! {
                <div class="card" data-rule=r.url.clone()>
                    <p><code>{r.url.clone()}</code>" " <span class="muted">{r.events}</span></p>
                    <ul>{deliveries}</ul>
                    <form method="post" action=remove>
                        <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                        <button type="submit" class="danger small">"Remove rule"</button>
                    </form>
                </div>
            }
        })
        .collect_view();
    let boxes = OFFERED
        .iter()
        .map(|(value, label)| {
            let checked = *value == "approval.STARTED" || *value == "pipeline.FAILED";
            view! {
                <label class="check"><input type="checkbox" name="events" value=*value checked=checked/>" "{*label}</label>
            }
        })
        .collect_view();
    let action = format!("/pipelines/{pipeline}/notifications");
    view! {
        <section class="card" data-testid="notifications">
            <h2>"Notifications"</h2>
            <p class="muted">"The changes you pick are posted as JSON to these URLs, signed with the secret (X-Nubo-Signature-256), and retried until they are taken."</p>
            {list}
            <form class="stack" method="post" action=action>
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"URL"
                    <input type="text" name="url" placeholder="https://chat.example.org/hooks/deploys" required/>
                </label>
                <label>"Secret (16 characters or more)"
                    <input type="password" name="secret" minlength="16" autocomplete="new-password" required/>
                </label>
                <fieldset class="stack"><legend>"Send when"</legend>{boxes}</fieldset>
                <button type="submit">"Add rule"</button>
            </form>
        </section>
    }
}

/// The incoming webhook: its address and who set it up, or off.
pub fn webhook_card(
    ctx: &PageContext,
    pipeline: &str,
    on: Option<(String, String)>,
    url: &str,
) -> impl IntoView {
    let action = format!("/pipelines/{pipeline}/webhook");
    let off_action = format!("/pipelines/{pipeline}/webhook/delete");
    let body = match on {
        Some((by, at)) => view! {
            <p>"On: a call to " <code>{format!("POST {url}")}</code>
                " signed with its secret (X-Nubo-Signature-256) starts an execution as " {by.clone()}
                ", who set it up " <time datetime=at.clone() data-relative>{at.clone()}</time>"."</p>
            <div class="row">
                <form class="inline" method="post" action=action.clone() data-confirm="Make a new secret? Callers using the old one stop working.">
                    <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                    <button type="submit" class="secondary">"New secret"</button>
                </form>
                <form class="inline" method="post" action=off_action>
                    <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                    <button type="submit" class="danger">"Turn off"</button>
                </form>
            </div>
        }
        .into_any(),
        None => view! {
            <p class="muted">"Off. Turn it on to start this pipeline from another system with a signed call."</p>
            <form method="post" action=action>
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <button type="submit" data-testid="webhook-on">"Turn on webhook"</button>
            </form>
        }
        .into_any(),
    };
    view! {
        <section class="card" data-testid="webhook">
            <h2>"Webhook trigger"</h2>
            {body}
        </section>
    }
}

/// A new webhook secret, shown this once.
pub fn webhook_secret_page(ctx: &PageContext, pipeline: &str, url: &str, secret: &str) -> String {
    let back = format!("/pipelines/{pipeline}");
    let example = format!(
        "body='{{\"ref\": \"main\"}}'\nsig=$(printf %s \"$body\" | openssl dgst -sha256 -hmac \"$SECRET\" | sed 's/^.* //')\ncurl -X POST -H \"X-Nubo-Signature-256: sha256=$sig\" -d \"$body\" {url}"
    );
    let content = view! {
        <section class="card">
            <h2>"Webhook secret"</h2>
            <p>"Copy it now: it is not shown again. Calls signed with it start " <strong>{pipeline.to_string()}</strong>"."</p>
            <p><code data-testid="webhook-secret">{secret.to_string()}</code></p>
            <p>"Address: " <code>{url.to_string()}</code></p>
            <pre class="mono small">{example}</pre>
            <p><a href=back>"Back to the pipeline"</a></p>
        </section>
    };
    crate::layout::shell(ctx, content)
}

/// A definition in a repository that its last push could not use.
#[derive(Debug, Clone)]
pub struct ProblemRow {
    pub repository: String,
    pub branch: String,
    pub path: String,
    pub commit: String,
    pub problem: String,
    pub pusher: String,
    pub time: String,
}

/// The definitions in repositories that were not read, with why (nothing
/// when there are none).
pub fn problems_card(problems: Vec<ProblemRow>) -> impl IntoView {
    (!problems.is_empty()).then(|| {
        let rows = problems
            .into_iter()
            .map(|p| {
                let href = format!("/repos/{}/blob/{}/{}", p.repository, p.commit, p.path);
                let short: String = p.commit.chars().take(10).collect();
                view! {
                    <li data-problem=p.path.clone()>
                        <a href=href><code>{format!("{}:{}", p.repository, p.path)}</code></a>
                        " on " {p.branch} " at " <code>{short}</code> " (pushed by " {p.pusher} ", "
                        <time datetime=p.time.clone() data-relative>{p.time.clone()}</time> "): "
                        <span class="problem">{p.problem}</span>
                    </li>
                }
            })
            .collect_view();
        view! {
            <section class="card flash warn" data-testid="definition-problems">
                <h2>"Definitions that were not read"</h2>
                <p>"These files in " <code>".nubo/pipelines/"</code> " were skipped at the last push to their branch; fix them and push again."</p>
                <ul>{rows}</ul>
            </section>
        }
    })
}

/// An approval waiting for the viewer.
#[derive(Debug, Clone)]
pub struct WaitingRow {
    pub pipeline: String,
    pub number: i64,
    pub stage: String,
    pub action: String,
    pub commit: String,
    pub custom_data: Option<String>,
    pub since: Option<String>,
    pub path: String,
}

/// The approvals the viewer may answer now (nothing when there are none).
pub fn approvals_card(waiting: Vec<WaitingRow>) -> impl IntoView {
    (!waiting.is_empty()).then(|| {
        let rows = waiting
            .into_iter()
            .map(|w| {
                let short: String = w.commit.chars().take(10).collect();
                let since = w.since.clone().map(|t| {
                    view! { ", waiting since " <time datetime=t.clone() data-relative>{t.clone()}</time> }
                });
                view! {
                    <li data-waiting=w.pipeline.clone()>
                        <a href=w.path.clone()><strong>{format!("{} #{}", w.pipeline, w.number)}</strong></a>
                        {format!(" — {}/{} at ", w.stage, w.action)}<code>{short}</code>{since}
                        {w.custom_data.filter(|d| !d.is_empty()).map(|d| view! { <p class="small">{d}</p> })}
                    </li>
                }
            })
            .collect_view();
        view! {
            <section class="card flash warn" data-testid="waiting-approvals">
                <h2>"Waiting for your approval"</h2>
                <ul>{rows}</ul>
            </section>
        }
    })
}
