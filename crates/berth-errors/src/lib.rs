//! berth-errors: the one coarse classification of failures shared by every crate. Each crate
//! keeps its own `thiserror` enum with the details (paths, ids, sources) and answers `kind()`
//! with one of these; only the API layer turns a kind into an HTTP status and only the CLI into
//! an exit code, so a kind passes from store to network to daemon to API without translation.

/// What sort of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named thing (image, container, network, file, stage) does not exist. HTTP 404.
    NotFound,
    /// The request conflicts with the current state (in use, name taken, running). HTTP 409.
    Conflict,
    /// The input is malformed or asks for something impossible. HTTP 400.
    Invalid,
    /// Credentials were missing or refused (a registry). HTTP 401.
    Unauthorized,
    /// The operation is refused by policy (a read-only mount). HTTP 403.
    Forbidden,
    /// Docker has it, berth does not (yet). HTTP 501.
    NotImplemented,
    /// Work the user asked for ran and failed (a build's RUN step exited non-zero).
    Failed,
    /// A dependency (registry, runtime, store) is unreachable or failed transiently. HTTP 503.
    Unavailable,
    /// A bug or an unexpected system error. HTTP 500.
    Internal,
}

impl ErrorKind {
    /// Lowercase words for messages and logs ("not found", "conflict", …).
    pub fn describe(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotImplemented => "not implemented",
            ErrorKind::Failed => "failed",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn kinds_describe_themselves() {
        assert_eq!(ErrorKind::NotFound.to_string(), "not found");
        assert_eq!(ErrorKind::NotImplemented.describe(), "not implemented");
    }
}
