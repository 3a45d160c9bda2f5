//! Test harness: a real `docker-registry` per test (killed by PID on drop), images put in with
//! skopeo, and small loopback servers (cutting TCP proxy, hanging server, token front).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A running `docker-registry serve`, its storage in a temp dir.
pub struct Registry {
    pub addr: String,
    pub dir: tempfile::TempDir,
    child: Child,
    pub creds: Option<(String, String)>,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    /// With `htpasswd` basic auth for `user:pass` when given.
    pub fn start_with(creds: Option<(&str, &str)>) -> Registry {
        Registry::start_full(creds, false)
    }

    /// With `tls`, serve HTTPS with a certificate for IP 127.0.0.1 signed by a fresh CA whose
    /// certificate is `<dir>/certs.d/<addr>/ca.crt`.
    pub fn start_full(creds: Option<(&str, &str)>, tls: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut auth = String::new();
        if let Some((u, p)) = creds {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd (apache2-utils) runs");
            assert!(out.status.success());
            let hp = dir.path().join("htpasswd");
            std::fs::write(&hp, &out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                hp.display()
            );
        }
        let tls_cfg = if tls {
            let (cert, key) = make_certs(dir.path(), &addr);
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            )
        } else {
            String::new()
        };
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{tls_cfg}{auth}",
            dir.path().join("data").display()
        );
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let reg = Registry {
            addr,
            dir,
            child,
            creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
        };
        // Wait until it accepts connections (bounded number of tries).
        for _ in 0..400 {
            if TcpStream::connect(&reg.addr).is_ok() {
                return reg;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "docker-registry did not listen on {}: {}",
            reg.addr,
            std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    /// `skopeo copy` a shared OCI archive into `repo:tag` here.
    pub fn put_archive(&self, archive: &Path, repo_tag: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        let out = cmd
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("docker://{}/{repo_tag}", self.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `skopeo inspect` → (manifest digest, layer digests).
    pub fn inspect(&self, repo_tag: &str) -> (String, Vec<String>) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--tls-verify=false"]);
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--creds={u}:{p}"));
        }
        let out = cmd
            .arg(format!("docker://{}/{repo_tag}", self.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect {repo_tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let layers = v["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        (v["Digest"].as_str().unwrap().to_string(), layers)
    }

    /// Path of a blob's data file in the registry's filesystem storage.
    pub fn blob_data_path(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA (in `certs.d/<addr>/ca.crt`) and a server certificate for 127.0.0.1 signed by it.
fn make_certs(dir: &Path, addr: &str) -> (PathBuf, PathBuf) {
    let ca_dir = dir.join("certs.d").join(addr);
    std::fs::create_dir_all(&ca_dir).unwrap();
    let ca_crt = ca_dir.join("ca.crt");
    let ca_key = dir.join("ca.key");
    let (srv_crt, srv_key, csr) = (
        dir.join("srv.crt"),
        dir.join("srv.key"),
        dir.join("srv.csr"),
    );
    let ext = dir.join("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let run = |args: Vec<&std::ffi::OsStr>| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let mut a: Vec<&std::ffi::OsStr> = vec![os("req"), os("-x509")];
    a.extend(ec.iter().map(|s| os(s)));
    a.extend([
        os("-days"),
        os("2"),
        os("-subj"),
        os("/CN=berth-test-ca"),
        os("-keyout"),
    ]);
    a.extend([ca_key.as_os_str(), os("-out"), ca_crt.as_os_str()]);
    run(a);
    let mut a: Vec<&std::ffi::OsStr> = vec![os("req")];
    a.extend(ec.iter().map(|s| os(s)));
    a.extend([
        os("-subj"),
        os("/CN=127.0.0.1"),
        os("-keyout"),
        srv_key.as_os_str(),
    ]);
    a.extend([os("-out"), csr.as_os_str()]);
    run(a);
    run(vec![
        os("x509"),
        os("-req"),
        os("-days"),
        os("2"),
        os("-in"),
        csr.as_os_str(),
        os("-CA"),
        ca_crt.as_os_str(),
        os("-CAkey"),
        ca_key.as_os_str(),
        os("-CAcreateserial"),
        os("-extfile"),
        ext.as_os_str(),
        os("-out"),
        srv_crt.as_os_str(),
    ]);
    (srv_crt, srv_key)
}

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
    Client::new(fast_config())
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
