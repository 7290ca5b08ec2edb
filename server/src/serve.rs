//! `nubo serve`: migrate, create the first administrator, recover what
//! the last process left, start every domain's workers and serve HTTP(S),
//! SSH and the preview origin until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tower_sessions::ExpiredDeletion;
use tower_sessions_sqlx_store::SqliteStore;

use crate::config::Settings;
use crate::ctx::Ctx;
use crate::http::router::router;
use crate::keys::{self, MasterKey};
use crate::state::AppState;
use crate::{db, identity::accounts};

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
    let ssh_listener = crate::repos::ssh::bind(settings.ssh).await?;
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
    let mut ctx = Ctx::new(pool, settings, MasterKey::new(settings_copy, master));
    // Working copies are rebuilt from the durable store on demand; whatever
    // an earlier process left there is not trusted. Each process works in a
    // directory of its own under the cache dir: a git child of a killed
    // process that is still finishing can then never write into the working
    // copies of this one.
    ctx.cache_dir = own_cache_dir(&ctx.cache_dir)?;
    let (git_listeners, workspace_git) = tokio::sync::mpsc::unbounded_channel();
    let state = AppState::new(ctx, git_listeners);
    crate::repos::git_http::serve_workspaces(state.clone(), workspace_git);
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
    crate::repos::webhooks::spawn_worker(state.ctx.clone());
    crate::repos::mirror::spawn_worker(state.ctx.clone(), state.repo_locks.clone());
    crate::workspaces::recover(&state.workspace_env()).await?;
    crate::workspaces::spawn_reaper(state.workspace_env(), state.workspaces.clone());
    crate::builds::recover(&state.pool, &state.settings.data_dir).await?;
    crate::builds::spawn_workers(state.ctx.clone(), state.builds.clone());
    crate::pipelines::engine::spawn(
        state.ctx.clone(),
        state.builds.clone(),
        state.pipelines.clone(),
    );
    // Managed deployment targets reach the agent protocol through sockets
    // of their own.
    let (deploy_tx, mut deploy_listeners) = tokio::sync::mpsc::unbounded_channel();
    *state.deployments.listeners.lock().expect("listeners") = Some(deploy_tx);
    {
        let state = state.clone();
        tokio::spawn(async move {
            while let Some(listener) = deploy_listeners.recv().await {
                let app = crate::deployments::agent_api::routes().with_state(state.clone());
                tracing::debug!("serving a managed target's socket");
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::error!(error = %e, "a managed target's socket failed");
                    }
                });
            }
        });
    }
    crate::deployments::engine::spawn(
        state.ctx.clone(),
        state.deployments.clone(),
        state.repo_locks.clone(),
    );
    // Pushes start the pipelines whose source branch they update.
    let mut pushed = state.events.subscribe();
    let (ctx, engine, locks) = (
        state.ctx.clone(),
        state.pipelines.clone(),
        state.repo_locks.clone(),
    );
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match pushed.recv().await {
                Ok(update) => {
                    match crate::pipelines::triggers::on_push(&ctx, &locks, &update).await {
                        Ok(started) if !started.is_empty() => engine.wake.notify_one(),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(error = %e, repo = %update.repo, "a push could not start its pipelines")
                        }
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::error!(missed = n, "pipelines missed push events")
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
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
        crate::http::listen::configure(
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
    crate::repos::ssh::start(state.clone(), ssh_listener)?;
    println!(
        "Nubo {} is listening on ssh://{}",
        env!("CARGO_PKG_VERSION"),
        state.settings.ssh
    );
    {
        // Deployed apps' URLs beside the previews, on the same origin apart.
        let app = crate::deployments::app_proxy::routes()
            .with_state(state.clone())
            .merge(crate::workspaces::preview::router(state.clone()));
        let timeout = Duration::from_secs(state.settings.http_header_timeout_seconds);
        tokio::spawn(async move {
            let _ =
                crate::http::listen::serve(preview_listener, app, timeout, std::future::pending())
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
    crate::http::listen::serve(
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
