//! docker cp / diff / export over a container's root filesystem, never leaving it.
//!
//! Every function takes the container's rootfs (the merged overlay dir, mounted by the store
//! also for a stopped container) and its volume/bind mounts. A container path is first mapped
//! to the mount that holds it (longest destination prefix), then resolved *inside* that root
//! with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so `..`, absolute symlinks and
//! symlinked parents are clamped the way the container itself sees them (CVE-2018-15664,
//! CVE-2019-14271). The last component is never followed when reading (a symlink is archived
//! as a symlink), and every further step of a tree walk is an `*at` call with `O_NOFOLLOW` on
//! an already-open directory, so a concurrent swap of a directory for a symlink cannot
//! redirect it. Extraction goes through the layer applier ([`crate::apply`]) rooted at the
//! resolved destination directory (a [`Root`] made from the resolved fd, never reopened by
//! path): entries climbing out with `..` are rejected, symlinks inside the tar
//! resolve inside the destination.
//!
//! Paths under a mount (volume or bind, from the container's recorded runtime mounts) resolve
//! in the mount's source, symlinks are followed across mounts as the container would (pure
//! plan in `paths.rs`), archives descend into mount points, and a copied-in tar is
//! split by the root each entry lands in, refusing read-only mounts (Docker's 403).
//!
//! Not done: tmpfs mounts are invisible (the rootfs under them is shown); a tar entry that
//! reaches a mount through a symlink the same tar created lands in the rootfs; copied names
//! starting with `.wh.` are refused (Docker creates them literally).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat};

use berth_rootless::IdMapping;

use crate::apply::{apply_layer_in_mapped, decompressed};
use crate::error::{Result, RootfsError};
use crate::root::Root;

mod paths;
use paths::{components, MountTable, Route};
mod tarw;
use tarw::{append_pax, pax_record, TarWriter};

pub use crate::diff::{changes, Change};

/// What `HEAD /containers/{id}/archive` reports of a path (the API's `PathStat` fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits (type bits in the high bits, as docker cp expects).
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    pub link_target: String,
}

/// A mount inside the container that file operations must honour (volumes, binds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsMount {
    /// Absolute path inside the container.
    pub destination: String,
    /// Host directory mounted there.
    pub source: PathBuf,
    pub read_only: bool,
}

/// The roots a container path can live in: the rootfs and each mount's source.
struct Roots<'a> {
    rootfs: &'a Path,
    mounts: &'a [FsMount],
    table: MountTable,
}

impl<'a> Roots<'a> {
    fn new(rootfs: &'a Path, mounts: &'a [FsMount]) -> Self {
        Roots {
            rootfs,
            mounts,
            table: MountTable::new(mounts.iter().map(|m| m.destination.as_str())),
        }
    }

    /// The root directory `m` (None: the rootfs) and, for a mounted *file*, its name in it.
    fn handle(&self, m: Option<usize>) -> Result<(Root, Option<OsString>)> {
        let Some(i) = m else {
            return Ok((open_root(self.rootfs)?, None));
        };
        let src = &self.mounts[i].source;
        if src.is_dir() {
            return Ok((open_root(src)?, None));
        }
        match (src.parent(), src.file_name()) {
            (Some(dir), Some(name)) => Ok((open_root(dir)?, Some(name.to_os_string()))),
            _ => Err(not_found(&self.mounts[i].destination)),
        }
    }

    fn read_only(&self, m: Option<usize>) -> bool {
        m.is_some_and(|i| self.mounts[i].read_only)
    }

    /// The target of `rel` in root `m` if it is a symlink (the resolver's callback).
    fn readlink(&self, m: Option<usize>, rel: &[String]) -> Option<String> {
        let (root, file) = self.handle(m).ok()?;
        if file.is_some() {
            return None;
        }
        let (last, dirs) = rel.split_last()?;
        let parent = open_dir_in(&root, dirs).ok()?;
        let t = rfs::readlinkat(&parent, last.as_str(), Vec::new()).ok()?;
        Some(t.to_string_lossy().into_owned())
    }

    /// `path` with its symlinks resolved as the container sees them (see [`MountTable::resolve`]).
    fn resolve(&self, path: &str, follow_last: bool) -> Result<Vec<String>> {
        self.table
            .resolve(path, follow_last, |m, rel| self.readlink(m, rel))
            .map_err(|e| RootfsError::Invalid(format!("container path {path}: {e}")))
    }
}

/// Open directory `dirs` below `root` (an `O_PATH` fd), resolved inside it.
fn open_dir_in(root: &Root, dirs: &[String]) -> io::Result<OwnedFd> {
    root.open_dir(dirs, OFlags::PATH)
}

fn not_found(path: &str) -> RootfsError {
    RootfsError::NotFound(format!(
        "Could not find the file {path} in container: no such file or directory"
    ))
}

fn io_at(path: &str, e: impl Into<io::Error>) -> RootfsError {
    let e: io::Error = e.into();
    if e.kind() == io::ErrorKind::NotFound {
        not_found(path)
    } else {
        RootfsError::op(format!("container path {path}"), e)
    }
}

fn open_root(root: &Path) -> Result<Root> {
    Root::open(root)
        .map_err(|e| RootfsError::op(format!("open container root {}", root.display()), e))
}

/// Resolved location of a path: its parent directory (in its root) and final name, or a root.
struct Resolved {
    parent: OwnedFd,
    /// None: the path is a root itself (the rootfs or a mounted directory).
    name: Option<OsString>,
    /// Container path of the parent (for symlink targets).
    parent_path: String,
    /// The resolved container path, as components.
    comps: Vec<String>,
}

fn resolve(roots: &Roots<'_>, path: &str, follow_last: bool) -> Result<Resolved> {
    let comps = roots.resolve(path, follow_last)?;
    let loc = roots.table.locate(&comps);
    let parent_path = format!("/{}", comps[..comps.len().saturating_sub(1)].join("/"));
    let (root, file) = roots.handle(loc.mount)?;
    let Some((last, dirs)) = loc.rel.split_last() else {
        return Ok(Resolved {
            parent: root.into_fd(),
            name: file,
            parent_path,
            comps,
        });
    };
    if file.is_some() {
        return Err(not_found(path));
    }
    let parent = open_dir_in(&root, dirs).map_err(|e| io_at(path, e))?;
    Ok(Resolved {
        parent,
        name: Some(OsString::from(last)),
        parent_path,
        comps,
    })
}

fn lstat(r: &Resolved) -> io::Result<Stat> {
    match &r.name {
        Some(n) => Ok(rfs::statat(
            &r.parent,
            n.as_os_str(),
            AtFlags::SYMLINK_NOFOLLOW,
        )?),
        None => Ok(rfs::fstat(&r.parent)?),
    }
}

/// Go's `os.FileMode` for a stat (docker cp decodes it).
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    if st_mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if st_mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if st_mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m | match FileType::from_raw_mode(st_mode) {
        FileType::Directory => 1 << 31,
        FileType::Symlink => 1 << 27,
        FileType::Fifo => 1 << 25,
        FileType::Socket => 1 << 24,
        FileType::BlockDevice => 1 << 26,
        FileType::CharacterDevice => (1 << 26) | (1 << 21),
        _ => 0,
    }
}

fn base_name(path: &str) -> String {
    if path.ends_with("/.") {
        return ".".into();
    }
    components(path)
        .last()
        .cloned()
        .unwrap_or_else(|| "/".into())
}

fn stat_of(r: &Resolved, st: &Stat, path: &str) -> PathStat {
    let mtime = chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default();
    let mut link_target = String::new();
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        if let Some(n) = &r.name {
            if let Ok(t) = rfs::readlinkat(&r.parent, n.as_os_str(), Vec::new()) {
                let t = t.to_string_lossy().into_owned();
                link_target = if t.starts_with('/') {
                    t
                } else {
                    format!(
                        "/{}",
                        components(&format!("{}/{t}", r.parent_path)).join("/")
                    )
                };
            }
        }
    }
    PathStat {
        name: base_name(path),
        size: st.st_size,
        mode: go_mode(st.st_mode),
        mtime,
        link_target,
    }
}

/// Make every mount's destination exist in the rootfs (directories, or an empty file for a
/// mounted file), as the runtime does at start and Docker does before copying into a created
/// container: a mount below a directory the image lacks (`/srv/vol` without `/srv`) is then
/// reachable by path. Everything is created inside the rootfs (`RESOLVE_IN_ROOT`).
pub fn ensure_mount_points(rootfs: &Path, mounts: &[FsMount]) -> Result<()> {
    let root = open_root(rootfs)?;
    for m in mounts {
        let comps = components(&m.destination);
        let Some((last, dirs)) = comps.split_last() else {
            continue;
        };
        if !m.source.exists() {
            continue; // a bind source removed on the host: nothing to make a point for
        }
        let what = || format!("create mount point {}", m.destination);
        for i in 0..dirs.len() {
            let parent = open_dir_in(&root, &dirs[..i]).map_err(|e| RootfsError::op(what(), e))?;
            mkdir_if_missing(&parent, &dirs[i]).map_err(|e| RootfsError::op(what(), e))?;
        }
        let parent = open_dir_in(&root, dirs).map_err(|e| RootfsError::op(what(), e))?;
        let r = if m.source.is_dir() {
            mkdir_if_missing(&parent, last)
        } else {
            match rfs::statat(&parent, last.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(_) => Ok(()),
                Err(_) => rfs::mknodat(
                    &parent,
                    last.as_str(),
                    FileType::RegularFile,
                    Mode::from_raw_mode(0o644),
                    0,
                )
                .map_err(io::Error::from),
            }
        };
        r.map_err(|e| RootfsError::op(what(), e))?;
    }
    Ok(())
}

/// `mkdirat` unless something (of any type) is already there.
fn mkdir_if_missing(parent: &OwnedFd, name: &str) -> io::Result<()> {
    match rfs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `HEAD /containers/{id}/archive`: stat a path (a final symlink is not followed).
pub fn stat(rootfs: &Path, mounts: &[FsMount], path: &str) -> Result<PathStat> {
    let r = resolve(&Roots::new(rootfs, mounts), path, false)?;
    let st = lstat(&r).map_err(|e| io_at(path, e))?;
    dir_if_slashed(path, &st)?;
    Ok(stat_of(&r, &st, path))
}

/// A path ending in `/` or `/.` names a directory: anything else there is an error, as the
/// kernel (and dockerd, which lstats the path as given) says.
fn dir_if_slashed(path: &str, st: &Stat) -> Result<()> {
    let slashed = path.ends_with('/') || path.ends_with("/.");
    if slashed && FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(RootfsError::Invalid(format!(
            "container path {path}: not a directory"
        )));
    }
    Ok(())
}

/// `GET /containers/{id}/archive`: write a tar of `path` (entries named `<base>/…`),
/// descending into the mounts below it.
pub fn archive(rootfs: &Path, mounts: &[FsMount], path: &str, w: impl Write) -> Result<PathStat> {
    archive_mapped(rootfs, mounts, path, &IdMapping::identity(), w)
}

/// [`archive`] with owners shifted back by `ids` (host ids → container ids).
pub fn archive_mapped(
    rootfs: &Path,
    mounts: &[FsMount],
    path: &str,
    ids: &IdMapping,
    w: impl Write,
) -> Result<PathStat> {
    let roots = Roots::new(rootfs, mounts);
    let r = resolve(&roots, path, false)?;
    let st = lstat(&r).map_err(|e| io_at(path, e))?;
    dir_if_slashed(path, &st)?;
    let ps = stat_of(&r, &st, path);
    let mut tw = TarWriter::new(w, Some(&roots), ids);
    // Entries are named after the path as asked (moby's rebase): `/` gives `/`, `/foo`;
    // `/bar/root/` (a link to `/`) gives `root/`, `root/foo`; `/.` gives `./`, `foo`.
    tw.entry(&r.parent, r.name.as_deref(), &ps.name, &r.comps)
        .and_then(|_| tw.finish())
        .map_err(|e| RootfsError::op(format!("archive {path}"), e))?;
    Ok(ps)
}

/// `GET /containers/{id}/export`: the whole root filesystem as a tar (entries `./…` stripped
/// to relative names as docker export does). Like Docker, volumes and binds are not included:
/// export is the container's own filesystem.
pub fn export(rootfs: &Path, w: impl Write) -> Result<()> {
    export_mapped(rootfs, &IdMapping::identity(), w)
}

/// [`export`] with owners shifted back by `ids` (host ids → container ids).
pub fn export_mapped(rootfs: &Path, ids: &IdMapping, w: impl Write) -> Result<()> {
    let root = open_root(rootfs)?;
    let mut tw = TarWriter::new(w, None, ids);
    let dir = reopen_dir(root.fd(), None).map_err(|e| RootfsError::op("export rootfs", e))?;
    tw.children(&dir, "", &[])
        .and_then(|_| tw.finish())
        .map_err(|e| RootfsError::op("export rootfs", e))
}

fn reopen_dir(parent: &OwnedFd, name: Option<&OsStr>) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    Ok(match name {
        Some(n) => rfs::openat(parent, n, flags, Mode::empty())?,
        None => rfs::openat(parent, ".", flags, Mode::empty())?,
    })
}

/// How `PUT /containers/{id}/archive` extracts.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExtractOpts {
    /// Keep the tar's owners (else everything is owned by root, as docker cp).
    pub copy_uid_gid: bool,
    /// Refuse to replace a directory by a non-directory (or the reverse).
    pub no_overwrite_dir_non_dir: bool,
    /// The container was created with `--read-only`: only its mounts are writable.
    pub rootfs_read_only: bool,
}

fn forbidden(message: &str) -> RootfsError {
    RootfsError::Forbidden(message.to_string())
}

/// Docker's refusal to write into a read-only root (a mount, or the rootfs with --read-only).
fn read_only_error(mount: Option<usize>) -> RootfsError {
    match mount {
        Some(_) => forbidden("mounted volume is marked read-only"),
        None => forbidden("container rootfs is marked read-only"),
    }
}

/// `PUT /containers/{id}/archive`: extract an (optionally compressed) tar into the directory
/// `path` of the container (a final symlink is followed). Entries reaching into a mount below
/// `path` land in that mount; anything destined for a read-only mount (or a `--read-only`
/// rootfs) is refused with Docker's 403 before anything is written. With
/// `no_overwrite_dir_non_dir`, replacing a directory by a non-directory (or the reverse) is
/// refused before anything is written too.
pub fn extract(
    rootfs: &Path,
    mounts: &[FsMount],
    path: &str,
    opts: ExtractOpts,
    r: impl Read,
) -> Result<()> {
    extract_mapped(rootfs, mounts, path, opts, &IdMapping::identity(), r)
}

/// [`extract`] with the tar's owners shifted by `ids` (container ids → host ids).
pub fn extract_mapped(
    rootfs: &Path,
    mounts: &[FsMount],
    path: &str,
    opts: ExtractOpts,
    ids: &IdMapping,
    r: impl Read,
) -> Result<()> {
    let roots = Roots::new(rootfs, mounts);
    let dest = roots.resolve(path, true)?;
    let loc = roots.table.locate(&dest);
    let ro = |m: Option<usize>| roots.read_only(m) || (m.is_none() && opts.rootfs_read_only);
    if ro(loc.mount) {
        return Err(read_only_error(loc.mount));
    }
    let (root, file) = roots.handle(loc.mount)?;
    if file.is_some() {
        return Err(RootfsError::Invalid(format!(
            "extraction point is not a directory: {path}"
        )));
    }
    let dest_fd = root
        .open_at(loc.rel.join("/"), OFlags::RDONLY)
        .map_err(|e| io_at(path, e))?;
    let st = rfs::fstat(&dest_fd).map_err(|e| io_at(path, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(RootfsError::Invalid(format!(
            "extraction point is not a directory: {path}"
        )));
    }
    let label = format!("copy to {path}");
    let input = decompressed(r).map_err(|e| tar_error(&label, e))?;
    // Split the tar by the root each entry lands in (checking everything first), then apply.
    // Always spooled: the check pass also keeps layer semantics (`.wh.*` whiteouts) out.
    let split = Split {
        roots: &roots,
        dest: &dest,
        dest_mount: loc.mount,
        dest_rel: &loc.rel,
        dest_fd: &dest_fd,
        dest_path: rootfs.join(loc.rel.join("/")),
        opts,
    };
    let parts = split.spool(input, &label)?;
    let dest_root = Root::from_fd(dest_fd, rootfs.join(loc.rel.join("/")));
    for (m, file) in parts {
        if m == loc.mount {
            apply_layer_in_mapped(&dest_root, &label, file, ids)?;
        } else {
            let (root, _) = roots.handle(m)?;
            let dir = reopen_dir(root.fd(), None).map_err(|e| RootfsError::op(&label, e))?;
            let dir_root = Root::from_fd(dir, root.path().into());
            apply_layer_in_mapped(&dir_root, &label, file, ids)?;
        }
    }
    Ok(())
}

/// An anonymous temp file (O_TMPFILE: gone when closed, also on crash).
pub fn spool_file() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(std::env::temp_dir())
}

/// Is an existing `name` (inside `dest`) a directory? None: absent.
fn existing_is_dir(dest: &Root, name: &str) -> Option<bool> {
    let comps = components(name);
    let (last, dirs) = comps.split_last()?;
    let parent = open_dir_in(dest, dirs).ok()?;
    let st = rfs::statat(&parent, last.as_str(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
    Some(FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// A failure reading the client's archive: what the archive's bytes cause (not a tar, cut
/// short, a bad header or compressed stream) is the client's error (400); anything else, such
/// as the spool file's disk filling up, is ours.
fn tar_error(label: &str, e: io::Error) -> RootfsError {
    use io::ErrorKind as K;
    match e.kind() {
        K::UnexpectedEof | K::InvalidData | K::InvalidInput | K::Other => RootfsError::Invalid(
            format!("{label}: the request body is not a valid tar archive (plain, gzip, bzip2 or xz): {e}"),
        ),
        _ => RootfsError::op(label, e),
    }
}

/// The spooling pass of an extraction: routes each entry to its root, checks it, rewrites it.
struct Split<'a> {
    roots: &'a Roots<'a>,
    /// The destination directory (resolved container path), its root and path in that root.
    dest: &'a [String],
    dest_mount: Option<usize>,
    dest_rel: &'a [String],
    dest_fd: &'a OwnedFd,
    /// Where the destination lies on the host (messages only).
    dest_path: PathBuf,
    opts: ExtractOpts,
}

impl Split<'_> {
    /// Where entry `name` goes: its root and its name relative to where that root's part is
    /// applied (the destination directory for the destination's own root, else the mount's
    /// root). None: a directory entry for a mount point (skipped).
    fn route(&self, name: &str, is_dir: bool) -> Result<Option<(Option<usize>, String)>> {
        // The layer applier reads `.wh.<name>` as "delete <name>": a copied file must never
        // delete anything, so such names are refused rather than taken literally.
        if name.split('/').any(|c| c.starts_with(".wh.")) {
            return Err(RootfsError::Invalid(format!(
                "cannot copy {name:?}: names starting with .wh. are reserved for layer whiteouts"
            )));
        }
        match self.roots.table.route(self.dest, name) {
            Route::MountPoint(_) if is_dir => Ok(None),
            Route::MountPoint(i) => Err(RootfsError::Invalid(format!(
                "cannot overwrite mount point {} with non-directory {name:?}",
                self.roots.mounts[i].destination
            ))),
            Route::To { mount, rel } if mount == self.dest_mount => {
                // Relative to the destination directory (which lies in this root).
                let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
                let n = self.dest_rel.len();
                let below =
                    comps.len() >= n && comps[..n].iter().zip(self.dest_rel).all(|(a, b)| *a == b);
                if !below || comps.contains(&"..") {
                    // A `..` name (or hard link target) climbing out of the destination:
                    // the client's error, refused before anything is written.
                    return Err(RootfsError::Invalid(format!(
                        "cannot copy {name:?}: it leads out of the destination directory"
                    )));
                }
                let rel = comps[n..].join("/");
                Ok(Some((mount, if rel.is_empty() { ".".into() } else { rel })))
            }
            Route::To { mount, rel } => {
                let ro =
                    self.roots.read_only(mount) || (mount.is_none() && self.opts.rootfs_read_only);
                if ro {
                    return Err(read_only_error(mount));
                }
                Ok(Some((mount, if rel.is_empty() { ".".into() } else { rel })))
            }
        }
    }

    fn target_fd(&self, m: Option<usize>) -> Result<Root> {
        if m == self.dest_mount {
            let fd = rustix::io::fcntl_dupfd_cloexec(self.dest_fd, 0)
                .map_err(|e| RootfsError::op("copy destination", e.into()))?;
            return Ok(Root::from_fd(fd, self.dest_path.clone()));
        }
        Ok(self.roots.handle(m)?.0)
    }

    /// Spool the tar into one anonymous temp file per root, optionally with every owner set
    /// to 0:0; everything is checked before the caller writes anything.
    fn spool(&self, r: impl Read, label: &str) -> Result<Vec<(Option<usize>, File)>> {
        let io_err = |e: io::Error| RootfsError::op(label, e);
        let bad = |e: io::Error| tar_error(label, e);
        let mut outs: Vec<(Option<usize>, tar::Builder<File>, Root)> = Vec::new();
        let mut a = tar::Archive::new(r);
        for e in a.entries().map_err(bad)? {
            let mut e = e.map_err(bad)?;
            let mut h = e.header().clone();
            if matches!(
                h.entry_type(),
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
            ) {
                continue;
            }
            if !self.opts.copy_uid_gid {
                h.set_uid(0);
                h.set_gid(0);
            }
            let raw = e.path().map_err(bad)?.to_string_lossy().into_owned();
            let is_dir = h.entry_type() == tar::EntryType::Directory;
            let Some((m, name)) = self.route(&raw, is_dir)? else {
                continue;
            };
            let idx = match outs.iter().position(|(om, _, _)| *om == m) {
                Some(i) => i,
                None => {
                    let f = spool_file().map_err(io_err)?;
                    outs.push((m, tar::Builder::new(f), self.target_fd(m)?));
                    outs.len() - 1
                }
            };
            if self.opts.no_overwrite_dir_non_dir {
                let fd = &outs[idx].2;
                let clash = match existing_is_dir(fd, &name) {
                    Some(true) if !is_dir => Some(("directory", "non-directory")),
                    Some(false) if is_dir => Some(("non-directory", "directory")),
                    _ => None,
                };
                if let Some((was, new)) = clash {
                    return Err(RootfsError::Invalid(format!(
                        "cannot overwrite {was} {raw:?} with {new} {raw:?}"
                    )));
                }
            }
            let xattrs: Vec<(String, Vec<u8>)> = match e.pax_extensions().map_err(bad)? {
                Some(exts) => exts
                    .flatten()
                    .filter_map(|x| Some((x.key().ok()?.to_string(), x.value_bytes().to_vec())))
                    .filter(|(k, _)| k.starts_with("SCHILY.xattr."))
                    .collect(),
                None => Vec::new(),
            };
            let mut recs = Vec::new();
            for (k, v) in xattrs {
                pax_record(&mut recs, k.as_bytes(), &v);
            }
            let link = match h.entry_type() {
                tar::EntryType::Symlink => {
                    Some(e.link_name().map_err(bad)?.unwrap_or_default().into_owned())
                }
                tar::EntryType::Link => {
                    let t = e.link_name().map_err(bad)?.unwrap_or_default();
                    let t = t.to_string_lossy().into_owned();
                    match self.route(&t, false)? {
                        Some((tm, tn)) if tm == m => Some(PathBuf::from(tn)),
                        _ => {
                            return Err(RootfsError::Invalid(format!(
                                "hard link {raw:?} to {t:?} crosses a mount point"
                            )))
                        }
                    }
                }
                _ => None,
            };
            let b = &mut outs[idx].1;
            append_pax(b, &name, &recs).map_err(io_err)?;
            match link {
                Some(target) => b.append_link(&mut h, &name, target).map_err(io_err),
                // Copying the entry's data reads the client's archive (cut short: its error).
                None => b.append_data(&mut h, &name, &mut e).map_err(bad),
            }?;
        }
        let mut parts = Vec::new();
        for (m, b, _) in outs {
            let mut f = b.into_inner().map_err(io_err)?;
            f.rewind().map_err(io_err)?;
            parts.push((m, f));
        }
        Ok(parts)
    }
}

#[cfg(test)]
mod tests;
