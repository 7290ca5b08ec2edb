//! `/api/v1/projects`, `/api/v1/builds` and `/api/v1/build-batches`: build
//! projects, builds with their live logs and artifacts, and batches.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::builds::{self, Build, CreateProject, LogEvent, Project, StartBuild};
use crate::error::{Error, ErrorBody, Json, Result};
use crate::http::auth::CurrentUser;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, delete_project))
        .routes(routes!(list_builds, start_build))
        .routes(routes!(get_build))
        .routes(routes!(stop_build))
        .routes(routes!(build_log))
        .routes(routes!(build_log_stream))
        .routes(routes!(get_batch))
        .routes(routes!(stop_batch))
        .routes(routes!(list_batches))
        .routes(routes!(batch_artifacts))
        .routes(routes!(build_artifacts))
}

/// Your build projects (admins: all).
#[utoipa::path(get, path = "/projects", tag = "builds",
    responses((status = 200, body = Vec<Project>), (status = 401, body = ErrorBody)))]
async fn list_projects(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Vec<Project>>> {
    Ok(Json(
        builds::list_projects(&state.pool, &current.user).await?,
    ))
}

/// Create a build project for a repository.
#[utoipa::path(post, path = "/projects", tag = "builds", request_body = CreateProject,
    responses((status = 201, body = Project), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_project(
    State(state): State<AppState>,
    current: CurrentUser,
    Json(body): Json<CreateProject>,
) -> Result<impl IntoResponse> {
    let project = builds::create_project(&state.pool, &state.settings, &current.user, body).await?;
    tracing::info!(project = %project.name, by = %current.user.name, "build project created");
    Ok((StatusCode::CREATED, Json(project)))
}

#[utoipa::path(get, path = "/projects/{name}", tag = "builds",
    params(("name" = String, Path, description = "Project name")),
    responses((status = 200, body = Project), (status = 404, body = ErrorBody)))]
async fn get_project(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<Project>> {
    Ok(Json(
        builds::project_for(&state.pool, &current.user, &name).await?,
    ))
}

/// Delete a project with its builds, logs and artifacts.
#[utoipa::path(delete, path = "/projects/{name}", tag = "builds",
    params(("name" = String, Path, description = "Project name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_project(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    let project = builds::project_for(&state.pool, &current.user, &name).await?;
    builds::delete_project(&state, &state.builds, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The project's builds, newest first (at most 100).
#[utoipa::path(get, path = "/projects/{name}/builds", tag = "builds",
    params(("name" = String, Path, description = "Project name")),
    responses((status = 200, body = Vec<Build>), (status = 404, body = ErrorBody)))]
async fn list_builds(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<Vec<Build>>> {
    let project = builds::project_for(&state.pool, &current.user, &name).await?;
    Ok(Json(builds::list_builds(&state.pool, &project, 100).await?))
}

/// Start a build of the project's branch, another branch, or a commit.
#[utoipa::path(post, path = "/projects/{name}/builds", tag = "builds", request_body = StartBuild,
    params(("name" = String, Path, description = "Project name")),
    responses((status = 201, body = Build), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn start_build(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse> {
    // An empty body starts the project's branch.
    let request: StartBuild = if body.iter().all(u8::is_ascii_whitespace) {
        StartBuild::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::Unprocessable(format!("the request body is not valid: {e}")))?
    };
    let project = builds::project_for(&state.pool, &current.user, &name).await?;
    crate::repos::authorize(
        &state.pool,
        &project.repo,
        &current.user,
        "codecommit:GitPull",
    )
    .await?;
    match crate::builds::batches::start_any(&state, &state.builds, &project, &current.user, request)
        .await?
    {
        crate::builds::batches::Started::Build(build) => {
            tracing::info!(build = %build.id, by = %current.user.name, "build queued");
            Ok((
                StatusCode::CREATED,
                Json(serde_json::to_value(&*build).unwrap_or_default()),
            ))
        }
        crate::builds::batches::Started::Batch(batch) => {
            tracing::info!(batch = %batch.id, builds = batch.builds.len(), by = %current.user.name, "batch started");
            Ok((
                StatusCode::CREATED,
                Json(serde_json::to_value(&*batch).unwrap_or_default()),
            ))
        }
    }
}

/// A batch build: its status and its builds (`identifier`, `build_id`,
/// `status`, `depends_on`).
#[utoipa::path(get, path = "/build-batches/{id}", tag = "builds",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = crate::builds::batches::BuildBatch), (status = 404, body = ErrorBody)))]
async fn get_batch(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<crate::builds::batches::BuildBatch>> {
    Ok(Json(
        crate::builds::batches::batch_for(&state.pool, &current.user, &id).await?,
    ))
}

/// Stop a batch: its waiting builds at once, its running ones too.
#[utoipa::path(post, path = "/build-batches/{id}/stop", tag = "builds",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = crate::builds::batches::BuildBatch), (status = 404, body = ErrorBody)))]
async fn stop_batch(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<crate::builds::batches::BuildBatch>> {
    let batch = crate::builds::batches::batch_for(&state.pool, &current.user, &id).await?;
    tracing::info!(batch = %batch.id, by = %current.user.name, "batch stop asked");
    Ok(Json(
        crate::builds::batches::stop(&state, &state.builds, &batch).await?,
    ))
}

/// The project's batches, newest first.
#[utoipa::path(get, path = "/projects/{name}/build-batches", tag = "builds",
    params(("name" = String, Path, description = "Project name")),
    responses((status = 200, body = Vec<crate::builds::batches::BuildBatch>), (status = 404, body = ErrorBody)))]
async fn list_batches(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<Vec<crate::builds::batches::BuildBatch>>> {
    let project = builds::project_for(&state.pool, &current.user, &name).await?;
    Ok(Json(
        crate::builds::batches::list(&state.pool, &project, 50).await?,
    ))
}

/// A batch's artifacts as one zip: each build's in a folder named by its
/// identifier (the buildspec's `combine-artifacts`).
#[utoipa::path(get, path = "/build-batches/{id}/artifacts.zip", tag = "builds",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, description = "application/zip"), (status = 404, body = ErrorBody)))]
async fn batch_artifacts(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let batch = crate::builds::batches::batch_for(&state.pool, &current.user, &id).await?;
    if !batch.combine_artifacts {
        return Err(Error::NotFound(
            "this batch does not combine its artifacts (batch.combine-artifacts); download each build's".into(),
        ));
    }
    let dirs: Vec<(String, std::path::PathBuf)> = batch
        .builds
        .iter()
        .map(|b| {
            (
                b.identifier.clone(),
                builds::build_dir(&state.settings.data_dir, &b.build_id).join("artifacts"),
            )
        })
        .filter(|(_, d)| d.is_dir())
        .collect();
    if dirs.is_empty() {
        return Err(Error::NotFound(
            "no build of this batch kept artifacts".into(),
        ));
    }
    let name = format!("{}.zip", id.replace(':', "-"));
    zip_response(dirs, &name).await
}

#[utoipa::path(get, path = "/builds/{id}", tag = "builds",
    params(("id" = String, Path, description = "Build id (`project:uuid`)")),
    responses((status = 200, body = Build), (status = 404, body = ErrorBody)))]
async fn get_build(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Build>> {
    Ok(Json(
        builds::build_for(&state.pool, &current.user, &id).await?,
    ))
}

/// Stop a queued or running build.
#[utoipa::path(post, path = "/builds/{id}/stop", tag = "builds",
    params(("id" = String, Path, description = "Build id")),
    responses((status = 200, body = Build), (status = 404, body = ErrorBody)))]
async fn stop_build(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Build>> {
    let build = builds::build_for(&state.pool, &current.user, &id).await?;
    Ok(Json(builds::stop(&state, &state.builds, &build).await?))
}

/// The build's log so far, as text.
#[utoipa::path(get, path = "/builds/{id}/log", tag = "builds",
    params(("id" = String, Path, description = "Build id")),
    responses((status = 200, description = "text/plain"), (status = 404, body = ErrorBody)))]
async fn build_log(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let build = builds::build_for(&state.pool, &current.user, &id).await?;
    let path = builds::build_dir(&state.settings.data_dir, &build.id).join("build.log");
    let text = tokio::fs::read(&path).await.unwrap_or_default();
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// The log live, as server-sent events: the whole log so far as `line`
/// events, then new `line`s and `phase` changes (`{"phase","status",
/// "duration_ms"}`) until an `end` event (`{"status"}`).
#[utoipa::path(get, path = "/builds/{id}/log/stream", tag = "builds",
    params(("id" = String, Path, description = "Build id")),
    responses((status = 200, description = "text/event-stream"), (status = 404, body = ErrorBody)))]
async fn build_log_stream(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Sse<impl futures_util::Stream<Item = std::result::Result<Event, Infallible>>>> {
    let build = builds::build_for(&state.pool, &current.user, &id).await?;
    let path = builds::build_dir(&state.settings.data_dir, &build.id).join("build.log");
    let stream = log_events(
        state.builds.clone(),
        state.pool.clone(),
        build.id.clone(),
        path,
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

enum Mode {
    /// Following the running build's channel.
    Live(tokio::sync::broadcast::Receiver<LogEvent>),
    /// Not running here (queued, finished, or on its way): poll the file.
    Poll,
    Done,
}

struct Follow {
    queue: std::collections::VecDeque<Event>,
    mode: Mode,
    /// Log lines sent so far.
    sent: u64,
    /// How far the log file was read (bytes of whole lines), and how many
    /// lines that was: each read picks up where the last one ended.
    offset: u64,
    read: u64,
    /// The phase the replayed log last entered.
    entered: Option<(String, std::time::Instant)>,
}

/// New lines of the log file past `sent`, as events.
async fn file_lines(path: &std::path::Path, f: &mut Follow) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut bytes = Vec::new();
    if let Ok(mut file) = tokio::fs::File::open(path).await {
        if file.seek(std::io::SeekFrom::Start(f.offset)).await.is_ok() {
            let _ = file.read_to_end(&mut bytes).await;
        }
    }
    // Only whole lines: the writer may be in the middle of one.
    let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
        return;
    };
    f.offset += end as u64 + 1;
    for line in String::from_utf8_lossy(&bytes[..end + 1]).lines() {
        // Lines the live channel already delivered are not sent again.
        if f.read >= f.sent {
            f.queue.push_back(Event::default().event("line").data(line));
            f.sent = f.read + 1;
            // A viewer that comes late sees the phases the log tells of.
            if let Some(p) = builds::run::phase_of(line, &mut f.entered) {
                let data = serde_json::to_string(&p).unwrap_or_default();
                f.queue
                    .push_back(Event::default().event("phase").data(data));
            }
        }
        f.read += 1;
    }
}

/// The whole log so far, then live lines, phases and the end. Subscribes
/// before reading the file, so nothing falls between the two; a viewer that
/// comes before the build runs (or while another node runs it) follows the
/// file until the build's channel appears or the build ends.
fn log_events(
    running: std::sync::Arc<builds::Running>,
    pool: sqlx::SqlitePool,
    id: String,
    path: std::path::PathBuf,
) -> impl futures_util::Stream<Item = std::result::Result<Event, Infallible>> {
    let start = Follow {
        queue: Default::default(),
        mode: Mode::Poll,
        sent: 0,
        offset: 0,
        read: 0,
        entered: None,
    };
    futures_util::stream::unfold(start, move |mut f| {
        let (running, pool, id, path) = (running.clone(), pool.clone(), id.clone(), path.clone());
        async move {
            loop {
                if let Some(ev) = f.queue.pop_front() {
                    return Some((Ok(ev), f));
                }
                match std::mem::replace(&mut f.mode, Mode::Done) {
                    Mode::Done => return None,
                    Mode::Poll => {
                        if let Some(rx) = running.subscribe(&id) {
                            file_lines(&path, &mut f).await;
                            f.mode = Mode::Live(rx);
                            continue;
                        }
                        let build = builds::find_build(&pool, &id).await.ok().flatten();
                        let status = build
                            .as_ref()
                            .map(|b| b.status.clone())
                            .unwrap_or_else(|| "FAILED".into());
                        file_lines(&path, &mut f).await;
                        if status == "QUEUED" || status == "IN_PROGRESS" {
                            f.mode = Mode::Poll;
                            if f.queue.is_empty() {
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            }
                            continue;
                        }
                        end_events(&mut f, build.map(|b| b.phases).unwrap_or_default(), &status);
                    }
                    Mode::Live(mut rx) => match rx.recv().await {
                        Ok(LogEvent::Line(n, text)) => {
                            if n >= f.sent {
                                f.sent = n + 1;
                                f.queue.push_back(Event::default().event("line").data(text));
                            }
                            f.mode = Mode::Live(rx);
                        }
                        Ok(LogEvent::Phase(p)) => {
                            let data = serde_json::to_string(&p).unwrap_or_default();
                            f.queue
                                .push_back(Event::default().event("phase").data(data));
                            f.mode = Mode::Live(rx);
                        }
                        Ok(LogEvent::End(status)) => {
                            let phases = builds::find_build(&pool, &id)
                                .await
                                .ok()
                                .flatten()
                                .map(|b| b.phases)
                                .unwrap_or_default();
                            end_events(&mut f, phases, &status);
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            // Fell behind: catch up from the file, then go on.
                            file_lines(&path, &mut f).await;
                            f.mode = Mode::Live(rx);
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            f.mode = Mode::Poll;
                        }
                    },
                }
            }
        }
    })
}

/// The build's final phases (with their durations), then `end`.
fn end_events(f: &mut Follow, phases: Vec<builds::PhaseInfo>, status: &str) {
    for p in phases {
        let data = serde_json::to_string(&p).unwrap_or_default();
        f.queue
            .push_back(Event::default().event("phase").data(data));
    }
    let data = serde_json::json!({ "status": status }).to_string();
    f.queue.push_back(Event::default().event("end").data(data));
    f.mode = Mode::Done;
}

/// The build's artifacts as a zip file.
#[utoipa::path(get, path = "/builds/{id}/artifacts.zip", tag = "builds",
    params(("id" = String, Path, description = "Build id")),
    responses((status = 200, description = "application/zip"), (status = 404, body = ErrorBody)))]
async fn build_artifacts(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let build = builds::build_for(&state.pool, &current.user, &id).await?;
    let dir = builds::build_dir(&state.settings.data_dir, &build.id).join("artifacts");
    if build.artifacts == 0 || !dir.is_dir() {
        return Err(Error::NotFound("this build kept no artifacts".into()));
    }
    let dirs = vec![(String::new(), dir)];
    // The buildspec's artifacts `name`, when it gave one (as CodeBuild names
    // the artifact), else PROJECT-NUMBER.
    let named = std::fs::read_to_string(
        builds::build_dir(&state.settings.data_dir, &build.id).join("artifact-name"),
    )
    .ok()
    .map(|n| n.trim().to_string())
    .filter(|n| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    });
    let name = format!(
        "{}.zip",
        named.unwrap_or_else(|| format!("{}-{}", build.project, build.number))
    );
    zip_response(dirs, &name).await
}

/// A zip of `dirs` (each under its prefix), written to a temporary file
/// and streamed from it: artifacts may be far larger than what the server
/// should hold in memory.
async fn zip_response(dirs: Vec<(String, std::path::PathBuf)>, name: &str) -> Result<Response> {
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let mut tmp = tempfile::tempfile()?;
        {
            let mut w = std::io::BufWriter::new(&mut tmp);
            builds::zip_dirs(&dirs, &mut w)?;
        }
        use std::io::Seek;
        tmp.seek(std::io::SeekFrom::Start(0))?;
        Ok(tmp)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(|e| Error::Internal(format!("cannot read the artifacts: {e}")))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(
        tokio::fs::File::from_std(file),
    ));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}
