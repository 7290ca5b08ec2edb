//! Managed targets: deployment targets Nubo starts itself for a group
//! (`managed_count` of them). On the embedded default each is a local
//! sandbox (bubblewrap, as `sandbox_uid`, like a local workspace) running
//! two agents: `nubo-agent serve` (whose tunnel reaches the app's port for
//! the app URL) and `nubo-agent deploy`, which reaches the server through
//! the serve agent's relay to a unix socket of its own. The sandbox
//! outlives the server; a new server binds the socket again.
//!
//! Layout: `<data>/deploy-targets/<id>/{deploy,srv,home,run,etc}` — the
//! agent's root, where Install may write (`/srv`), the hooks' home, the
//! sockets, the sandbox's /etc files.

use std::path::PathBuf;

use super::{agents, managed_container, Application, Group};
use crate::ctx::Ctx;
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use crate::sandbox::{Bind, Spec};

/// Where the relay listens inside a managed target.
const RELAY_PORT: u16 = 7781;
const AGENT: &str = "/opt/nubo/bin/nubo-agent";
/// A target's own directories (under its dir) and where it sees them.
const DIRS: [(&str, &str); 4] = [
    ("deploy", "/deploy"),
    ("srv", "/srv"),
    ("home", "/home/nubo"),
    ("run", "/run/nubo"),
];

pub fn dir(ctx: &Ctx, id: &str) -> PathBuf {
    ctx.settings.data_dir.join("deploy-targets").join(id)
}

/// The agent socket of a managed target (its tunnel reaches the app).
pub fn agent_socket(ctx: &Ctx, id: &str) -> PathBuf {
    dir(ctx, id).join("run").join("agent.sock")
}

fn cgroup(id: &str) -> String {
    format!("deploy-{id}")
}

/// A managed target's name: `APP-GROUP-N`.
pub fn target_name(app: &str, group: &str, slot: i64) -> String {
    format!("{app}-{group}-{slot}")
        .to_lowercase()
        .replace('.', "-")
}

/// The tag Nubo gives a group's managed targets (and the group selects by).
pub fn tag(app: &str, group: &str) -> (String, String) {
    ("nubo:managed".into(), format!("{app}/{group}"))
}

fn alive(pid: Option<i64>) -> bool {
    pid.is_some_and(|p| p > 0 && std::path::Path::new(&format!("/proc/{p}")).exists())
}

/// Starts every managed target that is not running, for every group, and
/// hands each target's server socket to `listeners` to be served (a new
/// server binds them again). Answers how many were started.
pub async fn reconcile(
    ctx: &Ctx,
    listeners: &tokio::sync::mpsc::UnboundedSender<tokio::net::UnixListener>,
    bound: &std::sync::Mutex<std::collections::HashSet<String>>,
) -> Result<usize> {
    let groups: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT g.id, g.app_id, g.managed_count FROM deploy_groups g WHERE g.managed_count > 0",
    )
    .fetch_all(&ctx.pool)
    .await?;
    let mut started = 0;
    for (gid, app_id, count) in groups {
        let group = super::group_by_id(&ctx.pool, &gid).await?;
        let app = super::application_by_id(&ctx.pool, &app_id).await?;
        if group.blue_green.is_none() {
            for slot in 0..count {
                started += usize::from(ensure(ctx, &app, &group, slot, listeners, bound).await?);
            }
            continue;
        }
        // Blue/green: two sides, each running only while it is wanted.
        for side in 0..2 {
            let want = super::blue_green::wanted(ctx, &group, side).await?;
            for slot in side * count..(side + 1) * count {
                if want {
                    started +=
                        usize::from(ensure(ctx, &app, &group, slot, listeners, bound).await?);
                } else {
                    park(ctx, &group, slot).await?;
                }
            }
        }
    }
    Ok(started)
}

async fn ensure(
    ctx: &Ctx,
    app: &Application,
    group: &Group,
    slot: i64,
    listeners: &tokio::sync::mpsc::UnboundedSender<tokio::net::UnixListener>,
    bound: &std::sync::Mutex<std::collections::HashSet<String>>,
) -> Result<bool> {
    let name = target_name(&app.name, &group.name, slot);
    let row: Option<(String, Option<i64>, String, Option<String>)> = sqlx::query_as(
        "SELECT id, pid, token_id, container FROM deploy_managed WHERE group_id = $1 AND slot = $2",
    )
    .bind(&group.id)
    .bind(slot)
    .fetch_optional(&ctx.pool)
    .await?;
    let image = group.managed_image.as_deref();
    let uid = match image {
        Some(_) => managed_container::UID,
        None => local_uid(ctx)?,
    };
    if let Some((id, pid, _, container)) = &row {
        let up = match image {
            Some(_) => container.is_some() && managed_container::running(ctx, id).await?,
            None => alive(*pid),
        };
        if up {
            bind_server_socket(ctx, id, uid, listeners, bound)?;
            return Ok(false);
        }
    }
    if let Some(image) = image {
        // Before a token is minted: a missing image is retried, not leaked.
        crate::engine::image_available(&ctx.settings, image).await?;
    }
    // (Re)start it with a fresh token; the old one is revoked.
    if let Some((id, _, token_id, _)) = &row {
        crate::cgroup::Cgroup::existing(&cgroup(id)).remove();
        let _ = agents::revoke_token(&ctx.pool, token_id).await;
    }
    let id = row.as_ref().map(|r| r.0.clone()).unwrap_or_else(new_id);
    let owner = crate::identity::accounts::find_by_id(&ctx.pool, &app.owner_id)
        .await?
        .ok_or_else(|| Error::Internal("the application's owner is gone".into()))?;
    let (token, token_id) =
        agents::create_token(&ctx.pool, &owner, &owner, &format!("managed target {name}")).await?;
    match start(
        ctx, app, group, slot, &id, &name, &token, &token_id, uid, listeners, bound,
    )
    .await
    {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = agents::revoke_token(&ctx.pool, &token_id).await;
            Err(e)
        }
    }
}

/// The uid local managed targets run as (the sandbox's).
fn local_uid(ctx: &Ctx) -> Result<u32> {
    crate::sandbox::available(&ctx.settings)
        .map(|s| s.uid())
        .map_err(|e| {
            Error::Unprocessable(format!(
                "managed targets need the local sandbox, which is not available here: {e}"
            ))
        })
}

#[allow(clippy::too_many_arguments)]
async fn start(
    ctx: &Ctx,
    app: &Application,
    group: &Group,
    slot: i64,
    id: &str,
    name: &str,
    token: &str,
    token_id: &str,
    uid: u32,
    listeners: &tokio::sync::mpsc::UnboundedSender<tokio::net::UnixListener>,
    bound: &std::sync::Mutex<std::collections::HashSet<String>>,
) -> Result<()> {
    let old: Option<String> =
        sqlx::query_scalar("SELECT token_id FROM deploy_managed WHERE id = $1")
            .bind(id)
            .fetch_optional(&ctx.pool)
            .await?;
    // The target keeps its record (and history) under its new token.
    if let Some(old) = &old {
        sqlx::query("UPDATE deploy_targets SET token_id = $1 WHERE lower(name) = lower($2) AND token_id = $3")
            .bind(token_id)
            .bind(name)
            .bind(old)
            .execute(&ctx.pool)
            .await?;
    }
    let base = dir(ctx, id);
    for d in DIRS.iter().map(|(d, _)| *d).chain(["etc"]) {
        std::fs::create_dir_all(base.join(d))
            .map_err(|e| Error::Internal(format!("cannot create {d}: {e}")))?;
    }
    for (d, _) in DIRS {
        crate::sandbox::chown(&base.join(d), uid).map_err(|e| Error::Internal(e.to_string()))?;
    }
    // The token in a file of the target's own (never on a command line,
    // where any local user could read it).
    let token_file = base.join("run").join("agent-token");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&token_file);
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&token_file)
            .map_err(|e| Error::Internal(format!("cannot write the agent's token: {e}")))?;
        f.write_all(token.as_bytes())
            .map_err(|e| Error::Internal(e.to_string()))?;
    }
    crate::sandbox::chown(&token_file, uid).map_err(|e| Error::Internal(e.to_string()))?;
    bound.lock().expect("bound").remove(id);
    bind_server_socket(ctx, id, uid, listeners, bound)?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::Internal(format!("cannot find the nubo binary: {e}")))?;
    let (k, v) = tag(&app.name, &group.name);
    let script = format!(
        "{AGENT} serve --socket /run/nubo/agent.sock --root /srv --all-ports --relay {RELAY_PORT}:/run/nubo/server.sock &\n\
         sleep 0.2\n\
         exec {AGENT} deploy --server http://127.0.0.1:{RELAY_PORT} --token-file /run/nubo/agent-token --root /deploy --dest-root /srv --name {name} --tags {k}={v},nubo:id={id}\n"
    );
    if let Some(image) = &group.managed_image {
        let binds: Vec<_> = DIRS
            .iter()
            .map(|(d, inside)| (base.join(d), *inside, false))
            .chain([(exe, AGENT, true)])
            .collect();
        let started = now_ms();
        managed_container::start(ctx, id, &cgroup(id), image, &script, &binds).await?;
        record(
            ctx,
            id,
            group,
            slot,
            name,
            token_id,
            None,
            Some(&managed_container::name(id)),
            started,
        )
        .await?;
        tracing::info!(target_name = %name, image = %image, "managed target started as a container");
        return Ok(());
    }
    let sandbox =
        crate::sandbox::available(&ctx.settings).map_err(|e| Error::Internal(e.to_string()))?;
    let s = &ctx.settings;
    let spec = Spec {
        binds: DIRS
            .iter()
            .map(|(d, inside)| Bind::rw(base.join(d), inside))
            .chain([Bind::ro(exe, AGENT)])
            .collect(),
        env: vec![
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("HOME".into(), "/home/nubo".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        cwd: "/srv".into(),
        command: vec!["/bin/sh".into(), "-c".into(), script],
        hostname: cgroup(id),
        die_with_parent: false,
        name: cgroup(id),
        limits: crate::cgroup::Limits {
            memory_mb: s.workspace_memory_mb,
            cpus: s.workspace_cpus,
            pids: s.workspace_pids,
        },
        etc_dir: base.join("etc"),
        network: true,
    };
    let (mut cmd, _cgroup, network) = sandbox.command(&spec).map_err(Error::Internal)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(base.join("agent.log"))
        .map_err(|e| Error::Internal(e.to_string()))?;
    // Before the spawn: its first poll comes after this.
    let started = now_ms();
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| Error::Internal(e.to_string()))?,
        )
        .stderr(log)
        .spawn()
        .map_err(|e| Error::Internal(format!("cannot start the managed target: {e}")))?;
    // The command holds the write ends of the sandbox's pipes: they must
    // close for the network's handshake to finish.
    drop(cmd);
    if let Some(n) = network {
        // Waits for slirp4netns, off the async threads.
        let attached = tokio::task::spawn_blocking(move || n.attach())
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(e) = attached {
            tracing::warn!(target_name = %name, error = %e, "the managed target has no outbound network");
        }
    }
    let pid = child.id() as i64;
    // Reaped when it ends, so it does not linger as a zombie.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    record(
        ctx,
        id,
        group,
        slot,
        name,
        token_id,
        Some(pid),
        None,
        started,
    )
    .await?;
    tracing::info!(target_name = %name, pid, "managed target started");
    Ok(())
}

/// Records a started managed target: its process or its container.
#[allow(clippy::too_many_arguments)]
async fn record(
    ctx: &Ctx,
    id: &str,
    group: &Group,
    slot: i64,
    name: &str,
    token_id: &str,
    pid: Option<i64>,
    container: Option<&str>,
    started: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO deploy_managed (id, group_id, slot, name, token_id, pid, container, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET token_id = excluded.token_id, pid = excluded.pid, container = excluded.container, started_at = excluded.started_at",
    )
    .bind(id)
    .bind(&group.id)
    .bind(slot)
    .bind(name)
    .bind(token_id)
    .bind(pid)
    .bind(container)
    .bind(started)
    .execute(&ctx.pool)
    .await?;
    Ok(())
}

/// Stops a managed target that is not wanted now (its files stay, for
/// when it runs again).
async fn park(ctx: &Ctx, group: &Group, slot: i64) -> Result<()> {
    let row: Option<(String, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT id, pid, container FROM deploy_managed WHERE group_id = $1 AND slot = $2",
    )
    .bind(&group.id)
    .bind(slot)
    .fetch_optional(&ctx.pool)
    .await?;
    let Some((id, pid, container)) = row else {
        return Ok(());
    };
    match (pid, container) {
        (None, None) => return Ok(()),
        (_, Some(_)) => managed_container::stop(ctx, &id).await?,
        (Some(_), None) => crate::cgroup::Cgroup::existing(&cgroup(&id)).remove(),
    }
    sqlx::query("UPDATE deploy_managed SET pid = NULL, container = NULL WHERE id = $1")
        .bind(&id)
        .execute(&ctx.pool)
        .await?;
    tracing::info!(target_name = %target_name_of(group, slot), "managed target stopped (its side is not needed now)");
    Ok(())
}

fn target_name_of(group: &Group, slot: i64) -> String {
    target_name(&group.application, &group.name, slot)
}

/// Binds `run/server.sock` of a managed target (once per server process).
fn bind_server_socket(
    ctx: &Ctx,
    id: &str,
    uid: u32,
    listeners: &tokio::sync::mpsc::UnboundedSender<tokio::net::UnixListener>,
    bound: &std::sync::Mutex<std::collections::HashSet<String>>,
) -> Result<()> {
    let mut b = bound.lock().expect("bound");
    if b.contains(id) {
        return Ok(());
    }
    let path = dir(ctx, id).join("run").join("server.sock");
    let _ = std::fs::remove_file(&path);
    let l = tokio::net::UnixListener::bind(&path)
        .map_err(|e| Error::Internal(format!("cannot bind {}: {e}", path.display())))?;
    crate::sandbox::chown(&path, uid).map_err(|e| Error::Internal(e.to_string()))?;
    listeners
        .send(l)
        .map_err(|_| Error::Internal("the agent protocol listener is gone".into()))?;
    b.insert(id.to_string());
    Ok(())
}

/// The managed targets of a group that run its current revision: their
/// ids (for the agent socket), in slot order.
pub async fn serving(ctx: &Ctx, group: &Group) -> Result<Vec<String>> {
    if group.blue_green.is_some() {
        return match group.active_side {
            Some(side) => super::blue_green::side_ids(ctx, group, side).await,
            None => Ok(vec![]),
        };
    }
    let current: Option<String> = sqlx::query_scalar(
        "SELECT revision_label FROM deployments WHERE group_id = $1 AND status = 'Succeeded' ORDER BY finished_at DESC LIMIT 1",
    )
    .bind(&group.id)
    .fetch_optional(&ctx.pool)
    .await?;
    let Some(current) = current else {
        return Ok(vec![]);
    };
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT m.id FROM deploy_managed m JOIN deploy_targets t ON lower(t.name) = lower(m.name)
         WHERE m.group_id = $1 AND t.revision = $2 ORDER BY m.slot",
    )
    .bind(&group.id)
    .bind(&current)
    .fetch_all(&ctx.pool)
    .await?;
    Ok(ids)
}

/// GET `path` on a managed target's app: its status, or why there is none.
pub async fn probe(ctx: &Ctx, id: &str, port: u16, path: &str) -> std::result::Result<u16, String> {
    crate::agent_client::probe(agent_socket(ctx, id), port, path).await
}
