//! The daemon's error type: failures of the engine and of the crates it composes, each with a
//! coarse [`ErrorKind`] that the API turns into an HTTP status.

pub use berth_api_types::ErrorKind;

/// Every failure of the engine.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A failure reported by the image store, already classified.
    #[error("{message}")]
    Store { kind: ErrorKind, message: String },
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// A named thing (volume, container path) that does not exist; the message names it.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("background task failed: {0}")]
    Task(String),
}

impl DaemonError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DaemonError::Store { kind, .. } => *kind,
            DaemonError::NoSuchImage(_) | DaemonError::NotFound(_) => ErrorKind::NotFound,
            DaemonError::Conflict(_) => ErrorKind::Conflict,
            DaemonError::Invalid(_) => ErrorKind::Invalid,
            DaemonError::Io { .. } | DaemonError::Task(_) => ErrorKind::Internal,
        }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> DaemonError {
        DaemonError::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<DaemonError> for berth_api_types::ApiError {
    fn from(e: DaemonError) -> Self {
        berth_api_types::ApiError::new(e.kind(), e.to_string())
    }
}

impl From<tokio::task::JoinError> for DaemonError {
    fn from(e: tokio::task::JoinError) -> Self {
        DaemonError::Task(e.to_string())
    }
}

/// Confined filesystem errors keep their texts and kinds (a read-only mount stays a 403).
impl From<berth_rootfs::RootfsError> for DaemonError {
    fn from(e: berth_rootfs::RootfsError) -> Self {
        use berth_rootfs::RootfsError as R;
        match e {
            R::NotFound(m) => DaemonError::NotFound(m),
            R::Invalid(m) => DaemonError::Invalid(m),
            R::Op { what, source } => DaemonError::Io { what, source },
            other => DaemonError::Store {
                kind: other.kind(),
                message: other.to_string(),
            },
        }
    }
}

pub type Result<T, E = DaemonError> = std::result::Result<T, E>;
