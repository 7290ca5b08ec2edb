//! Git hosting for Nubo.
//!
//! Git's wire protocol is served by git itself (`git upload-pack` and
//! `git receive-pack` in `--stateless-rpc` mode): access is decided by the
//! server *before* anything here is called. This crate knows repositories
//! and the protocol, not users.

pub mod browse;
pub mod crypto;
pub mod repo_name;
pub mod smart_http;
pub mod store;

/// Errors of git hosting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidName(String),
    #[error("git failed: {0}")]
    Git(String),
    #[error("{0}")]
    Crypto(String),
    #[error("{0}")]
    NotFound(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
