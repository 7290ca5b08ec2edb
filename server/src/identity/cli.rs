//! `nubo user` and `nubo token`: accounts and API tokens, on the data dir
//! directly (with or without a running server).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::ctx::Ctx;
use crate::identity::{accounts, git_credentials, ssh_keys, tokens};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input
    #[command(
        after_help = "Examples:\n  echo 'long-password' | nubo user create alice --password-stdin\n  nubo user create root2 --admin --password-stdin < pw.txt"
    )]
    Create {
        /// User name: 1-64 letters, digits, '.', '_' or '-'
        name: String,
        /// Make the user an administrator
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (required: passwords never go in arguments)
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List users
    #[command(after_help = "Examples:\n  nubo user list\n  nubo user list --json")]
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: they can no longer sign in or use their tokens
    #[command(after_help = "Example:\n  nubo user disable alice")]
    Disable { name: String },
    /// Enable a disabled user
    #[command(after_help = "Example:\n  nubo user enable alice")]
    Enable { name: String },
    /// Register an SSH public key (ed25519, ECDSA, RSA >= 2048) for git over SSH
    #[command(
        after_help = "Example:\n  nubo user add-ssh-key alice --key-file ~/.ssh/id_ed25519.pub"
    )]
    AddSshKey {
        name: String,
        /// The public key file (one OpenSSH line)
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
    /// Generate an HTTPS git credential for a user; prints the user name and
    /// the password on two lines (the password is shown only now)
    #[command(after_help = "Example:\n  nubo user git-credentials alice")]
    GitCredentials { name: String },
    /// Set a user's password, read from standard input
    #[command(
        after_help = "Example:\n  echo 'new-long-password' | nubo user set-password admin --password-stdin"
    )]
    SetPassword {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for user NAME and print it alone on stdout
    #[command(
        after_help = "Examples:\n  nubo token create alice --description 'deploy script'\n  TOKEN=$(nubo token create alice)\n  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/api/v1/me"
    )]
    Create {
        /// The user the token acts as
        name: String,
        /// What the token is for
        #[arg(long, default_value = "created with the nubo CLI")]
        description: String,
    },
    /// List a user's active tokens (never the secrets)
    #[command(after_help = "Example:\n  nubo token list alice")]
    List { name: String },
    /// Revoke a token by its id (see `nubo token list`)
    #[command(after_help = "Example:\n  nubo token revoke 3f2a...")]
    Revoke { id: String },
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut buf = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut buf)
        .context("reading the password from standard input")?;
    let password = buf.strip_suffix('\n').unwrap_or(&buf);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on standard input: pipe it in, e.g. `echo 'long-password' | nubo user create NAME --password-stdin`");
    }
    Ok(password.to_string())
}

/// Runs `nubo user …`.
pub async fn user(cmd: UserCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let pool = &ctx.pool;
    match cmd {
        UserCommand::Create { name, admin, .. } => {
            let password = read_password_stdin()?;
            let user = accounts::create_user(pool, &name, &password, admin, false).await?;
            eprintln!(
                "created user {}{}",
                user.name,
                if admin { " (administrator)" } else { "" }
            );
        }
        UserCommand::List { json } => {
            let users = accounts::list(pool).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                println!("{:<24} {:<6} {:<9} CREATED", "NAME", "ADMIN", "STATE");
                for u in users {
                    println!(
                        "{:<24} {:<6} {:<9} {}",
                        u.name,
                        if u.admin { "yes" } else { "no" },
                        if u.disabled { "disabled" } else { "active" },
                        u.created_at
                    );
                }
            }
        }
        UserCommand::AddSshKey { name, key_file } => {
            let user = accounts::require_by_name(pool, &name).await?;
            let text = std::fs::read_to_string(&key_file)
                .with_context(|| format!("reading {}", key_file.display()))?;
            let key = ssh_keys::add(pool, &user, &text).await?;
            println!("{}", key.fingerprint);
        }
        UserCommand::GitCredentials { name } => {
            let user = accounts::require_by_name(pool, &name).await?;
            let made = git_credentials::create(pool, &user, None).await?;
            println!("{}\n{}", made.username, made.password);
        }
        UserCommand::Disable { name } => {
            accounts::set_disabled(pool, &name, true).await?;
            eprintln!("disabled {name}");
        }
        UserCommand::Enable { name } => {
            accounts::set_disabled(pool, &name, false).await?;
            eprintln!("enabled {name}");
        }
        UserCommand::SetPassword { name, .. } => {
            let password = read_password_stdin()?;
            let user = accounts::require_by_name(pool, &name).await?;
            accounts::set_password(pool, &user.id, &password, false).await?;
            eprintln!("set the password of {}", user.name);
        }
    }
    Ok(())
}

/// Runs `nubo token …`.
pub async fn token(cmd: TokenCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let pool = &ctx.pool;
    match cmd {
        TokenCommand::Create { name, description } => {
            let user = accounts::require_by_name(pool, &name).await?;
            let (_, token) = tokens::create(pool, &user.id, &description).await?;
            println!("{token}");
        }
        TokenCommand::List { name } => {
            let user = accounts::require_by_name(pool, &name).await?;
            println!(
                "{:<32} {:<14} {:<26} {:<26} DESCRIPTION",
                "ID", "PREFIX", "CREATED", "LAST USED"
            );
            for t in tokens::list(pool, &user.id).await? {
                println!(
                    "{:<32} {:<14} {:<26} {:<26} {}",
                    t.id,
                    t.prefix,
                    t.created_at,
                    t.last_used_at.as_deref().unwrap_or("never"),
                    t.description
                );
            }
        }
        TokenCommand::Revoke { id } => {
            tokens::revoke(pool, &id, None).await?;
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}
