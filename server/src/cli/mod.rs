//! The `nubo` command line. Every subcommand accepts `--data-dir` (or
//! `NUBO_DATA_DIR`) and `--config`; the account commands work on the data
//! dir directly, with or without a running server.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Layer, LogFormat, Settings};
use crate::ctx::Ctx;

mod key;

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
    Workspace(crate::workspaces::cli::WorkspaceCommand),
    /// Work with pipelines (CodePipeline declarations)
    #[command(
        subcommand,
        after_help = "Examples:\n  nubo pipeline check pipeline.json\n  nubo pipeline create pipeline.json --owner alice\n  nubo pipeline list\n  nubo pipeline start web\n  nubo pipeline status web"
    )]
    Pipeline(crate::pipelines::cli::PipelineCommand),
    /// Deployments (CodeDeploy): applications, groups, deployments, targets, agent tokens
    #[command(
        subcommand,
        after_help = "Examples:\n  nubo deploy token create 'web servers' --owner alice\n  nubo deploy app create web --owner alice\n  nubo deploy group create web prod --tag env=prod --auto-rollback\n  nubo deploy create web prod --repo web --commit main --as alice\n  nubo deploy status d-ABC123XYZ\n  nubo deploy targets"
    )]
    Deploy(crate::deployments::cli::DeployCommand),
    /// Work with appspec.yml files
    #[command(subcommand, after_help = "Examples:\n  nubo appspec check appspec.yml")]
    Appspec(crate::deployments::cli::AppspecCommand),
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

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Project(cmd) => crate::builds::cli::run(cmd, &Ctx::open(&settings).await?).await,
        Command::Parameter(cmd) => {
            crate::params::cli::run("parameter", cmd, &Ctx::open(&settings).await?).await
        }
        Command::Secret(cmd) => {
            crate::params::cli::run("secret", cmd, &Ctx::open(&settings).await?).await
        }
        Command::Pipeline(crate::pipelines::cli::PipelineCommand::Check { file, params }) => {
            crate::pipelines::cli::check(&file, &params)
        }
        Command::Pipeline(cmd) => {
            crate::pipelines::cli::run(cmd, &Ctx::open(&settings).await?).await
        }
        Command::Appspec(crate::deployments::cli::AppspecCommand::Check { file, bundle }) => {
            crate::deployments::cli::check(&file, bundle.as_deref())
        }
        Command::Deploy(cmd) => {
            crate::deployments::cli::run(cmd, &Ctx::open(&settings).await?).await
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
        Command::Workspace(cmd) => {
            crate::workspaces::cli::run(cmd, &Ctx::open(&settings).await?).await
        }
        Command::Serve(_) => crate::serve::serve(settings).await,
        Command::Repo(cmd) => crate::repos::cli::run(cmd, &Ctx::open(&settings).await?).await,
        Command::User(cmd) => crate::identity::cli::user(cmd, &Ctx::open(&settings).await?).await,
        Command::Token(cmd) => crate::identity::cli::token(cmd, &Ctx::open(&settings).await?).await,
        Command::Key(KeyCommand::Rotate) => key::rotate(&settings).await,
        Command::Hook(crate::repos::cli::HookCommand::PreReceive) => {
            crate::repos::hook::pre_receive(&settings).await
        }
    }
}
