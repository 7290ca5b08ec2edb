//! The one error type of the server crate and its HTTP form.
//!
//! Every API error is JSON of the shape `{"error": {"code", "message"}}` with
//! a fitting status. Messages tell the user what happened and what to do;
//! internal details are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Refused by IAM. `message` names the action and the deciding
    /// statement (for the API, git and administrators); `words` says the
    /// same for people who do not know IAM's action names.
    #[error("{message}")]
    Denied { message: String, words: String },
    #[error("{0}")]
    Csrf(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    /// Like `Unprocessable`, naming the input at fault (a form marks it).
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Something behind Nubo (a workspace's app) did not answer.
    #[error("{0}")]
    BadGateway(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The JSON error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `unauthorized`.
    pub code: String,
    /// What happened, for people.
    pub message: String,
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) | Error::Denied { .. } | Error::Csrf(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unprocessable(_) | Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) | Error::Denied { .. } => "forbidden",
            Error::Csrf(_) => "csrf_failed",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::Unprocessable(_) | Error::Invalid { .. } => "validation_failed",
            Error::BadGateway(_) => "bad_gateway",
            Error::Database(_) | Error::Internal(_) => "internal",
        }
    }

    /// A validation failure of the input `field`, in words.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }

    /// This error, if it is a validation failure, as one of `field`.
    pub fn on_field(self, field: &'static str) -> Error {
        match self {
            Error::Unprocessable(message) => Error::Invalid { field, message },
            other => other,
        }
    }

    /// The input at fault, when the error names one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The message safe to show to the client.
    pub fn public_message(&self) -> String {
        match self {
            Error::Database(_) | Error::Internal(_) => {
                "the server failed to handle this request; the details are in its log".into()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message: self.public_message(),
            },
        };
        (status, axum::Json(body)).into_response()
    }
}

impl From<axum::extract::rejection::JsonRejection> for Error {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as J;
        match rejection {
            J::JsonDataError(e) => {
                Error::Unprocessable(format!("invalid request body: {}", e.body_text()))
            }
            J::JsonSyntaxError(e) => {
                Error::BadRequest(format!("malformed JSON: {}", e.body_text()))
            }
            J::MissingJsonContentType(_) => Error::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ),
            J::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Error::PayloadTooLarge("request body is larger than this server accepts".into())
            }
            other => Error::BadRequest(other.body_text()),
        }
    }
}

/// `Json<T>` whose rejections use Nubo's error shape.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
