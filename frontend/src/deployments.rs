//! Deployments' pages: applications and the targets (`/deployments`), an
//! application's deployment groups, a group (its targets, a deploy form,
//! the history with "redeploy this"), and one deployment as a grid of
//! targets × lifecycle events, live while it runs.

use leptos::prelude::*;

use crate::layout::shell;
use crate::{FormEcho, PageContext};

#[derive(Debug, Clone)]
pub struct TargetRow {
    pub name: String,
    pub online: bool,
    /// `env=prod, role=web`.
    pub tags: String,
    pub revision: Option<String>,
    pub owner: String,
    pub last_seen: String,
}

#[derive(Debug, Clone)]
pub struct AppRow {
    pub name: String,
    pub owner: String,
    pub groups: usize,
}

#[derive(Debug, Clone)]
pub struct GroupRow {
    pub name: String,
    pub config: String,
    pub tags: String,
    pub auto_rollback: bool,
    /// The latest deployment: id and status.
    pub latest: Option<(String, String)>,
    /// Where its app is served, when it exposes a port.
    pub app_url: Option<String>,
    /// How a blue/green group stands (None: in place).
    pub blue_green: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeploymentRow {
    pub id: String,
    pub status: String,
    pub revision: String,
    /// "alice", "automatic rollback of d-…", "pipeline web".
    pub creator: String,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct EventCell {
    pub name: String,
    pub status: String,
    pub error_code: Option<i64>,
    pub duration: Option<String>,
    pub message: Option<String>,
    pub log_tail: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TargetLine {
    pub name: String,
    pub status: String,
    pub events: Vec<EventCell>,
}

#[derive(Debug, Clone)]
pub struct DeploymentView {
    pub id: String,
    pub application: String,
    pub group: String,
    pub group_id: String,
    pub status: String,
    pub revision: String,
    pub creator: String,
    pub rollback_of: Option<String>,
    pub rolled_back_by: Option<String>,
    pub message: Option<String>,
    pub created_at: String,
    pub targets: Vec<TargetLine>,
}

fn tone(status: &str) -> &'static str {
    match status {
        "Succeeded" => "ok",
        "Failed" => "bad",
        "InProgress" | "Dispatched" | "Queued" | "Created" => "running",
        "Stopped" | "Skipped" => "muted",
        _ => "idle",
    }
}

fn badge(status: &str) -> impl IntoView {
    let class = format!("status {}", tone(status));
    view! { <span class=class data-status=status.to_string()>{status.to_string()}</span> }
}

fn targets_table(targets: Vec<TargetRow>) -> impl IntoView {
    if targets.is_empty() {
        return view! { <p class="muted" data-testid="no-targets">"No targets yet."</p> }
            .into_any();
    }
    let rows = targets
        .into_iter()
        .map(|t| {
            let state = if t.online { "online" } else { "offline" };
            view! {
                <tr data-target=t.name.clone() data-online=state>
                    <td>{t.name.clone()}</td>
                    <td><span class=format!("status {}", if t.online { "ok" } else { "muted" })>{state}</span></td>
                    <td><code>{t.tags}</code></td>
                    <td>{t.revision.unwrap_or_else(|| "—".into())}</td>
                    <td>{t.owner}</td>
                    <td><time datetime=t.last_seen.clone() data-relative>{t.last_seen.clone()}</time></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table>
            <thead><tr><th>"Target"</th><th>"State"</th><th>"Tags"</th><th>"Revision"</th><th>"For"</th><th>"Last heard"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

/// Applications, targets, and how to enroll one.
pub fn deployments_page(
    ctx: &PageContext,
    apps: Vec<AppRow>,
    targets: Vec<TargetRow>,
    server_url: &str,
    echo: &FormEcho,
) -> String {
    let list = if apps.is_empty() {
        view! {
            <section class="card empty" data-testid="empty-state">
                <h2>"No applications yet"</h2>
                <p>"An application holds deployment groups; a group deploys a revision (a commit or a build's artifacts) with its appspec.yml to the targets whose tags it names. See docs/deployments.md."</p>
            </section>
        }
        .into_any()
    } else {
        let rows = apps
            .into_iter()
            .map(|a| {
                let href = format!("/deployments/{}", a.name);
                view! { <tr data-application=a.name.clone()><td><a href=href>{a.name.clone()}</a></td><td>{a.owner}</td><td>{a.groups}</td></tr> }
            })
            .collect_view();
        view! {
            <section class="card">
                <h2>"Applications"</h2>
                <table><thead><tr><th>"Name"</th><th>"Owner"</th><th>"Groups"</th></tr></thead><tbody>{rows}</tbody></table>
            </section>
        }
        .into_any()
    };
    let enroll = format!("nubo-agent deploy --server {server_url} --token <agent token> --root /var/lib/nubo-deploy --tags env=prod");
    let content = view! {
        {list}
        <section class="card">
            <h2>"Create an application"</h2>
            <form class="row" method="post" action="/deployments">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                {echo.form_error()}
                <input type="text" name="name" required maxlength="100" placeholder="shop" aria-label="Application name"
                    value=echo.value("name", "") aria-invalid=echo.invalid("name")/>
                <button type="submit">"Create"</button>
            </form>
        </section>
        <section class="card" data-testid="targets">
            <h2>"Targets"</h2>
            {targets_table(targets)}
            <p class="small muted">"Enroll a machine with an agent token from an administrator:"</p>
            <pre class="mono small">{enroll}</pre>
        </section>
    };
    shell(ctx, content)
}

/// An application's groups and the form for a new one.
pub fn application_page(
    ctx: &PageContext,
    app: &str,
    groups: Vec<GroupRow>,
    configs: Vec<String>,
    echo: &FormEcho,
) -> String {
    let rows = groups
        .into_iter()
        .map(|g| {
            let href = format!("/deployments/{app}/{}", g.name);
            let latest = match g.latest {
                Some((id, status)) => view! { <a href=format!("/deployments/d/{id}")>{id.clone()}</a>" "{badge(&status)} }.into_any(),
                None => view! { <span class="muted">"never deployed"</span> }.into_any(),
            };
            view! {
                <tr data-group=g.name.clone()>
                    <td><a href=href>{g.name.clone()}</a></td><td>{g.config}</td><td><code>{g.tags}</code></td>
                    <td>{if g.auto_rollback { "on" } else { "off" }}</td><td>{latest}</td>
                </tr>
            }
        })
        .collect_view();
    let options = configs
        .into_iter()
        .map(|c| {
            let selected = c == echo.value("config", "CodeDeployDefault.OneAtATime");
            view! { <option value=c.clone() selected=selected>{c.clone()}</option> }
        })
        .collect_view();
    let content = view! {
        <section class="card">
            <h2>"Deployment groups"</h2>
            <table><thead><tr><th>"Group"</th><th>"Configuration"</th><th>"Targets with"</th><th>"Automatic rollback"</th><th>"Latest"</th></tr></thead>
            <tbody>{rows}</tbody></table>
        </section>
        <section class="card">
            <h2>"Create a deployment group"</h2>
            <form class="stack" method="post" action=format!("/deployments/{app}/groups")>
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                {echo.form_error()}
                <label>"Name"<input type="text" name="name" required maxlength="100" value=echo.value("name", "")/></label>
                <label>"Configuration"<select name="config">{options}</select></label>
                <label>"Targets with tags (k=v, comma separated)"
                    <input type="text" name="tags" placeholder="env=prod,role=web" value=echo.value("tags", "") aria-invalid=echo.invalid("tags")/>
                    {echo.error_for("tags")}
                </label>
                <div class="row">
                    <label>"…or managed targets Nubo runs (how many)"
                        <input type="number" name="managed" min="0" max="10" value=echo.value("managed", "")/></label>
                    <label>"App port (served at the app URL)"
                        <input type="number" name="port" min="1" max="65535" value=echo.value("port", "")/></label>
                </div>
                <label>"Managed targets' image (containers on the container backend; empty for local sandboxes)"
                    <input type="text" name="image" placeholder="nubo-workspace:latest" value=echo.value("image", "") aria-invalid=echo.invalid("managed")/>
                    {echo.error_for("managed")}
                </label>
                <label>"Blue/green: health path (managed targets; empty for in-place)"
                    <input type="text" name="health_path" placeholder="/healthz" value=echo.value("health_path", "") aria-invalid=echo.invalid("blue_green")/>
                    {echo.error_for("blue_green")}
                </label>
                <label class="check"><input type="checkbox" name="auto_rollback" value="on"/>" Roll back automatically when a deployment fails"</label>
                <button type="submit">"Create group"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}

/// A group: its targets, a deploy form, its history.
pub fn group_page(
    ctx: &PageContext,
    app: &str,
    group: GroupRow,
    targets: Vec<TargetRow>,
    history: Vec<DeploymentRow>,
    echo: &FormEcho,
) -> String {
    let base = format!("/deployments/{app}/{}", group.name);
    let rows = history
        .into_iter()
        .map(|d| {
            let redeploy = (d.status == "Succeeded").then(|| {
                view! {
                    <form class="inline" method="post" action=format!("{base}/rollback")
                        data-confirm="Redeploy this revision as a new deployment? A rollback redeploys; it does not undo what scripts did.">
                        <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                        <input type="hidden" name="to" value=d.id.clone()/>
                        <button type="submit" class="secondary small">"Redeploy this"</button>
                    </form>
                }
            });
            view! {
                <tr data-deployment=d.id.clone()>
                    <td><a href=format!("/deployments/d/{}", d.id)>{d.id.clone()}</a></td>
                    <td>{badge(&d.status)}</td><td><code>{d.revision}</code></td><td>{d.creator}</td>
                    <td><time datetime=d.created_at.clone() data-relative>{d.created_at.clone()}</time></td>
                    <td>{redeploy}</td>
                </tr>
            }
        })
        .collect_view();
    let content = view! {
        <section class="card">
            <h2>{group.name.clone()}</h2>
            <p class="muted">{group.config}" · targets with "<code>{group.tags}</code>" · automatic rollback "{if group.auto_rollback { "on" } else { "off" }}</p>
            {group.app_url.clone().map(|u| view! { <p>"App URL: "<a data-testid="app-url" href=u.clone() target="_blank" rel="noopener">{u.clone()}</a></p> })}
            {group.blue_green.clone().map(|b| view! { <p data-testid="blue-green">{b}</p> })}
            {targets_table(targets)}
        </section>
        <section class="card">
            <h2>"Deploy"</h2>
            <form class="stack" method="post" action=format!("{base}/deploy")>
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                {echo.form_error()}
                <div class="row">
                    <label>"Repository"<input type="text" name="repo" value=echo.value("repo", "")/></label>
                    <label>"Commit, branch or tag"<input type="text" name="commit" value=echo.value("commit", "main")/></label>
                </div>
                <label>"…or a build's id (its artifacts)"<input type="text" name="build_id" value=echo.value("build_id", "")/></label>
                <button type="submit">"Deploy"</button>
            </form>
        </section>
        <section class="card">
            <h2>"History"</h2>
            <p class="small muted">"A rollback redeploys an earlier revision as a new deployment; it does not undo what scripts did."</p>
            <table><thead><tr><th>"Deployment"</th><th>"Status"</th><th>"Revision"</th><th>"By"</th><th>"Created"</th><th></th></tr></thead>
            <tbody>{rows}</tbody></table>
        </section>
    };
    shell(ctx, content)
}

/// The grid of targets × events; the live view swaps this part.
pub fn deployment_part(ctx: &PageContext, d: &DeploymentView) -> String {
    let open = matches!(d.status.as_str(), "Created" | "Queued" | "InProgress");
    let names: Vec<String> = d
        .targets
        .first()
        .map(|t| t.events.iter().map(|e| e.name.clone()).collect())
        .unwrap_or_default();
    let head = names
        .iter()
        .map(|n| view! { <th>{n.clone()}</th> })
        .collect_view();
    let rows = d
        .targets
        .iter()
        .map(|t| {
            let cells = t
                .events
                .iter()
                .map(|e| {
                    let code = e.error_code.filter(|c| *c != 0).map(|c| view! { <div class="small bad">{format!("error {c}")}</div> });
                    let took = e.duration.clone().map(|x| view! { <div class="small muted">{x}</div> });
                    let detail = (e.message.is_some() || e.log_tail.is_some()).then(|| {
                        view! {
                            <details class="small">
                                <summary>"log"</summary>
                                {e.message.clone().map(|m| view! { <p data-testid="event-message">{m}</p> })}
                                {e.log_tail.clone().map(|l| view! { <pre class="mono log-tail">{l}</pre> })}
                            </details>
                        }
                    });
                    view! { <td data-event=e.name.clone() data-status=e.status.clone()>{badge(&e.status)}{code}{took}{detail}</td> }
                })
                .collect_view();
            view! { <tr data-target=t.name.clone()><th>{t.name.clone()}" "{badge(&t.status)}</th>{cells}</tr> }
        })
        .collect_view();
    let stop = open.then(|| {
        view! {
            <form class="inline" method="post" action=format!("/deployments/d/{}/stop", d.id) data-confirm="Stop this deployment? An event already running on a target finishes there.">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <button type="submit" class="danger">"Stop"</button>
            </form>
        }
    });
    let link = |label: &'static str, id: &Option<String>| {
        id.clone().map(|i| view! { <p class="small">{label}" "<a href=format!("/deployments/d/{i}")>{i.clone()}</a></p> })
    };
    let live = if open { "yes" } else { "no" };
    view! {
        <div id="execution" data-live=live data-live-url=format!("/deployments/d/{}/live", d.id) data-status=d.status.clone()>
            <div class="execution-head">
                <h2>{format!("{} ", d.id)}{badge(&d.status)}</h2>
                <p class="muted"><a href=format!("/deployments/{}/{}", d.application, d.group)>{format!("{}/{}", d.application, d.group)}</a>
                    " · " <code>{d.revision.clone()}</code>" · by "{d.creator.clone()}" · "
                    <time datetime=d.created_at.clone() data-relative>{d.created_at.clone()}</time></p>
                {d.message.clone().map(|m| view! { <p class="flash warn" data-testid="deployment-message">{m}</p> })}
                {link("Rolls back", &d.rollback_of)}
                {link("Rolled back by", &d.rolled_back_by)}
                {stop}
            </div>
            <div class="table-scroll">
                <table class="grid-events" data-testid="event-grid">
                    <thead><tr><th>"Target"</th>{head}</tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            <p class="small muted">{format!("The full log of each target is on it, in <root>/{}/{}/logs/scripts.log.", d.group_id, d.id)}</p>
        </div>
    }
    .to_html()
}

pub fn deployment_page(ctx: &PageContext, d: &DeploymentView) -> String {
    let part = deployment_part(ctx, d);
    let content = view! { <div inner_html=part></div> };
    shell(ctx, content)
}
