//! Process-level lifecycle: private state directories (modes repaired at start), the unix
//! socket (stale-socket removal, mode 0660, optional group), TCP with the checks and TLS of
//! [`crate::listen`], the pid file, SIGTERM/SIGINT graceful shutdown, and serving the API over
//! an [`Engine`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::net::UnixListener;

use berth_store::fsmode;

use crate::config::DaemonConfig;
use crate::engine::Engine;
use crate::image_store::ImageStore;
use crate::listen::{self, Limits, Listener};

/// Open (and thereby repair) the image store under `root`.
pub fn open_store(root: &Path) -> anyhow::Result<Arc<dyn ImageStore>> {
    crate::store_adapter::open(root)
}

/// Open (and repair) the store under `cfg.root` and build the engine over it.
pub fn open_engine(cfg: &DaemonConfig, file: crate::config::FileConfig) -> anyhow::Result<Engine> {
    let (store, _) = crate::store_adapter::open_shared(&cfg.root)?;
    Ok(Engine::with_store(store, cfg.clone(), file)?)
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
    secure_state(&cfg)?;
    // Bind first: it refuses when a live daemon answers, before we touch its pid file.
    let unix = match cfg.listen_unix {
        true => {
            let l = bind_socket(&cfg.socket).await?;
            listen::restrict_socket(&cfg.socket, gid, &cfg.exec_root)?;
            Some(l)
        }
        false => None,
    };
    let pid = PidFile::create(&cfg.pid_file())?;
    let engine = open_engine(&cfg, file)?;
    engine.recover_containers().await;
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
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = Vec::new();
    for l in listeners {
        let mut rx = stop_tx.subscribe();
        let app = berth_api::app(engine.services());
        tasks.push(tokio::spawn(listen::serve(
            l,
            app,
            Limits::default(),
            async move {
                let _ = rx.recv().await;
            },
        )));
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
    engine.undo_build_steps().await;
    if cfg.listen_unix {
        let _ = std::fs::remove_file(&cfg.socket);
    }
    drop(pid);
    tracing::info!("berth daemon stopped");
    res.context("serve API")
}

/// The state directories created 0700 before anything writes into them (the store and the
/// engine create theirs with modes too; this also covers roots made by older versions).
pub const STATE_DIRS: &[&str] = &[
    "containers",
    "containers-rw",
    "snapshots",
    "blobs",
    "volumes",
    "network",
    "build-cache",
    "build-cache-mounts",
    "build-tmp",
];

/// What berth keeps in the exec root: named network namespaces and the runtime's state.
const EXEC_DIRS: &[&str] = &["netns", "runtime"];

/// Make the root, its state directories, records and logs private (0700 / 0600), repairing the
/// modes of an existing root; nothing below the top level is walked. The exec root is made
/// private when berth creates it or it is the default; an existing directory the user named
/// (a custom socket's directory, say /tmp) keeps its mode and only berth's dirs in it close.
pub fn secure_state(cfg: &DaemonConfig) -> anyhow::Result<()> {
    let own_exec_root =
        !cfg.exec_root.exists() || cfg.exec_root == DaemonConfig::default().exec_root;
    let mut dirs = vec![cfg.root.clone()];
    dirs.extend(STATE_DIRS.iter().map(|d| cfg.root.join(d)));
    if own_exec_root {
        dirs.push(cfg.exec_root.clone());
    }
    dirs.extend(EXEC_DIRS.iter().map(|d| cfg.exec_root.join(d)));
    for d in dirs {
        fsmode::private_dir(&d).with_context(|| format!("create {} (mode 0700)", d.display()))?;
    }
    let mut roots = vec![&cfg.root];
    if own_exec_root {
        roots.push(&cfg.exec_root);
    }
    for root in roots {
        let fixed = fsmode::repair_top(root)
            .with_context(|| format!("repair the modes under {}", root.display()))?;
        if !fixed.is_empty() {
            tracing::warn!(
                root = %root.display(),
                paths = fixed.len(),
                "made state only root can read (0700 directories, 0600 files)"
            );
        }
    }
    Ok(())
}

/// Serve the API for `cfg` on an already-bound listener until `shutdown` resolves (tests).
pub async fn serve(
    cfg: DaemonConfig,
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let file = cfg.load_file()?;
    fsmode::private_dir(&cfg.root).with_context(|| format!("create {}", cfg.root.display()))?;
    let engine = open_engine(&cfg, file)?;
    engine.recover_containers().await;
    let app = berth_api::app(engine.services());
    listen::serve(Listener::Unix(listener), app, Limits::default(), shutdown)
        .await
        .context("serve API")
}

/// Bind `path`, replacing a stale socket but refusing to steal one a live daemon answers on.
/// The socket is 0660 (see [`listen::restrict_socket`] for its group).
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
    listen::restrict_socket(path, None, Path::new(""))?;
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
        // Whole or absent, never empty: a reader (a second daemon, a script) may look at any time.
        crate::atomic_file::write_atomic(path, format!("{}\n", std::process::id()).as_bytes())
            .with_context(|| format!("write pid file {}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
