//! Repositories' pages: the list, one repository (clone URLs, pushes,
//! webhooks), and the browser (tree, file, history, one commit).

use leptos::prelude::*;

use crate::layout::shell;
use crate::{FormEcho, PageContext};

mod browse;

pub use browse::{
    blob_page, commit_page, commits_page, tree_page, BrowseEntry, ChangeRow, CommitRow,
};

/// A row of the repository list.
#[derive(Debug, Clone)]
pub struct RepoRow {
    pub name: String,
    pub description: String,
    pub owner: String,
    pub created_at: String,
}

/// Repositories: the ones I can access, and a form to create one (`echo`
/// fills it in again after a refusal).
pub fn repos(ctx: &PageContext, rows: Vec<RepoRow>, echo: &FormEcho) -> String {
    let list = if rows.is_empty() {
        view! {
            <section class="card empty" data-testid="empty-state">
                <h2>"No repositories yet"</h2>
                <p>"Create one below, then push to it with git."</p>
            </section>
        }
        .into_any()
    } else {
        let rows = rows
            .into_iter()
            .map(|r| {
                let href = format!("/repos/{}", r.name);
                view! {
                    <tr data-repo=r.name.clone()>
                        <td><a href=href>{r.name.clone()}</a></td>
                        <td>{r.description}</td>
                        <td>{r.owner}</td>
                        <td><time datetime=r.created_at.clone() data-relative>{r.created_at.clone()}</time></td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <section class="card">
                <table>
                    <thead><tr><th>"Name"</th><th>"Description"</th><th>"Owner"</th><th>"Created"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
        }
        .into_any()
    };
    let content = view! {
        {list}
        <section class="card">
            <h2>"Create a repository"</h2>
            <form class="stack" method="post" action="/repos">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                {echo.form_error()}
                // No maxlength: a longer name is refused with the rule, never cut short.
                <label>"Name"
                    <input type="text" name="name" pattern="[A-Za-z0-9._\\-]{1,100}" placeholder="my-app" required
                        title="1 to 100 letters, digits, '.', '_' or '-'"
                        value=echo.value("name", "") aria-invalid=echo.invalid("name")/>
                    {echo.error_for("name")}
                </label>
                <label>"Description"
                    <input type="text" name="description" value=echo.value("description", "")
                        aria-invalid=echo.invalid("description")/>
                    {echo.error_for("description")}
                </label>
                <button type="submit">"Create repository"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}

/// What the repository page shows.
#[derive(Debug, Clone)]
pub struct RepoPage {
    pub name: String,
    pub description: String,
    pub owner: String,
    pub clone_url_http: String,
    pub clone_url_ssh: String,
    /// The viewer's user name, for the credential instructions.
    pub user: String,
    /// Recent ref updates, newest first.
    pub pushes: Vec<PushRow>,
    /// The branch HEAD points to, when the repository has commits.
    pub head: Option<String>,
    pub branches: Vec<String>,
    pub tags: Vec<String>,
    /// The README rendered to HTML (raw HTML in it is escaped).
    pub readme_html: Option<String>,
    /// Webhooks with their latest deliveries; `None` when the viewer may not manage them.
    pub webhooks: Option<Vec<WebhookRow>>,
}

/// A webhook and its recent deliveries, for the repository page.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub filter: String,
    /// (event, state, attempts, last status or error)
    pub deliveries: Vec<(String, String, i64, String)>,
}

/// One pushed ref update.
#[derive(Debug, Clone)]
pub struct PushRow {
    pub ref_name: String,
    pub old: String,
    pub new: String,
    pub pusher: String,
    pub time: String,
}

fn short(sha: &str) -> String {
    if sha.chars().all(|c| c == '0') {
        "—".to_string()
    } else {
        sha.chars().take(10).collect()
    }
}

/// One repository: clone URL with a copy button and the commands to use it.
/// `echo` fills the webhook form again after a refusal.
pub fn repo(ctx: &PageContext, repo: RepoPage, echo: &FormEcho) -> String {
    let delete_action = format!("/repos/{}/delete", repo.name);
    let confirm = format!(
        "Delete {} and all its history? This cannot be undone.",
        repo.name
    );
    let description =
        (!repo.description.is_empty()).then(|| view! { <p>{repo.description.clone()}</p> });
    let pushes = if repo.pushes.is_empty() {
        view! { <p class="muted">"Nothing pushed yet."</p> }.into_any()
    } else {
        let rows = repo
            .pushes
            .iter()
            .map(|p| {
                view! {
                    <tr>
                        <td><code>{p.ref_name.clone()}</code></td>
                        <td><code>{short(&p.old)}</code>" → "<code>{short(&p.new)}</code></td>
                        <td>{p.pusher.clone()}</td>
                        <td><time datetime=p.time.clone() data-relative>{p.time.clone()}</time></td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table>
                <thead><tr><th>"Ref"</th><th>"Change"</th><th>"Pusher"</th><th>"When"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let name = repo.name.clone();
    let code = repo.head.clone().map(|head| {
        let refs = |list: &Vec<String>, kind: &'static str| {
            list.iter()
                .map(|r| {
                    let href = format!("/repos/{}/{kind}/{r}", name);
                    view! { <a class="badge" href=href>{r.clone()}</a> }
                })
                .collect_view()
        };
        let branches = refs(&repo.branches, "tree");
        let tags = refs(&repo.tags, "tree");
        view! {
            {repo_tabs(&name, &head, Tab::Overview)}
            <section class="card" data-testid="refs">
                <h2>"Branches"</h2><div class="refs">{branches}</div>
                <h2>"Tags"</h2><div class="refs">{tags}</div>
            </section>
        }
    });
    let webhooks = repo.webhooks.clone().map(|hooks| {
        let csrf = ctx.csrf.clone();
        let action = format!("/repos/{}/webhooks", repo.name);
        let list = hooks
            .into_iter()
            .map(|h| {
                let remove = format!("/repos/{}/webhooks/{}/delete", repo.name, h.id);
                let deliveries = h
                    .deliveries
                    .into_iter()
                    .map(|(event, state, attempts, last)| {
                        view! { <li><code>{event}</code>" — " {state} {format!(" after {attempts} attempt(s)")} " " <span class="muted">{last}</span></li> }
                    })
                    .collect_view();
                view! {
                    <div class="card" data-webhook=h.url.clone()>
                        <p><code>{h.url.clone()}</code>" " <span class="muted">{h.filter}</span></p>
                        <ul>{deliveries}</ul>
                        <form method="post" action=remove>
                            <input type="hidden" name="csrf_token" value=csrf.clone()/>
                            <button type="submit" class="danger">"Remove webhook"</button>
                        </form>
                    </div>
                }
            })
            .collect_view();
        view! {
            <section class="card" data-testid="webhooks">
                <h2>"Webhooks"</h2>
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
        }
    });
    let readme = repo.readme_html.clone().map(|html| {
        view! { <section class="card markdown" data-testid="readme" inner_html=html></section> }
    });
    let content = view! {
        {code}
        {readme}
        <section class="card">
            {description}
            <p class="muted">"Owner: " {repo.owner.clone()}</p>
            <h2>"Clone with git"</h2>
            <div class="secret"><code id="clone-http" data-testid="clone-url">{repo.clone_url_http.clone()}</code>
                <button type="button" class="secondary" data-copy="clone-http" hidden>"Copy"</button></div>
            <p>"When git asks, give a " <a href="/account/git-credentials">"git credential"</a>
               ", or your user name " <code>{repo.user.clone()}</code> " and an " <a href="/account/tokens">"API token"</a>
               " as the password. To let git remember it for a while, in this clone only:"</p>
            <pre class="code" data-testid="clone-command">{format!("git clone -c credential.helper=cache {}", repo.clone_url_http)}</pre>
        </section>
        <section class="card" data-testid="open-workspace">
            <h2>"Code in the browser"</h2>
            <p>"A workspace checks this repository out with a terminal, an editor and git set up for you."</p>
            <form class="inline" method="post" action="/workspaces">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <input type="hidden" name="repo" value=repo.name.clone()/>
                // The server derives a free, valid name from the repository's.
                <input type="hidden" name="name" value=repo.name.clone()/>
                <input type="hidden" name="derive_name" value="1"/>
                <button type="submit" data-testid="create-workspace">"Create a workspace"</button>
            </form>
        </section>
        <section class="card">
            <h2>"Clone over SSH"</h2>
            <div class="secret"><code id="clone-ssh" data-testid="clone-url-ssh">{repo.clone_url_ssh.clone()}</code>
                <button type="button" class="secondary" data-copy="clone-ssh" hidden>"Copy"</button></div>
            <p>"Add your public key under " <a href="/account/git-credentials">"Git credentials"</a> " first."</p>
        </section>
        <section class="card" data-testid="pushes">
            <h2>"Recent pushes"</h2>
            {pushes}
        </section>
        {webhooks}
        <section class="card">
            <h2>"Delete this repository"</h2>
            <form method="post" action=delete_action data-confirm=confirm>
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <button type="submit" class="danger">"Delete repository"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}

/// Links shared by the repository browser pages.
/// The tabs of a repository's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Overview,
    Code,
    Commits,
}

/// The repository's tabs, the current one marked (`aria-current`), and the
/// revision in view.
fn repo_tabs(repo: &str, rev: &str, current: Tab) -> impl IntoView {
    let tab = |which: Tab, href: String, label: &'static str| {
        let here = (which == current).then_some("page");
        view! { <a class="tab" href=href aria-current=here>{label}</a> }
    };
    view! {
        <nav class="tabs" aria-label="Repository" data-testid="repo-tabs">
            {tab(Tab::Overview, format!("/repos/{repo}"), "Overview")}
            {tab(Tab::Code, format!("/repos/{repo}/tree/{rev}"), "Code")}
            {tab(Tab::Commits, format!("/repos/{repo}/commits/{rev}"), "Commits")}
            <span class="tab-rev muted">{format!("at {rev}")}</span>
        </nav>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Nav, Viewer};

    #[test]
    fn the_tree_draws_its_icons_without_emoji() {
        let ctx = PageContext {
            title: "app".into(),
            nav: Nav::Repositories,
            viewer: Viewer {
                name: "ann".into(),
                admin: false,
                must_change_password: false,
            },
            csrf: "t".into(),
            flash: None,
        };
        let entry = |name: &str, kind: &str| BrowseEntry {
            name: name.into(),
            kind: kind.into(),
        };
        let html = tree_page(
            &ctx,
            "app",
            "main",
            "",
            vec![
                entry("src", "tree"),
                entry("README.md", "blob"),
                entry("lib", "commit"),
            ],
        );
        for which in ["folder", "file", "submodule"] {
            assert!(
                html.contains(&format!(r#"data-icon="{which}""#)),
                "{which}: {html}"
            );
        }
        assert!(
            !html
                .chars()
                .any(|c| ('\u{1F300}'..='\u{1FAFF}').contains(&c)),
            "an emoji in {html}"
        );
    }
}
