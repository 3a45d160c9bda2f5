//! berth-client: Docker Engine API client over a unix socket (or tcp://, ssh://), with hijacked
//! attach streams, JSON progress streams and the stdout/stderr frame demuxer.

pub mod demux;
mod error;
mod host;
pub mod jsonstream;
pub mod ssh;
pub mod tls;
mod transport;

pub use bollard_stubs::models;
pub use error::{Error, ErrorKind};
pub use host::{Host, SshTarget, DEFAULT_SOCKET};
pub use tls::TlsOptions;
pub use transport::{
    version_lt, Body, Client, Hijacked, Ping, ResponseStream, MAX_API_VERSION, MIN_API_VERSION,
};

/// Percent-encode `s` for a URL path segment or query value: everything but RFC 3986's
/// unreserved characters (`A-Z a-z 0-9 - _ . ~`).
pub fn escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Request body constructors.
pub mod body {
    pub use crate::transport::{bytes, empty, json, reader};
}
