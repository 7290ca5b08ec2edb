//! The pages of no one domain: the dashboard, sections still to come and a
//! plain message. Each domain's pages are in its own module (`identity`,
//! `repos`, `params`, `builds`, `batches`, `workspaces`); every function
//! returns a complete HTML document.

use leptos::prelude::*;

use crate::layout::{document, shell};
use crate::PageContext;

/// What the dashboard shows of the viewer's things.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub repos: usize,
    pub workspaces: usize,
    pub projects: usize,
    /// Newest first.
    pub activity: Vec<ActivityRow>,
}

/// Something that happened: a push, a build, a workspace started.
#[derive(Debug, Clone)]
pub struct ActivityRow {
    /// RFC 3339.
    pub at: String,
    /// `push`, `build` or `workspace`.
    pub kind: String,
    pub text: String,
    pub href: String,
}

/// The dashboard: for a new account, the three first steps; otherwise
/// what the viewer has and what happened lately.
pub fn dashboard(ctx: &PageContext, overview: &Overview) -> String {
    let welcome = view! {
        <section class="card">
            <h2>{format!("Welcome, {}", ctx.viewer.name)}</h2>
            <p class="muted">"Nubo is your team's cloud IDE, git hosting and build-and-deploy runner in one server."</p>
        </section>
    };
    let fresh = overview.repos == 0 && overview.workspaces == 0 && overview.projects == 0;
    let body = if fresh {
        let steps = [
            ("/repos", "1. Create or push a repository", "Make one here, then push to it with git over HTTPS or SSH — or push a project you already have.", "Create a repository"),
            ("/workspaces", "2. Open a workspace", "An editor, a file tree and terminals in your browser, with your repository checked out and git set up.", "Open a workspace"),
            ("/projects", "3. Run a build", "A build project runs the repository's buildspec.yml, with a live log and its artifacts kept.", "Create a build project"),
        ];
        let steps = steps
            .into_iter()
            .map(|(href, title, text, action)| {
                view! {
                    <a class="tile step" href=href>
                        <h3>{title}</h3>
                        <p>{text}</p>
                        <span class="button small">{action}</span>
                    </a>
                }
            })
            .collect_view();
        view! {
            <h2 class="section-title">"Get started"</h2>
            <div class="grid" data-testid="first-steps">{steps}</div>
        }
        .into_any()
    } else {
        let count = |n: usize, one: &str, many: &str| {
            if n == 1 {
                format!("1 {one}")
            } else {
                format!("{n} {many}")
            }
        };
        let tiles = [
            (
                "/repos",
                "Repositories",
                count(overview.repos, "repository", "repositories"),
            ),
            (
                "/workspaces",
                "Workspaces",
                count(overview.workspaces, "workspace", "workspaces"),
            ),
            (
                "/projects",
                "Builds",
                count(overview.projects, "build project", "build projects"),
            ),
        ]
        .into_iter()
        .map(|(href, title, n)| {
            view! { <a class="tile" href=href data-testid="count"><h3>{title}</h3><p>{n}</p></a> }
        })
        .collect_view();
        let activity = if overview.activity.is_empty() {
            view! { <p class="muted">"Nothing has happened yet: push, build or open a workspace."</p> }
                .into_any()
        } else {
            let items = overview
                .activity
                .iter()
                .map(|a| {
                    view! {
                        <li data-kind=a.kind.clone()>
                            <a href=a.href.clone()>{a.text.clone()}</a>" "
                            <time class="muted" datetime=a.at.clone() data-relative>{a.at.clone()}</time>
                        </li>
                    }
                })
                .collect_view();
            view! { <ul class="activity" data-testid="activity">{items}</ul> }.into_any()
        };
        view! {
            <div class="grid">{tiles}</div>
            <section class="card">
                <h2>"Recent activity"</h2>
                {activity}
            </section>
        }
        .into_any()
    };
    let content = view! { {welcome} {body} };
    shell(ctx, content)
}

/// A full-page message for errors such as 404 (no shell: works signed out).
pub fn message(title: &str, text: &str) -> String {
    let body = view! {
        <div class="login-wrap">
            <div class="card login">
                <div class="brand"><span class="brand-mark"></span>"Nubo"</div>
                <h2>{title.to_string()}</h2>
                <p>{text.to_string()}</p>
                <p><a href="/">"Back to the dashboard"</a></p>
            </div>
        </div>
    };
    document(title, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Nav, Viewer};

    fn ctx() -> PageContext {
        PageContext {
            title: "Dashboard".into(),
            nav: Nav::Dashboard,
            viewer: Viewer {
                name: "<ann>".into(),
                admin: true,
                must_change_password: false,
            },
            csrf: "tok\"en".into(),
            flash: None,
        }
    }

    #[test]
    fn text_and_attributes_are_escaped() {
        let html = dashboard(&ctx(), &Overview::default());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("&lt;ann&gt;"), "{html}");
        assert!(!html.contains("<ann>"));
        assert!(!html.contains("value=\"tok\"en\""));
    }

    #[test]
    fn current_nav_entry_is_marked() {
        let html = dashboard(&ctx(), &Overview::default());
        assert!(
            html.contains(r#"<a href="/" aria-current="page">Dashboard</a>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="/repos">Repositories</a>"#),
            "{html}"
        );
        assert!(html.contains("/admin/users"));
    }

    #[test]
    fn non_admins_do_not_see_the_users_link() {
        let mut c = ctx();
        c.viewer.admin = false;
        assert!(!dashboard(&c, &Overview::default()).contains("/admin/users"));
    }
}
