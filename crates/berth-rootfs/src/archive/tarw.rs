//! The read side of docker cp / export: a tar writer that walks directories by file descriptor
//! (`*at` calls with `O_NOFOLLOW`), hard links once, xattrs as PAX records, and mount points
//! read from the mount's source.

use super::*;

/// Tar writer walking directories by file descriptor; with `roots`, a directory that is a
/// mount point is read from the mount's source instead (what the container sees there).
pub(super) struct TarWriter<'r, W: Write> {
    b: tar::Builder<W>,
    /// (dev, ino) → first name, for hard links.
    links: HashMap<(u64, u64), String>,
    roots: Option<&'r Roots<'r>>,
    /// Host owners → the container's (`--userns-remap`).
    ids: &'r IdMapping,
}

impl<'r, W: Write> TarWriter<'r, W> {
    pub(super) fn new(w: W, roots: Option<&'r Roots<'r>>, ids: &'r IdMapping) -> Self {
        let mut b = tar::Builder::new(w);
        b.mode(tar::HeaderMode::Complete);
        TarWriter {
            b,
            links: HashMap::new(),
            roots,
            ids,
        }
    }

    pub(super) fn finish(&mut self) -> io::Result<()> {
        self.b.finish()
    }

    /// The entry's extended attributes as PAX records.
    fn xattrs(&mut self, fd: &OwnedFd) -> Vec<u8> {
        let mut recs = Vec::new();
        let mut lbuf = vec![0u8; 64 * 1024];
        let Ok(n) = rfs::flistxattr(fd, &mut lbuf[..]) else {
            return recs;
        };
        let list = &lbuf[..n];
        let mut vbuf = vec![0u8; 64 * 1024];
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
        recs
    }

    /// Write the PAX header of the entry named `tar_name` (its xattrs `recs`, and its name when
    /// it is absolute: the tar crate refuses those in a header, Go and GNU tar read the PAX
    /// `path`); returns the name to give the header itself.
    fn pax<'n>(&mut self, tar_name: &'n str, mut recs: Vec<u8>) -> io::Result<&'n str> {
        let rel = tar_name.trim_start_matches('/');
        if rel.len() != tar_name.len() {
            pax_record(&mut recs, b"path", tar_name.as_bytes());
        }
        append_pax(&mut self.b, tar_name, &recs)?;
        Ok(if rel.is_empty() { "./" } else { rel })
    }

    /// Archive `name` in `parent` (None: `parent` itself) as tar path `tar_name`; `cpath` is
    /// its container path.
    pub(super) fn entry(
        &mut self,
        parent: &OwnedFd,
        name: Option<&OsStr>,
        tar_name: &str,
        cpath: &[String],
    ) -> io::Result<()> {
        let st = match name {
            Some(n) => rfs::statat(parent, n, AtFlags::SYMLINK_NOFOLLOW)?,
            None => rfs::fstat(parent)?,
        };
        let mut h = tar::Header::new_gnu();
        h.set_mode(st.st_mode & 0o7777);
        let (uid, gid) = self
            .ids
            .to_container(st.st_uid, st.st_gid)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{tar_name}: {e}")))?;
        h.set_uid(u64::from(uid));
        h.set_gid(u64::from(gid));
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                let first = first.clone();
                let n = self.pax(tar_name, Vec::new())?;
                return self.b.append_link(&mut h, n, first);
            }
            self.links.insert(key, tar_name.to_string());
        }
        match ft {
            FileType::Directory => {
                let dir = reopen_dir(parent, name)?;
                let recs = self.xattrs(&dir);
                h.set_entry_type(tar::EntryType::Directory);
                let dname = match tar_name {
                    "." => "./".to_string(),
                    "/" => "/".to_string(),
                    n => format!("{n}/"),
                };
                let n = self.pax(&dname, recs)?;
                self.b.append_data(&mut h, n, io::empty())?;
                let prefix = match tar_name {
                    "." => String::new(),
                    "/" => "/".to_string(),
                    n => format!("{n}/"),
                };
                self.children(&dir, &prefix, cpath)
            }
            FileType::RegularFile => {
                let n = name.unwrap_or(OsStr::new("."));
                let fd = rfs::openat(
                    parent,
                    n,
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )?;
                let recs = self.xattrs(&fd);
                let n = self.pax(tar_name, recs)?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(st.st_size as u64);
                let f = File::from(fd);
                // A file that shrank while we read it is padded by the builder's size check
                // failing; take exactly the size we announced.
                self.b
                    .append_data(&mut h, n, ExactReader::new(f, st.st_size as u64))
            }
            FileType::Symlink => {
                let n = name.unwrap_or(OsStr::new("."));
                let target = rfs::readlinkat(parent, n, Vec::new())?;
                h.set_entry_type(tar::EntryType::Symlink);
                let t = OsStr::from_bytes(target.as_bytes()).to_os_string();
                let n = self.pax(tar_name, Vec::new())?;
                self.b.append_link(&mut h, n, t)
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                h.set_entry_type(match ft {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                h.set_device_major(rfs::major(st.st_rdev))?;
                h.set_device_minor(rfs::minor(st.st_rdev))?;
                let n = self.pax(tar_name, Vec::new())?;
                self.b.append_data(&mut h, n, io::empty())
            }
            _ => Ok(()), // sockets are not archived
        }
    }

    pub(super) fn children(
        &mut self,
        dir: &OwnedFd,
        prefix: &str,
        cpath: &[String],
    ) -> io::Result<()> {
        let mut names: Vec<OsString> = Vec::new();
        for e in rfs::Dir::read_from(dir)? {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        // Mount points show even where the rootfs has no directory for them yet (a created
        // container: the runtime makes them at start).
        if let Some(roots) = self.roots {
            for m in roots.table.children_of(cpath) {
                let m = OsString::from(m);
                if !names.contains(&m) {
                    names.push(m);
                }
            }
        }
        names.sort();
        for n in names {
            let tar_name = format!("{prefix}{}", n.to_string_lossy());
            let mut child = cpath.to_vec();
            child.push(n.to_string_lossy().into_owned());
            match self
                .roots
                .and_then(|r| Some((r, r.table.mount_at(&child)?)))
            {
                Some((roots, i)) => {
                    let (root, file) = roots.handle(Some(i)).map_err(io::Error::other)?;
                    self.entry(root.fd(), file.as_deref(), &tar_name, &child)?;
                }
                None => self.entry(dir, Some(&n), &tar_name, &child)?,
            }
        }
        Ok(())
    }
}

/// Append one PAX record `"<len> <key>=<value>\n"` (len counts itself).
pub(super) fn pax_record(recs: &mut Vec<u8>, key: &[u8], value: &[u8]) {
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
pub(super) fn append_pax<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    recs: &[u8],
) -> io::Result<()> {
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
