//! The crate's one error type. Texts are the ones the store and the daemon used before the
//! code moved here, so messages and HTTP statuses did not change.

use std::path::PathBuf;

use berth_errors::ErrorKind;

/// Every failure of a confined filesystem operation.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A root (or another host path) could not be opened or read.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A tar entry that would leave its root or is otherwise refused.
    #[error("layer {layer}: entry {entry:?}: {why}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        why: String,
    },
    #[error("layer {layer}: malformed tar stream: {source}")]
    Tar {
        layer: String,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {layer}: applying entry {entry:?} failed: {source}")]
    Apply {
        layer: String,
        entry: String,
        #[source]
        source: std::io::Error,
    },
    /// A path inside a root that does not exist; the message names it.
    #[error("{0}")]
    NotFound(String),
    /// A request that cannot be honoured (a path that resolves nowhere, a bad archive).
    #[error("{0}")]
    Invalid(String),
    /// Refused by policy (a write into a read-only mount).
    #[error("{0}")]
    Forbidden(String),
    /// An unexpected system error while doing `what`.
    #[error("{what}: {source}")]
    Op {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl RootfsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RootfsError::NotFound(_) => ErrorKind::NotFound,
            RootfsError::UnsafeEntry { .. } | RootfsError::Tar { .. } | RootfsError::Invalid(_) => {
                ErrorKind::Invalid
            }
            RootfsError::Forbidden(_) => ErrorKind::Forbidden,
            RootfsError::Io { .. } | RootfsError::Apply { .. } => ErrorKind::Unavailable,
            RootfsError::Op { .. } => ErrorKind::Internal,
        }
    }

    pub fn op(what: impl Into<String>, source: std::io::Error) -> RootfsError {
        RootfsError::Op {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T, E = RootfsError> = std::result::Result<T, E>;

/// chown's EINVAL means the owner has no id in this user namespace (a rootless daemon maps
/// only its user's ranges): say so rather than "Invalid argument". The daemon adds what to do.
pub(crate) fn unmapped_owner(
    uid: u32,
    gid: u32,
) -> impl FnOnce(rustix::io::Errno) -> std::io::Error {
    move |e| match e {
        rustix::io::Errno::INVAL => std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("owner {uid}:{gid} {UNMAPPED}"),
        ),
        e => e.into(),
    }
}

/// The words every unmapped-owner error carries (the daemon looks for them to add its hint).
pub const UNMAPPED: &str = "is not mapped in this user namespace";
