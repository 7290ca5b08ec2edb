//! Settings: built-in defaults, overridden by a TOML file (`--config`), then by
//! `NUBO_*` environment variables, then by command-line flags. Flags win.
//!
//! The merge is a pure function so that precedence is tested without touching
//! the process environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

mod layer;

pub use layer::{ConfigError, Layer};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The effective settings of one `nubo` process.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where the database and all other state live.
    pub data_dir: PathBuf,
    /// Address of the plain HTTP listener.
    pub http: SocketAddr,
    /// Address of the HTTPS listener, if any.
    pub https: Option<SocketAddr>,
    /// Address of the SSH listener for git.
    pub ssh: SocketAddr,
    /// PEM certificate chain and key for HTTPS; without them a self-signed
    /// certificate is generated into the data dir.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The URL users reach Nubo at; `https://` makes session cookies `Secure`.
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `nubo=debug,tower_http=info`.
    pub log_level: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest git push accepted, in bytes.
    pub max_push_bytes: u64,
    /// First webhook retry delay; each further retry doubles it.
    pub webhook_retry_base_ms: u64,
    /// The master key file (default `<data_dir>/master.key`).
    pub master_key_file: Option<PathBuf>,
    /// Where plaintext working copies of repositories live (default: RAM
    /// under /dev/shm when present, else `<data_dir>/cache`).
    pub cache_dir: Option<PathBuf>,
    /// A session ends after this long without a request.
    pub session_idle_minutes: u64,
    /// A session ends this long after sign-in, however active.
    pub session_absolute_hours: u64,
    /// Failed sign-ins allowed per account within `login_window_seconds`.
    pub login_max_failures_per_account: u32,
    /// Failed sign-ins allowed per client address within the window.
    pub login_max_failures_per_address: u32,
    pub login_window_seconds: u64,
    /// The Docker Engine API socket for the container backend (Docker, or
    /// Podman's compatible service); unset: the container backend is off.
    pub container_socket: Option<PathBuf>,
    /// The default image of container workspaces.
    pub workspace_image: String,
    /// Limits of each container workspace.
    pub workspace_cpus: f64,
    pub workspace_memory_mb: u64,
    pub workspace_pids: i64,
    /// The container network mode (`bridge`: own namespace with outbound
    /// access; `none`: no network at all).
    pub workspace_network: String,
    /// Builds that run at once; more wait in the queue.
    pub build_concurrency: usize,
    /// A build that waits in the queue longer than this fails.
    pub build_queue_timeout_seconds: u64,
    /// Command output a build's log keeps; the rest is dropped with a note.
    pub build_log_cap_bytes: usize,
    /// The bearer token `/metrics` asks for; unset: `/metrics` is off.
    pub metrics_token: Option<String>,
    /// Networks (CIDR) webhooks may reach although they are loopback,
    /// private or link-local addresses; empty: public addresses only.
    pub webhook_allowed_networks: Vec<String>,
    /// How the `local` backend and image-less builds are confined:
    /// `bwrap` (bubblewrap) or `none` (administrators only).
    pub local_sandbox: String,
    /// The host uid (and gid) sandboxed processes run as.
    pub sandbox_uid: u32,
    /// A sandbox's network: `outbound` (user-mode NAT by slirp4netns, the
    /// host's loopback refused) or `none` (a loopback of its own only).
    pub sandbox_network: String,
    /// The listener of previews (a separate origin from Nubo's pages).
    pub preview_http: SocketAddr,
    /// The URL users reach the preview listener at (default: the host
    /// of the request and the listener's port).
    pub preview_url: Option<String>,
    /// A wildcard domain for previews: `<port>-<workspace>.<domain>`.
    pub preview_domain: Option<String>,
    /// A client must send its request head within this long.
    pub http_header_timeout_seconds: u64,
    /// A git request body (or SSH channel) idle this long is cut off.
    pub git_idle_timeout_seconds: u64,
    /// Git holding a repository's lock longer than this is stopped.
    pub repo_lock_max_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./nubo-data"),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            https: None,
            ssh: SocketAddr::from(([127, 0, 0, 1], 2222)),
            tls_cert: None,
            tls_key: None,
            public_url: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            max_body_bytes: 2 * 1024 * 1024,
            max_push_bytes: 1024 * 1024 * 1024,
            webhook_retry_base_ms: 5000,
            master_key_file: None,
            cache_dir: None,
            session_idle_minutes: 120,
            session_absolute_hours: 12,
            login_max_failures_per_account: 5,
            login_max_failures_per_address: 20,
            login_window_seconds: 300,
            container_socket: None,
            workspace_image: "localhost/nubo-workspace:latest".into(),
            workspace_cpus: 1.0,
            workspace_memory_mb: 2048,
            workspace_pids: 512,
            workspace_network: "bridge".into(),
            build_concurrency: 2,
            build_queue_timeout_seconds: 3600,
            build_log_cap_bytes: 64 << 20,
            metrics_token: None,
            webhook_allowed_networks: Vec::new(),
            local_sandbox: "bwrap".into(),
            sandbox_uid: 61000,
            sandbox_network: "outbound".into(),
            preview_http: SocketAddr::from(([127, 0, 0, 1], 8081)),
            preview_url: None,
            preview_domain: None,
            http_header_timeout_seconds: 30,
            git_idle_timeout_seconds: 120,
            repo_lock_max_seconds: 900,
        }
    }
}

/// Merges layers, lowest precedence first, over the defaults.
pub fn resolve(layers: &[Layer]) -> Result<Settings, ConfigError> {
    let mut s = Settings::default();
    for l in layers {
        macro_rules! take {
            ($($field:ident),*) => {$(
                if let Some(v) = &l.$field { s.$field = v.clone(); }
            )*};
        }
        take!(
            data_dir,
            http,
            ssh,
            log_format,
            log_level,
            max_body_bytes,
            max_push_bytes,
            webhook_retry_base_ms,
            session_idle_minutes,
            session_absolute_hours,
            login_max_failures_per_account,
            login_max_failures_per_address,
            login_window_seconds,
            workspace_image,
            workspace_cpus,
            workspace_memory_mb,
            workspace_pids,
            workspace_network,
            build_concurrency,
            build_queue_timeout_seconds,
            build_log_cap_bytes,
            webhook_allowed_networks,
            local_sandbox,
            sandbox_uid,
            sandbox_network,
            preview_http,
            http_header_timeout_seconds,
            git_idle_timeout_seconds,
            repo_lock_max_seconds
        );
        if l.metrics_token.is_some() {
            s.metrics_token = l.metrics_token.clone();
        }
        if l.preview_url.is_some() {
            s.preview_url = l.preview_url.clone();
        }
        if l.preview_domain.is_some() {
            s.preview_domain = l.preview_domain.clone();
        }
        if l.container_socket.is_some() {
            s.container_socket = l.container_socket.clone();
        }
        if l.public_url.is_some() {
            s.public_url = l.public_url.clone();
        }
        if l.https.is_some() {
            s.https = l.https;
        }
        if l.tls_cert.is_some() {
            s.tls_cert = l.tls_cert.clone();
        }
        if l.tls_key.is_some() {
            s.tls_key = l.tls_key.clone();
        }
        if l.master_key_file.is_some() {
            s.master_key_file = l.master_key_file.clone();
        }
        if l.cache_dir.is_some() {
            s.cache_dir = l.cache_dir.clone();
        }
    }
    if s.max_body_bytes < 1024 {
        return Err(ConfigError::Invalid(
            "max_body_bytes must be at least 1024".into(),
        ));
    }
    if s.workspace_cpus.is_nan()
        || s.workspace_cpus <= 0.0
        || s.workspace_memory_mb < 64
        || s.workspace_pids < 16
    {
        return Err(ConfigError::Invalid(
            "workspace_cpus must be positive, workspace_memory_mb at least 64 and workspace_pids at least 16".into(),
        ));
    }
    if s.session_idle_minutes == 0 || s.session_absolute_hours == 0 {
        return Err(ConfigError::Invalid(
            "session_idle_minutes and session_absolute_hours must be positive".into(),
        ));
    }
    if s.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
        return Err(ConfigError::Invalid(
            "metrics_token must be at least 16 characters".into(),
        ));
    }
    for net in &s.webhook_allowed_networks {
        if crate::netguard::Network::parse(net).is_none() {
            return Err(ConfigError::Invalid(format!(
                "webhook_allowed_networks: {net:?} is not a network such as 10.0.0.0/8 or fd00::/8"
            )));
        }
    }
    if !matches!(s.local_sandbox.as_str(), "bwrap" | "none") {
        return Err(ConfigError::Invalid(format!(
            "local_sandbox {:?} must be \"bwrap\" or \"none\"",
            s.local_sandbox
        )));
    }
    if !matches!(s.sandbox_network.as_str(), "outbound" | "none") {
        return Err(ConfigError::Invalid(format!(
            "sandbox_network {:?} must be \"outbound\" or \"none\"",
            s.sandbox_network
        )));
    }
    if s.sandbox_uid == 0 {
        return Err(ConfigError::Invalid(
            "sandbox_uid must not be 0 (root)".into(),
        ));
    }
    if s.http_header_timeout_seconds == 0
        || s.git_idle_timeout_seconds == 0
        || s.repo_lock_max_seconds == 0
    {
        return Err(ConfigError::Invalid(
            "http_header_timeout_seconds, git_idle_timeout_seconds and repo_lock_max_seconds must be positive".into(),
        ));
    }
    if let Some(url) = &s.preview_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "preview_url {url:?} must start with http:// or https://"
            )));
        }
    }
    if let Some(domain) = &s.preview_domain {
        let ok = !domain.is_empty()
            && domain.len() <= 200
            && domain
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !ok {
            return Err(ConfigError::Invalid(format!(
                "preview_domain {domain:?} must be a domain name such as preview.example.org"
            )));
        }
    }
    if let Some(url) = &s.public_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "public_url {url:?} must start with http:// or https://"
            )));
        }
    }
    Ok(s)
}

impl Settings {
    /// The directory of plaintext repository working copies.
    pub fn effective_cache_dir(&self) -> PathBuf {
        if let Some(dir) = &self.cache_dir {
            return dir.clone();
        }
        let shm = std::path::Path::new("/dev/shm");
        if shm.is_dir() {
            use sha2::Digest;
            let abs =
                std::fs::canonicalize(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone());
            let hash = hex::encode(sha2::Sha256::digest(abs.to_string_lossy().as_bytes()));
            return shm.join(format!("nubo-cache-{}", &hash[..16]));
        }
        self.data_dir.join("cache")
    }

    /// Whether cookies must carry the `Secure` attribute.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// The URL to show users for this server.
    pub fn base_url(&self) -> String {
        self.base_url_for(None)
    }

    /// The URL to show users for a request that arrived with `host`: the
    /// configured `public_url`, else the host the client used.
    pub fn base_url_for(&self, host: Option<&str>) -> String {
        let valid_host = host.filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
        match (&self.public_url, valid_host) {
            (Some(u), _) => u.trim_end_matches('/').to_string(),
            (None, Some(h)) => format!("http://{h}"),
            (None, None) => format!("http://{}", self.http),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_without_layers() {
        let s = resolve(&[]).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("./nubo-data"));
        assert_eq!(s.http.to_string(), "127.0.0.1:8080");
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let file = Layer::from_toml(
            "nubo.toml".as_ref(),
            "data_dir = \"/from/file\"\nhttp = \"127.0.0.1:9000\"\nlog_level = \"debug\"\n",
        )
        .unwrap();
        let env = Layer::from_env([("NUBO_DATA_DIR", "/from/env"), ("PATH", "/bin")]).unwrap();
        let flags = Layer {
            http: Some("127.0.0.1:7000".parse().unwrap()),
            ..Layer::default()
        };
        let s = resolve(&[file, env, flags]).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/from/env"));
        assert_eq!(s.http.to_string(), "127.0.0.1:7000");
        assert_eq!(s.log_level, "debug");
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let err = Layer::from_toml("n.toml".as_ref(), "data_dri = \"x\"").unwrap_err();
        assert!(err.to_string().contains("data_dri"), "{err}");
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let err = Layer::from_env([("NUBO_HTTP", "localhost")]).unwrap_err();
        assert!(err.to_string().contains("NUBO_HTTP"), "{err}");
        let err = Layer::from_env([("NUBO_LOG_FORMAT", "xml")]).unwrap_err();
        assert!(err.to_string().contains("text"), "{err}");
    }

    #[test]
    fn https_public_url_makes_cookies_secure() {
        let l = Layer {
            public_url: Some("https://nubo.example.org/".into()),
            ..Layer::default()
        };
        let s = resolve(&[l]).unwrap();
        assert!(s.secure_cookies());
        assert_eq!(s.base_url(), "https://nubo.example.org");
        assert!(!resolve(&[]).unwrap().secure_cookies());
        assert_eq!(s.base_url_for(Some("other:1")), "https://nubo.example.org");
        let plain = resolve(&[]).unwrap();
        assert_eq!(
            plain.base_url_for(Some("h.example:8080")),
            "http://h.example:8080"
        );
        assert_eq!(
            plain.base_url_for(Some("evil\"/x")),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn nonsense_limits_are_rejected() {
        let l = Layer {
            max_body_bytes: Some(10),
            ..Layer::default()
        };
        assert!(resolve(&[l]).is_err());
    }
}
