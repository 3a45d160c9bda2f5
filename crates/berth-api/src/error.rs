//! The API's error type and the one place that turns error kinds into HTTP status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Coarse kind of a failure. Services map their own errors onto these; only this module knows
/// the HTTP codes (as moby's `httpstatus` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 404: the named thing does not exist.
    NotFound,
    /// 409: the request conflicts with the current state (in use, name taken).
    Conflict,
    /// 400: the request itself is malformed or has bad parameters.
    Invalid,
    /// 401: credentials were missing or refused (registry login).
    Unauthorized,
    /// 403: the operation is refused by policy.
    Forbidden,
    /// 501: the endpoint or mode exists in Docker but not (yet) in berth.
    NotImplemented,
    /// 503: a dependency (registry, store) is temporarily unavailable.
    Unavailable,
    /// 500: anything else.
    Internal,
}

impl ErrorKind {
    /// The HTTP status for this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error returned by a service, rendered as `{"message": "..."}` like moby.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, m)
    }
    pub fn conflict(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Conflict, m)
    }
    pub fn invalid(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Invalid, m)
    }
    pub fn not_implemented(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotImplemented, m)
    }
    pub fn internal(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Internal, m)
    }
    pub fn unavailable(m: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Unavailable, m)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), message = %self.message, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), message = %self.message, "request rejected");
        }
        (status, Json(serde_json::json!({ "message": self.message }))).into_response()
    }
}

/// Result alias used by every service method.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_moby_codes() {
        assert_eq!(ErrorKind::NotFound.status(), 404);
        assert_eq!(ErrorKind::Conflict.status(), 409);
        assert_eq!(ErrorKind::Invalid.status(), 400);
        assert_eq!(ErrorKind::Internal.status(), 500);
        assert_eq!(ErrorKind::Unavailable.status(), 503);
        assert_eq!(ErrorKind::NotImplemented.status(), 501);
    }
}
