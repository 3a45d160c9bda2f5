//! The host-side /dev/shm of a `shareable` IPC container (dockerd's `mounts/shm`): a tmpfs
//! under the container's directory, bound at its /dev/shm and at the /dev/shm of every
//! container joining its IPC namespace, so POSIX shared memory is shared as SysV IPC is.

use std::path::Path;

use berth_store::is_mountpoint as mounted;
use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

/// Mount the tmpfs at `dir` (`size` bytes, mode 1777) unless it is there already (a restart
/// of the same container keeps its shared memory, as dockerd does).
pub(crate) fn ensure(dir: &Path, size: u64) -> std::io::Result<()> {
    fs_err::create_dir_all(dir)?;
    if mounted(dir) {
        return Ok(());
    }
    let data = std::ffi::CString::new(format!("mode=1777,size={size}"))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    mount(
        "shm",
        dir,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        Some(data.as_c_str()),
    )?;
    Ok(())
}

/// Unmount it (lazily: a joiner still running keeps its own bind of it).
pub(crate) fn release(dir: &Path) {
    if mounted(dir) {
        if let Err(e) = unmount(dir, UnmountFlags::DETACH) {
            tracing::warn!(path = %dir.display(), error = %e, "cannot unmount the container's shm");
        }
    }
}
