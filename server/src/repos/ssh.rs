//! Git over SSH (russh): public-key authentication as user `git` with the
//! keys users registered, and exactly two commands, `git-upload-pack` and
//! `git-receive-pack`, on `/v1/repos/{name}`. Shells, PTYs, port forwarding
//! and any other command are refused with a message.
//!
//! Close order matters to git clients: all of the child's output is copied,
//! the child is waited for, then exit-status, EOF and close are sent. The
//! client's EOF closes the child's stdin.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nubo_git::smart_http::{self, Service};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, Server as _, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet, Pty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::identity::accounts::User;
use crate::state::AppState;
use crate::{identity::ssh_keys, repos};

/// Loads the host key from the data dir, creating it on first start.
pub fn host_key(data_dir: &Path) -> Result<PrivateKey> {
    let path = data_dir.join("ssh_host_ed25519_key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::Internal(format!("cannot read {}: {e}", path.display())))?;
        return PrivateKey::from_openssh(text).map_err(|e| {
            Error::Internal(format!(
                "the SSH host key {} is not valid: {e}",
                path.display()
            ))
        });
    }
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::Internal(format!("cannot encode the SSH host key: {e}")))?;
    crate::tls::write_private(&path, text.as_bytes())?;
    tracing::info!(path = %path.display(), "generated the SSH host key");
    Ok(key)
}

/// Binds the SSH listener (before the state exists, so that the state knows
/// the bound port).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen for SSH on {addr}: {e} (choose another address with --ssh)")
    })
}

/// Serves SSH on `listener` in the background.
pub fn start(state: AppState, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let key = host_key(&state.settings.data_dir)?;
    let config = Arc::new(russh::server::Config {
        keys: vec![key],
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(300),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(3600)),
        max_auth_attempts: 10,
        nodelay: true,
        // AES-GCM first and ChaCha20 left out: clients pick by their own
        // order and OpenSSH puts ChaCha20 first, which is the slower of the
        // two here (AES has hardware support) and shows in clone throughput.
        preferred: russh::Preferred {
            cipher: std::borrow::Cow::Borrowed(&[
                russh::cipher::AES_256_GCM,
                russh::cipher::AES_128_GCM,
                russh::cipher::AES_256_CTR,
                russh::cipher::AES_128_CTR,
            ]),
            ..russh::Preferred::default()
        },
        ..Default::default()
    });
    let mut server = SshServer { state };
    tokio::spawn(async move {
        if let Err(e) = server.run_on_socket(config, &listener).await {
            tracing::error!(error = %e, "the SSH listener stopped");
        }
    });
    Ok(())
}

struct SshServer {
    state: AppState,
}

impl russh::server::Server for SshServer {
    type Handler = Connection;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Connection {
        Connection {
            state: self.state.clone(),
            peer,
            user: None,
            git_protocol: None,
            stdin: HashMap::new(),
        }
    }
}

struct Connection {
    state: AppState,
    peer: Option<SocketAddr>,
    user: Option<User>,
    git_protocol: Option<String>,
    stdin: HashMap<ChannelId, mpsc::Sender<Vec<u8>>>,
}

/// Parses `git-upload-pack '/v1/repos/NAME'` and the like.
pub fn parse_command(command: &str) -> Option<(Service, String)> {
    let (program, arg) = command.trim().split_once(' ')?;
    let service = Service::from_name(program)?;
    let arg = arg.trim();
    let path = arg
        .strip_prefix('\'')
        .and_then(|a| a.strip_suffix('\''))
        .unwrap_or(arg);
    let name = path
        .trim_start_matches('/')
        .strip_prefix("v1/repos/")?
        .trim_end_matches('/');
    nubo_git::repo_name::validate(name).ok()?;
    Some((service, name.to_string()))
}

/// Answers a request that will not be served: the message on stderr, a
/// failing exit status, then EOF and close.
fn refuse(channel: ChannelId, session: &mut Session, message: &str) -> Result<(), russh::Error> {
    session.channel_success(channel)?;
    session.extended_data(channel, 1, format!("{message}\n").into_bytes())?;
    session.exit_status_request(channel, 128)?;
    session.eof(channel)?;
    session.close(channel)?;
    Ok(())
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if user != "git" {
            return Ok(Auth::reject());
        }
        match ssh_keys::owner(&self.state.pool, key.public_key).await {
            Ok(Some(owner)) if !owner.disabled => {
                tracing::info!(user = %owner.name, peer = ?self.peer, "SSH sign-in");
                self.user = Some(owner);
                Ok(Auth::Accept)
            }
            _ => {
                tracing::info!(peer = ?self.peer, "SSH key refused");
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host: &str,
        _port: u32,
        _origin: &str,
        _origin_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single: bool,
        _protocol: &str,
        _cookie: &str,
        _screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "GIT_PROTOCOL" {
            self.git_protocol = smart_http::sanitize_git_protocol(value);
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let name = self
            .user
            .as_ref()
            .map(|u| u.name.as_str())
            .unwrap_or("there");
        refuse(
            channel,
            session,
            &format!("Hi {name}! You've authenticated, but Nubo serves git only: there is no shell access."),
        )
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(user) = self.user.clone() else {
            return refuse(channel, session, "not authenticated");
        };
        let command = String::from_utf8_lossy(data).into_owned();
        let Some((service, name)) = parse_command(&command) else {
            tracing::warn!(user = %user.name, "refused SSH command");
            return refuse(
                channel,
                session,
                "Nubo runs only `git-upload-pack` and `git-receive-pack` on /v1/repos/NAME; this command was refused.",
            );
        };
        let action = crate::repos::git_http::action(service);
        let repo = match repos::authorize(&self.state.pool, &name, &user, action).await {
            Ok(r) => r,
            Err(e) => return refuse(channel, session, &e.public_message()),
        };
        tracing::info!(user = %user.name, repo = %repo.name, service = service.name(), "git over SSH");
        session.channel_success(channel)?;
        let (tx, rx) = mpsc::channel(32);
        self.stdin.insert(channel, tx);
        let job = GitJob {
            state: self.state.clone(),
            handle: session.handle(),
            channel,
            repo,
            user,
            service,
            git_protocol: self.git_protocol.clone(),
        };
        tokio::spawn(job.run(rx));
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = self.stdin.get(&channel) {
            let _ = tx.send(data.to_vec()).await;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Dropping the sender ends the child's stdin.
        self.stdin.remove(&channel);
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.stdin.remove(&channel);
        Ok(())
    }
}

struct GitJob {
    state: AppState,
    handle: russh::server::Handle,
    channel: ChannelId,
    repo: repos::Repo,
    user: User,
    service: Service,
    git_protocol: Option<String>,
}

impl GitJob {
    async fn fail(&self, message: &str) {
        let _ = self
            .handle
            .extended_data(self.channel, 1, format!("{message}\n").into_bytes())
            .await;
        let _ = self.handle.exit_status_request(self.channel, 1).await;
        let _ = self.handle.eof(self.channel).await;
        let _ = self.handle.close(self.channel).await;
    }

    async fn run(self, mut input: mpsc::Receiver<Vec<u8>>) {
        let state = &self.state;
        let push = self.service == Service::ReceivePack;
        let (dir, guard) = match state.working_copy(&self.repo, push).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(repo = %self.repo.name, error = %e, "working copy unavailable");
                return self.fail("the server could not read this repository").await;
            }
        };
        let version_before = repos::cached_version(&dir);
        let env = crate::repos::git_http::hook_env(state, &self.repo, &self.user);
        let mut child = match smart_http::spawn(
            &dir,
            self.service,
            self.git_protocol.as_deref(),
            &env,
            false,
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot start git");
                return self.fail("the server could not start git").await;
            }
        };
        let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return self.fail("the server could not start git").await;
        };
        let limit = match self.service {
            Service::ReceivePack => state.settings.max_push_bytes,
            Service::UploadPack => u64::MAX,
        };
        // A client that sends nothing for git_idle_timeout_seconds is cut
        // off: it must not keep git (and a push's lock) waiting.
        let idle = Duration::from_secs(state.settings.git_idle_timeout_seconds);
        tokio::spawn(async move {
            let mut written = 0u64;
            while let Ok(Some(chunk)) = tokio::time::timeout(idle, input.recv()).await {
                written += chunk.len() as u64;
                if written > limit || stdin.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = stdin.shutdown().await;
        });
        let (handle, channel) = (self.handle.clone(), self.channel);
        let out = tokio::spawn(async move {
            let mut buf = vec![0u8; 128 * 1024];
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if handle.data(channel, buf[..n].to_vec()).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let (handle, channel) = (self.handle.clone(), self.channel);
        let err = tokio::spawn(async move {
            let mut buf = vec![0u8; 8 * 1024];
            loop {
                match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if handle
                            .extended_data(channel, 1, buf[..n].to_vec())
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        let output = async {
            let _ = out.await;
            let _ = err.await;
        };
        let hold = Duration::from_secs(state.settings.repo_lock_max_seconds);
        let code = crate::repos::git_http::wait_bounded(
            &mut child,
            output,
            guard.is_some().then_some(hold),
            &self.repo.name,
        )
        .await
        .unwrap_or(1);
        if guard.is_some() {
            crate::repos::pushes::publish_since(
                &state.pool,
                &state.events,
                &self.repo.id,
                &self.repo.name,
                version_before,
            )
            .await;
        }
        drop(guard);
        let _ = self
            .handle
            .exit_status_request(self.channel, code as u32)
            .await;
        let _ = self.handle.eof(self.channel).await;
        let _ = self.handle.close(self.channel).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_git_commands_on_repository_paths_parse() {
        assert_eq!(
            parse_command("git-upload-pack '/v1/repos/my-app'"),
            Some((Service::UploadPack, "my-app".into()))
        );
        assert_eq!(
            parse_command("git-receive-pack 'v1/repos/a.b'"),
            Some((Service::ReceivePack, "a.b".into()))
        );
        for bad in [
            "rm -rf /",
            "git-upload-pack '/v1/repos/../../etc'",
            "git-upload-pack '/etc/passwd'",
            "git-upload-archive '/v1/repos/a'",
            "git-upload-pack '/v1/repos/a'; rm -rf /",
            "sh -c 'git-upload-pack /v1/repos/a'",
            "",
        ] {
            assert_eq!(parse_command(bad), None, "{bad:?}");
        }
    }
}
