//! Workspaces: the list with its create form, and the browser IDE of one
//! workspace.
//!
//! The list works without JavaScript (plain forms, post/redirect/get). The
//! IDE page is the frame the `ide.js` bundle fills: its element ids and
//! `data-*` hooks are documented at the top of `web/src/ide.ts` and are what
//! the browser tests select on, so keep them stable.

use leptos::prelude::*;

use crate::layout::{document_with, flash_view, shell};
use crate::{Flash, FormEcho, PageContext};

/// A workspace as the pages show it.
#[derive(Debug, Clone)]
pub struct WorkspaceRow {
    pub id: String,
    pub name: String,
    /// The repository cloned into it; `None` for an empty workspace.
    pub repo: Option<String>,
    /// `local` or `container`.
    pub backend: String,
    /// The container image; `None` means the default image.
    pub image: Option<String>,
    /// `creating`, `starting`, `running`, `stopping`, `stopped` or `error`.
    pub state: String,
    /// When it last started, in Unix milliseconds.
    pub started_at: Option<i64>,
    pub idle_timeout_minutes: i64,
    /// Why it is in the `error` state.
    pub error: Option<String>,
}

/// States in which the workspace is on its way somewhere and the page
/// should wait for it.
fn is_transitional(state: &str) -> bool {
    matches!(state, "creating" | "starting" | "stopping")
}

/// States from which the workspace can be stopped.
fn can_stop(state: &str) -> bool {
    matches!(state, "creating" | "starting" | "running")
}

/// States from which the workspace can be started.
fn can_start(state: &str) -> bool {
    matches!(state, "stopped" | "error")
}

fn state_badge_class(state: &str) -> &'static str {
    match state {
        "running" => "badge on",
        "error" => "badge off",
        "creating" | "starting" | "stopping" => "badge busy",
        _ => "badge",
    }
}

fn state_badge(state: &str, id: Option<&'static str>) -> impl IntoView {
    view! {
        <span class=state_badge_class(state) id=id data-state=state.to_string()>{state.to_string()}</span>
    }
}

/// Unix milliseconds as an RFC 3339 UTC timestamp (`2023-11-14T22:13:20Z`),
/// the form `<time data-relative>` elements carry.
pub(crate) fn rfc3339_from_unix_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Days since 1970-01-01 to a proleptic Gregorian date, counting in
    // 400-year eras that start on 0000-03-01 so leap days fall at the end of
    // a year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

fn started_view(ws: &WorkspaceRow) -> AnyView {
    match ws.started_at {
        Some(ms) if ws.state != "stopped" => {
            let at = rfc3339_from_unix_ms(ms);
            view! { <time datetime=at.clone() data-relative>{at.clone()}</time> }.into_any()
        }
        _ => view! { <span class="muted">"—"</span> }.into_any(),
    }
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf_input(csrf: &str) -> impl IntoView {
    view! { <input type="hidden" name="csrf_token" value=csrf.to_string()/> }
}

/// The workspace list and the form to create one.
///
/// `repos` are the repositories the viewer may clone into a new workspace.
/// `echo` fills the create form again after a refusal.
pub fn workspaces_page(
    ctx: &PageContext,
    list: &[WorkspaceRow],
    repos: &[String],
    echo: &FormEcho,
) -> String {
    let list_view = if list.is_empty() {
        view! {
            <section class="card empty" data-testid="empty-state">
                <h2>"No workspaces yet"</h2>
                <p>"A workspace gives you an editor, a file tree and terminals in the browser, with a repository cloned in or empty. Create one below."</p>
            </section>
        }
        .into_any()
    } else {
        let rows = list.iter().map(|ws| workspace_row(ctx, ws)).collect_view();
        view! {
            <section class="card">
                <h2>"Your workspaces"</h2>
                <table class="workspaces">
                    <thead><tr>
                        <th>"Name"</th><th>"Repository"</th><th>"Backend"</th>
                        <th>"State"</th><th>"Started"</th><th></th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
        }
        .into_any()
    };
    let chosen = echo.value("repo", "");
    let repo_options = repos
        .iter()
        .map(|r| view! { <option value=r.clone() selected=*r == chosen>{r.clone()}</option> })
        .collect_view();
    let backend = echo.value("backend", "local");
    let content = view! {
        {list_view}
        <section class="card">
            <h2>"Create a workspace"</h2>
            <form class="stack" method="post" action="/workspaces" data-testid="create-workspace">
                {csrf_input(&ctx.csrf)}
                {echo.form_error()}
                <label>"Name"
                    <input type="text" name="name" pattern="[A-Za-z0-9_\\-][A-Za-z0-9._\\-]{0,63}" placeholder="my-app-dev" required
                        title="1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"
                        value=echo.value("name", "") aria-invalid=echo.invalid("name")/>
                    {echo.error_for("name")}
                </label>
                <label>"Repository"
                    <select name="repo" aria-invalid=echo.invalid("repo")>
                        <option value="">"(empty workspace)"</option>
                        {repo_options}
                    </select>
                    {echo.error_for("repo")}
                </label>
                <label>"Backend"
                    <select name="backend" aria-invalid=echo.invalid("backend")>
                        <option value="local" selected=backend == "local">"Local (a process on the server)"</option>
                        <option value="container" selected=backend == "container">"Container"</option>
                    </select>
                    {echo.error_for("backend")}
                </label>
                <label>"Image (optional)"
                    <input type="text" name="image" maxlength="255" placeholder="the default workspace image"
                        value=echo.value("image", "") aria-invalid=echo.invalid("image")/>
                    {echo.error_for("image")}
                    <span class="hint">"Container backend only."</span>
                </label>
                <label>"Stop after idle minutes"
                    <input type="number" name="idle_timeout_minutes" value=echo.value("idle_timeout_minutes", "30")
                        min="1" max="10080" required aria-invalid=echo.invalid("idle_timeout_minutes")/>
                    {echo.error_for("idle_timeout_minutes")}
                </label>
                <button type="submit">"Create workspace"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}

fn workspace_row(ctx: &PageContext, ws: &WorkspaceRow) -> impl IntoView {
    let href = format!("/workspaces/{}", ws.id);
    let repo = match &ws.repo {
        Some(r) => view! { <span>{r.clone()}</span> }.into_any(),
        None => view! { <span class="muted">"(empty)"</span> }.into_any(),
    };
    let backend = match &ws.image {
        Some(image) if !image.is_empty() => view! {
            <span>{ws.backend.clone()}</span>" "<code class="muted">{image.clone()}</code>
        }
        .into_any(),
        _ => view! { <span>{ws.backend.clone()}</span> }.into_any(),
    };
    let error = ws
        .error
        .clone()
        .filter(|_| ws.state == "error")
        .map(|e| view! { <div class="ws-error" data-testid="workspace-error">{e}</div> });
    let action_form = |verb: &'static str, label: &'static str, class: &'static str| {
        let action = format!("/workspaces/{}/{verb}", ws.id);
        view! {
            <form class="inline" method="post" action=action>
                {csrf_input(&ctx.csrf)}
                <button type="submit" class=class data-action=verb>{label}</button>
            </form>
        }
    };
    let open = (ws.state == "running")
        .then(|| view! { <a class="button small" href=href.clone() data-action="open">"Open"</a> });
    let start = can_start(&ws.state).then(|| action_form("start", "Start", "secondary small"));
    let stop = can_stop(&ws.state).then(|| action_form("stop", "Stop", "secondary small"));
    let delete_action = format!("/workspaces/{}/delete", ws.id);
    let confirm = format!(
        "Delete the workspace {}? Its files and terminals are removed; this cannot be undone.",
        ws.name
    );
    view! {
        <tr data-workspace=ws.name.clone() data-workspace-id=ws.id.clone() data-state=ws.state.clone()>
            <td><a href=href.clone()>{ws.name.clone()}</a></td>
            <td>{repo}</td>
            <td>{backend}</td>
            <td>{state_badge(&ws.state, None)}{error}</td>
            <td>{started_view(ws)}</td>
            <td class="actions">
                {open}{start}{stop}
                <form class="inline" method="post" action=delete_action data-confirm=confirm>
                    {csrf_input(&ctx.csrf)}
                    <button type="submit" class="danger small" data-action="delete">"Delete"</button>
                </form>
            </td>
        </tr>
    }
}

/// One workspace's IDE: file tree, editor tabs, terminals, preview and
/// status bar, filled in by the `ide.js` bundle. When the workspace is not
/// running the page offers to start it instead (and waits while it is
/// starting or stopping).
pub fn workspace_ide_page(ctx: &PageContext, ws: &WorkspaceRow) -> String {
    let api = format!("/api/v1/workspaces/{}", ws.id);
    let running = ws.state == "running";
    let stop = can_stop(&ws.state).then(|| {
        let action = format!("/workspaces/{}/stop", ws.id);
        view! {
            <form class="inline" method="post" action=action>
                {csrf_input(&ctx.csrf)}
                <button type="submit" class="secondary small" data-action="stop">"Stop"</button>
            </form>
        }
    });
    let running_tools = running.then(|| {
        view! {
            <button type="button" class="secondary small" data-action="quick-open" title="Go to file (Ctrl+P)">"Go to file"</button>
            <div class="menu-anchor">
                <button type="button" class="secondary small" data-action="preview" aria-haspopup="menu" aria-expanded="false">"Preview"</button>
                <div id="preview-menu" class="popover" role="menu" hidden></div>
            </div>
        }
    });
    let flash = ctx.flash.clone().map(flash_view);
    let main = if running {
        ide_panels(&ws.state).into_any()
    } else {
        offline_panel(ctx, ws).into_any()
    };
    let body = view! {
        <div id="ide" class="ide" data-workspace-id=ws.id.clone() data-api=api
            data-csrf=ctx.csrf.clone() data-state=ws.state.clone()>
            <header class="ide-top">
                <a class="brand-mark small" href="/" title="Dashboard" aria-label="Nubo dashboard"></a>
                <a class="ide-back" href="/workspaces">"← Workspaces"</a>
                <h1 id="ide-name">{ws.name.clone()}</h1>
                {state_badge(&ws.state, Some("ide-state"))}
                <div class="ide-top-actions">
                    {running_tools}
                    <button type="button" class="link" data-theme-toggle hidden>
                        "Theme: " <span data-theme-label>"auto"</span>
                    </button>
                    <span class="muted" data-testid="viewer">{ctx.viewer.name.clone()}</span>
                    {stop}
                </div>
            </header>
            <noscript>
                <div class="flash warn ide-noscript">
                    "The workspace IDE needs JavaScript: the editor, file tree and terminals run in the browser. "
                    "The workspace list works without it."
                </div>
            </noscript>
            {flash}
            {main}
        </div>
    };
    // When not running, ide.js only waits for a state change; the frame's
    // styles are in ide.css either way.
    document_with(
        &format!("{} · Workspace", ws.name),
        &["ide.css"],
        &["ide.js"],
        body,
    )
}

/// What a stopped (or starting, stopping, failed) workspace shows.
fn offline_panel(ctx: &PageContext, ws: &WorkspaceRow) -> impl IntoView {
    let (heading, text) = match ws.state.as_str() {
        "creating" => (
            "Creating the workspace…",
            "Its files are being prepared. This page opens the IDE when it is running.",
        ),
        "starting" => (
            "Starting the workspace…",
            "This page opens the IDE when it is running.",
        ),
        "stopping" => (
            "Stopping the workspace…",
            "Start it again once it has stopped.",
        ),
        "error" => (
            "The workspace failed",
            "Start it again; if it keeps failing, the message below says why.",
        ),
        _ => (
            "The workspace is stopped",
            "Start it to open the editor and terminals. Its files are kept while it is stopped.",
        ),
    };
    let error = ws
        .error
        .clone()
        .filter(|_| ws.state == "error")
        .map(|e| flash_view(Flash::Error(e)));
    let start = can_start(&ws.state).then(|| {
        let action = format!("/workspaces/{}/start", ws.id);
        view! {
            <form method="post" action=action data-testid="start-workspace">
                {csrf_input(&ctx.csrf)}
                <button type="submit" data-action="start">"Start workspace"</button>
            </form>
        }
    });
    let waiting = is_transitional(&ws.state)
        .then(|| view! { <span class="spinner" aria-hidden="true"></span> });
    view! {
        <div id="ide-offline" class="ide-offline" data-wait=is_transitional(&ws.state).then_some("true")>
            <section class="card">
                <h2>{waiting}{heading}</h2>
                <p class="muted">{text}</p>
                {error}
                {start}
                <p><a href="/workspaces">"Back to the workspaces"</a></p>
            </section>
        </div>
    }
}

// Toolbar icons: 16×16 outline paths (SVG presentation attributes, which
// the page's Content-Security-Policy allows, unlike inline styles).
const ICON_NEW_FILE: &str = "M8.5 14.5h-4.5v-13h5l3.5 3.5v3M9 1.5v3.5h3.5M12.5 10v5M10 12.5h5";
const ICON_NEW_FOLDER: &str = "M8.5 12.5h-7v-9h4l1.5 1.5h7.5v3M12.5 9v5M10 11.5h5";
const ICON_UPLOAD: &str = "M8 10.5v-8M4.5 6 8 2.5 11.5 6M2.5 10.5v3h11v-3";
const ICON_REFRESH: &str = "M13 8a5 5 0 1 1-1.46-3.54M13.5 2v3h-3";

fn icon(path: &'static str) -> impl IntoView {
    view! {
        <svg class="icon-svg" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true"
            fill="none" stroke="currentColor" stroke-width="1.4" stroke-linecap="round" stroke-linejoin="round">
            <path d=path/>
        </svg>
    }
}

/// The IDE's panels; empty containers that `ide.js` fills.
fn ide_panels(state: &str) -> impl IntoView {
    view! {
        <div id="ide-body" class="ide-body">
            <aside id="tree-panel" class="ide-panel" aria-label="Files">
                <div class="panel-head">
                    <span class="panel-title">"Files"</span>
                    <div class="panel-actions">
                        <button type="button" class="icon" data-action="new-file" title="New file" aria-label="New file">{icon(ICON_NEW_FILE)}</button>
                        <button type="button" class="icon" data-action="new-folder" title="New folder" aria-label="New folder">{icon(ICON_NEW_FOLDER)}</button>
                        <button type="button" class="icon" data-action="upload" title="Upload files" aria-label="Upload files">{icon(ICON_UPLOAD)}</button>
                        <button type="button" class="icon" data-action="refresh-tree" title="Refresh" aria-label="Refresh the file tree">{icon(ICON_REFRESH)}</button>
                    </div>
                </div>
                <div id="file-tree" class="file-tree" role="tree" aria-label="Workspace files" tabindex="0">
                    <p class="tree-note muted">"Loading files…"</p>
                </div>
                <input type="file" id="upload-input" multiple hidden/>
            </aside>
            <div class="splitter vertical" data-split="tree" role="separator"
                aria-orientation="vertical" aria-label="Resize the file tree" tabindex="0"></div>
            <div class="ide-center">
                <section id="editor-panel" class="ide-panel" aria-label="Editor">
                    <div class="editor-bar">
                        <div id="editor-tabs" class="tabs" role="tablist" aria-label="Open files"></div>
                        <button type="button" class="icon" data-action="save" title="Save (Ctrl+S)" disabled>"Save"</button>
                    </div>
                    <div id="editor-banner" class="editor-banner" role="alert" hidden></div>
                    <div id="editor-area" class="editor-area">
                        <div id="editor-empty" class="editor-empty">
                            <p>"Open a file from the tree, or press " <kbd>"Ctrl+P"</kbd> " to find one."</p>
                            <p class="muted"><kbd>"Ctrl+S"</kbd>" save · "<kbd>"Ctrl+`"</kbd>" new terminal"</p>
                        </div>
                    </div>
                </section>
                <div class="splitter horizontal" data-split="terminal" role="separator"
                    aria-orientation="horizontal" aria-label="Resize the terminal panel" tabindex="0"></div>
                <section id="terminal-panel" class="ide-panel" aria-label="Terminals">
                    <div class="panel-head">
                        <div id="terminal-tabs" class="tabs" role="tablist" aria-label="Terminals"></div>
                        <button type="button" class="icon" data-action="new-terminal" title="New terminal (Ctrl+`)" aria-label="New terminal">"+"</button>
                    </div>
                    <div id="terminal-area" class="terminal-area"></div>
                </section>
            </div>
            <div class="splitter vertical" data-split="preview" role="separator"
                aria-orientation="vertical" aria-label="Resize the preview" tabindex="0" hidden></div>
            <aside id="preview-pane" class="ide-panel" aria-label="Preview" hidden>
                <div class="panel-head">
                    <span class="panel-title" id="preview-title">"Preview"</span>
                    <div class="panel-actions">
                        <button type="button" class="icon" data-action="preview-reload" title="Reload" aria-label="Reload the preview">"⟳"</button>
                        <a id="preview-open" href="#" target="_blank" rel="noopener">"Open in new tab"</a>
                        <button type="button" class="icon" data-action="preview-close" title="Close" aria-label="Close the preview">"×"</button>
                    </div>
                </div>
                <iframe id="preview-frame" title="Preview"
                    sandbox="allow-scripts allow-forms allow-same-origin allow-popups allow-modals allow-downloads"
                    referrerpolicy="no-referrer"></iframe>
            </aside>
        </div>
        <footer id="status-bar" class="status-bar">
            <span id="status-branch" title="Branch"></span>
            <span id="status-state" data-state=state.to_string()>{state.to_string()}</span>
            <span id="status-message" role="status" aria-live="polite"></span>
            <span class="spacer"></span>
            <span id="status-cursor"></span>
            <span id="status-language"></span>
            <span id="status-save"></span>
        </footer>
        <dialog id="ide-dialog">
            <form method="dialog">
                <p data-dialog-message></p>
                <input type="text" data-dialog-input autocomplete="off" spellcheck="false"/>
                <div class="dialog-actions">
                    <button type="submit" value="cancel" class="secondary" data-dialog-cancel>"Cancel"</button>
                    <button type="submit" value="ok" data-dialog-ok>"OK"</button>
                </div>
            </form>
        </dialog>
        <div id="quick-open" class="quick-open" role="dialog" aria-label="Go to file" hidden>
            <input id="quick-open-input" type="text" placeholder="Go to file…" autocomplete="off" spellcheck="false"/>
            <ul id="quick-open-list" role="listbox"></ul>
        </div>
        <ul id="context-menu" class="popover" role="menu" hidden></ul>
    }
}

#[cfg(test)]
mod tests;
