//! One suite of hostile inputs for every confined entry point (containerd's snapshotter
//! `testsuite` is the model): raw tars that try to leave their root (`../` names, absolute
//! names, absolute and climbing symlinks with files written through them, hard links out of
//! the root, device nodes, sizes far beyond the data, blank numeric fields, whiteouts of `..`)
//! and a [`Sandbox`]: a root with a sentinel directory beside it that must never change.
//! [`run_cases`] feeds every case to an entry point (layer apply, archive put, ADD, COPY,
//! archive get, diff) and fails if one panics or touches the sentinel. Built with the
//! `testsuite` feature, for tests only.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Bytes of the sentinel file: an archive that contains them read outside its root.
pub const SENTINEL: &[u8] = b"untouched-sentinel-8f2c";

/// One tar entry to write verbatim (no path validation).
#[derive(Debug, Clone)]
pub enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Block(&'a str, u32, u32),
    Fifo(&'a str),
    /// A file whose header claims `size` bytes but carries only `data` (a cut-off stream).
    Huge(&'a str, u64, &'a [u8]),
    /// A file whose uid, gid, mtime and mode fields are blank (all NUL).
    Blank(&'a str, &'a [u8]),
}

fn raw_header(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    assert!(name.len() < 100, "test names must be short");
    let gnu = h.as_gnu_mut().expect("gnu header");
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
    let gnu = h.as_gnu_mut().expect("gnu header");
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
            E::Char(n, ma, mi) | E::Block(n, ma, mi) => {
                let kind = match e {
                    E::Char(..) => tar::EntryType::Char,
                    _ => tar::EntryType::Block,
                };
                let mut h = raw_header(n, kind, 0, 0o666);
                h.set_device_major(*ma).expect("major");
                h.set_device_minor(*mi).expect("minor");
                (h, &[])
            }
            E::Fifo(n) => (raw_header(n, tar::EntryType::Fifo, 0, 0o600), &[]),
            E::Huge(n, size, d) => (raw_header(n, tar::EntryType::Regular, *size, 0o644), d),
            E::Blank(n, d) => {
                let mut h = raw_header(n, tar::EntryType::Regular, d.len() as u64, 0o644);
                let gnu = h.as_gnu_mut().expect("gnu header");
                gnu.uid = [0; 8];
                gnu.gid = [0; 8];
                gnu.mtime = [0; 12];
                gnu.mode = [0; 8];
                (h, d)
            }
        };
        h.set_cksum();
        // The builder pads by the bytes it copied, so a `Huge` header stays a cut-off stream.
        b.append(&h, data).expect("append to a Vec");
    }
    b.into_inner().expect("finish a Vec")
}

/// A temp dir with `root/` (the entry point's target) and `outside/` holding a sentinel file.
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
        for e in fs::read_dir(p).expect("read sandbox dir") {
            let e = e.expect("sandbox entry");
            let m = fs::symlink_metadata(e.path()).expect("stat sandbox entry");
            out.insert(e.path(), (m.len(), m.ino(), m.mode()));
            if m.is_dir() {
                walk(&e.path(), out);
            }
        }
    }
    walk(p, &mut out);
    out
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir(&root).expect("mkdir root");
        fs::create_dir(&outside).expect("mkdir outside");
        fs::write(outside.join("sentinel"), SENTINEL).expect("write sentinel");
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
        self.outside.to_str().expect("utf-8 temp path").to_string()
    }

    /// Panics if anything under `outside/` or beside root changed.
    pub fn assert_outside_untouched(&self) {
        assert_eq!(tree(&self.outside), self.before, "outside dir changed");
        assert_eq!(
            fs::read(self.outside.join("sentinel")).expect("read sentinel"),
            SENTINEL
        );
        let mut siblings: Vec<_> = fs::read_dir(self.dir.path())
            .expect("read sandbox")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        siblings.sort();
        assert_eq!(siblings, ["outside", "root"]);
    }
}

/// One named hostile input: its entries, with `@OUT` standing for the sentinel dir's path.
pub struct Case {
    pub name: &'static str,
    entries: Vec<(Kind, String, String)>,
}

#[derive(Clone, Copy)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
    Huge,
    Blank,
}

impl Case {
    fn new(name: &'static str, entries: &[(Kind, &str, &str)]) -> Case {
        Case {
            name,
            entries: entries
                .iter()
                .map(|(k, n, t)| (*k, n.to_string(), t.to_string()))
                .collect(),
        }
    }

    /// The case's entry names with `@OUT` replaced (what a COPY would be asked to write).
    pub fn names(&self, sb: &Sandbox) -> Vec<String> {
        let out = sb.outside_abs();
        self.entries
            .iter()
            .map(|(_, n, _)| n.replace("@OUT", &out))
            .collect()
    }

    /// The case as a tar for `sb`.
    pub fn tar(&self, sb: &Sandbox) -> Vec<u8> {
        let out = sb.outside_abs();
        let owned: Vec<(Kind, String, String)> = self
            .entries
            .iter()
            .map(|(k, n, t)| (*k, n.replace("@OUT", &out), t.replace("@OUT", &out)))
            .collect();
        let es: Vec<E<'_>> = owned
            .iter()
            .map(|(k, n, t)| match k {
                Kind::File => E::File(n, b"pwned"),
                Kind::Dir => E::Dir(n),
                Kind::Symlink => E::Symlink(n, t),
                Kind::Hardlink => E::Hardlink(n, t),
                Kind::Char => E::Char(n, 1, 3),
                Kind::Block => E::Block(n, 8, 0),
                Kind::Fifo => E::Fifo(n),
                Kind::Huge => E::Huge(n, 1 << 40, b"short"),
                Kind::Blank => E::Blank(n, b"blank"),
            })
            .collect();
        tar_of(&es)
    }
}

/// Every hostile case the entry points must refuse or confine.
pub fn cases() -> Vec<Case> {
    use Kind::*;
    vec![
        Case::new("dotdot names", &[(File, "../outside/pwned", "")]),
        Case::new(
            "dotdot inside a name",
            &[(File, "a/../../outside/pwned", "")],
        ),
        Case::new("dot then dotdot", &[(File, "./../pwned", "")]),
        Case::new("absolute name", &[(File, "@OUT/pwned", "")]),
        Case::new(
            "absolute symlink to / then a file through it",
            &[(Symlink, "evil", "/"), (File, "evil@OUT/pwned", "")],
        ),
        Case::new(
            "absolute symlink to the sentinel dir then a file through it",
            &[(Symlink, "direct", "@OUT"), (File, "direct/pwned", "")],
        ),
        Case::new(
            "climbing symlink then a file through it",
            &[
                (Symlink, "up", "../../../../../.."),
                (File, "up@OUT/pwned", ""),
                (File, "up/x", ""),
            ],
        ),
        Case::new(
            "symlink chain",
            &[
                (Symlink, "a", "b"),
                (Symlink, "b", "../../.."),
                (File, "a@OUT/pwned", ""),
            ],
        ),
        Case::new(
            "symlink replacing the sentinel path",
            &[(Symlink, "@OUT/sentinel", "/dev/null"), (Dir, "@OUT", "")],
        ),
        Case::new(
            "hardlink out with dotdot",
            &[(Hardlink, "s", "../outside/sentinel")],
        ),
        Case::new(
            "hardlink to an absolute host path",
            &[(Hardlink, "s", "@OUT/sentinel")],
        ),
        Case::new(
            "hardlink through an absolute symlink",
            &[(Symlink, "o", "@OUT"), (Hardlink, "s", "o/sentinel")],
        ),
        Case::new(
            "device nodes, also through a symlink",
            &[
                (Char, "null", ""),
                (Block, "sda", ""),
                (Fifo, "fifo", ""),
                (Symlink, "d", "@OUT"),
                (Char, "d/null", ""),
            ],
        ),
        Case::new("size far beyond the data", &[(Huge, "big", "")]),
        Case::new("blank uid, gid, mtime and mode", &[(Blank, "blank", "")]),
        Case::new(
            "whiteouts of dotdot and through a symlink",
            &[
                (File, "a/.wh...", ""),
                (Symlink, "w", "@OUT"),
                (File, "w/.wh.sentinel", ""),
                (File, "w/.wh..wh..opq", ""),
            ],
        ),
    ]
}

/// What an entry point did with one case: `Ok` (confined) or the error it refused with.
pub type Outcome = Result<(), String>;

/// Run every case through `entry` in a fresh sandbox. Fails (naming the case) if the entry
/// point panics or anything beside the root changed; returns each case's outcome so the
/// caller can assert refusals it promises.
pub fn run_cases(
    what: &str,
    entry: impl Fn(&Sandbox, &Case) -> Outcome,
) -> Vec<(&'static str, Outcome)> {
    let mut results = Vec::new();
    for case in cases() {
        let sb = Sandbox::new();
        let r = catch_unwind(AssertUnwindSafe(|| entry(&sb, &case)));
        let outcome = match r {
            Ok(o) => o,
            Err(_) => panic!("{what}: case {:?} panicked", case.name),
        };
        let touched = catch_unwind(AssertUnwindSafe(|| sb.assert_outside_untouched()));
        assert!(
            touched.is_ok(),
            "{what}: case {:?} wrote outside the root ({outcome:?})",
            case.name
        );
        results.push((case.name, outcome));
    }
    results
}
