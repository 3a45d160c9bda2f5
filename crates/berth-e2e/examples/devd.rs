//! A development daemon without the CLI: `cargo run -p berth-e2e --example devd -- <dir>`
//! serves on `<dir>/run/berth.sock` with state under `<dir>/root` until Ctrl-C (no pid file,
//! no TCP: the `berth daemon` binary composes the full lifecycle).

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: devd <state-dir>"))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cfg = berth_daemon::DaemonConfig::under(std::path::Path::new(&dir));
    tokio::runtime::Runtime::new()?.block_on(async {
        let l = berth_api::listen::bind_socket(&cfg.socket).await?;
        let engine =
            berth_daemon::start_engine(&cfg, berth_http_reqwest::ReqwestConnector::shared())
                .await?;
        berth_api::listen::serve_all(
            vec![berth_api::listen::Listener::Unix(l)],
            berth_api::app(engine.services()),
            berth_daemon::shutdown_signal(),
        )
        .await?;
        Ok(())
    })
}
