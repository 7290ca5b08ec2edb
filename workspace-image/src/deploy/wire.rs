//! The deployment agent's protocol with the server (AWS's host-command
//! protocol in JSON): register → poll → acknowledge → run → complete, one
//! command per lifecycle event. Both sides use these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where the protocol lives on the server.
pub const PREFIX: &str = "/api/v1/deploy/agent";

/// The error codes of a completion, as AWS's agent reports them.
pub mod code {
    pub const OK: i32 = 0;
    pub const SCRIPT_MISSING: i32 = 1;
    pub const SCRIPT_NOT_EXECUTABLE: i32 = 2;
    pub const SCRIPT_TIMED_OUT: i32 = 3;
    pub const SCRIPT_FAILED: i32 = 4;
    pub const UNKNOWN: i32 = 5;
    pub const OUTPUTS_LEFT_OPEN: i32 = 6;
    pub const AGENT_RESTARTED: i32 = 7;
}

/// `POST {PREFIX}/register`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Register {
    pub name: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub version: String,
}

/// `POST {PREFIX}/poll` (long: the server answers within about 20 s).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Poll {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PollAnswer {
    pub command: Option<HostCommand>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostCommand {
    pub id: String,
    /// The lifecycle event to run.
    pub event: String,
    pub deployment_id: String,
    pub application_name: String,
    pub group_name: String,
    pub group_id: String,
    /// SHA-256 (hex) of the bundle this deployment installs.
    pub bundle_sha256: String,
    /// The commit, when the revision is one.
    #[serde(default)]
    pub bundle_commit: Option<String>,
}

/// `POST {PREFIX}/commands/{id}/ack` and the bundle download,
/// `GET {PREFIX}/commands/{id}/bundle?name=NAME` (only while that
/// DownloadBundle command runs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ack {
    pub name: String,
}

/// `POST {PREFIX}/commands/{id}/complete`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Complete {
    pub name: String,
    /// `Succeeded` or `Failed`.
    pub status: String,
    pub error_code: i32,
    #[serde(default)]
    pub script_name: Option<String>,
    #[serde(default)]
    pub message: String,
    /// About the last 2 KiB of the event's script log.
    #[serde(default)]
    pub log: String,
}

/// How much of an event's log goes back with its completion.
pub const LOG_TAIL: usize = 2048;
