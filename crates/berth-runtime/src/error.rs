//! The crate's one error type and its coarse kinds (the API maps kinds to HTTP codes).

use std::path::PathBuf;

pub use berth_errors::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid container config: {0}")]
    InvalidConfig(String),
    #[error("unable to find user {user}: no matching entries in passwd file")]
    UserNotFound { user: String },
    #[error("unable to find group {group}: no matching entries in group file")]
    GroupNotFound { group: String },
    #[error("invalid seccomp profile: {0}")]
    InvalidSeccomp(String),
    /// Invalid input, already worded for the user (Docker's text where it has one).
    #[error("{0}")]
    Invalid(String),
    /// The container's command could not be started (exit code 126 or 127, Docker's text).
    #[error("{message}")]
    Exec { message: String, exit_code: i32 },
    #[error("container {id} is not running")]
    NotRunning { id: String },
    #[error("no such container shim in {dir}: {source}")]
    ShimGone {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("shim protocol error with {dir}: {message}")]
    Protocol { dir: PathBuf, message: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A failure reported by the shim, already worded for the user.
    #[error("{0}")]
    Shim(String),
    #[error("runtime error for container {id}: {message}")]
    Runtime { id: String, message: String },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidConfig(_)
            | Error::UserNotFound { .. }
            | Error::GroupNotFound { .. }
            | Error::InvalidSeccomp(_)
            | Error::Invalid(_) => ErrorKind::Invalid,
            Error::Exec { .. } => ErrorKind::Invalid,
            Error::NotRunning { .. } => ErrorKind::Conflict,
            Error::ShimGone { .. } => ErrorKind::NotFound,
            Error::Protocol { .. } => ErrorKind::Unavailable,
            Error::Io { .. } | Error::Runtime { .. } | Error::Shim(_) => ErrorKind::Internal,
        }
    }

    /// The exit code `docker run` reports for this error: 126/127 for exec failures, else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec { exit_code, .. } => *exit_code,
            _ => 125,
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
