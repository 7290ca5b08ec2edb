//! `nubo-agent`: the one process the Nubo server talks to inside a
//! workspace (a local directory or a container). It serves a small HTTP +
//! WebSocket API on a unix socket and owns everything that must outlive a
//! browser tab or a server restart: the terminals (PTYs with scrollback),
//! file operations confined to the workspace root, non-interactive exec,
//! file watching and TCP tunnels to preview ports.
//!
//! The API (all JSON errors are `{"error": {"code", "message"}}`):
//!
//! | route | what |
//! |---|---|
//! | `GET /healthz` | `{"version", "root", "pid"}` |
//! | `GET /files` · `GET /files/{path}` | a directory as JSON, a file as bytes |
//! | `PUT /files/{path}` | write a file atomically (`If-Match` optional) |
//! | `DELETE /files/{path}` | delete a file or a directory tree |
//! | `POST /mkdir` · `POST /move` | `{"path"}` · `{"from", "to"}` |
//! | `POST /exec` | run a command, answer its exit code and output |
//! | `GET/POST /terminals` · `DELETE /terminals/{id}` | terminal sessions |
//! | `GET /terminals/{id}/attach` | WebSocket, framing in [`terminals`] |
//! | `GET /events` | server-sent events: `fs` (changed paths) |
//! | `GET /ports` | TCP ports the workspace's processes listen on |
//! | `GET /tunnel/{port}` | HTTP upgrade to a byte pipe to that port |
//! | `GET/PUT /credential` | the short-lived git credential, memory only |
//! | `POST /shutdown` | end every terminal, then the agent |

pub mod credential;
pub mod deploy;
pub mod exec;
pub mod files;
pub mod ports;
pub mod terminals;
pub mod tunnel;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

/// How the agent was started.
#[derive(Debug, Clone)]
pub struct Options {
    /// The unix socket to serve the API on (replaced if stale).
    pub socket: PathBuf,
    /// The workspace root: every file operation is confined to it.
    pub root: PathBuf,
    /// List every listening port, not only those of the agent's own
    /// descendants (right in a container, where all processes are the
    /// workspace's).
    pub all_ports: bool,
    /// Relay TCP connections to `127.0.0.1:PORT` to a unix socket (git to
    /// the server, for containers without a network path to it).
    pub relay: Option<(u16, PathBuf)>,
}

pub struct Agent {
    pub root: PathBuf,
    pub all_ports: bool,
    pub terminals: terminals::Terminals,
    pub events: watch::Events,
    pub credential: credential::Store,
}

pub type Shared = Arc<Agent>;

/// An API error: a status and a message for the user.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

async fn healthz(axum::extract::State(agent): axum::extract::State<Shared>) -> impl IntoResponse {
    Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "root": agent.root,
        "pid": std::process::id(),
    }))
}

/// Ends every terminal and then the agent itself (the workspace stops).
async fn shutdown(axum::extract::State(agent): axum::extract::State<Shared>) -> StatusCode {
    agent.terminals.kill_all();
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        std::process::exit(0);
    });
    StatusCode::NO_CONTENT
}

pub fn router(agent: Shared) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/files", get(files::get_root))
        .route("/files/", get(files::get_root))
        .route(
            "/files/{*path}",
            get(files::get).put(files::put).delete(files::delete),
        )
        .route("/mkdir", post(files::mkdir))
        .route("/move", post(files::rename))
        .route("/exec", post(exec::exec))
        .route("/terminals", get(terminals::list).post(terminals::create))
        .route("/terminals/{id}", axum::routing::delete(terminals::delete))
        .route("/terminals/{id}/attach", get(terminals::attach))
        .route("/events", get(watch::sse))
        .route("/ports", get(ports::list))
        .route("/tunnel/{port}", get(tunnel::open))
        .route("/shutdown", post(shutdown))
        .route("/credential", get(credential::get).put(credential::put))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(agent)
}

/// Runs the agent until it is killed.
pub async fn serve(options: Options) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(&options.root).with_context(|| {
        format!(
            "cannot create the workspace root {}",
            options.root.display()
        )
    })?;
    let root = std::fs::canonicalize(&options.root)?;
    if let Some(dir) = options.socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket left by an earlier agent is replaced; a live agent is not.
    if tokio::net::UnixStream::connect(&options.socket)
        .await
        .is_ok()
    {
        anyhow::bail!("another agent already serves {}", options.socket.display());
    }
    let _ = std::fs::remove_file(&options.socket);
    let listener = tokio::net::UnixListener::bind(&options.socket)
        .with_context(|| format!("cannot listen on {}", options.socket.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&options.socket, std::fs::Permissions::from_mode(0o600));
    }
    let events = watch::Events::start(&root);
    let agent = Arc::new(Agent {
        root,
        all_ports: options.all_ports,
        terminals: terminals::Terminals::default(),
        events,
        credential: credential::Store::default(),
    });
    if let Some((port, target)) = options.relay.clone() {
        relay(port, target).await?;
    }
    tracing::info!(socket = %options.socket.display(), "nubo-agent is serving");
    axum::serve(listener, router(agent)).await?;
    Ok(())
}

/// Accepts on `127.0.0.1:port` and pipes every connection to `target`.
async fn relay(port: u16, target: PathBuf) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} for the relay"))?;
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::UnixStream::connect(&target).await {
                    let _ = client.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    Ok(())
}
