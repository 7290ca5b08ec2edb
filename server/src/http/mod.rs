//! The HTTP transport shared by every domain: the router and its layers,
//! authentication (extractors, CSRF), the listeners.

pub mod auth;
pub mod listen;
pub mod pages;
pub mod router;
pub mod simulator;

use crate::state::AppState;

/// The base URL for links shown in answer to this request.
pub fn base_url(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    state.settings.base_url_for(host)
}
