//! The services' error type: a kind (berth-errors) and a message; berth-api alone turns it
//! into an HTTP answer.

pub use berth_errors::ErrorKind;

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

/// Result alias used by every service method.
pub type ApiResult<T> = Result<T, ApiError>;
