//! The container backend: workspaces as containers through the Docker
//! Engine API (bollard), run here against Podman's Docker-compatible socket.

use crate::error::{Error, Result};
use crate::workspaces::{Env, Workspace};

/// Where the agent binary is bind-mounted (read-only) in every container.
pub const AGENT_PATH: &str = "/opt/nubo/bin/nubo-agent";
/// The loopback port in a container where the agent relays git to the server.
pub const GIT_RELAY_PORT: u16 = 7999;

pub async fn available(_settings: &crate::config::Settings) -> Result<()> {
    Err(Error::Unprocessable(
        "the container backend is not configured on this server".into(),
    ))
}

pub async fn start(_env: &Env, _ws: &Workspace) -> Result<String> {
    Err(Error::Unprocessable(
        "the container backend is not configured on this server".into(),
    ))
}

pub async fn stop(_env: &Env, _ws: &Workspace) -> Result<()> {
    Ok(())
}

pub async fn remove(_env: &Env, _ws: &Workspace) -> Result<()> {
    Ok(())
}
