//! The builds' pages as a user sees them: status words, durations, the
//! phase timeline, the live log's hooks, escaping.

use super::*;
use crate::{FormEcho, Nav, Viewer};

pub(crate) fn ctx() -> PageContext {
    PageContext {
        title: "Builds".into(),
        nav: Nav::Builds,
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

/// The opening tag of the element with this id.
fn open_tag<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let start = html[..at].rfind('<').expect("a tag starts before the id");
    let end = at + html[at..].find('>').expect("the tag ends");
    &html[start..=end]
}

fn project() -> ProjectRow {
    ProjectRow {
        name: "my-app".into(),
        repo: "app-repo".into(),
        branch: "main".into(),
        buildspec_path: "ci/buildspec.yml".into(),
        inline_buildspec: None,
        image: None,
        timeout_minutes: 60,
        env: vec![],
        created_at: 1_700_000_000_000,
        last_status: Some("SUCCEEDED".into()),
        last_build_id: Some("b-7".into()),
    }
}

fn build(status: &str) -> BuildRow {
    BuildRow {
        id: "b-7".into(),
        project: "my-app".into(),
        number: 7,
        status: status.into(),
        current_phase: None,
        phases: vec![
            PhaseRow {
                phase: "INSTALL".into(),
                status: "SUCCEEDED".into(),
                duration_ms: 1_500,
            },
            PhaseRow {
                phase: "BUILD".into(),
                status: "FAILED".into(),
                duration_ms: 65_000,
            },
        ],
        branch: "main".into(),
        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        initiator: "ann".into(),
        queued_at: 1_700_000_000_000,
        started_at: Some(1_700_000_001_000),
        ended_at: Some(1_700_000_067_000),
        exported: vec![],
        reports: vec![],
        artifacts: 0,
        reason: None,
        batch: None,
        pipeline: None,
    }
}

#[test]
fn statuses_and_durations_read_well() {
    assert_eq!(status_label("IN_PROGRESS"), "In progress");
    assert_eq!(status_label("TIMED_OUT"), "Timed out");
    assert_eq!(status_label("SUCCEEDED"), "Succeeded");
    assert_eq!(status_label(""), "");
    assert_eq!(duration_text(0), "<1 s");
    assert_eq!(duration_text(999), "<1 s");
    assert_eq!(duration_text(42_400), "42 s");
    assert_eq!(duration_text(120_000), "2 min");
    assert_eq!(duration_text(185_000), "3 min 5 s");
    assert_eq!(duration_text(3_600_000), "1 h");
    assert_eq!(duration_text(3_725_000), "1 h 2 min");
    assert_eq!(short_commit("0123456789"), "0123456");
    assert_eq!(short_commit("abc"), "abc");
}

#[test]
fn the_builds_entry_leads_to_the_projects_and_pipelines_have_their_own() {
    let html = projects_page(&ctx(), &[], &[], &FormEcho::default());
    assert!(
        html.contains(r#"<a href="/projects" aria-current="page">Builds</a>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<a href="/pipelines">Pipelines</a>"#),
        "{html}"
    );
}

#[test]
fn no_projects_shows_the_empty_state_and_the_create_form() {
    let html = projects_page(
        &ctx(),
        &[],
        &["app-repo".into(), "lib <x>".into()],
        &FormEcho::default(),
    );
    assert!(html.contains(r#"data-testid="empty-state""#), "{html}");
    assert!(has_tag(
        &html,
        "form",
        &[
            r#"method="post""#,
            r#"action="/projects""#,
            r#"data-testid="create-project""#
        ]
    ));
    for field in [
        r#"name="csrf_token" value="csrf-123""#,
        r#"<option value="app-repo">app-repo</option>"#,
        r#"<option value="lib &lt;x&gt;">lib &lt;x&gt;</option>"#,
        r#"name="branch" value="main""#,
        r#"name="buildspec_path" value="buildspec.yml""#,
        r#"<textarea name="inline_buildspec""#,
        "Leave empty to use the file in the repository.",
        r#"name="image""#,
        "empty = run on the server's local runner",
        r#"<textarea name="env""#,
        "KEY=VALUE per line",
    ] {
        assert!(html.contains(field), "{field} missing in {html}");
    }
    assert!(has_tag(
        &html,
        "input",
        &[
            r#"name="timeout_minutes""#,
            r#"value="60""#,
            r#"min="5""#,
            r#"max="480""#
        ]
    ));
}

#[test]
fn without_repositories_the_form_says_to_create_one() {
    let html = projects_page(&ctx(), &[], &[], &FormEcho::default());
    assert!(
        html.contains(r#"<a href="/repos">create one</a>"#),
        "{html}"
    );
}

#[test]
fn projects_link_to_their_page_and_last_build() {
    let mut never = project();
    never.name = "other".into();
    never.last_status = None;
    never.last_build_id = None;
    let html = projects_page(&ctx(), &[project(), never], &[], &FormEcho::default());
    assert!(!html.contains(r#"data-testid="empty-state""#));
    assert!(
        html.contains(r#"<a href="/projects/my-app">my-app</a>"#),
        "{html}"
    );
    assert!(has_tag(
        &html,
        "a",
        &[
            r#"href="/builds/b-7""#,
            r#"class="badge status""#,
            r#"data-status="SUCCEEDED""#
        ]
    ));
    assert!(html.contains(">Succeeded</a>"));
    assert!(html.contains(r#"<tr data-project="other">"#));
    assert!(html.contains("never built"));
    assert!(html.contains(r#"<time datetime="2023-11-14T22:13:20Z" data-relative>"#));
}

#[test]
fn project_page_has_settings_forms_and_history() {
    let mut p = project();
    p.env = vec![("NODE_ENV".into(), "production".into())];
    p.image = Some("rust:1".into());
    let mut queued = build("QUEUED");
    queued.id = "b-8".into();
    queued.number = 8;
    queued.commit = None;
    queued.started_at = None;
    queued.ended_at = None;
    let html = project_page(
        &ctx(),
        &p,
        &[
            HistoryItem::Build(queued),
            HistoryItem::Build(build("FAILED")),
        ],
    );
    assert!(html.contains("ci/buildspec.yml"), "{html}");
    assert!(html.contains("<code>rust:1</code>"));
    assert!(html.contains("<code>NODE_ENV</code>"));
    assert!(html.contains(r#"<a href="/repos/app-repo">app-repo</a>"#));
    assert!(has_tag(
        &html,
        "form",
        &[
            r#"action="/projects/my-app/start""#,
            r#"data-testid="start-build""#
        ]
    ));
    assert!(has_tag(
        &html,
        "input",
        &[r#"name="branch""#, r#"placeholder="main""#]
    ));
    assert!(html.contains(r#"name="commit""#));
    assert!(has_tag(
        &html,
        "form",
        &[
            r#"action="/projects/my-app/delete""#,
            r#"data-confirm="Delete the build project my-app?"#
        ]
    ));
    assert!(html.contains(r#"data-testid="build-history""#));
    assert!(has_tag(
        &html,
        "tr",
        &[r#"data-build-id="b-7""#, r#"data-status="FAILED""#]
    ));
    assert!(has_tag(
        &html,
        "tr",
        &[r#"data-build-id="b-8""#, r#"data-status="QUEUED""#]
    ));
    assert!(html.contains(r#"<a href="/builds/b-7">#7</a>"#));
    assert!(
        html.contains(r#"<code title="0123456789abcdef0123456789abcdef01234567">0123456</code>"#)
    );
    // Started 1 s after queuing, ended 66 s later.
    assert!(html.contains("1 min 6 s"));
    assert!(html.contains(r#"<time datetime="2023-11-14T22:13:21Z" data-relative>"#));
}

#[test]
fn project_page_without_builds_and_with_an_inline_buildspec() {
    let mut p = project();
    p.inline_buildspec = Some("version: 0.2\n# <b>\n".into());
    let html = project_page(&ctx(), &p, &[]);
    assert!(html.contains(r#"data-testid="no-builds""#), "{html}");
    assert!(!html.contains(r#"data-testid="build-history""#));
    assert!(html.contains("inline (below)"));
    assert!(html.contains("version: 0.2\n# &lt;b&gt;\n"));
    assert!(html.contains("the server's local runner"));
}

#[test]
fn finished_build_shows_facts_phases_and_log_without_a_stop_form() {
    let mut b = build("FAILED");
    b.reason = Some("Phase BUILD failed: exit status 1".into());
    b.exported = vec![("VERSION".into(), "1.2.3".into())];
    b.artifacts = 3;
    let html = build_page(&ctx(), &b, "line <1>\nline 2\n");
    let status = open_tag(&html, "build-status");
    assert!(status.contains(r#"data-status="FAILED""#), "{status}");
    assert!(
        html.contains(r#"class="badge status">Failed</span>"#),
        "{html}"
    );
    assert!(html.contains(r#"<a href="/projects/my-app" data-testid="project-link">my-app</a>"#));
    assert!(html.contains("Build #7"));
    assert!(html.contains("Phase BUILD failed: exit status 1"));
    assert!(has_tag(
        &html,
        "li",
        &[r#"data-phase="BUILD""#, r#"data-status="FAILED""#]
    ));
    assert!(has_tag(
        &html,
        "li",
        &[r#"data-phase="INSTALL""#, r#"data-status="SUCCEEDED""#]
    ));
    assert!(html.contains("1 min 5 s"));
    assert!(!html.contains("aria-current=\"step\""));
    assert!(html.contains(r#"data-testid="exported-variables""#));
    assert!(html.contains("<code>VERSION</code>"));
    assert!(has_tag(
        &html,
        "a",
        &[
            r#"href="/api/v1/builds/b-7/artifacts.zip""#,
            r#"data-testid="artifacts""#
        ]
    ));
    assert!(html.contains("(3 files)"));
    assert!(!html.contains(r#"data-testid="stop-build""#));
    let log = open_tag(&html, "build-log");
    for attr in [
        r#"data-build-id="b-7""#,
        r#"data-stream="/api/v1/builds/b-7/log/stream""#,
        r#"data-status="FAILED""#,
    ] {
        assert!(log.contains(attr), "{attr} missing in {log}");
    }
    assert!(html.contains(">line &lt;1&gt;\nline 2\n</pre>"), "{html}");
    assert!(has_tag(&html, "a", &[r#"href="/api/v1/builds/b-7/log""#]));
    assert!(has_tag(
        &html,
        "p",
        &[r#"data-testid="log-truncated""#, "hidden"]
    ));
    assert!(!html.contains("<noscript>"));
}

#[test]
fn running_build_can_be_stopped_and_marks_its_current_phase() {
    let mut b = build("IN_PROGRESS");
    b.phases.truncate(1);
    b.current_phase = Some("BUILD".into());
    b.ended_at = None;
    let html = build_page(&ctx(), &b, "");
    assert!(has_tag(
        &html,
        "form",
        &[
            r#"action="/builds/b-7/stop""#,
            r#"method="post""#,
            r#"data-testid="stop-build""#
        ]
    ));
    assert!(has_tag(
        &html,
        "li",
        &[
            r#"data-phase="BUILD""#,
            r#"data-status="IN_PROGRESS""#,
            r#"aria-current="step""#
        ]
    ));
    assert!(has_tag(
        &html,
        "ol",
        &[r#"id="phase-timeline""#, r#"data-current-phase="BUILD""#]
    ));
    assert!(!html.contains("artifacts.zip"));
    assert!(html.contains("running"));
    assert!(html.contains("<noscript>"));
    assert!(open_tag(&html, "build-log").contains(r#"data-status="IN_PROGRESS""#));
}

#[test]
fn queued_build_without_phases_says_so() {
    let mut b = build("QUEUED");
    b.phases.clear();
    b.started_at = None;
    b.ended_at = None;
    let html = build_page(&ctx(), &b, "\nfirst line after a blank one\n");
    assert!(html.contains("No phases yet."), "{html}");
    assert!(
        html.contains("class=\"build-log\">\n\nfirst line"),
        "{html}"
    );
    assert!(html.contains(r#"data-testid="stop-build""#));
    assert!(html.contains(r#"id="build-log""#));
}

#[test]
fn a_refused_form_comes_back_filled_in_with_the_error_at_its_field() {
    let echo = FormEcho {
        values: [
            ("name".to_string(), "my <b>app</b>".to_string()),
            ("repo".to_string(), "lib <x>".to_string()),
            ("inline_buildspec".to_string(), "\nversion: 0.2".to_string()),
        ]
        .into(),
        field: Some("inline_buildspec".into()),
        error: Some("The inline buildspec is not valid: <here>".into()),
    };
    let html = projects_page(&ctx(), &[], &["app-repo".into(), "lib <x>".into()], &echo);
    assert!(
        html.contains(r#"value="my &lt;b&gt;app&lt;/b&gt;""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<option value="lib &lt;x&gt;" selected"#),
        "{html}"
    );
    assert!(
        !html.contains(r#"<option value="app-repo" selected"#),
        "{html}"
    );
    // The leading newline survives HTML's rule for <textarea>.
    assert!(html.contains(">\n\nversion: 0.2</textarea>"), "{html}");
    assert!(
        html.contains(
            r#"data-error-for="inline_buildspec" class="field-error">The inline buildspec is not valid: &lt;here&gt;"#
        ),
        "{html}"
    );
    assert_eq!(html.matches(r#"aria-invalid="true""#).count(), 1, "{html}");
}
