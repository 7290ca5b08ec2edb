//! `nubo parameter` and `nubo secret`: the stores from the command line.

use std::io::Read;

use clap::Subcommand;

use crate::ctx::Ctx;
use crate::params;

#[derive(Debug, Subcommand)]
pub enum ValueCommand {
    /// Set a value, read from standard input
    Put {
        name: String,
        /// Read the value from standard input (required: values never go in arguments)
        #[arg(long, required = true)]
        value_stdin: bool,
    },
    /// List names (never values)
    List,
    /// Delete a value
    Delete { name: String },
}

/// Runs `nubo parameter …` (`kind` = `parameter`) or `nubo secret …`.
pub async fn run(kind: &str, cmd: ValueCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let (pool, master) = (&ctx.pool, &ctx.master);
    match cmd {
        ValueCommand::Put { name, .. } => {
            let mut value = String::new();
            std::io::stdin()
                .take(64 * 1024 + 1)
                .read_to_string(&mut value)?;
            let value = value.strip_suffix('\n').unwrap_or(&value);
            params::put_value(pool, master, kind, &name, value, "cli").await?;
            eprintln!(
                "stored {kind} {}",
                crate::identity::policy::canonical_name(kind, &name)
            );
        }
        ValueCommand::List => {
            for v in params::list_values(pool, kind).await? {
                println!("{}\t{}", v.name, v.updated_at);
            }
        }
        ValueCommand::Delete { name } => {
            params::delete_value(pool, kind, &name).await?;
            eprintln!("deleted {kind} {name}");
        }
    }
    Ok(())
}
