//! Repositories' pages: the list, one repository (files with their last
//! commits, README, clone URLs), the browser (tree, file, history, one
//! commit), and the owner's Access and Settings tabs.

use leptos::prelude::*;

use crate::layout::shell;
use crate::{FormEcho, PageContext};

mod access;
mod browse;
mod overview;
pub(crate) mod settings;

pub use access::{access_page, AccessPage, AccessRow, Grant};
pub use browse::{
    blob_page, commit_page, commits_page, tree_page, BrowseEntry, ChangeRow, CommitRow,
};
pub use overview::{repo, FileRow, PushRow, RepoPage};
pub use settings::{settings_page, MirrorView, WebhookRow};

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

/// The repository in view, as its tabs need it.
#[derive(Debug, Clone)]
pub struct RepoNav {
    pub name: String,
    /// Whether the viewer may manage it (the Access and Settings tabs).
    pub manage: bool,
}

/// The tabs of a repository's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Overview,
    Code,
    Commits,
    Access,
    Settings,
}

/// The repository's tabs, the current one marked (`aria-current`), and the
/// revision in view (`None` for an empty repository: no Code or Commits).
fn repo_tabs(nav: &RepoNav, rev: Option<&str>, current: Tab) -> impl IntoView {
    let repo = &nav.name;
    let tab = |which: Tab, href: String, label: &'static str| {
        let here = (which == current).then_some("page");
        view! { <a class="tab" href=href aria-current=here>{label}</a> }
    };
    let code = rev.map(|rev| {
        view! {
            {tab(Tab::Code, format!("/repos/{repo}/tree/{rev}"), "Code")}
            {tab(Tab::Commits, format!("/repos/{repo}/commits/{rev}"), "Commits")}
        }
    });
    let manage = nav.manage.then(|| {
        view! {
            {tab(Tab::Access, format!("/repos/{repo}/access"), "Access")}
            {tab(Tab::Settings, format!("/repos/{repo}/settings"), "Settings")}
        }
    });
    let rev = rev.map(|rev| view! { <span class="tab-rev muted">{format!("at {rev}")}</span> });
    view! {
        <nav class="tabs" aria-label="Repository" data-testid="repo-tabs">
            {tab(Tab::Overview, format!("/repos/{repo}"), "Overview")}
            {code}
            {manage}
            {rev}
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
        let nav = RepoNav {
            name: "app".into(),
            manage: false,
        };
        let html = tree_page(
            &ctx,
            &nav,
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
