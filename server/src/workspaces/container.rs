//! The container backend: a workspace is a container made through the
//! Docker Engine API (Docker, or Podman's compatible service), with the
//! agent bind-mounted read-only and started as the container's process.
//!
//! The API is spoken directly (JSON over the engine's unix socket, version
//! 1.41, which Podman 4.3 serves) with the same small HTTP client that
//! reaches agents: the half dozen calls needed do not justify a client crate.
//!
//! What the container gets: the workspace files at `/workspace`, the home
//! directory at `/home/nubo`, the agent's socket directory at `/run/nubo`
//! (the server reaches the agent there, and serves git for the workspace on
//! `/run/nubo/git.sock`, which the agent relays to `127.0.0.1:7999`), the
//! agent at `/opt/nubo/bin/nubo-agent` (read-only). It runs as uid 1000 with
//! every capability dropped, `no-new-privileges`, CPU, memory and pids
//! limits, and its own network namespace. It sees neither the engine's
//! socket nor anything else of the host or of other workspaces.

use crate::agent_client::Method;

use crate::engine::{
    call, create_container, engine, engine_error, image_available, remove_container,
    start_container, stop_container,
};
use crate::error::{Error, Result};
use crate::workspaces::{self, Env, Workspace};

/// Where the agent binary is bind-mounted (read-only) in every container.
pub const AGENT_PATH: &str = "/opt/nubo/bin/nubo-agent";
/// The loopback port in a container where the agent relays git to the server.
pub const GIT_RELAY_PORT: u16 = 7999;
/// The uid:gid workspace processes run as (the image's `nubo` user).
pub const WORKSPACE_UID: u32 = 1000;

fn container_name(ws: &Workspace) -> String {
    format!("nubo-ws-{}", ws.id)
}

/// Creates (first time) and starts the workspace's container; answers its id.
pub async fn start(env: &Env, ws: &Workspace) -> Result<String> {
    let engine = engine(&env.settings)?;
    let base = workspaces::dir(&env.settings, &ws.id);
    let name = container_name(ws);
    let (status, info) = call(
        &engine,
        Method::GET,
        &format!("/containers/{name}/json"),
        None,
    )
    .await?;
    if status == 404 {
        let image = ws
            .image
            .clone()
            .unwrap_or_else(|| env.settings.workspace_image.clone());
        image_available(&env.settings, &image).await?;
        let exe = std::env::current_exe()
            .map_err(|e| Error::Internal(format!("cannot find the nubo binary: {e}")))?;
        let settings = &env.settings;
        let body = serde_json::json!({
            "Image": image,
            "Cmd": [AGENT_PATH, "serve", "--socket", "/run/nubo/agent.sock", "--root", "/workspace",
                    "--all-ports", "--relay", format!("{GIT_RELAY_PORT}:/run/nubo/git.sock")],
            "User": format!("{WORKSPACE_UID}:{WORKSPACE_UID}"),
            "WorkingDir": "/workspace",
            "Hostname": ws.name.to_lowercase().replace(['.', '_'], "-"),
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/home/nubo",
                format!("USER={}", ws.owner),
                "SHELL=/bin/bash",
                "LANG=C.UTF-8",
                "TERM=xterm-256color",
                "NUBO_AGENT_SOCKET=/run/nubo/agent.sock",
                format!("NUBO_WORKSPACE_ID={}", ws.id),
                "GIT_CONFIG_GLOBAL=/home/nubo/.gitconfig",
                "RUST_LOG=warn",
            ],
            "Labels": {"io.nubo.workspace": ws.id},
            "HostConfig": {
                "Binds": [
                    format!("{}:/workspace", base.join("files").display()),
                    format!("{}:/home/nubo", base.join("home").display()),
                    format!("{}:/run/nubo", base.join("run").display()),
                    format!("{}:{AGENT_PATH}:ro", exe.display()),
                ],
                "Memory": settings.workspace_memory_mb * 1024 * 1024,
                "MemorySwap": settings.workspace_memory_mb * 1024 * 1024,
                "NanoCpus": (settings.workspace_cpus * 1e9) as i64,
                "PidsLimit": settings.workspace_pids,
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "NetworkMode": settings.workspace_network,
                "Init": true,
            },
        });
        create_container(&engine, &name, body, "the container").await?;
    } else if status != 200 {
        return Err(engine_error("inspecting the container", status, &info));
    }
    start_container(&engine, &name, "the container").await?;
    Ok(name)
}

pub async fn stop(env: &Env, ws: &Workspace) -> Result<()> {
    stop_container(
        &engine(&env.settings)?,
        &container_name(ws),
        "the container",
    )
    .await
}

pub async fn remove(env: &Env, ws: &Workspace) -> Result<()> {
    remove_container(
        &engine(&env.settings)?,
        &container_name(ws),
        "the container",
    )
    .await
}

/// Has the server serve git for a confined workspace on `run/git.sock`
/// (relayed by the agent to `127.0.0.1:7999` inside), unless it already
/// does. Only inside `nubo serve`: the CLI serves no git.
pub async fn ensure_git_socket(env: &Env, ws: &Workspace) {
    let Some(server) = &env.server else {
        return;
    };
    let run = workspaces::dir(&env.settings, &ws.id).join("run");
    let path = run.join("git.sock");
    // `run/` is the server's (isolation::close_run_dir): nothing
    // of the workspace's can be at this path, nor appear between the bind
    // and the chmod. A directory still owned by someone else is not used.
    {
        use std::os::unix::fs::MetadataExt;
        let ours = std::fs::symlink_metadata(&run)
            .is_ok_and(|m| m.is_dir() && m.uid() == unsafe { libc::geteuid() });
        if !ours {
            tracing::warn!(workspace = %ws.id, "the workspace's run dir is not the server's: git is not served to it");
            return;
        }
    }
    if tokio::net::UnixStream::connect(&path).await.is_ok() {
        return;
    }
    let _ = std::fs::remove_file(&path);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(workspace = %ws.id, error = %e, "cannot serve git to the workspace");
            return;
        }
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666));
    }
    if server.git.send(listener).is_err() {
        tracing::warn!(workspace = %ws.id, "the server's git transport is gone: git is not served to the workspace");
    }
}
