//! Test harness: every test runs on its own thread inside a fresh network namespace that plays
//! "the host", so berth's bridges, nft table and sysctls never touch the real host and vanish
//! with the thread. Container netns bind mounts are unmounted by a Drop guard.

#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use berth_network::{ManagerOptions, NetworkManager};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short unique tag for device/table names.
pub fn tag() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{:x}{n}", std::process::id() & 0xffff)
}

/// Run `f` on a new thread inside a new network namespace with loopback up.
pub fn isolated<F, Fut>(test: &str, f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    if !berth_testutil::require_root(test)
        || !berth_testutil::require_cmds(test, &["nft", "ip", "nsenter", "busybox"])
    {
        return;
    }
    let h = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare netns");
        sh("ip link set lo up");
        // workers are spawned from this thread, so they share its netns; the embedded DNS
        // keeps running while the test body blocks on a client call
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(f());
    });
    if let Err(p) = h.join() {
        std::panic::resume_unwind(p);
    }
}

/// Run a shell command in the current thread's netns; panics on failure.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command, returning success and combined output.
pub fn try_sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Temp dirs and netns mounts of one test; unmounts on drop (also on panic).
pub struct Env {
    pub dir: tempfile::TempDir,
    pub table: String,
    pub bridge: String,
}

impl Env {
    pub fn new() -> Self {
        let t = tag();
        Env {
            dir: tempfile::tempdir().unwrap(),
            table: format!("bt_{t}"),
            bridge: format!("bt0{t}"),
        }
    }
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn opts(&self) -> ManagerOptions {
        let mut o = ManagerOptions::new(self.dir.path().join("run"));
        o.nft_table = self.table.clone();
        o.default_bridge = Some(self.bridge.clone());
        o.dns_upstreams = Some(vec![]);
        o
    }
    pub async fn open(&self) -> NetworkManager {
        NetworkManager::open(&self.state_dir(), self.opts())
            .await
            .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let netns = self.dir.path().join("run/netns");
        if let Ok(rd) = std::fs::read_dir(&netns) {
            for e in rd.flatten() {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// Run `f` on a thread inside the netns at `ns`.
pub fn in_ns<T: Send + 'static>(ns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_path_buf();
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&ns).unwrap();
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// Start a TCP server inside `ns` on `port` answering `reply` to `n` connections.
pub fn serve_tcp(
    ns: &Path,
    port: u16,
    reply: &'static str,
    n: usize,
) -> std::thread::JoinHandle<()> {
    let ns = ns.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let fd = std::fs::File::open(&ns).unwrap();
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        for _ in 0..n {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(reply.as_bytes()).unwrap();
        }
    });
    rx.recv().unwrap();
    h
}

/// Start a UDP server inside `ns` on `port` answering `n` datagrams with `echo:<datagram>`.
pub fn serve_udp(ns: &Path, port: u16, n: usize) -> std::thread::JoinHandle<()> {
    let ns = ns.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let fd = std::fs::File::open(&ns).unwrap();
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..n {
            let (got, peer) = s.recv_from(&mut buf).unwrap();
            s.send_to(&[&b"echo:"[..], &buf[..got]].concat(), peer)
                .unwrap();
        }
    });
    rx.recv().unwrap();
    h
}

/// Send `msg` to `addr` from a socket of the same family: the reply (10 s at most).
pub fn udp_ask(addr: SocketAddr, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if addr.is_ipv4() {
        ([127, 0, 0, 1], 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    let c = std::net::UdpSocket::bind(local)?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    c.send_to(msg, addr)?;
    let mut buf = [0u8; 64];
    let n = c.recv(&mut buf)?;
    Ok(buf[..n].to_vec())
}

/// Connect to `addr`, read everything. Errors are returned (refused/reset), never hang long.
pub fn tcp_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Names of links in the current thread's netns.
pub fn links() -> Vec<String> {
    sh("ip -o link show")
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .collect()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
