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
pub(crate) fn status_label(status: &str) -> String {
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

/// The inline buildspec, when the project has a non-blank one.
fn inline_buildspec(project: &ProjectRow) -> Option<&str> {
    project
        .inline_buildspec
        .as_deref()
        .filter(|spec| !spec.trim().is_empty())
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

/// Build projects: the list, and the form to create one.
///
/// `repos` are the repositories the viewer may build.
pub fn projects_page(ctx: &PageContext, projects: &[ProjectRow], repos: &[String]) -> String {
    let list = if projects.is_empty() {
        view! {
            <section class="card empty" data-testid="empty-state">
                <h2>"No build projects yet"</h2>
                <p>"A build project runs the buildspec.yml of a repository: on demand, with a live log, exported variables and artifacts. Create one below."</p>
            </section>
        }
        .into_any()
    } else {
        let rows = projects.iter().map(project_list_row).collect_view();
        view! {
            <section class="card">
                <h2>"Build projects"</h2>
                <table class="projects" data-testid="projects">
                    <thead><tr>
                        <th>"Name"</th><th>"Repository"</th><th>"Branch"</th>
                        <th>"Last build"</th><th>"Created"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
        }
        .into_any()
    };
    let repo_choice = if repos.is_empty() {
        view! {
            <select name="repo" required>
                <option value="" disabled selected>"(no repositories)"</option>
            </select>
            <span class="hint">"You have no repository to build yet: " <a href="/repos">"create one"</a> " first."</span>
        }
        .into_any()
    } else {
        let options = repos
            .iter()
            .map(|r| view! { <option value=r.clone()>{r.clone()}</option> })
            .collect_view();
        view! { <select name="repo" required>{options}</select> }.into_any()
    };
    let content = view! {
        {list}
        <section class="card">
            <h2>"Create a build project"</h2>
            <form class="stack wide" method="post" action="/projects" data-testid="create-project">
                {csrf_input(&ctx.csrf)}
                <label>"Name"
                    <input type="text" name="name" minlength="2" maxlength="255"
                        pattern="[A-Za-z0-9][A-Za-z0-9_\\-]{1,254}" placeholder="my-app-build" required
                        title="2 to 255 letters, digits, hyphens and underscores, starting with a letter or digit"/>
                </label>
                <label>"Repository" {repo_choice}</label>
                <label>"Branch"
                    <input type="text" name="branch" value="main" maxlength="255" required/>
                </label>
                <label>"Buildspec file"
                    <input type="text" name="buildspec_path" value="buildspec.yml" maxlength="1024" required/>
                    <span class="hint">"Its path in the repository."</span>
                </label>
                <label>"Inline buildspec (optional)"
                    <textarea name="inline_buildspec" rows="8" class="mono" spellcheck="false"
                        placeholder="version: 0.2\nphases:\n  build:\n    commands:\n      - make test"></textarea>
                    <span class="hint">"Leave empty to use the file in the repository."</span>
                </label>
                <label>"Image (optional)"
                    <input type="text" name="image" maxlength="255" placeholder="docker.io/library/rust:1"/>
                    <span class="hint">"Container image; empty = run on the server's local runner."</span>
                </label>
                <label>"Timeout in minutes"
                    <input type="number" name="timeout_minutes" value="60" min="5" max="480" required/>
                </label>
                <label>"Container limits (optional; empty = the server's): memory MiB, CPUs, processes"
                    <span class="row-form">
                        <input type="number" name="memory_mb" min="64" placeholder="memory MiB"/>
                        <input type="number" name="cpus" min="0.1" step="0.1" placeholder="CPUs"/>
                        <input type="number" name="pids" min="16" placeholder="processes"/>
                    </span>
                </label>
                <label>"Environment variables (optional)"
                    <textarea name="env" rows="4" class="mono" spellcheck="false"
                        placeholder="NODE_ENV=production\nLOG_LEVEL=debug"></textarea>
                    <span class="hint">"KEY=VALUE per line."</span>
                </label>
                <button type="submit">"Create build project"</button>
            </form>
        </section>
    };
    crate::layout::shell(ctx, content)
}

fn project_list_row(project: &ProjectRow) -> impl IntoView {
    let href = format!("/projects/{}", project.name);
    let last = match (&project.last_status, &project.last_build_id) {
        (Some(status), Some(id)) => {
            let build_href = format!("/builds/{id}");
            view! {
                <a class="badge status" href=build_href data-status=status.clone()
                    data-testid="last-status">{status_label(status)}</a>
            }
            .into_any()
        }
        _ => view! { <span class="muted">"never built"</span> }.into_any(),
    };
    view! {
        <tr data-project=project.name.clone()>
            <td><a href=href>{project.name.clone()}</a></td>
            <td>{project.repo.clone()}</td>
            <td><code>{project.branch.clone()}</code></td>
            <td>{last}</td>
            <td>{time_view(Some(project.created_at))}</td>
        </tr>
    }
}

/// One build project: its settings, the forms to start a build and to
/// delete the project, and its build history (newest first, as given).
pub fn project_page(ctx: &PageContext, project: &ProjectRow, history: &[HistoryItem]) -> String {
    let name = &project.name;
    let repo_href = format!("/repos/{}", project.repo);
    let buildspec = match inline_buildspec(project) {
        Some(_) => view! { <span>"inline (below)"</span> }.into_any(),
        None => view! { <code>{project.buildspec_path.clone()}</code> }.into_any(),
    };
    let image = match project.image.as_deref().filter(|i| !i.is_empty()) {
        Some(image) => view! { <code>{image.to_string()}</code> }.into_any(),
        None => view! { <span class="muted">"none: the server's local runner"</span> }.into_any(),
    };
    let last = match (&project.last_status, &project.last_build_id) {
        (Some(status), Some(id)) => {
            let href = format!("/builds/{id}");
            view! { <a class="badge status" href=href data-status=status.clone()>{status_label(status)}</a> }
                .into_any()
        }
        _ => view! { <span class="muted">"never built"</span> }.into_any(),
    };
    let inline = inline_buildspec(project).map(|spec| {
        view! {
            <h3>"Inline buildspec"</h3>
            <pre class="code" data-testid="inline-buildspec">{spec.to_string()}</pre>
        }
    });
    let env = (!project.env.is_empty()).then(|| {
        view! {
            <h3>"Environment variables"</h3>
            {env_table(&project.env, "project-env")}
        }
    });
    let history = if history.is_empty() {
        view! { <p class="muted" data-testid="no-builds">"No builds yet. Start one above."</p> }
            .into_any()
    } else {
        let rows = history
            .iter()
            .map(|item| match item {
                HistoryItem::Build(b) => history_row(b).into_any(),
                HistoryItem::Batch(b) => crate::batches::history_rows(b).into_any(),
            })
            .collect_view();
        view! {
            <table class="builds" data-testid="build-history">
                <thead><tr>
                    <th>"Build"</th><th>"Status"</th><th>"Branch"</th><th>"Commit"</th>
                    <th>"Initiator"</th><th>"Started"</th><th>"Duration"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let start_action = format!("/projects/{name}/start");
    let delete_action = format!("/projects/{name}/delete");
    let confirm = format!("Delete the build project {name}? This cannot be undone.");
    let content = view! {
        <nav class="crumbs" aria-label="Breadcrumbs">
            <a href="/projects">"Builds"</a>" / "<span>{name.clone()}</span>
        </nav>
        <section class="card" data-testid="project-settings">
            <h2>"Settings"</h2>
            <dl class="facts">
                <dt>"Repository"</dt><dd><a href=repo_href>{project.repo.clone()}</a></dd>
                <dt>"Branch"</dt><dd><code>{project.branch.clone()}</code></dd>
                <dt>"Buildspec"</dt><dd>{buildspec}</dd>
                <dt>"Image"</dt><dd>{image}</dd>
                <dt>"Timeout"</dt><dd>{format!("{} min", project.timeout_minutes)}</dd>
                <dt>"Created"</dt><dd>{time_view(Some(project.created_at))}</dd>
                <dt>"Last build"</dt><dd>{last}</dd>
            </dl>
            {inline}
            {env}
        </section>
        <section class="card">
            <h2>"Start a build"</h2>
            <form class="row-form" method="post" action=start_action data-testid="start-build">
                {csrf_input(&ctx.csrf)}
                <label>"Branch"
                    <input type="text" name="branch" maxlength="255" placeholder=project.branch.clone()/>
                </label>
                <label>"Commit (optional)"
                    <input type="text" name="commit" maxlength="64" placeholder="the branch's latest" class="mono"/>
                </label>
                <button type="submit">"Start build"</button>
            </form>
        </section>
        <section class="card">
            <h2>"Build history"</h2>
            {history}
        </section>
        <section class="card">
            <h2>"Delete this project"</h2>
            <form method="post" action=delete_action data-confirm=confirm data-testid="delete-project">
                {csrf_input(&ctx.csrf)}
                <button type="submit" class="danger">"Delete project"</button>
            </form>
        </section>
    };
    crate::layout::shell(ctx, content)
}

fn history_row(build: &BuildRow) -> impl IntoView {
    let href = format!("/builds/{}", build.id);
    view! {
        <tr data-build-id=build.id.clone() data-status=build.status.clone()>
            <td><a href=href>{format!("#{}", build.number)}</a></td>
            <td>{status_badge(&build.status, None)}</td>
            <td><code>{build.branch.clone()}</code></td>
            <td>{commit_view(build.commit.as_ref())}</td>
            <td>{build.initiator.clone()}</td>
            <td>{time_view(build.started_at)}</td>
            <td>{duration_view(build)}</td>
        </tr>
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Nav, Viewer};

    pub(crate) fn ctx() -> PageContext {
        PageContext {
            title: "Builds".into(),
            nav: Nav::Pipelines,
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
    fn the_builds_entry_leads_to_the_projects() {
        let html = projects_page(&ctx(), &[], &[]);
        assert!(
            html.contains(r#"<a href="/projects" aria-current="page">Builds</a>"#),
            "{html}"
        );
        assert!(!html.contains(">Pipelines</a>"));
    }

    #[test]
    fn no_projects_shows_the_empty_state_and_the_create_form() {
        let html = projects_page(&ctx(), &[], &["app-repo".into(), "lib <x>".into()]);
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
        let html = projects_page(&ctx(), &[], &[]);
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
        let html = projects_page(&ctx(), &[project(), never], &[]);
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
        assert!(html
            .contains(r#"<code title="0123456789abcdef0123456789abcdef01234567">0123456</code>"#));
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
        assert!(
            html.contains(r#"<a href="/projects/my-app" data-testid="project-link">my-app</a>"#)
        );
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
}
