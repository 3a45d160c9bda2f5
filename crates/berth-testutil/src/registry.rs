//! A real `docker-registry serve` for tests: free loopback port, storage in a temp dir,
//! optional htpasswd Basic auth and TLS from a fresh CA, images put in with skopeo; killed by PID
//! on drop. Shared by the registry client's, the daemon's and the CLI's tests.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
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
