//! The crate's single error type and its coarse kind.

pub use berth_errors::ErrorKind;

/// Every error berth-dockerfile returns. Messages name the Dockerfile line where one exists.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// The Dockerfile has no bytes other than whitespace.
    #[error("the Dockerfile ({name}) cannot be empty")]
    Empty { name: String },
    /// The Dockerfile contains only comments, directives and blank lines.
    #[error("dockerfile:{line}: file with no instructions: add a FROM line")]
    NoInstructions { line: usize },
    /// A malformed instruction or directive (dockerd's words: `dockerfile parse error line N:`).
    #[error("dockerfile parse error line {line}: {message}")]
    Syntax { line: usize, message: String },
    /// An instruction name Docker does not know.
    #[error("dockerfile parse error line {line}: unknown instruction: {name}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownInstruction {
        line: usize,
        name: String,
        suggestion: Option<String>,
    },
    /// A heredoc whose terminator line never came.
    #[error("dockerfile parse error line {line}: unterminated heredoc {name:?}: end it with a line containing only {name}")]
    UnterminatedHeredoc { line: usize, name: String },
    /// Variable expansion of a word failed (bad substitution, unmatched quote, `${x:?}` ...).
    #[error("failed to process {word:?}: {message}")]
    Expand { word: String, message: String },
    /// A stage named by `--target`, `COPY --from` or index does not exist.
    #[error(
        "target stage {name:?} could not be found: check the FROM ... AS names in the Dockerfile"
    )]
    StageNotFound { name: String },
    /// A malformed `.dockerignore` pattern.
    #[error(".dockerignore: invalid pattern {pattern:?}: {message}")]
    IgnorePattern { pattern: String, message: String },
}

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::StageNotFound { .. } => ErrorKind::NotFound,
            _ => ErrorKind::Invalid,
        }
    }

    /// The 1-based Dockerfile line this error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::NoInstructions { line }
            | Error::Syntax { line, .. }
            | Error::UnknownInstruction { line, .. }
            | Error::UnterminatedHeredoc { line, .. } => Some(*line),
            _ => None,
        }
    }

    pub(crate) fn syntax(line: usize, message: impl Into<String>) -> Error {
        Error::Syntax {
            line,
            message: message.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
