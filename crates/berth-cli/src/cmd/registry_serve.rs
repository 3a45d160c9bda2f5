//! `berth registry serve`: berth-registry-server's router on a TCP listener until SIGINT or
//! SIGTERM. Without TLS (not supported yet) only loopback addresses are served.

use crate::cli::RegistryServeArgs;
use crate::exit::Exit;

pub async fn serve(a: &RegistryServeArgs) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = a
        .addr
        .parse()
        .map_err(|e| Exit::msg(1, format!("--addr {}: {e} (use HOST:PORT)", a.addr)))?;
    if !addr.ip().is_loopback() {
        return Err(Exit::msg(
            1,
            format!(
                "refusing to serve {addr} without TLS: this registry serves loopback only until TLS is supported"
            ),
        ));
    }
    let store = berth_registry_server::Store::open(std::path::Path::new(&a.root))
        .map_err(|e| Exit::msg(1, format!("registry root {}: {e}", a.root)))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Exit::msg(1, format!("listen on {addr}: {e}")))?;
    eprintln!(
        "berth registry serving {} from {}",
        listener.local_addr()?,
        a.root
    );
    let app =
        berth_registry_server::router(store, berth_registry_server::Options { delete: a.delete });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await?;
    Ok(())
}
