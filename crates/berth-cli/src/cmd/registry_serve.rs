//! `berth registry serve`: berth-registry-server's router on a TCP listener until SIGINT or
//! SIGTERM. Without TLS (not supported yet) only loopback addresses are served. `berth
//! registry gc`: the store's mark and sweep.

use crate::cli::{RegistryGcArgs, RegistryServeArgs};
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

/// `registry gc`: one line per removed blob, then a summary.
pub fn gc(a: &RegistryGcArgs) -> anyhow::Result<()> {
    let store = berth_registry_server::Store::open(std::path::Path::new(&a.root))
        .map_err(|e| Exit::msg(1, format!("registry root {}: {e}", a.root)))?;
    let r = store
        .gc(std::time::Duration::from_secs(a.grace), a.dry_run)
        .map_err(|e| Exit::msg(1, e.to_string()))?;
    let verb = if a.dry_run { "would remove" } else { "removed" };
    for d in &r.removed {
        println!("{verb} {d}");
    }
    println!(
        "{} blobs {verb}, {} kept, {} unreferenced but younger than {} s",
        r.removed.len(),
        r.kept,
        r.young,
        a.grace
    );
    Ok(())
}
