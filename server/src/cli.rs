//! The `nubo` command line. Every subcommand accepts `--data-dir` (or
//! `NUBO_DATA_DIR`) and `--config`; the account commands work on the data
//! dir directly, with or without a running server.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
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
    Buildspec(BuildspecCommand),
    /// Run a build on this machine, as the server would (CodeBuild's local runner)
    #[command(
        after_help = "Examples:\n  nubo build --source . --local\n  nubo build --source ~/app --buildspec ci/buildspec.yml --artifacts /tmp/out --env STAGE=test\n  echo \"$TOKEN\" | nubo build --source . --secret-stdin API_TOKEN"
    )]
    Build(BuildArgs),
    /// Manage build projects and queue their builds (a running server runs them)
    #[command(
        subcommand,
        after_help = "Examples:\n  nubo project create app-ci --owner alice --repo app\n  nubo project start app-ci --as alice --branch main\n  nubo project builds app-ci"
    )]
    Project(ProjectCommand),
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

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The source directory (CODEBUILD_SRC_DIR)
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// The buildspec [default: SOURCE/buildspec.yml]
    #[arg(long, value_name = "FILE")]
    pub buildspec: Option<PathBuf>,
    /// Run the commands directly on this machine (the default)
    #[arg(long, conflicts_with = "image")]
    pub local: bool,
    /// Run in an ephemeral container of this image (needs NUBO_CONTAINER_SOCKET)
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Copy artifacts into this directory (secondary artifacts into DIR/<id>/)
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// A variable, overriding the buildspec's (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read a secret variable's value from standard input; it is masked in the log
    #[arg(long, value_name = "KEY")]
    pub secret_stdin: Option<String>,
    /// Build timeout: `90s`, `30m`, `2h` (CodeBuild's default is 60 minutes)
    #[arg(long, default_value = "60m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Print the outcome as JSON on stdout at the end
    #[arg(long)]
    pub json: bool,
    /// Keep and restore `cache` keys in this directory (no caching without it)
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Command output the log keeps, in bytes; the rest is dropped with a note
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20, hide = true)]
    pub log_cap: usize,
    /// Run the buildspec's phases even if it has `batch:` (the server's batches use it)
    #[arg(long, hide = true)]
    pub ignore_batch: bool,
    /// Also write the log to this file (used by the server's container builds)
    #[arg(long, value_name = "FILE", hide = true)]
    pub log_file: Option<PathBuf>,
    /// Write the outcome as JSON to this file (used by the server's container builds)
    #[arg(long, value_name = "FILE", hide = true)]
    pub outcome: Option<PathBuf>,
    /// Read secret variables from this JSON object file, then delete it (used by the server)
    #[arg(long, value_name = "FILE", hide = true)]
    pub secrets_file: Option<PathBuf>,
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

/// `90s`, `30m`, `2h` or plain seconds.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 90s, 30m or 2h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?} is not a duration such as 90s, 30m or 2h")),
    };
    if secs == 0 {
        return Err("the timeout must be positive".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

fn buildspec_check(file: &std::path::Path) -> anyhow::Result<()> {
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

/// `nubo build --image IMAGE`: the same build in an ephemeral container of
/// IMAGE, through the engine at `container_socket`.
async fn container_build_command(args: BuildArgs, settings: Settings) -> anyhow::Result<()> {
    let image = args.image.clone().expect("checked by the caller");
    if settings.container_socket.is_none() {
        bail!("--image needs a container engine: set NUBO_CONTAINER_SOCKET (see `scripts/podman.sh service`)");
    }
    let source = std::fs::canonicalize(&args.source).with_context(|| {
        format!(
            "the source directory {} does not exist",
            args.source.display()
        )
    })?;
    let file = args
        .buildspec
        .clone()
        .unwrap_or_else(|| source.join("buildspec.yml"));
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read the buildspec {}", file.display()))?;
    let (spec, diags) = nubo_runner::buildspec::parse(&text);
    for d in &diags {
        eprintln!("{}", d.render(&file.display().to_string()));
    }
    if spec.is_none() {
        std::process::exit(1);
    }
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("buildspec.yml"), &text)?;
    let mut secrets = std::collections::BTreeMap::new();
    if let Some(key) = &args.secret_stdin {
        let mut value = String::new();
        std::io::stdin().read_to_string(&mut value)?;
        secrets.insert(
            key.clone(),
            value.trim_end_matches(['\n', '\r']).to_string(),
        );
    }
    crate::tls::write_private(
        &out.join("secrets.json"),
        serde_json::to_string(&secrets)?.as_bytes(),
    )?;
    let cache = match &args.cache_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            std::fs::canonicalize(dir)?
        }
        None => tmp.path().join("cache"),
    };
    std::fs::create_dir_all(&cache)?;
    let mut inner: Vec<String> = [
        "--source",
        "/codebuild/src",
        "--buildspec",
        "/codebuild/out/buildspec.yml",
        "--artifacts",
        "/codebuild/out/artifacts",
        "--outcome",
        "/codebuild/out/outcome.json",
        "--secrets-file",
        "/codebuild/out/secrets.json",
        "--log-file",
        "/codebuild/out/build.log",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if args.cache_dir.is_some() {
        inner.extend(["--cache-dir".into(), "/codebuild/cache".into()]);
    }
    inner.extend(["--timeout".into(), format!("{}s", args.timeout.as_secs())]);
    for kv in &args.env {
        inner.extend(["--env".into(), kv.clone()]);
    }
    let project = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "local".into());
    let build = crate::containers::ContainerBuild {
        name: format!("nubo-build-cli-{}", hex::encode(rand::random::<[u8; 6]>())),
        image: image.clone(),
        src: &source,
        out: &out,
        args: inner,
        env: vec![
            format!("NUBO_PROJECT={project}"),
            format!("NUBO_IMAGE={image}"),
            "HOME=/root".into(),
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ],
        cancel: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        cache,
        memory_mb: None,
        cpus: None,
        pids: None,
    };
    let mut follower = crate::build_external::LogFollower::new(&out, args.log_cap);
    let mut print = |line: &str| println!("{line}");
    let mut follow = |on_line: &mut (dyn FnMut(&str) + Send)| follower.poll(on_line);
    let code = crate::containers::run_build(&settings, build, &mut follow, &mut print).await?;
    follower.finish(&mut print);
    let outcome = crate::build_external::read_outcome(&out);
    let Some(outcome) = outcome else {
        bail!(
            "the build container ended with status {} before finishing",
            code.unwrap_or(-1)
        );
    };
    // Only regular files and directories come out of the container.
    let staged = tmp.path().join("artifacts");
    let kept = crate::build_external::take_artifacts(&out, &staged, &mut print);
    if let (Some(dest), true) = (&args.artifacts, kept > 0) {
        std::fs::create_dir_all(dest)?;
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(staged.join("."))
            .arg(dest)
            .status()?;
        if !status.success() {
            bail!("cannot copy the artifacts to {}", dest.display());
        }
    }
    for (k, v) in &outcome.exported_variables {
        eprintln!("exported {k}={v}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    if !outcome.succeeded {
        std::process::exit(1);
    }
    Ok(())
}

fn build_command(args: BuildArgs) -> anyhow::Result<()> {
    let source = std::fs::canonicalize(&args.source).with_context(|| {
        format!(
            "the source directory {} does not exist",
            args.source.display()
        )
    })?;
    let file = args
        .buildspec
        .clone()
        .unwrap_or_else(|| source.join("buildspec.yml"));
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read the buildspec {}", file.display()))?;
    let name = file.display().to_string();
    let (spec, diags) = nubo_runner::buildspec::parse(&text);
    for d in &diags {
        eprintln!("{}", d.render(&name));
    }
    let Some(spec) = spec else {
        std::process::exit(1);
    };
    let mut overrides = Vec::new();
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--env takes KEY=VALUE, not {kv:?}"))?;
        // The two a batch gives its builds are CodeBuild's own.
        let batch_var = matches!(
            k,
            "CODEBUILD_BATCH_BUILD_IDENTIFIER" | "CODEBUILD_BUILD_BATCH_TRIGGERED"
        );
        if k.starts_with("CODEBUILD_") && !batch_var {
            bail!("{k}: the CODEBUILD_ prefix is reserved");
        }
        overrides.push((k.to_string(), v.to_string()));
    }
    let mut secrets = Vec::new();
    if let Some(key) = &args.secret_stdin {
        let mut value = String::new();
        std::io::stdin().read_to_string(&mut value)?;
        let value = value.trim_end_matches(['\n', '\r']).to_string();
        secrets.push((key.clone(), value));
    }
    if let Some(path) = &args.secrets_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let _ = std::fs::remove_file(path);
        let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)?;
        secrets.extend(map);
    }
    let project = std::env::var("NUBO_PROJECT")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| {
            source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "local".into())
        });
    let options = nubo_runner::local::Options {
        source,
        spec,
        overrides,
        secrets,
        artifacts_dir: args.artifacts.clone(),
        timeout: args.timeout,
        project,
        initiator: std::env::var("USER").unwrap_or_else(|_| "local".into()),
        image: std::env::var("NUBO_IMAGE").unwrap_or_else(|_| "local".into()),
        log_cap: args.log_cap,
        cancel: None,
        announce_source: args.outcome.is_none(),
        cache_dir: args.cache_dir.clone(),
    };
    let mut log_file = match &args.log_file {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => None,
    };
    let mut print = |line: &str| {
        use std::io::Write;
        match log_file.as_mut() {
            Some(f) => {
                let _ = writeln!(f, "{line}");
                let _ = f.flush();
            }
            None => {
                let out = std::io::stdout();
                let mut out = out.lock();
                let _ = writeln!(out, "{line}");
            }
        }
    };
    // A batch buildspec: its builds, one after another, here.
    if let (Some(batch), false) = (options.spec.batch.clone(), args.ignore_batch) {
        let o = nubo_runner::local_batch::BatchOptions {
            base: &options,
            own: &options.spec,
        };
        let outcome = nubo_runner::local_batch::run(&o, &batch, &mut print);
        for (id, status, note) in &outcome.builds {
            eprintln!(
                "{id}\t{status}{}",
                note.as_ref().map(|n| format!("\t{n}")).unwrap_or_default()
            );
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&outcome)?);
        }
        if outcome.status != "SUCCEEDED" {
            std::process::exit(1);
        }
        return Ok(());
    }
    let outcome = nubo_runner::local::run(&options, &mut print);
    for (k, v) in &outcome.exported_variables {
        eprintln!("exported {k}={v}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    if let Some(path) = &args.outcome {
        std::fs::write(path, serde_json::to_string(&outcome)?)?;
    }
    if !outcome.succeeded {
        std::process::exit(1);
    }
    Ok(())
}

async fn project_command(cmd: ProjectCommand, settings: Settings) -> anyhow::Result<()> {
    use crate::builds;
    let pool = db::open(&settings.data_dir).await?;
    let user = |name: String| {
        let pool = pool.clone();
        async move {
            accounts::find_by_name(&pool, &name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user named {name:?}"))
        }
    };
    let project = |name: String| {
        let pool = pool.clone();
        async move {
            builds::find_project(&pool, &name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no build project named {name:?}"))
        }
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
                &pool,
                &settings,
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
            let list: Vec<_> = sqlx::query_scalar::<_, String>(
                "SELECT name FROM build_projects ORDER BY lower(name)",
            )
            .fetch_all(&pool)
            .await?;
            let mut projects = Vec::new();
            for name in list {
                projects.push(project(name).await?);
            }
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
            let ids: Vec<String> =
                sqlx::query_scalar("SELECT id FROM builds WHERE project_id = $1")
                    .bind(&p.id)
                    .fetch_all(&pool)
                    .await?;
            sqlx::query("DELETE FROM build_projects WHERE id = $1")
                .bind(&p.id)
                .execute(&pool)
                .await?;
            for id in ids {
                let _ = std::fs::remove_dir_all(builds::build_dir(&settings.data_dir, &id));
            }
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
            };
            // A batch buildspec starts a batch: read it from a copy of the
            // repository restored here.
            let branch = request
                .branch
                .clone()
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| p.branch.clone());
            builds::check_start(&branch, &request)?;
            let key = crate::keys::load_or_create(&settings, &pool).await?;
            let master = crate::keys::MasterKey::new(settings.clone(), key);
            let plan = match crate::repos::find(&pool, &p.repo).await? {
                Some(repo) => {
                    let tmp = tempfile::tempdir()?;
                    let dir = crate::repos::ensure_cache(
                        &pool,
                        &master,
                        &settings.data_dir,
                        tmp.path(),
                        &repo,
                    )
                    .await?;
                    crate::build_batches::plan_for(&dir, &p, &branch, request.commit.as_deref())
                        .await?
                }
                None => None,
            };
            if let Some((plan, commit)) = plan {
                let b =
                    crate::build_batches::start(&pool, &p, &who, &request, &branch, commit, &plan)
                        .await?;
                eprintln!("started a batch of {} builds of {}", b.builds.len(), p.name);
                println!("{}", b.id);
                return Ok(());
            }
            let b = builds::start(&pool, &p, &who, request).await?;
            eprintln!("queued build #{} of {}", b.number, p.name);
            println!("{}", b.id);
        }
        ProjectCommand::Builds { name, json } => {
            let p = project(name).await?;
            let list = builds::list_builds(&pool, &p, 100).await?;
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

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Project(cmd) => project_command(cmd, settings).await,
        Command::Parameter(cmd) => {
            crate::params::cli::run("parameter", cmd, &Ctx::open(&settings).await?).await
        }
        Command::Secret(cmd) => {
            crate::params::cli::run("secret", cmd, &Ctx::open(&settings).await?).await
        }
        Command::Buildspec(BuildspecCommand::Check { file }) => buildspec_check(&file),
        Command::Build(args) if args.image.is_some() => {
            container_build_command(args, settings).await
        }
        Command::Build(args) => tokio::task::spawn_blocking(move || build_command(args)).await?,
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
