//! Batch builds (CodeBuild's batch view): a batch in its project's history
//! as one row with its builds under it, and the batch's own page with its
//! builds, a graph of a build-graph's dependencies and the stop form.
//!
//! Without JavaScript the page shows the batch as it was when rendered;
//! with it, `web/src/builds/batch.ts` polls the batch and keeps every
//! status current. Hooks (the island and browser tests select on them):
//!
//! - `tr.batch-row[data-batch-id][data-status]` a batch in the build
//!   history, followed by its builds as
//!   `tr.batch-child[data-build-id][data-identifier][data-status]`
//! - `#batch[data-batch-id][data-poll][data-status]` the batch page; the
//!   island sets `data-live="true"` after its first answer and
//!   `data-ended="true"` once the batch has ended
//! - `#batch-status[data-status]` the batch's badge
//! - `[data-testid=stop-batch]` (`POST /batches/{id}/stop`) while it runs
//! - `table[data-testid=batch-builds]` with
//!   `tr[data-identifier][data-build-id][data-status]`
//! - `svg#batch-graph` (build-graph only): `g.node[data-identifier][data-status]`
//!   and `path.edge[data-from][data-to]`
//! - `[data-testid=batch-artifacts]` the combined artifacts (shown once a
//!   `combine-artifacts` batch has ended)

use leptos::prelude::*;

use crate::builds::{
    commit_view, duration_text, is_active, status_badge, status_label, time_view, BuildRow,
};
use crate::workspaces::csrf_input;
use crate::PageContext;

/// One build of a batch.
#[derive(Debug, Clone)]
pub struct BatchChildRow {
    /// Its identifier in the batch (`build1` … for a matrix).
    pub identifier: String,
    /// Identifiers it waits for (build-graph).
    pub depends_on: Vec<String>,
    /// Whether its failure leaves the batch's status alone.
    pub ignore_failure: bool,
    /// The build itself; `PENDING` while it waits for its dependencies.
    pub build: BuildRow,
}

/// A batch as its pages show it.
#[derive(Debug, Clone)]
pub struct BatchRow {
    pub id: String,
    pub project: String,
    /// `build-list`, `build-matrix` or `build-graph`.
    pub kind: String,
    /// `IN_PROGRESS`, `SUCCEEDED`, `FAILED` or `STOPPED`.
    pub status: String,
    pub branch: String,
    pub commit: Option<String>,
    pub initiator: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub ended_at: Option<i64>,
    pub reason: Option<String>,
    pub fast_fail: bool,
    pub combine_artifacts: bool,
    pub builds: Vec<BatchChildRow>,
}

fn batch_duration(batch: &BatchRow) -> AnyView {
    match batch.ended_at {
        Some(end) => {
            let ms = u64::try_from(end.saturating_sub(batch.created_at)).unwrap_or(0);
            view! { <span>{duration_text(ms)}</span> }.into_any()
        }
        None => view! { <span class="muted">"running"</span> }.into_any(),
    }
}

fn child_duration(build: &BuildRow) -> AnyView {
    crate::builds::duration_view(build).into_any()
}

/// A batch's rows in the project's build history: the batch, then its
/// builds (indented, each linking to its own page).
pub(crate) fn history_rows(batch: &BatchRow) -> impl IntoView {
    let href = format!("/batches/{}", batch.id);
    let children = batch
        .builds
        .iter()
        .map(|c| {
            let b = &c.build;
            let href = format!("/builds/{}", b.id);
            view! {
                <tr class="batch-child" data-build-id=b.id.clone() data-identifier=c.identifier.clone()
                    data-status=b.status.clone()>
                    <td>
                        <span class="child-mark" aria-hidden="true">"↳ "</span>
                        <a href=href>{format!("#{}", b.number)}</a>" "
                        <code>{c.identifier.clone()}</code>
                    </td>
                    <td>{status_badge(&b.status, None)}</td>
                    <td><code>{b.branch.clone()}</code></td>
                    <td>{commit_view(b.commit.as_ref())}</td>
                    <td>{b.initiator.clone()}</td>
                    <td>{time_view(b.started_at)}</td>
                    <td>{child_duration(b)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <tr class="batch-row" data-batch-id=batch.id.clone() data-status=batch.status.clone()>
            <td>
                <a href=href>"Batch"</a>" "
                <span class="muted">{format!("{} · {} builds", batch.kind, batch.builds.len())}</span>
            </td>
            <td>{status_badge(&batch.status, None)}</td>
            <td><code>{batch.branch.clone()}</code></td>
            <td>{commit_view(batch.commit.as_ref())}</td>
            <td>{batch.initiator.clone()}</td>
            <td>{time_view(Some(batch.created_at))}</td>
            <td>{batch_duration(batch)}</td>
        </tr>
        {children}
    }
}

/// Each build's column in the graph: 0 for builds without dependencies,
/// else one more than the furthest of its dependencies. (The plan was
/// checked for cycles; unknown names are skipped all the same.)
pub fn graph_levels(builds: &[BatchChildRow]) -> Vec<usize> {
    let mut levels = vec![0usize; builds.len()];
    // A longest path has at most n - 1 edges: n rounds settle it.
    for _ in 0..builds.len() {
        let mut changed = false;
        for (i, b) in builds.iter().enumerate() {
            let level = b
                .depends_on
                .iter()
                .filter_map(|d| builds.iter().position(|o| &o.identifier == d))
                .map(|d| levels[d] + 1)
                .max()
                .unwrap_or(0);
            if level != levels[i] {
                levels[i] = level;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    levels
}

const NODE_W: usize = 176;
const NODE_H: usize = 48;
const GAP_X: usize = 56;
const GAP_Y: usize = 16;

/// A build-graph drawn as columns of builds (by [`graph_levels`]) with an
/// arrow from each dependency to its dependent; nodes coloured by status.
fn graph(batch: &BatchRow) -> impl IntoView {
    let levels = graph_levels(&batch.builds);
    let columns = levels.iter().copied().max().map_or(0, |m| m + 1);
    let mut rows = vec![0usize; columns];
    let mut place = Vec::with_capacity(levels.len());
    for &level in &levels {
        place.push((level, rows[level]));
        rows[level] += 1;
    }
    let tallest = rows.iter().copied().max().unwrap_or(0);
    // Two pixels of margin so the outlines are not clipped.
    let width = (columns * (NODE_W + GAP_X)).saturating_sub(GAP_X) + 4;
    let height = (tallest * (NODE_H + GAP_Y)).saturating_sub(GAP_Y) + 4;
    let at = |i: usize| {
        let (col, row) = place[i];
        // Centre short columns against the tallest one.
        let offset = (tallest - rows[col]) * (NODE_H + GAP_Y) / 2;
        (
            col * (NODE_W + GAP_X) + 2,
            row * (NODE_H + GAP_Y) + offset + 2,
        )
    };
    let mut edges = Vec::new();
    for (i, b) in batch.builds.iter().enumerate() {
        for d in &b.depends_on {
            if let Some(j) = batch.builds.iter().position(|o| &o.identifier == d) {
                let ((x1, y1), (x2, y2)) = (at(j), at(i));
                let (x1, y1) = (x1 + NODE_W, y1 + NODE_H / 2);
                let y2 = y2 + NODE_H / 2;
                let bend = GAP_X / 2;
                let d_attr = format!(
                    "M {x1} {y1} C {} {y1}, {} {y2}, {} {y2}",
                    x1 + bend,
                    x2.saturating_sub(bend),
                    x2.saturating_sub(2)
                );
                edges.push(view! {
                    <path class="edge" d=d_attr data-from=d.clone() data-to=b.identifier.clone()
                        marker-end="url(#batch-arrow)"/>
                });
            }
        }
    }
    let nodes = batch
        .builds
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (x, y) = at(i);
            let href = format!("/builds/{}", c.build.id);
            let transform = format!("translate({x} {y})");
            view! {
                <g class="node" data-identifier=c.identifier.clone() data-status=c.build.status.clone()
                    transform=transform>
                    <a href=href>
                        <rect width=NODE_W.to_string() height=NODE_H.to_string() rx="8"/>
                        <text class="node-name" x="12" y="20">{c.identifier.clone()}</text>
                        <text class="node-status" x="12" y="38">{status_label(&c.build.status)}</text>
                    </a>
                </g>
            }
        })
        .collect_view();
    let label = format!(
        "Dependency graph of {} builds in {} stages",
        batch.builds.len(),
        columns
    );
    view! {
        <div class="graph-scroll">
            <svg id="batch-graph" class="batch-graph" role="img" aria-label=label
                width=width.to_string() height=height.to_string()>
                <defs>
                    <marker id="batch-arrow" viewBox="0 0 10 10" refX="9" refY="5"
                        markerWidth="7" markerHeight="7" orient="auto">
                        <path d="M 0 0 L 10 5 L 0 10 z"/>
                    </marker>
                </defs>
                {edges}
                {nodes}
            </svg>
        </div>
    }
}

/// One batch: its status, facts, graph (build-graph), builds and stop form.
pub fn batch_page(ctx: &PageContext, batch: &BatchRow) -> String {
    let id = &batch.id;
    let active = batch.status == "IN_PROGRESS";
    let project_href = format!("/projects/{}", batch.project);
    let stop = active.then(|| {
        let action = format!("/batches/{id}/stop");
        view! {
            <form class="inline" method="post" action=action data-testid="stop-batch"
                data-confirm="Stop this batch? Its running builds stop and the waiting ones never start.">
                {csrf_input(&ctx.csrf)}
                <button type="submit" class="danger small">"Stop batch"</button>
            </form>
        }
    });
    let artifacts = batch.combine_artifacts.then(|| {
        let href = format!("/api/v1/build-batches/{id}/artifacts.zip");
        view! {
            <a class="button secondary small" href=href data-testid="batch-artifacts" download hidden=active>
                "Download combined artifacts"
            </a>
        }
    });
    let reason = batch
        .reason
        .clone()
        .filter(|r| !r.is_empty())
        .map(|r| view! { <p class="build-reason problem" data-testid="batch-reason">{r}</p> });
    let graph = (batch.kind == "build-graph" && !batch.builds.is_empty()).then(|| {
        view! {
            <section class="card">
                <h2>"Graph"</h2>
                {graph(batch)}
            </section>
        }
    });
    let rows = batch
        .builds
        .iter()
        .map(|c| {
            let b = &c.build;
            let href = format!("/builds/{}", b.id);
            let depends = if c.depends_on.is_empty() {
                view! { <span class="muted">"—"</span> }.into_any()
            } else {
                c.depends_on
                    .iter()
                    .map(|d| view! { <code>{d.clone()}</code>" " })
                    .collect_view()
                    .into_any()
            };
            let note = c
                .ignore_failure
                .then(|| view! { <span class="badge" title="Its failure does not fail the batch">"ignore failure"</span> });
            view! {
                <tr data-identifier=c.identifier.clone() data-build-id=b.id.clone() data-status=b.status.clone()>
                    <td><a href=href><code>{c.identifier.clone()}</code></a>" "{note}</td>
                    <td>{format!("#{}", b.number)}</td>
                    <td>{status_badge(&b.status, None)}</td>
                    <td>{depends}</td>
                    <td>{time_view(b.started_at)}</td>
                    <td>{child_duration(b)}</td>
                    <td class="child-reason muted">{b.reason.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    let kind = match batch.kind.as_str() {
        "build-list" => "Build list",
        "build-matrix" => "Build matrix",
        "build-graph" => "Build graph",
        other => other,
    }
    .to_string();
    let content = view! {
        <nav class="crumbs" aria-label="Breadcrumbs">
            <a href="/projects">"Builds"</a>" / "
            <a href=project_href data-testid="project-link">{batch.project.clone()}</a>" / "
            <span>"Batch"</span>
        </nav>
        <div id="batch" data-batch-id=id.clone() data-poll=format!("/api/v1/build-batches/{id}")
            data-status=batch.status.clone()>
            <section class="card" data-testid="batch-summary">
                <div class="build-head">
                    <h2>{format!("Batch: {}", kind.to_lowercase())}</h2>
                    {status_badge(&batch.status, Some("batch-status"))}
                    <div class="build-actions">{artifacts}{stop}</div>
                </div>
                {reason}
                <dl class="facts">
                    <dt>"Kind"</dt><dd>{kind}</dd>
                    <dt>"Branch"</dt><dd><code>{batch.branch.clone()}</code></dd>
                    <dt>"Commit"</dt><dd>{commit_view(batch.commit.as_ref())}</dd>
                    <dt>"Initiator"</dt><dd>{batch.initiator.clone()}</dd>
                    <dt>"Started"</dt><dd>{time_view(Some(batch.created_at))}</dd>
                    <dt>"Ended"</dt><dd>{time_view(batch.ended_at)}</dd>
                    <dt>"Duration"</dt><dd>{batch_duration(batch)}</dd>
                    <dt>"Fast fail"</dt>
                    <dd>{if batch.fast_fail { "yes: the first failure stops the rest" } else { "no: every build runs" }}</dd>
                </dl>
            </section>
            {graph}
            <section class="card">
                <h2>"Builds"</h2>
                <table class="builds" data-testid="batch-builds">
                    <thead><tr>
                        <th>"Identifier"</th><th>"Build"</th><th>"Status"</th><th>"Depends on"</th>
                        <th>"Started"</th><th>"Duration"</th><th>"Note"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
                {is_active(&batch.status).then(|| view! {
                    <noscript><p class="muted">"The batch is still running: reload the page to see its progress."</p></noscript>
                })}
            </section>
        </div>
    };
    crate::layout::shell(ctx, content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builds::tests::ctx;

    fn child(identifier: &str, number: i64, status: &str, depends_on: &[&str]) -> BatchChildRow {
        BatchChildRow {
            identifier: identifier.into(),
            depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
            ignore_failure: false,
            build: BuildRow {
                id: format!("app:{number}"),
                project: "app".into(),
                number,
                status: status.into(),
                current_phase: None,
                phases: vec![],
                branch: "main".into(),
                commit: None,
                initiator: "ann".into(),
                queued_at: 1_700_000_000_000,
                started_at: None,
                ended_at: None,
                exported: vec![],
                artifacts: 0,
                reason: None,
                reports: vec![],
                batch: None,
                pipeline: None,
            },
        }
    }

    fn diamond(status: &str) -> BatchRow {
        BatchRow {
            id: "batch-1".into(),
            project: "app".into(),
            kind: "build-graph".into(),
            status: status.into(),
            branch: "main".into(),
            commit: Some("0123456789abcdef".into()),
            initiator: "ann".into(),
            created_at: 1_700_000_000_000,
            ended_at: None,
            reason: None,
            fast_fail: true,
            combine_artifacts: true,
            builds: vec![
                child("top", 1, "SUCCEEDED", &[]),
                child("left", 2, "IN_PROGRESS", &["top"]),
                child("right", 3, "FAILED", &["top"]),
                child("bottom", 4, "PENDING", &["left", "right"]),
            ],
        }
    }

    #[test]
    fn levels_follow_the_longest_path() {
        let b = diamond("IN_PROGRESS");
        assert_eq!(graph_levels(&b.builds), vec![0, 1, 1, 2]);
        // Listed before its dependency: still placed after it.
        let mut out_of_order = b.builds.clone();
        out_of_order.reverse();
        assert_eq!(graph_levels(&out_of_order), vec![2, 1, 1, 0]);
        // A chain and a shortcut: the chain decides.
        let chain = vec![
            child("a", 1, "PENDING", &[]),
            child("b", 2, "PENDING", &["a"]),
            child("c", 3, "PENDING", &["b", "a"]),
        ];
        assert_eq!(graph_levels(&chain), vec![0, 1, 2]);
    }

    #[test]
    fn running_graph_batch_has_graph_builds_and_stop() {
        let html = batch_page(&ctx(), &diamond("IN_PROGRESS"));
        assert!(html.contains(r#"id="batch-graph""#), "{html}");
        for (id, status) in [
            ("top", "SUCCEEDED"),
            ("left", "IN_PROGRESS"),
            ("right", "FAILED"),
            ("bottom", "PENDING"),
        ] {
            assert!(
                html.contains(&format!(
                    r#"<g data-identifier="{id}" data-status="{status}""#
                )),
                "{id}: {html}"
            );
        }
        assert_eq!(html.matches(r#"class="edge""#).count(), 4);
        assert!(html.contains(r#"data-from="left" data-to="bottom""#));
        assert!(html.contains(r#"action="/batches/batch-1/stop""#));
        assert!(html.contains(r#"data-poll="/api/v1/build-batches/batch-1""#));
        assert!(html.contains(r#"href="/builds/app:4""#));
        // The combined artifacts appear once the batch has ended.
        assert!(html.contains("data-testid=\"batch-artifacts\""));
        assert!(html.contains(" hidden"));
    }

    #[test]
    fn ended_list_batch_has_no_graph_and_no_stop() {
        let mut b = diamond("FAILED");
        b.kind = "build-list".into();
        b.ended_at = Some(1_700_000_065_000);
        b.reason = Some("build right failed".into());
        let html = batch_page(&ctx(), &b);
        assert!(!html.contains("batch-graph"));
        assert!(!html.contains("stop-batch"));
        assert!(html.contains("build right failed"));
        assert!(html.contains("1 min 5 s"));
        assert!(html
            .contains(r#"data-identifier="bottom" data-build-id="app:4" data-status="PENDING""#));
    }

    #[test]
    fn history_shows_the_batch_then_its_builds() {
        let html = leptos::tachys::view::RenderHtml::to_html(
            view! { <table><tbody>{history_rows(&diamond("IN_PROGRESS"))}</tbody></table> },
        );
        let batch_at = html.find(r#"data-batch-id="batch-1""#).expect("batch row");
        let child_at = html.find(r#"data-identifier="top""#).expect("child row");
        assert!(batch_at < child_at, "{html}");
        assert_eq!(html.matches("class=\"batch-child\"").count(), 4);
        assert!(html.contains("build-graph · 4 builds"));
    }
}
