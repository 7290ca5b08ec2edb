//! `nubo`: the server and its command line.

mod accounts;
mod api;
mod app;
mod auth;
mod browse;
mod cli;
mod config;
mod db;
mod error;
mod events;
mod git_credentials;
mod git_http;
mod hook;
mod iam;
mod keys;
mod metrics;
mod policy;
mod rate_limit;
mod repos;
mod ssh_keys;
mod ssh_server;
mod tls;
mod tokens;
mod web;
mod webhooks;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn init_logging(settings: &config::Settings) {
    let filter = EnvFilter::try_new(&settings.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        config::LogFormat::Json => builder.json().flatten_event(true).init(),
        config::LogFormat::Text => builder.init(),
    }
}

fn main() -> std::process::ExitCode {
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
