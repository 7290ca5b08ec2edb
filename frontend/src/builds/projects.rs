//! The build projects page (the list and the create form) and one
//! project's page (its settings and build history, batches as one row).

use leptos::prelude::*;

use super::*;
use crate::workspaces::csrf_input;
use crate::{textarea_text, FormEcho, PageContext};

/// The inline buildspec, when the project has a non-blank one.
fn inline_buildspec(project: &ProjectRow) -> Option<&str> {
    project
        .inline_buildspec
        .as_deref()
        .filter(|spec| !spec.trim().is_empty())
}

/// Build projects: the list, and the form to create one.
///
/// `repos` are the repositories the viewer may build.
/// `echo` fills the create form again after a refusal.
pub fn projects_page(
    ctx: &PageContext,
    projects: &[ProjectRow],
    repos: &[String],
    echo: &FormEcho,
) -> String {
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
        let chosen = echo.value("repo", "");
        let options = repos
            .iter()
            .map(|r| view! { <option value=r.clone() selected=*r == chosen>{r.clone()}</option> })
            .collect_view();
        view! { <select name="repo" required aria-invalid=echo.invalid("repo")>{options}</select> }
            .into_any()
    };
    let content = view! {
        {list}
        <section class="card">
            <h2>"Create a build project"</h2>
            <form class="stack wide" method="post" action="/projects" data-testid="create-project">
                {csrf_input(&ctx.csrf)}
                {echo.form_error()}
                <label>"Name"
                    <input type="text" name="name" minlength="2" maxlength="255"
                        pattern="[A-Za-z0-9][A-Za-z0-9_\\-]{1,254}" placeholder="my-app-build" required
                        value=echo.value("name", "") aria-invalid=echo.invalid("name")
                        title="2 to 255 letters, digits, hyphens and underscores, starting with a letter or digit"/>
                    {echo.error_for("name")}
                </label>
                <label>"Repository" {repo_choice} {echo.error_for("repo")}</label>
                <label>"Branch"
                    <input type="text" name="branch" value=echo.value("branch", "main") maxlength="255" required/>
                </label>
                <label>"Buildspec file"
                    <input type="text" name="buildspec_path" value=echo.value("buildspec_path", "buildspec.yml")
                        maxlength="1024" required aria-invalid=echo.invalid("buildspec_path")/>
                    {echo.error_for("buildspec_path")}
                    <span class="hint">"Its path in the repository."</span>
                </label>
                <label>"Inline buildspec (optional)"
                    <textarea name="inline_buildspec" rows="8" class="mono" spellcheck="false"
                        aria-invalid=echo.invalid("inline_buildspec")
                        placeholder="version: 0.2\nphases:\n  build:\n    commands:\n      - make test">{textarea_text(echo.value("inline_buildspec", ""))}</textarea>
                    {echo.error_for("inline_buildspec")}
                    <span class="hint">"Leave empty to use the file in the repository."</span>
                </label>
                <label>"Image (optional)"
                    <input type="text" name="image" maxlength="255" placeholder="docker.io/library/rust:1"
                        value=echo.value("image", "") aria-invalid=echo.invalid("image")/>
                    {echo.error_for("image")}
                    <span class="hint">"Container image; empty = run on the server's local runner."</span>
                </label>
                <label>"Timeout in minutes"
                    <input type="number" name="timeout_minutes" value=echo.value("timeout_minutes", "60") min="5" max="480" required
                        aria-invalid=echo.invalid("timeout_minutes")/>
                    {echo.error_for("timeout_minutes")}
                </label>
                <label>"Container limits (optional; empty = the server's): memory MiB, CPUs, processes"
                    <span class="row-form">
                        <input type="number" name="memory_mb" min="64" placeholder="memory MiB"
                            value=echo.value("memory_mb", "") aria-invalid=echo.invalid("memory_mb")/>
                        <input type="number" name="cpus" min="0.1" step="0.1" placeholder="CPUs" value=echo.value("cpus", "")/>
                        <input type="number" name="pids" min="16" placeholder="processes" value=echo.value("pids", "")/>
                    </span>
                    {echo.error_for("memory_mb")}
                </label>
                <label>"Environment variables (optional)"
                    <textarea name="env" rows="4" class="mono" spellcheck="false" aria-invalid=echo.invalid("env")
                        placeholder="NODE_ENV=production\nLOG_LEVEL=debug">{textarea_text(echo.value("env", ""))}</textarea>
                    {echo.error_for("env")}
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
