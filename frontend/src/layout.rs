//! The document frame and the signed-in shell (sidebar, top bar, flash).

use leptos::prelude::*;

use crate::assets::asset_url;
use crate::{Flash, Nav, PageContext};

/// Wraps a rendered body into a complete HTML document.
pub(crate) fn document(title: &str, body: impl RenderHtml) -> String {
    document_with(title, &[], &[], body)
}

/// Like [`document`], with page-specific stylesheets and scripts under
/// `/assets/` loaded after the shared ones (the IDE's bundle, which other
/// pages should not pay for).
pub(crate) fn document_with(
    title: &str,
    styles: &[&str],
    scripts: &[&str],
    body: impl RenderHtml,
) -> String {
    let styles = styles
        .iter()
        .map(|href| view! { <link rel="stylesheet" href=asset_url(href)/> })
        .collect_view();
    let scripts = scripts
        .iter()
        .map(|src| view! { <script src=asset_url(src) defer></script> })
        .collect_view();
    let head = view! {
        <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>{format!("{title} · Nubo")}</title>
            <link rel="icon" href=asset_url("favicon.svg") type="image/svg+xml"/>
            <link rel="stylesheet" href=asset_url("nubo.css")/>
            {styles}
            <script src=asset_url("app.js") defer></script>
            {scripts}
        </head>
    };
    format!(
        "<!DOCTYPE html><html lang=\"en\">{}<body>{}</body></html>",
        head.to_html(),
        body.to_html()
    )
}

fn nav_link(ctx_nav: Nav, target: Nav, href: &'static str, label: &'static str) -> impl IntoView {
    let current = (ctx_nav == target).then_some("page");
    view! { <a href=href aria-current=current>{label}</a> }
}

/// The signed-in application shell around `content`.
pub(crate) fn shell(ctx: &PageContext, content: impl IntoView + 'static) -> String {
    let nav = ctx.nav;
    let admin_link = ctx.viewer.admin.then(|| {
        view! {
            <div class="nav-section">"Administration"</div>
            {nav_link(nav, Nav::Admin, "/admin/users", "Users")}
            {nav_link(nav, Nav::Audit, "/admin/audit", "Audit log")}
            {nav_link(nav, Nav::Simulator, "/admin/simulator", "Policy simulator")}
            {nav_link(nav, Nav::Stores, "/admin/stores", "Parameters & secrets")}
        }
    });
    let flash = ctx.flash.clone().map(flash_view);
    let password_banner = ctx.viewer.must_change_password.then(|| {
        view! {
            <div class="flash warn" role="alert">
                "You signed in with a one-time password. "
                <a href="/account">"Choose your own password now."</a>
            </div>
        }
    });
    let body = view! {
        <div class="app">
            <aside class="sidebar">
                <a class="brand" href="/"><span class="brand-mark"></span>"Nubo"</a>
                <nav class="nav" aria-label="Main">
                    {nav_link(nav, Nav::Dashboard, "/", "Dashboard")}
                    {nav_link(nav, Nav::Repositories, "/repos", "Repositories")}
                    {nav_link(nav, Nav::Workspaces, "/workspaces", "Workspaces")}
                    {nav_link(nav, Nav::Builds, "/projects", "Builds")}
                    {nav_link(nav, Nav::Pipelines, "/pipelines", "Pipelines")}
                    {nav_link(nav, Nav::Deployments, "/deployments", "Deployments")}
                    <div class="nav-section">"Settings"</div>
                    {nav_link(nav, Nav::Account, "/account", "Account")}
                    {nav_link(nav, Nav::Tokens, "/account/tokens", "API tokens")}
                    {nav_link(nav, Nav::GitCredentials, "/account/git-credentials", "Git credentials")}
                    {admin_link}
                </nav>
                <div class="sidebar-foot">
                    <button type="button" class="link" data-theme-toggle hidden>
                        "Theme: " <span data-theme-label>"auto"</span>
                    </button>
                </div>
            </aside>
            <div class="main">
                <header class="topbar">
                    <h1>{ctx.title.clone()}</h1>
                    <div class="who">
                        <span data-testid="viewer">{ctx.viewer.name.clone()}</span>
                        <form class="inline" method="post" action="/logout">
                            <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                            <button type="submit" class="secondary">"Sign out"</button>
                        </form>
                    </div>
                </header>
                <main class="content">{password_banner} {flash} {content}</main>
            </div>
        </div>
    };
    document(&ctx.title, body)
}

pub(crate) fn flash_view(flash: Flash) -> impl IntoView {
    let (class, text) = match flash {
        Flash::Ok(text) => ("flash ok", text),
        Flash::Error(text) => ("flash error", text),
    };
    view! { <div class=class role="status">{text}</div> }
}
