//! Test harness: a real `docker-registry` per test (killed by PID on drop), images put in with
//! skopeo, and small loopback servers (cutting TCP proxy, hanging server, token front).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_registry::{Client, DirBlobStore, RegistryConfig};

/// Gate: root-free, but needs the registry and skopeo (fails under CI=true when missing).
pub fn prerequisites(test: &str) -> bool {
    berth_testutil::require_cmds(test, &["docker-registry", "skopeo"])
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub use berth_testutil::registry::Registry;

pub fn busybox(test: &str) -> Option<PathBuf> {
    berth_testutil::image(test, "busybox")
}

/// Gate, start a registry and put busybox in as `library/busybox:latest`.
pub fn registry_with_busybox(test: &str) -> Option<(Registry, PathBuf)> {
    if !prerequisites(test) {
        return None;
    }
    let bb = busybox(test)?;
    let reg = Registry::start();
    reg.put_archive(&bb, "library/busybox:latest");
    Some((reg, bb))
}

pub fn client() -> Client {
    Client::new(
        fast_config(),
        berth_http_reqwest::ReqwestConnector::shared(),
    )
}

/// Short timeouts so fault tests finish quickly; no retries unless a test asks.
pub fn fast_config() -> RegistryConfig {
    RegistryConfig {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(20),
        ..RegistryConfig::default()
    }
}

pub fn store() -> (tempfile::TempDir, DirBlobStore) {
    let d = tempfile::tempdir().unwrap();
    let s = DirBlobStore::new(d.path()).unwrap();
    (d, s)
}

/// A loopback TCP proxy to `upstream` that forces one request per connection and can cut the
/// response of the first request whose path contains `cut_path` after `cut_after` bytes.
/// It records each request line with its Range header.
pub struct CuttingProxy {
    pub addr: String,
    pub log: Arc<Mutex<Vec<String>>>,
    pub cut_armed: Arc<AtomicBool>,
    /// Drop `Range` headers, like a server that ignores them (it then answers 200).
    pub strip_range: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CuttingProxy {
    pub fn start(upstream: &str, cut_path: &str, cut_after: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let cut_armed = Arc::new(AtomicBool::new(true));
        let strip_range = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (l2, c2, s2, r2) = (
            log.clone(),
            cut_armed.clone(),
            stop.clone(),
            strip_range.clone(),
        );
        let upstream = upstream.to_string();
        let cut_path = cut_path.to_string();
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !s2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (l, c, up, cp) =
                            (l2.clone(), c2.clone(), upstream.clone(), cut_path.clone());
                        let sr = r2.load(Ordering::SeqCst);
                        workers.push(std::thread::spawn(move || {
                            let _ = proxy_one(conn, &up, &cp, cut_after, &l, &c, sr);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        CuttingProxy {
            addr,
            log,
            cut_armed,
            strip_range,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy_one(
    mut conn: TcpStream,
    upstream: &str,
    cut_path: &str,
    cut_after: usize,
    log: &Mutex<Vec<String>>,
    armed: &AtomicBool,
    strip_range: bool,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut b)? == 0 {
            return Ok(());
        }
        // A TLS ClientHello (the client probing https first): not ours, hang up.
        if head.is_empty() && b[0] == 0x16 {
            return Ok(());
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut range = None;
    let mut out = format!("{request_line}\r\n");
    for l in lines.filter(|l| !l.is_empty()) {
        let lower = l.to_ascii_lowercase();
        if lower.starts_with("connection:") {
            continue;
        }
        if lower.starts_with("range:") {
            range = Some(l[6..].trim().to_string());
            if strip_range {
                continue;
            }
        }
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    log.lock().unwrap().push(match &range {
        Some(r) => format!("{request_line} range={r}"),
        None => request_line.clone(),
    });
    let cut = request_line.contains(cut_path) && armed.swap(false, Ordering::SeqCst);
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(out.as_bytes())?;
    let mut sent = 0usize;
    let mut buf = [0u8; 16384];
    loop {
        let n = up.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let n = if cut { n.min(cut_after - sent) } else { n };
        conn.write_all(&buf[..n])?;
        sent += n;
        if cut && sent >= cut_after {
            // Drop both sockets mid-body.
            let _ = conn.shutdown(std::net::Shutdown::Both);
            break;
        }
    }
    Ok(())
}

/// A server that accepts connections and never answers.
pub struct HangingServer {
    pub addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HangingServer {
    pub fn start() -> HangingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s2.load(Ordering::SeqCst) {
                if let Ok((c, _)) = listener.accept() {
                    held.push(c);
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        HangingServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HangingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
