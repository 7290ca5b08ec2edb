//! The repository browser's pages: a folder, a file, the history and one
//! commit with its diff.

use leptos::prelude::*;

use super::{repo_tabs, RepoNav, Tab};
use crate::icons::{icon, Icon};
use crate::layout::shell;
use crate::PageContext;

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
    nav: &RepoNav,
    rev: &str,
    path: &str,
    entries: Vec<BrowseEntry>,
) -> String {
    let repo = nav.name.as_str();
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
        {repo_tabs(nav, Some(rev), Tab::Code)}
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
    nav: &RepoNav,
    rev: &str,
    path: &str,
    text: Option<String>,
    size: usize,
) -> String {
    let repo = nav.name.as_str();
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
        {repo_tabs(nav, Some(rev), Tab::Code)}
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
pub fn commits_page(
    ctx: &PageContext,
    nav: &RepoNav,
    rev: &str,
    commits: Vec<CommitRow>,
) -> String {
    let repo = nav.name.as_str();
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
        {repo_tabs(nav, Some(rev), Tab::Commits)}
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

/// A file with more changed lines than this starts folded.
const FOLD_ABOVE: usize = 400;

/// One commit: its message (once), author, parents (none for a root
/// commit) and its diff, unified or `split`, each file with its counts.
pub fn commit_page(
    ctx: &PageContext,
    nav: &RepoNav,
    commit: CommitRow,
    message: String,
    parents: Vec<String>,
    changes: Vec<ChangeRow>,
    split: bool,
) -> String {
    let repo = nav.name.as_str();
    let parents = (!parents.is_empty()).then(|| {
        let links = parents
            .into_iter()
            .map(|p| {
                let href = format!("/repos/{repo}/commit/{p}");
                let short: String = p.chars().take(10).collect();
                view! { <a href=href><code>{short}</code></a>" " }
            })
            .collect_view();
        view! { " · parents: " {links} }
    });
    // The summary is the heading: the message's body only, below it.
    let body = message
        .split_once('\n')
        .map(|(_, rest)| rest.trim().to_string())
        .filter(|rest| !rest.is_empty())
        .map(|rest| view! { <pre class="message">{rest}</pre> });
    let (mut added_total, mut removed_total) = (0, 0);
    let files = changes
        .into_iter()
        .map(|c| {
            let lines = crate::diff::parse(&c.patch);
            let (added, removed) = crate::diff::counts(&lines);
            added_total += added;
            removed_total += removed;
            let body = if c.binary {
                view! { <p class="muted">"Binary file"</p> }.into_any()
            } else if split {
                crate::diff::split(&lines).into_any()
            } else {
                crate::diff::unified(&lines).into_any()
            };
            let open = added + removed <= FOLD_ABOVE;
            view! {
                <details class="card diff-file" data-file=c.path.clone() open=open>
                    <summary>
                        <code>{c.path.clone()}</code>" " <span class="badge">{c.change}</span>
                        <span class="counts"><span class="ok">{format!("+{added}")}</span>" "<span class="bad">{format!("−{removed}")}</span></span>
                    </summary>
                    <div class="diff-body">{body}</div>
                </details>
            }
        })
        .collect_view();
    let here = format!("/repos/{repo}/commit/{}", commit.id);
    let switch = view! {
        <nav class="diff-switch" aria-label="Diff view">
            <a href=here.clone() aria-current=(!split).then_some("page")>"Unified"</a>
            <a href=format!("{here}?view=split") aria-current=split.then_some("page")>"Split"</a>
        </nav>
    };
    let tabs = repo_tabs(nav, Some(&commit.id), Tab::Commits);
    let content = view! {
        {tabs}
        <section class="card">
            <h2 data-testid="commit-summary">{commit.summary.clone()}</h2>
            {body}
            <p class="muted">{commit.author}" · " <time datetime=commit.time.clone() data-relative>{commit.time.clone()}</time>
               " · " <code>{commit.id.clone()}</code> {parents}</p>
        </section>
        <div class="diff-head">
            <p data-testid="diff-stats">{files_count_text(added_total, removed_total)}</p>
            {switch}
        </div>
        {files}
    };
    shell(ctx, content)
}

fn files_count_text(added: usize, removed: usize) -> String {
    format!("{added} additions, {removed} deletions")
}
