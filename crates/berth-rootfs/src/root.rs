//! The root handle: a directory opened once, every lookup below it resolved by the kernel with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so `..`, absolute symlinks and symlinked
//! parents are clamped inside it the way a process chrooted there would see them.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};

/// The resolve flags of every lookup below a root.
pub fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// A directory every path is resolved inside of.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    /// Where it was opened (messages only; never used to reach the directory again).
    path: PathBuf,
}

impl Root {
    /// Open `path` as an `O_PATH` root: enough to resolve, read and create below it.
    pub fn open(path: &Path) -> io::Result<Root> {
        Self::open_with(path, OFlags::PATH)
    }

    /// Open `path` readable, so the root directory itself can be chowned, chmodded and given
    /// xattrs (the layer applier sets the root's metadata from a `./` entry).
    pub fn open_readable(path: &Path) -> io::Result<Root> {
        Self::open_with(path, OFlags::RDONLY)
    }

    fn open_with(path: &Path, flags: OFlags) -> io::Result<Root> {
        let fd = rfs::open(
            path,
            flags | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// A root from a directory fd already resolved inside another root (the caller opened it
    /// with `openat2(RESOLVE_IN_ROOT)`); `path` is where it lies, for messages only.
    pub fn from_fd(fd: OwnedFd, path: PathBuf) -> Root {
        Root { fd, path }
    }

    /// The directory fd itself.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// The directory `rel` below this root (symlinks followed inside it), as a root of its own,
    /// opened readable. Nothing is reopened by path: the new root is the fd `openat2` returned.
    pub fn sub(&self, rel: impl AsRef<OsStr>) -> io::Result<Root> {
        let rel = rel.as_ref();
        let fd = self.open_at(rel, OFlags::RDONLY | OFlags::DIRECTORY)?;
        Ok(Root {
            fd,
            path: self.path.join(rel),
        })
    }

    /// Where the root was opened (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Open `rel` (relative; `""` is the root itself) with `flags | O_CLOEXEC`, resolved inside
    /// the root.
    pub fn open_at(&self, rel: impl AsRef<OsStr>, flags: OFlags) -> io::Result<OwnedFd> {
        Ok(self.open_at_errno(rel.as_ref(), flags)?)
    }

    /// [`Root::open_at`] keeping the raw errno (callers that branch on `ENOENT`).
    pub fn open_at_errno(&self, rel: &OsStr, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let rel = if rel.is_empty() { OsStr::new(".") } else { rel };
        rfs::openat2(
            &self.fd,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            in_root(),
        )
    }

    /// Open the directory made of `comps` (joined with `/`) below the root.
    pub fn open_dir<S: AsRef<OsStr>>(&self, comps: &[S], flags: OFlags) -> io::Result<OwnedFd> {
        self.open_at(join(comps), flags | OFlags::DIRECTORY)
    }
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Components joined with `/` (`.` for none).
pub(crate) fn join<S: AsRef<OsStr>>(comps: &[S]) -> std::ffi::OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut s = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            s.push(b'/');
        }
        s.extend_from_slice(c.as_ref().as_bytes());
    }
    if s.is_empty() {
        s.push(b'.');
    }
    std::ffi::OsString::from_vec(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_clamped_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), b"inside").unwrap();
        std::fs::write(t.path().join("passwd"), b"outside").unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("etc/dots")).unwrap();
        let r = Root::open(&root).unwrap();
        let read = |rel: &str| {
            let fd = r.open_at(rel, OFlags::RDONLY).unwrap();
            std::fs::read_to_string(format!("/proc/self/fd/{}", {
                use std::os::fd::AsRawFd;
                fd.as_raw_fd()
            }))
            .unwrap()
        };
        assert_eq!(read("/etc/passwd"), "inside");
        assert_eq!(read("../../etc/passwd"), "inside");
        assert_eq!(read("up/etc/passwd"), "inside");
        assert_eq!(read("etc/dots/etc/passwd"), "inside");
        assert!(r.open_at("../passwd", OFlags::RDONLY).is_err());
        let sub = r.sub("etc").unwrap();
        assert!(sub.path().ends_with("root/etc"));
        assert!(sub.open_at("passwd", OFlags::RDONLY).is_ok());
        assert!(r.open_dir(&["etc"], OFlags::PATH).is_ok());
        assert!(r.open_dir(&["etc", "passwd"], OFlags::PATH).is_err());
    }
}
