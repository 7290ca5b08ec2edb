//! The pages of no one domain: the dashboard, sections still to come and a
//! plain message. Each domain's pages are in its own module (`identity`,
//! `repos`, `params`, `builds`, `batches`, `workspaces`); every function
//! returns a complete HTML document.

use leptos::prelude::*;

use crate::layout::{document, shell};
use crate::PageContext;

/// The dashboard: where to go next.
pub fn dashboard(ctx: &PageContext) -> String {
    let tiles = [
        (
            "/repos",
            "Repositories",
            "Git repositories, encrypted at rest, over SSH and HTTPS.",
        ),
        (
            "/workspaces",
            "Workspaces",
            "Editor, file tree and terminals in your browser.",
        ),
        (
            "/projects",
            "Builds",
            "Build projects with buildspec.yml: live logs, artifacts, history.",
        ),
        (
            "/deployments",
            "Deployments",
            "Applications, deployment groups and their targets.",
        ),
    ];
    let tiles = tiles
        .into_iter()
        .map(|(href, title, text)| {
            view! { <a class="tile" href=href><h3>{title}</h3><p>{text}</p></a> }
        })
        .collect_view();
    let content = view! {
        <section class="card">
            <h2>{format!("Welcome, {}", ctx.viewer.name)}</h2>
            <p class="muted">"Nubo is your team's cloud IDE, git hosting and build-and-deploy runner in one server."</p>
        </section>
        <div class="grid">{tiles}</div>
    };
    shell(ctx, content)
}

/// The sections that later releases fill: an honest empty state for each.
#[derive(Debug, Clone, Copy)]
pub enum Section {
    Workspaces,
    Pipelines,
    Deployments,
}

pub fn empty_section(ctx: &PageContext, section: Section) -> String {
    let (heading, text, now) = match section {
        Section::Workspaces => (
            "No workspaces yet",
            "Workspaces give you an editor and terminals for a repository.",
            view! { <a class="button" href="/workspaces">"Create a workspace"</a> }.into_any(),
        ),
        Section::Pipelines => (
            "Pipelines are on their way",
            "Next: a push runs source → build → test → approval → deploy, with CodePipeline's definitions. Until then a build project runs your buildspec.yml on demand.",
            view! { <a class="button" href="/projects">"Go to Builds"</a> }.into_any(),
        ),
        Section::Deployments => (
            "Deployments are on their way",
            "Next: a CodeDeploy-compatible agent that runs your appspec.yml on your machines, with rolling and blue/green deployments and automatic rollback. Until then a build keeps its artifacts for you to download.",
            view! { <a class="button" href="/projects">"Go to Builds"</a> }.into_any(),
        ),
    };
    let content = view! {
        <section class="card empty" data-testid="empty-state">
            <h2>{heading}</h2>
            <p>{text}</p>
            <p>{now}</p>
        </section>
    };
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
        let html = dashboard(&ctx());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("&lt;ann&gt;"), "{html}");
        assert!(!html.contains("<ann>"));
        assert!(!html.contains("value=\"tok\"en\""));
    }

    #[test]
    fn current_nav_entry_is_marked() {
        let html = dashboard(&ctx());
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
        assert!(!dashboard(&c).contains("/admin/users"));
    }
}
