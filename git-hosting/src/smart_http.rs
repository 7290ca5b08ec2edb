//! The smart HTTP protocol (protocol v0 and v2), served by git's own
//! `upload-pack` and `receive-pack` in stateless-rpc mode.

use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::{Error, Result};

/// The two git services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Fetch and clone.
    UploadPack,
    /// Push.
    ReceivePack,
}

impl Service {
    /// Parses the `service` query value of `info/refs` or a URL's last segment.
    pub fn from_name(name: &str) -> Option<Service> {
        match name {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }

    fn subcommand(self) -> &'static str {
        match self {
            Service::UploadPack => "upload-pack",
            Service::ReceivePack => "receive-pack",
        }
    }

    pub fn advertisement_content_type(self) -> String {
        format!("application/x-{}-advertisement", self.name())
    }

    pub fn result_content_type(self) -> String {
        format!("application/x-{}-result", self.name())
    }
}

/// Only `version=N` entries of the client's `Git-Protocol` header are passed
/// on to git, so a client cannot inject anything else into its environment.
pub fn sanitize_git_protocol(header: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(':')
        .filter(|p| matches!(*p, "version=0" | "version=1" | "version=2"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(":"))
}

fn command(
    repo: &Path,
    service: Service,
    git_protocol: Option<&str>,
    env: &[(String, String)],
) -> Command {
    let mut cmd = base_command(repo, service, git_protocol, env);
    cmd.arg("--stateless-rpc");
    cmd
}

fn base_command(
    repo: &Path,
    service: Service,
    git_protocol: Option<&str>,
    env: &[(String, String)],
) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg(service.subcommand())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(p) = git_protocol {
        cmd.env("GIT_PROTOCOL", p);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The `info/refs` body: the service header pkt-line, a flush, then git's
/// ref (v0) or capability (v2) advertisement.
pub async fn advertise(
    repo: &Path,
    service: Service,
    git_protocol: Option<&str>,
) -> Result<Vec<u8>> {
    let output = command(repo, service, git_protocol, &[])
        .arg("--advertise-refs")
        .arg(repo)
        .stdin(Stdio::null())
        .output()
        .await?;
    if !output.status.success() {
        return Err(Error::Git(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    let mut body = pkt_line(&format!("# service={}\n", service.name()));
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&output.stdout);
    Ok(body)
}

/// Starts one stateless RPC exchange: the caller streams the request body
/// into the child's stdin and its stdout out as the response. `env` reaches
/// git and its hooks.
pub fn rpc(
    repo: &Path,
    service: Service,
    git_protocol: Option<&str>,
    env: &[(String, String)],
) -> Result<Child> {
    Ok(command(repo, service, git_protocol, env)
        .arg(repo)
        .spawn()?)
}

/// Starts a service for a stateful transport (SSH): git talks directly
/// to the client through stdin and stdout.
pub fn spawn(
    repo: &Path,
    service: Service,
    git_protocol: Option<&str>,
    env: &[(String, String)],
    stateless: bool,
) -> Result<Child> {
    let mut cmd = if stateless {
        command(repo, service, git_protocol, env)
    } else {
        base_command(repo, service, git_protocol, env)
    };
    Ok(cmd.arg(repo).spawn()?)
}

/// Encodes one pkt-line.
pub fn pkt_line(payload: &str) -> Vec<u8> {
    format!("{:04x}{payload}", payload.len() + 4).into_bytes()
}

/// Creates an empty bare repository at `path` (which must not exist).
pub async fn init_bare(path: &Path) -> Result<()> {
    let output = Command::new("git")
        .args(["init", "--quiet", "--bare", "--initial-branch=main"])
        .arg(path)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .await?;
    if !output.status.success() {
        return Err(Error::Git(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    // Served over HTTP, receive-pack must be allowed explicitly; filters
    // and reachable wants make partial clones (`--filter=blob:none`) work.
    for (key, value) in [
        ("http.receivepack", "true"),
        ("uploadpack.allowFilter", "true"),
        ("uploadpack.allowReachableSHA1InWant", "true"),
        ("receive.fsckObjects", "true"),
        // Every push arrives as one pack in quarantine, for the pre-receive
        // hook to store encrypted.
        ("receive.unpackLimit", "1"),
        ("gc.auto", "0"),
    ] {
        let output = Command::new("git")
            .arg("-C")
            .arg(path)
            .args(["config", key, value])
            .output()
            .await?;
        if !output.status.success() {
            return Err(Error::Git(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkt_lines_carry_their_length() {
        assert_eq!(
            pkt_line("# service=git-upload-pack\n"),
            b"001e# service=git-upload-pack\n"
        );
    }

    #[test]
    fn only_protocol_versions_pass() {
        assert_eq!(
            sanitize_git_protocol("version=2").as_deref(),
            Some("version=2")
        );
        assert_eq!(
            sanitize_git_protocol("version=2:evil=1").as_deref(),
            Some("version=2")
        );
        assert_eq!(sanitize_git_protocol("LD_PRELOAD=x"), None);
    }

    #[test]
    fn services_parse() {
        assert_eq!(
            Service::from_name("git-upload-pack"),
            Some(Service::UploadPack)
        );
        assert_eq!(
            Service::from_name("git-receive-pack"),
            Some(Service::ReceivePack)
        );
        assert_eq!(Service::from_name("git-shell"), None);
    }

    #[tokio::test]
    async fn a_new_repository_advertises_no_refs() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r");
        init_bare(&repo).await.unwrap();
        let body = advertise(&repo, Service::UploadPack, None).await.unwrap();
        assert!(body.starts_with(b"001e# service=git-upload-pack\n0000"));
        let v2 = advertise(&repo, Service::UploadPack, Some("version=2"))
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&v2).contains("version 2"));
    }
}
