//! `berth registry serve`: berth-registry-server's router on a TCP listener until SIGINT or
//! SIGTERM (berth-api's listener: TLS with rustls, connection limits); plain HTTP only on
//! loopback unless `--insecure`. `berth
//! registry gc`: the store's mark and sweep.

use crate::cli::{RegistryGcArgs, RegistryServeArgs};
use crate::exit::Exit;

pub async fn serve(a: &RegistryServeArgs) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = a
        .addr
        .parse()
        .map_err(|e| Exit::msg(1, format!("--addr {}: {e} (use HOST:PORT)", a.addr)))?;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(
            berth_api::listen::tls_acceptor(&berth_api_types::TlsConfig {
                cert: cert.into(),
                key: key.into(),
                client_ca: None,
            })
            .map_err(|e| Exit::msg(1, e.to_string()))?,
        ),
        _ => None,
    };
    if !addr.ip().is_loopback() && tls.is_none() && !a.insecure {
        return Err(Exit::msg(
            1,
            format!(
                "refusing to serve {addr} over plain HTTP: pass --tls-cert and --tls-key, or --insecure to accept the risk"
            ),
        ));
    }
    let htpasswd = match &a.htpasswd {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Exit::msg(1, format!("--htpasswd {p}: {e}")))?;
            Some(std::sync::Arc::new(
                berth_registry_server::auth::Htpasswd::parse(&text)
                    .map_err(|e| Exit::msg(1, format!("--htpasswd {p}: {e}")))?,
            ))
        }
        None => None,
    };
    let proxy = match &a.proxy {
        Some(url) => {
            let base = url.trim_end_matches('/').to_string();
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(Exit::msg(
                    1,
                    format!("--proxy {url}: give the upstream as https://host[:port]"),
                ));
            }
            use berth_http::Connector as _;
            let transport = berth_http_reqwest::ReqwestConnector
                .client(&berth_http::ClientOptions::default())
                .map_err(|e| Exit::msg(1, format!("--proxy {url}: {e}")))?;
            let authorization = match &a.proxy_username {
                Some(user) => {
                    let pass = std::env::var("BERTH_PROXY_PASSWORD").map_err(|_| {
                        Exit::msg(
                            1,
                            "--proxy-username needs the password in BERTH_PROXY_PASSWORD",
                        )
                    })?;
                    use base64::Engine as _;
                    Some(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
                    ))
                }
                None => None,
            };
            Some(berth_registry_server::proxy::Upstream {
                base,
                transport,
                authorization,
            })
        }
        None => None,
    };
    let store = berth_registry_server::Store::open(std::path::Path::new(&a.root))
        .map_err(|e| Exit::msg(1, format!("registry root {}: {e}", a.root)))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Exit::msg(1, format!("listen on {addr}: {e}")))?;
    eprintln!(
        "berth registry serving {}://{} from {}",
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr()?,
        a.root
    );
    let app = berth_registry_server::router(
        store,
        berth_registry_server::Options {
            delete: a.delete,
            htpasswd,
            proxy,
        },
    );
    berth_api::listen::serve(
        berth_api::listen::Listener::Tcp(listener, tls),
        app,
        berth_api::listen::Limits::default(),
        async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        },
    )
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
