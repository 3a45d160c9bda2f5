//! berth-client: Docker Engine API client over a unix socket (or tcp://), with hijacked
//! attach streams, JSON progress streams and the stdout/stderr frame demuxer.

pub mod demux;
mod error;
mod host;
pub mod jsonstream;
pub mod tls;
mod transport;

pub use bollard_stubs::models;
pub use error::{Error, ErrorKind};
pub use host::{Host, DEFAULT_SOCKET};
pub use tls::TlsOptions;
pub use transport::{version_lt, Body, Client, Hijacked, Ping, ResponseStream, MAX_API_VERSION};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Request body constructors.
pub mod body {
    pub use crate::transport::{bytes, empty, json, reader};
}
