//! The container's working directory, made before start as dockerd does: a missing `-w` or
//! image `WORKDIR` is created (0755, the container's root owns it) inside the rootfs, symlinks
//! resolved as the container sees them; an existing non-directory is refused with dockerd's
//! message.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::DaemonError;

/// Create `workdir` (a container path) below `rootfs` where it is missing, owned by `root` (the
/// container's root on the host: 0:0, or the remapped one). An empty or `/` working directory
/// needs nothing.
pub(super) fn ensure(rootfs: &Path, workdir: &str, root: (u32, u32)) -> Result<(), DaemonError> {
    if workdir.is_empty() || workdir == "/" {
        return Ok(());
    }
    let host = berth_runtime::pathutil::resolve_in_root(rootfs, workdir).ok_or_else(|| {
        DaemonError::Invalid(format!(
            "cannot create working directory {workdir}: too many levels of symbolic links"
        ))
    })?;
    let rel = host.strip_prefix(rootfs).map_err(|_| {
        DaemonError::Invalid(format!(
            "working directory {workdir} resolves outside the container"
        ))
    })?;
    let mut at = PathBuf::from(rootfs);
    for c in rel.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(DaemonError::Invalid(format!(
                    "Cannot mkdir: {workdir} is not a directory"
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(|e| mkdir_err(workdir, e))?;
                // The daemon's umask must not decide the mode: Docker makes it 0755.
                std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| mkdir_err(workdir, e))?;
                if root != (0, 0) {
                    std::os::unix::fs::lchown(&at, Some(root.0), Some(root.1))
                        .map_err(|e| mkdir_err(workdir, e))?;
                }
            }
            Err(e) => return Err(mkdir_err(workdir, e)),
        }
    }
    Ok(())
}

fn mkdir_err(workdir: &str, e: std::io::Error) -> DaemonError {
    DaemonError::io(format!("cannot create working directory {workdir}"), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_missing_dirs_root_0755_through_symlinks() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/real", root.path().join("link")).unwrap();
        ensure(root.path(), "/link/a/b", (0, 0)).unwrap();
        let made = root.path().join("real/a/b");
        let m = std::fs::metadata(&made).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.permissions().mode() & 0o7777, 0o755);
        // Idempotent.
        ensure(root.path(), "/link/a/b", (0, 0)).unwrap();
    }

    #[test]
    fn under_userns_remap_new_dirs_belong_to_the_remapped_root() {
        if !berth_testutil::require_root("under_userns_remap_new_dirs_belong_to_the_remapped_root")
        {
            return;
        }
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("srv")).unwrap();
        ensure(root.path(), "/srv/app", (100000, 100001)).unwrap();
        let m = std::fs::metadata(root.path().join("srv/app")).unwrap();
        assert_eq!((m.uid(), m.gid()), (100000, 100001));
        let m = std::fs::metadata(root.path().join("srv")).unwrap();
        assert_eq!(m.uid(), 0, "what existed keeps its owner");
    }

    #[test]
    fn a_file_in_the_way_is_refused_with_dockers_text() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), b"x").unwrap();
        let e = ensure(root.path(), "/f", (0, 0)).unwrap_err();
        assert!(
            e.to_string()
                .contains("Cannot mkdir: /f is not a directory"),
            "{e}"
        );
    }

    #[test]
    fn an_escaping_symlink_stays_in_the_rootfs() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("../../../../x", root.path().join("up")).unwrap();
        ensure(root.path(), "/up/w", (0, 0)).unwrap();
        assert!(root.path().join("x/w").is_dir());
    }
}
