//! Identity: user accounts and sessions' users, API tokens, SSH keys, git
//! credentials, and IAM (policies, groups, decisions, the audit log).
//! The first domain: it uses no other.

pub mod accounts;
pub mod api;
pub mod cli;
pub mod git_credentials;
pub mod iam;
pub mod pages;
pub mod policy;
pub mod resets;
pub mod ssh_keys;
pub mod tokens;
