//! The HTTP transport shared by every domain: the router and its layers,
//! authentication (extractors, CSRF), the listeners.

pub mod auth;
pub mod dashboard;
pub mod listen;
pub mod openapi;
pub mod pages;
pub mod router;
pub mod simulator;

use crate::state::AppState;

/// Where git's smart HTTP is served (`/v1/repos/NAME`); its requests carry
/// no CSRF token (git authenticates every one).
pub const GIT_PREFIX: &str = "/v1/repos/";

/// The base URL for links shown in answer to this request.
pub fn base_url(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    state.settings.base_url_for(host)
}
