//! `berth daemon` composed: berth-daemon's process lifecycle (state, pid file, engine,
//! shutdown) around berth-api's HTTP listeners, in the order that keeps state safe.

use std::future::Future;

use anyhow::Context;
use berth_api::listen::{self, Listener};
use berth_daemon::{Daemon, DaemonConfig};

/// Run the daemon until SIGTERM/SIGINT.
pub async fn run(cfg: DaemonConfig) -> anyhow::Result<()> {
    run_until(cfg, berth_daemon::shutdown_signal()).await
}

/// Serve `cfg` until `shutdown` resolves: refuse unsafe listeners, make state private, bind the
/// socket, write the pid file, open the engine, bind TCP, serve; then stop serving, undo build
/// steps and remove the socket and pid file.
pub async fn run_until(
    cfg: DaemonConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Refuse an unsafe listener and unusable TLS files before touching any state.
    let tcp_tls = match cfg.tcp {
        Some(addr) => {
            let warning = listen::tcp_policy(addr, cfg.tls.as_ref(), cfg.insecure_tcp)?;
            let tls = cfg.tls.as_ref().map(listen::tls_acceptor).transpose()?;
            Some((addr, tls, warning))
        }
        None => None,
    };
    let file = cfg.load_file()?;
    let gid = cfg
        .socket_group(&file)
        .map(|g| listen::resolve_group(&g))
        .transpose()?;
    berth_daemon::secure_state(&cfg)?;
    // Bind first: it refuses when a live daemon answers, before we touch its pid file.
    let unix = match cfg.listen_unix {
        true => {
            let l = listen::bind_socket(&cfg.socket).await?;
            listen::restrict_socket(&cfg.socket, gid, &cfg.exec_root)?;
            Some(l)
        }
        false => None,
    };
    let daemon = Daemon::start(&cfg, file, berth_http_reqwest::ReqwestConnector::shared()).await?;
    let mut listeners = Vec::new();
    if let Some(l) = unix {
        tracing::info!(socket = %cfg.socket.display(), root = %cfg.root.display(), "berth daemon listening");
        listeners.push(Listener::Unix(l));
    }
    if let Some((addr, tls, warning)) = tcp_tls {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("bind tcp {addr}"))?;
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }
        tracing::info!(%addr, tls = tls.is_some(), root = %cfg.root.display(), "berth daemon listening");
        listeners.push(Listener::Tcp(l, tls));
    }
    let app = berth_api::app(daemon.engine().services());
    let res = listen::serve_all(listeners, app, shutdown).await;
    daemon.stop().await;
    res.context("serve API")
}
