//! `nubo`: the server and its command line.

mod agent_client;
mod builds;
mod cgroup;
mod cli;
mod config;
mod ctx;
mod db;
mod deployments;
mod engine;
mod error;
mod events;
mod http;
mod identity;
mod keys;
mod metrics;
mod netguard;
mod params;
mod pipelines;
mod rate_limit;
mod repos;
mod safe_fs;
mod sandbox;
mod serve;
mod state;
mod tls;
mod workspaces;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_logging(settings: &config::Settings) {
    let filter = EnvFilter::try_new(&settings.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal: a file or a pipe gets plain text.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match settings.log_format {
        config::LogFormat::Json => builder.json().flatten_event(true).init(),
        config::LogFormat::Text => builder.init(),
    }
}

/// `nubo agent ...` (or the binary called as `nubo-agent`): the workspace
/// agent, which needs none of the server's settings.
fn agent_main(args: &[String]) -> std::process::ExitCode {
    let usage = "usage: nubo-agent serve --socket PATH --root DIR [--all-ports] [--relay PORT:SOCKET] | nubo-agent deploy --server URL (--token T | --token-file F) --root DIR [--tags k=v,...] [--name NAME] [--dest-root DIR] | nubo-agent credential get|store|erase";
    match args.first().map(String::as_str) {
        Some("deploy") => deploy_agent_main(&args[1..], usage),
        Some("credential") => {
            let op = args.get(1).map(String::as_str).unwrap_or("get");
            match nubo_agent::credential::helper(op) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("nubo-agent: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Some("serve") => {
            let mut socket = None;
            let mut root = None;
            let mut all_ports = false;
            let mut relay = None;
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--socket" => socket = it.next().map(std::path::PathBuf::from),
                    "--root" => root = it.next().map(std::path::PathBuf::from),
                    "--all-ports" => all_ports = true,
                    "--relay" => {
                        relay = it.next().and_then(|r| {
                            let (port, path) = r.split_once(':')?;
                            Some((port.parse().ok()?, std::path::PathBuf::from(path)))
                        });
                        if relay.is_none() {
                            eprintln!("nubo-agent: --relay takes PORT:SOCKET\n{usage}");
                            return std::process::ExitCode::from(2);
                        }
                    }
                    _ => {
                        eprintln!("nubo-agent: unknown argument {a:?}\n{usage}");
                        return std::process::ExitCode::from(2);
                    }
                }
            }
            let (Some(socket), Some(root)) = (socket, root) else {
                eprintln!("{usage}");
                return std::process::ExitCode::from(2);
            };
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr)
                .init();
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("nubo-agent: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            let options = nubo_agent::Options {
                socket,
                root,
                all_ports,
                relay,
            };
            match runtime.block_on(nubo_agent::serve(options)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("nubo-agent: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("{usage}");
            std::process::ExitCode::from(2)
        }
    }
}

/// `nubo-agent deploy …`: a deployment target, in the foreground.
fn deploy_agent_main(args: &[String], usage: &str) -> std::process::ExitCode {
    let mut server = None;
    let mut token = std::env::var("NUBO_AGENT_TOKEN").ok();
    let mut root = None;
    let mut name = None;
    let mut tags = std::collections::BTreeMap::new();
    let mut dest_root = std::path::PathBuf::from("/");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned();
        match a.as_str() {
            "--server" => server = value(),
            "--token" => token = value(),
            "--token-file" => match value().map(std::fs::read_to_string) {
                Some(Ok(t)) => token = Some(t.trim().to_string()),
                _ => {
                    eprintln!("nubo-agent: --token-file names a file it cannot read\n{usage}");
                    return std::process::ExitCode::from(2);
                }
            },
            "--root" => root = value().map(std::path::PathBuf::from),
            "--name" => name = value(),
            "--dest-root" => dest_root = value().map(Into::into).unwrap_or(dest_root),
            "--tags" => {
                for pair in value()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|p| !p.is_empty())
                {
                    let Some((k, v)) = pair.split_once('=') else {
                        eprintln!("nubo-agent: --tags takes k=v,k2=v2\n{usage}");
                        return std::process::ExitCode::from(2);
                    };
                    tags.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
            _ => {
                eprintln!("nubo-agent: unknown argument {a:?}\n{usage}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let (Some(server), Some(token), Some(root)) = (server, token, root) else {
        eprintln!(
            "nubo-agent deploy needs --server, --token (or NUBO_AGENT_TOKEN) and --root\n{usage}"
        );
        return std::process::ExitCode::from(2);
    };
    let name = name.unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "target".into())
    });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nubo-agent: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let root = std::path::absolute(&root).unwrap_or(root);
    let options = nubo_agent::deploy::Options {
        server,
        token,
        root,
        name,
        tags,
        dest_root,
    };
    match runtime.block_on(nubo_agent::deploy::run(options)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nubo-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let called_as_agent = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "nubo-agent");
    if called_as_agent {
        return agent_main(&args[1..]);
    }
    if args.get(1).map(String::as_str) == Some("agent") {
        return agent_main(&args[2..]);
    }
    let cli = cli::Cli::parse();
    let serve_args = match &cli.command {
        cli::Command::Serve(args) => Some(args),
        _ => None,
    };
    let settings = match cli::settings(&cli.global, serve_args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nubo: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&settings);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nubo: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli, settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nubo: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
