//! A workspace's life: creating it (files, home, checkout), starting its
//! agent on its backend and waiting until it answers, its git credential,
//! stopping and deleting it, and the server's duties (recovery after a
//! restart, the idle stop and credential renewal).

use std::path::Path;

use crate::agent_client::Method;
use crate::config::Settings;
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::identity::accounts::User;
use crate::repos::{self, Repo};

use super::{
    agent, container, dir, files_dir, find, idle_seconds, isolation, list_all, recorded_http,
    server_url, set_state, validate_name, CreateWorkspace, Env, Server, Workspace,
    CREDENTIAL_TTL_SECONDS,
};

/// Creates a workspace (checking out the repository) and, unless asked not
/// to, starts it.
pub async fn create(env: &Env, owner: &User, req: CreateWorkspace) -> Result<Workspace> {
    validate_name(&req.name).map_err(|e| e.on_field("name"))?;
    let backend = req.backend.clone().unwrap_or_else(|| "local".into());
    if backend != "local" && backend != "container" {
        return Err(Error::invalid(
            "backend",
            format!("unknown backend {backend:?}: use \"local\" or \"container\""),
        ));
    }
    if backend == "container" {
        crate::engine::available(&env.settings).await?;
        let image = req
            .image
            .clone()
            .unwrap_or_else(|| env.settings.workspace_image.clone());
        crate::engine::image_available(&env.settings, &image).await?;
    }
    if req.image.is_some() && backend != "container" {
        return Err(Error::invalid(
            "image",
            "an image can only be chosen for the container backend",
        ));
    }
    let isolation = isolation::of(env, &backend);
    isolation::allowed(&isolation, owner.admin)?;
    let idle = idle_seconds(&req).map_err(|e| e.on_field("idle_timeout_minutes"))?;
    let repo = match req.repo.as_deref().filter(|r| !r.is_empty()) {
        Some(name) => Some(repos::authorize(&env.pool, name, owner, "codecommit:GitPull").await?),
        None => None,
    };
    let id = format!("w{}", &crate::db::new_id()[..15]);
    let inserted = sqlx::query(
        "INSERT INTO workspaces (id, name, owner_id, repo_id, repo_name, backend, image, state,
             idle_timeout_seconds, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'creating', $8, $9)",
    )
    .bind(&id)
    .bind(&req.name)
    .bind(&owner.id)
    .bind(repo.as_ref().map(|r| r.id.clone()))
    .bind(repo.as_ref().map(|r| r.name.clone()))
    .bind(&backend)
    .bind(&req.image)
    .bind(idle)
    .bind(now_ms())
    .execute(&env.pool)
    .await;
    match inserted {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(Error::Conflict(format!(
                "you already have a workspace named {:?}",
                req.name
            )))
        }
        other => {
            other?;
        }
    }
    let result = prepare(env, owner, &id, &isolation, repo.as_ref()).await;
    if let Err(e) = result {
        set_state(&env.pool, &id, "error", Some(&e.to_string())).await?;
        return Err(e);
    }
    set_state(&env.pool, &id, "stopped", None).await?;
    let ws = find(&env.pool, &id).await?.expect("just created");
    if req.start.unwrap_or(true) {
        return start(env, &ws).await;
    }
    Ok(ws)
}

/// Lays out the directories and checks the repository out.
async fn prepare(
    env: &Env,
    owner: &User,
    id: &str,
    isolation: &isolation::Isolation,
    repo: Option<&Repo>,
) -> Result<()> {
    let base = dir(&env.settings, id);
    for sub in ["files", "home", "run"] {
        std::fs::create_dir_all(base.join(sub))
            .map_err(|e| Error::Internal(format!("cannot create the workspace: {e}")))?;
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711));
        let _ = std::fs::set_permissions(base.join("run"), std::fs::Permissions::from_mode(0o700));
    }
    let files = base.join("files");
    let confined = isolation.confined();
    if let Some(repo) = repo {
        checkout(env, repo, &files).await?;
        if confined {
            // The remote is fixed for good: git in a confined workspace
            // reaches the server through the agent's relay. (The server
            // never runs git in a workspace's files after this: their
            // config is the workspace's to write.)
            let url = format!("{}v1/repos/{}", server_url(&env.settings, true), repo.name);
            set_remote(&files, &url).await;
        }
    }
    write_gitconfig(env, owner, id, confined)?;
    // The workspace's user owns its files and home (links not followed).
    if let Some(uid) = isolation::uid(isolation) {
        for sub in ["files", "home"] {
            crate::sandbox::chown_tree(&base.join(sub), uid)
                .map_err(|e| Error::Internal(format!("cannot hand the workspace over: {e}")))?;
        }
    }
    Ok(())
}

async fn checkout(env: &Env, repo: &Repo, files: &Path) -> Result<()> {
    // From the plaintext working copy: the server's own (under its lock),
    // or, from the CLI, one restored into a temporary directory.
    let tmp;
    let (source, _guard) = match &env.server {
        Some(server) => repos::working_copy(env, &server.locks, repo, false).await?,
        None => {
            tmp = tempfile::tempdir()
                .map_err(|e| Error::Internal(format!("cannot make a temp dir: {e}")))?;
            let dir = repos::ensure_cache(
                &env.pool,
                &env.master,
                &env.settings.data_dir,
                tmp.path(),
                repo,
            )
            .await?;
            (dir, None)
        }
    };
    let out = tokio::process::Command::new("git")
        .args(["clone", "-q", "--no-hardlinks"])
        .arg(&source)
        .arg(files)
        .env_remove("GIT_DIR")
        .output()
        .await
        .map_err(|e| Error::Internal(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "checking out {} failed: {}",
            repo.name,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn agent_command(confined: bool) -> String {
    if confined {
        container::AGENT_PATH.to_string()
    } else {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "nubo".into());
        format!("'{}' agent", exe.replace('\'', "'\\''"))
    }
}

fn write_gitconfig(env: &Env, owner: &User, id: &str, confined: bool) -> Result<()> {
    let helper = agent_command(confined);
    let text = format!(
        "# Written by Nubo. Git asks the workspace agent for a short-lived\n\
         # credential; nothing secret is stored here.\n\
         [user]\n\tname = {name}\n\temail = {name}@users.nubo.invalid\n\
         [credential]\n\thelper =\n\thelper = \"!{helper} credential\"\n\
         [init]\n\tdefaultBranch = main\n\
         [safe]\n\tdirectory = *\n",
        name = owner.name,
    );
    let home = dir(&env.settings, id).join("home");
    std::fs::write(home.join(".gitconfig"), text)
        .map_err(|e| Error::Internal(format!("cannot write .gitconfig: {e}")))?;
    Ok(())
}

/// Rewrites `origin` to the server's URL for this backend.
async fn set_origin(env: &Env, ws: &Workspace) -> Result<()> {
    let Some(repo) = &ws.repo else {
        return Ok(());
    };
    let mut settings = (*env.settings).clone();
    if env.server.is_none() {
        if let Some(addr) = recorded_http(&settings) {
            settings.http = addr;
        }
    }
    let url = format!("{}v1/repos/{repo}", server_url(&settings, false));
    let files = files_dir(&env.settings, &ws.id);
    if !files.join(".git").exists() {
        return Ok(());
    }
    set_remote(&files, &url).await;
    Ok(())
}

/// Points the checkout's `origin` at `url`.
async fn set_remote(files: &Path, url: &str) {
    let _ = tokio::process::Command::new("git")
        .arg("-C")
        .arg(files)
        .args(["remote", "set-url", "origin", url])
        .output()
        .await;
}

/// Reaps `child` whenever it exits (agents outlive requests), so it never
/// lingers as a zombie.
pub fn reap_when_done(child: std::process::Child) {
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
}

/// Starts the workspace's agent (and container) and waits until it answers.
pub async fn start(env: &Env, ws: &Workspace) -> Result<Workspace> {
    if ws.state == "running" && agent(&env.settings, ws).healthy().await {
        return Ok(find(&env.pool, &ws.id).await?.expect("exists"));
    }
    use isolation::Isolation;
    let confinement = isolation::of(env, &ws.backend);
    let owner_is_admin = crate::identity::accounts::find_by_id(&env.pool, &ws.owner_id)
        .await?
        .is_some_and(|u| u.admin);
    isolation::allowed(&confinement, owner_is_admin)?;
    set_state(&env.pool, &ws.id, "starting", None).await?;
    let result = async {
        let base = dir(&env.settings, &ws.id);
        match isolation::uid(&confinement) {
            Some(uid) => {
                // Only the top directories: the trees were handed over at
                // creation, and their contents are the workspace's now.
                for sub in ["files", "home"] {
                    let _ = crate::sandbox::chown(&base.join(sub), uid);
                }
                isolation::open_run_dir(&base, uid)?;
            }
            None => {
                set_origin(env, ws).await?;
                let _ = std::fs::remove_file(base.join("run").join("agent.sock"));
            }
        }
        let pid = match &confinement {
            Isolation::Container => {
                let cid = container::start(env, ws).await?;
                sqlx::query("UPDATE workspaces SET container_id = $1 WHERE id = $2")
                    .bind(&cid)
                    .bind(&ws.id)
                    .execute(&env.pool)
                    .await?;
                None
            }
            Isolation::Sandbox(sandbox) => {
                let (pid, network) = isolation::start_sandboxed(env, ws, sandbox)?;
                if let Some(network) = network {
                    // Waits for slirp4netns (off the async threads).
                    let attached = tokio::task::spawn_blocking(move || network.attach())
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                    if let Err(e) = attached {
                        tracing::warn!(workspace = %ws.id, error = %e, "the workspace has no network");
                    }
                }
                Some(pid)
            }
            Isolation::None(why) => {
                tracing::warn!(workspace = %ws.id, reason = %why, "starting a local workspace without a sandbox (its owner is an administrator)");
                Some(start_local(&env.settings, ws)?)
            }
        };
        if let Some(pid) = pid {
            sqlx::query("UPDATE workspaces SET agent_pid = $1 WHERE id = $2")
                .bind(pid as i64)
                .bind(&ws.id)
                .execute(&env.pool)
                .await?;
        }
        let client = agent(&env.settings, ws);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !client.healthy().await {
            if std::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(base.join("agent.log")).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" / ");
                return Err(Error::Internal(format!(
                    "the workspace agent did not start: {tail}"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if confinement.confined() {
            isolation::close_run_dir(&base)?;
            container::ensure_git_socket(env, ws).await;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = stop_processes(env, ws).await;
        set_state(&env.pool, &ws.id, "error", Some(&e.to_string())).await?;
        return Err(e);
    }
    sqlx::query(
        "UPDATE workspaces SET state = 'running', error = NULL, started_at = $1 WHERE id = $2",
    )
    .bind(now_ms())
    .bind(&ws.id)
    .execute(&env.pool)
    .await?;
    let ws = find(&env.pool, &ws.id).await?.expect("exists");
    if let Some(server) = &env.server {
        server.activity.touch(&ws.id);
    }
    if let Err(e) = renew_credential(env, &ws).await {
        tracing::warn!(workspace = %ws.id, error = %e, "no git credential for the workspace");
    }
    Ok(find(&env.pool, &ws.id).await?.expect("exists"))
}

/// The environment every process in a local workspace starts with: the
/// server's own environment is not passed on (it may hold secrets).
fn local_env(settings: &Settings, ws: &Workspace) -> Vec<(String, String)> {
    let base = dir(settings, &ws.id);
    let home = base.join("home");
    vec![
        (
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("HOME".into(), home.display().to_string()),
        ("USER".into(), ws.owner.clone()),
        ("SHELL".into(), "/bin/bash".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TERM".into(), "xterm-256color".into()),
        (
            "NUBO_AGENT_SOCKET".into(),
            base.join("run/agent.sock").display().to_string(),
        ),
        ("NUBO_WORKSPACE_ID".into(), ws.id.clone()),
        (
            "GIT_CONFIG_GLOBAL".into(),
            home.join(".gitconfig").display().to_string(),
        ),
    ]
}

fn start_local(settings: &Settings, ws: &Workspace) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let base = dir(settings, &ws.id);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(base.join("agent.log"))
        .map_err(|e| Error::Internal(format!("cannot open the agent log: {e}")))?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::Internal(format!("cannot find the nubo binary: {e}")))?;
    let child = std::process::Command::new(exe)
        .args(["agent", "serve", "--socket"])
        .arg(base.join("run/agent.sock"))
        .arg("--root")
        .arg(base.join("files"))
        .env_clear()
        .envs(local_env(settings, ws))
        .env("RUST_LOG", "warn")
        .current_dir(base.join("files"))
        .stdin(std::process::Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| Error::Internal(e.to_string()))?,
        )
        .stderr(log)
        // Its own session: not killed with the server, nor by its terminal.
        .process_group(0)
        .spawn()
        .map_err(|e| Error::Internal(format!("cannot start the workspace agent: {e}")))?;
    let pid = child.id();
    reap_when_done(child);
    Ok(pid)
}

/// Ends the agent (its terminals and commands with it) and the container.
async fn stop_processes(env: &Env, ws: &Workspace) -> Result<()> {
    match ws.backend.as_str() {
        "container" => container::stop(env, ws).await?,
        _ => {
            let client = agent(&env.settings, ws);
            let _ = client.call(Method::POST, "/shutdown", None).await;
            if let Some(pid) = ws.agent_pid {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
                while process_alive(pid) && std::time::Instant::now() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                if process_alive(pid) && is_our_agent(pid, &ws.id) {
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
            // Whatever the sandbox left (its control group), gone too.
            let id = ws.id.clone();
            let _ = tokio::task::spawn_blocking(move || isolation::end_sandbox(&id)).await;
        }
    }
    Ok(())
}

fn process_alive(pid: i64) -> bool {
    // A zombie has exited: look at its state, not only its existence.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Whether `pid` is still this workspace's agent (pids get reused).
fn is_our_agent(pid: i64, id: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(id))
        .unwrap_or(false)
}

pub async fn stop(env: &Env, ws: &Workspace, reason: Option<&str>) -> Result<Workspace> {
    set_state(&env.pool, &ws.id, "stopping", None).await?;
    stop_processes(env, ws).await?;
    if let Some(cred) = &ws.credential_id {
        let _ = crate::identity::git_credentials::revoke(&env.pool, &ws.owner_id, cred).await;
    }
    sqlx::query(
        "UPDATE workspaces SET state = 'stopped', error = $1, stopped_at = $2, agent_pid = NULL,
             credential_id = NULL, credential_expires_at = NULL WHERE id = $3",
    )
    .bind(reason)
    .bind(now_ms())
    .bind(&ws.id)
    .execute(&env.pool)
    .await?;
    Ok(find(&env.pool, &ws.id).await?.expect("exists"))
}

pub async fn delete(env: &Env, ws: &Workspace) -> Result<()> {
    stop_processes(env, ws).await?;
    if ws.backend == "container" {
        container::remove(env, ws).await?;
    }
    if let Some(cred) = &ws.credential_id {
        let _ = crate::identity::git_credentials::revoke(&env.pool, &ws.owner_id, cred).await;
    }
    sqlx::query("DELETE FROM workspaces WHERE id = $1")
        .bind(&ws.id)
        .execute(&env.pool)
        .await?;
    let base = dir(&env.settings, &ws.id);
    tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(&base);
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(())
}

/// Mints a fresh short-lived git credential for the workspace's repository
/// and hands it to the agent; revokes the one it replaces.
pub async fn renew_credential(env: &Env, ws: &Workspace) -> Result<()> {
    let Some(repo) = &ws.repo else {
        return Ok(());
    };
    let owner = crate::identity::accounts::find_by_name(&env.pool, &ws.owner)
        .await?
        .ok_or_else(|| Error::NotFound("the owner no longer exists".into()))?;
    let cred = crate::identity::git_credentials::create(
        &env.pool,
        &owner,
        Some((Some(vec![repo.clone()]), true, CREDENTIAL_TTL_SECONDS)),
    )
    .await?;
    let mut settings = (*env.settings).clone();
    if env.server.is_none() {
        if let Some(addr) = recorded_http(&settings) {
            settings.http = addr;
        }
    }
    let expires = now_ms() + CREDENTIAL_TTL_SECONDS as i64 * 1000;
    agent(&env.settings, ws)
        .call(
            Method::PUT,
            "/credential",
            Some(serde_json::json!({
                "url": server_url(&settings, isolation::of(env, &ws.backend).confined()),
                "username": cred.username,
                "password": cred.password,
                "expires_at_ms": expires,
            })),
        )
        .await?;
    sqlx::query(
        "UPDATE workspaces SET credential_id = $1, credential_expires_at = $2 WHERE id = $3",
    )
    .bind(&cred.info.id)
    .bind(expires)
    .bind(&ws.id)
    .execute(&env.pool)
    .await?;
    if let Some(old) = &ws.credential_id {
        let _ = crate::identity::git_credentials::revoke(&env.pool, &ws.owner_id, old).await;
    }
    Ok(())
}

/// On server start: workspaces whose agent still answers keep running (with
/// their terminals); the others are marked stopped with the reason.
pub async fn recover(env: &Env) -> Result<()> {
    for ws in list_all(&env.pool).await? {
        if !matches!(
            ws.state.as_str(),
            "running" | "starting" | "stopping" | "creating"
        ) {
            continue;
        }
        let alive = agent(&env.settings, &ws).healthy().await;
        if alive && ws.state == "running" {
            tracing::info!(workspace = %ws.id, "workspace still running");
            let confined = isolation::of(env, &ws.backend).confined();
            if confined {
                container::ensure_git_socket(env, &ws).await;
            }
            continue;
        }
        let reason = "stopped while the server was down";
        let _ = stop(env, &ws, Some(reason)).await;
    }
    Ok(())
}

/// The background duty of the server: stop idle workspaces and renew
/// credentials at half-life.
pub fn spawn_reaper(env: Env, server: Server) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let Ok(all) = list_all(&env.pool).await else {
                continue;
            };
            for ws in all.into_iter().filter(|w| w.state == "running") {
                let idle = server.activity.idle_for(&ws.id);
                if ws.idle_timeout_seconds > 0 && idle.as_secs() >= ws.idle_timeout_seconds as u64 {
                    tracing::info!(workspace = %ws.id, idle_s = idle.as_secs(), "stopping an idle workspace");
                    let reason = format!(
                        "stopped after {} without use",
                        crate::db::human_duration(ws.idle_timeout_seconds)
                    );
                    if let Err(e) = stop(&env, &ws, Some(&reason)).await {
                        tracing::warn!(workspace = %ws.id, error = %e, "idle stop failed");
                    }
                    continue;
                }
                let half_life = CREDENTIAL_TTL_SECONDS as i64 * 500;
                if ws.repo.is_some()
                    && ws
                        .credential_expires_at
                        .is_none_or(|e| e - now_ms() < half_life)
                {
                    if let Err(e) = renew_credential(&env, &ws).await {
                        tracing::warn!(workspace = %ws.id, error = %e, "credential renewal failed");
                    }
                }
            }
        }
    });
}
