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
//! redirect it. Extraction goes through berth-store's layer applier rooted at the resolved
//! destination directory: entries climbing out with `..` are rejected, symlinks inside the tar
//! resolve inside the destination.
//!
//! Not done: a file named `.wh.*` in a
//! copied tar becomes an overlay whiteout (as in a layer); archiving `/` does not descend into
//! other mounts.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_api::PathStat;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};

use crate::error::{DaemonError, Result};

/// A mount inside the container that file operations must honour (volumes, binds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsMount {
    /// Absolute path inside the container.
    pub destination: String,
    /// Host directory mounted there.
    pub source: PathBuf,
    pub read_only: bool,
}

/// Clean a container path lexically into components (`..` stops at `/`).
fn components(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    out
}

/// The host root and relative components for a container path (longest mount prefix wins).
fn locate<'a>(
    rootfs: &'a Path,
    mounts: &'a [FsMount],
    path: &str,
) -> (&'a Path, Vec<String>, bool) {
    let comps = components(path);
    let mut best: Option<(&FsMount, usize)> = None;
    for m in mounts {
        let mc = components(&m.destination);
        if !mc.is_empty()
            && comps.len() >= mc.len()
            && comps[..mc.len()] == mc[..]
            && best.is_none_or(|(_, l)| mc.len() > l)
        {
            best = Some((m, mc.len()));
        }
    }
    match best {
        Some((m, l)) => (&m.source, comps[l..].to_vec(), m.read_only),
        None => (rootfs, comps, false),
    }
}

fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

fn not_found(path: &str) -> DaemonError {
    DaemonError::NotFound(format!(
        "Could not find the file {path} in container: no such file or directory"
    ))
}

fn io_at(path: &str, e: impl Into<io::Error>) -> DaemonError {
    let e: io::Error = e.into();
    if e.kind() == io::ErrorKind::NotFound {
        not_found(path)
    } else {
        DaemonError::io(format!("container path {path}"), e)
    }
}

fn open_root(root: &Path) -> Result<OwnedFd> {
    rfs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| DaemonError::io(format!("open container root {}", root.display()), e.into()))
}

fn join(comps: &[String]) -> String {
    if comps.is_empty() {
        ".".into()
    } else {
        comps.join("/")
    }
}

/// Resolved location of a path: its parent directory (in root) and final name, or the root.
struct Resolved {
    parent: OwnedFd,
    /// None: the path is the root itself.
    name: Option<OsString>,
    /// Container path of the parent (for symlink targets).
    parent_path: String,
}

fn resolve(rootfs: &Path, mounts: &[FsMount], path: &str) -> Result<(Resolved, bool)> {
    let (root, comps, ro) = locate(rootfs, mounts, path);
    let root_fd = open_root(root)?;
    let Some((last, dirs)) = comps.split_last() else {
        return Ok((
            Resolved {
                parent: root_fd,
                name: None,
                parent_path: "/".into(),
            },
            ro,
        ));
    };
    let parent = rfs::openat2(
        &root_fd,
        join(dirs),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        in_root(),
    )
    .map_err(|e| io_at(path, e))?;
    let full = components(path);
    let parent_path = format!("/{}", full[..full.len() - 1].join("/"));
    Ok((
        Resolved {
            parent,
            name: Some(OsString::from(last)),
            parent_path,
        },
        ro,
    ))
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

/// `HEAD /containers/{id}/archive`: stat a path (a final symlink is not followed).
pub fn stat(rootfs: &Path, mounts: &[FsMount], path: &str) -> Result<PathStat> {
    let (r, _) = resolve(rootfs, mounts, path)?;
    let st = lstat(&r).map_err(|e| io_at(path, e))?;
    Ok(stat_of(&r, &st, path))
}

/// `GET /containers/{id}/archive`: write a tar of `path` (entries named `<base>/…`).
pub fn archive(rootfs: &Path, mounts: &[FsMount], path: &str, w: impl Write) -> Result<PathStat> {
    let (r, _) = resolve(rootfs, mounts, path)?;
    let st = lstat(&r).map_err(|e| io_at(path, e))?;
    let ps = stat_of(&r, &st, path);
    let mut tw = TarWriter::new(w);
    let name = match &r.name {
        Some(_) => ps.name.clone(),
        None => ".".into(),
    };
    tw.entry(&r.parent, r.name.as_deref(), &name)
        .and_then(|_| tw.finish())
        .map_err(|e| DaemonError::io(format!("archive {path}"), e))?;
    Ok(ps)
}

/// `GET /containers/{id}/export`: the whole root filesystem as a tar (entries `./…` stripped
/// to relative names as docker export does).
pub fn export(rootfs: &Path, w: impl Write) -> Result<()> {
    let root = open_root(rootfs)?;
    let mut tw = TarWriter::new(w);
    let dir = reopen_dir(&root, None).map_err(|e| DaemonError::io("export rootfs", e))?;
    tw.children(&dir, "")
        .and_then(|_| tw.finish())
        .map_err(|e| DaemonError::io("export rootfs", e))
}

fn reopen_dir(parent: &OwnedFd, name: Option<&OsStr>) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    Ok(match name {
        Some(n) => rfs::openat(parent, n, flags, Mode::empty())?,
        None => rfs::openat(parent, ".", flags, Mode::empty())?,
    })
}

/// Tar writer walking directories by file descriptor.
struct TarWriter<W: Write> {
    b: tar::Builder<W>,
    /// (dev, ino) → first name, for hard links.
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> TarWriter<W> {
    fn new(w: W) -> Self {
        let mut b = tar::Builder::new(w);
        b.mode(tar::HeaderMode::Complete);
        TarWriter {
            b,
            links: HashMap::new(),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        self.b.finish()
    }

    fn xattrs(&mut self, fd: &OwnedFd, name: &str) -> io::Result<()> {
        let mut lbuf = vec![0u8; 64 * 1024];
        let Ok(n) = rfs::flistxattr(fd, &mut lbuf[..]) else {
            return Ok(());
        };
        let list = &lbuf[..n];
        let mut vbuf = vec![0u8; 64 * 1024];
        let mut recs = Vec::new();
        for key in list.split(|b| *b == 0).filter(|k| !k.is_empty()) {
            if key.starts_with(b"trusted.overlay.") {
                continue;
            }
            let key = OsStr::from_bytes(key);
            if let Ok(vn) = rfs::fgetxattr(fd, key, &mut vbuf[..]) {
                let mut k = b"SCHILY.xattr.".to_vec();
                k.extend_from_slice(key.as_bytes());
                pax_record(&mut recs, &k, &vbuf[..vn]);
            }
        }
        append_pax(&mut self.b, name, &recs)
    }

    /// Archive `name` in `parent` (None: `parent` itself) as tar path `tar_name`.
    fn entry(&mut self, parent: &OwnedFd, name: Option<&OsStr>, tar_name: &str) -> io::Result<()> {
        let st = match name {
            Some(n) => rfs::statat(parent, n, AtFlags::SYMLINK_NOFOLLOW)?,
            None => rfs::fstat(parent)?,
        };
        let mut h = tar::Header::new_gnu();
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid as u64);
        h.set_gid(st.st_gid as u64);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                let first = first.clone();
                return self.b.append_link(&mut h, tar_name, first);
            }
            self.links.insert(key, tar_name.to_string());
        }
        match ft {
            FileType::Directory => {
                let dir = reopen_dir(parent, name)?;
                self.xattrs(&dir, tar_name)?;
                h.set_entry_type(tar::EntryType::Directory);
                let dname = if tar_name == "." {
                    "./".to_string()
                } else {
                    format!("{tar_name}/")
                };
                self.b.append_data(&mut h, dname, io::empty())?;
                let prefix = if tar_name == "." {
                    String::new()
                } else {
                    format!("{tar_name}/")
                };
                self.children(&dir, &prefix)
            }
            FileType::RegularFile => {
                let n = name.unwrap_or(OsStr::new("."));
                let fd = rfs::openat(
                    parent,
                    n,
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )?;
                self.xattrs(&fd, tar_name)?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(st.st_size as u64);
                let f = File::from(fd);
                // A file that shrank while we read it is padded by the builder's size check
                // failing; take exactly the size we announced.
                self.b
                    .append_data(&mut h, tar_name, ExactReader::new(f, st.st_size as u64))
            }
            FileType::Symlink => {
                let n = name.unwrap_or(OsStr::new("."));
                let target = rfs::readlinkat(parent, n, Vec::new())?;
                h.set_entry_type(tar::EntryType::Symlink);
                let t = OsStr::from_bytes(target.as_bytes()).to_os_string();
                self.b.append_link(&mut h, tar_name, t)
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                h.set_entry_type(match ft {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                h.set_device_major(rfs::major(st.st_rdev))?;
                h.set_device_minor(rfs::minor(st.st_rdev))?;
                self.b.append_data(&mut h, tar_name, io::empty())
            }
            _ => Ok(()), // sockets are not archived
        }
    }

    fn children(&mut self, dir: &OwnedFd, prefix: &str) -> io::Result<()> {
        let mut names: Vec<OsString> = Vec::new();
        for e in rfs::Dir::read_from(dir)? {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        names.sort();
        for n in names {
            let tar_name = format!("{prefix}{}", n.to_string_lossy());
            self.entry(dir, Some(&n), &tar_name)?;
        }
        Ok(())
    }
}

/// Append one PAX record `"<len> <key>=<value>\n"` (len counts itself).
fn pax_record(recs: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let mut body = key.to_vec();
    body.push(b'=');
    body.extend_from_slice(value);
    body.push(b'\n');
    let mut len = body.len() + 2;
    while format!("{len} ").len() + body.len() != len {
        len += 1;
    }
    recs.extend_from_slice(format!("{len} ").as_bytes());
    recs.extend_from_slice(&body);
}

/// Write PAX extended-header records (if any) for the entry that follows.
fn append_pax<W: Write>(b: &mut tar::Builder<W>, name: &str, recs: &[u8]) -> io::Result<()> {
    if recs.is_empty() {
        return Ok(());
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_size(recs.len() as u64);
    h.set_mode(0o644);
    let short: String = format!("PaxHeaders/{name}").chars().take(99).collect();
    h.set_path(short)?;
    h.set_cksum();
    b.append(&h, recs)
}

/// Reads exactly `n` bytes: the file's data, zero-padded if it shrank meanwhile.
struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> ExactReader<R> {
    fn new(inner: R, n: u64) -> Self {
        ExactReader { inner, left: n }
    }
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let mut got = self.inner.read(&mut buf[..want])?;
        if got == 0 {
            buf[..want].fill(0);
            got = want;
        }
        self.left -= got as u64;
        Ok(got)
    }
}

/// `PUT /containers/{id}/archive`: extract an (optionally compressed) tar into the directory
/// `path` of the container. Without `copy_uid_gid` entries are owned by root, as docker cp;
/// with `no_overwrite_dir_non_dir` replacing a directory by a non-directory (or the reverse)
/// is refused before anything is written.
pub fn extract(
    rootfs: &Path,
    mounts: &[FsMount],
    path: &str,
    copy_uid_gid: bool,
    no_overwrite_dir_non_dir: bool,
    r: impl Read,
) -> Result<()> {
    let (root, comps, ro) = locate(rootfs, mounts, path);
    if ro {
        return Err(DaemonError::Store {
            kind: crate::ErrorKind::Forbidden,
            message: format!("copy to {path}: the destination is on a read-only volume"),
        });
    }
    let root_fd = open_root(root)?;
    // The destination directory itself may be a symlink: follow it, inside the root.
    let dest = rfs::openat2(
        &root_fd,
        join(&comps),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        in_root(),
    )
    .map_err(|e| io_at(path, e))?;
    let st = rfs::fstat(&dest).map_err(|e| io_at(path, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(DaemonError::Invalid(format!(
            "extraction point is not a directory: {path}"
        )));
    }
    let input = berth_store::apply::decompressed(r)
        .map_err(|e| DaemonError::io(format!("copy to {path}"), e))?;
    let proc_path = PathBuf::from(format!("/proc/self/fd/{}", dest.as_fd().as_raw_fd()));
    let label = format!("copy to {path}");
    let res = if copy_uid_gid && !no_overwrite_dir_non_dir {
        berth_store::apply::apply_layer(&proc_path, &label, input)
    } else {
        let check = no_overwrite_dir_non_dir.then_some(&dest);
        let spooled = match rewrite(input, !copy_uid_gid, check) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(DaemonError::Invalid(e.to_string()))
            }
            Err(e) => return Err(DaemonError::io(label, e)),
        };
        berth_store::apply::apply_layer(&proc_path, &label, spooled)
    };
    res.map(|_| ()).map_err(DaemonError::from)
}

/// An anonymous temp file (O_TMPFILE: gone when closed, also on crash).
pub(crate) fn spool_file() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(std::env::temp_dir())
}

/// Is an existing `name` (inside `dest`) a directory? None: absent.
fn existing_is_dir(dest: &OwnedFd, name: &Path) -> Option<bool> {
    let s = name.to_string_lossy();
    let comps = components(&s);
    let (last, dirs) = comps.split_last()?;
    let parent = rfs::openat2(
        dest,
        join(dirs),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        in_root(),
    )
    .ok()?;
    let st = rfs::statat(&parent, last.as_str(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
    Some(FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

/// Spool a tar to an anonymous temp file, optionally with every owner set to 0:0 and
/// refusing (`AlreadyExists`) entries that would swap a directory and a non-directory in
/// `check`.
fn rewrite(r: impl Read, chown_root: bool, check: Option<&OwnedFd>) -> io::Result<File> {
    let mut out = spool_file()?;
    {
        let mut b = tar::Builder::new(&mut out);
        let mut a = tar::Archive::new(r);
        for e in a.entries()? {
            let mut e = e?;
            let mut h = e.header().clone();
            if chown_root {
                h.set_uid(0);
                h.set_gid(0);
            }
            let path = e.path()?.into_owned();
            if let Some(dest) = check {
                let is_dir = h.entry_type() == tar::EntryType::Directory;
                match existing_is_dir(dest, &path) {
                    Some(true) if !is_dir => {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!(
                                "cannot overwrite directory {:?} with non-directory {:?}",
                                path.display().to_string(),
                                path.display().to_string()
                            ),
                        ))
                    }
                    Some(false) if is_dir => {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!(
                                "cannot overwrite non-directory {:?} with directory {:?}",
                                path.display().to_string(),
                                path.display().to_string()
                            ),
                        ))
                    }
                    _ => {}
                }
            }
            let xattrs: Vec<(String, Vec<u8>)> = match e.pax_extensions()? {
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
            append_pax(&mut b, &path.to_string_lossy(), &recs)?;
            match h.entry_type() {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = e.link_name()?.unwrap_or_default().into_owned();
                    b.append_link(&mut h, &path, target)?;
                }
                _ => b.append_data(&mut h, &path, &mut e)?,
            }
        }
        b.finish()?;
    }
    out.rewind()?;
    Ok(out)
}

/// One entry of `GET /containers/{id}/changes`: kind 0 modified, 1 added, 2 deleted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// Changes recorded in an overlay upper dir against its lower dirs (top-most first).
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk_changes(upper, lowers, "", &mut out)
        .map_err(|e| DaemonError::io(format!("changes in {}", upper.display()), e))?;
    out.sort();
    Ok(out)
}

fn in_lower(lowers: &[PathBuf], rel: &str) -> bool {
    lowers
        .iter()
        .any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok())
}

fn walk_changes(
    upper: &Path,
    lowers: &[PathBuf],
    rel: &str,
    out: &mut Vec<Change>,
) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let dir = if rel.is_empty() {
        upper.to_path_buf()
    } else {
        upper.join(rel)
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = e.file_type()?;
        let md = e.metadata()?;
        let cpath = format!("/{r}");
        if ft.is_char_device() && {
            use std::os::unix::fs::MetadataExt;
            md.rdev() == 0
        } {
            out.push(Change {
                path: cpath,
                kind: 2,
            });
            continue;
        }
        let existed = in_lower(lowers, &r);
        out.push(Change {
            path: cpath,
            kind: if existed { 0 } else { 1 },
        });
        if ft.is_dir() {
            walk_changes(upper, lowers, &r, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "archive_ops_tests.rs"]
mod tests;
