//! The storage driver of a store, chosen once when the daemon starts: how containers' overlays
//! are mounted (kernel overlayfs, or fuse-overlayfs where a user namespace may not mount it)
//! and which xattr namespace layers mark opaque directories in ([`OverlayXattrs`]). The
//! probe that picks one for a rootless daemon is here too.

use std::ffi::CString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_rootfs::OverlayXattrs;
use rustix::mount::{MountFlags, UnmountFlags};

/// What mounts a container's overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mounter {
    /// mount(2) of the kernel's overlayfs.
    Kernel,
    /// The `fuse-overlayfs` program (a FUSE filesystem; unmounted with umount(2) as well).
    Fuse,
}

/// A store's storage driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageDriver {
    pub mounter: Mounter,
    pub xattrs: OverlayXattrs,
}

/// The fuse-overlayfs program, looked up on PATH.
pub const FUSE_OVERLAYFS: &str = "fuse-overlayfs";

impl Default for StorageDriver {
    fn default() -> Self {
        StorageDriver::ROOTFUL
    }
}

impl StorageDriver {
    /// Real root: kernel overlayfs, `trusted.overlay.*`.
    pub const ROOTFUL: StorageDriver = StorageDriver {
        mounter: Mounter::Kernel,
        xattrs: OverlayXattrs::Trusted,
    };
    /// A user namespace's kernel overlayfs (`userxattr`, Linux 5.11+).
    pub const USERNS_KERNEL: StorageDriver = StorageDriver {
        mounter: Mounter::Kernel,
        xattrs: OverlayXattrs::User,
    };
    /// fuse-overlayfs in a user namespace (it reads `user.overlay.*` too).
    pub const USERNS_FUSE: StorageDriver = StorageDriver {
        mounter: Mounter::Fuse,
        xattrs: OverlayXattrs::User,
    };

    /// The name `docker info` shows (dockerd's: `overlay2`, `fuse-overlayfs`).
    pub fn name(self) -> &'static str {
        match self.mounter {
            Mounter::Kernel => "overlay2",
            Mounter::Fuse => FUSE_OVERLAYFS,
        }
    }
}

/// What a daemon asked for (`--storage-driver`, daemon.json's `storage-driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverRequest {
    /// Nothing named: kernel overlayfs, falling back to fuse-overlayfs in a user namespace
    /// that refuses it.
    Auto,
    Overlay2,
    FuseOverlayfs,
}

/// Why no storage driver can be used; each message says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DriverError {
    #[error("unknown storage driver {0:?}: berth has overlay2 and fuse-overlayfs (rootless mode)")]
    Unknown(String),
    #[error(
        "storage driver fuse-overlayfs is for rootless mode; a daemon run as root uses overlay2"
    )]
    FuseNeedsRootless,
    #[error(
        "overlayfs cannot be mounted in this user namespace ({kernel}) and fuse-overlayfs is \
         not installed: install it (apt-get install fuse-overlayfs), or use a kernel of 5.11 \
         or later"
    )]
    NoOverlay { kernel: String },
    #[error("storage driver fuse-overlayfs: fuse-overlayfs not found; install it (apt-get install fuse-overlayfs)")]
    NoFuseOverlayfs,
    #[error(
        "storage driver overlay2 cannot be mounted in this user namespace ({kernel}); use \
         fuse-overlayfs (--storage-driver fuse-overlayfs) or a kernel of 5.11 or later"
    )]
    Overlay2Refused { kernel: String },
}

impl DriverRequest {
    /// Parse a driver name; the empty string is [`DriverRequest::Auto`].
    pub fn parse(name: &str) -> Result<DriverRequest, DriverError> {
        match name {
            "" => Ok(DriverRequest::Auto),
            "overlay2" | "overlay" => Ok(DriverRequest::Overlay2),
            FUSE_OVERLAYFS => Ok(DriverRequest::FuseOverlayfs),
            other => Err(DriverError::Unknown(other.to_string())),
        }
    }
}

/// What the host offers a rootless daemon (the probe's findings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStorage {
    /// Kernel overlayfs with `userxattr` mounted here; the error otherwise.
    pub kernel_overlay: Result<(), String>,
    pub fuse_overlayfs: bool,
}

/// The driver for a request (pure). A daemon run as root always has kernel overlayfs with
/// trusted xattrs (`host` is not consulted).
pub fn choose(
    req: DriverRequest,
    rootless: bool,
    host: &HostStorage,
) -> Result<StorageDriver, DriverError> {
    if !rootless {
        return match req {
            DriverRequest::FuseOverlayfs => Err(DriverError::FuseNeedsRootless),
            _ => Ok(StorageDriver::ROOTFUL),
        };
    }
    match (req, &host.kernel_overlay, host.fuse_overlayfs) {
        (DriverRequest::FuseOverlayfs, _, true) => Ok(StorageDriver::USERNS_FUSE),
        (DriverRequest::FuseOverlayfs, _, false) => Err(DriverError::NoFuseOverlayfs),
        (_, Ok(()), _) => Ok(StorageDriver::USERNS_KERNEL),
        (DriverRequest::Overlay2, Err(e), _) => {
            Err(DriverError::Overlay2Refused { kernel: e.clone() })
        }
        (DriverRequest::Auto, Err(_), true) => Ok(StorageDriver::USERNS_FUSE),
        (DriverRequest::Auto, Err(e), false) => Err(DriverError::NoOverlay { kernel: e.clone() }),
    }
}

/// Probe the host for a rootless daemon: an overlay mount with `userxattr` in a scratch
/// directory under `scratch` (on the store's filesystem; removed again), and fuse-overlayfs
/// on PATH (only looked for when `want_fuse` or the kernel mount is refused).
pub fn probe(scratch: &Path, want_fuse: bool) -> HostStorage {
    use rustix::io::Errno;
    let kernel_overlay =
        probe_kernel_overlay(scratch).map_err(|e| match Errno::from_io_error(&e) {
            Some(Errno::PERM) => "overlayfs refused: operation not permitted".to_string(),
            Some(Errno::INVAL) => "overlayfs refused userxattr: invalid argument".to_string(),
            _ => format!("overlayfs mount failed: {e}"),
        });
    let fuse_overlayfs = (want_fuse || kernel_overlay.is_err()) && on_path(FUSE_OVERLAYFS);
    HostStorage {
        kernel_overlay,
        fuse_overlayfs,
    }
}

fn probe_kernel_overlay(scratch: &Path) -> io::Result<()> {
    let dir = scratch.join(format!("overlay-probe-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let [lower, upper, work, merged]: [PathBuf; 4] =
        ["lower", "upper", "work", "merged"].map(|d| dir.join(d));
    let res = (|| {
        for d in [&lower, &upper, &work, &merged] {
            fs::create_dir_all(d)?;
        }
        let data = CString::new(format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            lower.display(),
            upper.display(),
            work.display()
        ))?;
        rustix::mount::mount(
            "overlay",
            &merged,
            "overlay",
            MountFlags::empty(),
            data.as_c_str(),
        )?;
        let _ = rustix::mount::unmount(&merged, UnmountFlags::DETACH);
        Ok(())
    })();
    let _ = fs::remove_dir_all(&dir);
    res
}

/// Whether `prog` is an executable file in a PATH directory.
pub fn on_path(prog: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p).any(|d| {
                fs::metadata(d.join(prog))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(kernel: bool, fuse: bool) -> HostStorage {
        HostStorage {
            kernel_overlay: if kernel {
                Ok(())
            } else {
                Err("overlayfs refused: operation not permitted".into())
            },
            fuse_overlayfs: fuse,
        }
    }

    #[test]
    fn names_parse_and_unknown_ones_are_refused() {
        assert_eq!(DriverRequest::parse(""), Ok(DriverRequest::Auto));
        assert_eq!(
            DriverRequest::parse("overlay2"),
            Ok(DriverRequest::Overlay2)
        );
        assert_eq!(DriverRequest::parse("overlay"), Ok(DriverRequest::Overlay2));
        assert_eq!(
            DriverRequest::parse("fuse-overlayfs"),
            Ok(DriverRequest::FuseOverlayfs)
        );
        let e = DriverRequest::parse("vfs").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown storage driver \"vfs\": berth has overlay2 and fuse-overlayfs (rootless mode)"
        );
    }

    #[test]
    fn root_always_gets_kernel_overlay_with_trusted_xattrs() {
        for req in [DriverRequest::Auto, DriverRequest::Overlay2] {
            assert_eq!(
                choose(req, false, &host(false, false)),
                Ok(StorageDriver::ROOTFUL)
            );
        }
        assert_eq!(
            choose(DriverRequest::FuseOverlayfs, false, &host(true, true)),
            Err(DriverError::FuseNeedsRootless)
        );
        assert_eq!(StorageDriver::ROOTFUL.name(), "overlay2");
    }

    #[test]
    fn rootless_prefers_the_kernel_and_falls_back_to_fuse() {
        let auto = DriverRequest::Auto;
        assert_eq!(
            choose(auto, true, &host(true, true)),
            Ok(StorageDriver::USERNS_KERNEL)
        );
        assert_eq!(
            choose(auto, true, &host(false, true)),
            Ok(StorageDriver::USERNS_FUSE)
        );
        let e = choose(auto, true, &host(false, false)).unwrap_err();
        assert!(
            e.to_string().contains("apt-get install fuse-overlayfs")
                && e.to_string().contains("operation not permitted"),
            "{e}"
        );
        // Forced choices.
        assert_eq!(
            choose(DriverRequest::FuseOverlayfs, true, &host(true, true)),
            Ok(StorageDriver::USERNS_FUSE)
        );
        assert_eq!(
            choose(DriverRequest::FuseOverlayfs, true, &host(true, false)),
            Err(DriverError::NoFuseOverlayfs)
        );
        assert!(matches!(
            choose(DriverRequest::Overlay2, true, &host(false, true)),
            Err(DriverError::Overlay2Refused { .. })
        ));
        assert_eq!(StorageDriver::USERNS_FUSE.name(), "fuse-overlayfs");
        assert_eq!(StorageDriver::USERNS_KERNEL.xattrs, OverlayXattrs::User);
    }
}
