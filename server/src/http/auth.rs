//! Who is asking: API tokens (`Authorization: Bearer`), browser sessions,
//! and the CSRF guard for cookie-authenticated writes.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::RngCore;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::db::now_ms;
use crate::error::Error;
use crate::identity::accounts::{self, User};
use crate::identity::tokens;
use crate::state::AppState;

/// Session keys.
pub const SESSION_USER: &str = "uid";
pub const SESSION_LOGIN_AT: &str = "login_at";
pub const SESSION_CSRF: &str = "csrf";
/// Form field and header that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the current request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Token,
    Session,
}

/// The authenticated user of an API request (token or session).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub via: Via,
}

impl CurrentUser {
    /// Fails with 403 unless the user is an administrator.
    pub fn require_admin(&self) -> Result<(), Error> {
        if self.user.admin {
            Ok(())
        } else {
            Err(Error::Forbidden("only administrators may do this".into()))
        }
    }
}

fn bearer(parts: &Parts) -> Option<Result<&str, Error>> {
    let value = parts.headers.get(header::AUTHORIZATION)?;
    let malformed =
        || Error::Unauthorized("the Authorization header must be `Bearer <token>`".into());
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(malformed),
    )
}

/// The user of a live session, if any. Ends sessions that are past their
/// absolute lifetime or whose user was disabled or deleted.
pub async fn session_user(session: &Session, state: &AppState) -> Result<Option<User>, Error> {
    let internal =
        |e: tower_sessions::session::Error| Error::Internal(format!("session store: {e}"));
    let Some(user_id) = session
        .get::<String>(SESSION_USER)
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let login_at = session
        .get::<i64>(SESSION_LOGIN_AT)
        .await
        .map_err(internal)?
        .unwrap_or(0);
    let max_age_ms = state.settings.session_absolute_hours as i64 * 3_600_000;
    let user = if now_ms() - login_at > max_age_ms {
        None
    } else {
        accounts::find_by_id(&state.pool, &user_id).await?
    };
    match user {
        // A password reset ends the sessions that began before it.
        Some(user) if !user.disabled && login_at >= user.sessions_after => Ok(Some(user)),
        _ => {
            session.flush().await.map_err(internal)?;
            Ok(None)
        }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        if let Some(token) = bearer(parts) {
            let user = tokens::authenticate(&state.pool, token?)
                .await?
                .ok_or_else(|| {
                    Error::Unauthorized("the API token is invalid or has been revoked".into())
                })?;
            if user.disabled {
                return Err(Error::Forbidden(
                    "this account is disabled; ask an administrator".into(),
                ));
            }
            return Ok(CurrentUser {
                user,
                via: Via::Token,
            });
        }
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, msg)| Error::Internal(msg.to_string()))?;
        match session_user(&session, state).await? {
            Some(user) => Ok(CurrentUser {
                user,
                via: Via::Session,
            }),
            None => Err(Error::Unauthorized(
                "sign in, or send `Authorization: Bearer <token>` with an API token".into(),
            )),
        }
    }
}

/// The signed-in user of a page request, with the session's CSRF token.
/// Without a session it redirects to the sign-in page.
pub struct PageUser {
    pub user: User,
    pub csrf: String,
    pub session: Session,
}

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|e| e.into_response())?;
        let user = session_user(&session, state)
            .await
            .map_err(|e| crate::http::pages::error_page(&e))?;
        let Some(user) = user else {
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let target = if path == "/" {
                "/login".to_string()
            } else {
                format!("/login?next={}", urlencode(path))
            };
            return Err(Redirect::to(&target).into_response());
        };
        let csrf = csrf_token(&session)
            .await
            .map_err(|e| crate::http::pages::error_page(&e))?;
        crate::http::pages::note_viewer(user.admin);
        Ok(PageUser {
            user,
            csrf,
            session,
        })
    }
}

/// Percent-encodes all but unreserved characters and `/` (a path, or a
/// path as a query value).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> Result<String, Error> {
    let internal =
        |e: tower_sessions::session::Error| Error::Internal(format!("session store: {e}"));
    if let Some(token) = session
        .get::<String>(SESSION_CSRF)
        .await
        .map_err(internal)?
    {
        return Ok(token);
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    session
        .insert(SESSION_CSRF, &token)
        .await
        .map_err(internal)?;
    Ok(token)
}

/// Whether `provided` matches `expected`, in constant time.
pub fn secret_matches(expected: &str, provided: &str) -> bool {
    !expected.is_empty() && expected.as_bytes().ct_eq(provided.as_bytes()).into()
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware: a state-changing request that relies on the session cookie
/// must carry the session's CSRF token (the `x-csrf-token` header, or the
/// `csrf_token` field of a URL-encoded form). Requests with a bearer token
/// carry no ambient authority and are exempt.
pub async fn csrf_guard(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    // Only the API takes bearer tokens; pages always authenticate by cookie.
    let has_bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
    // Git traffic authenticates with HTTP Basic only, never with the cookie.
    let git = request.uri().path().starts_with(crate::http::GIT_PREFIX);
    if is_safe(request.method()) || (api && has_bearer) || git {
        return next.run(request).await;
    }
    let expected = match session.get::<String>(SESSION_CSRF).await {
        Ok(v) => v,
        Err(e) => return Error::Internal(format!("session store: {e}")).into_response(),
    };
    let Some(expected) = expected else {
        // No token yet. A signed-in session must still prove the request
        // is its own (a cross-site page could otherwise write through the
        // API with the cookie alone right after sign-in). Without a user an
        // API request falls through to a 401; a form post (sign-in
        // included) cannot be genuine without a rendered page.
        let signed_in = matches!(session.get::<String>(SESSION_USER).await, Ok(Some(_)));
        if api && !signed_in {
            return next.run(request).await;
        }
        return csrf_failure(api);
    };
    if let Some(provided) = request.headers().get(CSRF_HEADER) {
        let ok = provided
            .to_str()
            .is_ok_and(|p| secret_matches(&expected, p));
        return if ok {
            next.run(request).await
        } else {
            csrf_failure(api)
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return csrf_failure(api);
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, state.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return Error::PayloadTooLarge("request body is larger than this server accepts".into())
                .into_response()
        }
    };
    let provided = form_urlencoded_field(&bytes, CSRF_FIELD);
    if !provided.is_some_and(|p| secret_matches(&expected, &p)) {
        return csrf_failure(api);
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

fn csrf_failure(api: bool) -> Response {
    let message = "the request was refused because its CSRF token is missing or wrong; reload the page and try again";
    if api {
        Error::Csrf(message.into()).into_response()
    } else {
        (
            StatusCode::FORBIDDEN,
            axum::response::Html(nubo_frontend::pages::message("Request refused", message)),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_compare_exactly() {
        assert!(secret_matches("abc", "abc"));
        assert!(!secret_matches("abc", "abd"));
        assert!(!secret_matches("abc", "ab"));
        assert!(!secret_matches("", ""));
    }

    #[test]
    fn csrf_field_is_read_from_forms() {
        assert_eq!(
            form_urlencoded_field(b"a=1&csrf_token=x%2By", "csrf_token").as_deref(),
            Some("x+y")
        );
        assert_eq!(form_urlencoded_field(b"a=1", "csrf_token"), None);
        assert_eq!(form_urlencoded_field(b"\xff\xfe", "csrf_token"), None);
    }

    #[test]
    fn next_paths_are_encoded() {
        assert_eq!(urlencode("/a b?x=1&y"), "/a%20b%3Fx%3D1%26y");
    }
}
