//! Crash consistency: a child process loading an image is SIGKILLed mid-stream and mid-unpack;
//! `Store::open` must repair the store to a consistent state that loads images again.
//!
//! The child is this test binary re-executed on the `crash_child` test with an environment
//! variable; it reports progress on stdout so the parent kills it at a known point (no timing).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use berth_store::{load_archive, Store};

const CHILD_ENV: &str = "BERTH_STORE_CRASH_CHILD";

/// Reads the archive; at `stall_at` bytes it reports STALLED and blocks forever.
struct Probe {
    inner: fs::File,
    read: u64,
    stall_at: Option<u64>,
}

impl Read for Probe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(limit) = self.stall_at {
            if self.read >= limit {
                // Straight to fd 1: print! would be swallowed by libtest's output capture.
                let mut out = std::io::stdout();
                out.write_all(b"STALLED\n").unwrap();
                out.flush().unwrap();
                loop {
                    std::thread::park();
                }
            }
        }
        let max = match self.stall_at {
            Some(l) => buf.len().min((l - self.read) as usize),
            None => buf.len(),
        };
        let n = self.inner.read(&mut buf[..max])?;
        self.read += n as u64;
        Ok(n)
    }
}

/// The child side. A no-op unless started by a crash test.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let store = Store::open(Path::new(parts[0])).unwrap();
    let stall_at = parts[2].parse::<u64>().ok();
    let probe = Probe {
        inner: fs::File::open(parts[1]).unwrap(),
        read: 0,
        stall_at,
    };
    load_archive(&store, probe).unwrap();
}

/// Kills the child by PID on drop (also when the test panics).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(root: &Path, archive: &Path, stall_at: Option<u64>) -> ChildGuard {
    let spec = format!(
        "{}|{}|{}",
        root.display(),
        archive.display(),
        stall_at
            .map(|n| n.to_string())
            .unwrap_or_else(|| "none".into())
    );
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ChildGuard(child)
}

/// Read the child's stdout until `marker` (or EOF); true when seen.
fn wait_for(child: &mut ChildGuard, marker: &str) -> bool {
    let out = child.0.stdout.as_mut().unwrap();
    let mut r = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap() == 0 {
            return false;
        }
        if line.contains(marker) {
            return true;
        }
    }
}

/// The invariants a repaired store must hold.
fn assert_consistent(s: &Store) {
    assert_eq!(
        fs::read_dir(s.root().join("tmp")).unwrap().count(),
        0,
        "tmp/ must be empty after open"
    );
    let mut chains = std::collections::HashSet::new();
    for img in s.images().unwrap() {
        assert!(s.has_blob(&img.manifest_digest));
        assert!(s.has_blob(&img.id));
        for l in &img.layers {
            assert!(s.has_blob(&l.digest), "layer blob {} missing", l.digest);
        }
        for p in s.image_layers(&img.id).unwrap() {
            assert!(p.is_dir(), "snapshot {} missing", p.display());
        }
        chains.extend(berth_store::chain_ids(&img.config.rootfs.diff_ids));
    }
    let snaps = fs::read_dir(s.root().join("snapshots")).unwrap().count();
    assert_eq!(
        snaps,
        chains.len(),
        "only referenced, complete snapshots remain"
    );
}

fn root_in(d: &tempfile::TempDir) -> PathBuf {
    d.path().join("store")
}

#[test]
fn crash_while_streaming_leaves_nothing_behind() {
    if !berth_testutil::require_root("crash_while_streaming") {
        return;
    }
    let Some(deb) = berth_testutil::image("crash_while_streaming", "debian-bookworm-minbase")
    else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let root = root_in(&d);
    let mut child = spawn(&root, &deb, Some(20 << 20));
    assert!(
        wait_for(&mut child, "STALLED"),
        "child never reached the stall point"
    );
    // Something was staged before the kill.
    assert!(fs::read_dir(root.join("tmp")).unwrap().count() > 0);
    drop(child); // SIGKILL + reap
    let s = Store::open(&root).unwrap();
    assert_consistent(&s);
    assert!(s.images().unwrap().is_empty());
    assert_eq!(fs::read_dir(root.join("blobs/sha256")).unwrap().count(), 0);
}

#[test]
fn crash_while_unpacking_is_repaired_on_open() {
    if !berth_testutil::require_root("crash_while_unpacking") {
        return;
    }
    let (Some(deb), Some(bb)) = (
        berth_testutil::image("crash_while_unpacking", "debian-bookworm-minbase"),
        berth_testutil::image("crash_while_unpacking", "busybox"),
    ) else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let root = root_in(&d);
    let mut child = spawn(&root, &deb, None);
    // Wait (by observing the disk, not the clock) until unpacking is under way, then kill.
    let mut killed_mid_unpack = false;
    loop {
        if child.0.try_wait().unwrap().is_some() {
            break;
        }
        let unpacking = fs::read_dir(root.join("snapshots"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("fs/usr/lib").exists());
        if unpacking {
            child.0.kill().unwrap();
            killed_mid_unpack = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(child);
    eprintln!("killed mid-unpack: {killed_mid_unpack}");
    let s = Store::open(&root).unwrap();
    assert_consistent(&s);
    if killed_mid_unpack {
        // The image never committed: no rows, no snapshot dirs.
        assert!(s.images().unwrap().is_empty());
        assert_eq!(fs::read_dir(root.join("snapshots")).unwrap().count(), 0);
    }
    // The repaired store works: a load succeeds and is consistent.
    let img = load_archive(&s, fs::File::open(&bb).unwrap())
        .unwrap()
        .remove(0);
    assert!(s.image_layers(&img.id).unwrap()[0]
        .join("bin/busybox")
        .exists());
    assert_consistent(&s);
    // GC leaves exactly the referenced blobs.
    s.gc().unwrap();
    for e in fs::read_dir(root.join("blobs/sha256")).unwrap().flatten() {
        let dg = berth_oci::Digest::from_hex(&e.file_name().to_string_lossy()).unwrap();
        let all = s.images().unwrap();
        assert!(all.iter().any(|i| i.id == dg
            || i.manifest_digest == dg
            || i.layers.iter().any(|l| l.digest == dg)));
    }
}
