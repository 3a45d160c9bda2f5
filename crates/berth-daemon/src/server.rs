//! Process-level lifecycle: directories, the unix socket (stale-socket removal, mode 0660),
//! the pid file, SIGTERM/SIGINT graceful shutdown, and serving the API over an [`Engine`].

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::net::UnixListener;

use crate::config::DaemonConfig;
use crate::engine::Engine;
use crate::image_store::ImageStore;

/// Open (and thereby repair) the image store under `root`.
pub fn open_store(root: &Path) -> anyhow::Result<Arc<dyn ImageStore>> {
    crate::store_adapter::open(root)
}

/// Open (and repair) the store under `cfg.root` and build the engine over it.
pub fn open_engine(cfg: &DaemonConfig, file: crate::config::FileConfig) -> anyhow::Result<Engine> {
    let (store, _) = crate::store_adapter::open_shared(&cfg.root)?;
    Ok(Engine::with_store(store, cfg.clone(), file))
}

/// Run the daemon until SIGTERM/SIGINT: open the store, bind the socket, write the pid file,
/// serve, then remove the socket and pid file.
pub async fn run(cfg: DaemonConfig) -> anyhow::Result<()> {
    run_until(cfg, shutdown_signal()).await
}

/// [`run`] with the shutdown trigger passed in (tests, embedding).
pub async fn run_until(
    cfg: DaemonConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let file = cfg.load_file()?;
    for d in [&cfg.root, &cfg.exec_root] {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    // Bind first: it refuses when a live daemon answers, before we touch its pid file.
    let listener = bind_socket(&cfg.socket).await?;
    let pid = PidFile::create(&cfg.pid_file())?;
    let engine = open_engine(&cfg, file)?;
    engine.recover_containers().await;
    tracing::info!(socket = %cfg.socket.display(), root = %cfg.root.display(), "berth daemon listening");
    let tcp = match cfg.tcp {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("bind tcp {addr}"))?,
        ),
        None => None,
    };
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tcp_task = None;
    if let Some(l) = tcp {
        tracing::warn!(
            "serving the API on TCP without TLS: anyone who can connect controls the engine"
        );
        let mut rx = stop_tx.subscribe();
        let services = engine.services();
        tcp_task = Some(tokio::spawn(async move {
            berth_api::serve_tcp(l, services, async move {
                let _ = rx.recv().await;
            })
            .await
        }));
    }
    let stop = stop_tx.clone();
    let res = berth_api::serve_unix(listener, engine.services(), async move {
        shutdown.await;
        let _ = stop.send(());
    })
    .await;
    let _ = stop_tx.send(());
    if let Some(t) = tcp_task {
        let _ = t.await;
    }
    let _ = std::fs::remove_file(&cfg.socket);
    drop(pid);
    tracing::info!("berth daemon stopped");
    res.context("serve API")
}

/// Serve the API for `cfg` on an already-bound listener until `shutdown` resolves (tests).
pub async fn serve(
    cfg: DaemonConfig,
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let file = cfg.load_file()?;
    std::fs::create_dir_all(&cfg.root).with_context(|| format!("create {}", cfg.root.display()))?;
    let engine = open_engine(&cfg, file)?;
    engine.recover_containers().await;
    berth_api::serve_unix(listener, engine.services(), shutdown)
        .await
        .context("serve API")
}

/// Bind `path`, replacing a stale socket but refusing to steal one a live daemon answers on.
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
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod 0660 {}", path.display()))?;
    Ok(l)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// The pid file; removed on drop. Refuses to start when it names a live berth daemon (not a
/// zombie, not a recycled pid: [`crate::pid_file::is_live_daemon`]).
pub(crate) struct PidFile(PathBuf);

impl PidFile {
    pub(crate) fn create(path: &Path) -> anyhow::Result<PidFile> {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(pid) = s.trim().parse::<i32>() {
                if pid != std::process::id() as i32 && crate::pid_file::is_live_daemon(pid) {
                    bail!(
                        "pid file {} names running process {pid}: is another berth daemon running?",
                        path.display()
                    );
                }
            }
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("write pid file {}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
