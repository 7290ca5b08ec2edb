//! Nubo's pages, rendered on the server with Leptos (SSR only: there is no
//! wasm target), and the static assets embedded into the binary.
//!
//! This crate is pure presentation: every function takes plain view models and
//! returns a complete HTML document. It must not depend on the server crate,
//! the database or the network. All text is escaped by Leptos.

mod assets;
pub mod batches;
pub mod builds;
pub mod deployments;
mod diff;
mod forms;
pub mod icons;
pub mod identity;
mod layout;
pub mod pages;
pub mod params;
pub mod pipeline_events;
pub mod pipelines;
pub mod repos;
pub mod users;
pub mod workspaces;

pub use assets::{asset, asset_gzip, asset_url, Asset, DIGEST as ASSETS_DIGEST};
pub use batches::{batch_page, BatchChildRow, BatchRow};
pub use builds::{
    build_page, project_page, projects_page, BatchLink, BuildRow, HistoryItem, PhaseRow,
    ProjectRow, ReportRow,
};
pub use forms::{textarea_text, FormEcho};
pub use workspaces::{workspace_ide_page, workspaces_page, WorkspaceRow};

/// The signed-in user, as pages show them.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub admin: bool,
    pub must_change_password: bool,
}

/// A one-shot message shown at the top of a page.
#[derive(Debug, Clone)]
pub enum Flash {
    Ok(String),
    Error(String),
}

/// Entries of the main navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Repositories,
    Workspaces,
    /// Build projects and their builds (`/projects`, `/builds/…`).
    Builds,
    /// Pipelines and their executions (`/pipelines/…`).
    Pipelines,
    Deployments,
    Account,
    Tokens,
    GitCredentials,
    Admin,
    Audit,
    Simulator,
    Stores,
    None,
}

/// What every page of the signed-in shell needs.
#[derive(Debug, Clone)]
pub struct PageContext {
    pub title: String,
    pub nav: Nav,
    pub viewer: Viewer,
    /// The session's CSRF token, put into every form.
    pub csrf: String,
    pub flash: Option<Flash>,
}
