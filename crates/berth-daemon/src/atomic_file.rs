//! The daemon's one crash-safe file replacement: a temp file with a name unique to this write
//! (pid + counter) in the target's directory, fsync, rename over the target, fsync the
//! directory. Concurrent writers of one path never share a temp file, so the target is always
//! one writer's complete bytes.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
/// 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // A missing directory is created private; an existing one keeps its mode (the pid file's
    // directory may be one the user named, such as /tmp).
    if !dir.is_dir() {
        berth_store::fsmode::private_dir(dir)?;
    }
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io::Error::new(
            e.kind(),
            format!("write {}: {e}", path.display()),
        ));
    }
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temp_behind() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/config.v2.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.v2.json")]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    /// Before, every writer used `<path>.tmp`: one writer's rename took the shared temp away
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
    }

    /// The container record's save path (`config.v2.json`): many saves of one record at once.
    #[test]
    fn concurrent_container_saves_keep_a_whole_record() {
        let d = tempfile::tempdir().unwrap();
        let ctrs = crate::containers::Containers::open(d.path());
        let id = "c0ffee".repeat(4);
        std::thread::scope(|s| {
            for t in 0..8 {
                let (ctrs, id) = (&ctrs, &id);
                s.spawn(move || {
                    for i in 0..40 {
                        let rec = crate::containers::Record {
                            id: id.clone(),
                            name: format!("n{t}-{i}-{}", "x".repeat(4096)),
                            ..Default::default()
                        };
                        ctrs.persist(&rec).expect("concurrent save failed");
                    }
                });
            }
        });
        let dir = ctrs.ctr_dir(&id);
        let rec: crate::containers::Record =
            serde_json::from_slice(&fs::read(dir.join("config.v2.json")).unwrap()).unwrap();
        assert_eq!(rec.id, id);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "temp files left");
    }

    #[test]
    fn failure_names_the_file_and_removes_the_temp() {
        let d = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: rename fails.
        let p = d.path().join("busy");
        fs::create_dir_all(p.join("x")).unwrap();
        let e = write_atomic(&p, b"x").unwrap_err();
        assert!(e.to_string().contains("busy"), "{e}");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
