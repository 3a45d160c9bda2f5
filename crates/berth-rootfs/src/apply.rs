//! The layer applier: unpacks an OCI layer tar into a directory without ever touching anything
//! outside it. Security-critical. Image layers (the store), `docker cp` into a container, ADD of
//! a local archive and the build context all go through it.
//!
//! Every path is resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from the
//! [`Root`] handle, so absolute symlinks, `..` inside symlink targets and symlinked parents
//! are all clamped inside the root the way the container itself will see them. The final
//! component of each entry is then operated on with an `*at` call relative to its (already
//! resolved) parent directory, never following a symlink (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`).
//!
//! Policy decisions:
//! - Entry names are cleaned lexically (`a/./b//c` → `a/b/c`, leading `/` dropped). A name
//!   whose `..` components would climb above the root (`../x`, `a/../../x`) is REJECTED with an
//!   error naming the entry and the layer — real images never contain them, and failing loudly
//!   beats silently writing somewhere unexpected. The same applies to hardlink targets.
//! - Symlink targets are stored verbatim (they are interpreted inside the container).
//! - Whiteouts `.wh.<name>` become overlay whiteouts (char device 0/0); `.wh..wh..opq` marks
//!   its directory opaque in the store's [`OverlayXattrs`] namespace (`trusted.overlay.opaque=y`,
//!   or `user.overlay.opaque=y` in a user namespace); other `.wh..wh.*` (aufs metadata) are
//!   skipped.
//! - PAX `SCHILY.xattr.*` are applied to files and directories, except overlay metadata of any
//!   namespace (only the applier itself may mark it).
//! - A regular file whose data ends before its header's size is a truncated layer: error.
//! - Owners are container ids: with an [`IdMapping`] (`--userns-remap`) each is shifted to its
//!   host id, and an owner outside the mapping is refused naming the entry.
//!
//! The applier is meant for a fresh, empty snapshot directory (a layer diff); applying into an
//! existing tree works too (entries replace what is there).

use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec};
use rustix::fs::{Timestamps, XattrFlags};
use rustix::io::Errno;

use berth_rootless::IdMapping;

use crate::error::{Result, RootfsError};
use crate::overlay::{is_overlay_metadata, OverlayXattrs};
use crate::root::{join, Root};

/// Longest entry name we accept (Linux PATH_MAX).
const MAX_NAME: usize = 4096;
/// Longest single xattr value we accept (Linux's limit is 64 KiB).
const MAX_XATTR: usize = 64 * 1024;

/// What an apply did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
}

/// Wrap a layer stream so gzip, bzip2, xz or zstd compression (detected by magic bytes, as
/// dockerd's `DecompressStream`; zstd as Docker 23+) is undone.
pub fn decompressed<'a>(mut r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let h = &head[..n];
    let chained = io::Cursor::new(h.to_vec()).chain(r);
    Ok(if h.starts_with(&[0x1f, 0x8b, 0x08]) {
        Box::new(flate2::read::MultiGzDecoder::new(chained))
    } else if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(chained)?)
    } else if h.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(chained))
    } else if h.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
        Box::new(xz2::read::XzDecoder::new_multi_decoder(chained))
    } else {
        Box::new(chained)
    })
}

/// Whether `block` (the first 512 bytes of a stream) is a tar header Go's `archive/tar`
/// accepts: not all zeros, and its checksum (unsigned or signed sum, the checksum field
/// counted as spaces) matches.
pub fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 || block.iter().all(|b| *b == 0) {
        return false;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|b| *b as char)
        .take_while(|c| *c != '\0')
        .collect();
    let Ok(want) = i64::from_str_radix(digits.trim(), 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, b) in block[..512].iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { *b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    want == unsigned || want == signed
}

/// Clean an entry name lexically into components. `Ok(None)` means the name climbs out of the
/// root (the caller rejects it); an empty vector names the root itself.
pub fn clean_components(name: &[u8]) -> Option<Vec<&OsStr>> {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Some(out)
}

/// Clean an entry name as a path under `/` (Go's `filepath.Clean("/" + name)`): `..` at the
/// root stays at the root. For build contexts only, where dockerd reads `../foo` as `foo`.
pub fn clean_components_rooted(name: &[u8]) -> Vec<&OsStr> {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in name.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    out
}

/// Open `comps` (a directory) beneath `root`, clamped inside it; symlinks along the way are
/// followed *inside* the root. `flags` adds to `O_DIRECTORY | O_CLOEXEC` (`O_PATH`/`O_RDONLY`,
/// plus `O_NOFOLLOW` to refuse a symlink as the last component).
fn open_dir_in(root: &Root, comps: &[&OsStr], flags: OFlags) -> io::Result<OwnedFd> {
    root.open_dir(comps, flags)
}

/// Like [`open_dir_in`] but creating missing directories (mode 0755) along the way. When a
/// component is a symlink (possibly dangling), it is followed *inside* the root, creating its
/// target, as containerd does. The slow path never hands `..` or a multi-component path to the
/// kernel: every step is one component relative to a held directory fd, with `O_NOFOLLOW`,
/// and `..` pops our own stack (clamped at the root).
pub fn open_or_create_dir(root: &Root, comps: &[&OsStr]) -> io::Result<OwnedFd> {
    match open_dir_in(root, comps, OFlags::PATH) {
        Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {}
        other => return other,
    }
    let mut stack: Vec<OwnedFd> = vec![open_dir_in(root, &[], OFlags::PATH)?];
    let mut queue: VecDeque<OsString> = comps.iter().map(|c| c.to_os_string()).collect();
    let mut links = 0;
    while let Some(c) = queue.pop_front() {
        match c.as_bytes() {
            b"" | b"." => continue,
            b".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            _ => {}
        }
        let cur = stack.last().expect("root fd");
        match rfs::statat(cur, &c, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => rfs::mkdirat(cur, &c, Mode::from_raw_mode(0o755))?,
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {}
                FileType::Symlink => {
                    links += 1;
                    if links > 40 {
                        return Err(Errno::LOOP.into());
                    }
                    let target = rfs::readlinkat(cur, &c, Vec::new())?;
                    let tb = target.as_bytes();
                    if tb.starts_with(b"/") {
                        stack.truncate(1);
                    }
                    for part in tb.split(|b| *b == b'/').rev() {
                        queue.push_front(OsString::from_vec(part.to_vec()));
                    }
                    continue;
                }
                _ => return Err(Errno::NOTDIR.into()),
            },
            Err(e) => return Err(e.into()),
        }
        let fd = rfs::openat(
            cur,
            &c,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        stack.push(fd);
    }
    Ok(stack.pop().expect("root fd"))
}

/// Remove `name` in `dir` (recursively if it is a directory), never following symlinks.
pub fn remove_all_at(dir: impl AsFd, name: &OsStr) -> io::Result<()> {
    let st = match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let sub = rfs::openat(
            &dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut names = Vec::new();
        for ent in rfs::Dir::read_from(&sub)? {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsString::from_vec(n.to_vec()));
            }
        }
        for n in names {
            remove_all_at(&sub, &n)?;
        }
        rfs::unlinkat(&dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rfs::unlinkat(&dir, name, AtFlags::empty())?;
    }
    Ok(())
}

/// `io::copy` with a 256 KiB buffer (fewer syscalls for big files).
fn copy_big(r: &mut impl Read, w: &mut impl io::Write, buf: &mut [u8]) -> io::Result<u64> {
    let mut n = 0u64;
    loop {
        let k = match r.read(buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..k])?;
        n += k as u64;
    }
}

fn ts(secs: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: secs.min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Metadata of one entry gathered from its header and PAX records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

/// Apply an UNCOMPRESSED layer tar stream into `root` (which must exist). `layer` names the
/// layer in errors. Wrap compressed input with [`decompressed`] first.
pub fn apply_layer(root: &Path, layer: &str, r: impl Read) -> Result<ApplyStats> {
    apply_overlay_layer_mapped(
        root,
        layer,
        OverlayXattrs::Trusted,
        r,
        &IdMapping::identity(),
    )
}

/// [`apply_layer`] for a layer dir that overlayfs will use as a lower: opaque directories are
/// marked in the `xattrs` namespace the overlay mounts read.
pub fn apply_overlay_layer(
    root: &Path,
    layer: &str,
    xattrs: OverlayXattrs,
    r: impl Read,
) -> Result<ApplyStats> {
    apply_overlay_layer_mapped(root, layer, xattrs, r, &IdMapping::identity())
}

/// [`apply_layer`] with every owner shifted by `ids` (container ids → host ids).
pub fn apply_layer_mapped(
    root: &Path,
    layer: &str,
    r: impl Read,
    ids: &IdMapping,
) -> Result<ApplyStats> {
    apply_overlay_layer_mapped(root, layer, OverlayXattrs::Trusted, r, ids)
}

/// The store's form: opaque directories marked in `xattrs`, owners shifted by `ids`.
pub fn apply_overlay_layer_mapped(
    root: &Path,
    layer: &str,
    xattrs: OverlayXattrs,
    r: impl Read,
    ids: &IdMapping,
) -> Result<ApplyStats> {
    let root = Root::open_readable(root).map_err(|source| RootfsError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    apply_in(&root, layer, r, false, xattrs, ids)
}

/// [`apply_layer`] into an already open root (a directory resolved inside another root, so
/// nothing is looked up by host path again). The root must be open readable
/// ([`Root::open_readable`], [`Root::sub`]) for a `./` entry to set its metadata.
pub fn apply_layer_in(root: &Root, layer: &str, r: impl Read) -> Result<ApplyStats> {
    apply_layer_in_mapped(root, layer, r, &IdMapping::identity())
}

/// [`apply_layer_in`] with every owner shifted by `ids` (container ids → host ids).
pub fn apply_layer_in_mapped(
    root: &Root,
    layer: &str,
    r: impl Read,
    ids: &IdMapping,
) -> Result<ApplyStats> {
    apply_in(root, layer, r, false, OverlayXattrs::Trusted, ids)
}

/// Unpack a build context: as [`apply_layer`], except that entry names are read as paths
/// under `/` ([`clean_components_rooted`]: `../foo` is `foo`, `/bar` is `bar`), as dockerd
/// reads a context. Nothing can land outside `root` either way.
pub fn apply_build_context(root: &Path, r: impl Read) -> Result<ApplyStats> {
    let root = Root::open_readable(root).map_err(|source| RootfsError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    apply_in(
        &root,
        "build context",
        r,
        true,
        OverlayXattrs::Trusted,
        &IdMapping::identity(),
    )
}

fn apply_in(
    root: &Root,
    layer: &str,
    r: impl Read,
    rooted: bool,
    xattrs: OverlayXattrs,
    ids: &IdMapping,
) -> Result<ApplyStats> {
    let mut a = Applier {
        root,
        rooted,
        xattrs,
        ids,
        layer: layer.to_string(),
        dir_times: Vec::new(),
        stats: ApplyStats::default(),
        buf: vec![0u8; 256 * 1024],
    };
    let read = Rc::new(Cell::new(0u64));
    let mut archive = tar::Archive::new(Counted {
        inner: r,
        read: read.clone(),
    });
    let entries = archive.entries().map_err(|source| a.tar_err(source))?;
    // Where the last entry's data ends in the stream.
    let mut data_end = None;
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(_) if ends_in_final_padding(data_end, read.get()) => break,
            Err(source) => return Err(a.tar_err(source)),
        };
        data_end = Some(entry.raw_file_position() + entry.size());
        a.entry(entry)?;
    }
    a.finish()?;
    Ok(a.stats)
}

/// The stream ended inside the zero padding after the last entry's (complete) data. Go's
/// `archive/tar` reads such a stream as ended, and the docker CLI sends one (`build -f - DIR`
/// rewrites the context without padding or end-of-archive blocks). Data cut short is still an
/// error: each file's length is checked against its header when it is written.
fn ends_in_final_padding(data_end: Option<u64>, read: u64) -> bool {
    data_end.is_some_and(|end| read >= end && read < end.next_multiple_of(512))
}

/// A reader that counts the bytes it delivered (the tar stream's position).
struct Counted<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

struct Applier<'r> {
    root: &'r Root,
    /// Entry names are paths under `/` (a build context), not relative to the layer root.
    rooted: bool,
    /// Where opaque directories are marked.
    xattrs: OverlayXattrs,
    /// Container ids → host ids for every owner.
    ids: &'r IdMapping,
    layer: String,
    /// Directory mtimes, set last (creating children changes them).
    dir_times: Vec<(OsString, u64)>,
    stats: ApplyStats,
    /// Copy buffer reused for every file.
    buf: Vec<u8>,
}

/// A numeric header field as Go's `archive/tar` (so Docker) reads it: blank (all NUL or spaces,
/// as some tar writers leave uid/gid/mode) is 0; anything else must parse.
fn blank_is_zero(raw: &[u8], parse: impl FnOnce() -> io::Result<u64>) -> io::Result<u64> {
    if raw.iter().all(|b| *b == 0 || *b == b' ') {
        Ok(0)
    } else {
        parse()
    }
}

impl Applier<'_> {
    fn tar_err(&self, source: io::Error) -> RootfsError {
        RootfsError::Tar {
            layer: self.layer.clone(),
            source,
        }
    }

    fn unsafe_entry(&self, entry: &[u8], why: &str) -> RootfsError {
        RootfsError::UnsafeEntry {
            layer: self.layer.clone(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            why: why.to_string(),
        }
    }

    fn apply_err(&self, entry: &[u8], source: io::Error) -> RootfsError {
        RootfsError::Apply {
            layer: self.layer.clone(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            source,
        }
    }

    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>) -> Result<Meta> {
        let h = e.header();
        let name = e.path_bytes().into_owned();
        let raw = h.as_old();
        let mode = blank_is_zero(&raw.mode, || h.mode().map(u64::from));
        let uid = blank_is_zero(&raw.uid, || h.uid());
        let gid = blank_is_zero(&raw.gid, || h.gid());
        let mut m = Meta {
            mode: mode.map_err(|s| self.tar_err(s))? as u32 & 0o7777,
            uid: uid.map_err(|s| self.tar_err(s))?.min(u32::MAX as u64) as u32,
            gid: gid.map_err(|s| self.tar_err(s))?.min(u32::MAX as u64) as u32,
            mtime: h.mtime().unwrap_or(0),
            xattrs: Vec::new(),
        };
        if let Some(pax) = e.pax_extensions().map_err(|s| self.tar_err(s))? {
            for ext in pax {
                let ext = ext.map_err(|s| self.tar_err(s))?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                let num = || {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse::<u64>().ok())
                };
                match key {
                    "uid" => m.uid = num().unwrap_or(m.uid as u64).min(u32::MAX as u64) as u32,
                    "gid" => m.gid = num().unwrap_or(m.gid as u64).min(u32::MAX as u64) as u32,
                    "mtime" => m.mtime = num().unwrap_or(m.mtime),
                    k => {
                        if let Some(x) = k.strip_prefix("SCHILY.xattr.") {
                            if is_overlay_metadata(x) {
                                tracing::warn!(layer = %self.layer, entry = %String::from_utf8_lossy(&name), xattr = x, "ignoring overlay xattr from layer");
                            } else if value.len() > MAX_XATTR {
                                return Err(self.unsafe_entry(&name, "xattr value too large"));
                            } else {
                                m.xattrs.push((OsString::from(x), value.to_vec()));
                            }
                        }
                    }
                }
            }
        }
        let (uid, gid) = self
            .ids
            .to_host(m.uid, m.gid)
            .map_err(|e| self.unsafe_entry(&name, &e.to_string()))?;
        (m.uid, m.gid) = (uid, gid);
        Ok(m)
    }

    fn entry<R: Read>(&mut self, mut e: tar::Entry<'_, R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        if raw.len() > MAX_NAME {
            return Err(self.unsafe_entry(&raw[..64], "entry name longer than 4096 bytes"));
        }
        let kind = e.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let comps = if self.rooted {
            clean_components_rooted(&raw)
        } else {
            clean_components(&raw)
                .ok_or_else(|| self.unsafe_entry(&raw, "name climbs out of the layer root"))?
        };
        let meta = self.meta(&mut e)?;
        self.stats.entries += 1;
        let Some((name, parent)) = comps.split_last() else {
            // The root directory itself: take its owner and mode.
            if kind == tar::EntryType::Directory {
                let r = self
                    .root
                    .fd()
                    .try_clone()
                    .map_err(|s| self.apply_err(&raw, s))?;
                self.set_owner_mode(&r, OsStr::new(""), &meta, true)
                    .map_err(|s| self.apply_err(&raw, s))?;
                self.dir_times.push((OsString::from("."), meta.mtime));
            }
            return Ok(());
        };
        let name = *name;
        let nb = name.as_bytes();
        if let Some(hidden) = nb.strip_prefix(b".wh.") {
            return self.whiteout(&raw, parent, hidden);
        }
        let res = self.create(&mut e, kind, parent, name, &meta, &raw);
        res.map_err(|source| match source.kind() {
            io::ErrorKind::UnexpectedEof => self.tar_err(source),
            _ => self.apply_err(&raw, source),
        })?;
        Ok(())
    }

    fn whiteout(&mut self, raw: &[u8], parent: &[&OsStr], hidden: &[u8]) -> Result<()> {
        if hidden == b".wh..opq" {
            let res = (|| {
                open_or_create_dir(self.root, parent)?;
                let dir = open_dir_in(self.root, parent, OFlags::RDONLY)?;
                self.xattrs.set_opaque(&dir)?;
                Ok(())
            })();
            return res.map_err(|s| self.apply_err(raw, s));
        }
        if hidden.starts_with(b".wh.") {
            tracing::debug!(layer = %self.layer, entry = %String::from_utf8_lossy(raw), "skipping aufs metadata entry");
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(self.unsafe_entry(raw, "whiteout of an invalid name"));
        }
        let res = (|| {
            let dir = open_or_create_dir(self.root, parent)?;
            let target = OsStr::from_bytes(hidden);
            remove_all_at(&dir, target)?;
            rfs::mknodat(
                &dir,
                target,
                FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )?;
            Ok(())
        })();
        res.map_err(|s| self.apply_err(raw, s))
    }

    fn create<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        kind: tar::EntryType,
        parent: &[&OsStr],
        name: &OsStr,
        meta: &Meta,
        raw: &[u8],
    ) -> io::Result<()> {
        use tar::EntryType as T;
        let dir = open_or_create_dir(self.root, parent)?;
        match kind {
            T::Directory => {
                let existing = rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).ok();
                let is_dir = existing
                    .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
                    .unwrap_or(false);
                if !is_dir {
                    remove_all_at(&dir, name)?;
                    rfs::mkdirat(&dir, name, Mode::from_raw_mode(0o700))?;
                }
                let fd = rfs::openat(
                    &dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                self.set_owner_mode(&fd, OsStr::new(""), meta, true)?;
                self.set_xattrs(&fd, meta)?;
                let mut p: Vec<&OsStr> = parent.to_vec();
                p.push(name);
                self.dir_times.push((join(&p), meta.mtime));
            }
            T::Regular | T::Continuous => {
                remove_all_at(&dir, name)?;
                let fd = rfs::openat(
                    &dir,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let mut f = std::fs::File::from(fd);
                let want = e.size();
                let n = copy_big(e, &mut f, &mut self.buf)?;
                if n != want {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "entry {:?} truncated: header says {want} bytes, stream had {n}",
                            String::from_utf8_lossy(raw)
                        ),
                    ));
                }
                self.stats.bytes += n;
                self.set_owner_mode(&f, OsStr::new(""), meta, true)?;
                self.set_xattrs(&f, meta)?;
                rfs::futimens(&f, &ts(meta.mtime))?;
            }
            T::Symlink => {
                let target = e.link_name_bytes().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "symlink without a target")
                })?;
                if target.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "symlink with an empty target",
                    ));
                }
                remove_all_at(&dir, name)?;
                rfs::symlinkat(OsStr::from_bytes(&target), &dir, name)?;
                rfs::chownat(
                    &dir,
                    name,
                    Some(rfs::Uid::from_raw(meta.uid)),
                    Some(rfs::Gid::from_raw(meta.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(owner_err(meta))?;
                rfs::utimensat(&dir, name, &ts(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)?;
            }
            T::Link => {
                let target = e.link_name_bytes().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "hardlink without a target")
                })?;
                let tcomps = clean_components(&target).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "hardlink target {:?} climbs out of the layer root",
                            String::from_utf8_lossy(&target)
                        ),
                    )
                })?;
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "hardlink to the root directory",
                    ));
                };
                let tdir = open_dir_in(self.root, tparent, OFlags::PATH)?;
                let st = rfs::statat(&tdir, *tname, AtFlags::SYMLINK_NOFOLLOW)?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "hardlink to a directory",
                    ));
                }
                remove_all_at(&dir, name)?;
                rfs::linkat(&tdir, *tname, &dir, name, AtFlags::empty())?;
            }
            T::Char | T::Block | T::Fifo => {
                let ft = match kind {
                    T::Char => FileType::CharacterDevice,
                    T::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let (major, minor) = if kind == T::Fifo {
                    (0, 0)
                } else {
                    (
                        e.header().device_major()?.unwrap_or(0),
                        e.header().device_minor()?.unwrap_or(0),
                    )
                };
                remove_all_at(&dir, name)?;
                rfs::mknodat(
                    &dir,
                    name,
                    ft,
                    Mode::from_raw_mode(meta.mode & 0o777),
                    rfs::makedev(major, minor),
                )?;
                // We just created `name` as a node (not a symlink), so following is harmless.
                self.set_owner_mode(&dir, name, meta, false)?;
                rfs::utimensat(&dir, name, &ts(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)?;
            }
            other => {
                tracing::warn!(layer = %self.layer, entry = %String::from_utf8_lossy(raw), kind = ?other, "skipping unsupported tar entry type");
                self.stats.entries -= 1;
            }
        }
        Ok(())
    }

    /// chown then chmod (chown clears set-id bits). With `is_fd`, `fd` is the object itself;
    /// otherwise `fd` is its directory and `name` the (non-symlink) object.
    fn set_owner_mode(
        &self,
        fd: &impl AsFd,
        name: &OsStr,
        meta: &Meta,
        is_fd: bool,
    ) -> io::Result<()> {
        let (u, g) = (
            Some(rfs::Uid::from_raw(meta.uid)),
            Some(rfs::Gid::from_raw(meta.gid)),
        );
        let mode = Mode::from_raw_mode(meta.mode);
        if is_fd {
            rfs::fchown(fd, u, g).map_err(owner_err(meta))?;
            rfs::fchmod(fd, mode)?;
        } else {
            rfs::chownat(fd, name, u, g, AtFlags::SYMLINK_NOFOLLOW).map_err(owner_err(meta))?;
            let st = rfs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                rfs::chmodat(fd, name, mode, AtFlags::empty())?;
            }
        }
        Ok(())
    }

    fn set_xattrs(&self, fd: &impl AsFd, meta: &Meta) -> io::Result<()> {
        for (k, v) in &meta.xattrs {
            match rfs::fsetxattr(fd, k.as_os_str(), v, XattrFlags::empty()) {
                Ok(()) => {}
                // A filesystem without xattr support: the content matters more; warn.
                Err(Errno::NOTSUP) => {
                    tracing::warn!(layer = %self.layer, xattr = ?k, "filesystem does not support xattr; skipped")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        // Deepest first is not needed: setting a dir's mtime does not touch its parent.
        for (path, mtime) in std::mem::take(&mut self.dir_times) {
            let comps: Vec<&OsStr> = clean_components(path.as_bytes()).unwrap_or_default();
            let fd = match open_dir_in(self.root, &comps, OFlags::RDONLY | OFlags::NOFOLLOW) {
                Ok(fd) => fd,
                // Replaced by a later entry (a file, or removed by a whiteout): nothing to do.
                Err(_) => continue,
            };
            rfs::futimens(&fd, &ts(mtime))
                .map_err(|s| self.apply_err(path.as_bytes(), s.into()))?;
        }
        Ok(())
    }
}

fn owner_err(meta: &Meta) -> impl FnOnce(Errno) -> io::Error {
    crate::error::unmapped_owner(meta.uid, meta.gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_names() {
        let c = |s: &str| {
            clean_components(s.as_bytes()).map(|v| {
                v.iter()
                    .map(|c| c.to_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(c("./a//b/./c").unwrap(), ["a", "b", "c"]);
        assert_eq!(c("/etc/passwd").unwrap(), ["etc", "passwd"]);
        assert_eq!(c("a/../b").unwrap(), ["b"]);
        assert!(c("../x").is_none());
        assert!(c("a/../../x").is_none());
        assert!(c("./").unwrap().is_empty());
    }

    #[test]
    fn sniffs_compression() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello").unwrap();
        let gz = gz.finish().unwrap();
        let mut out = String::new();
        decompressed(&gz[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
        let z = zstd::encode_all(&b"hello"[..], 1).unwrap();
        out.clear();
        decompressed(&z[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
        out.clear();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(b"hello").unwrap();
        decompressed(&bz.finish().unwrap()[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
        out.clear();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(b"hello").unwrap();
        decompressed(&xz.finish().unwrap()[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
        out.clear();
        decompressed(&b"hi"[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hi");
    }
}
