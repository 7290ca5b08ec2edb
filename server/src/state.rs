//! `AppState`: what the server's handlers reach — the domains' shared
//! context ([`Ctx`]) and each domain's registry of what runs in this
//! process (running builds, workspace activity, repository locks), plus
//! the HTTP layer's own (login limiter, metrics, the preview key).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::ctx::Ctx;
use crate::metrics::Metrics;
use crate::rate_limit::LoginLimiter;

/// What every handler can reach. It dereferences to its [`Ctx`], so
/// `&state` passes where a domain takes `&Ctx`.
#[derive(Clone)]
pub struct AppState {
    pub ctx: Ctx,
    pub limiter: Arc<LoginLimiter>,
    pub metrics: Arc<Metrics>,
    pub workspaces: crate::workspaces::Server,
    pub builds: Arc<crate::builds::Running>,
    /// The pipeline engine's wake-up.
    pub pipelines: Arc<crate::pipelines::engine::Engine>,
    /// The deployment engine's wake-ups (its loop and the agents' polls).
    pub deployments: Arc<crate::deployments::engine::Engine>,
    /// Signs the tokens and cookies of the preview origin.
    pub preview_key: crate::workspaces::preview_key::PreviewKey,
    /// The locks of the repositories' working copies.
    pub repo_locks: crate::repos::Locks,
}

impl std::ops::Deref for AppState {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}

impl AppState {
    /// The repository's working copy, current with the durable store
    /// (see [`crate::repos::working_copy`]).
    pub async fn working_copy(
        &self,
        repo: &crate::repos::Repo,
        push: bool,
    ) -> crate::error::Result<(PathBuf, Option<tokio::sync::OwnedMutexGuard<()>>)> {
        crate::repos::working_copy(&self.ctx, &self.repo_locks, repo, push).await
    }

    /// What workspace operations take inside the server.
    pub fn workspace_env(&self) -> crate::workspaces::Env {
        crate::workspaces::Env {
            ctx: self.ctx.clone(),
            server: Some(self.workspaces.clone()),
        }
    }

    /// `git_listeners` receives the git sockets of confined workspaces, for
    /// the git transport to serve.
    pub fn new(
        ctx: Ctx,
        git_listeners: tokio::sync::mpsc::UnboundedSender<tokio::net::UnixListener>,
    ) -> Self {
        let settings = &ctx.settings;
        let limiter = LoginLimiter::new(
            settings.login_max_failures_per_account,
            settings.login_max_failures_per_address,
            Duration::from_secs(settings.login_window_seconds),
        );
        let repo_locks = crate::repos::Locks::default();
        AppState {
            ctx,
            workspaces: crate::workspaces::Server {
                activity: Arc::default(),
                locks: repo_locks.clone(),
                git: git_listeners,
            },
            builds: Arc::new(crate::builds::Running::new(repo_locks.clone())),
            pipelines: Arc::default(),
            deployments: Arc::default(),
            preview_key: Default::default(),
            repo_locks,
            limiter: Arc::new(limiter),
            metrics: Arc::new(Metrics::default()),
        }
    }
}
