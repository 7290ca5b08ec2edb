//! A container build: `nubo build` (the same runner) in an ephemeral
//! container of the build's image, through the container engine, with the
//! checkout, the out directory and the project's cache mounted, the
//! server's workspace limits (or the project's) and network.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::agent_client::Method;

use crate::builds::external::BUILD_TOOL;
use crate::config::Settings;
use crate::engine::{
    call, create_container, engine, engine_error, image_available, start_container,
};
use crate::error::{Error, Result};

/// What a container build needs: `work` holds `src/` (the checkout) and
/// `out/` (buildspec, secrets file; artifacts and the outcome come back
/// there).
pub struct ContainerBuild<'a> {
    pub name: String,
    pub image: String,
    /// The source, mounted at /codebuild/src.
    pub src: &'a Path,
    /// Buildspec and secrets in; log, outcome and artifacts out (/codebuild/out).
    pub out: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cancel: Arc<AtomicBool>,
    /// The project's cache directory, mounted at /codebuild/cache.
    pub cache: std::path::PathBuf,
    /// Limits overriding the server's `workspace_*` settings.
    pub memory_mb: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

/// Runs `nubo build` in an ephemeral container of the build's image,
/// calling `follow` (which reads the log the runner writes) every 50 ms
/// while it runs; answers the container's exit status, or None when it was
/// stopped.
#[allow(clippy::type_complexity)]
pub async fn run_build(
    settings: &Settings,
    build: ContainerBuild<'_>,
    follow: &mut (dyn FnMut(&mut (dyn FnMut(&str) + Send)) + Send),
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<Option<i64>> {
    let engine = engine(settings)?;
    image_available(settings, &build.image).await?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::Internal(format!("cannot find the nubo binary: {e}")))?;
    let memory = build.memory_mb.unwrap_or(settings.workspace_memory_mb);
    let mut cmd = vec![BUILD_TOOL.to_string(), "build".into()];
    cmd.extend(build.args.clone());
    let body = serde_json::json!({
        "Image": build.image,
        "Cmd": cmd,
        "User": "0:0",
        "WorkingDir": "/codebuild/src",
        "Tty": true,
        "Env": build.env,
        "Labels": {"io.nubo.build": build.name},
        "HostConfig": {
            "Binds": [
                format!("{}:/codebuild/src", build.src.display()),
                format!("{}:/codebuild/out", build.out.display()),
                format!("{}:/codebuild/cache", build.cache.display()),
                format!("{}:{BUILD_TOOL}:ro", exe.display()),
            ],
            "Memory": memory * 1024 * 1024,
            "MemorySwap": memory * 1024 * 1024,
            "NanoCpus": (build.cpus.unwrap_or(settings.workspace_cpus) * 1e9) as i64,
            "PidsLimit": build.pids.unwrap_or(settings.workspace_pids),
            "CapDrop": ["NET_RAW", "MKNOD", "AUDIT_WRITE", "SYS_CHROOT", "SETFCAP"],
            "SecurityOpt": ["no-new-privileges"],
            "NetworkMode": settings.workspace_network,
        },
    });
    let name = build.name.clone();
    create_container(&engine, &name, body, "the build container").await?;
    let result = async {
        start_container(&engine, &name, "the build container").await?;
        // Stop switch: kill the container when asked.
        let done = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        {
            let (engine, name, cancel, done, stopped) = (
                engine.clone(),
                name.clone(),
                build.cancel.clone(),
                done.clone(),
                stopped.clone(),
            );
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    if cancel.load(Ordering::Relaxed) {
                        stopped.store(true, Ordering::Relaxed);
                        let _ = call(
                            &engine,
                            Method::POST,
                            &format!("/containers/{name}/kill"),
                            None,
                        )
                        .await;
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            });
        }
        // The log: the runner inside writes it to out/build.log, line by
        // line; follow that file until the container has exited (engine log
        // streams can end before the last output when a container exits).
        let mut wait = {
            let (engine, name) = (engine.clone(), name.clone());
            tokio::spawn(async move {
                call(
                    &engine,
                    Method::POST,
                    &format!("/containers/{name}/wait"),
                    None,
                )
                .await
            })
        };
        let waited = loop {
            follow(on_line);
            tokio::select! {
                w = &mut wait => break w,
                _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            }
        };
        let (s, waited) = waited.map_err(|e| Error::Internal(e.to_string()))??;
        done.store(true, Ordering::Relaxed);
        if s != 200 {
            return Err(engine_error("waiting for the build container", s, &waited));
        }
        if stopped.load(Ordering::Relaxed) {
            return Ok(None);
        }
        Ok(Some(waited["StatusCode"].as_i64().unwrap_or(-1)))
    }
    .await;
    let _ = call(
        &engine,
        Method::DELETE,
        &format!("/containers/{name}?force=true&v=true"),
        None,
    )
    .await;
    result
}
