//! `nubo deploy …` (applications, groups, deployments, targets, agent
//! tokens, on this server's data directory; a running server's engine
//! moves what is created here) and `nubo appspec check`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::engine;
use super::revisions::Revision;
use super::{agents, view, NewGroup};
use crate::ctx::Ctx;
use crate::identity::accounts::{self, User};

#[derive(Debug, Subcommand)]
pub enum AppspecCommand {
    /// Validate an appspec.yml: exit 0 when valid (warnings allowed), 1 with FILE:LINE:COL errors on stderr; with --bundle DIR, also check that its scripts are there
    #[command(
        after_help = "Examples:\n  nubo appspec check appspec.yml\n  nubo appspec check app/appspec.yml --bundle app"
    )]
    Check {
        file: PathBuf,
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
}

/// Runs `nubo appspec check`.
pub fn check(file: &std::path::Path, bundle: Option<&std::path::Path>) -> anyhow::Result<()> {
    let name = file.display().to_string();
    let text = std::fs::read(file).with_context(|| format!("cannot read {name}"))?;
    let text = String::from_utf8(text).map_err(|_| anyhow::anyhow!("{name}: not UTF-8 text"))?;
    let (spec, diags) = match bundle {
        Some(b) => nubo_runner::appspec::parse_in_bundle(&text, b),
        None => nubo_runner::appspec::parse(&text),
    };
    for d in &diags {
        eprintln!("{}", d.render(&name));
    }
    if spec.is_none()
        || diags
            .iter()
            .any(|d| d.severity == nubo_runner::appspec::Severity::Error)
    {
        std::process::exit(1);
    }
    eprintln!("{name}: valid");
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Applications: `app create NAME --owner USER`, `app list`
    #[command(subcommand)]
    App(AppCommand),
    /// Deployment groups: `group create APP NAME --tag k=v …`
    #[command(subcommand)]
    Group(GroupCommand),
    /// Deploy a commit (--repo R --commit C) or a build (--build ID) to APP/GROUP, as USER
    #[command(
        after_help = "Examples:\n  nubo deploy create web prod --repo web --commit main --as alice\n  nubo deploy create web prod --build 3f2a… --as alice"
    )]
    Create {
        app: String,
        group: String,
        #[arg(long)]
        repo: Option<String>,
        #[arg(long)]
        commit: Option<String>,
        #[arg(long)]
        build: Option<String>,
        #[arg(long = "as")]
        user: String,
    },
    /// A deployment's state, per target and lifecycle event
    Status { id: String },
    /// Stop a deployment
    Stop { id: String },
    /// Redeploy the last good revision of APP/GROUP (or that of --to DEPLOYMENT) as a new deployment
    Rollback {
        app: String,
        group: String,
        #[arg(long)]
        to: Option<String>,
        #[arg(long = "as")]
        user: String,
    },
    /// The deployment targets, online or not
    Targets,
    /// Agent tokens: `token create DESCRIPTION [--owner USER]`, `token revoke ID`, `token list`
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    Create {
        name: String,
        #[arg(long)]
        owner: String,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    Create {
        app: String,
        name: String,
        /// A tag targets must have (k=v; repeatable; not with --managed)
        #[arg(long = "tag", value_name = "K=V")]
        tags: Vec<String>,
        /// Run N managed targets for the group (local sandboxes Nubo starts)
        #[arg(long, value_name = "N")]
        managed: Option<i64>,
        /// Run the managed targets as containers of IMAGE on the container
        /// backend instead
        #[arg(long, value_name = "IMAGE", requires = "managed")]
        image: Option<String>,
        /// The port the app listens on, served at the group's app URL
        #[arg(long)]
        port: Option<u16>,
        /// Blue/green (with --managed and --port): deploy to a second set of
        /// managed targets and switch the app URL to it once healthy
        #[arg(long)]
        blue_green: bool,
        /// The path green must answer with a 2xx before the switch (default /)
        #[arg(long, value_name = "PATH", requires = "blue_green")]
        health_path: Option<String>,
        /// Seconds blue's in-flight requests have after the switch (default 5)
        #[arg(long, value_name = "SECONDS", requires = "blue_green")]
        drain: Option<u64>,
        /// Seconds blue keeps running after a switch (default 300)
        #[arg(long, value_name = "SECONDS", requires = "blue_green")]
        keep_blue: Option<u64>,
        #[arg(long)]
        config: Option<String>,
        #[arg(long)]
        auto_rollback: bool,
        /// Refuse a deployment while another runs (instead of queueing it)
        #[arg(long)]
        refuse_concurrent: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    Create {
        description: String,
        /// Whose applications may deploy to its targets (the first administrator by default)
        #[arg(long)]
        owner: Option<String>,
    },
    Revoke {
        id: String,
    },
    List,
}

async fn user(ctx: &Ctx, name: &str) -> anyhow::Result<User> {
    accounts::find_by_name(&ctx.pool, name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user named {name:?}"))
}

fn print_deployment(d: &view::Deployment) {
    println!(
        "{}  {}  {}/{}  {}",
        d.id, d.status, d.application, d.group, d.revision_label
    );
    if let Some(m) = &d.message {
        println!("  {m}");
    }
    for t in &d.targets {
        println!("  {}  {}", t.name, t.status);
        for e in &t.events {
            let code = e
                .error_code
                .filter(|c| *c != 0)
                .map(|c| format!(" (error {c})"))
                .unwrap_or_default();
            println!("    {:<18} {}{code}", e.name, e.status);
            if let Some(m) = &e.message {
                println!("      {m}");
            }
        }
    }
}

/// Runs `nubo deploy …`.
pub async fn run(cmd: DeployCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let pool = &ctx.pool;
    let engine = engine::Engine::default();
    let locks = crate::repos::Locks::default();
    match cmd {
        DeployCommand::App(AppCommand::Create { name, owner }) => {
            let a = super::create_application(pool, &user(ctx, &owner).await?, &name).await?;
            println!("application {} created, owned by {}", a.name, a.owner);
        }
        DeployCommand::App(AppCommand::List) => {
            let admin = accounts::first_admin(pool)
                .await?
                .context("no administrator")?;
            for a in super::list_applications(pool, &admin).await? {
                println!("{}  (owner {})", a.name, a.owner);
            }
        }
        DeployCommand::Group(GroupCommand::Create {
            app,
            name,
            tags,
            config,
            auto_rollback,
            refuse_concurrent,
            managed,
            image,
            port,
            blue_green,
            health_path,
            drain,
            keep_blue,
        }) => {
            let a = super::find_application(pool, &app)
                .await?
                .with_context(|| format!("no application {app:?}"))?;
            let mut map = BTreeMap::new();
            for t in tags {
                let (k, v) = t
                    .split_once('=')
                    .with_context(|| format!("--tag takes K=V, not {t:?}"))?;
                map.insert(k.to_string(), v.to_string());
            }
            let g = super::create_group(
                ctx,
                &a,
                NewGroup {
                    name,
                    config,
                    tags: map,
                    auto_rollback,
                    queue: !refuse_concurrent,
                    managed_count: managed.unwrap_or(0),
                    managed_image: image,
                    app_port: port,
                    blue_green: blue_green.then(|| super::BlueGreen {
                        health_path: health_path.unwrap_or_else(super::default_health_path),
                        health_timeout_seconds: super::default_health_timeout(),
                        drain_seconds: drain.unwrap_or_else(super::default_drain),
                        keep_blue_seconds: keep_blue.unwrap_or_else(super::default_keep),
                    }),
                },
            )
            .await?;
            println!("group {}/{} created ({})", a.name, g.name, g.config);
        }
        DeployCommand::Create {
            app,
            group,
            repo,
            commit,
            build,
            user: u,
        } => {
            let who = user(ctx, &u).await?;
            let rev = Revision {
                repo,
                commit: commit.or(Some("HEAD".into())).filter(|_| build.is_none()),
                build_id: build,
            };
            println!(
                "{}",
                engine::deploy(ctx, &engine, &locks, &who, (&app, &group), &rev).await?
            );
        }
        DeployCommand::Status { id } => {
            let d = view::find(pool, &id)
                .await?
                .with_context(|| format!("no deployment {id}"))?;
            print_deployment(&d);
        }
        DeployCommand::Stop { id } => {
            engine::stop(ctx, &engine, &id).await?;
            println!("deployment {id} stopped");
        }
        DeployCommand::Rollback {
            app,
            group,
            to,
            user: u,
        } => {
            let who = user(ctx, &u).await?;
            let (id, pick) =
                engine::redeploy(ctx, &engine, &locks, &who, (&app, &group), to.as_deref()).await?;
            println!("{id} redeploys {} ({})", pick.revision_label, pick.id);
        }
        DeployCommand::Targets => {
            let admin = accounts::first_admin(pool)
                .await?
                .context("no administrator")?;
            for t in agents::list_for(pool, &admin).await? {
                let tags: Vec<String> = t.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    "{}  {}  {}  {}",
                    t.name,
                    if t.online { "online" } else { "offline" },
                    tags.join(","),
                    t.revision.as_deref().unwrap_or("-")
                );
            }
        }
        DeployCommand::Token(TokenCommand::Create { description, owner }) => {
            let admin = accounts::first_admin(pool)
                .await?
                .context("no administrator")?;
            let owner = match owner {
                Some(o) => user(ctx, &o).await?,
                None => admin.clone(),
            };
            let (token, id) = agents::create_token(pool, &admin, &owner, &description).await?;
            eprintln!(
                "agent token {id} for {}'s targets (shown once):",
                owner.name
            );
            println!("{token}");
        }
        DeployCommand::Token(TokenCommand::Revoke { id }) => {
            agents::revoke_token(pool, &id).await?;
            println!("agent token {id} revoked");
        }
        DeployCommand::Token(TokenCommand::List) => {
            for t in agents::list_tokens(pool).await? {
                println!(
                    "{}  {}  owner {}{}",
                    t.id,
                    t.description,
                    t.owner,
                    if t.revoked { "  revoked" } else { "" }
                );
            }
        }
    }
    Ok(())
}
