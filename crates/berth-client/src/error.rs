//! The client's error type and its coarse kinds.

pub use berth_errors::ErrorKind;

/// Errors talking to the engine API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Could not open a connection to the daemon.
    #[error("cannot connect to the berth daemon at {host}: {source}. Is the daemon running?")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// An `ssh://` connection failed; `why` names how (unreachable, auth, no berth there).
    #[error("error during connect: {host}: {why}")]
    Ssh { host: String, why: String },
    /// The host string could not be parsed.
    #[error("invalid host {host:?}: {why} (use unix:///path/to.sock, tcp://host:port or ssh://[user@]host[:port])")]
    InvalidHost { host: String, why: String },
    /// HTTP protocol failure.
    #[error("http request {method} {path} failed: {source}")]
    Http {
        method: String,
        path: String,
        #[source]
        source: hyper::Error,
    },
    /// The daemon answered with an error status; `message` is its JSON `message`.
    #[error("{message}")]
    Api { status: u16, message: String },
    /// A response body could not be decoded.
    #[error("cannot decode response of {path}: {source}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The daemon refused to upgrade an attach/exec connection.
    #[error("{path}: daemon did not upgrade the connection (status {status})")]
    NoUpgrade { path: String, status: u16 },
    /// The daemon's API is older than this client speaks.
    #[error("the daemon at {host} speaks API {version}, older than berth's oldest ({min}): upgrade the engine there, or use a client of its age", min = crate::transport::MIN_API_VERSION)]
    ApiVersion { host: String, version: String },
    /// TLS settings that cannot be used (missing or bad PEM files, a bad server name).
    #[error("tls: cannot use {what}: {why}")]
    Tls { what: String, why: String },
    /// Local I/O while streaming.
    #[error("i/o error while {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Connect { .. } | Error::Ssh { .. } => ErrorKind::Unavailable,
            Error::InvalidHost { .. } | Error::Tls { .. } | Error::ApiVersion { .. } => {
                ErrorKind::Invalid
            }
            Error::Api { status, .. } => match status {
                404 => ErrorKind::NotFound,
                409 => ErrorKind::Conflict,
                400 => ErrorKind::Invalid,
                503 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            Error::NoUpgrade { .. }
            | Error::Http { .. }
            | Error::Decode { .. }
            | Error::Io { .. } => ErrorKind::Internal,
        }
    }

    /// The HTTP status for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}
