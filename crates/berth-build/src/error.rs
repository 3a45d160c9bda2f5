//! The crate's single error type and its coarse kind.

pub use berth_errors::ErrorKind;

/// Every error berth-build returns. Step errors name the Dockerfile line (`dockerfile:3: ...`).
/// Cloneable (messages, not sources) so one failure can be reported to every stage waiting on it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// The Dockerfile does not parse or expand.
    #[error("{0}")]
    Dockerfile(#[from] berth_dockerfile::Error),
    /// A step failed; `message` says why.
    #[error("dockerfile:{line}: {message}")]
    Step {
        line: usize,
        kind: ErrorKind,
        message: String,
    },
    /// A RUN returned non-zero; dockerd's exact text (scripts grep it), no line prefix.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        line: usize,
        command: String,
        code: i32,
    },
    /// A path in a COPY/ADD source, or the context itself.
    #[error("{message}")]
    Context { path: String, message: String },
    /// The backend failed outside any step (commit, cache, image lookup).
    #[error("{message}")]
    Backend { kind: ErrorKind, message: String },
    /// Options of the build request are invalid.
    #[error("{0}")]
    Request(String),
}

impl BuildError {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BuildError::Dockerfile(e) => match e.kind() {
                berth_dockerfile::ErrorKind::NotFound => ErrorKind::NotFound,
                _ => ErrorKind::Invalid,
            },
            BuildError::Step { kind, .. } | BuildError::Backend { kind, .. } => *kind,
            BuildError::RunFailed { .. } => ErrorKind::Failed,
            BuildError::Context { .. } => ErrorKind::Invalid,
            BuildError::Request(_) => ErrorKind::Invalid,
        }
    }

    /// The Dockerfile line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            BuildError::Dockerfile(e) => e.line(),
            BuildError::Step { line, .. } | BuildError::RunFailed { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// A backend error of `kind`.
    pub fn backend(kind: ErrorKind, message: impl Into<String>) -> BuildError {
        BuildError::Backend {
            kind,
            message: message.into(),
        }
    }

    /// Attach a Dockerfile line to an error that has none.
    pub fn at_line(self, line: usize) -> BuildError {
        match self {
            BuildError::Backend { kind, message } => BuildError::Step {
                line,
                kind,
                message,
            },
            BuildError::Context { message, .. } => BuildError::Step {
                line,
                kind: ErrorKind::Invalid,
                message,
            },
            BuildError::Request(message) => BuildError::Step {
                line,
                kind: ErrorKind::Invalid,
                message,
            },
            BuildError::Dockerfile(e) if e.line().is_none() => BuildError::Step {
                line,
                kind: ErrorKind::Invalid,
                message: e.to_string(),
            },
            other => other,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;
