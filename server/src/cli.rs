//! The `nubo` command line. Every subcommand accepts `--data-dir` (or
//! `NUBO_DATA_DIR`) and `--config`; the account commands work on the data
//! dir directly, with or without a running server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Layer, LogFormat, Settings};
use crate::ctx::Ctx;
use crate::{db, identity::accounts, keys};

#[derive(Debug, Parser)]
#[command(
    name = "nubo",
    version,
    about = "Nubo: a self-hosted cloud IDE with git hosting and a build-and-deploy runner",
    long_about = "Nubo: a self-hosted cloud IDE with git hosting and a build-and-deploy runner.\n\n\
        Settings come from built-in defaults, then the TOML file given by --config (or NUBO_CONFIG), \
        then NUBO_* environment variables, then flags; flags win.",
    after_help = "Examples:\n  \
        nubo serve                                   # run on http://127.0.0.1:8080 with ./nubo-data\n  \
        nubo --data-dir /srv/nubo serve --http 0.0.0.0:8080\n  \
        echo 's3cret-pass' | nubo user create alice --password-stdin\n  \
        nubo token create alice --description 'CI'   # prints the token alone"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML settings file (keys as in the README's configuration reference)
    #[arg(long, global = true, env = "NUBO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory holding the database and all state [default: ./nubo-data] [env: NUBO_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Master key file that wraps the repositories' data keys [default: <data-dir>/master.key] [env: NUBO_MASTER_KEY_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Log format [env: NUBO_LOG_FORMAT]
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter such as `info` or `nubo=debug` [env: NUBO_LOG_LEVEL]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server
    #[command(
        after_help = "Examples:\n  nubo serve\n  nubo serve --http 0.0.0.0:8080 --public-url https://nubo.example.org\n  nubo serve --https 127.0.0.1:8443   # self-signed certificate in <data-dir>/tls/\n  NUBO_DATA_DIR=/srv/nubo nubo serve --log-format json"
    )]
    Serve(ServeArgs),
    /// Manage user accounts
    #[command(
        subcommand,
        after_help = "Examples:\n  echo 'long-password' | nubo user create alice --password-stdin\n  nubo user list\n  nubo user disable alice"
    )]
    User(crate::identity::cli::UserCommand),
    /// Manage git repositories
    #[command(
        subcommand,
        after_help = "Examples:\n  nubo repo create my-app --owner alice --description 'The app'\n  nubo repo list\n  nubo repo delete my-app"
    )]
    Repo(crate::repos::cli::RepoCommand),
    /// Manage the master key
    #[command(subcommand, after_help = "Example:\n  nubo key rotate")]
    Key(KeyCommand),
    /// Run by git inside repositories; not for people
    #[command(subcommand, hide = true)]
    Hook(crate::repos::cli::HookCommand),
    /// Manage API tokens
    #[command(
        subcommand,
        after_help = "Examples:\n  nubo token create alice --description 'CI'\n  nubo token list alice\n  nubo token revoke ID"
    )]
    Token(crate::identity::cli::TokenCommand),
    /// Manage workspaces (development environments)
    #[command(
        subcommand,
        after_help = "Examples:\n  nubo workspace create web --owner alice --repo my-app\n  nubo workspace list\n  nubo workspace exec alice/web -- git log --oneline -3\n  nubo workspace stop alice/web\n  nubo workspace delete alice/web"
    )]
    Workspace(WorkspaceCommand),
    /// Work with buildspec.yml files
    #[command(
        subcommand,
        after_help = "Examples:\n  nubo buildspec check buildspec.yml"
    )]
    Buildspec(crate::builds::cli::BuildspecCommand),
    /// Run a build on this machine, as the server would (CodeBuild's local runner)
    #[command(
        after_help = "Examples:\n  nubo build --source . --local\n  nubo build --source ~/app --buildspec ci/buildspec.yml --artifacts /tmp/out --env STAGE=test\n  echo \"$TOKEN\" | nubo build --source . --secret-stdin API_TOKEN"
    )]
    Build(crate::builds::cli::BuildArgs),
    /// Manage build projects and queue their builds (a running server runs them)
    #[command(
        subcommand,
        after_help = "Examples:\n  nubo project create app-ci --owner alice --repo app\n  nubo project start app-ci --as alice --branch main\n  nubo project builds app-ci"
    )]
    Project(crate::builds::cli::ProjectCommand),
    /// Manage the parameter store (env.parameter-store in buildspecs)
    #[command(
        subcommand,
        after_help = "Examples:\n  echo 's3cret' | nubo parameter put /prod/db/password --value-stdin\n  nubo parameter list"
    )]
    Parameter(crate::params::cli::ValueCommand),
    /// Manage the secrets manager (env.secrets-manager in buildspecs)
    #[command(
        subcommand,
        after_help = "Examples:\n  echo '{\"api\":\"k-1\"}' | nubo secret put deploy-keys --value-stdin\n  nubo secret delete deploy-keys"
    )]
    Secret(crate::params::cli::ValueCommand),
}

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

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for plain HTTP [default: 127.0.0.1:8080] [env: NUBO_HTTP]
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Address for git over SSH [default: 127.0.0.1:2222] [env: NUBO_SSH]
    #[arg(long, value_name = "ADDR")]
    pub ssh: Option<SocketAddr>,
    /// Also serve HTTPS on this address [env: NUBO_HTTPS]
    #[arg(long, value_name = "ADDR")]
    pub https: Option<SocketAddr>,
    /// PEM certificate chain for HTTPS (default: self-signed, generated into the data dir) [env: NUBO_TLS_CERT]
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert [env: NUBO_TLS_KEY]
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Directory for plaintext working copies of repositories [default: RAM under /dev/shm] [env: NUBO_CACHE_DIR]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The URL users reach Nubo at; https:// makes cookies Secure [env: NUBO_PUBLIC_URL]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Docker Engine API socket (Docker or Podman) for container workspaces [env: NUBO_CONTAINER_SOCKET]
    #[arg(long, value_name = "PATH")]
    pub container_socket: Option<PathBuf>,
    /// Address of the preview listener, an origin apart from Nubo's pages [default: 127.0.0.1:8081] [env: NUBO_PREVIEW_HTTP]
    #[arg(long, value_name = "ADDR")]
    pub preview_http: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Re-wrap every repository's data key under a new master key, written
    /// to the master key file; data is not re-encrypted. A running server
    /// picks the new key up by itself.
    #[command(
        after_help = "Examples:\n  nubo key rotate\n  nubo --master-key-file /etc/nubo/master.key key rotate"
    )]
    Rotate,
}

/// Builds the settings from the file, the environment and these flags.
pub fn settings(global: &GlobalArgs, serve: Option<&ServeArgs>) -> anyhow::Result<Settings> {
    let mut layers = Vec::new();
    if let Some(path) = &global.config {
        let text = std::fs::read_to_string(path).map_err(|source| config::ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        layers.push(Layer::from_toml(path, &text)?);
    }
    layers.push(Layer::from_env(std::env::vars())?);
    let mut flags = Layer {
        data_dir: global.data_dir.clone(),
        master_key_file: global.master_key_file.clone(),
        log_format: global.log_format,
        log_level: global.log_level.clone(),
        ..Layer::default()
    };
    if let Some(s) = serve {
        flags.http = s.http;
        flags.https = s.https;
        flags.ssh = s.ssh;
        flags.cache_dir = s.cache_dir.clone();
        flags.tls_cert = s.tls_cert.clone();
        flags.tls_key = s.tls_key.clone();
        flags.public_url = s.public_url.clone();
        flags.container_socket = s.container_socket.clone();
        flags.preview_http = s.preview_http;
    }
    layers.push(flags);
    Ok(config::resolve(&layers)?)
}

async fn find_workspace(
    pool: &sqlx::SqlitePool,
    spec: &str,
) -> anyhow::Result<crate::workspaces::Workspace> {
    use crate::workspaces;
    if let Some((owner, name)) = spec.split_once('/') {
        let user = accounts::find_by_name(pool, owner)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user named {owner:?}"))?;
        return workspaces::list_for(pool, &user)
            .await?
            .into_iter()
            .find(|w| w.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| anyhow::anyhow!("{owner} has no workspace named {name:?}"));
    }
    workspaces::find(pool, spec)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no workspace with id {spec:?} (or use OWNER/NAME)"))
}

fn print_workspaces(list: &[crate::workspaces::Workspace]) {
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

async fn workspace_command(cmd: WorkspaceCommand, settings: Settings) -> anyhow::Result<()> {
    use crate::workspaces::{self, CreateWorkspace, Env};
    let pool = db::open(&settings.data_dir).await?;
    let master = crate::keys::load_or_create(&settings, &pool).await?;
    let env = Env {
        pool: pool.clone(),
        master: std::sync::Arc::new(crate::keys::MasterKey::new(settings.clone(), master)),
        settings: std::sync::Arc::new(settings),
        state: None,
    };
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
            let user = accounts::find_by_name(&pool, &owner)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user named {owner:?}"))?;
            let ws = workspaces::create(
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
                    let user = accounts::find_by_name(&pool, &owner)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no user named {owner:?}"))?;
                    workspaces::list_for(&pool, &user).await?
                }
                None => workspaces::list_all(&pool).await?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_workspaces(&list);
            }
        }
        WorkspaceCommand::Start { workspace } => {
            let ws = find_workspace(&pool, &workspace).await?;
            let ws = workspaces::start(&env, &ws).await?;
            eprintln!("workspace {} is {}", ws.name, ws.state);
        }
        WorkspaceCommand::Stop { workspace } => {
            let ws = find_workspace(&pool, &workspace).await?;
            let ws = workspaces::stop(&env, &ws, None).await?;
            eprintln!("workspace {} is {}", ws.name, ws.state);
        }
        WorkspaceCommand::Delete { workspace } => {
            let ws = find_workspace(&pool, &workspace).await?;
            workspaces::delete(&env, &ws).await?;
            eprintln!("deleted workspace {}", ws.name);
        }
        WorkspaceCommand::Exec {
            workspace,
            cwd,
            env: vars,
            timeout,
            command,
        } => {
            let ws = find_workspace(&pool, &workspace).await?;
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
            let out: serde_json::Value = workspaces::agent(&env.settings, &ws)
                .json(
                    axum::http::Method::POST,
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

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Project(cmd) => crate::builds::cli::run(cmd, &Ctx::open(&settings).await?).await,
        Command::Parameter(cmd) => {
            crate::params::cli::run("parameter", cmd, &Ctx::open(&settings).await?).await
        }
        Command::Secret(cmd) => {
            crate::params::cli::run("secret", cmd, &Ctx::open(&settings).await?).await
        }
        Command::Buildspec(crate::builds::cli::BuildspecCommand::Check { file }) => {
            crate::builds::cli::check(&file)
        }
        Command::Build(args) if args.image.is_some() => {
            crate::builds::cli::container_build(args, settings).await
        }
        Command::Build(args) => {
            tokio::task::spawn_blocking(move || crate::builds::cli::build(args)).await?
        }
        Command::Workspace(cmd) => workspace_command(cmd, settings).await,
        Command::Serve(_) => crate::serve::serve(settings).await,
        Command::Repo(cmd) => crate::repos::cli::run(cmd, &Ctx::open(&settings).await?).await,
        Command::User(cmd) => crate::identity::cli::user(cmd, &Ctx::open(&settings).await?).await,
        Command::Token(cmd) => crate::identity::cli::token(cmd, &Ctx::open(&settings).await?).await,
        Command::Key(KeyCommand::Rotate) => {
            // Every domain that seals with the master key, in one transaction.
            let pool = db::open(&settings.data_dir).await?;
            let mut rotation = keys::Rotation::begin(&settings, &pool).await?;
            let (old, new) = (rotation.old.clone(), rotation.new.clone());
            let n = crate::repos::reseal(&mut rotation.tx, &old, &new).await?;
            crate::params::reseal(&mut rotation.tx, &old, &new).await?;
            rotation.finish().await?;
            eprintln!(
                "re-wrapped {n} data key(s) under a new master key in {}; the old key no longer opens them",
                keys::key_path(&settings).display()
            );
            Ok(())
        }
        Command::Hook(crate::repos::cli::HookCommand::PreReceive) => {
            crate::repos::hook::pre_receive(&settings).await
        }
    }
}
