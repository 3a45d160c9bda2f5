//! Helpers shared by berth-store's integration tests: raw tar building (hostile names allowed)
//! and a sentinel directory beside the apply root that must never change.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One tar entry to write verbatim (no path validation).
pub enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Fifo(&'a str),
}

fn raw_header(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    assert!(name.len() < 100, "test names must be short");
    let gnu = h.as_gnu_mut().unwrap();
    gnu.name = [0; 100];
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

fn set_link(h: &mut tar::Header, target: &str) {
    assert!(target.len() < 100);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.linkname = [0; 100];
    gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
}

/// Build an uncompressed tar from entries, names written byte-for-byte.
pub fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (mut h, data): (tar::Header, &[u8]) = match e {
            E::File(n, d) => (
                raw_header(n, tar::EntryType::Regular, d.len() as u64, 0o644),
                d,
            ),
            E::Dir(n) => (raw_header(n, tar::EntryType::Directory, 0, 0o755), &[]),
            E::Symlink(n, t) => {
                let mut h = raw_header(n, tar::EntryType::Symlink, 0, 0o777);
                set_link(&mut h, t);
                (h, &[])
            }
            E::Hardlink(n, t) => {
                let mut h = raw_header(n, tar::EntryType::Link, 0, 0o644);
                set_link(&mut h, t);
                (h, &[])
            }
            E::Char(n, ma, mi) => {
                let mut h = raw_header(n, tar::EntryType::Char, 0, 0o666);
                h.set_device_major(*ma).unwrap();
                h.set_device_minor(*mi).unwrap();
                (h, &[])
            }
            E::Fifo(n) => (raw_header(n, tar::EntryType::Fifo, 0, 0o600), &[]),
        };
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A temp dir with `root/` (apply target) and `outside/` holding a sentinel file.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
    before: BTreeMap<PathBuf, (u64, u64, u32)>,
}

/// Snapshot of everything under `p`: path → (size, inode, mode).
pub fn tree(p: &Path) -> BTreeMap<PathBuf, (u64, u64, u32)> {
    let mut out = BTreeMap::new();
    fn walk(p: &Path, out: &mut BTreeMap<PathBuf, (u64, u64, u32)>) {
        for e in fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            out.insert(e.path(), (m.len(), m.ino(), m.mode()));
            if m.is_dir() {
                walk(&e.path(), out);
            }
        }
    }
    walk(p, &mut out);
    out
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("sentinel"), b"untouched").unwrap();
        let before = tree(&outside);
        Sandbox {
            dir,
            root,
            outside,
            before,
        }
    }

    /// Absolute path of `outside/` as a string (for hostile absolute names).
    pub fn outside_abs(&self) -> String {
        self.outside.to_str().unwrap().to_string()
    }

    /// Panics if anything under `outside/` or beside root changed.
    pub fn assert_outside_untouched(&self) {
        assert_eq!(tree(&self.outside), self.before, "outside dir changed");
        assert_eq!(
            fs::read(self.outside.join("sentinel")).unwrap(),
            b"untouched"
        );
        let mut siblings: Vec<_> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        siblings.sort();
        assert_eq!(siblings, ["outside", "root"]);
    }
}
