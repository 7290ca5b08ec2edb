//! The workspaces' pages as a user sees them.

use super::*;
use crate::{FormEcho, Nav, Viewer};

fn ctx() -> PageContext {
    PageContext {
        title: "Workspaces".into(),
        nav: Nav::Workspaces,
        viewer: Viewer {
            name: "ann".into(),
            admin: false,
            must_change_password: false,
        },
        csrf: "csrf-123".into(),
        flash: None,
    }
}

/// Whether `html` has a `<tag …>` carrying all of `attrs` (Leptos may
/// order attributes differently from the source).
fn has_tag(html: &str, tag: &str, attrs: &[&str]) -> bool {
    html.match_indices(&format!("<{tag} "))
        .filter_map(|(at, _)| html[at..].split_once('>').map(|(open, _)| open))
        .any(|open| attrs.iter().all(|a| open.contains(a)))
}

fn ws(state: &str) -> WorkspaceRow {
    WorkspaceRow {
        id: "w1".into(),
        name: "dev <1>".into(),
        repo: Some("my-app".into()),
        backend: "local".into(),
        image: None,
        state: state.into(),
        started_at: Some(1_700_000_000_000),
        idle_timeout_minutes: 30,
        error: None,
    }
}

#[test]
fn unix_milliseconds_become_rfc3339() {
    assert_eq!(rfc3339_from_unix_ms(0), "1970-01-01T00:00:00Z");
    assert_eq!(
        rfc3339_from_unix_ms(1_700_000_000_123),
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        rfc3339_from_unix_ms(951_782_400_000),
        "2000-02-29T00:00:00Z"
    );
    assert_eq!(
        rfc3339_from_unix_ms(1_709_251_199_000),
        "2024-02-29T23:59:59Z"
    );
    assert_eq!(rfc3339_from_unix_ms(-1_000), "1969-12-31T23:59:59Z");
}

#[test]
fn empty_list_shows_the_empty_state_and_the_form() {
    let html = workspaces_page(&ctx(), &[], &["my-app".into()], &FormEcho::default());
    assert!(html.contains(r#"data-testid="empty-state""#), "{html}");
    assert!(html.contains("No workspaces yet"));
    assert!(has_tag(
        &html,
        "form",
        &[r#"method="post""#, r#"action="/workspaces""#]
    ));
    assert!(html.contains(r#"<option value="">(empty workspace)</option>"#));
    assert!(html.contains(r#"<option value="my-app">my-app</option>"#));
    assert!(html.contains(r#"name="idle_timeout_minutes" value="30""#));
    assert!(html.contains(r#"<option value="container">"#));
    assert!(html.contains(r#"name="csrf_token" value="csrf-123""#));
    assert!(html.contains(r#"href="/workspaces" aria-current="page""#));
}

#[test]
fn rows_link_to_the_ide_and_offer_the_fitting_actions() {
    let mut stopped = ws("stopped");
    stopped.id = "w2".into();
    stopped.name = "old".into();
    let html = workspaces_page(&ctx(), &[ws("running"), stopped], &[], &FormEcho::default());
    assert!(
        html.contains(r#"<a href="/workspaces/w1">dev &lt;1&gt;</a>"#),
        "{html}"
    );
    assert!(has_tag(
        &html,
        "span",
        &[r#"class="badge on""#, r#"data-state="running""#]
    ));
    assert!(html.contains(r#"action="/workspaces/w1/stop""#));
    assert!(!html.contains(r#"action="/workspaces/w1/start""#));
    assert!(html.contains(r#"action="/workspaces/w2/start""#));
    assert!(!html.contains(r#"action="/workspaces/w2/stop""#));
    assert!(has_tag(
        &html,
        "form",
        &[
            r#"action="/workspaces/w1/delete""#,
            r#"data-confirm="Delete the workspace dev &lt;1&gt;?"#
        ]
    ));
    assert!(html.contains(r#"<time datetime="2023-11-14T22:13:20Z" data-relative>"#));
}

#[test]
fn a_failed_workspace_shows_why() {
    let mut failed = ws("error");
    failed.error = Some("image not found".into());
    let html = workspaces_page(&ctx(), &[failed], &[], &FormEcho::default());
    assert!(has_tag(
        &html,
        "span",
        &[r#"class="badge off""#, r#"data-state="error""#]
    ));
    assert!(html.contains("image not found"));
}

#[test]
fn running_workspace_gets_the_ide_frame() {
    let html = workspace_ide_page(&ctx(), &ws("running"));
    assert!(
        has_tag(
            &html,
            "div",
            &[
                r#"id="ide""#,
                r#"data-workspace-id="w1""#,
                r#"data-api="/api/v1/workspaces/w1""#,
                r#"data-csrf="csrf-123""#,
                r#"data-state="running""#,
            ]
        ),
        "{html}"
    );
    for hook in [
        r#"id="file-tree""#,
        r#"id="editor-tabs""#,
        r#"id="terminal-tabs""#,
        r#"data-action="new-terminal""#,
        r#"data-action="save""#,
        r#"id="status-branch""#,
        r#"id="status-state""#,
        r#"id="preview-frame""#,
        r#"<script src="/assets/ide.js?v="#,
        r#"<link rel="stylesheet" href="/assets/ide.css?v="#,
        "<noscript>",
        r#"action="/workspaces/w1/stop""#,
    ] {
        assert!(html.contains(hook), "{hook} missing in {html}");
    }
    assert!(!html.contains(r#"action="/workspaces/w1/start""#));
    assert!(html.contains("<title>dev &lt;1&gt; · Workspace · Nubo</title>"));
}

#[test]
fn stopped_workspace_offers_a_start_form_instead() {
    let html = workspace_ide_page(&ctx(), &ws("stopped"));
    assert!(html.contains(r#"data-state="stopped""#));
    assert!(html.contains(r#"action="/workspaces/w1/start""#), "{html}");
    assert!(!html.contains(r#"id="file-tree""#));
    assert!(!html.contains(r#"data-wait"#));

    let starting = workspace_ide_page(&ctx(), &ws("starting"));
    assert!(starting.contains(r#"data-wait="true""#), "{starting}");
    assert!(!starting.contains(r#"action="/workspaces/w1/start""#));
}
