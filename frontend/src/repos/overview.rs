//! One repository's front page, as the best git hosts lay it out: the latest
//! commit on top, the default branch's files with the last commit of each,
//! the README below; a side panel with what it is, how to clone it, its
//! branches and tags, and a workspace on it. An empty repository shows the
//! three ways people fill one.

use leptos::prelude::*;

use super::{repo_tabs, CommitRow, RepoNav, Tab};
use crate::icons::{icon, Icon};
use crate::layout::shell;
use crate::PageContext;

/// What the repository page shows.
#[derive(Debug, Clone)]
pub struct RepoPage {
    pub nav: RepoNav,
    pub description: String,
    pub owner: String,
    pub clone_url_http: String,
    pub clone_url_ssh: String,
    /// The viewer's user name, for the credential instructions.
    pub user: String,
    /// Recent ref updates, newest first.
    pub pushes: Vec<PushRow>,
    /// Whether the viewer may read the code (without it: no files, no README).
    pub can_read: bool,
    /// The branch shown: HEAD's, or the first one when HEAD's does not exist.
    pub head: Option<String>,
    pub branches: Vec<String>,
    pub tags: Vec<String>,
    /// The newest commit of `head`.
    pub latest: Option<CommitRow>,
    /// Commits reachable from `head`, counted up to a cap (`+` when more).
    pub commit_count: String,
    /// The top directory of `head`, each entry with its last commit.
    pub files: Vec<FileRow>,
    /// The README rendered to HTML (raw HTML in it is escaped).
    pub readme_html: Option<String>,
}

/// An entry of the file list.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub name: String,
    /// `tree`, `blob`, `link` or `commit`.
    pub kind: String,
    /// The last commit that changed it, when found.
    pub commit: Option<CommitRow>,
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

fn age(time: &str) -> impl IntoView {
    view! { <time datetime=time.to_string() data-relative>{time.to_string()}</time> }
}

/// The latest commit, as the bar above the files.
fn latest_bar(repo: &str, head: &str, c: &CommitRow, count: &str) -> impl IntoView {
    let href = format!("/repos/{repo}/commit/{}", c.id);
    let history = format!("/repos/{repo}/commits/{head}");
    view! {
        <div class="latest" data-testid="latest-commit">
            <span class="latest-author">{c.author.clone()}</span>
            <a class="latest-summary" href=href.clone()>{c.summary.clone()}</a>
            <span class="latest-meta muted">
                <a href=href><code>{short(&c.id)}</code></a>" · " {age(&c.time)}" · "
                <a href=history data-testid="commit-count">{format!("{count} {}", if count == "1" { "commit" } else { "commits" })}</a>
            </span>
        </div>
    }
}

/// The top directory with each entry's last commit message and age.
fn file_list(repo: &str, head: &str, files: Vec<FileRow>) -> impl IntoView {
    let rows = files
        .into_iter()
        .map(|f| {
            let (which, href) = match f.kind.as_str() {
                "tree" => (Icon::Folder, Some(format!("/repos/{repo}/tree/{head}/{}", f.name))),
                "blob" | "link" => (Icon::File, Some(format!("/repos/{repo}/blob/{head}/{}", f.name))),
                _ => (Icon::Submodule, None),
            };
            let name = match href {
                Some(h) => view! { <a href=h>{f.name.clone()}</a> }.into_any(),
                None => view! { <span>{f.name.clone()}</span> }.into_any(),
            };
            let (message, when) = match &f.commit {
                Some(c) => {
                    let href = format!("/repos/{repo}/commit/{}", c.id);
                    (
                        view! { <a class="muted" href=href title=c.summary.clone()>{c.summary.clone()}</a> }.into_any(),
                        age(&c.time).into_any(),
                    )
                }
                None => (view! { <span class="muted">"—"</span> }.into_any(), ().into_any()),
            };
            view! {
                <tr data-entry=f.name.clone()>
                    <td>{icon(which)}</td><td class="file-name">{name}</td>
                    <td class="file-commit">{message}</td><td class="file-age muted">{when}</td>
                </tr>
            }
        })
        .collect_view();
    view! { <table class="entries files" data-testid="files"><tbody>{rows}</tbody></table> }
}

/// The three ways to fill an empty repository. The credential helper is
/// set in that repository (or for that one command), never globally.
fn empty_snippets(name: &str, url: &str) -> impl IntoView {
    let create = format!(
        "echo \"# {name}\" > README.md\ngit init\ngit add README.md\ngit commit -m \"First commit\"\ngit branch -M main\ngit remote add origin {url}\ngit config credential.helper cache\ngit push -u origin main"
    );
    let existing = format!(
        "git remote add origin {url}\ngit config credential.helper cache\ngit push -u origin main"
    );
    let import = format!(
        "git clone --bare https://git.example.org/old.git\ncd old.git\ngit -c credential.helper=cache push --mirror {url}"
    );
    view! {
        <section class="card" data-testid="empty-repo">
            <h2>"This repository is empty"</h2>
            <h3>"Create a new repository on the command line"</h3>
            <pre class="code" data-testid="snippet-create">{create}</pre>
            <h3>"Push an existing repository"</h3>
            <pre class="code" data-testid="snippet-existing">{existing}</pre>
            <h3>"Import a repository from another host"</h3>
            <pre class="code" data-testid="snippet-import">{import}</pre>
        </section>
    }
}

fn pushes_card(pushes: &[PushRow]) -> impl IntoView {
    let body = if pushes.is_empty() {
        view! { <p class="muted">"Nothing pushed yet."</p> }.into_any()
    } else {
        let rows = pushes
            .iter()
            .map(|p| {
                view! {
                    <tr>
                        <td><code>{p.ref_name.clone()}</code></td>
                        <td><code>{short(&p.old)}</code>" → "<code>{short(&p.new)}</code></td>
                        <td>{p.pusher.clone()}</td>
                        <td>{age(&p.time)}</td>
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
    view! { <section class="card" data-testid="pushes"><h2>"Recent pushes"</h2>{body}</section> }
}

/// Branches and tags as counts that open into their lists.
fn refs_panel(repo: &str, branches: &[String], tags: &[String]) -> impl IntoView {
    let links = |list: &[String]| {
        list.iter()
            .map(|r| {
                let href = format!("/repos/{repo}/tree/{r}");
                view! { <a class="badge" href=href>{r.clone()}</a> }
            })
            .collect_view()
    };
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    view! {
        <div class="side-block" data-testid="refs">
            <details>
                <summary data-testid="branch-count">{plural(branches.len(), "branch", "branches")}</summary>
                <div class="refs">{links(branches)}</div>
            </details>
            <details>
                <summary data-testid="tag-count">{plural(tags.len(), "tag", "tags")}</summary>
                <div class="refs">{links(tags)}</div>
            </details>
        </div>
    }
}

/// The side panel: about, clone URLs, refs, a workspace.
fn side_panel(ctx: &PageContext, repo: &RepoPage) -> impl IntoView {
    let name = repo.nav.name.clone();
    let description = (!repo.description.is_empty())
        .then(|| view! { <p data-testid="description">{repo.description.clone()}</p> });
    let refs = repo
        .head
        .is_some()
        .then(|| refs_panel(&name, &repo.branches, &repo.tags));
    view! {
        <aside class="repo-side">
            <section class="card">
                <h2>"About"</h2>
                {description}
                <p class="muted">"Owner: " {repo.owner.clone()}</p>
                {refs}
            </section>
            <section class="card" data-testid="clone">
                <h2>"Clone"</h2>
                <h3>"HTTPS"</h3>
                <div class="secret"><code id="clone-http" data-testid="clone-url">{repo.clone_url_http.clone()}</code>
                    <button type="button" class="secondary" data-copy="clone-http" hidden>"Copy"</button></div>
                <p class="muted small">"When git asks, give a " <a href="/account/git-credentials">"git credential"</a>
                   ", or your user name " <code>{repo.user.clone()}</code> " and an " <a href="/account/tokens">"API token"</a>
                   ". To let git remember it for a while, in this clone only:"</p>
                <pre class="code" data-testid="clone-command">{format!("git clone -c credential.helper=cache {}", repo.clone_url_http)}</pre>
                <h3>"SSH"</h3>
                <div class="secret"><code id="clone-ssh" data-testid="clone-url-ssh">{repo.clone_url_ssh.clone()}</code>
                    <button type="button" class="secondary" data-copy="clone-ssh" hidden>"Copy"</button></div>
                <p class="muted small">"Add your public key under " <a href="/account/git-credentials">"Git credentials"</a> " first."</p>
            </section>
            <section class="card" data-testid="open-workspace">
                <h2>"Code in the browser"</h2>
                <p class="muted small">"A workspace checks this repository out with a terminal, an editor and git set up for you."</p>
                <form class="inline" method="post" action="/workspaces">
                    <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                    <input type="hidden" name="repo" value=name.clone()/>
                    // The server derives a free, valid name from the repository's.
                    <input type="hidden" name="name" value=name.clone()/>
                    <input type="hidden" name="derive_name" value="1"/>
                    <button type="submit" data-testid="create-workspace">"Open in a workspace"</button>
                </form>
            </section>
        </aside>
    }
}

/// One repository's page.
pub fn repo(ctx: &PageContext, repo: RepoPage) -> String {
    let name = repo.nav.name.clone();
    let main = match (&repo.head, repo.can_read) {
        (Some(head), _) => {
            let latest = repo
                .latest
                .as_ref()
                .map(|c| latest_bar(&name, head, c, &repo.commit_count));
            let readme = repo.readme_html.clone().map(|html| {
                view! { <section class="card markdown" data-testid="readme" inner_html=html></section> }
            });
            view! {
                <section class="card code-card">
                    {latest}
                    {file_list(&name, head, repo.files.clone())}
                </section>
                {readme}
            }
            .into_any()
        }
        (None, true) => empty_snippets(&name, &repo.clone_url_http).into_any(),
        (None, false) => view! {
            <section class="card"><p class="muted">"You may see this repository but not read its code."</p></section>
        }
        .into_any(),
    };
    let content = view! {
        {repo_tabs(&repo.nav, repo.head.as_deref(), Tab::Overview)}
        <div class="repo-layout">
            <div class="repo-main">
                {main}
                {pushes_card(&repo.pushes)}
            </div>
            {side_panel(ctx, &repo)}
        </div>
    };
    shell(ctx, content)
}
