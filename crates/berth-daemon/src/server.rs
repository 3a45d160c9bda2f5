//! Process-level lifecycle without HTTP: private state directories (modes repaired at start),
//! the pid file, opening the engine and recovering its containers, SIGTERM/SIGINT, and the
//! shutdown steps. The binary serves the engine's services over berth-api's listeners between
//! [`Daemon::start`] and [`Daemon::stop`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};

use berth_store::fsmode;

use crate::config::{DaemonConfig, FileConfig};
use crate::engine::Engine;
use crate::images::store::ImageStore;

/// Open (and thereby repair) the image store under `root`.
pub fn open_store(root: &Path) -> anyhow::Result<Arc<dyn ImageStore>> {
    crate::images::store_adapter::open(root)
}

/// Open (and repair) the store under `cfg.root` and build the engine over it, its HTTP
/// traffic going through `http`.
pub fn open_engine(
    cfg: &DaemonConfig,
    file: FileConfig,
    http: Arc<dyn berth_http::Connector>,
) -> anyhow::Result<Engine> {
    let driver = storage_driver(cfg, &file)?;
    let (store, _) = crate::images::store_adapter::open_shared(&cfg.root, driver, cfg.ids())?;
    Ok(Engine::with_store(store, cfg.clone(), file, http)?)
}

/// The storage driver, chosen once: what `--storage-driver` (else daemon.json) names, and for
/// a rootless daemon what its user namespace can mount (probed here; logged).
pub fn storage_driver(
    cfg: &DaemonConfig,
    file: &FileConfig,
) -> anyhow::Result<berth_store::StorageDriver> {
    use berth_store::driver::{choose, probe, DriverRequest, HostStorage};
    let name = cfg
        .storage_driver
        .as_deref()
        .or(file.storage_driver.as_deref())
        .unwrap_or_default();
    let req = DriverRequest::parse(name)?;
    let host = if cfg.rootless {
        fsmode::private_dir(&cfg.root).with_context(|| format!("create {}", cfg.root.display()))?;
        probe(&cfg.root, req == DriverRequest::FuseOverlayfs)
    } else {
        HostStorage {
            kernel_overlay: Ok(()),
            fuse_overlayfs: false,
        }
    };
    let driver = choose(req, cfg.rootless, &host)?;
    match (&host.kernel_overlay, req) {
        (Err(why), DriverRequest::Auto) => tracing::warn!(
            "overlayfs cannot be mounted in this user namespace ({why}): using fuse-overlayfs"
        ),
        _ => tracing::info!(driver = driver.name(), xattrs = ?driver.xattrs, "storage driver"),
    }
    Ok(driver)
}

/// A started daemon: its pid file held, the engine open and its containers recovered.
pub struct Daemon {
    engine: Engine,
    pid: PidFile,
    /// The unix socket to remove at [`Daemon::stop`], when the daemon serves one.
    socket: Option<PathBuf>,
}

impl Daemon {
    /// Write the pid file (refusing one that names a live daemon), open the engine over `cfg`
    /// and reconnect to the containers that outlived the last daemon. Call after
    /// [`secure_state`] and after binding the socket (binding refuses a live daemon's socket
    /// before its pid file is touched).
    pub async fn start(
        cfg: &DaemonConfig,
        file: FileConfig,
        http: Arc<dyn berth_http::Connector>,
    ) -> anyhow::Result<Daemon> {
        let pid = PidFile::create(&cfg.pid_file())?;
        let engine = open_engine(cfg, file, http)?;
        engine.recover_containers().await;
        Ok(Daemon {
            engine,
            pid,
            socket: cfg.listen_unix.then(|| cfg.socket.clone()),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// After the API stopped serving: undo build steps left running, remove the socket, then
    /// the pid file.
    pub async fn stop(self) {
        self.engine.undo_build_steps().await;
        // fuse-overlayfs serves each mount from a process of its own, which would keep this
        // (rootless) daemon's mount namespace and itself alive: unmount them all.
        if let Some(store) = self
            .engine
            .store()
            .filter(|s| s.driver().mounter == berth_store::Mounter::Fuse)
        {
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.unmount_all_rw_layers()).await {
                Ok(Ok(n)) => tracing::info!(mounts = n, "fuse-overlayfs layers unmounted"),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot unmount fuse-overlayfs layers"),
                Err(e) => tracing::warn!(error = %e, "unmounting fuse-overlayfs layers panicked"),
            }
        }
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
        drop(self.pid);
        tracing::info!("berth daemon stopped");
    }
}

/// Open the engine for `cfg` in a root made private and recover its containers, for an API
/// served without the process lifecycle (in-process tests, embedding).
pub async fn start_engine(
    cfg: &DaemonConfig,
    http: Arc<dyn berth_http::Connector>,
) -> anyhow::Result<Engine> {
    let file = cfg.load_file()?;
    fsmode::private_dir(&cfg.root).with_context(|| format!("create {}", cfg.root.display()))?;
    let engine = open_engine(cfg, file, http)?;
    engine.recover_containers().await;
    Ok(engine)
}

/// Resolve `--userns-remap` (the flag or daemon.json's `userns-remap`): create `dockremap`
/// for `default`, refuse a user without subordinate ranges, and move the state root to
/// `<root>/<uid>.<gid>` (as dockerd), so a remapped and a plain daemon never share unpacked
/// layers. The parent root becomes 0701 so the remapped root can reach its containers.
pub fn apply_userns_remap(cfg: &mut DaemonConfig, file: &FileConfig) -> anyhow::Result<()> {
    let Some(arg) = cfg.userns_remap_arg(file) else {
        return Ok(());
    };
    if cfg.rootless {
        bail!("--userns-remap is for a daemon run by root: a rootless daemon already maps its containers into the user's subordinate ids");
    }
    let remap = berth_rootless::remap_host::resolve(&arg).map_err(anyhow::Error::msg)?;
    let (uid, gid) = remap.ids.root();
    // Every existing directory above the root must let the remapped root search it (as
    // dockerd checks), else no container could reach its rootfs.
    for dir in cfg.root.ancestors().skip(1) {
        let Ok(m) = std::fs::metadata(dir) else {
            continue;
        };
        use std::os::unix::fs::MetadataExt;
        let searchable = m.mode() & 0o001 != 0
            || (m.gid() == gid && m.mode() & 0o010 != 0)
            || (m.uid() == uid && m.mode() & 0o100 != 0);
        if !searchable {
            bail!(
                "--userns-remap: {} does not let the remapped root ({uid}:{gid}) reach {}; allow it: chmod o+x {}",
                dir.display(),
                cfg.root.display(),
                dir.display()
            );
        }
    }
    fsmode::private_dir(&cfg.root).with_context(|| format!("create {}", cfg.root.display()))?;
    std::fs::set_permissions(
        &cfg.root,
        std::os::unix::fs::PermissionsExt::from_mode(0o701),
    )
    .with_context(|| format!("chmod 0701 {}", cfg.root.display()))?;
    cfg.root = cfg.root.join(format!("{uid}.{gid}"));
    tracing::info!(user = %remap.name, uid, gid, root = %cfg.root.display(), "--userns-remap: containers' root is {uid}:{gid} on the host");
    berth_rootless::remap_host::activate(&remap);
    cfg.remap = Some(remap);
    Ok(())
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
    // Under --userns-remap these are 0710 root:<remapped gid> (the remapped root passes
    // through them to its containers): not a mode to repair, and given back just below.
    let remapped: Vec<PathBuf> = match &cfg.remap {
        Some(_) => ["containers", "containers-rw", "volumes"]
            .iter()
            .map(|d| cfg.root.join(d))
            .collect(),
        None => Vec::new(),
    };
    for root in roots {
        let mut fixed = fsmode::repair_top(root)
            .with_context(|| format!("repair the modes under {}", root.display()))?;
        fixed.retain(|p| !remapped.contains(p));
        if !fixed.is_empty() {
            tracing::warn!(
                root = %root.display(),
                paths = fixed.len(),
                "made state only root can read (0700 directories, 0600 files)"
            );
        }
    }
    if let Some(r) = &cfg.remap {
        for d in &remapped {
            fsmode::group_traverse(d, r.ids.root().1)
                .with_context(|| format!("open {} to the remapped root", d.display()))?;
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled: a SIGTERM that arrives after the listeners are bound but before
/// serving starts must shut down cleanly, not kill the process (a CI run saw exactly that).
/// Call it inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
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
