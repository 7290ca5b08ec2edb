//! The HTTP application: shared state, the router with its layers, and
//! `nubo serve`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use sqlx::SqlitePool;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{ExpiredDeletion, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;
use tracing::Level;

use crate::config::Settings;
use crate::error::Error;
use crate::keys::{self, MasterKey};
use crate::metrics::Metrics;
use crate::rate_limit::LoginLimiter;
use crate::{accounts, api, auth, db, git_http, web};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: SqlitePool,
    pub settings: Arc<Settings>,
    pub limiter: Arc<LoginLimiter>,
    pub metrics: Arc<Metrics>,
    pub master: Arc<MasterKey>,
    pub cache_dir: PathBuf,
    pub events: crate::events::EventBus,
    pub workspaces: Arc<crate::workspaces::Activity>,
    pub builds: Arc<crate::builds::Running>,
    /// Signs the tokens and cookies of the preview origin.
    pub preview_key: crate::preview::PreviewKey,
    repo_locks: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl AppState {
    /// The lock that serialises work on one repository's working copy.
    pub fn repo_lock(&self, repo_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.repo_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(repo_id.to_string()).or_default().clone()
    }

    /// The repository's working copy, current with the durable store.
    ///
    /// Readers (`push: false`) take the repository's lock only when the
    /// copy is behind, to bring it up to date: a push that stalls while
    /// holding the lock blocks no fetch, browse, build or checkout. A push
    /// (`push: true`) gets the lock for as long as git runs; the caller
    /// bounds that by `repo_lock_max_seconds`.
    pub async fn working_copy(
        &self,
        repo: &crate::repos::Repo,
        push: bool,
    ) -> crate::error::Result<(PathBuf, Option<tokio::sync::OwnedMutexGuard<()>>)> {
        if !push {
            if let Some(dir) =
                crate::repos::current_cache(&self.pool, &self.cache_dir, repo).await?
            {
                return Ok((dir, None));
            }
        }
        let guard = self.repo_lock(&repo.id).lock_owned().await;
        let dir = crate::repos::ensure_cache(
            &self.pool,
            &self.master,
            &self.settings.data_dir,
            &self.cache_dir,
            repo,
        )
        .await?;
        Ok((dir, push.then_some(guard)))
    }

    pub fn new(pool: SqlitePool, settings: Settings, master: MasterKey) -> Self {
        let limiter = LoginLimiter::new(
            settings.login_max_failures_per_account,
            settings.login_max_failures_per_address,
            Duration::from_secs(settings.login_window_seconds),
        );
        let cache_dir = settings.effective_cache_dir();
        AppState {
            pool,
            master: Arc::new(master),
            cache_dir,
            events: crate::events::EventBus::default(),
            workspaces: Arc::default(),
            builds: Arc::default(),
            preview_key: Default::default(),
            repo_locks: Arc::default(),
            settings: Arc::new(settings),
            limiter: Arc::new(limiter),
            metrics: Arc::new(Metrics::default()),
        }
    }
}

/// The whole application router. `tls` marks the router of the HTTPS
/// listener, whose cookies are always `Secure`.
pub fn router(state: AppState, tls: bool) -> Router {
    let (api, openapi) = api::router();
    let openapi_json: Arc<str> = serde_json::to_string_pretty(&openapi)
        .unwrap_or_else(|_| "{}".into())
        .into();
    let sessions = SessionManagerLayer::new(SqliteStore::new(state.pool.clone()))
        .with_name("nubo_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(tls || state.settings.secure_cookies())
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            state.settings.session_idle_minutes as i64,
        )));
    Router::new()
        .merge(web::routes())
        .merge(git_http::routes())
        .route(
            "/api/v1/workspaces/{id}/files/",
            get(crate::workspace_api::list_root_slash),
        )
        // The way into a preview: a redirect to its own origin.
        .route("/w/{id}/preview/{port}", any(crate::preview::entry))
        .route("/w/{id}/preview/{port}/", any(crate::preview::entry))
        .route("/w/{id}/preview/{port}/{*rest}", any(crate::preview::entry))
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = openapi_json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        doc.to_string(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::csrf_guard,
        ))
        .layer(sessions)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // The path only: query strings may carry values users typed.
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
            ),
        ))
        .with_state(state)
}

/// The base URL for links shown in answer to this request.
pub fn base_url(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    state.settings.base_url_for(host)
}

async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    state
        .metrics
        .record(&method, &route, response.status().as_u16(), start.elapsed());
    response
}

/// `/metrics`: off unless `metrics_token` is set, then only for a request
/// that carries it as a bearer token.
async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Error> {
    let Some(expected) = &state.settings.metrics_token else {
        return Err(Error::NotFound(
            "metrics are off on this server (an administrator can set metrics_token)".into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !auth::secret_matches(expected, given.trim()) {
        let mut r = Error::Unauthorized(
            "send the metrics token as `Authorization: Bearer <metrics_token>`".into(),
        )
        .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"nubo metrics\""),
        );
        return Ok(r);
    }
    let users = accounts::count(&state.pool).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(users),
    )
        .into_response())
}

async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    if path.starts_with("/api/") {
        Error::NotFound(format!("no API route {} {path}", request.method())).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Html(nubo_frontend::pages::message(
                "Not found",
                "There is no page at this address.",
            )),
        )
            .into_response()
    }
}

/// `nubo serve`: migrate, create the first admin if needed, serve until
/// SIGINT/SIGTERM.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let pool = db::open(&settings.data_dir).await?;
    let master = keys::load_or_create(&settings, &pool).await?;
    if let Some(password) = accounts::bootstrap_admin(&pool).await? {
        // Printed to stdout, never logged: it is a secret and shown once.
        println!(
            "\n  Nubo created the administrator account on first start.\n\
             \n    user:     admin\n    password: {password}\n\
             \n  This one-time password is shown only now. Sign in at {}/login\n  \
             and choose your own password on the Account page.\n",
            settings.base_url()
        );
    }
    let store = SqliteStore::new(pool.clone());
    tokio::spawn(async move {
        if let Err(e) = store
            .continuously_delete_expired(Duration::from_secs(3600))
            .await
        {
            tracing::warn!(error = %e, "expired-session cleanup stopped");
        }
    });
    let listener = tokio::net::TcpListener::bind(settings.http)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}: {e} (choose another address with --http)",
                settings.http
            )
        })?;
    let addr = listener.local_addr()?;
    let ssh_listener = crate::ssh_server::bind(settings.ssh).await?;
    let preview_listener = tokio::net::TcpListener::bind(settings.preview_http)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} for previews: {e} (choose another address with --preview-http)",
                settings.preview_http
            )
        })?;
    let mut settings = settings;
    settings.http = addr;
    settings.ssh = ssh_listener.local_addr()?;
    settings.preview_http = preview_listener.local_addr()?;
    let settings_copy = settings.clone();
    let mut state = AppState::new(pool, settings, MasterKey::new(settings_copy, master));
    // Working copies are rebuilt from the durable store on demand; whatever
    // an earlier process left there is not trusted. Each process works in a
    // directory of its own under the cache dir: a git child of a killed
    // process that is still finishing can then never write into the working
    // copies of this one.
    state.cache_dir = own_cache_dir(&state.cache_dir)?;
    match crate::sandbox::available(&state.settings) {
        Ok(s) => tracing::info!(
            uid = s.uid(),
            network = if s.has_network() { "outbound" } else { "none" },
            "local sandbox: bubblewrap"
        ),
        Err(why) => tracing::warn!(
            reason = %why,
            "no local sandbox: local workspaces and image-less builds are for administrators only (and unconfined)"
        ),
    }
    crate::webhooks::spawn_worker(state.clone());
    crate::workspaces::recover(&crate::workspaces::Env::from_state(&state)).await?;
    crate::workspaces::spawn_reaper(state.clone());
    crate::builds::recover(&state.pool, &state.settings.data_dir).await?;
    crate::builds::spawn_workers(state.clone());
    // The first subscriber of push events: counts them for /metrics.
    let mut pushes = state.events.subscribe();
    let metrics = state.metrics.clone();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match pushes.recv().await {
                Ok(_) => metrics.count_ref_update(),
                Err(RecvError::Lagged(n)) => (0..n).for_each(|_| metrics.count_ref_update()),
                Err(RecvError::Closed) => break,
            }
        }
    });
    let tls_handle = axum_server::Handle::new();
    if let Some(https) = state.settings.https {
        let pem = crate::tls::load_or_generate(&state.settings)?;
        let config = axum_server::tls_rustls::RustlsConfig::from_pem(pem.cert, pem.key)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot use the TLS certificate {}: {e}",
                    pem.source.display()
                )
            })?;
        let app = router(state.clone(), true).into_make_service_with_connect_info::<SocketAddr>();
        let mut server = axum_server::bind_rustls(https, config).handle(tls_handle.clone());
        crate::http_serve::configure(
            server.http_builder(),
            Duration::from_secs(state.settings.http_header_timeout_seconds),
        );
        tokio::spawn(async move {
            if let Err(e) = server.serve(app).await {
                tracing::error!(error = %e, "the HTTPS listener stopped");
            }
        });
        let bound = tls_handle.listening().await.ok_or_else(|| {
            anyhow::anyhow!("cannot listen on {https} (choose another address with --https)")
        })?;
        println!(
            "Nubo {} is listening on https://{bound} (certificate: {})",
            env!("CARGO_PKG_VERSION"),
            pem.source.display()
        );
    }
    crate::ssh_server::start(state.clone(), ssh_listener)?;
    println!(
        "Nubo {} is listening on ssh://{}",
        env!("CARGO_PKG_VERSION"),
        state.settings.ssh
    );
    {
        let app = crate::preview::router(state.clone());
        let timeout = Duration::from_secs(state.settings.http_header_timeout_seconds);
        tokio::spawn(async move {
            let _ =
                crate::http_serve::serve(preview_listener, app, timeout, std::future::pending())
                    .await;
        });
    }
    println!(
        "Nubo {} serves previews on http://{} (an origin apart from its pages)",
        env!("CARGO_PKG_VERSION"),
        state.settings.preview_http
    );
    println!(
        "Nubo {} is listening on http://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    tracing::info!(%addr, data_dir = %state.settings.data_dir.display(), "listening");
    // Where this server listens, for the CLI (git remotes of workspaces).
    let _ = std::fs::write(
        state.settings.data_dir.join("server.json"),
        serde_json::json!({"http": addr.to_string(), "pid": std::process::id()}).to_string(),
    );
    // Terminal keystrokes are tiny writes: http_serve sets TCP_NODELAY
    // (Nagle's algorithm and delayed ACKs add some 40 ms to every echo),
    // and a header-read timeout against slow clients.
    let header_timeout = Duration::from_secs(state.settings.http_header_timeout_seconds);
    crate::http_serve::serve(
        listener,
        router(state, false),
        header_timeout,
        shutdown_signal(),
    )
    .await?;
    tls_handle.graceful_shutdown(Some(Duration::from_secs(5)));
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Takes the cache dir for this process and answers the directory of its
/// own inside it. The cache holds plaintext repositories, and its default
/// name under `/dev/shm` is predictable: a directory someone else made
/// there first (to read what we put in it, or to plant hooks) is refused,
/// not reused. It is made with one `mkdir` (mode 0700) and checked with
/// `lstat`: a directory, not a link, owned by us, mode 0700.
fn own_cache_dir(base: &std::path::Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let mkdir = |p: &std::path::Path| std::fs::DirBuilder::new().mode(0o700).create(p);
    match mkdir(base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => anyhow::bail!(
            "cannot create the cache dir {}: {e} (choose another with --cache-dir)",
            base.display()
        ),
    }
    let meta = std::fs::symlink_metadata(base)
        .map_err(|e| anyhow::anyhow!("cannot inspect the cache dir {}: {e}", base.display()))?;
    let me = unsafe { libc::geteuid() };
    let problem = if meta.file_type().is_symlink() {
        Some("it is a symbolic link".to_string())
    } else if !meta.is_dir() {
        Some("it is not a directory".to_string())
    } else if meta.uid() != me {
        Some(format!(
            "it belongs to uid {}, not to this server (uid {me})",
            meta.uid()
        ))
    } else if meta.mode() & 0o777 != 0o700 {
        Some(format!("its mode is {:o}, not 700", meta.mode() & 0o777))
    } else {
        None
    };
    if let Some(problem) = problem {
        anyhow::bail!(
            "refusing the cache dir {}: {problem}; someone else may have made it to read or plant \
             repository data. Remove it (or fix its owner and mode) and start again, or choose \
             another with --cache-dir",
            base.display()
        );
    }
    // Whatever an earlier process left is not trusted: emptied, then one
    // directory of this process's own (a git child of a killed process
    // that is still finishing can never write into its working copies).
    for entry in std::fs::read_dir(base)?.flatten() {
        let path = entry.path();
        let _ = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
    }
    let run = base.join(format!("run-{}", hex::encode(rand::random::<[u8; 8]>())));
    mkdir(&run).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", run.display()))?;
    Ok(run)
}
