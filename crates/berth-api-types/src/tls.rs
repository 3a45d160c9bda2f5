//! The TLS files the API listener is given (`--tlscert`, `--tlskey`, `--tlscacert`).

use std::path::PathBuf;

/// The API listener's TLS material (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Server certificate chain (`--tlscert`).
    pub cert: PathBuf,
    /// Server private key (`--tlskey`).
    pub key: PathBuf,
    /// `--tlsverify`: clients must present a certificate signed by this CA (`--tlscacert`).
    pub client_ca: Option<PathBuf>,
}
