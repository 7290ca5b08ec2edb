//! Repositories' pages: the list, one repository (clone URLs, pushes,
//! webhooks), and the browser (tree, file, history, one commit).

use leptos::prelude::*;

use crate::icons::{icon, Icon};
use crate::layout::shell;
use crate::{FormEcho, PageContext};

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
pub fn repo(ctx: &PageContext, repo: RepoPage) -> String {
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
                    <label>"Payload URL" <input type="text" name="url" placeholder="https://ci.example.org/hook" required/></label>
                    <label>"Secret (16 characters or more; signs every payload)" <input type="password" name="secret" minlength="16" autocomplete="new-password" required/></label>
                    <label>"Branches (comma-separated globs, empty for all)" <input type="text" name="branches"/></label>
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

/// Breadcrumbs from the repository's root to `path`; `last` (a file's name,
/// or the folder in view) is where you are, not a link.
fn crumbs(repo: &str, rev: &str, path: &str, last: Option<&str>) -> impl IntoView {
    let mut links = vec![(format!("/repos/{repo}/tree/{rev}"), repo.to_string())];
    let mut acc = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        links.push((format!("/repos/{repo}/tree/{rev}/{acc}"), part.to_string()));
    }
    // In a folder, the folder itself is the last crumb.
    let here = match last {
        Some(name) => name.to_string(),
        None => links.pop().map(|(_, name)| name).unwrap_or_default(),
    };
    let links = links
        .into_iter()
        .map(|(href, name)| view! { <a href=href>{name}</a>" / " })
        .collect_view();
    view! {
        <nav class="crumbs" aria-label="Breadcrumbs" data-testid="crumbs">
            {links}<span aria-current="page">{here}</span>
        </nav>
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone)]
pub struct BrowseEntry {
    pub name: String,
    /// `tree`, `blob`, `link` or `commit`.
    pub kind: String,
}

/// A directory of a repository at a revision.
pub fn tree_page(
    ctx: &PageContext,
    repo: &str,
    rev: &str,
    path: &str,
    entries: Vec<BrowseEntry>,
) -> String {
    let base = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let rows = entries
        .into_iter()
        .map(|e| {
            let (which, href) = match e.kind.as_str() {
                "tree" => (
                    Icon::Folder,
                    Some(format!("/repos/{repo}/tree/{rev}/{base}{}", e.name)),
                ),
                "blob" | "link" => (
                    Icon::File,
                    Some(format!("/repos/{repo}/blob/{rev}/{base}{}", e.name)),
                ),
                _ => (Icon::Submodule, None),
            };
            let name = match href {
                Some(h) => view! { <a href=h>{e.name.clone()}</a> }.into_any(),
                None => view! { <span>{e.name.clone()}</span> }.into_any(),
            };
            view! { <tr data-entry=e.name.clone()><td>{icon(which)}</td><td>{name}</td></tr> }
        })
        .collect_view();
    let content = view! {
        {repo_tabs(repo, rev, Tab::Code)}
        <section class="card">
            {crumbs(repo, rev, path, None)}
            <table class="entries"><tbody>{rows}</tbody></table>
        </section>
    };
    shell(ctx, content)
}

/// The highlight.js language for a file name, if one is bundled.
pub fn language_of(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    if name == "dockerfile" || name == "containerfile" {
        return Some("dockerfile");
    }
    let ext = name.rsplit('.').next()?;
    Some(match ext {
        "rs" => "rust",
        "js" | "mjs" | "cjs" | "jsx" => "javascript",
        "ts" | "tsx" => "typescript",
        "py" => "python",
        "go" => "go",
        "sh" | "bash" => "bash",
        "yml" | "yaml" => "yaml",
        "json" => "json",
        "md" | "markdown" => "markdown",
        "css" => "css",
        "html" | "htm" | "xml" | "svg" => "xml",
        "toml" | "ini" | "cfg" => "ini",
        "c" | "h" => "c",
        "cc" | "cpp" | "hpp" | "cxx" => "cpp",
        "java" => "java",
        "sql" => "sql",
        "diff" | "patch" => "diff",
        _ => return None,
    })
}

/// One file at a revision: highlighted text, or a note for binary files.
pub fn blob_page(
    ctx: &PageContext,
    repo: &str,
    rev: &str,
    path: &str,
    text: Option<String>,
    size: usize,
) -> String {
    let raw = format!("/repos/{repo}/raw/{rev}/{path}");
    let body = match text {
        Some(t) => {
            let class = language_of(path)
                .map(|l| format!("language-{l}"))
                .unwrap_or_default();
            view! { <pre class="code"><code class=class data-testid="blob">{t}</code></pre> }
                .into_any()
        }
        None => view! { <p class="muted">{format!("Binary or large file, {size} bytes.")}</p> }
            .into_any(),
    };
    let parent = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let content = view! {
        {repo_tabs(repo, rev, Tab::Code)}
        <section class="card">
            {crumbs(repo, rev, parent, Some(path.rsplit('/').next().unwrap_or(path)))}
            <p><a href=raw>"raw"</a></p>
            {body}
        </section>
    };
    shell(ctx, content)
}

/// A commit as lists show it.
#[derive(Debug, Clone)]
pub struct CommitRow {
    pub id: String,
    pub summary: String,
    pub author: String,
    /// RFC 3339.
    pub time: String,
}

/// The history of a revision.
pub fn commits_page(ctx: &PageContext, repo: &str, rev: &str, commits: Vec<CommitRow>) -> String {
    let rows = commits
        .into_iter()
        .map(|c| {
            let href = format!("/repos/{repo}/commit/{}", c.id);
            let short: String = c.id.chars().take(10).collect();
            view! {
                <tr data-commit=c.id.clone()>
                    <td><a href=href><code>{short}</code></a></td>
                    <td>{c.summary}</td>
                    <td>{c.author}</td>
                    <td><time datetime=c.time.clone() data-relative>{c.time.clone()}</time></td>
                </tr>
            }
        })
        .collect_view();
    let content = view! {
        {repo_tabs(repo, rev, Tab::Commits)}
        <section class="card">
            <table><thead><tr><th>"Commit"</th><th>"Summary"</th><th>"Author"</th><th>"When"</th></tr></thead><tbody>{rows}</tbody></table>
        </section>
    };
    shell(ctx, content)
}

/// A file changed by a commit.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    pub path: String,
    pub change: String,
    pub patch: String,
    pub binary: bool,
}

/// One commit: message, author, and its diff.
pub fn commit_page(
    ctx: &PageContext,
    repo: &str,
    commit: CommitRow,
    message: String,
    parents: Vec<String>,
    changes: Vec<ChangeRow>,
) -> String {
    let parents = parents
        .into_iter()
        .map(|p| {
            let href = format!("/repos/{repo}/commit/{p}");
            let short: String = p.chars().take(10).collect();
            view! { <a href=href><code>{short}</code></a>" " }
        })
        .collect_view();
    let files = changes
        .into_iter()
        .map(|c| {
            let body = if c.binary {
                view! { <p class="muted">"Binary file"</p> }.into_any()
            } else {
                view! { <pre class="code"><code class="language-diff">{c.patch}</code></pre> }
                    .into_any()
            };
            view! {
                <section class="card" data-file=c.path.clone()>
                    <h2><code>{c.path.clone()}</code>" " <span class="badge">{c.change}</span></h2>
                    {body}
                </section>
            }
        })
        .collect_view();
    let tabs = repo_tabs(repo, &commit.id, Tab::Commits);
    let content = view! {
        {tabs}
        <section class="card">
            <h2 data-testid="commit-summary">{commit.summary.clone()}</h2>
            <pre class="code">{message}</pre>
            <p class="muted">{commit.author}" · " <time datetime=commit.time.clone() data-relative>{commit.time.clone()}</time>
               " · " <code>{commit.id.clone()}</code> " · parents: " {parents}</p>
        </section>
        {files}
    };
    shell(ctx, content)
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
