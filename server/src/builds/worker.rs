//! The build queue: the `builds` table is the queue (a worker claims the
//! oldest QUEUED build, QUEUED → IN_PROGRESS in one statement), at most
//! `build_concurrency` workers; the registry of what runs in this process
//! (live channels, stop switches); stop; recovery at start.

use super::run::{execute, sandbox_name};
use super::*;

#[derive(Default)]
pub(super) struct Live {
    pub(super) channel: Option<broadcast::Sender<LogEvent>>,
    pub(super) cancel: Option<Arc<AtomicBool>>,
}

/// The server's running builds: their live channels and stop switches
/// (the builds domain's registry), with the repositories' working copy
/// locks builds check out under.
pub struct Running {
    pub(super) map: Mutex<HashMap<String, Live>>,
    pub wake: tokio::sync::Notify,
    pub repos: crate::repos::Locks,
}

impl Running {
    pub fn new(repos: crate::repos::Locks) -> Running {
        Running {
            map: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            repos,
        }
    }

    pub fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<LogEvent>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id)
            .and_then(|l| l.channel.as_ref())
            .map(|c| c.subscribe())
    }

    /// Asks a running build to stop; answers whether it was running here.
    pub fn cancel(&self, id: &str) -> bool {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(id).and_then(|l| l.cancel.as_ref()) {
            Some(c) => {
                c.store(true, std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

/// Stops a build: a queued one at once, a running one at its next check.
pub async fn stop(ctx: &Ctx, running: &Running, build: &Build) -> Result<Build> {
    let stopped = sqlx::query(
        "UPDATE builds SET status = 'STOPPED', ended_at = $1, reason = $2 WHERE id = $3 AND status = 'QUEUED'",
    )
    .bind(now_ms())
    .bind("stopped before it started")
    .bind(&build.id)
    .execute(&ctx.pool)
    .await?;
    if stopped.rows_affected() == 0 && build.status == "IN_PROGRESS" {
        running.cancel(&build.id);
        for _ in 0..100 {
            let b = find_build(&ctx.pool, &build.id).await?.expect("exists");
            if b.status != "IN_PROGRESS" {
                return Ok(b);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    Ok(find_build(&ctx.pool, &build.id).await?.expect("exists"))
}

/// Kills processes left by builds that were running in a stopped server
/// (found by the `NUBO_BUILD_ID` every build process inherits).
fn kill_leftovers(ids: &[String]) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let environ = String::from_utf8_lossy(&environ);
        if environ
            .split('\0')
            .any(|v| ids.iter().any(|id| v == format!("NUBO_BUILD_ID={id}")))
        {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// On start: builds that were running when the server stopped failed, and
/// what they left for their runner (the secrets file among it) is removed.
pub async fn recover(pool: &SqlitePool, data_dir: &Path) -> Result<()> {
    if let Ok(entries) = std::fs::read_dir(data_dir.join("builds")) {
        for e in entries.flatten() {
            for leftover in ["out", "sandbox-etc"] {
                let _ = std::fs::remove_dir_all(e.path().join(leftover));
            }
        }
    }
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM builds WHERE status = 'IN_PROGRESS'")
        .fetch_all(pool)
        .await?;
    kill_leftovers(&ids);
    for id in &ids {
        crate::cgroup::Cgroup::existing(&sandbox_name(id)).remove();
    }
    let n = sqlx::query(
        "UPDATE builds SET status = 'FAILED', ended_at = $1,
             reason = 'the server stopped while the build was running'
         WHERE status = 'IN_PROGRESS'",
    )
    .bind(now_ms())
    .execute(pool)
    .await?;
    if n.rows_affected() > 0 {
        tracing::warn!(
            builds = n.rows_affected(),
            "builds interrupted by a restart were marked failed"
        );
    }
    Ok(())
}

/// Starts the workers that take builds off the queue.
pub fn spawn_workers(ctx: Ctx, running: Arc<Running>) {
    // Queued builds that waited too long fail (checked apart from the
    // workers, which may all be busy).
    {
        let (ctx, running) = (ctx.clone(), running.clone());
        tokio::spawn(async move {
            loop {
                let limit = ctx.settings.build_queue_timeout_seconds as i64;
                let _ = sqlx::query(
                    "UPDATE builds SET status = 'FAILED', ended_at = $1, reason = $2
                     WHERE status = 'QUEUED' AND queued_at < $3",
                )
                .bind(now_ms())
                .bind(format!(
                    "waited in the queue longer than {}",
                    crate::db::human_duration(limit)
                ))
                .bind(now_ms() - limit * 1000)
                .execute(&ctx.pool)
                .await;
                // Batches move on when their builds end; this is the backstop.
                if let Err(e) = crate::builds::batches::advance_all(&ctx, &running).await {
                    tracing::warn!(error = %e, "cannot move batches on");
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        });
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(
        ctx.settings.build_concurrency.max(1),
    ));
    tokio::spawn(async move {
        loop {
            let permit = match slots.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => return,
            };
            match claim(&ctx.pool).await {
                Ok(Some(id)) => {
                    let (ctx, running) = (ctx.clone(), running.clone());
                    tokio::spawn(async move {
                        if let Err(e) = execute(&ctx, &running, &id).await {
                            tracing::error!(build = %id, error = %e, "build failed to run");
                            let _ = sqlx::query(
                                "UPDATE builds SET status = 'FAILED', ended_at = $1, reason = $2 WHERE id = $3 AND status = 'IN_PROGRESS'",
                            )
                            .bind(now_ms())
                            .bind(e.public_message())
                            .bind(&id)
                            .execute(&ctx.pool)
                            .await;
                        }
                        drop(permit);
                        running.wake.notify_one();
                    });
                }
                Ok(None) => {
                    drop(permit);
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_millis(500),
                        running.wake.notified(),
                    )
                    .await;
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "cannot read the build queue");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
}

async fn claim(pool: &SqlitePool) -> Result<Option<String>> {
    let id: Option<String> = sqlx::query_scalar(
        "UPDATE builds SET status = 'IN_PROGRESS', started_at = $1, current_phase = 'PROVISIONING'
         WHERE id = (SELECT id FROM builds WHERE status = 'QUEUED' ORDER BY queued_at LIMIT 1)
           AND status = 'QUEUED'
         RETURNING id",
    )
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    Ok(id)
}
