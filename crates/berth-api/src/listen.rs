//! API listeners: who may connect and for how long. A non-loopback TCP address needs TLS with
//! client certificates (`--tlsverify`) or an explicit `--insecure-tcp`; TLS is rustls (ring);
//! every connection gets a TLS handshake timeout and a header-read timeout, which hyper also
//! applies while a keep-alive connection waits idle for its next request (slowloris); the unix
//! socket is 0660 and reachable by root and the configured `--group` only. [`serve_all`] serves
//! one app on every bound listener and stops them together.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use berth_api_types::TlsConfig;

/// Per-connection time limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request's headers must arrive within this; also how long a keep-alive connection may
    /// sit idle between requests.
    pub header_read: Duration,
    /// A TLS client must finish its handshake within this.
    pub tls_handshake: Duration,
    /// At shutdown, in-flight requests get this long before their connections are closed.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read: Duration::from_secs(30),
            tls_handshake: Duration::from_secs(10),
            drain: Duration::from_secs(10),
        }
    }
}

/// A bound API listener.
pub enum Listener {
    Unix(UnixListener),
    /// TCP, with TLS when an acceptor is given.
    Tcp(TcpListener, Option<TlsAcceptor>),
}

/// May the API be served on `addr` with these TLS settings? `Ok(Some(warning))` when allowed
/// but risky; the error is one line naming the flags that make it safe.
pub fn tcp_policy(
    addr: SocketAddr,
    tls: Option<&TlsConfig>,
    insecure_tcp: bool,
) -> anyhow::Result<Option<String>> {
    let verified = tls.is_some_and(|t| t.client_ca.is_some());
    if verified {
        return Ok(None);
    }
    let what = if tls.is_some() {
        "TLS without client verification (--tls)"
    } else {
        "plain HTTP"
    };
    if addr.ip().is_loopback() {
        return Ok(Some(format!(
            "serving the API on tcp://{addr} with {what}: every local user who can connect controls the engine"
        )));
    }
    if insecure_tcp {
        return Ok(Some(format!(
            "--insecure-tcp: serving the API on tcp://{addr} with {what}: anyone who can reach it controls this host"
        )));
    }
    bail!(
        "refusing to serve the API on tcp://{addr} with {what}: anyone who can reach it would control this host; \
         pass --tlsverify with --tlscacert, --tlscert and --tlskey, or --insecure-tcp to accept the risk"
    )
}

/// A rustls acceptor from PEM files; with `client_ca`, clients must present a certificate
/// that CA signed.
pub fn tls_acceptor(t: &TlsConfig) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = pem_certs(&t.cert, "--tlscert")?;
    let key = PrivateKeyDer::from_pem_file(&t.key).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the TLS key {} (--tlskey): {e}; give a PEM private key",
            t.key.display()
        )
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &t.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in pem_certs(ca, "--tlscacert")? {
                roots.add(c).with_context(|| {
                    format!("cannot use a certificate of {} (--tlscacert)", ca.display())
                })?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .with_context(|| format!("cannot verify clients with {}", ca.display()))?;
            builder.with_client_cert_verifier(v)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(certs, key).with_context(|| {
        format!(
            "the TLS certificate {} does not fit the key {}",
            t.cert.display(),
            t.key.display()
        )
    })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// The PEM certificates in `p` (named by `flag` in errors); at least one.
fn pem_certs(
    p: &Path,
    flag: &str,
) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(p)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("cannot read {} ({flag}): {e}", p.display()))?;
    if certs.is_empty() {
        bail!(
            "{} ({flag}) holds no PEM certificate; give a PEM file",
            p.display()
        );
    }
    Ok(certs)
}

/// The gid of group `name` in `etc_group` (the text of /etc/group), or `name` itself when it
/// is a number.
pub fn group_gid(name: &str, etc_group: &str) -> Option<u32> {
    if let Ok(g) = name.parse() {
        return Some(g);
    }
    etc_group.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(name))
            .then(|| f.nth(1).and_then(|g| g.trim().parse().ok()))
            .flatten()
    })
}

/// Resolve `--group` against /etc/group; a named group that does not exist is an error.
pub fn resolve_group(name: &str) -> anyhow::Result<u32> {
    let etc = std::fs::read_to_string("/etc/group").unwrap_or_default();
    group_gid(name, &etc).with_context(|| {
        format!("socket group {name:?} does not exist: create it (groupadd {name}) or drop --group")
    })
}

/// Give the socket mode 0660 and, with a group, that group; when the socket lives in the
/// (private) exec root, let the group traverse it (0710).
pub fn restrict_socket(socket: &Path, gid: Option<u32>, exec_root: &Path) -> anyhow::Result<()> {
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod 0660 {}", socket.display()))?;
    let Some(gid) = gid else {
        return Ok(());
    };
    std::os::unix::fs::chown(socket, None, Some(gid))
        .with_context(|| format!("chgrp {gid} {}", socket.display()))?;
    if socket.parent() == Some(exec_root) {
        std::os::unix::fs::chown(exec_root, None, Some(gid))
            .with_context(|| format!("chgrp {gid} {}", exec_root.display()))?;
        std::fs::set_permissions(exec_root, std::fs::Permissions::from_mode(0o710))
            .with_context(|| format!("chmod 0710 {}", exec_root.display()))?;
    }
    Ok(())
}

/// Bind `path`, replacing a stale socket but refusing to steal one a live daemon answers on.
/// The socket is 0660 (see [`restrict_socket`] for its group).
pub async fn bind_socket(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!(
                "another daemon is listening on {}: stop it or pass another --host",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("remove stale socket {}", path.display()))?;
    }
    let l = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    restrict_socket(path, None, Path::new(""))?;
    Ok(l)
}

/// Serve `app` on every listener (default [`Limits`]) until `shutdown` resolves, then stop
/// them all and wait for each to drain; the last serving error, if any, is returned.
pub async fn serve_all(
    listeners: Vec<Listener>,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let each = listeners.into_iter().map(|l| (l, app.clone())).collect();
    serve_each(each, shutdown).await
}

/// [`serve_all`] with an app per listener (the Engine API on its sockets, the dashboard on
/// its own address), stopped together.
pub async fn serve_each(
    listeners: Vec<(Listener, axum::Router)>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = Vec::new();
    for (l, app) in listeners {
        let mut rx = stop_tx.subscribe();
        tasks.push(tokio::spawn(serve(l, app, Limits::default(), async move {
            let _ = rx.recv().await;
        })));
    }
    shutdown.await;
    let _ = stop_tx.send(());
    let mut res = Ok(());
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => res = Err(e),
            Err(e) => res = Err(std::io::Error::other(e)),
        }
    }
    res
}

/// Serve `app` on `listener` until `shutdown` resolves; then stop accepting, let in-flight
/// requests finish for up to `limits.drain` and close what is left.
pub async fn serve(
    listener: Listener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = accept(&listener) => a,
        };
        let (app, limits, stop) = (app.clone(), limits.clone(), stop_rx.clone());
        match accepted {
            Ok(Accepted::Unix(s)) => {
                conns.spawn(drive(s, app, limits, stop));
            }
            Ok(Accepted::Tcp(s, peer, None)) => {
                conns.spawn(drive(s, app, limits, stop));
                tracing::debug!(%peer, "api connection");
            }
            Ok(Accepted::Tcp(s, peer, Some(tls))) => {
                conns.spawn(async move {
                    match tokio::time::timeout(limits.tls_handshake, tls.accept(s)).await {
                        Ok(Ok(s)) => drive(s, app, limits, stop).await,
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "cannot accept an API connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.drain, drain).await.is_err() {
        tracing::warn!(
            open = conns.len(),
            "closing API connections still busy after the shutdown grace period"
        );
        conns.abort_all();
    }
    Ok(())
}

enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream, SocketAddr, Option<TlsAcceptor>),
}

async fn accept(l: &Listener) -> std::io::Result<Accepted> {
    match l {
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        Listener::Tcp(l, tls) => l
            .accept()
            .await
            .map(|(s, peer)| Accepted::Tcp(s, peer, tls.clone())),
    }
}

/// One HTTP/1.1 connection (with upgrades, for attach and exec) until it ends or `stop`.
async fn drive<I>(
    io: I,
    app: axum::Router,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .with_upgrades();
    tokio::pin!(conn);
    let res = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { stop.wait_for(|s| *s).await.map(drop) } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = res {
        tracing::debug!(error = %e, "api connection ended");
    }
}

#[cfg(test)]
#[path = "listen_tests.rs"]
mod tests;
