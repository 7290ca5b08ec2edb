//! `nubo workspace …`: create, list, start, stop, delete workspaces and
//! run a command in one.

use anyhow::bail;
use clap::Subcommand;

use super::{CreateWorkspace, Env, Workspace};
use crate::agent_client::Method;
use crate::ctx::Ctx;
use crate::identity::accounts;

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace (and start it, unless --no-start)
    #[command(
        after_help = "Examples:\n  nubo workspace create web --owner alice --repo my-app\n  nubo workspace create scratch --owner alice --backend container --idle-minutes 60"
    )]
    Create {
        /// Workspace name: 1-64 letters, digits, '.', '_' or '-'
        name: String,
        /// The user who owns it
        #[arg(long)]
        owner: String,
        /// A repository to check out in it
        #[arg(long)]
        repo: Option<String>,
        /// `local` (a host process; not isolated) or `container`
        #[arg(long, default_value = "local")]
        backend: String,
        /// Container image (container backend)
        #[arg(long)]
        image: Option<String>,
        /// Stop after this many minutes without use (0 = never)
        #[arg(long, default_value_t = 30)]
        idle_minutes: i64,
        /// Create it stopped
        #[arg(long)]
        no_start: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List workspaces
    #[command(
        after_help = "Examples:\n  nubo workspace list\n  nubo workspace list --owner alice --json"
    )]
    List {
        /// Only this user's
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Start a stopped workspace
    #[command(after_help = "Example:\n  nubo workspace start alice/web")]
    Start {
        /// Workspace id, or OWNER/NAME
        workspace: String,
    },
    /// Stop a workspace (its terminals end; files stay)
    #[command(after_help = "Example:\n  nubo workspace stop alice/web")]
    Stop {
        /// Workspace id, or OWNER/NAME
        workspace: String,
    },
    /// Delete a workspace and its files
    #[command(after_help = "Example:\n  nubo workspace delete alice/web")]
    Delete {
        /// Workspace id, or OWNER/NAME
        workspace: String,
    },
    /// Run a command in a running workspace; exits with its exit code
    #[command(
        after_help = "Examples:\n  nubo workspace exec alice/web -- make test\n  nubo workspace exec alice/web --cwd src --env DEBUG=1 -- ls -la"
    )]
    Exec {
        /// Workspace id, or OWNER/NAME
        workspace: String,
        /// Working directory, relative to the workspace root
        #[arg(long)]
        cwd: Option<String>,
        /// Environment variables, KEY=VALUE (repeatable)
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Seconds before the command is killed
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// The command and its arguments
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

async fn find_workspace(pool: &sqlx::SqlitePool, spec: &str) -> anyhow::Result<Workspace> {
    if let Some((owner, name)) = spec.split_once('/') {
        let user = accounts::find_by_name(pool, owner)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user named {owner:?}"))?;
        return super::list_for(pool, &user)
            .await?
            .into_iter()
            .find(|w| w.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| anyhow::anyhow!("{owner} has no workspace named {name:?}"));
    }
    super::find(pool, spec)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no workspace with id {spec:?} (or use OWNER/NAME)"))
}

fn print_workspaces(list: &[Workspace]) {
    println!(
        "{:<17} {:<12} {:<20} {:<10} {:<9} REPOSITORY",
        "ID", "OWNER", "NAME", "BACKEND", "STATE"
    );
    for w in list {
        println!(
            "{:<17} {:<12} {:<20} {:<10} {:<9} {}",
            w.id,
            w.owner,
            w.name,
            w.backend,
            w.state,
            w.repo.as_deref().unwrap_or("-")
        );
    }
}

/// Runs `nubo workspace …` on the data dir, without the server's registry:
/// a workspace started here is served its git by the server once it runs.
pub async fn run(cmd: WorkspaceCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let env = Env {
        ctx: ctx.clone(),
        server: None,
    };
    let pool = &ctx.pool;
    match cmd {
        WorkspaceCommand::Create {
            name,
            owner,
            repo,
            backend,
            image,
            idle_minutes,
            no_start,
            json,
        } => {
            let user = accounts::find_by_name(pool, &owner)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user named {owner:?}"))?;
            let ws = super::create(
                &env,
                &user,
                CreateWorkspace {
                    name,
                    repo,
                    backend: Some(backend),
                    image,
                    idle_timeout_minutes: Some(idle_minutes),
                    idle_timeout_seconds: None,
                    start: Some(!no_start),
                },
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&ws)?);
            } else {
                eprintln!("created workspace {} ({}), {}", ws.name, ws.id, ws.state);
                println!("{}", ws.id);
            }
        }
        WorkspaceCommand::List { owner, json } => {
            let list = match owner {
                Some(owner) => {
                    let user = accounts::find_by_name(pool, &owner)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no user named {owner:?}"))?;
                    super::list_for(pool, &user).await?
                }
                None => super::list_all(pool).await?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_workspaces(&list);
            }
        }
        WorkspaceCommand::Start { workspace } => {
            let ws = find_workspace(pool, &workspace).await?;
            let ws = super::start(&env, &ws).await?;
            eprintln!("workspace {} is {}", ws.name, ws.state);
        }
        WorkspaceCommand::Stop { workspace } => {
            let ws = find_workspace(pool, &workspace).await?;
            let ws = super::stop(&env, &ws, None).await?;
            eprintln!("workspace {} is {}", ws.name, ws.state);
        }
        WorkspaceCommand::Delete { workspace } => {
            let ws = find_workspace(pool, &workspace).await?;
            super::delete(&env, &ws).await?;
            eprintln!("deleted workspace {}", ws.name);
        }
        WorkspaceCommand::Exec {
            workspace,
            cwd,
            env: vars,
            timeout,
            command,
        } => {
            let ws = find_workspace(pool, &workspace).await?;
            if ws.state != "running" {
                bail!(
                    "workspace {} is {}; start it with `nubo workspace start {}`",
                    ws.name,
                    ws.state,
                    ws.id
                );
            }
            let mut map = serde_json::Map::new();
            for kv in vars {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--env takes KEY=VALUE, not {kv:?}"))?;
                map.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
            let out: serde_json::Value = super::agent(&env.settings, &ws)
                .json(
                    Method::POST,
                    "/exec",
                    Some(serde_json::json!({
                        "command": command, "cwd": cwd, "env": map, "timeout_s": timeout,
                    })),
                )
                .await?;
            use std::io::Write;
            std::io::stdout().write_all(out["stdout"].as_str().unwrap_or("").as_bytes())?;
            std::io::stderr().write_all(out["stderr"].as_str().unwrap_or("").as_bytes())?;
            if out["timed_out"].as_bool() == Some(true) {
                eprintln!("nubo: the command was killed after {timeout} s");
            }
            std::io::stdout().flush()?;
            let code = out["exit_code"].as_i64().unwrap_or(1);
            std::process::exit(code.clamp(0, 255) as i32);
        }
    }
    Ok(())
}
