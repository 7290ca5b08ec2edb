//! A repository's Settings tab: its webhooks, its mirror (an external
//! repository it follows) and deleting it.

use leptos::prelude::*;

use super::{repo_tabs, RepoNav, Tab};
use crate::layout::shell;
use crate::{FormEcho, PageContext};

/// A webhook and its recent deliveries.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub filter: String,
    /// (event, state, attempts, last status or error)
    pub deliveries: Vec<(String, String, i64, String)>,
}

/// The repository's mirror, as the tab shows it.
#[derive(Debug, Clone)]
pub struct MirrorView {
    pub url: String,
    pub interval_seconds: i64,
    pub pusher: String,
    pub last_polled_at: Option<String>,
    pub last_result: Option<String>,
    pub last_error: Option<String>,
}

fn mirror_card(ctx: &PageContext, repo: &str, mirror: Option<MirrorView>) -> impl IntoView {
    let action = format!("/repos/{repo}/mirror");
    let state = mirror.clone().map(|m| {
        let last = match (&m.last_error, &m.last_result) {
            (Some(e), _) => view! { <span class="bad">{format!("failed: {e}")}</span> }.into_any(),
            (None, Some(r)) => view! { <span>{r.clone()}</span> }.into_any(),
            _ => view! { <span class="muted">"not polled yet"</span> }.into_any(),
        };
        let when = m.last_polled_at.clone().map(|t| {
            view! { " (" <time datetime=t.clone() data-relative>{t.clone()}</time> ")" }
        });
        view! {
            <p>"Follows " <code>{m.url.clone()}</code> {format!(" every {} s, pushing as {}. ", m.interval_seconds, m.pusher)}
               "Last poll: " {last} {when}</p>
            <div class="row">
                <form class="inline" method="post" action=format!("/repos/{repo}/mirror/poll")>
                    <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                    <button type="submit" class="secondary" data-testid="mirror-poll">"Poll now"</button>
                </form>
                <form class="inline" method="post" action=format!("/repos/{repo}/mirror/delete")>
                    <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                    <button type="submit" class="danger">"Stop mirroring"</button>
                </form>
            </div>
        }
    });
    let url = mirror.as_ref().map(|m| m.url.clone()).unwrap_or_default();
    let interval = mirror
        .as_ref()
        .map_or(300, |m| m.interval_seconds)
        .to_string();
    view! {
        <section class="card" data-testid="mirror">
            <h2>"Mirror"</h2>
            <p class="muted">"Follow an external repository: what is new there is pushed here on an interval, starting this repository's pipelines as a push does. See docs/mirrors.md."</p>
            {state}
            <form class="stack" method="post" action=action>
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"URL (https://, http:// or git://, without credentials)"
                    <input type="text" name="url" placeholder="https://git.example.org/team/app.git" required value=url/>
                </label>
                <label>"Every (seconds, 10 to 86400)"
                    <input type="number" name="interval_seconds" min="10" max="86400" value=interval/>
                </label>
                <button type="submit">"Mirror it"</button>
            </form>
        </section>
    }
}

/// A webhook's recent deliveries: (event, state, attempts, last outcome).
pub(crate) fn deliveries_list(list: Vec<(String, String, i64, String)>) -> impl IntoView {
    list.into_iter()
        .map(|(event, state, attempts, last)| {
            view! { <li><code>{event}</code>" — " {state} {format!(" after {attempts} attempt(s)")} " " <span class="muted">{last}</span></li> }
        })
        .collect_view()
}

/// The Settings tab; `echo` fills the webhook form again after a refusal.
pub fn settings_page(
    ctx: &PageContext,
    nav: &RepoNav,
    head: Option<&str>,
    hooks: Vec<WebhookRow>,
    mirror: Option<MirrorView>,
    echo: &FormEcho,
) -> String {
    let repo = nav.name.clone();
    let list = hooks
        .into_iter()
        .map(|h| {
            let remove = format!("/repos/{repo}/webhooks/{}/delete", h.id);
            let deliveries = deliveries_list(h.deliveries);
            view! {
                <div class="card" data-webhook=h.url.clone()>
                    <p><code>{h.url.clone()}</code>" " <span class="muted">{h.filter}</span></p>
                    <ul>{deliveries}</ul>
                    <form method="post" action=remove>
                        <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                        <button type="submit" class="danger">"Remove webhook"</button>
                    </form>
                </div>
            }
        })
        .collect_view();
    let action = format!("/repos/{repo}/webhooks");
    let delete_action = format!("/repos/{repo}/delete");
    let confirm = format!("Delete {repo} and all its history? This cannot be undone.");
    let content = view! {
        {repo_tabs(nav, head, Tab::Settings)}
        <section class="card" data-testid="webhooks">
            <h2>"Webhooks"</h2>
            <p class="muted">"Each push is posted, signed with the secret, to these URLs."</p>
            {list}
            <form class="stack" method="post" action=action>
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                {echo.form_error()}
                <label>"Payload URL"
                    <input type="text" name="url" placeholder="https://ci.example.org/hook" required
                        value=echo.value("url", "") aria-invalid=echo.invalid("url")/>
                    {echo.error_for("url")}
                </label>
                <label>"Secret (16 characters or more; signs every payload)"
                    <input type="password" name="secret" minlength="16" autocomplete="new-password" required
                        aria-invalid=echo.invalid("secret")/>
                    {echo.error_for("secret")}
                </label>
                <label>"Branches (comma-separated globs, empty for all)"
                    <input type="text" name="branches" value=echo.value("branches", "")
                        aria-invalid=echo.invalid("branches")/>
                    {echo.error_for("branches")}
                </label>
                <button type="submit">"Add webhook"</button>
            </form>
        </section>
        {mirror_card(ctx, &repo, mirror)}
        <section class="card" data-testid="access-link">
            <h2>"Access"</h2>
            <p>"Who may read, push to and manage this repository is on the "
               <a href=format!("/repos/{repo}/access")>"Access"</a>" tab."</p>
        </section>
        <section class="card danger-zone" data-testid="delete">
            <h2>"Delete this repository"</h2>
            <p class="muted">"Its history, webhooks and the access given on the Access tab go with it."</p>
            <form method="post" action=delete_action data-confirm=confirm>
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <button type="submit" class="danger">"Delete repository"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}
