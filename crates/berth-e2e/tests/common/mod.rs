//! Shared harness: an in-process daemon on a temp socket and temp root, stopped on drop.

#![allow(dead_code)]

pub mod cli;
pub mod leftovers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth_daemon::DaemonConfig;

/// A running daemon; dropping it shuts it down and removes its temp dir.
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestDaemon {
    pub fn start() -> TestDaemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .unwrap();
        let cfg = DaemonConfig::under(dir.path());
        let socket = cfg.socket.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = berth_api::listen::bind_socket(&cfg.socket).await.unwrap();
                ready_tx.send(()).unwrap();
                let engine = berth_daemon::start_engine(
                    &cfg,
                    berth_http_reqwest::ReqwestConnector::shared(),
                )
                .await
                .unwrap();
                berth_api::listen::serve(
                    berth_api::listen::Listener::Unix(l),
                    berth_api::app(engine.services()),
                    berth_api::listen::Limits::default(),
                    async move {
                        let _ = rx.await;
                    },
                )
                .await
                .unwrap();
            });
        });
        ready_rx.recv().expect("daemon thread started");
        TestDaemon {
            dir,
            socket,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Run the real docker CLI against this daemon (own config dir, no contexts).
    pub fn docker(&self, args: &[&str]) -> Output {
        let cfgdir = self.dir.path().join("docker-config");
        std::fs::create_dir_all(&cfgdir).unwrap();
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", &cfgdir)
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .output()
            .expect("run docker")
    }

    /// Run docker and return stdout, failing the test with stderr when it fails.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stdout).unwrap()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Snapshots may hold root-owned, read-only trees; make them removable.
        let _ = Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(self.dir.path())
            .status();
    }
}

pub fn busybox(test: &str) -> Option<PathBuf> {
    berth_testutil::image(test, "busybox")
}

/// Poll `f` every 100ms until it returns Some, for at most `secs` seconds.
pub fn poll<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..secs * 10 {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// An HTTP/1.0 GET of `path` at `addr` (a published port, `[::1]` included): the body, or
/// None while nothing answers (10 s read timeout).
pub fn http_get(addr: impl std::net::ToSocketAddrs, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Entry names (trailing `/` dropped, sorted) of the top layer of a `docker save` archive.
pub fn saved_top_layer_entries(archive: &[u8]) -> Vec<String> {
    use std::io::Read;
    let read = |name: &str| -> Vec<u8> {
        let mut a = tar::Archive::new(archive);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_str() == Some(name) {
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                return b;
            }
        }
        panic!("{name} not in the saved archive");
    };
    let m: serde_json::Value = serde_json::from_slice(&read("manifest.json")).unwrap();
    let layer = m[0]["Layers"].as_array().unwrap().last().unwrap().clone();
    let blob = read(layer.as_str().unwrap());
    let plain = if blob.starts_with(&[0x1f, 0x8b]) {
        let mut v = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut v)
            .unwrap();
        v
    } else {
        blob
    };
    let mut names: Vec<String> = tar::Archive::new(&plain[..])
        .entries()
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path().unwrap().display().to_string();
            p.trim_end_matches('/').to_string()
        })
        .collect();
    names.sort();
    names
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The real uid a host process runs as (`/proc/PID/status`).
pub fn host_uid(pid: i32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Host processes whose uid `owned` accepts (a user a test made, and its subordinate ids).
pub fn processes_of(owned: impl Fn(u32) -> bool) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| host_uid(*pid).is_some_and(&owned))
                .collect()
        })
        .unwrap_or_default()
}

/// How many subordinate ids a test user gets (as `useradd` would).
pub const TEST_RANGE: u32 = 65536;

/// A subordinate range start no other test user of this run shares: 1M + a multiple of 64Ki
/// picked by the test's random hex `tag`.
pub fn test_range_start(tag: &str) -> u32 {
    1_000_000 + u32::from_str_radix(tag, 16).unwrap() % 60_000 * TEST_RANGE
}

/// Make a user for a test (`useradd -M`, without useradd's automatic subordinate ranges) and,
/// with `range_start`, give it [`TEST_RANGE`] subordinate uids and gids from there (`usermod`
/// locks the files as useradd does); its uid. Remove it with [`remove_test_user`].
pub fn add_test_user(name: &str, home: Option<&Path>, range_start: Option<u32>) -> u32 {
    let mut c = std::process::Command::new("useradd");
    c.args([
        "-M",
        "-s",
        "/bin/sh",
        "-K",
        "SUB_UID_COUNT=0",
        "-K",
        "SUB_GID_COUNT=0",
    ]);
    if let Some(h) = home {
        c.arg("-d").arg(h);
    }
    let made = c.arg(name).output().unwrap();
    assert!(
        made.status.success(),
        "useradd: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    if let Some(start) = range_start {
        let ids = format!("{start}-{}", start + TEST_RANGE - 1);
        let o = std::process::Command::new("usermod")
            .args(["--add-subuids", &ids, "--add-subgids", &ids, name])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "usermod: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}

/// Remove a user a test made: end its processes (and its subordinate ids') by PID — an ssh
/// session or a container can outlive what the test stopped, and `userdel` refuses a user
/// with running processes — then `userdel` it (which also drops its /etc/subuid and
/// /etc/subgid ranges and, with `-U`, its group).
pub fn remove_test_user(name: &str, owned: impl Fn(u32) -> bool) {
    for _ in 0..50 {
        let left = processes_of(&owned);
        if left.is_empty() {
            break;
        }
        for pid in left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = std::process::Command::new("userdel").arg(name).output();
}
