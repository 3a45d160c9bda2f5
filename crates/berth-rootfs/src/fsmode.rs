//! Modes of berth's state. Everything under the root is the engine's alone: directories are
//! 0700 and records, logs and databases 0600, so a local user can neither run a setuid binary
//! from an image layer or a container's upper dir nor read containers' environment and logs (the
//! class of CVE-2021-41091). Paths a container sees (a rw layer's `upper`, a volume's `_data`,
//! bind-mounted `hosts`) keep their own modes; only their parents are closed. Nothing here
//! needs 0710: overlay layers are opened with the mounter's credentials and bind mounts are
//! reached without walking their host parents.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every state directory.
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode of every record, log and database file.
pub const PRIVATE_FILE: u32 = 0o600;

/// Create `dir` (and missing parents; only `dir` itself gets the mode) and make it 0700, also
/// when it already existed with another mode.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    match fs::DirBuilder::new().mode(PRIVATE_DIR).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(e),
    }
    set_mode(dir, PRIVATE_DIR)
}

/// Under `--userns-remap`, let the containers' root (group `gid` on the host) pass through
/// `dir` to what a container mounts (its rw layer, volumes, hosts files): owner root, group
/// `gid`, mode 0710 (search only, as dockerd's remapped root). Others still get nothing.
pub fn group_traverse(dir: &Path, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(dir, None, Some(gid))?;
    set_mode(dir, 0o710)
}

/// Create (or truncate) `path` for writing with mode 0600; an existing file is also chmodded.
pub fn private_file(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE))?;
    Ok(f)
}

/// Open `path` for appending (creating it 0600): logs.
pub fn private_append(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(PRIVATE_FILE)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE))?;
    Ok(f)
}

/// Repair the modes of an existing root: `root` and every directory directly in it become
/// 0700, every regular file directly in it 0600. Symlinks and anything deeper (image contents,
/// containers' files) are left alone. Returns the paths whose mode changed.
pub fn repair_top(root: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let mut changed = Vec::new();
    if fix(root, PRIVATE_DIR)? {
        changed.push(root.to_path_buf());
    }
    for e in fs::read_dir(root)? {
        let e = e?;
        let ft = e.file_type()?;
        let want = if ft.is_dir() {
            PRIVATE_DIR
        } else if ft.is_file() {
            PRIVATE_FILE
        } else {
            continue;
        };
        if fix(&e.path(), want)? {
            changed.push(e.path());
        }
    }
    Ok(changed)
}

/// Set `p`'s permission bits to `mode` unless they already are; true when changed.
fn fix(p: &Path, mode: u32) -> io::Result<bool> {
    let m = fs::symlink_metadata(p)?;
    if m.file_type().is_symlink() || m.permissions().mode() & 0o7777 == mode {
        return Ok(false);
    }
    set_mode(p, mode)?;
    Ok(true)
}

fn set_mode(p: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
}

/// Ask the filesystem to spread new subdirectories of `dir` over its block groups, as it does
/// for top-level directories (ext4's `FS_TOPDIR_FL`, `chattr +T`). Used on the directories that
/// receive whole unpacked trees (image snapshots, containers' rw layers). Why: ext4 without a
/// journal skips inodes freed in the last 60 s (300 s while their table block is dirty) when it
/// allocates, scanning each of them, and otherwise places a directory's subdirectories in its
/// own group. An `rmi` followed by a pull then made every new inode step over the thousands just
/// freed in that group: a Debian pull went from 0.7 s to 4.5–11.5 s on this machine, and its
/// time depended on what was deleted in the minute before (the pull benchmark's variance).
/// Spread, each snapshot lands in a group of its own choosing. Returns false where the
/// filesystem has no such flag (tmpfs, overlay, xfs …): nothing to do there.
pub fn spread_subdirs(dir: &Path) -> io::Result<bool> {
    use rustix::fs::{ioctl_getflags, ioctl_setflags, IFlags};
    use rustix::io::Errno;
    let d = File::open(dir)?;
    let unsupported = |e: Errno| {
        matches!(
            e,
            Errno::NOTTY | Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS | Errno::PERM
        )
    };
    let flags = match ioctl_getflags(&d) {
        Ok(f) => f,
        Err(e) if unsupported(e) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if flags.contains(IFlags::TOPDIR) {
        return Ok(true);
    }
    match ioctl_setflags(&d, flags | IFlags::TOPDIR) {
        Ok(()) => Ok(true),
        Err(e) if unsupported(e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn private_dir_creates_and_tightens() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        fs::write(t.path().join("f"), b"x").unwrap();
        assert!(private_dir(&t.path().join("f")).is_err());
    }

    #[test]
    fn private_files_are_0600_even_when_they_existed() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("rec.json");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        drop(private_file(&p).unwrap());
        assert_eq!(mode(&p), 0o600);
        assert_eq!(fs::read(&p).unwrap(), b"");
        let l = t.path().join("log");
        drop(private_append(&l).unwrap());
        assert_eq!(mode(&l), 0o600);
    }

    #[test]
    fn repair_top_fixes_one_level_only() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("containers/abc")).unwrap();
        fs::write(root.join("meta.db"), b"").unwrap();
        std::os::unix::fs::symlink("/", root.join("link")).unwrap();
        for p in [
            &root,
            &root.join("containers"),
            &root.join("containers/abc"),
        ] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(root.join("meta.db"), fs::Permissions::from_mode(0o644)).unwrap();
        let changed = repair_top(&root).unwrap();
        assert_eq!(changed.len(), 3, "{changed:?}");
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("containers")), 0o700);
        assert_eq!(mode(&root.join("meta.db")), 0o600);
        assert_eq!(
            mode(&root.join("containers/abc")),
            0o755,
            "deeper dirs untouched"
        );
        assert_eq!(
            mode(Path::new("/")) & 0o777,
            0o755,
            "symlink target untouched"
        );
        assert!(repair_top(&root).unwrap().is_empty());
    }

    #[test]
    fn spread_subdirs_sets_the_top_directory_flag_where_there_is_one() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("snapshots");
        fs::create_dir(&d).unwrap();
        let set = spread_subdirs(&d).unwrap();
        let flags = rustix::fs::ioctl_getflags(File::open(&d).unwrap());
        match flags {
            // ext2/3/4 and the like: the flag is there, and asking again changes nothing.
            Ok(f) if set => {
                assert!(f.contains(rustix::fs::IFlags::TOPDIR), "{f:?}");
                assert!(spread_subdirs(&d).unwrap());
            }
            // A filesystem without the flag (tmpfs …): reported, not an error.
            _ => assert!(!set),
        }
        assert!(spread_subdirs(&t.path().join("missing")).is_err());
    }
}
