//! berth's one crash-safe file replacement: a temp file with a name unique to this write
//! (pid + counter) in the target's directory, write, fsync, rename over the target, fsync the
//! directory. Concurrent writers of one path never share a temp file, so the target is always
//! one writer's complete bytes; a crash leaves the old file or the new one, never a mix.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fsmode;

/// How a write is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Permission bits of the new file.
    pub mode: u32,
    /// fsync the file before the rename and the directory after it. Off only for files whose
    /// loss in a power cut does not matter (an auto-removed container's exit status): the
    /// rename is still atomic, so readers never see a torn file.
    pub durable: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: fsmode::PRIVATE_FILE,
            durable: true,
        }
    }
}

/// The temp name for one write of `path`: `.<name>.tmp-<pid>-<n>` next to it.
fn temp_path(path: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Replace `path` with `bytes` crash-safely (creating a missing directory 0700); the file is
/// 0600. Errors name `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, bytes, Options::default())
}

/// [`write_atomic`] with a chosen mode and durability.
pub fn write_atomic_with(path: &Path, bytes: &[u8], opts: Options) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // A missing directory is created private; an existing one keeps its mode (the pid file's
    // directory may be one the user named, such as /tmp).
    if !dir.is_dir() {
        fsmode::private_dir(dir)?;
    }
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(opts.mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if opts.durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io::Error::new(
            e.kind(),
            format!("write {}: {e}", path.display()),
        ));
    }
    if opts.durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsync a directory, so a rename or create in it survives a power cut. Errors name `dir`.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io::Error::new(e.kind(), format!("sync {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temp_behind() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/config.v2.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(names(p.parent().unwrap()), ["config.v2.json"]);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(p.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700,
            "a missing directory is created private"
        );
    }

    #[test]
    fn options_choose_the_mode_and_a_non_durable_write_is_still_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("exit.json");
        let opts = Options {
            mode: 0o640,
            durable: false,
        };
        write_atomic_with(&p, b"{}", opts).unwrap();
        write_atomic_with(&p, b"{\"code\":1}", opts).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"{\"code\":1}");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(names(d.path()), ["exit.json"]);
    }

    /// Every writer once used `<path>.tmp`: one writer's rename took the shared temp away
    /// from another (ENOENT) or published a file another writer was still filling.
    #[test]
    fn concurrent_writers_never_tear_or_fail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("rec.json");
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let p = &p;
                s.spawn(move || {
                    let body = vec![b'a' + t; 64 * 1024];
                    for _ in 0..50 {
                        write_atomic(p, &body).unwrap();
                        let got = fs::read(p).unwrap();
                        assert_eq!(got.len(), body.len(), "torn file");
                        assert!(got.iter().all(|b| *b == got[0]), "mixed writers");
                    }
                });
            }
        });
        assert_eq!(names(d.path()), ["rec.json"]);
    }

    #[test]
    fn failure_names_the_file_and_removes_the_temp() {
        let d = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: rename fails.
        let p = d.path().join("busy");
        fs::create_dir_all(p.join("x")).unwrap();
        let e = write_atomic(&p, b"x").unwrap_err();
        assert!(e.to_string().contains("busy"), "{e}");
        assert_eq!(names(d.path()), ["busy"]);
    }

    #[test]
    fn sync_dir_names_a_missing_dir() {
        let d = tempfile::tempdir().unwrap();
        let e = sync_dir(&d.path().join("gone")).unwrap_err();
        assert!(e.to_string().contains("gone"), "{e}");
        sync_dir(d.path()).unwrap();
    }
}
