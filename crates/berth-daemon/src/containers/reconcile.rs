//! Reconciling container records with what exists on the host (the thin, side-effecting half
//! of `orphans.rs`): at daemon start after the recovery reconnected live shims, for `rm -f` of
//! one id whatever its record says, and for `system check [--repair]`.

use super::Status;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use berth_api_types::{ApiResult, CheckFinding, CheckReport};

use super::lock;
use crate::engine::Engine;
use crate::orphans::{self, Action, Facts, Mode, RecordView, Roots};

/// The outcome of one action: Ok, or what went wrong.
type Outcome = Result<(), String>;

impl Engine {
    pub(crate) fn roots(&self) -> Roots {
        Roots {
            root: self.inner.cfg.root.clone(),
            exec_root: self.inner.cfg.exec_root.clone(),
            cgroup_root: berth_runtime::cgroups::CGROUP_ROOT.into(),
        }
    }

    /// Records as the plan sees them, and every record's cgroup path. With `busy`, a container
    /// whose operation lock is held counts as busy (a check runs beside live operations).
    fn record_views(&self, busy: bool) -> (Vec<RecordView>, BTreeMap<String, String>) {
        let mut views = Vec::new();
        let mut cgroups = BTreeMap::new();
        for c in self.inner.containers.all() {
            let r = c.snapshot();
            cgroups.insert(r.id.clone(), cgroup_of(&r));
            views.push(RecordView {
                busy: busy && c.op.try_lock().is_err(),
                id: r.id,
                status: r.state.status,
            });
        }
        (views, cgroups)
    }

    /// Observe the host, including endpoints and veths when networking was ever used here.
    async fn observe(&self, cgroups: BTreeMap<String, String>) -> Facts {
        let roots = self.roots();
        let mut f = tokio::task::spawn_blocking(move || orphans::observe(&roots, &cgroups))
            .await
            .unwrap_or_default();
        if self.inner.cfg.root.join("network").exists() {
            if let Ok(net) = self.network().await {
                // Bridge ports first, the manager's veths second: the manager names a veth
                // from just before it is created until it is deleted (also while a connect
                // is still setting it up), so the names read after include its owner.
                let mut ports = Vec::new();
                let networks = net.list().await;
                for br in networks.iter().filter_map(|n| n.bridge.clone()) {
                    let brif = Path::new("/sys/class/net").join(&br).join("brif");
                    for port in std::fs::read_dir(brif).into_iter().flatten().flatten() {
                        ports.push((port.file_name().to_string_lossy().into_owned(), br.clone()));
                    }
                }
                for n in &networks {
                    if let Ok(info) = net.inspect(&n.id).await {
                        f.endpoints
                            .extend(info.endpoints.into_iter().map(|ep| ep.container_id));
                    }
                }
                let owned = net.veths().await;
                f.stray_veths = ports
                    .into_iter()
                    .filter(|(name, _)| !owned.contains(name))
                    // A disconnect between the two reads deleted it.
                    .filter(|(name, _)| Path::new("/sys/class/net").join(name).exists())
                    .collect();
            }
        }
        f
    }

    /// After the recovery: undo what crashed operations left (half-started containers, build
    /// steps, removals cut short, state without records).
    pub(crate) async fn reconcile_on_start(&self) {
        let (views, cgroups) = self.record_views(false);
        let facts = self.observe(cgroups).await;
        let actions = orphans::plan(&self.roots(), &views, &facts, Mode::Startup);
        for (a, res) in actions.iter().zip(self.apply(&actions).await) {
            let (kind, what, place) = a.finding();
            match res {
                Ok(()) => tracing::info!(kind, what, place, "reconciled after a crash"),
                Err(e) => tracing::warn!(kind, what, place, error = %e, "cannot reconcile"),
            }
        }
        // Blobs and snapshots a load, pull, build or commit cut short wrote before its image
        // was registered: nothing is in flight now, so what no image needs is garbage. Partial
        // downloads stay: a pull resumes from them.
        if let Some(store) = self.inner.raw_store.clone() {
            let gc = tokio::task::spawn_blocking(move || -> berth_store::Result<_> {
                if store.garbage()?.is_empty() {
                    return Ok(None);
                }
                store.gc_keep_partials().map(Some)
            })
            .await;
            match gc {
                Ok(Ok(Some(r))) => tracing::info!(
                    blobs = r.blobs_removed.len(),
                    snapshots = r.snapshots_removed,
                    "reconciled after a crash: unused blobs and snapshots removed"
                ),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot collect unused blobs"),
                _ => {}
            }
        }
    }

    /// At shutdown: a build cannot outlive the daemon (its client's connection is gone), so
    /// every build step's processes, network, mounts, cgroups and layers go now instead of
    /// waiting for the next start. Containers are left running: they outlive the daemon.
    pub async fn undo_build_steps(&self) {
        let (views, cgroups) = self.record_views(false);
        let facts = self.observe(cgroups).await;
        let actions: Vec<Action> = orphans::plan(&self.roots(), &views, &facts, Mode::Startup)
            .into_iter()
            .filter(|a| a.id().is_some_and(orphans::is_build_step))
            .collect();
        for (a, res) in actions.iter().zip(self.apply(&actions).await) {
            let (kind, what, place) = a.finding();
            match res {
                Ok(()) => tracing::info!(kind, what, place, "build step removed at shutdown"),
                Err(e) => tracing::warn!(kind, what, place, error = %e, "cannot remove build step"),
            }
        }
    }

    /// `rm -f`: whatever exists for `id` goes (processes, shim, network, mounts, cgroups,
    /// runtime state, rw layer), whatever the record says. The record dir is the caller's.
    pub(crate) async fn purge(&self, id: &str, cg_path: String) {
        let roots = self.roots();
        let id2 = id.to_string();
        let mut facts =
            tokio::task::spawn_blocking(move || orphans::observe_one(&roots, &id2, &cg_path))
                .await
                .unwrap_or_default();
        if let Some(net) = self.network_if_open() {
            if !net.endpoints(id).await.is_empty() {
                facts.endpoints.insert(id.to_string());
            }
        }
        let actions: Vec<Action> = orphans::plan(&self.roots(), &[], &facts, Mode::Startup)
            .into_iter()
            .filter(|a| !matches!(a, Action::RemoveStateDir { .. }))
            .collect();
        for (a, res) in actions.iter().zip(self.apply(&actions).await) {
            if let Err(e) = res {
                let (kind, what, place) = a.finding();
                tracing::warn!(container_id = %id, kind, what, place, error = %e, "remove");
            }
        }
    }

    /// `POST /berth/system/check`: findings (kind, what, where) and, with `repair`, whether
    /// each was repaired. Blobs and snapshots no image needs come from the store's GC.
    pub async fn system_check(&self, repair: bool) -> ApiResult<CheckReport> {
        let (mut views, cgroups) = self.record_views(true);
        let facts = self.observe(cgroups).await;
        // Containers created while we looked own what we saw of them.
        let (after, _) = self.record_views(true);
        for v in after {
            if !views.iter().any(|x| x.id == v.id) {
                views.push(RecordView { busy: true, ..v });
            }
        }
        let actions = orphans::plan(&self.roots(), &views, &facts, Mode::Check);
        let results: Vec<Outcome> = if repair {
            self.apply(&actions).await
        } else {
            actions.iter().map(|_| Err(String::new())).collect()
        };
        let mut findings: Vec<CheckFinding> = actions
            .iter()
            .zip(results)
            .map(|(a, r)| {
                let (kind, what, place) = a.finding();
                CheckFinding {
                    kind: kind.to_string(),
                    what,
                    place,
                    repaired: r.is_ok(),
                    error: r.err().filter(|e| !e.is_empty()),
                }
            })
            .collect();
        if let Some(store) = self.inner.raw_store.clone() {
            let active = facts.builds_active;
            let garbage = tokio::task::spawn_blocking(move || {
                let g = store.garbage()?;
                if repair && !active && !g.is_empty() {
                    store.gc()?;
                    return Ok((g, true));
                }
                Ok((g, false))
            })
            .await
            .map_err(crate::error::DaemonError::from)?
            .map_err(|e: berth_store::StoreError| {
                crate::error::DaemonError::failed("check the image store", e)
            })?;
            let (g, repaired) = garbage;
            let blobs = g.blobs.iter().map(|p| ("blob", p, String::new()));
            let snaps = g.snapshots.iter().map(|(c, p)| ("snapshot", p, c.clone()));
            for (kind, path, chain) in blobs.chain(snaps) {
                let what = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let what = if chain.is_empty() { what } else { chain };
                findings.push(CheckFinding {
                    kind: kind.to_string(),
                    what,
                    place: path.display().to_string(),
                    repaired,
                    error: None,
                });
            }
        }
        let clean = findings.iter().all(|f| repair && f.repaired);
        Ok(CheckReport {
            clean: clean || findings.is_empty(),
            findings,
        })
    }

    /// Apply actions in order; one outcome per action.
    pub(crate) async fn apply(&self, actions: &[Action]) -> Vec<Outcome> {
        let mut out = Vec::with_capacity(actions.len());
        for a in actions {
            out.push(self.apply_one(a).await);
        }
        out
    }

    async fn apply_one(&self, a: &Action) -> Outcome {
        let cgroup_root = self.roots().cgroup_root;
        match a.clone() {
            Action::KillProcesses { cgroup, .. } => {
                blocking(move || {
                    freeze_and_kill(&cgroup_root, &cgroup);
                    Ok(())
                })
                .await
            }
            Action::KillShim { pid, .. } => blocking(move || stop_pid(pid)).await,
            Action::ReleaseEndpoints { id } => {
                self.ctr_release(&id, None).await;
                match self.network_if_open() {
                    Some(net) if !net.endpoints(&id).await.is_empty() => {
                        Err("endpoints are still connected".into())
                    }
                    _ => Ok(()),
                }
            }
            Action::RemoveNetns { path, .. } => {
                blocking(move || {
                    berth_network::netlink::remove_netns(&path).map_err(|e| e.to_string())
                })
                .await
            }
            Action::DeleteVeth { name, .. } => {
                let h = berth_network::netlink::connect()
                    .await
                    .map_err(|e| e.to_string())?;
                berth_network::netlink::delete_link(&h, &name)
                    .await
                    .map_err(|e| e.to_string())
            }
            Action::Unmount { path, .. } => {
                blocking(move || {
                    match rustix::mount::unmount(&path, rustix::mount::UnmountFlags::DETACH) {
                        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {
                            Ok(())
                        }
                        Err(e) => Err(format!("unmount {}: {e}", path.display())),
                    }
                })
                .await
            }
            Action::RemoveCgroup { dirs, .. } => blocking(move || remove_cgroup_dirs(&dirs)).await,
            Action::RemoveRuntimeState { dir, .. }
            | Action::RemoveBuildFile { path: dir, .. }
            | Action::RemoveStateDir { dir, .. } => blocking(move || remove_path(&dir)).await,
            Action::RemoveRwLayer { id, dir } => {
                let store = self.inner.raw_store.clone();
                blocking(move || {
                    if let Some(s) = store {
                        match s.remove_rw_layer(&id) {
                            Ok(()) => return Ok(()),
                            Err(berth_store::StoreError::RwLayerNotFound(_)) => {}
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    // No row in the store: a layer whose creation was cut short.
                    let _ = rustix::mount::unmount(
                        dir.join("merged"),
                        rustix::mount::UnmountFlags::DETACH,
                    );
                    remove_path(&dir)
                })
                .await
            }
            Action::UnreadableRecord { path, .. } => Err(format!(
                "cannot read {}: fix it or move the directory away, then restart the daemon",
                path.display()
            )),
            Action::RemoveContainer { id, .. } => {
                let ctr = self.inner.containers.get(&id).map_err(|e| e.to_string())?;
                {
                    let mut g = lock(&ctr.rec);
                    if g.state.status == Status::Removing {
                        g.state.status = Status::Dead;
                    }
                }
                Box::pin(self.ctr_remove(&ctr, true, true))
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// The cgroup path of a container (its `--cgroup-parent`, else `berth`).
pub(super) fn cgroup_of(r: &super::Record) -> String {
    let parent = r.host_config.cgroup_parent.as_deref();
    berth_runtime::spec::cgroup_path(parent.filter(|p| !p.is_empty()), &r.id)
}

async fn blocking(f: impl FnOnce() -> Outcome + Send + 'static) -> Outcome {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("repair task: {e}"))?
}

/// Freeze the cgroup (v1 freezer) so nothing in it can fork, SIGKILL every process in every
/// hierarchy, thaw so the kills land, and repeat until it is empty.
fn freeze_and_kill(cgroup_root: &Path, cg_path: &str) {
    let dirs = berth_runtime::cgroups::existing_dirs(cgroup_root, cg_path);
    for d in &dirs {
        let _ = std::fs::write(d.join("freezer.state"), "FROZEN");
    }
    berth_runtime::cgroups::kill_all(cgroup_root, cg_path);
}

/// SIGKILL a process that should have gone by itself (a shim whose container died), after
/// giving it a moment to write its exit record. Waits on a pidfd: an auto-removed container's
/// shim is usually still finishing its cleanup here, and the removal goes on the moment it
/// exits rather than on the next tick of a sleep loop.
fn stop_pid(pid: i32) -> Outcome {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return Ok(());
    };
    if berth_runtime::await_exit(pid, Duration::from_secs(2)) {
        return Ok(());
    }
    match rustix::process::kill_process(p, rustix::process::Signal::KILL) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => return Err(format!("kill shim {pid}: {e}")),
    }
    // SIGKILL is delivered asynchronously: on a busy host the shim can still be running when
    // kill(2) returns. Report it done only once it is gone.
    if berth_runtime::await_exit(pid, Duration::from_secs(5)) {
        return Ok(());
    }
    Err(format!("shim {pid} still runs 5 s after SIGKILL"))
}

/// Remove cgroup dirs; a dir whose last task is still exiting is busy for a moment.
fn remove_cgroup_dirs(dirs: &[std::path::PathBuf]) -> Outcome {
    let mut last = Ok(());
    for _ in 0..50 {
        last = Ok(());
        for d in dirs {
            match std::fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => last = Err(format!("remove cgroup {}: {e}", d.display())),
            }
        }
        if last.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    last
}

fn remove_path(p: &Path) -> Outcome {
    let r = if p.is_dir() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    };
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("remove {}: {e}", p.display())),
    }
}
