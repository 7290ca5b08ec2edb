//! `nubo repo` (create, list, delete) and `nubo hook` (run by git).

use clap::Subcommand;

use crate::ctx::Ctx;
use crate::identity::accounts;
use crate::repos;

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// git's pre-receive hook: store the pushed pack and refs, encrypted
    PreReceive,
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create an empty repository owned by a user
    #[command(
        after_help = "Example:\n  nubo repo create my-app --owner alice --description 'The app'"
    )]
    Create {
        /// 1-100 letters, digits, '.', '_' or '-'; not ending in .git
        name: String,
        /// The user who owns it (has full access)
        #[arg(long)]
        owner: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List all repositories
    #[command(after_help = "Examples:\n  nubo repo list\n  nubo repo list --json")]
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Delete a repository and all its data
    #[command(after_help = "Example:\n  nubo repo delete my-app")]
    Delete { name: String },
}

/// Runs `nubo repo …`.
pub async fn run(cmd: RepoCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let pool = &ctx.pool;
    let settings = &ctx.settings;
    match cmd {
        RepoCommand::Create {
            name,
            owner,
            description,
        } => {
            let owner = accounts::require_by_name(pool, &owner).await?;
            let repo = repos::create(pool, &ctx.master, &name, &description, &owner).await?;
            println!("{}", repo.clone_url(&settings.base_url()));
        }
        RepoCommand::List { json } => {
            let all = repos::list_all(pool).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!(
                    "{:<32} {:<20} {:<26} DESCRIPTION",
                    "NAME", "OWNER", "CREATED"
                );
                for r in all {
                    println!(
                        "{:<32} {:<20} {:<26} {}",
                        r.name, r.owner, r.created_at, r.description
                    );
                }
            }
        }
        RepoCommand::Delete { name } => {
            let repo = repos::find(pool, &name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no repository named {name:?}"))?;
            repos::delete(
                pool,
                &settings.data_dir,
                &settings.effective_cache_dir(),
                &repo,
            )
            .await?;
            eprintln!("deleted repository {}", repo.name);
        }
    }
    Ok(())
}
