//! Managed targets on the container backend: a group with an image runs
//! each managed target as a container of it, made through the engine API
//! as container workspaces are: uid 1000, every capability dropped,
//! `no-new-privileges`, the workspace limits, its own network namespace,
//! no engine socket. The target's directories are bind-mounted at the same
//! places a local managed target sees them (`/deploy`, `/srv`,
//! `/home/nubo`, `/run/nubo`) and the agent read-only at
//! `/opt/nubo/bin/nubo-agent`; the container outlives the server.

use crate::agent_client::Method;
use crate::ctx::Ctx;
use crate::engine::{
    call, create_container, engine, engine_error, remove_container, start_container, stop_container,
};
use crate::error::Result;

/// The uid the agents and hooks run as (the image's `nubo` user).
pub const UID: u32 = 1000;
/// The label that marks Nubo's deployment target containers.
pub const LABEL: &str = "io.nubo.deploy-target";

const WHAT: &str = "the deployment target's container";

/// The container of managed target `id`.
pub fn name(id: &str) -> String {
    format!("nubo-deploy-{id}")
}

/// Whether the container of managed target `id` is running.
pub async fn running(ctx: &Ctx, id: &str) -> Result<bool> {
    let engine = engine(&ctx.settings)?;
    let (status, info) = call(
        &engine,
        Method::GET,
        &format!("/containers/{}/json", name(id)),
        None,
    )
    .await?;
    match status {
        200 => Ok(info["State"]["Running"].as_bool().unwrap_or(false)),
        404 => Ok(false),
        _ => Err(engine_error(
            "inspecting a deployment target",
            status,
            &info,
        )),
    }
}

/// Makes a fresh container for managed target `id` (any old one goes) and
/// starts it running `script` with `/bin/sh`.
pub async fn start(
    ctx: &Ctx,
    id: &str,
    hostname: &str,
    image: &str,
    script: &str,
    binds: &[(std::path::PathBuf, &str, bool)],
) -> Result<()> {
    let engine = engine(&ctx.settings)?;
    remove(ctx, id).await?;
    let s = &ctx.settings;
    let binds: Vec<String> = binds
        .iter()
        .map(|(host, inside, ro)| {
            format!(
                "{}:{inside}{}",
                host.display(),
                if *ro { ":ro" } else { "" }
            )
        })
        .collect();
    let body = serde_json::json!({
        "Image": image,
        "Cmd": ["/bin/sh", "-c", script],
        "User": format!("{UID}:{UID}"),
        "WorkingDir": "/srv",
        "Hostname": hostname,
        "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/home/nubo",
            "LANG=C.UTF-8",
            "RUST_LOG=warn",
        ],
        "Labels": {LABEL: id},
        "HostConfig": {
            "Binds": binds,
            "Memory": s.workspace_memory_mb * 1024 * 1024,
            "MemorySwap": s.workspace_memory_mb * 1024 * 1024,
            "NanoCpus": (s.workspace_cpus * 1e9) as i64,
            "PidsLimit": s.workspace_pids,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "NetworkMode": s.workspace_network,
            "Init": true,
        },
    });
    create_container(&engine, &name(id), body, WHAT).await?;
    start_container(&engine, &name(id), WHAT).await
}

/// Stops the container of managed target `id` (kept, for its logs).
pub async fn stop(ctx: &Ctx, id: &str) -> Result<()> {
    stop_container(&engine(&ctx.settings)?, &name(id), WHAT).await
}

/// Removes the container of managed target `id`, if there is one.
pub async fn remove(ctx: &Ctx, id: &str) -> Result<()> {
    remove_container(&engine(&ctx.settings)?, &name(id), WHAT).await
}
