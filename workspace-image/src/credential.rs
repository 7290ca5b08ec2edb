//! The git credential of the workspace's user: a short-lived, revocable
//! credential the server hands the agent (and renews while the workspace
//! runs). It lives in the agent's memory only; git reaches it through the
//! credential helper `nubo-agent credential get`, which asks the agent over
//! its socket (`$NUBO_AGENT_SOCKET`). Nothing long-lived is stored in the
//! workspace.

use std::sync::Mutex;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::{ApiError, ApiResult, Shared};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    /// The URL prefix it is for, e.g. `http://127.0.0.1:8080/`.
    pub url: String,
    pub username: String,
    pub password: String,
    pub expires_at_ms: i64,
}

#[derive(Default)]
pub struct Store(Mutex<Option<Credential>>);

pub async fn put(State(agent): State<Shared>, Json(c): Json<Credential>) -> StatusCode {
    *agent.credential.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
    StatusCode::NO_CONTENT
}

pub async fn get(State(agent): State<Shared>) -> ApiResult<Json<Credential>> {
    agent
        .credential
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no git credential was handed to this workspace"))
}

/// Parses git's credential request (`key=value` lines).
pub fn parse_request(input: &str) -> std::collections::BTreeMap<String, String> {
    input
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Whether a credential for `url` answers git's request.
pub fn matches(url: &str, req: &std::collections::BTreeMap<String, String>) -> bool {
    let (Some(protocol), Some(host)) = (req.get("protocol"), req.get("host")) else {
        return false;
    };
    url.starts_with(&format!("{protocol}://{host}/"))
}

/// The credential helper: `nubo-agent credential get` (git's `store` and
/// `erase` are accepted and ignored: the server owns the credential).
pub fn helper(operation: &str) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    if operation != "get" {
        return Ok(());
    }
    let request = parse_request(&input);
    let socket = std::env::var("NUBO_AGENT_SOCKET")
        .map_err(|_| anyhow::anyhow!("NUBO_AGENT_SOCKET is not set"))?;
    let mut stream = std::os::unix::net::UnixStream::connect(&socket)?;
    stream.write_all(b"GET /credential HTTP/1.0\r\nHost: agent\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return Ok(());
    };
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Ok(());
    }
    let credential: Credential = serde_json::from_str(body)?;
    if matches(&credential.url, &request) {
        println!("username={}", credential.username);
        println!("password={}", credential.password);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn helper_answers_only_for_its_server() {
        let req = super::parse_request("protocol=http\nhost=127.0.0.1:8080\npath=v1/repos/x\n");
        assert!(super::matches("http://127.0.0.1:8080/", &req));
        assert!(!super::matches("http://127.0.0.1:9090/", &req));
        assert!(!super::matches("https://127.0.0.1:8080/", &req));
    }
}
