//! After the container: the atomic exit record, state/cgroup cleanup, and recovery of a
//! container whose shim died.

use std::path::Path;

use libcontainer::container::Container;

use crate::cgroups;
use crate::error::{Error, Result};
use crate::protocol::ExitInfo;
use crate::shim::{load_config, ShimConfig, EXIT_FILE, SOCKET};
use crate::spec;
use crate::sys;

pub(crate) fn cleanup_state(cfg: &ShimConfig) {
    let root = cfg.state_root.join(&cfg.spec.id);
    // A rootless daemon's private cgroup goes first, so libcontainer finds nothing to remove.
    let cg_root = Path::new(cgroups::CGROUP_ROOT);
    if berth_rootless::cgroup::private_tree_active(cg_root) {
        let cg = spec::cgroup_path(cfg.spec.cgroup_parent.as_deref(), &cfg.spec.id);
        berth_rootless::cgroup::release(cg_root, &cg);
    }
    if let Ok(mut ct) = Container::load(root.clone()) {
        let _ = ct.delete(true);
    }
    let _ = std::fs::remove_dir_all(&root);
    cgroups::remove_dirs(
        Path::new(cgroups::CGROUP_ROOT),
        &spec::cgroup_path(cfg.spec.cgroup_parent.as_deref(), &cfg.spec.id),
    );
}

/// In a rootless daemon on a cgroup v1 host, the container's directories in the private
/// cgroup tree (berth-rootless), made before libcontainer puts the container there.
pub(crate) fn rootless_cgroup_prepare(cfg: &ShimConfig) -> Result<()> {
    let cg_root = Path::new(cgroups::CGROUP_ROOT);
    if !berth_rootless::cgroup::private_tree_active(cg_root) {
        return Ok(());
    }
    let cg = spec::cgroup_path(cfg.spec.cgroup_parent.as_deref(), &cfg.spec.id);
    berth_rootless::cgroup::prepare(cg_root, &cg).map_err(|e| {
        Error::io(
            "prepare the rootless cgroup",
            cg_root.join(cg.trim_start_matches('/')),
            e,
        )
    })
}

/// Write `<dir>/exit.json` atomically (berth-rootfs's crash-safe write: unique temp, fsync,
/// rename, fsync dir).
pub fn write_exit(dir: &Path, info: &ExitInfo) -> Result<()> {
    write_exit_with(dir, info, true)
}

/// [`write_exit`], with the fsync only when `durable`: an auto-removed container's record is
/// deleted moments later, and after a power loss it is removed whatever its exit code was.
pub(crate) fn write_exit_with(dir: &Path, info: &ExitInfo, durable: bool) -> Result<()> {
    let dst = dir.join(EXIT_FILE);
    let opts = berth_rootfs::atomic::Options {
        durable,
        ..Default::default()
    };
    let bytes = serde_json::to_vec(info).expect("exit info serializes");
    berth_rootfs::atomic::write_atomic_with(&dst, &bytes, opts)
        .map_err(|e| Error::io("write exit status", &dst, e))
}

/// Kill and delete a container whose shim died; records a "shim died" exit (137) if none was
/// written. Safe to call when nothing is left.
pub fn cleanup_orphan(dir: &Path) -> Result<ExitInfo> {
    if let Ok(text) = std::fs::read(dir.join(EXIT_FILE)) {
        if let Ok(info) = serde_json::from_slice::<ExitInfo>(&text) {
            return Ok(info);
        }
    }
    let cfg = load_config(dir)?;
    let cg = spec::cgroup_path(cfg.spec.cgroup_parent.as_deref(), &cfg.spec.id);
    if let Ok(mut ct) = Container::load(cfg.state_root.join(&cfg.spec.id)) {
        let _ = ct.kill(nix::sys::signal::Signal::SIGKILL, true);
    }
    // Kill anything still in the cgroup (v1 pids/freezer/memory or v2), then wait for it to empty.
    sys::kill_cgroup(Path::new(cgroups::CGROUP_ROOT), &cg);
    cleanup_state(&cfg);
    let info = ExitInfo {
        exit_code: 137,
        oom_killed: cgroups::oom_kills(Path::new(cgroups::CGROUP_ROOT), &cg) > 0,
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        shim_died: true,
    };
    write_exit(dir, &info)?;
    let _ = std::fs::remove_file(dir.join(SOCKET));
    Ok(info)
}
