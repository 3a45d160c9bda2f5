//! Writes into a build step's mounted rootfs for COPY/ADD/WORKDIR: every path is resolved
//! inside the [`Root`] (`openat2(RESOLVE_IN_ROOT)`) so symlinks in the image can never lead a
//! write outside it; files, dirs and links keep their modes; ADD extracts local archives
//! through the layer applier rooted at the destination directory's fd.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use berth_rootless::IdMapping;

use crate::error::unmapped_owner;
use crate::root::Root;

/// Owner applied to what a step writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// A rootfs opened for confined writes. Owners given to it are container ids, stored shifted
/// by its [`IdMapping`] (`--userns-remap`; identity unless [`RootWriter::mapped`]).
pub struct RootWriter {
    root: Root,
    ids: IdMapping,
}

fn uid(u: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(u)
}
fn gid(g: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(g)
}

fn split(rel: &str) -> (&str, &str) {
    let rel = rel.trim_matches('/');
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    }
}

/// An error saying what failed on which path inside the root (`copy /a/b: …`).
pub fn io_ctx(what: &str, rel: &str, e: impl Into<io::Error>) -> io::Error {
    let e: io::Error = e.into();
    io::Error::new(
        e.kind(),
        format!("{what} /{}: {e}", rel.trim_start_matches('/')),
    )
}

impl RootWriter {
    pub fn open(root: &Path) -> io::Result<RootWriter> {
        Ok(RootWriter {
            root: Root::open(root)?,
            ids: IdMapping::identity(),
        })
    }

    /// Store every owner shifted by `ids` (container ids → host ids).
    pub fn mapped(mut self, ids: IdMapping) -> RootWriter {
        self.ids = ids;
        self
    }

    /// `owner` as the host stores it: (uid, gid) for chown.
    fn host(&self, owner: Owner, rel: &str) -> io::Result<(rustix::fs::Uid, rustix::fs::Gid)> {
        let (u, g) = self.ids.to_host(owner.uid, owner.gid).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("/{}: {e}", rel.trim_start_matches('/')),
            )
        })?;
        Ok((uid(u), gid(g)))
    }

    /// The root written into.
    pub fn root(&self) -> &Root {
        &self.root
    }

    fn open_in(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        self.root
            .open_at_errno(OsStr::new(rel.trim_matches('/')), flags)
    }

    /// Whether `rel` (symlinks followed inside the root) is a directory.
    pub fn is_dir(&self, rel: &str) -> bool {
        self.open_in(rel, OFlags::PATH | OFlags::DIRECTORY).is_ok()
    }

    /// Whether something exists at `rel` (the last component not followed).
    pub fn exists(&self, rel: &str) -> bool {
        let (dir, name) = split(rel);
        if name.is_empty() {
            return true;
        }
        match self.open_in(dir, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(d) => rustix::fs::statat(&d, name, AtFlags::SYMLINK_NOFOLLOW).is_ok(),
            Err(_) => false,
        }
    }

    /// `mkdir -p` inside the root; new dirs get `mode` and `owner`. Returns an O_PATH fd.
    pub fn mkdir_all(&self, rel: &str, mode: u32, owner: Owner) -> io::Result<OwnedFd> {
        let rel = rel.trim_matches('/');
        if let Ok(fd) = self.open_in(rel, OFlags::PATH | OFlags::DIRECTORY) {
            return Ok(fd);
        }
        let mut cur = String::new();
        for c in rel.split('/').filter(|c| !c.is_empty()) {
            let parent = self
                .open_in(&cur, OFlags::PATH | OFlags::DIRECTORY)
                .map_err(|e| io_ctx("open", &cur, e))?;
            let next = if cur.is_empty() {
                c.to_string()
            } else {
                format!("{cur}/{c}")
            };
            match self.open_in(&next, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(_) => {}
                Err(Errno::NOENT) => {
                    // A dangling symlink is not a dir: replace nothing, report it.
                    if rustix::fs::statat(&parent, c, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                        return Err(io_ctx("mkdir", &next, io::Error::from(Errno::EXIST)));
                    }
                    rustix::fs::mkdirat(&parent, c, Mode::from_raw_mode(mode))
                        .map_err(|e| io_ctx("mkdir", &next, e))?;
                    let (u, g) = self.host(owner, &next)?;
                    rustix::fs::chownat(&parent, c, Some(u), Some(g), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| {
                            io_ctx("chown", &next, unmapped_owner(owner.uid, owner.gid)(e))
                        })?;
                    let d = self
                        .open_in(&next, OFlags::RDONLY | OFlags::DIRECTORY)
                        .map_err(|e| io_ctx("open", &next, e))?;
                    rustix::fs::fchmod(&d, Mode::from_raw_mode(mode))
                        .map_err(|e| io_ctx("chmod", &next, e))?;
                }
                Err(e) => return Err(io_ctx("open", &next, e)),
            }
            cur = next;
        }
        self.open_in(rel, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| io_ctx("open", rel, e))
    }

    /// Remove a non-directory at `name` in `dir` so something else can take its place.
    fn clear(&self, dir: &OwnedFd, name: &str, rel: &str) -> io::Result<()> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if (st.st_mode & 0o170000) == 0o040000 => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("cannot overwrite directory /{rel} with a non-directory"),
            )),
            Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty())
                .map_err(|e| io_ctx("remove", rel, e)),
            Err(_) => Ok(()),
        }
    }

    /// Write a regular file from `src` (or `data`).
    pub fn write_file(
        &self,
        rel: &str,
        content: &mut dyn Read,
        mode: u32,
        owner: Owner,
    ) -> io::Result<()> {
        let (dir, name) = split(rel);
        let d = self.mkdir_all(dir, 0o755, Owner::default())?;
        self.clear(&d, name, rel)?;
        let fd = rustix::fs::openat(
            &d,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_ctx("create", rel, e))?;
        let mut f = File::from(fd);
        io::copy(content, &mut f).map_err(|e| io_ctx("write", rel, e))?;
        f.flush()?;
        let (u, g) = self.host(owner, rel)?;
        rustix::fs::fchown(f.as_fd(), Some(u), Some(g))
            .map_err(|e| io_ctx("chown", rel, unmapped_owner(owner.uid, owner.gid)(e)))?;
        rustix::fs::fchmod(f.as_fd(), Mode::from_raw_mode(mode))
            .map_err(|e| io_ctx("chmod", rel, e))?;
        Ok(())
    }

    /// Set the access and modification time of `rel` (not following a final symlink).
    pub fn set_mtime(&self, rel: &str, secs: i64) -> io::Result<()> {
        let (dir, name) = split(rel);
        let d = self
            .open_in(dir, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| io_ctx("open", dir, e))?;
        let t = rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        let times = rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        };
        rustix::fs::utimensat(&d, name, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_ctx("set mtime of", rel, e))
    }

    pub fn symlink(&self, rel: &str, target: &str, owner: Owner) -> io::Result<()> {
        let (dir, name) = split(rel);
        let d = self.mkdir_all(dir, 0o755, Owner::default())?;
        self.clear(&d, name, rel)?;
        rustix::fs::symlinkat(target, &d, name).map_err(|e| io_ctx("symlink", rel, e))?;
        let (u, g) = self.host(owner, rel)?;
        rustix::fs::chownat(&d, name, Some(u), Some(g), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_ctx("chown", rel, unmapped_owner(owner.uid, owner.gid)(e)))
    }

    /// Make `rel` a directory (creating parents), then set its mode and owner.
    pub fn dir(&self, rel: &str, mode: u32, owner: Owner) -> io::Result<()> {
        self.mkdir_all(rel, mode, owner)?;
        let d = self
            .open_in(rel, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|e| io_ctx("open", rel, e))?;
        let (u, g) = self.host(owner, rel)?;
        rustix::fs::fchown(&d, Some(u), Some(g))
            .map_err(|e| io_ctx("chown", rel, unmapped_owner(owner.uid, owner.gid)(e)))?;
        rustix::fs::fchmod(&d, Mode::from_raw_mode(mode)).map_err(|e| io_ctx("chmod", rel, e))
    }

    /// Make `rel` a hard link to `first` (both inside the root; parents created).
    pub fn hardlink(&self, rel: &str, first: &str) -> io::Result<()> {
        let (dir, name) = split(rel);
        let (fdir, fname) = split(first);
        let d = self.mkdir_all(dir, 0o755, Owner::default())?;
        let fd = self.mkdir_all(fdir, 0o755, Owner::default())?;
        self.clear(&d, name, rel)?;
        rustix::fs::linkat(&fd, fname, &d, name, AtFlags::empty())
            .map_err(|e| io_ctx("link", rel, e))
    }

    /// Extract an archive (tar, optionally gzip/zstd) into directory `dest` through the
    /// confined layer applier, rooted at the directory's fd (never reopened by path).
    pub fn extract(&self, dest: &str, archive: &Path) -> io::Result<()> {
        let f = File::open(archive)?;
        self.extract_from(dest, f)
    }

    /// [`RootWriter::extract`] from a stream.
    pub fn extract_from(&self, dest: &str, archive: impl Read) -> io::Result<()> {
        let d = self.mkdir_all(dest, 0o755, Owner::default())?;
        let dfd = self
            .open_in(dest, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|e| io_ctx("open", dest, e))?;
        drop(d);
        let root = Root::from_fd(dfd, self.root.path().join(dest.trim_start_matches('/')));
        let r = crate::apply::decompressed(archive)?;
        crate::apply::apply_layer_in_mapped(&root, "ADD archive", r, &self.ids)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(())
    }
}

/// Whether `path` holds a tar archive, plain or compressed, as ADD decides whether to
/// extract: dockerd's test, the (decompressed) stream starts with a valid tar header. A
/// compressed file that is not a tar inside, or text that merely looks like one, is copied.
pub fn is_archive(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let Ok(mut r) = crate::apply::decompressed(f) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return false,
        }
    }
    crate::apply::is_tar_header(&head[..n])
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::is_archive;

    fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn archives_are_tars_behind_any_compression_dockerd_reads() {
        let d = tempfile::tempdir().unwrap();
        let tar = tar_of("f", b"x");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&tar).unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&tar).unwrap();
        let mut gz_text = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz_text.write_all(b"just text, not a tar\n").unwrap();
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("a.tar", tar.clone(), true),
            ("a.tar.gz", gz.finish().unwrap(), true),
            ("a.tar.bz2", bz.finish().unwrap(), true),
            ("a.tar.xz", xz.finish().unwrap(), true),
            ("a.tar.zst", zstd::encode_all(&tar[..], 1).unwrap(), true),
            ("text.gz", gz_text.finish().unwrap(), false),
            ("text", b"hello\n".to_vec(), false),
            ("zeros", vec![0; 1024], false),
        ];
        for (name, bytes, want) in cases {
            let p = d.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            assert_eq!(is_archive(&p), want, "{name}");
        }
    }
}
