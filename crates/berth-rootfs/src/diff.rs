//! `docker diff`: the changes an overlay upper dir records against its lower dirs (added,
//! modified, deleted by whiteout), as `GET /containers/{id}/changes` lists them.
//!
//! The upper dir is walked by file descriptor (`openat(O_NOFOLLOW)` on an open directory, so a
//! running container swapping a directory for a symlink cannot send the walk outside), and a
//! path is looked up in each lower dir as a [`Root`] with `RESOLVE_NO_SYMLINKS`: overlayfs
//! never follows a lower layer's symlink into a merged directory, and neither does this.

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};

use crate::error::{Result, RootfsError};
use crate::root::Root;

/// One entry of `GET /containers/{id}/changes`: kind 0 modified, 1 added, 2 deleted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// Changes recorded in an overlay upper dir against its lower dirs (top-most first).
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let err = |e: io::Error| RootfsError::op(format!("changes in {}", upper.display()), e);
    let top = Root::open_readable(upper).map_err(err)?;
    // A lower that cannot be opened holds nothing (as a missing path in it did before).
    let lowers: Vec<Root> = lowers.iter().filter_map(|l| Root::open(l).ok()).collect();
    let mut out = Vec::new();
    let dir = rfs::openat(
        top.fd(),
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err(e.into()))?;
    walk_changes(&dir, &lowers, "", &mut out).map_err(err)?;
    out.sort();
    Ok(out)
}

/// Whether `rel` exists in a lower dir, no symlink followed on the way (nor the last one).
fn in_lower(lowers: &[Root], rel: &str) -> bool {
    lowers.iter().any(|l| {
        rfs::openat2(
            l.fd(),
            rel,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS,
        )
        .is_ok()
    })
}

fn walk_changes(
    dir: &OwnedFd,
    lowers: &[Root],
    rel: &str,
    out: &mut Vec<Change>,
) -> io::Result<()> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    for ent in rfs::Dir::read_from(dir)? {
        let n = ent?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            names.push(n);
        }
    }
    names.sort();
    for n in names {
        let name = OsStr::from_bytes(&n);
        let r = if rel.is_empty() {
            String::from_utf8_lossy(&n).into_owned()
        } else {
            format!("{rel}/{}", String::from_utf8_lossy(&n))
        };
        let st = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let ft = FileType::from_raw_mode(st.st_mode);
        let cpath = format!("/{r}");
        if ft == FileType::CharacterDevice && st.st_rdev == 0 {
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
        if ft == FileType::Directory {
            let sub = rfs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            walk_changes(&sub, lowers, &r, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// A lower dir whose `a` is a symlink to a host dir must not make the upper's `a/x` look
    /// "modified" because the host dir has an `x`: overlayfs does not follow it, and looking
    /// there reads the host. Before the walk used root handles this reported kind 0.
    #[test]
    fn lower_symlinks_are_not_followed_outside() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower, host) = (t.path().join("u"), t.path().join("l"), t.path().join("h"));
        fs::create_dir_all(upper.join("a")).unwrap();
        fs::write(upper.join("a/x"), b"new").unwrap();
        fs::create_dir_all(&lower).unwrap();
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("x"), b"host").unwrap();
        symlink(&host, lower.join("a")).unwrap();
        fs::write(upper.join("f"), b"f").unwrap();
        fs::write(lower.join("f"), b"old").unwrap();
        let got = changes(&upper, &[lower]).unwrap();
        let want = vec![
            Change {
                path: "/a".into(),
                kind: 0,
            },
            Change {
                path: "/a/x".into(),
                kind: 1,
            },
            Change {
                path: "/f".into(),
                kind: 0,
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn an_upper_symlink_to_a_dir_is_listed_not_walked() {
        let t = tempfile::tempdir().unwrap();
        let (upper, host) = (t.path().join("u"), t.path().join("h"));
        fs::create_dir_all(&upper).unwrap();
        fs::create_dir_all(host.join("deep")).unwrap();
        symlink(&host, upper.join("link")).unwrap();
        let got = changes(&upper, &[]).unwrap();
        assert_eq!(
            got,
            vec![Change {
                path: "/link".into(),
                kind: 1
            }]
        );
        let e = changes(&t.path().join("missing"), &[]).unwrap_err();
        assert!(e.to_string().starts_with("changes in "), "{e}");
    }
}
