//! A pipeline page's lower half: its latest events (every pipeline, stage
//! and action state change) and its notification rules with their recent
//! deliveries and the form to add one.

use leptos::prelude::*;

use crate::PageContext;

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
