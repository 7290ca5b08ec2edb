//! How a workspace's code is kept from the server and from other
//! workspaces: a container (the container backend), the local sandbox
//! (the `local` backend where bubblewrap works), or nothing (the `local`
//! backend without a sandbox: administrators only).
//!
//! Also the agent's socket directory, `<workspace>/run/`: the workspace's
//! user owns it only while its agent starts (to bind `agent.sock`); then
//! it is handed back to the server (root, mode 0755) and `agent.sock` must
//! be a socket. From then on the workspace cannot swap the socket for a
//! link to another workspace's agent or the engine's socket, nor plant a
//! link where the server binds `git.sock`.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use crate::cgroup::Limits;
use crate::error::{Error, Result};
use crate::sandbox::{self, Bind, Sandbox, Spec};
use crate::workspaces::{dir, Env, Workspace};

/// Where the agent binary is in a sandbox (as in a container).
pub const AGENT_PATH: &str = crate::workspaces::container::AGENT_PATH;

/// A workspace's confinement.
pub enum Isolation {
    Container,
    Sandbox(Sandbox),
    /// Host processes of the server's user: administrators only.
    None(String),
}

impl Isolation {
    /// Whether the workspace reaches the server through the agent's relay
    /// (its own network namespace) and runs the agent from `AGENT_PATH`.
    pub fn confined(&self) -> bool {
        !matches!(self, Isolation::None(_))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Isolation::Container => "container",
            Isolation::Sandbox(_) => "sandbox",
            Isolation::None(_) => "none",
        }
    }
}

pub fn of(env: &Env, backend: &str) -> Isolation {
    if backend == "container" {
        return Isolation::Container;
    }
    match sandbox::available(&env.settings) {
        Ok(s) => Isolation::Sandbox(s),
        Err(why) => Isolation::None(why),
    }
}

/// Refuses the unconfined local backend to everyone but administrators.
pub fn allowed(isolation: &Isolation, owner_is_admin: bool) -> Result<()> {
    match isolation {
        Isolation::None(why) if !owner_is_admin => Err(Error::Forbidden(format!(
            "local workspaces run in a sandbox, and none can be set up on this server: {why}. \
             An administrator can install bubblewrap (apt-get install bubblewrap) or enable \
             the container backend (container_socket), then use backend \"container\""
        ))),
        _ => Ok(()),
    }
}

/// The host uid the workspace's processes run as.
pub fn uid(isolation: &Isolation) -> Option<u32> {
    match isolation {
        Isolation::Container => Some(crate::workspaces::container::WORKSPACE_UID),
        Isolation::Sandbox(s) => Some(s.uid()),
        Isolation::None(_) => None,
    }
}

fn lchown_dir(path: &Path, uid: u32, mode: u32) -> Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Error::Internal(format!("the workspace's run dir: {e}")))?;
    if !meta.is_dir() {
        return Err(Error::Internal(
            "the workspace's run dir is not a directory".into(),
        ));
    }
    sandbox::chown(path, uid).map_err(|e| Error::Internal(format!("chown run dir: {e}")))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::Internal(format!("chmod run dir: {e}")))
}

/// Before the agent starts: `run/` belongs to the workspace's user, empty
/// of old sockets.
pub fn open_run_dir(ws_dir: &Path, uid: u32) -> Result<()> {
    let run = ws_dir.join("run");
    for sock in ["agent.sock", "git.sock"] {
        let _ = std::fs::remove_file(run.join(sock));
    }
    lchown_dir(&run, uid, 0o700)
}

/// Once the agent answers: `run/` is the server's again, and `agent.sock`
/// must be a socket (not a link planted while the directory was open).
pub fn close_run_dir(ws_dir: &Path) -> Result<()> {
    let run = ws_dir.join("run");
    // SAFETY: geteuid has no preconditions.
    lchown_dir(&run, unsafe { libc::geteuid() }, 0o755)?;
    let meta = std::fs::symlink_metadata(run.join("agent.sock"))
        .map_err(|e| Error::Internal(format!("the workspace agent's socket: {e}")))?;
    if !meta.file_type().is_socket() {
        return Err(Error::Internal(
            "the workspace's agent socket is not a socket; the workspace was not started".into(),
        ));
    }
    Ok(())
}

/// Starts a local workspace's agent in the sandbox; answers the pid of
/// the sandbox (bubblewrap), which outlives the server, and its network
/// to attach (`Network::attach`) right away.
pub fn start_sandboxed(
    env: &Env,
    ws: &Workspace,
    sandbox: &Sandbox,
) -> Result<(u32, Option<crate::sandbox::Network>)> {
    let base = dir(&env.settings, &ws.id);
    let exe = std::env::current_exe()
        .map_err(|e| Error::Internal(format!("cannot find the nubo binary: {e}")))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(base.join("agent.log"))
        .map_err(|e| Error::Internal(format!("cannot open the agent log: {e}")))?;
    let s = &env.settings;
    let spec = Spec {
        binds: vec![
            Bind::rw(base.join("files"), "/workspace"),
            Bind::rw(base.join("home"), "/home/nubo"),
            Bind::rw(base.join("run"), "/run/nubo"),
            Bind::ro(exe, AGENT_PATH),
        ],
        env: vec![
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("HOME".into(), "/home/nubo".into()),
            ("USER".into(), ws.owner.clone()),
            ("SHELL".into(), "/bin/bash".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("TERM".into(), "xterm-256color".into()),
            ("NUBO_AGENT_SOCKET".into(), "/run/nubo/agent.sock".into()),
            ("NUBO_WORKSPACE_ID".into(), ws.id.clone()),
            ("GIT_CONFIG_GLOBAL".into(), "/home/nubo/.gitconfig".into()),
            ("RUST_LOG".into(), "warn".into()),
        ],
        cwd: "/workspace".into(),
        command: vec![
            AGENT_PATH.into(),
            "serve".into(),
            "--socket".into(),
            "/run/nubo/agent.sock".into(),
            "--root".into(),
            "/workspace".into(),
            "--all-ports".into(),
            "--relay".into(),
            format!(
                "{}:/run/nubo/git.sock",
                crate::workspaces::container::GIT_RELAY_PORT
            ),
        ],
        hostname: ws.name.to_lowercase().replace(['.', '_'], "-"),
        die_with_parent: false,
        name: cgroup_name(&ws.id),
        limits: Limits {
            memory_mb: s.workspace_memory_mb,
            cpus: s.workspace_cpus,
            pids: s.workspace_pids,
        },
        etc_dir: base.join("etc"),
        network: true,
    };
    let (mut cmd, _cgroup, network) = sandbox.command(&spec).map_err(Error::Internal)?;
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| Error::Internal(e.to_string()))?,
        )
        .stderr(log)
        .spawn()
        .map_err(|e| Error::Internal(format!("cannot start the workspace sandbox: {e}")))?;
    let pid = child.id();
    crate::workspaces::reap_when_done(child);
    drop(cmd);
    Ok((pid, network))
}

/// The control group of a workspace's sandbox.
pub fn cgroup_name(id: &str) -> String {
    format!("ws-{id}")
}

/// Ends whatever is left of a workspace's sandbox.
pub fn end_sandbox(id: &str) {
    crate::cgroup::Cgroup::existing(&cgroup_name(id)).remove();
}
