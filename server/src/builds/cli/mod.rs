//! `nubo project` (build projects and their builds, on the data dir; a
//! running server runs what is queued), `nubo buildspec check` and `nubo
//! build` (the local runner, in `local.rs`).

mod local;

pub use local::{build, container_build, BuildArgs};

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::builds;
use crate::ctx::Ctx;
use crate::identity::accounts;

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a build project
    #[command(
        after_help = "Example:\n  nubo project create app-ci --owner alice --repo app --branch main"
    )]
    Create {
        name: String,
        #[arg(long)]
        owner: String,
        #[arg(long)]
        repo: String,
        #[arg(long, default_value = "main")]
        branch: String,
        #[arg(long, default_value = "buildspec.yml")]
        buildspec_path: String,
        /// Build timeout in minutes (5-480)
        #[arg(long, default_value_t = 60)]
        timeout_minutes: i64,
        /// Build in containers of this image (needs container_socket)
        #[arg(long)]
        image: Option<String>,
        /// Container builds: memory in MiB [default: workspace_memory_mb]
        #[arg(long)]
        memory_mb: Option<i64>,
        /// Container builds: CPUs [default: workspace_cpus]
        #[arg(long)]
        cpus: Option<f64>,
        /// Container builds: most processes [default: workspace_pids]
        #[arg(long)]
        pids: Option<i64>,
    },
    /// List build projects
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a project with its builds
    Delete { name: String },
    /// Queue a build; prints its id (a running server picks it up)
    #[command(after_help = "Example:\n  nubo project start app-ci --as alice --commit 1a2b3c4")]
    Start {
        name: String,
        /// The user the build runs for (CODEBUILD_INITIATOR)
        #[arg(long = "as")]
        initiator: String,
        #[arg(long)]
        branch: Option<String>,
        #[arg(long)]
        commit: Option<String>,
    },
    /// A project's builds, newest first
    Builds {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BuildspecCommand {
    /// Validate a buildspec: exit 0 when valid (warnings allowed), 1 with FILE:LINE:COLUMN errors on stderr
    #[command(after_help = "Example:\n  nubo buildspec check buildspec.yml")]
    Check {
        /// The buildspec file
        file: PathBuf,
    },
}

/// Runs `nubo buildspec check FILE`.
pub fn check(file: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file.display().to_string();
    let text = String::from_utf8(text).map_err(|_| anyhow::anyhow!("{name}: not UTF-8 text"))?;
    let (spec, diags) = nubo_runner::buildspec::parse(&text);
    for d in &diags {
        eprintln!("{}", d.render(&name));
    }
    if spec.is_none() {
        std::process::exit(1);
    }
    eprintln!("{name}: valid");
    Ok(())
}

/// Runs `nubo project …`.
pub async fn run(cmd: ProjectCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let pool = &ctx.pool;
    let user = |name: String| async move {
        accounts::find_by_name(pool, &name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user named {name:?}"))
    };
    let project = |name: String| async move {
        builds::find_project(pool, &name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no build project named {name:?}"))
    };
    match cmd {
        ProjectCommand::Create {
            name,
            owner,
            repo,
            branch,
            buildspec_path,
            timeout_minutes,
            image,
            memory_mb,
            cpus,
            pids,
        } => {
            let owner = user(owner).await?;
            let p = builds::create_project(
                pool,
                &ctx.settings,
                &owner,
                builds::CreateProject {
                    name,
                    repo,
                    branch: Some(branch),
                    buildspec_path: Some(buildspec_path),
                    timeout_minutes: Some(timeout_minutes),
                    image,
                    memory_mb,
                    cpus,
                    pids,
                    ..Default::default()
                },
            )
            .await?;
            eprintln!("created build project {}", p.name);
        }
        ProjectCommand::List { json } => {
            let projects = builds::list_all_projects(pool).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&projects)?);
            } else {
                println!("{:<24} {:<12} {:<24} BRANCH", "NAME", "OWNER", "REPOSITORY");
                for p in projects {
                    println!("{:<24} {:<12} {:<24} {}", p.name, p.owner, p.repo, p.branch);
                }
            }
        }
        ProjectCommand::Delete { name } => {
            let p = project(name).await?;
            // Builds a running server runs stop at their next check.
            builds::delete_project(ctx, &builds::Running::new(Default::default()), &p).await?;
            eprintln!("deleted build project {}", p.name);
        }
        ProjectCommand::Start {
            name,
            initiator,
            branch,
            commit,
        } => {
            let p = project(name).await?;
            let who = user(initiator).await?;
            let request = builds::StartBuild {
                branch,
                commit,
                env: None,
                ..Default::default()
            };
            // A batch buildspec starts a batch (its plan read from a working
            // copy restored here); a running server runs what is queued.
            let running = builds::Running::new(Default::default());
            match builds::batches::start_any(ctx, &running, &p, &who, request).await? {
                builds::batches::Started::Batch(b) => {
                    eprintln!("started a batch of {} builds of {}", b.builds.len(), p.name);
                    println!("{}", b.id);
                }
                builds::batches::Started::Build(b) => {
                    eprintln!("queued build #{} of {}", b.number, p.name);
                    println!("{}", b.id);
                }
            }
        }
        ProjectCommand::Builds { name, json } => {
            let p = project(name).await?;
            let list = builds::list_builds(pool, &p, 100).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<6} {:<12} {:<16} {:<10} STARTED",
                    "#", "STATUS", "BRANCH", "COMMIT"
                );
                for b in list {
                    println!(
                        "{:<6} {:<12} {:<16} {:<10} {}",
                        b.number,
                        b.status,
                        b.branch,
                        b.commit
                            .as_deref()
                            .map(|c| &c[..c.len().min(7)])
                            .unwrap_or("-"),
                        b.started_at.as_deref().unwrap_or("-")
                    );
                }
            }
        }
    }
    Ok(())
}
