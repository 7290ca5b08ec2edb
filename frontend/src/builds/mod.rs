//! Builds (CodeBuild's console part): the list of build projects with the
//! form to create one, one project with its build history, and one build
//! with its phases and log.
//!
//! Everything works without JavaScript (plain forms, post/redirect/get; the
//! log as it was when the page was rendered). With it, the build page's log
//! and phase timeline follow a running build live: `web/src/builds/live.ts`
//! reads the hooks below, which browser tests also select on, so keep them
//! stable:
//!
//! - `[data-testid=create-project]` the create form (`POST /projects`);
//!   `tr[data-project=NAME]` rows of the project list
//! - `[data-testid=start-build]` (`POST /projects/{name}/start`),
//!   `[data-testid=delete-project]` (`POST /projects/{name}/delete`)
//! - `table[data-testid=build-history]` with `tr[data-build-id][data-status]`
//! - `#build-overview` everything above the log (summary, phases, exported
//!   variables, reports); replaced by a fresh render when the build ends
//! - `#build-status[data-status]` the build's status badge
//! - `#phase-timeline` with `li[data-phase][data-status]`; the current phase
//!   carries `aria-current="step"`
//! - `[data-testid=stop-build]` (`POST /builds/{id}/stop`), only while the
//!   build is queued or in progress
//! - `pre#build-log[data-build-id][data-stream][data-status]` the log; the
//!   island adds `data-live="true"` once connected and `data-ended="true"`
//!   after the build ended
//! - `[data-testid=log-truncated]` the notice shown when the live view
//!   dropped early lines; `[data-action=follow-log]` resumes following

use leptos::prelude::*;

use crate::workspaces::{csrf_input, rfc3339_from_unix_ms};
use crate::PageContext;

mod projects;

pub use projects::{project_page, projects_page};

/// A build project as the pages show it.
#[derive(Debug, Clone)]
pub struct ProjectRow {
    pub name: String,
    /// The repository the project builds.
    pub repo: String,
    /// The branch built when a build does not name one.
    pub branch: String,
    /// Where the buildspec is in the repository, when there is no inline one.
    pub buildspec_path: String,
    /// A buildspec stored with the project, used instead of the file.
    pub inline_buildspec: Option<String>,
    /// The container image; `None` runs on the server's local runner.
    pub image: Option<String>,
    pub timeout_minutes: i64,
    /// Environment variables set for every build, in order.
    pub env: Vec<(String, String)>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The status of the newest build, if there is one.
    pub last_status: Option<String>,
    pub last_build_id: Option<String>,
}

/// One phase of a build, in the order it ran.
#[derive(Debug, Clone)]
pub struct PhaseRow {
    /// `SUBMITTED`, `QUEUED`, …, `BUILD`, …, `COMPLETED`.
    pub phase: String,
    /// `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `FAULT`, `TIMED_OUT`, `STOPPED`.
    pub status: String,
    pub duration_ms: u64,
}

/// One report group of a build: counts and the failing tests.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub group: String,
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Failing tests: (suite, name, message).
    pub failures: Vec<(String, String, String)>,
}

/// A build as its pages show it.
#[derive(Debug, Clone)]
pub struct BuildRow {
    pub id: String,
    /// The project's name.
    pub project: String,
    /// Counts up from 1 within the project.
    pub number: i64,
    /// `QUEUED`, `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `STOPPED` or `TIMED_OUT`.
    pub status: String,
    pub current_phase: Option<String>,
    pub phases: Vec<PhaseRow>,
    pub branch: String,
    /// The commit built, once resolved.
    pub commit: Option<String>,
    /// Who or what started it (a user name, `webhook`, …).
    pub initiator: String,
    /// Unix milliseconds, like the other times.
    pub queued_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Exported variables (`env.exported-variables`) with their final values.
    pub exported: Vec<(String, String)>,
    /// How many artifact files the build uploaded.
    pub artifacts: i64,
    /// Why it ended as it did, when it did not succeed.
    pub reason: Option<String>,
    /// Test reports (JUnit report groups).
    pub reports: Vec<ReportRow>,
    /// The batch it is part of, if any.
    pub batch: Option<BatchLink>,
    /// The pipeline execution that started it: (pipeline, execution id).
    pub pipeline: Option<(String, String)>,
}

/// Where a build of a batch belongs: the batch and the build's identifier.
#[derive(Debug, Clone)]
pub struct BatchLink {
    pub batch_id: String,
    pub identifier: String,
}

/// One entry of a project's history: a build, or a batch with its builds.
#[derive(Debug, Clone)]
pub enum HistoryItem {
    Build(BuildRow),
    Batch(crate::batches::BatchRow),
}

/// Whether a build with this status may still change (and can be stopped).
pub(crate) fn is_active(status: &str) -> bool {
    matches!(status, "QUEUED" | "IN_PROGRESS")
}

/// `IN_PROGRESS` → `In progress`. Mirrored by `statusLabel` in
/// `web/src/builds/log_window.ts` for live updates.
pub fn status_label(status: &str) -> String {
    let mut label = String::with_capacity(status.len());
    for (i, c) in status.chars().enumerate() {
        match c {
            '_' => label.push(' '),
            c if i == 0 => label.extend(c.to_uppercase()),
            c => label.extend(c.to_lowercase()),
        }
    }
    label
}

/// A status badge; its colour comes from `data-status` in the stylesheet,
/// so the island only has to change the attribute and the text.
pub(crate) fn status_badge(status: &str, id: Option<&'static str>) -> impl IntoView {
    view! {
        <span class="badge status" id=id data-status=status.to_string()>{status_label(status)}</span>
    }
}

/// A duration for people: `<1 s`, `42 s`, `3 min 5 s`, `1 h 2 min`.
/// Mirrored by `durationText` in `web/src/builds/log_window.ts`.
pub(crate) fn duration_text(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0 => "<1 s".to_string(),
        1..=59 => format!("{secs} s"),
        60..=3599 if secs.is_multiple_of(60) => format!("{} min", secs / 60),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ if secs % 3600 / 60 == 0 => format!("{} h", secs / 3600),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// How long a build ran; `None` until it has started and ended.
pub(crate) fn build_duration(build: &BuildRow) -> Option<u64> {
    let (start, end) = (build.started_at?, build.ended_at?);
    u64::try_from(end.saturating_sub(start)).ok()
}

fn short_commit(commit: &str) -> String {
    commit.chars().take(7).collect()
}

fn dash() -> AnyView {
    view! { <span class="muted">"—"</span> }.into_any()
}

/// A moment as a relative time (made relative by the islands; the exact
/// time without JavaScript and in the tooltip).
pub(crate) fn time_view(ms: Option<i64>) -> AnyView {
    match ms {
        Some(ms) => {
            let at = rfc3339_from_unix_ms(ms);
            view! { <time datetime=at.clone() data-relative>{at.clone()}</time> }.into_any()
        }
        None => dash(),
    }
}

pub(crate) fn commit_view(commit: Option<&String>) -> AnyView {
    match commit {
        Some(c) if !c.is_empty() => {
            view! { <code title=c.clone()>{short_commit(c)}</code> }.into_any()
        }
        _ => dash(),
    }
}

pub(crate) fn duration_view(build: &BuildRow) -> AnyView {
    match build_duration(build) {
        Some(ms) => view! { <span>{duration_text(ms)}</span> }.into_any(),
        None if build.status == "IN_PROGRESS" => {
            view! { <span class="muted">"running"</span> }.into_any()
        }
        None => dash(),
    }
}

/// One build: its status, facts, phases, exported variables, artifacts and
/// log. `log` is the log so far (or its tail; the server decides), shown
/// as is without JavaScript; the island replaces it with the live stream.
pub fn build_page(ctx: &PageContext, build: &BuildRow, log: &str) -> String {
    let id = &build.id;
    let active = is_active(&build.status);
    let project_href = format!("/projects/{}", build.project);
    let stop = active.then(|| {
        let action = format!("/builds/{id}/stop");
        view! {
            <form class="inline" method="post" action=action data-testid="stop-build">
                {csrf_input(&ctx.csrf)}
                <button type="submit" class="danger small">"Stop build"</button>
            </form>
        }
    });
    let artifacts = (build.artifacts > 0).then(|| {
        let href = format!("/api/v1/builds/{id}/artifacts.zip");
        let label = match build.artifacts {
            1 => "Download artifacts (1 file)".to_string(),
            n => format!("Download artifacts ({n} files)"),
        };
        view! { <a class="button secondary small" href=href data-testid="artifacts" download>{label}</a> }
    });
    let reason = build.reason.clone().filter(|r| !r.is_empty()).map(|r| {
        let class = if build.status == "SUCCEEDED" {
            "build-reason"
        } else {
            "build-reason problem"
        };
        view! { <p class=class data-testid="build-reason">{r}</p> }
    });
    let exported = (!build.exported.is_empty()).then(|| {
        view! {
            <section class="card">
                <h2>"Exported variables"</h2>
                {env_table(&build.exported, "exported-variables")}
            </section>
        }
    });
    let reports = (!build.reports.is_empty()).then(|| {
        let groups = build
            .reports
            .iter()
            .map(|r| {
                let failures = r
                    .failures
                    .iter()
                    .map(|(suite, name, message)| {
                        view! { <li><code>{format!("{suite} › {name}")}</code>" "<span class="muted">{message.clone()}</span></li> }
                    })
                    .collect_view();
                view! {
                    <div class="report" data-report=r.group.clone() data-failed=r.failed.to_string()>
                        <h3>{r.group.clone()}</h3>
                        <p>
                            {format!("{} tests: ", r.total)}
                            <span class="ok">{format!("{} passed", r.passed)}</span>", "
                            <span class="bad">{format!("{} failed", r.failed)}</span>", "
                            {format!("{} skipped", r.skipped)}
                        </p>
                        <ul class="failures">{failures}</ul>
                    </div>
                }
            })
            .collect_view();
        view! {
            <section class="card" data-testid="reports">
                <h2>"Test reports"</h2>
                {groups}
            </section>
        }
    });
    let batch_crumb = build.batch.as_ref().map(|b| {
        let href = format!("/batches/{}", b.batch_id);
        view! { <a href=href data-testid="batch-link">"Batch"</a>" / " }
    });
    let pipeline_fact = build.pipeline.as_ref().map(|(p, e)| {
        let href = format!("/pipelines/{p}/executions/{e}");
        view! { <dt>"Pipeline"</dt><dd><a href=href data-testid="pipeline-link">{p.clone()}</a></dd> }
    });
    let batch_fact = build.batch.as_ref().map(|b| {
        view! { <dt>"Batch identifier"</dt><dd><code data-testid="batch-identifier">{b.identifier.clone()}</code></dd> }
    });
    let log_href = format!("/api/v1/builds/{id}/log");
    // HTML drops a newline right after `<pre>`: double a leading one.
    let log = if log.starts_with('\n') {
        format!("\n{log}")
    } else {
        log.to_string()
    };
    let content = view! {
        <nav class="crumbs" aria-label="Breadcrumbs">
            <a href="/projects">"Builds"</a>" / "
            <a href=project_href data-testid="project-link">{build.project.clone()}</a>" / "
            {batch_crumb}
            <span>{format!("#{}", build.number)}</span>
        </nav>
        <div id="build-overview">
        <section class="card" data-testid="build-summary">
            <div class="build-head">
                <h2>{format!("Build #{}", build.number)}</h2>
                {status_badge(&build.status, Some("build-status"))}
                <div class="build-actions">{artifacts}{stop}</div>
            </div>
            {reason}
            <dl class="facts">
                <dt>"Branch"</dt><dd><code>{build.branch.clone()}</code></dd>
                <dt>"Commit"</dt><dd>{commit_view(build.commit.as_ref())}</dd>
                <dt>"Initiator"</dt><dd>{build.initiator.clone()}</dd>
                {batch_fact}
                {pipeline_fact}
                <dt>"Queued"</dt><dd>{time_view(Some(build.queued_at))}</dd>
                <dt>"Started"</dt><dd>{time_view(build.started_at)}</dd>
                <dt>"Ended"</dt><dd>{time_view(build.ended_at)}</dd>
                <dt>"Duration"</dt><dd>{duration_view(build)}</dd>
            </dl>
        </section>
        <section class="card">
            <h2>"Phases"</h2>
            {phase_timeline(build)}
        </section>
        {exported}
        {reports}
        </div>
        <section class="card log-card">
            <div class="log-head">
                <h2>"Log"</h2>
                <div class="log-tools">
                    <button type="button" class="secondary small" data-action="follow-log" hidden>"Follow"</button>
                    <a class="button secondary small" href=log_href.clone() data-testid="full-log">"Full log"</a>
                </div>
            </div>
            <p class="log-notice" data-testid="log-truncated" hidden>
                "[earlier lines hidden; "<a href=log_href>"download the full log"</a>"]"
            </p>
            <pre id="build-log" class="build-log" data-build-id=id.clone()
                data-stream=format!("/api/v1/builds/{id}/log/stream")
                data-status=build.status.clone()>{log}</pre>
            {active.then(|| view! {
                <noscript><p class="muted">"The build is still running: reload the page to see more of the log."</p></noscript>
            })}
        </section>
    };
    crate::layout::shell(ctx, content)
}

/// The phases as an ordered list. The current phase of a running build is
/// marked, and listed as in progress if the server has no row for it yet.
fn phase_timeline(build: &BuildRow) -> impl IntoView {
    let current = build
        .current_phase
        .clone()
        .filter(|_| is_active(&build.status));
    let mut phases = build.phases.clone();
    if let Some(current) = &current {
        if !phases.iter().any(|p| &p.phase == current) {
            phases.push(PhaseRow {
                phase: current.clone(),
                status: "IN_PROGRESS".into(),
                duration_ms: 0,
            });
        }
    }
    let empty = phases
        .is_empty()
        .then(|| view! { <li class="timeline-empty muted">"No phases yet."</li> });
    let items = phases
        .into_iter()
        .map(|p| {
            let is_current = current.as_deref() == Some(p.phase.as_str());
            let duration = if p.status == "IN_PROGRESS" {
                String::new()
            } else {
                duration_text(p.duration_ms)
            };
            view! {
                <li class="phase" data-phase=p.phase.clone() data-status=p.status.clone()
                    aria-current=is_current.then_some("step")>
                    <span class="phase-name">{p.phase.clone()}</span>
                    <span class="phase-status">{status_label(&p.status)}</span>
                    <span class="phase-duration">{duration}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <ol id="phase-timeline" class="timeline" data-current-phase=current.clone()>
            {empty}
            {items}
        </ol>
    }
}

fn env_table(vars: &[(String, String)], testid: &'static str) -> impl IntoView {
    let rows = vars
        .iter()
        .map(|(key, value)| {
            view! { <tr><td><code>{key.clone()}</code></td><td><code class="wrap">{value.clone()}</code></td></tr> }
        })
        .collect_view();
    view! {
        <table class="vars" data-testid=testid>
            <thead><tr><th>"Name"</th><th>"Value"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[cfg(test)]
pub(crate) mod tests;
