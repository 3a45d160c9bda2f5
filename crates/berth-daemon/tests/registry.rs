//! Pull, push and login end to end: the REAL docker CLI against an in-process berth daemon and
//! a real `docker-registry` on 127.0.0.1 (images put in with skopeo from the shared archives).

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestDaemon;

/// A `docker-registry serve` on a free loopback port, storage in a temp dir; killed by PID on drop.
struct Registry {
    addr: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    fn start(creds: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-reg-")
            .tempdir()
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut auth = String::new();
        if let Some((u, p)) = creds {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .unwrap();
            assert!(out.status.success());
            let hp = dir.path().join("htpasswd");
            std::fs::write(&hp, &out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                hp.display()
            );
        }
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
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
            .unwrap();
        let reg = Registry { addr, dir, child };
        for _ in 0..400 {
            if TcpStream::connect(&reg.addr).is_ok() {
                return reg;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("docker-registry did not listen on {}", reg.addr);
    }

    fn skopeo(&self, args: &[&str], creds: Option<&str>) -> String {
        let mut cmd = Command::new("skopeo");
        cmd.args(args);
        if let Some(c) = creds {
            cmd.arg(if args[0] == "copy" {
                format!("--dest-creds={c}")
            } else {
                format!("--creds={c}")
            });
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn put(&self, archive: &Path, repo_tag: &str, creds: Option<&str>) {
        let src = format!("oci-archive:{}", archive.display());
        let dst = format!("docker://{}/{repo_tag}", self.addr);
        self.skopeo(
            &["copy", "--quiet", "--dest-tls-verify=false", &src, &dst],
            creds,
        );
    }

    /// `skopeo inspect` → (manifest digest, layer digests).
    fn inspect(&self, repo_tag: &str, creds: Option<&str>) -> (String, Vec<String>) {
        let dst = format!("docker://{}/{repo_tag}", self.addr);
        let out = self.skopeo(&["inspect", "--tls-verify=false", &dst], creds);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let layers = v["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        (v["Digest"].as_str().unwrap().to_string(), layers)
    }

    fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
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

fn ready(test: &str) -> bool {
    berth_testutil::require_root(test)
        && berth_testutil::require_cmds(test, &["docker", "docker-registry", "skopeo", "htpasswd"])
}

/// Blobs (and partial downloads) in the daemon's store.
fn store_files(d: &TestDaemon) -> (usize, usize) {
    let count = |p: PathBuf| std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0);
    (
        count(d.root().join("blobs/sha256")),
        count(d.root().join("ingest")),
    )
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn docker_cli_pull_push_against_local_registry() {
    let t = "docker_cli_pull_push_against_local_registry";
    if !ready(t) {
        return;
    }
    let (Some(debian), Some(busybox)) = (
        berth_testutil::image(t, "debian-bookworm-minbase"),
        berth_testutil::image(t, "busybox"),
    ) else {
        return;
    };
    let reg = Registry::start(None);
    let a = reg.addr.clone();
    reg.put(&debian, "library/debian:bookworm-minbase", None);
    reg.put(&busybox, "broken/bb:1", None);
    let (deb_digest, _) = reg.inspect("library/debian:bookworm-minbase", None);
    let (bb_digest, bb_layers) = reg.inspect("broken/bb:1", None);
    let d = TestDaemon::start();

    // A pull that fails half way (layer data gone from the registry) leaves nothing behind.
    std::fs::remove_file(reg.blob_data(&bb_layers[0])).unwrap();
    let before = store_files(&d);
    let o = d.docker(&["pull", &format!("{a}/broken/bb:1")]);
    assert!(!o.status.success(), "pull of a broken image succeeded");
    let err = stderr(&o);
    assert!(err.contains(&bb_layers[0]), "{err}");
    assert_eq!(
        store_files(&d),
        before,
        "failed pull left blobs or partials"
    );

    // Unknown tag: one clear line naming the image and registry, nothing written.
    let o = d.docker(&["pull", &format!("{a}/library/debian:nosuch")]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("Error response from daemon")
            && err.contains(&format!("{a}/library/debian:nosuch"))
            && err.contains("not found"),
        "{err}"
    );
    assert_eq!(store_files(&d), before);

    // The real pull.
    let image = format!("{a}/library/debian:bookworm-minbase");
    let out = d.docker_ok(&["pull", &image]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {deb_digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {image}")),
        "{out}"
    );
    let rd = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &image,
    ]);
    assert!(
        rd.contains(&format!("{a}/library/debian@{deb_digest}")),
        "{rd}"
    );
    let imgs = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(imgs.contains(&image), "{imgs}");

    // A second pull transfers nothing.
    let files = store_files(&d);
    let out = d.docker_ok(&["pull", &image]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {image}")),
        "{out}"
    );
    assert!(
        !out.contains("Downloading") && !out.contains("Pull complete"),
        "{out}"
    );
    assert_eq!(store_files(&d), files);

    // Pull by digest.
    let by_digest = format!("{a}/library/debian@{deb_digest}");
    let out = d.docker_ok(&["pull", &by_digest]);
    assert!(out.contains("Status: Image is up to date"), "{out}");

    // Push under another repository of the same registry: layers are mounted, not uploaded,
    // and skopeo reads back the same digests.
    let copy = format!("{a}/copy/debian:v1");
    d.docker_ok(&["tag", &image, &copy]);
    let out = d.docker_ok(&["push", &copy]);
    assert!(
        out.contains(&format!("The push refers to repository [{a}/copy/debian]")),
        "{out}"
    );
    assert!(out.contains("Mounted from library/debian"), "{out}");
    assert!(
        out.contains(&format!("v1: digest: {deb_digest} size:")),
        "{out}"
    );
    let (pushed, _) = reg.inspect("copy/debian:v1", None);
    assert_eq!(pushed, deb_digest);
    // Pushing again: every layer already exists.
    let out = d.docker_ok(&["push", &copy]);
    assert!(out.contains("Layer already exists"), "{out}");

    // Pushing something the registry has never seen uploads it.
    d.docker_ok(&["load", "-i", busybox.to_str().unwrap()]);
    let fresh = format!("{a}/fresh/busybox:latest");
    d.docker_ok(&["tag", "busybox:latest", &fresh]);
    let out = d.docker_ok(&["push", &fresh]);
    assert!(out.contains("Pushed"), "{out}");
    let (fresh_digest, fresh_layers) = reg.inspect("fresh/busybox:latest", None);
    assert_eq!(fresh_layers, bb_layers);
    assert_eq!(fresh_digest, bb_digest, "manifest pushed byte for byte");

    // Pushing an image that does not exist locally.
    let o = d.docker(&["push", &format!("{a}/nosuch/image:1")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("does not exist locally"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn docker_cli_login_and_authenticated_pull() {
    let t = "docker_cli_login_and_authenticated_pull";
    if !ready(t) {
        return;
    }
    let Some(busybox) = berth_testutil::image(t, "busybox") else {
        return;
    };
    let reg = Registry::start(Some(("alice", "s3cret")));
    let a = reg.addr.clone();
    reg.put(&busybox, "library/busybox:latest", Some("alice:s3cret"));
    let d = TestDaemon::start();
    let image = format!("{a}/library/busybox:latest");

    // Anonymous pull is refused with a clear message.
    let o = d.docker(&["pull", &image]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("Error response from daemon"), "{err}");
    assert!(err.contains(&a), "{err}");

    // Wrong credentials.
    let login = |pass: &str| {
        let cfgdir = d.dir.path().join("docker-config");
        std::fs::create_dir_all(&cfgdir).unwrap();
        let mut c = Command::new("docker")
            .args(["login", &a, "-u", "alice", "--password-stdin"])
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", &cfgdir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(pass.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    };
    let o = login("wrong");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("unauthorized") && err.contains(&a), "{err}");

    let o = login("s3cret");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Login Succeeded"));

    // The CLI now sends X-Registry-Auth: pull and push work.
    let out = d.docker_ok(&["pull", &image]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    let other = format!("{a}/team/busybox:v2");
    d.docker_ok(&["tag", &image, &other]);
    let out = d.docker_ok(&["push", &other]);
    assert!(out.contains("v2: digest: sha256:"), "{out}");
    let (digest, _) = reg.inspect("team/busybox:v2", Some("alice:s3cret"));
    assert!(out.contains(&digest), "{out}");
}
