//! `berth daemon` composed: berth-daemon's process lifecycle (state, pid file, engine,
//! shutdown) around berth-api's HTTP listeners and berth-ui's dashboard, in the order that
//! keeps state safe.

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
    mut cfg: DaemonConfig,
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
    // The dashboard: refused (not built, not loopback without TLS) and bound before any state.
    let ui = match cfg.ui_addr(&file)? {
        Some(addr) => Some(bind_ui(addr, cfg.tls.as_ref(), &cfg.exec_root).await?),
        None => None,
    };
    let gid = cfg
        .socket_group(&file)
        .map(|g| listen::resolve_group(&g))
        .transpose()?;
    berth_daemon::apply_userns_remap(&mut cfg, &file)?;
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
    let services = daemon.engine().services();
    let ui_state = ui.as_ref().map(|(state, _)| state.clone());
    let app = berth_api::app_with(services.clone(), berth_ui::engine_routes(ui_state));
    let mut served: Vec<_> = listeners.into_iter().map(|l| (l, app.clone())).collect();
    if let Some((state, l)) = ui {
        tracing::info!(addr = %state.addr, tls = state.tls, "berth dashboard listening (berth ui prints a login link)");
        // The dashboard's /api/… is the Engine API itself, without the login-link route.
        served.push((l, berth_ui::router(state, berth_api::app(services))));
    }
    let res = listen::serve_each(served, shutdown).await;
    daemon.stop().await;
    res.context("serve API")
}

/// Check and bind the dashboard's address: loopback, or any address when the daemon has a
/// TLS certificate (browsers log in with a token, not a client certificate, so the dashboard
/// asks for none). Sessions are kept in the runtime dir, so a restart keeps pages logged in.
async fn bind_ui(
    addr: std::net::SocketAddr,
    tls: Option<&berth_daemon::config::TlsConfig>,
    exec_root: &std::path::Path,
) -> anyhow::Result<(std::sync::Arc<berth_ui::Ui>, Listener)> {
    berth_ui::check_addr(addr, tls.is_some())?;
    let acceptor = tls
        .map(|t| {
            listen::tls_acceptor(&berth_daemon::config::TlsConfig {
                client_ca: None,
                ..t.clone()
            })
        })
        .transpose()?;
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind the dashboard's address {addr} (--ui)"))?;
    let bound = l.local_addr().unwrap_or(addr);
    let ui = berth_ui::Ui::new(bound, acceptor.is_some())
        .with_sessions_in(exec_root.join("ui-sessions.json"));
    Ok((std::sync::Arc::new(ui), Listener::Tcp(l, acceptor)))
}
