//! TLS to a `tcp://` daemon, as the docker CLI does it: `--tlsverify` checks the daemon's
//! certificate against `--tlscacert`, `--tls` alone encrypts without checking it; either way
//! a client certificate (`--tlscert`/`--tlskey`) is presented when one is available. Default
//! files are `ca.pem`, `cert.pem` and `key.pem` in `$DOCKER_CERT_PATH` (else `~/.docker`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::{Error, Result};

/// The client's TLS flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Check the daemon's certificate (`--tlsverify`, `DOCKER_TLS_VERIFY`).
    pub verify: bool,
    /// CA that signed the daemon's certificate (`--tlscacert`; default `<cert dir>/ca.pem`).
    pub ca: Option<PathBuf>,
    /// Client certificate (`--tlscert`; default `<cert dir>/cert.pem` when it exists).
    pub cert: Option<PathBuf>,
    /// Client key (`--tlskey`; default `<cert dir>/key.pem` when it exists).
    pub key: Option<PathBuf>,
}

/// `$DOCKER_CERT_PATH`, else `$HOME/.docker`: where default TLS files live.
pub fn cert_dir() -> PathBuf {
    match std::env::var_os("DOCKER_CERT_PATH").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"))
            .join(".docker"),
    }
}

/// Is `DOCKER_TLS_VERIFY` set? Like the docker CLI, any non-empty value means yes.
pub fn env_tls_verify() -> bool {
    std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty())
}

fn tls_err(what: impl Into<String>, e: impl std::fmt::Display) -> Error {
    Error::Tls {
        what: what.into(),
        why: e.to_string(),
    }
}

fn read_certs(p: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(p)
        .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| tls_err(format!("reading {} ({flag})", p.display()), e))?;
    if certs.is_empty() {
        return Err(tls_err(
            format!("reading {} ({flag})", p.display()),
            "no PEM certificate in it",
        ));
    }
    Ok(certs)
}

impl TlsOptions {
    /// A connector for these options; default files come from `dir` (see [`cert_dir`]).
    pub fn connector(&self, dir: &Path) -> Result<tokio_rustls::TlsConnector> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("choosing TLS versions", e))?;
        let builder = if self.verify {
            let ca = self.ca.clone().unwrap_or_else(|| dir.join("ca.pem"));
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(&ca, "--tlscacert")? {
                roots
                    .add(c)
                    .map_err(|e| tls_err(format!("using {} (--tlscacert)", ca.display()), e))?;
            }
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoServerVerify(provider)))
        };
        // Named files must exist; the default pair is used only when both are there.
        let (cert, key) = match (&self.cert, &self.key) {
            (None, None) => {
                let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
                (c.exists() && k.exists()).then_some((c, k)).unzip()
            }
            (c, k) => (
                Some(c.clone().unwrap_or_else(|| dir.join("cert.pem"))),
                Some(k.clone().unwrap_or_else(|| dir.join("key.pem"))),
            ),
        };
        let cfg = match (cert, key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(&cert, "--tlscert")?;
                let k = PrivateKeyDer::from_pem_file(&key)
                    .map_err(|e| tls_err(format!("reading {} (--tlskey)", key.display()), e))?;
                builder.with_client_auth_cert(chain, k).map_err(|e| {
                    tls_err(
                        format!("using {} with {}", cert.display(), key.display()),
                        e,
                    )
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
    }
}

/// The server name to check the daemon's certificate against: the host of `host:port`.
pub fn server_name(addr: &str) -> Result<ServerName<'static>> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| tls_err(format!("server name {host:?}"), e))
}

/// `--tls` without `--tlsverify`: any daemon certificate is accepted (docker's
/// InsecureSkipVerify); handshake signatures are still checked.
#[derive(Debug)]
struct NoServerVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoServerVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_addresses() {
        assert!(matches!(
            server_name("127.0.0.1:2376").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:2376").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("docker.example:2376").unwrap(),
            ServerName::DnsName(_)
        ));
    }

    #[test]
    fn verify_needs_a_readable_ca() {
        let d = tempfile::tempdir().unwrap();
        let o = TlsOptions {
            verify: true,
            ..Default::default()
        };
        let e = o.connector(d.path()).err().unwrap().to_string();
        assert!(e.contains("ca.pem") && e.contains("--tlscacert"), "{e}");
        std::fs::write(d.path().join("ca.pem"), "not pem").unwrap();
        let e = o.connector(d.path()).err().unwrap().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        // Without verification and without client files, nothing needs to exist.
        assert!(TlsOptions::default().connector(d.path()).is_ok());
        // A named client cert must exist.
        let named = TlsOptions {
            cert: Some(d.path().join("mine.pem")),
            ..Default::default()
        };
        let e = named.connector(d.path()).err().unwrap().to_string();
        assert!(e.contains("mine.pem"), "{e}");
    }
}
