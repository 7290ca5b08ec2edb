//! What every domain's pages share: the page context (viewer, CSRF token,
//! the one-shot flash message kept in the session), errors as pages, and
//! the static assets.

use axum::extract::Path;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use nubo_frontend::pages;
use nubo_frontend::{Flash, Nav, PageContext, Viewer};
use tower_sessions::Session;

use crate::error::Error;
use crate::http::auth::PageUser;

const SESSION_FLASH: &str = "flash";

tokio::task_local! {
    /// Whether the signed-in viewer of the page being made is an
    /// administrator (set by [`PageUser`]; false until then), so a refusal
    /// can say IAM's action names to administrators only.
    static VIEWER_IS_ADMIN: std::cell::Cell<bool>;
}

/// Middleware around every request: the scope [`VIEWER_IS_ADMIN`] lives in.
pub async fn viewer_scope(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    VIEWER_IS_ADMIN
        .scope(std::cell::Cell::new(false), next.run(request))
        .await
}

/// Called by [`PageUser`] once it knows who is asking.
pub fn note_viewer(admin: bool) {
    let _ = VIEWER_IS_ADMIN.try_with(|v| v.set(admin));
}

/// What a page says of an error: an IAM refusal in words, with the action
/// and deciding statement for administrators.
pub fn refusal_text(error: &Error) -> String {
    match error {
        Error::Denied { message, words } => {
            let admin = VIEWER_IS_ADMIN.try_with(|v| v.get()).unwrap_or(false);
            if admin {
                format!("{words} (IAM: {message})")
            } else {
                words.clone()
            }
        }
        other => other.public_message(),
    }
}

/// Renders an error as a full page with the error's status.
pub fn error_page(error: &Error) -> Response {
    let status = error.status();
    if status.is_server_error() {
        tracing::error!(error = %error, "page failed");
    }
    let title = status.canonical_reason().unwrap_or("Error");
    (status, Html(pages::message(title, &refusal_text(error)))).into_response()
}

pub struct PageError(Error);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(&self.0)
    }
}

pub type PageResult = Result<Response, PageError>;

pub async fn set_flash(session: &Session, flash: Flash) {
    let (kind, text) = match flash {
        Flash::Ok(t) => ("ok", t),
        Flash::Error(t) => ("error", t),
    };
    if let Err(e) = session.insert(SESSION_FLASH, (kind, text)).await {
        tracing::warn!(error = %e, "could not store flash message");
    }
}

pub async fn take_flash(session: &Session) -> Option<Flash> {
    let (kind, text): (String, String) = session.remove(SESSION_FLASH).await.ok().flatten()?;
    Some(if kind == "ok" {
        Flash::Ok(text)
    } else {
        Flash::Error(text)
    })
}

pub async fn context(user: &PageUser, title: &str, nav: Nav) -> PageContext {
    PageContext {
        title: title.to_string(),
        nav,
        viewer: Viewer {
            name: user.user.name.clone(),
            admin: user.user.admin,
            must_change_password: user.user.must_change_password,
        },
        csrf: user.csrf.clone(),
        flash: take_flash(&user.session).await,
    }
}

/// A message as a sentence: a capital first letter and a full stop.
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

/// Refuses anyone but an administrator; `what` says what they may do
/// ("see the audit log"), for the refusal.
pub fn require_admin(user: &PageUser, what: &str) -> Result<(), PageError> {
    if user.user.admin {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("Only administrators can {what}.")).into())
    }
}

/// `/assets/{path}`: the stylesheet and the bundled islands.
/// `/assets/{path}`: the stylesheet, icon and bundled islands; gzip to
/// browsers that take it (precompressed at build time); kept by browsers
/// for a year when asked for with this build's digest (`?v=`, as pages
/// link them), five minutes otherwise.
pub async fn asset(
    Path(path): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> Response {
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.trim().split(';').next() == Some("gzip"))
        });
    let current = query.as_deref() == Some(&format!("v={}", nubo_frontend::ASSETS_DIGEST));
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let compressed = if gzip_ok {
        nubo_frontend::asset_gzip(&path)
    } else {
        None
    };
    let gzipped = compressed.is_some();
    match compressed.or_else(|| nubo_frontend::asset(&path)) {
        Some(a) => {
            let mut response = (
                [
                    (header::CONTENT_TYPE, a.content_type),
                    (header::CACHE_CONTROL, cache),
                    (header::VARY, "accept-encoding"),
                ],
                a.bytes,
            )
                .into_response();
            if gzipped {
                response.headers_mut().insert(
                    header::CONTENT_ENCODING,
                    axum::http::HeaderValue::from_static("gzip"),
                );
            }
            response
        }
        None => error_page(&Error::NotFound(format!("no asset {path:?}"))),
    }
}

/// What a refused form comes back with: its fields as sent, and `message`
/// (capitalised) at `field`, or above the form.
pub fn refused_form(
    form: &impl serde::Serialize,
    field: Option<&str>,
    message: &str,
) -> nubo_frontend::FormEcho {
    nubo_frontend::FormEcho {
        values: form_values(form),
        field: field.map(str::to_string),
        error: Some(capitalise(message)),
    }
}

/// A form's comma-separated list (branches, globs), trimmed, empty items
/// dropped.
pub fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// A form's fields by name, to fill it in again.
pub fn form_values(form: &impl serde::Serialize) -> std::collections::BTreeMap<String, String> {
    serde_json::to_value(form)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            o.into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial() -> Error {
        Error::Denied {
            message: "bob is not allowed to perform codecommit:DeleteRepository on app: no policy allows it".into(),
            words: "You do not have permission to delete the repository app.".into(),
        }
    }

    #[tokio::test]
    async fn refusals_name_the_action_to_administrators_only() {
        let ordinary = VIEWER_IS_ADMIN
            .scope(std::cell::Cell::new(false), async {
                note_viewer(false);
                refusal_text(&denial())
            })
            .await;
        assert_eq!(
            ordinary,
            "You do not have permission to delete the repository app."
        );
        let admin = VIEWER_IS_ADMIN
            .scope(std::cell::Cell::new(false), async {
                note_viewer(true);
                refusal_text(&denial())
            })
            .await;
        assert!(
            admin.starts_with("You do not have permission to delete the repository app. (IAM: ")
        );
        assert!(admin.contains("codecommit:DeleteRepository"));
        // Outside a page (no viewer known), nothing more than the words.
        assert_eq!(
            refusal_text(&denial()),
            "You do not have permission to delete the repository app."
        );
    }
}
