//! Git over HTTP(S) at CodeCommit's URL shape, `/v1/repos/{name}`: the smart
//! protocol (v0 and v2), authenticated with HTTP Basic (user name and an API
//! token as the password). Access is checked here, before git runs.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use futures_util::TryStreamExt;
use nubo_git::smart_http::{self, Service};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::io::{ReaderStream, StreamReader};

use crate::identity::accounts::User;
use crate::identity::git_credentials::{self, Scope};
use crate::identity::tokens;
use crate::repos::{self, Repo};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/repos/{name}/info/refs", get(info_refs))
        .route("/v1/repos/{name}/{service}", post(rpc))
}

/// Serves git to confined workspaces: each listener received is a
/// workspace's `run/git.sock`, bound and checked by the workspaces domain.
pub fn serve_workspaces(
    state: AppState,
    mut listeners: tokio::sync::mpsc::UnboundedReceiver<tokio::net::UnixListener>,
) {
    tokio::spawn(async move {
        while let Some(listener) = listeners.recv().await {
            let app = routes().with_state(state.clone());
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
    });
}

/// A plain-text refusal, which git shows to its user.
fn refuse(status: StatusCode, message: &str) -> Response {
    let mut r = (status, format!("{message}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Nubo git\""),
        );
    }
    r
}

/// The caller of a git request: HTTP Basic with the user name and an API
/// token, or with a generated git credential (which may carry a scope).
async fn basic_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(User, Option<Scope>), Response> {
    let unauthorized = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            "authentication required: use a Nubo git credential, or your user name and an API token as the password",
        )
    };
    let encoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(unauthorized)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(unauthorized)?;
    let (name, secret) = decoded.split_once(':').ok_or_else(unauthorized)?;
    let found = if secret.starts_with("nubo_") {
        tokens::authenticate(&state.pool, secret)
            .await
            .map_err(|e| e.into_response())?
            .filter(|u| u.name.eq_ignore_ascii_case(name))
            .map(|u| (u, None))
    } else {
        git_credentials::authenticate(&state.pool, name, secret)
            .await
            .map_err(|e| e.into_response())?
            .map(|(u, scope)| (u, Some(scope)))
    };
    let (user, scope) = found.ok_or_else(unauthorized)?;
    if user.disabled {
        return Err(refuse(StatusCode::FORBIDDEN, "this account is disabled"));
    }
    Ok((user, scope))
}

async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    service: Service,
) -> Result<(User, Repo), Response> {
    let (user, scope) = basic_user(state, headers).await?;
    let repo = repos::authorize(&state.pool, name, &user, action(service))
        .await
        .map_err(|e| refuse(e.status(), &e.public_message()))?;
    if let Some(scope) = scope {
        scope
            .allows(&repo.name, service == Service::ReceivePack)
            .map_err(|why| refuse(StatusCode::FORBIDDEN, &why))?;
    }
    tracing::info!(user = %user.name, repo = %repo.name, service = service.name(), "git access allowed");
    Ok((user, repo))
}

fn git_protocol(headers: &HeaderMap) -> Option<String> {
    headers
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(smart_http::sanitize_git_protocol)
}

#[derive(Deserialize)]
struct InfoRefsQuery {
    service: Option<String>,
}

async fn info_refs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<InfoRefsQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(service) = q.service.as_deref().and_then(Service::from_name) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "only the smart HTTP protocol is served (git 1.6.6 or newer)",
        );
    };
    let (_, repo) = match authorize(&state, &headers, &name, service).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let dir = match state.working_copy(&repo, false).await {
        Ok((d, _)) => d,
        Err(e) => {
            tracing::error!(repo = %repo.name, error = %e, "working copy unavailable");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not read this repository",
            );
        }
    };
    match smart_http::advertise(&dir, service, git_protocol(&headers).as_deref()).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, service.advertisement_content_type()),
                (header::CACHE_CONTROL, "no-cache".to_string()),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(repo = %repo.name, error = %e, "ref advertisement failed");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not read this repository",
            )
        }
    }
}

async fn rpc(
    State(state): State<AppState>,
    Path((name, service)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(service) = Service::from_name(&service) else {
        return refuse(StatusCode::NOT_FOUND, "no such git service");
    };
    let expected = format!("application/x-{}-request", service.name());
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("expected Content-Type {expected}"),
        );
    }
    let (user, repo) = match authorize(&state, &headers, &name, service).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if service == Service::ReceivePack {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > state.settings.max_push_bytes) {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "this push is larger than the server's limit of {} bytes",
                    state.settings.max_push_bytes
                ),
            );
        }
    }
    // Pushes hold the repository's lock until git is done, so the working
    // copy and the durable refs cannot diverge; fetches take it only when
    // the working copy must be brought up to date.
    let (dir, guard) = match state
        .working_copy(&repo, service == Service::ReceivePack)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(repo = %repo.name, error = %e, "working copy unavailable");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not read this repository",
            );
        }
    };
    let env = hook_env(&state, &repo, &user);
    let version_before = repos::cached_version(&dir);
    let mut child = match smart_http::rpc(&dir, service, git_protocol(&headers).as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot start git");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the server could not start git",
            );
        }
    };
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server could not start git",
        );
    };

    // Request body -> git's stdin, streamed (gunzipped when the client
    // compressed it), capped for pushes.
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = StreamReader::new(stream);
    let mut input: Box<dyn AsyncRead + Send + Unpin> = if gzip {
        Box::new(async_compression::tokio::bufread::GzipDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let limit = match service {
        Service::ReceivePack => state.settings.max_push_bytes,
        Service::UploadPack => u64::MAX,
    };
    let repo_name = repo.name.clone();
    let idle = std::time::Duration::from_secs(state.settings.git_idle_timeout_seconds);
    tokio::spawn(async move {
        let mut limited = (&mut input).take(limit);
        match copy_with_idle_timeout(&mut limited, &mut stdin, idle).await {
            Ok(n) if n >= limit => {
                // Over the limit: stop feeding git, which then rejects the
                // truncated pack and writes nothing.
                tracing::warn!(repo = %repo_name, "push larger than max_push_bytes refused");
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(repo = %repo_name, error = %e, "request body ended early"),
        }
        let _ = stdin.shutdown().await;
    });
    let (pool, bus, repo_id, repo_name) = (
        state.pool.clone(),
        state.events.clone(),
        repo.id.clone(),
        repo.name.clone(),
    );
    let hold = std::time::Duration::from_secs(state.settings.repo_lock_max_seconds);
    tokio::spawn(async move {
        let mut text = String::new();
        let done = async {
            let _ = stderr.read_to_string(&mut text).await;
        };
        wait_bounded(
            &mut child,
            done,
            guard.is_some().then_some(hold),
            &repo_name,
        )
        .await;
        if guard.is_some() {
            crate::repos::pushes::publish_since(&pool, &bus, &repo_id, &repo_name, version_before)
                .await;
        }
        drop(guard);
        if !text.trim().is_empty() {
            tracing::debug!(user = %user.name, git_stderr = %text.trim(), "git said");
        }
    });
    (
        [
            (header::CONTENT_TYPE, service.result_content_type()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        Body::from_stream(ReaderStream::new(stdout)),
    )
        .into_response()
}

/// Copies `from` into `to` until the end; a `from` that sends nothing for
/// `idle` is cut off (a stalled client must not keep git, and a push's
/// lock, waiting forever).
pub async fn copy_with_idle_timeout(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    idle: std::time::Duration,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match tokio::time::timeout(idle, from.read(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no data for {} s", idle.as_secs()),
                ))
            }
        };
        if n == 0 {
            return Ok(total);
        }
        to.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

/// Waits for `output` (the copying of git's output) and then for git; a
/// push's git (which holds the repository's lock) is killed when both take
/// longer than `hold`. Answers git's exit code.
pub async fn wait_bounded(
    child: &mut tokio::process::Child,
    output: impl std::future::Future<Output = ()>,
    hold: Option<std::time::Duration>,
    repo: &str,
) -> Option<i32> {
    let pid = child.id();
    let finish = async {
        output.await;
        child.wait().await.ok().and_then(|s| s.code())
    };
    match hold {
        None => finish.await,
        Some(limit) => match tokio::time::timeout(limit, finish).await {
            Ok(code) => code,
            Err(_) => {
                tracing::warn!(repo = %repo, seconds = limit.as_secs(), "git held the repository's lock too long and was stopped");
                if let Some(pid) = pid {
                    // SAFETY: a plain signal to our own child.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
                let _ = child.wait().await;
                None
            }
        },
    }
}

/// The IAM action a git service needs.
pub fn action(service: Service) -> &'static str {
    match service {
        Service::UploadPack => "codecommit:GitPull",
        Service::ReceivePack => "codecommit:GitPush",
    }
}

/// What the pre-receive hook (`nubo hook pre-receive`) needs to store a
/// push: where the data and the key are, which repository, who pushes.
pub fn hook_env(state: &AppState, repo: &Repo, user: &User) -> Vec<(String, String)> {
    crate::repos::hook_env(&state.settings, repo, user)
}
