//! A container's init layer (Docker's `-init` layer): the mount points the engine needs in every
//! rootfs (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, `/proc`, `/sys`, `/dev`, …) and
//! `/.dockerenv`, made in `containers-rw/<id>/init`, a read-only lower between the image and the
//! container's upper dir. The runtime then never creates them in the upper dir, so `docker diff`
//! and `docker commit` show only the container's own changes. Planned as data, then applied.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::overlay::OverlayXattrs;

/// What the engine needs at a path (Docker's `initlayer.Setup` table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Dir,
    File,
    Symlink(&'static str),
}

const ENTRIES: &[(&str, Want)] = &[
    ("dev", Want::Dir),
    ("dev/pts", Want::Dir),
    ("dev/shm", Want::Dir),
    ("proc", Want::Dir),
    ("sys", Want::Dir),
    (".dockerenv", Want::File),
    ("etc/resolv.conf", Want::File),
    ("etc/hosts", Want::File),
    ("etc/hostname", Want::File),
    ("dev/console", Want::File),
    ("etc/mtab", Want::Symlink("/proc/mounts")),
];

/// Owner, mode and mtime of a directory the image already has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

/// A path as the image's merged filesystem shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    Dir(DirMeta),
    /// A file, symlink or device.
    Other,
}

/// One step of the plan, path relative to the init dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitOp {
    /// A directory the image has: same owner/mode/mtime, so the merged view is unchanged.
    CopyDir(String, DirMeta),
    /// A new directory, `0755` root.
    Dir(String),
    /// An empty file, `0755` root (as Docker makes them).
    File(String),
    Symlink(String, &'static str),
}

/// The init layer for an image, given how its merged view shows a relative path. Files and
/// symlinks shadow a non-directory the image has there (Docker unlinks it); a directory the
/// image has is kept; entries under an image path that is not a directory are skipped.
pub fn plan(image: impl Fn(&str) -> Option<Seen>) -> Vec<InitOp> {
    let mut ops: BTreeMap<String, InitOp> = BTreeMap::new();
    'entries: for &(path, want) in ENTRIES {
        let seen = image(path);
        match (want, seen) {
            (_, Some(Seen::Dir(_))) | (Want::Dir, Some(Seen::Other)) => continue,
            _ => {}
        }
        let mut parents = Vec::new();
        let mut prefix = String::new();
        let comps: Vec<&str> = path.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
            match image(&prefix) {
                Some(Seen::Dir(m)) => parents.push(InitOp::CopyDir(prefix.clone(), m)),
                Some(Seen::Other) => continue 'entries,
                None => parents.push(InitOp::Dir(prefix.clone())),
            }
        }
        for p in parents {
            let key = op_path(&p).to_string();
            ops.entry(key).or_insert(p);
        }
        let op = match want {
            Want::Dir => InitOp::Dir(path.into()),
            Want::File => InitOp::File(path.into()),
            Want::Symlink(t) => InitOp::Symlink(path.into(), t),
        };
        ops.insert(path.into(), op);
    }
    // Sorted by path: every parent comes before its children.
    ops.into_values().collect()
}

fn op_path(op: &InitOp) -> &str {
    match op {
        InitOp::CopyDir(p, _) | InitOp::Dir(p) | InitOp::File(p) | InitOp::Symlink(p, _) => p,
    }
}

/// The merged view of overlay lower dirs (top-most first), read without mounting them:
/// whiteouts (char 0/0) hide lower entries, opaque directories hide lower contents.
pub struct LowerView<'a> {
    pub lowers: &'a [PathBuf],
    /// The namespace the lowers' opaque markers are in (the store's).
    pub xattrs: OverlayXattrs,
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

impl LowerView<'_> {
    /// How the merged view shows `rel` (relative, `/`-separated), or None when absent.
    pub fn lookup(&self, rel: &str) -> Option<Seen> {
        let mut layers: Vec<&PathBuf> = self.lowers.iter().collect();
        let mut at = PathBuf::new();
        let mut seen = None;
        for c in rel.split('/').filter(|c| !c.is_empty()) {
            at.push(c);
            let mut next = Vec::new();
            seen = None;
            for l in &layers {
                let p = l.join(&at);
                let Ok(m) = fs::symlink_metadata(&p) else {
                    continue;
                };
                if is_whiteout(&m) {
                    break;
                }
                if !m.is_dir() {
                    if seen.is_none() {
                        seen = Some(Seen::Other);
                    }
                    break;
                }
                if seen.is_none() {
                    seen = Some(Seen::Dir(DirMeta {
                        mode: m.mode() & 0o7777,
                        uid: m.uid(),
                        gid: m.gid(),
                        mtime: m.mtime(),
                        mtime_nsec: m.mtime_nsec(),
                    }));
                }
                next.push(*l);
                if self.xattrs.is_opaque(&p) {
                    break;
                }
            }
            match seen {
                Some(Seen::Dir(_)) => layers = next,
                _ => break,
            }
        }
        // A non-directory met before the last component hides the rest of the path.
        if at.as_os_str().len() < rel.trim_matches('/').len() {
            return None;
        }
        seen
    }
}

fn set_times(p: &Path, sec: i64, nsec: i64) -> io::Result<()> {
    use rustix::fs::{AtFlags, Timespec, Timestamps, CWD};
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    let ts = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, p, &ts, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Make the planned entries under `init` (created if missing). Directory times are set last,
/// after their children exist. Errors name the path (`fs-err`). What the image does not have
/// belongs to `root`, the host ids of the container's root (0:0 unless `--userns-remap`).
pub fn apply(init: &Path, ops: &[InitOp], root: (u32, u32)) -> io::Result<()> {
    fs_err::create_dir_all(init)?;
    let mut times = Vec::new();
    for op in ops {
        let p = init.join(op_path(op));
        match op {
            InitOp::CopyDir(_, m) => {
                fs_err::create_dir(&p)?;
                fs_err::os::unix::fs::lchown(&p, Some(m.uid), Some(m.gid))?;
                fs_err::set_permissions(&p, fs::Permissions::from_mode(m.mode))?;
                times.push((p.clone(), m.mtime, m.mtime_nsec));
            }
            InitOp::Dir(_) => {
                fs_err::create_dir(&p)?;
                fs_err::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
            }
            InitOp::File(_) => {
                fs_err::File::create(&p)?;
                fs_err::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
            }
            InitOp::Symlink(_, target) => fs_err::os::unix::fs::symlink(target, &p)?,
        }
        if !matches!(op, InitOp::CopyDir(..)) && root != (0, 0) {
            fs_err::os::unix::fs::lchown(&p, Some(root.0), Some(root.1))?;
        }
    }
    for (p, s, ns) in times.iter().rev() {
        set_times(p, *s, *ns)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mode: u32) -> DirMeta {
        DirMeta {
            mode,
            uid: 0,
            gid: 0,
            mtime: 1,
            mtime_nsec: 0,
        }
    }

    #[test]
    fn plan_keeps_image_dirs_and_shadows_files() {
        let image = |p: &str| match p {
            "etc" => Some(Seen::Dir(meta(0o700))),
            "etc/hostname" => Some(Seen::Other),
            "etc/resolv.conf" => Some(Seen::Dir(meta(0o755))),
            "proc" | "sys" | "dev" => Some(Seen::Dir(meta(0o755))),
            _ => None,
        };
        let ops = plan(image);
        assert_eq!(
            ops,
            vec![
                InitOp::File(".dockerenv".into()),
                InitOp::CopyDir("dev".into(), meta(0o755)),
                InitOp::File("dev/console".into()),
                InitOp::Dir("dev/pts".into()),
                InitOp::Dir("dev/shm".into()),
                InitOp::CopyDir("etc".into(), meta(0o700)),
                InitOp::File("etc/hostname".into()),
                InitOp::File("etc/hosts".into()),
                InitOp::Symlink("etc/mtab".into(), "/proc/mounts"),
            ]
        );
    }

    #[test]
    fn plan_for_an_empty_image_and_a_symlinked_etc() {
        let ops = plan(|p| (p == "etc").then_some(Seen::Other));
        let paths: Vec<&str> = ops.iter().map(op_path).collect();
        assert_eq!(
            paths,
            [
                ".dockerenv",
                "dev",
                "dev/console",
                "dev/pts",
                "dev/shm",
                "proc",
                "sys"
            ]
        );
        assert!(ops.contains(&InitOp::Dir("dev".into())));
    }

    #[test]
    fn lower_view_honours_whiteouts_opaque_dirs_and_order() {
        for xattrs in [OverlayXattrs::Trusted, OverlayXattrs::User] {
            lower_view_case(xattrs);
        }
    }

    fn lower_view_case(xattrs: OverlayXattrs) {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("top");
        let bottom = t.path().join("bottom");
        fs::create_dir_all(bottom.join("etc/sub")).unwrap();
        fs::write(bottom.join("etc/hosts"), "x").unwrap();
        fs::write(bottom.join("file"), "x").unwrap();
        fs::create_dir_all(top.join("etc")).unwrap();
        fs::set_permissions(top.join("etc"), fs::Permissions::from_mode(0o711)).unwrap();
        std::os::unix::fs::symlink("/nowhere", top.join("file2")).unwrap();
        let lowers = vec![top.clone(), bottom.clone()];
        let v = LowerView {
            lowers: &lowers,
            xattrs,
        };
        assert!(matches!(v.lookup("etc"), Some(Seen::Dir(m)) if m.mode == 0o711));
        assert_eq!(v.lookup("etc/hosts"), Some(Seen::Other));
        assert!(matches!(v.lookup("etc/sub"), Some(Seen::Dir(_))));
        assert_eq!(v.lookup("file2"), Some(Seen::Other));
        assert_eq!(v.lookup("file/below"), None);
        assert_eq!(v.lookup("nothing"), None);
        let root = rustix::process::geteuid().is_root();
        // Whiteouts need mknod (root).
        if root {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                top.join("etc/hosts"),
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .unwrap();
            assert_eq!(v.lookup("etc/hosts"), None);
        }
        // Opaque dirs: trusted xattrs need root, user ones only the owner; the other
        // namespace's marker is not read.
        if root || xattrs == OverlayXattrs::User {
            let other = match xattrs {
                OverlayXattrs::Trusted => OverlayXattrs::User,
                OverlayXattrs::User => OverlayXattrs::Trusted,
            };
            if other == OverlayXattrs::User || root {
                other
                    .set_opaque(fs::File::open(top.join("etc")).unwrap())
                    .unwrap();
                assert!(
                    matches!(v.lookup("etc/sub"), Some(Seen::Dir(_))),
                    "{other:?}"
                );
            }
            xattrs
                .set_opaque(fs::File::open(top.join("etc")).unwrap())
                .unwrap();
            assert_eq!(v.lookup("etc/sub"), None, "{xattrs:?}");
        }
    }

    #[test]
    fn apply_makes_the_planned_tree() {
        let t = tempfile::tempdir().unwrap();
        let init = t.path().join("init");
        let ops = vec![
            InitOp::File(".dockerenv".into()),
            InitOp::CopyDir(
                "etc".into(),
                DirMeta {
                    mode: 0o750,
                    uid: rustix::process::geteuid().as_raw(),
                    gid: rustix::process::getegid().as_raw(),
                    mtime: 1_000_000,
                    mtime_nsec: 5,
                },
            ),
            InitOp::File("etc/hosts".into()),
            InitOp::Symlink("etc/mtab".into(), "/proc/mounts"),
            InitOp::Dir("proc".into()),
        ];
        apply(&init, &ops, (0, 0)).unwrap();
        let etc = fs::symlink_metadata(init.join("etc")).unwrap();
        assert_eq!(etc.mode() & 0o7777, 0o750);
        assert_eq!((etc.mtime(), etc.mtime_nsec()), (1_000_000, 5));
        assert_eq!(fs::read(init.join("etc/hosts")).unwrap().len(), 0);
        assert_eq!(
            fs::read_link(init.join("etc/mtab")).unwrap(),
            Path::new("/proc/mounts")
        );
        assert!(init.join("proc").is_dir());
        assert!(init.join(".dockerenv").is_file());
    }
}
