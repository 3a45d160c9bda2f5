//! `berth registry serve`: berth-registry-server's router on a TCP listener until SIGINT or
//! SIGTERM (berth-api's listener: TLS with rustls, connection limits); plain HTTP only on
//! loopback unless `--insecure`; settings from the flags over a `--config` YAML file. `berth
//! registry gc`: the store's mark and sweep.

use crate::cli::{RegistryGcArgs, RegistryServeArgs};
use crate::exit::Exit;
use berth_registry_server::config::ServeConfig;

/// The flags as a config layer (`None`: not given, so the file or the default decides).
fn flag_layer(a: &RegistryServeArgs) -> ServeConfig {
    ServeConfig {
        addr: a.addr.clone(),
        root: a.root.clone(),
        tls_cert: a.tls_cert.clone(),
        tls_key: a.tls_key.clone(),
        htpasswd: a.htpasswd.clone(),
        insecure: a.insecure.then_some(true),
        delete: a.delete.then_some(true),
        proxy: a.proxy.clone(),
        proxy_username: a.proxy_username.clone(),
        token_policy: a.token_policy.clone(),
        token_key: a.token_key.clone(),
        token_ttl: a.token_ttl,
        token_service: a.token_service.clone(),
        token_realm: a.token_realm.clone(),
    }
}

/// The settings in force: the flags over the config file.
fn settings(a: &RegistryServeArgs) -> anyhow::Result<ServeConfig> {
    let file = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Exit::msg(1, format!("--config {p}: {e}")))?;
            let dir = std::path::Path::new(p)
                .parent()
                .unwrap_or(std::path::Path::new("."));
            ServeConfig::parse(&text, dir)
                .map_err(|e| Exit::msg(1, format!("--config {p}: {e}")))?
        }
        None => ServeConfig::default(),
    };
    let c = flag_layer(a).over(file);
    let pairs = [
        (
            c.tls_cert.is_some() != c.tls_key.is_some(),
            "tls-cert and tls-key go together",
        ),
        (
            c.proxy_username.is_some() && c.proxy.is_none(),
            "proxy-username needs proxy",
        ),
        (
            c.token_policy.is_none()
                && (c.token_key.is_some()
                    || c.token_ttl.is_some()
                    || c.token_service.is_some()
                    || c.token_realm.is_some()),
            "token-key, token-ttl, token-service and token-realm need token-policy",
        ),
        (
            c.token_ttl == Some(0),
            "token-ttl must be at least 1 second",
        ),
    ];
    if let Some((_, why)) = pairs.iter().find(|(bad, _)| *bad) {
        return Err(Exit::msg(1, format!("registry serve: {why}")));
    }
    Ok(c)
}

fn read(flag: &str, p: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| Exit::msg(1, format!("--{flag} {p}: {e}")))
}

pub async fn serve(a: &RegistryServeArgs) -> anyhow::Result<()> {
    let c = settings(a)?;
    let addr_s = c.addr.clone().unwrap_or_else(|| "127.0.0.1:5000".into());
    let root = c
        .root
        .clone()
        .unwrap_or_else(|| "/var/lib/berth-registry".into());
    let addr: std::net::SocketAddr = addr_s
        .parse()
        .map_err(|e| Exit::msg(1, format!("--addr {addr_s}: {e} (use HOST:PORT)")))?;
    let tls = match (&c.tls_cert, &c.tls_key) {
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
    if !addr.ip().is_loopback() && tls.is_none() && !c.insecure.unwrap_or(false) {
        return Err(Exit::msg(
            1,
            format!(
                "refusing to serve {addr} over plain HTTP: pass --tls-cert and --tls-key, or --insecure to accept the risk"
            ),
        ));
    }
    let htpasswd = match &c.htpasswd {
        Some(p) => {
            let text = String::from_utf8_lossy(&read("htpasswd", p)?).into_owned();
            Some(std::sync::Arc::new(
                berth_registry_server::auth::Htpasswd::parse(&text)
                    .map_err(|e| Exit::msg(1, format!("--htpasswd {p}: {e}")))?,
            ))
        }
        None => None,
    };
    let token = match &c.token_policy {
        Some(p) => {
            let text = String::from_utf8_lossy(&read("token-policy", p)?).into_owned();
            let policy = berth_registry_server::policy::Policy::parse(&text)
                .map_err(|e| Exit::msg(1, format!("--token-policy {p}: {e}")))?;
            let key = match &c.token_key {
                Some(k) => {
                    use std::os::unix::fs::PermissionsExt as _;
                    let mode = std::fs::metadata(k)
                        .map_err(|e| Exit::msg(1, format!("--token-key {k}: {e}")))?
                        .permissions()
                        .mode();
                    if mode & 0o077 != 0 {
                        return Err(Exit::msg(
                            1,
                            format!(
                                "--token-key {k}: readable by others (mode {:o}): chmod 600 it",
                                mode & 0o777
                            ),
                        ));
                    }
                    Some(read("token-key", k)?)
                }
                None => None,
            };
            Some(std::sync::Arc::new(
                berth_registry_server::token::TokenAuth::new(
                    key,
                    c.token_service
                        .clone()
                        .unwrap_or_else(|| "berth-registry".into()),
                    std::time::Duration::from_secs(c.token_ttl.unwrap_or(300)),
                    policy,
                    c.token_realm.clone(),
                )
                .map_err(|e| Exit::msg(1, format!("--token-key: {e}")))?,
            ))
        }
        None => None,
    };
    let proxy = match &c.proxy {
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
            let authorization = match &c.proxy_username {
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
            Some(berth_registry_server::proxy::Upstream::new(
                base,
                transport,
                authorization,
            ))
        }
        None => None,
    };
    let store = berth_registry_server::Store::open(std::path::Path::new(&root))
        .map_err(|e| Exit::msg(1, format!("registry root {root}: {e}")))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Exit::msg(1, format!("listen on {addr}: {e}")))?;
    eprintln!(
        "berth registry serving {}://{} from {}",
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr()?,
        root
    );
    let app = berth_registry_server::router(
        store,
        berth_registry_server::Options {
            delete: c.delete.unwrap_or(false),
            htpasswd,
            token,
            https: tls.is_some(),
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
