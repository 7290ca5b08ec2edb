//! `AppState`: what the server's handlers reach — the domains' shared
//! context ([`Ctx`]) and each domain's registry of what runs in this
//! process (running builds, workspace activity, repository locks), plus
//! the HTTP layer's own (login limiter, metrics, the preview key).

use std::collections::HashMap;
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
    pub workspaces: Arc<crate::workspaces::Activity>,
    pub builds: Arc<crate::builds::Running>,
    /// Signs the tokens and cookies of the preview origin.
    pub preview_key: crate::preview::PreviewKey,
    repo_locks: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::ops::Deref for AppState {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
    }
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

    pub fn new(ctx: Ctx) -> Self {
        let settings = &ctx.settings;
        let limiter = LoginLimiter::new(
            settings.login_max_failures_per_account,
            settings.login_max_failures_per_address,
            Duration::from_secs(settings.login_window_seconds),
        );
        AppState {
            ctx,
            workspaces: Arc::default(),
            builds: Arc::default(),
            preview_key: Default::default(),
            repo_locks: Arc::default(),
            limiter: Arc::new(limiter),
            metrics: Arc::new(Metrics::default()),
        }
    }
}
