//! One layer of settings (a TOML file, the `NUBO_*` environment, flags)
//! and how each is read.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::LogFormat;

/// One layer of settings; `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub data_dir: Option<PathBuf>,
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub ssh: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub public_url: Option<String>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_push_bytes: Option<u64>,
    pub webhook_retry_base_ms: Option<u64>,
    pub master_key_file: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub session_idle_minutes: Option<u64>,
    pub session_absolute_hours: Option<u64>,
    pub login_max_failures_per_account: Option<u32>,
    pub login_max_failures_per_address: Option<u32>,
    pub login_window_seconds: Option<u64>,
    pub container_socket: Option<PathBuf>,
    pub workspace_image: Option<String>,
    pub workspace_cpus: Option<f64>,
    pub workspace_memory_mb: Option<u64>,
    pub workspace_pids: Option<i64>,
    pub workspace_network: Option<String>,
    pub build_concurrency: Option<usize>,
    pub build_queue_timeout_seconds: Option<u64>,
    pub build_log_cap_bytes: Option<usize>,
    pub metrics_token: Option<String>,
    pub webhook_allowed_networks: Option<Vec<String>>,
    pub local_sandbox: Option<String>,
    pub sandbox_uid: Option<u32>,
    pub sandbox_network: Option<String>,
    pub preview_http: Option<SocketAddr>,
    pub preview_url: Option<String>,
    pub preview_domain: Option<String>,
    pub http_header_timeout_seconds: Option<u64>,
    pub git_idle_timeout_seconds: Option<u64>,
    pub repo_lock_max_seconds: Option<u64>,
}

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?} is not valid: {message}")]
    Env {
        name: String,
        value: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Layer {
    /// Parses the TOML config file format (keys as in [`Settings`]).
    pub fn from_toml(path: &std::path::Path, text: &str) -> Result<Layer, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_string(),
        })
    }

    /// Reads `NUBO_<KEY>` variables (e.g. `NUBO_DATA_DIR`, `NUBO_HTTP`).
    pub fn from_env<I, K, V>(vars: I) -> Result<Layer, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut layer = Layer::default();
        for (name, value) in vars {
            let (name, value) = (name.as_ref(), value.as_ref());
            let Some(key) = name.strip_prefix("NUBO_") else {
                continue;
            };
            let bad = |message: String| ConfigError::Env {
                name: name.to_string(),
                value: value.to_string(),
                message,
            };
            fn num<T: std::str::FromStr>(v: &str) -> Result<T, String>
            where
                T::Err: std::fmt::Display,
            {
                v.parse::<T>().map_err(|e| e.to_string())
            }
            match key {
                "DATA_DIR" => layer.data_dir = Some(PathBuf::from(value)),
                "HTTP" => layer.http = Some(num(value).map_err(bad)?),
                "HTTPS" => layer.https = Some(num(value).map_err(bad)?),
                "SSH" => layer.ssh = Some(num(value).map_err(bad)?),
                "TLS_CERT" => layer.tls_cert = Some(PathBuf::from(value)),
                "TLS_KEY" => layer.tls_key = Some(PathBuf::from(value)),
                "MASTER_KEY_FILE" => layer.master_key_file = Some(PathBuf::from(value)),
                "CACHE_DIR" => layer.cache_dir = Some(PathBuf::from(value)),
                "PUBLIC_URL" => layer.public_url = Some(value.to_string()),
                "LOG_FORMAT" => {
                    layer.log_format = Some(match value {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        _ => return Err(bad("expected `text` or `json`".into())),
                    })
                }
                "LOG_LEVEL" => layer.log_level = Some(value.to_string()),
                "MAX_BODY_BYTES" => layer.max_body_bytes = Some(num(value).map_err(bad)?),
                "MAX_PUSH_BYTES" => layer.max_push_bytes = Some(num(value).map_err(bad)?),
                "WEBHOOK_RETRY_BASE_MS" => {
                    layer.webhook_retry_base_ms = Some(num(value).map_err(bad)?)
                }
                "SESSION_IDLE_MINUTES" => {
                    layer.session_idle_minutes = Some(num(value).map_err(bad)?)
                }
                "SESSION_ABSOLUTE_HOURS" => {
                    layer.session_absolute_hours = Some(num(value).map_err(bad)?)
                }
                "LOGIN_MAX_FAILURES_PER_ACCOUNT" => {
                    layer.login_max_failures_per_account = Some(num(value).map_err(bad)?)
                }
                "LOGIN_MAX_FAILURES_PER_ADDRESS" => {
                    layer.login_max_failures_per_address = Some(num(value).map_err(bad)?)
                }
                "LOGIN_WINDOW_SECONDS" => {
                    layer.login_window_seconds = Some(num(value).map_err(bad)?)
                }
                "CONTAINER_SOCKET" => layer.container_socket = Some(PathBuf::from(value)),
                "WORKSPACE_IMAGE" => layer.workspace_image = Some(value.to_string()),
                "WORKSPACE_CPUS" => layer.workspace_cpus = Some(num(value).map_err(bad)?),
                "WORKSPACE_MEMORY_MB" => layer.workspace_memory_mb = Some(num(value).map_err(bad)?),
                "WORKSPACE_PIDS" => layer.workspace_pids = Some(num(value).map_err(bad)?),
                "WORKSPACE_NETWORK" => layer.workspace_network = Some(value.to_string()),
                "BUILD_CONCURRENCY" => layer.build_concurrency = Some(num(value).map_err(bad)?),
                "BUILD_LOG_CAP_BYTES" => layer.build_log_cap_bytes = Some(num(value).map_err(bad)?),
                "BUILD_QUEUE_TIMEOUT_SECONDS" => {
                    layer.build_queue_timeout_seconds = Some(num(value).map_err(bad)?)
                }
                "METRICS_TOKEN" => layer.metrics_token = Some(value.to_string()),
                "WEBHOOK_ALLOWED_NETWORKS" => {
                    layer.webhook_allowed_networks = Some(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|v| !v.is_empty())
                            .map(str::to_string)
                            .collect(),
                    )
                }
                "LOCAL_SANDBOX" => layer.local_sandbox = Some(value.to_string()),
                "SANDBOX_UID" => layer.sandbox_uid = Some(num(value).map_err(bad)?),
                "SANDBOX_NETWORK" => layer.sandbox_network = Some(value.to_string()),
                "PREVIEW_HTTP" => layer.preview_http = Some(num(value).map_err(bad)?),
                "PREVIEW_URL" => layer.preview_url = Some(value.to_string()),
                "PREVIEW_DOMAIN" => layer.preview_domain = Some(value.to_string()),
                "HTTP_HEADER_TIMEOUT_SECONDS" => {
                    layer.http_header_timeout_seconds = Some(num(value).map_err(bad)?)
                }
                "GIT_IDLE_TIMEOUT_SECONDS" => {
                    layer.git_idle_timeout_seconds = Some(num(value).map_err(bad)?)
                }
                "REPO_LOCK_MAX_SECONDS" => {
                    layer.repo_lock_max_seconds = Some(num(value).map_err(bad)?)
                }
                // NUBO_CONFIG names the file itself; other NUBO_* names are
                // left for later features rather than rejected.
                _ => {}
            }
        }
        Ok(layer)
    }
}
