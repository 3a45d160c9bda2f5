//! `berth registry serve` (issue 18, first part): skopeo, the docker CLI (through a berth
//! daemon) and berth's CLI push to and pull from it; chunked and cross-repository-mount
//! uploads, tag pagination with `Link`, the referrers API, and the spec's errors for a digest
//! mismatch, a manifest naming a missing blob and a hostile name.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cli::{free_port, Daemon};

/// The registry process, stopped by its PID when dropped (also on panic).
struct Registry {
    child: Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the PID of the child this value spawned and has not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn sha256_hex(data: &[u8]) -> String {
    let o = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn curl(args: &[&str]) -> (u16, String, String) {
    let o = Command::new("curl")
        .args(["-s", "-D", "/dev/stderr", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        body.to_string(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn registry_serve_with_skopeo_docker_and_berth() {
    let t = "registry_serve_with_skopeo_docker_and_berth";
    let Some((busybox, d)) = setup(t, &["skopeo", "curl"], "busybox") else {
        return;
    };
    let root = d.dir.path().join("registry");
    let reg = serve_registry(&root, free_port(), &[], &[]);
    let base = format!("127.0.0.1:{}", reg.port);
    for _ in 0..100 {
        if curl(&[&format!("http://{base}/v2/")]).0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _, headers) = curl(&[&format!("http://{base}/v2/")]);
    assert_eq!(code, 200);
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("docker-distribution-api-version: registry/2.0"),
        "{headers}"
    );

    // skopeo pushes (chunked uploads), inspects and pulls.
    let o = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}", busybox.display()))
        .arg(format!("docker://{base}/library/busybox:latest"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{base}/library/busybox:latest"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The docker CLI through berth pulls it, tags and pushes it to another repository (the
    // layers are mounted across repositories), and pulls that back after removing it.
    d.ok(&["pull", &format!("{base}/library/busybox:latest")]);
    d.ok(&[
        "tag",
        &format!("{base}/library/busybox:latest"),
        &format!("{base}/team/app:v1"),
    ]);
    d.ok(&["push", &format!("{base}/team/app:v1")]);
    d.ok(&["rmi", &format!("{base}/team/app:v1")]);
    d.ok(&["pull", &format!("{base}/team/app:v1")]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            &format!("{base}/team/app:v1"),
            "echo",
            "pulled"
        ]),
        "pulled"
    );

    // Tags: pagination with a Link header.
    for tag in ["v2", "v3"] {
        d.ok(&[
            "tag",
            &format!("{base}/team/app:v1"),
            &format!("{base}/team/app:{tag}"),
        ]);
        d.ok(&["push", &format!("{base}/team/app:{tag}")]);
    }
    let (code, body, headers) = curl(&[&format!("http://{base}/v2/team/app/tags/list?n=2")]);
    assert_eq!(code, 200);
    assert_eq!(body, r#"{"name":"team/app","tags":["v1","v2"]}"#);
    assert!(
        headers.contains("</v2/team/app/tags/list?n=2&last=v2>; rel=\"next\""),
        "{headers}"
    );
    let (_, body, _) = curl(&[&format!("http://{base}/v2/_catalog")]);
    assert_eq!(body, r#"{"repositories":["library/busybox","team/app"]}"#);

    // Referrers: an artifact whose subject is the image.
    let (_, _, h) = curl(&[
        "-I",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        "-H",
        "Accept: application/vnd.docker.distribution.manifest.v2+json",
        &format!("http://{base}/v2/team/app/manifests/v1"),
    ]);
    let subject = h
        .lines()
        .find_map(|l| {
            l.strip_prefix("docker-content-digest: ")
                .or_else(|| l.strip_prefix("Docker-Content-Digest: "))
        })
        .unwrap()
        .trim()
        .to_string();
    let (code, _, _) = curl(&["-X", "PUT", "-H", "Content-Type: application/vnd.oci.empty.v1+json", "--data-binary", "{}", &format!("http://{base}/v2/team/app/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")]);
    // PUT on the uploads path is not an API call: the upload must be started with POST.
    assert_eq!(code, 405);
    let (code, _, h) = curl(&["-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary", "{}", &format!("http://{base}/v2/team/app/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")]);
    assert_eq!(code, 201, "{h}");
    let size = std::fs::metadata(
        root.join("blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"),
    )
    .unwrap()
    .len();
    assert_eq!(size, 2);
    let artifact = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"layers":[],"subject":{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{subject}","size":1}}}}"#
    );
    let (code, _, h) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &artifact,
        &format!("http://{base}/v2/team/app/manifests/sbom"),
    ]);
    assert_eq!(code, 201, "{h}");
    assert!(
        h.to_ascii_lowercase()
            .contains(&format!("oci-subject: {subject}")),
        "{h}"
    );
    let (code, body, h) = curl(&[&format!(
        "http://{base}/v2/team/app/referrers/{subject}?artifactType=application/vnd.example.sbom"
    )]);
    assert_eq!(code, 200);
    assert!(body.contains("application/vnd.example.sbom"), "{body}");
    assert!(
        h.to_ascii_lowercase()
            .contains("oci-filters-applied: artifacttype"),
        "{h}"
    );

    // Errors as the spec words them.
    let (code, body, _) = curl(&["-X", "POST", "--data-binary", "abc", &format!("http://{base}/v2/team/app/blobs/uploads/?digest=sha256:0000000000000000000000000000000000000000000000000000000000000000")]);
    assert_eq!(code, 400);
    assert!(body.contains("DIGEST_INVALID"), "{body}");
    let missing = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1},"layers":[]}"#;
    let (code, body, _) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        missing,
        &format!("http://{base}/v2/team/app/manifests/broken"),
    ]);
    assert_eq!(code, 400);
    assert!(body.contains("MANIFEST_BLOB_UNKNOWN"), "{body}");
    let (code, body, _) = curl(&[
        "--path-as-is",
        &format!("http://{base}/v2/../../etc/manifests/latest"),
    ]);
    assert!(code == 400 || code == 404, "{code} {body}");
    let (code, body, _) = curl(&[&format!("http://{base}/v2/Team/App/tags/list")]);
    assert_eq!(code, 400);
    assert!(body.contains("NAME_INVALID"), "{body}");
    // Nothing half-made: no upload left over, no blob of the failed uploads.
    assert_eq!(std::fs::read_dir(root.join("uploads")).unwrap().count(), 0);

    // gc removes exactly the blob no manifest references.
    let data = "an orphan blob";
    let want = format!("sha256:{}", sha256_hex(data.as_bytes()));
    let (code, _, _) = curl(&[
        "-X",
        "POST",
        "--data-binary",
        data,
        &format!("http://{base}/v2/team/app/blobs/uploads/?digest={want}"),
    ]);
    assert_eq!(code, 201);
    let gc = |extra: &[&str]| {
        let o = Command::new(common::cli::berth_bin().unwrap())
            .args(["registry", "gc", "--grace", "0", "--root"])
            .arg(&root)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let dry = gc(&["--dry-run"]);
    assert_eq!(
        dry.lines().next().unwrap(),
        format!("would remove {want}"),
        "{dry}"
    );
    assert!(dry.contains("1 blobs would remove, 5 kept"), "{dry}");
    let done = gc(&[]);
    assert!(done.contains("1 blobs removed, 5 kept"), "{done}");
    let (code, _, _) = curl(&["-I", &format!("http://{base}/v2/team/app/blobs/{want}")]);
    assert_eq!(code, 404);
    d.ok(&["pull", &format!("{base}/team/app:v1")]);

    // Health and metrics.
    let (code, body, _) = curl(&[&format!("http://{base}/healthz")]);
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, body, _) = curl(&[&format!("http://{base}/metrics")]);
    assert_eq!(code, 200);
    let pushed: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("berth_registry_manifests_pushed_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(pushed >= 4, "{body}");
    assert!(
        body.contains(r#"berth_registry_requests_total{method="GET",status="200"}"#),
        "{body}"
    );
    drop(reg);
    d.finish();
}

fn start_registry(d: &Daemon, extra: &[&str]) -> Registry {
    let port = free_port();
    serve_registry(
        &d.dir.path().join(format!("registry-{port}")),
        port,
        extra,
        &[],
    )
}

/// `berth registry serve` on 127.0.0.1:`port` over `root`, with `extra` flags and `env`.
fn serve_registry(
    root: &std::path::Path,
    port: u16,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Registry {
    Registry {
        child: spawn_registry(root, port, extra, env),
        port,
    }
}

/// The server process of [`serve_registry`] (for a test that kills and restarts it).
fn spawn_registry(
    root: &std::path::Path,
    port: u16,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Child {
    Command::new(common::cli::berth_bin().unwrap())
        .args(["registry", "serve", "--addr", &format!("127.0.0.1:{port}")])
        .arg("--root")
        .arg(root)
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_up(url: &str, extra: &[&str]) {
    for _ in 0..100 {
        let mut args = extra.to_vec();
        args.push(url);
        if curl(&args).0 != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} did not come up");
}

/// Basic auth from an htpasswd file (docker login through berth, skopeo with creds) and TLS
/// with a test CA (skopeo and curl verifying it); anonymous and wrong-password requests get
/// 401 with the spec's `UNAUTHORIZED`.
#[test]
fn registry_serve_with_auth_and_tls() {
    let t = "registry_serve_with_auth_and_tls";
    let Some((busybox, d)) = setup(t, &["skopeo", "curl", "htpasswd", "openssl"], "busybox") else {
        return;
    };
    let dir = d.dir.path().to_path_buf();
    let run = |cmd: &str, args: &[&str]| {
        let o = Command::new(cmd)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    htpasswd_file(&dir, &[("alice", "s3cret")]);
    // A test CA and a server certificate for 127.0.0.1.
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    run(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(dir.join("ca.crt"), certs.join("ca.crt")).unwrap();

    // TLS + auth.
    let htpasswd = dir.join("htpasswd");
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let secure = start_registry(
        &d,
        &[
            "--htpasswd",
            htpasswd.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let url = format!("https://127.0.0.1:{}/v2/", secure.port);
    let ca = dir.join("ca.crt");
    wait_up(&url, &["--cacert", ca.to_str().unwrap()]);
    let (code, body, h) = curl(&["--cacert", ca.to_str().unwrap(), &url]);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("UNAUTHORIZED"), "{body}");
    assert!(
        h.to_ascii_lowercase().contains("www-authenticate: basic"),
        "{h}"
    );
    assert_eq!(
        curl(&["--cacert", ca.to_str().unwrap(), "-u", "alice:wrong", &url]).0,
        401
    );
    assert_eq!(
        curl(&["--cacert", ca.to_str().unwrap(), "-u", "alice:s3cret", &url]).0,
        200
    );
    // Without the CA, the certificate is not trusted.
    assert_ne!(curl(&[&url]).0, 200);
    let dest = format!("docker://127.0.0.1:{}/secure/busybox:1", secure.port);
    let o = Command::new("skopeo")
        .args(["copy", "--dest-cert-dir", certs.to_str().unwrap()])
        .arg(format!("oci-archive:{}", busybox.display()))
        .arg(&dest)
        .output()
        .unwrap();
    assert!(!o.status.success(), "an anonymous push went through");
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--dest-cert-dir",
            certs.to_str().unwrap(),
            "--dest-creds",
            "alice:s3cret",
        ])
        .arg(format!("oci-archive:{}", busybox.display()))
        .arg(&dest)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("skopeo")
        .args([
            "inspect",
            "--cert-dir",
            certs.to_str().unwrap(),
            "--creds",
            "alice:s3cret",
            &dest,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Auth on loopback HTTP: docker login, push and pull through berth.
    let plain = start_registry(&d, &["--htpasswd", htpasswd.to_str().unwrap()]);
    let host = format!("127.0.0.1:{}", plain.port);
    wait_up(&format!("http://{host}/v2/"), &[]);
    let o = skopeo_push(
        &busybox,
        &format!("docker://{host}/library/busybox:latest"),
        &["--dest-creds", "alice:s3cret"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let image = format!("{host}/library/busybox:latest");
    let o = d.docker(&["pull", &image]);
    assert!(!o.status.success(), "an anonymous pull went through");
    let o = d.docker_stdin(
        &["login", &host, "-u", "alice", "--password-stdin"],
        b"wrong",
    );
    assert!(!o.status.success());
    let o = d.docker_stdin(
        &["login", &host, "-u", "alice", "--password-stdin"],
        b"s3cret",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.ok(&["pull", &image]);
    d.ok(&["tag", &image, &format!("{host}/team/app:v1")]);
    d.ok(&["push", &format!("{host}/team/app:v1")]);
    d.ok(&["logout", &host]);
    drop(secure);
    drop(plain);
    d.finish();
}

/// kill -9 of the server during a push: the restarted server's store holds only blobs whose
/// bytes hash to their names, no upload, and the push then goes through.
#[test]
fn registry_serve_killed_mid_push_stays_consistent() {
    let t = "registry_serve_killed_mid_push_stays_consistent";
    let Some((debian, d)) = setup(
        t,
        &["skopeo", "curl", "sha256sum"],
        "debian-bookworm-minbase",
    ) else {
        return;
    };
    let port = free_port();
    let root = d.dir.path().join("registry");
    let mut reg = serve_registry(&root, port, &[], &[]);
    let url = format!("http://127.0.0.1:{port}/v2/");
    wait_up(&url, &[]);
    let mut push = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}", debian.display()))
        .arg(format!("docker://127.0.0.1:{port}/debian:bookworm"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill the server once an upload holds some bytes (or the push ended first).
    let uploads = root.join("uploads");
    for _ in 0..400 {
        let busy = std::fs::read_dir(&uploads)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::metadata(e.path().join("data"))
                    .map(|m| m.len() > 0)
                    .unwrap_or(false)
            });
        if busy || push.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill(2) on the PID of the child this test spawned and has not reaped.
    unsafe { libc::kill(reg.child.id() as i32, libc::SIGKILL) };
    let _ = reg.child.wait();
    let pushed = push.wait().unwrap();
    assert!(
        !pushed.success(),
        "the push ended before the kill: nothing was cut short"
    );
    // The same port and root again (only the process is replaced: the killed one is reaped).
    reg.child = spawn_registry(&root, port, &[], &[]);
    wait_up(&url, &[]);
    assert_store_whole(&root);
    // The push goes through now, and the image reads back.
    let o = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}", debian.display()))
        .arg(format!("docker://127.0.0.1:{port}/debian:bookworm"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.ok(&["pull", &format!("127.0.0.1:{port}/debian:bookworm")]);
    drop(reg);
    d.finish();
}

/// Pull-through cache: berth's registry in front of Debian's docker-registry; a pull through
/// berth's daemon fills the cache, a push is refused, and once the upstream is gone the cached
/// image still pulls.
#[test]
fn registry_serve_as_a_pull_through_cache() {
    let t = "registry_serve_as_a_pull_through_cache";
    let Some((busybox, d)) = setup(t, &["skopeo", "curl", "docker-registry"], "busybox") else {
        return;
    };
    let upstream = berth_testutil::registry::Registry::start();
    upstream.put_archive(&busybox, "library/busybox:latest");
    let cache = start_registry(&d, &["--proxy", &format!("http://{}", upstream.addr)]);
    let host = format!("127.0.0.1:{}", cache.port);
    wait_up(&format!("http://{host}/v2/"), &[]);
    let image = format!("{host}/library/busybox:latest");
    d.ok(&["pull", &image]);
    assert_eq!(d.ok(&["run", "--rm", &image, "echo", "cached"]), "cached");
    let o = d.docker(&["push", &image]);
    assert!(
        !o.status.success(),
        "a push to a pull-through cache went through"
    );
    // The upstream goes away; the cache still serves what it holds.
    drop(upstream);
    d.ok(&["rmi", &image]);
    d.ok(&["pull", &image]);
    let (code, body, _) = curl(&[&format!(
        "http://{host}/v2/library/nothere/manifests/latest"
    )]);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("MANIFEST_UNKNOWN"), "{body}");
    drop(cache);
    d.finish();
}

/// A consistent store: no upload left, and every blob's bytes hash to its name.
fn assert_store_whole(root: &std::path::Path) {
    assert_eq!(
        std::fs::read_dir(root.join("uploads")).unwrap().count(),
        0,
        "uploads left"
    );
    for e in std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .flatten()
    {
        let o = Command::new("sha256sum").arg(e.path()).output().unwrap();
        let sum = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            sum.split_whitespace().next().unwrap_or_default(),
            e.file_name().to_string_lossy(),
            "a blob whose bytes do not match its name"
        );
    }
}

/// The test's daemon and image archive, when its commands and image are here.
fn setup(t: &str, cmds: &[&str], image: &str) -> Option<(std::path::PathBuf, Daemon)> {
    if !berth_testutil::require_cmds(t, cmds) {
        return None;
    }
    let archive = berth_testutil::image(t, image)?;
    Some((archive, Daemon::start(t)?))
}

/// `skopeo copy` of an OCI archive to `dest` (a plain-HTTP registry) with `extra` flags.
fn skopeo_push(archive: &std::path::Path, dest: &str, extra: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .args(extra)
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(dest)
        .output()
        .unwrap()
}

/// An htpasswd file of bcrypt entries (`htpasswd -B`) for `users`, in `dir`.
fn htpasswd_file(dir: &std::path::Path, users: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = Vec::new();
    for (u, p) in users {
        let o = Command::new("htpasswd")
            .args(["-Bbn", u, p])
            .output()
            .unwrap();
        assert!(o.status.success(), "htpasswd -Bbn {u}");
        text.extend(String::from_utf8_lossy(&o.stdout).trim().bytes());
        text.push(b'\n');
    }
    let path = dir.join("htpasswd");
    std::fs::write(&path, text).unwrap();
    path
}

/// A token from `/auth/token` of the registry at `host` (Basic `creds` when given).
fn fetch_token(host: &str, creds: Option<&str>, scope: &str) -> (u16, String) {
    let url = format!("http://{host}/auth/token?service=berth-registry&scope={scope}");
    let mut args = vec![url.as_str()];
    if let Some(c) = creds {
        args.extend(["-u", c]);
    }
    let (code, body, _) = curl(&args);
    let token = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["token"].as_str().map(String::from))
        .unwrap_or(body);
    (code, token)
}

/// The built-in token issuer (settings from a `--config` file): a 401 names the realm, the
/// service and the scope; alice (pull+push on `team/*`) pushes and pulls with skopeo and with
/// docker through berth; bob (pull only) pulls but is denied a push; anonymous is refused;
/// forged, foreign and expired tokens are refused.
#[test]
fn registry_serve_with_token_auth() {
    let t = "registry_serve_with_token_auth";
    let Some((busybox, d)) = setup(t, &["skopeo", "curl", "htpasswd"], "busybox") else {
        return;
    };
    let dir = d.dir.path().to_path_buf();
    htpasswd_file(&dir, &[("alice", "s3cret"), ("bob", "b0bpass")]);
    std::fs::write(
        dir.join("policy.yaml"),
        "users:\n  alice:\n    \"team/*\": [pull, push]\n  bob:\n    \"team/*\": [pull]\n",
    )
    .unwrap();
    // Relative paths in the config file are taken from its directory.
    let config = dir.join("registry.yaml");
    std::fs::write(&config, "htpasswd: htpasswd\ntoken-policy: policy.yaml\n").unwrap();
    let reg = start_registry(&d, &["--config", config.to_str().unwrap()]);
    let host = format!("127.0.0.1:{}", reg.port);
    wait_up(&format!("http://{host}/v2/"), &[]);

    // Anonymous: the challenge names the realm, the service and the scope needed.
    let (code, body, h) = curl(&[&format!("http://{host}/v2/")]);
    assert_eq!(code, 401, "{body}");
    let h = h.to_ascii_lowercase();
    assert!(
        h.contains(&format!(
            "www-authenticate: bearer realm=\"http://{host}/auth/token\",service=\"berth-registry\""
        )),
        "{h}"
    );
    let (code, _, h) = curl(&[&format!("http://{host}/v2/team/app/manifests/v1")]);
    assert_eq!(code, 401);
    assert!(h.contains("scope=\"repository:team/app:pull\""), "{h}");

    let skopeo = |args: &[&str]| Command::new("skopeo").args(args).output().unwrap();
    let app = format!("docker://{host}/team/app:v1");
    let o = skopeo_push(&busybox, &app, &["--dest-creds", "alice:s3cret"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let creds = ["inspect", "--tls-verify=false", "--creds"];
    let o = skopeo(&[&creds[..], &["bob:b0bpass", &app]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bob = format!("docker://{host}/team/bob:v1");
    let o = skopeo_push(&busybox, &bob, &["--dest-creds", "bob:b0bpass"]);
    assert!(!o.status.success(), "bob pushed");
    let err = String::from_utf8_lossy(&o.stderr).to_ascii_lowercase();
    assert!(err.contains("denied"), "{err}");
    let o = skopeo(&["inspect", "--tls-verify=false", &app]);
    assert!(!o.status.success(), "an anonymous pull went through");
    let o = skopeo(&[&creds[..], &["alice:wrong", &app]].concat());
    assert!(!o.status.success(), "a wrong password went through");

    // Tokens by hand: what they grant, and what is refused.
    let tags = format!("http://{host}/v2/team/app/tags/list");
    let (code, tok) = fetch_token(&host, Some("bob:b0bpass"), "repository:team/app:pull,push");
    assert_eq!(code, 200, "{tok}");
    let bearer = |tok: &str| format!("Authorization: Bearer {tok}");
    let (code, body, _) = curl(&["-H", &bearer(&tok), &tags]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"v1\""), "{body}");
    // bob's token holds no push: starting an upload is refused, naming the scope needed.
    let (code, body, h) = curl(&[
        "-X",
        "POST",
        "-H",
        &bearer(&tok),
        &format!("http://{host}/v2/team/app/blobs/uploads/"),
    ]);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("DENIED"), "{body}");
    assert!(h.contains("error=\"insufficient_scope\""), "{h}");
    assert!(h.contains("scope=\"repository:team/app:push\""), "{h}");
    assert_eq!(
        fetch_token(&host, Some("bob:nope"), "repository:team/app:pull").0,
        401
    );
    // A signature changed by one character.
    let mut forged = tok.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (code, _, h) = curl(&["-H", &bearer(&forged), &tags]);
    assert_eq!(code, 401);
    assert!(h.contains("error=\"invalid_token\""), "{h}");

    // A second server (same config, --token-ttl 2 over it): its own key, short tokens.
    let other = start_registry(
        &d,
        &["--config", config.to_str().unwrap(), "--token-ttl", "2"],
    );
    let host2 = format!("127.0.0.1:{}", other.port);
    wait_up(&format!("http://{host2}/v2/"), &[]);
    let (code, tok2) = fetch_token(&host2, Some("alice:s3cret"), "repository:team/app:pull");
    assert_eq!(code, 200, "{tok2}");
    assert_eq!(
        curl(&["-H", &bearer(&tok2), &tags]).0,
        401,
        "a foreign token"
    );
    // Valid at its own server (the repository is unknown there: 404, not 401)...
    let tags2 = format!("http://{host2}/v2/team/app/tags/list");
    assert_eq!(curl(&["-H", &bearer(&tok2), &tags2]).0, 404);
    drop(other);

    // With a key file, tokens outlive a restart; a key others may read, or a config key
    // that does not exist, is refused naming it.
    let key = dir.join("token.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let serve = |extra: &[&str]| {
        Command::new(common::cli::berth_bin().unwrap())
            .args(["registry", "serve", "--addr", "127.0.0.1:1", "--root"])
            .arg(dir.join("never"))
            .args(extra)
            .output()
            .unwrap()
    };
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key_arg = [
        "--config",
        config.to_str().unwrap(),
        "--token-key",
        key.to_str().unwrap(),
    ];
    let o = serve(&key_arg);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("chmod 600"),
        "{o:?}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "root: x
storage-driver: s3
",
    )
    .unwrap();
    let o = serve(&["--config", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("storage-driver"),
        "{o:?}"
    );
    let keyed = start_registry(&d, &key_arg);
    let host3 = format!("127.0.0.1:{}", keyed.port);
    wait_up(&format!("http://{host3}/v2/"), &[]);
    let (_, tok3) = fetch_token(&host3, Some("alice:s3cret"), "repository:team/app:pull");
    drop(keyed);
    let keyed = start_registry(&d, &key_arg);
    let host4 = format!("127.0.0.1:{}", keyed.port);
    wait_up(&format!("http://{host4}/v2/"), &[]);
    let tags4 = format!("http://{host4}/v2/team/app/tags/list");
    assert_eq!(
        curl(&["-H", &bearer(&tok3), &tags4]).0,
        404,
        "the token died"
    );
    // The same token, its lifetime moved into the past and signed again with the server's
    // key: refused as expired (no waiting on the clock).
    let payload = tok3.split('.').nth(1).unwrap();
    let mut claims: berth_registry_server::token::Claims = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    claims.exp = claims.iat.saturating_sub(60);
    claims.nbf = claims.iat.saturating_sub(120);
    let signer = berth_registry_server::token::TokenAuth::new(
        Some(vec![7u8; 32]),
        claims.aud.clone(),
        Duration::from_secs(60),
        Default::default(),
        None,
    )
    .unwrap();
    let expired = signer.sign(&claims);
    let (code, _, h) = curl(&["-H", &bearer(&expired), &tags4]);
    assert_eq!(code, 401);
    assert!(h.contains("error=\"invalid_token\""), "{h}");
    drop(keyed);

    // docker through berth: alice pushes to another repository, bob is denied.
    let image = format!("{host}/team/app:v1");
    assert!(
        !d.docker(&["pull", &image]).status.success(),
        "anonymous pull"
    );
    let login = |u: &str, p: &str| {
        d.docker_stdin(&["login", &host, "-u", u, "--password-stdin"], p.as_bytes())
    };
    assert!(!login("alice", "wrong").status.success());
    let o = login("alice", "s3cret");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.ok(&["pull", &image]);
    d.ok(&["tag", &image, &format!("{host}/team/web:v1")]);
    d.ok(&["push", &format!("{host}/team/web:v1")]);
    d.ok(&["logout", &host]);
    let o = login("bob", "b0bpass");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.ok(&["rmi", &format!("{host}/team/web:v1")]);
    d.ok(&["pull", &format!("{host}/team/web:v1")]);
    d.ok(&["tag", &image, &format!("{host}/team/bob:v2")]);
    let o = d.docker(&["push", &format!("{host}/team/bob:v2")]);
    assert!(!o.status.success(), "bob pushed through berth");
    let err = String::from_utf8_lossy(&o.stderr).to_ascii_lowercase();
    assert!(err.contains("denied"), "{err}");
    d.ok(&["logout", &host]);
    drop(reg);
    d.finish();
}

/// Pull-through cache of an upstream that wants Bearer tokens (berth's own token issuer):
/// anonymous tokens for the public repository, the proxy credentials' token for the private
/// one; without credentials the private image is not served.
#[test]
fn registry_serve_caches_a_bearer_upstream() {
    let t = "registry_serve_caches_a_bearer_upstream";
    let Some((busybox, d)) = setup(t, &["skopeo", "curl", "htpasswd"], "busybox") else {
        return;
    };
    let dir = d.dir.path().to_path_buf();
    htpasswd_file(&dir, &[("alice", "s3cret")]);
    std::fs::write(
        dir.join("policy.yaml"),
        "anonymous:\n  \"library/*\": [pull]\nusers:\n  alice:\n    \"*\": [\"*\"]\n",
    )
    .unwrap();
    let upstream = start_registry(
        &d,
        &[
            "--htpasswd",
            dir.join("htpasswd").to_str().unwrap(),
            "--token-policy",
            dir.join("policy.yaml").to_str().unwrap(),
        ],
    );
    let up = format!("127.0.0.1:{}", upstream.port);
    wait_up(&format!("http://{up}/v2/"), &[]);
    for repo in ["library/busybox", "private/busybox"] {
        let o = skopeo_push(
            &busybox,
            &format!("docker://{up}/{repo}:latest"),
            &["--dest-creds", "alice:s3cret"],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    // Anonymous cache: the public image through a token, the private one not at all.
    let anon = start_registry(&d, &["--proxy", &format!("http://{up}")]);
    let host = format!("127.0.0.1:{}", anon.port);
    wait_up(&format!("http://{host}/v2/"), &[]);
    d.ok(&["pull", &format!("{host}/library/busybox:latest")]);
    let o = d.docker(&["pull", &format!("{host}/private/busybox:latest")]);
    assert!(
        !o.status.success(),
        "the anonymous cache served a private image"
    );
    drop(anon);

    // With the proxy credentials: the private image too.
    let port = free_port();
    let upstream_url = format!("http://{up}");
    let authed = serve_registry(
        &dir.join(format!("cache-{port}")),
        port,
        &["--proxy", &upstream_url, "--proxy-username", "alice"],
        &[("BERTH_PROXY_PASSWORD", "s3cret")],
    );
    let host = format!("127.0.0.1:{port}");
    wait_up(&format!("http://{host}/v2/"), &[]);
    let image = format!("{host}/private/busybox:latest");
    d.ok(&["pull", &image]);
    // Cached: it pulls again once the upstream is gone.
    drop(upstream);
    d.ok(&["rmi", &image]);
    d.ok(&["pull", &image]);
    drop(authed);
    d.finish();
}

/// A multi-arch index built by hand from busybox (its own platform, and a second manifest
/// whose config names another architecture): pushed manifest by manifest, an index naming
/// a missing manifest refused, then `skopeo copy --all` reads the whole index back and pushes
/// it to another repository, `skopeo inspect --raw` sees the same index, and berth pulls and
/// runs its platform's image from it.
#[test]
fn registry_serve_multi_arch_index() {
    let t = "registry_serve_multi_arch_index";
    let Some((busybox, d)) = setup(t, &["skopeo", "curl", "sha256sum"], "busybox") else {
        return;
    };
    let dir = d.dir.path().to_path_buf();
    let reg = start_registry(&d, &[]);
    let host = format!("127.0.0.1:{}", reg.port);
    wait_up(&format!("http://{host}/v2/"), &[]);
    let o = skopeo_push(&busybox, &format!("docker://{host}/multi/app:native"), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    let (code, native, _) = curl(&[
        "-H",
        &format!("Accept: {OCI_MANIFEST}"),
        &format!("http://{host}/v2/multi/app/manifests/native"),
    ]);
    assert_eq!(code, 200, "{native}");
    let native_digest = format!("sha256:{}", sha256_hex(native.as_bytes()));
    let mut m: serde_json::Value = serde_json::from_str(&native).unwrap();
    let cfg_digest = m["config"]["digest"].as_str().unwrap().to_string();
    let (code, cfg, _) = curl(&[&format!("http://{host}/v2/multi/app/blobs/{cfg_digest}")]);
    assert_eq!(code, 200);
    let mut cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    let arch = cfg["architecture"].as_str().unwrap().to_string();
    let other_arch = if arch == "arm64" { "amd64" } else { "arm64" };
    cfg["architecture"] = other_arch.into();
    let other_cfg = serde_json::to_vec(&cfg).unwrap();
    let other_cfg_digest = format!("sha256:{}", sha256_hex(&other_cfg));
    std::fs::write(dir.join("other-config.json"), &other_cfg).unwrap();
    let (code, body, _) = curl(&[
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", dir.join("other-config.json").display()),
        &format!("http://{host}/v2/multi/app/blobs/uploads/?digest={other_cfg_digest}"),
    ]);
    assert_eq!(code, 201, "{body}");
    m["config"]["digest"] = other_cfg_digest.as_str().into();
    m["config"]["size"] = other_cfg.len().into();
    let other = serde_json::to_vec(&m).unwrap();
    let other_digest = format!("sha256:{}", sha256_hex(&other));
    let put = |name: &str, reference: &str, media: &str, body: &[u8]| {
        let f = dir.join(format!("put-{}", sha256_hex(body)));
        std::fs::write(&f, body).unwrap();
        curl(&[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {media}"),
            "--data-binary",
            &format!("@{}", f.display()),
            &format!("http://{host}/v2/{name}/manifests/{reference}"),
        ])
    };
    let (code, body, _) = put("multi/app", &other_digest, OCI_MANIFEST, &other);
    assert_eq!(code, 201, "{body}");
    let entry = |digest: &str, size: usize, arch: &str| {
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
            "platform": {"os": "linux", "architecture": arch}})
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        entry(&native_digest, native.len(), &arch),
        entry(&other_digest, other.len(), other_arch),
    ]});
    // An index naming a manifest the repository lacks is refused.
    let mut broken = index.clone();
    broken["manifests"][1]["digest"] = format!("sha256:{}", "0".repeat(64)).into();
    let (code, body, _) = put(
        "multi/app",
        "broken",
        OCI_INDEX,
        &serde_json::to_vec(&broken).unwrap(),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("MANIFEST_BLOB_UNKNOWN"), "{body}");
    let index = serde_json::to_vec(&index).unwrap();
    let (code, body, _) = put("multi/app", "v1", OCI_INDEX, &index);
    assert_eq!(code, 201, "{body}");

    // skopeo reads the whole index (every platform) and pushes it elsewhere intact.
    let layout = dir.join("multi-layout");
    let o = Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{host}/multi/app:v1"))
        .arg(format!("oci:{}:v1", layout.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{host}/multi/copy:v1"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{host}/multi/copy:v1"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        sha256_hex(&o.stdout),
        sha256_hex(&index),
        "the index changed"
    );
    let (code, body, _) = curl(&[&format!(
        "http://{host}/v2/multi/copy/manifests/{other_digest}"
    )]);
    assert_eq!(
        code, 200,
        "the other platform's manifest did not travel: {body}"
    );

    // berth picks its own platform out of the index and runs it.
    let image = format!("{host}/multi/copy:v1");
    d.ok(&["pull", &image]);
    assert_eq!(d.ok(&["run", "--rm", &image, "echo", "multi"]), "multi");
    drop(reg);
    d.finish();
}

/// Four skopeo pushes of two different images to one tag at once: all succeed, the tag names
/// one of the two whole manifests, every stored blob hashes to its name, no upload is left,
/// and the image the tag names pulls.
#[test]
fn registry_serve_concurrent_pushes_of_one_tag() {
    let t = "registry_serve_concurrent_pushes_of_one_tag";
    let Some((busybox, d)) = setup(t, &["skopeo", "curl", "sha256sum"], "busybox") else {
        return;
    };
    let Some(debian) = berth_testutil::image(t, "debian-bookworm-minbase") else {
        return;
    };
    let reg = start_registry(&d, &[]);
    let host = format!("127.0.0.1:{}", reg.port);
    wait_up(&format!("http://{host}/v2/"), &[]);
    let dest = format!("docker://{host}/race/app:latest");
    let pushes: Vec<_> = [&busybox, &debian, &busybox, &debian]
        .into_iter()
        .map(|archive| {
            Command::new("skopeo")
                .args(["copy", "--dest-tls-verify=false"])
                .arg(format!("oci-archive:{}", archive.display()))
                .arg(&dest)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in pushes {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // The manifests as the archives hold them (skopeo keeps OCI manifests as they are).
    let manifest_of = |archive: &std::path::Path| {
        let o = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci-archive:{}", archive.display()))
            .output()
            .unwrap();
        format!("sha256:{}", sha256_hex(&o.stdout))
    };
    let candidates = [manifest_of(&busybox), manifest_of(&debian)];
    let (code, _, h) = curl(&[
        "-I",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("http://{host}/v2/race/app/manifests/latest"),
    ]);
    assert_eq!(code, 200);
    let tagged = h
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("docker-content-digest:")
                .map(|v| v.trim().to_string())
        })
        .unwrap();
    assert!(
        candidates.contains(&tagged),
        "{tagged} is neither of {candidates:?}"
    );
    let root = d.dir.path().join(format!("registry-{}", reg.port));
    assert_store_whole(&root);
    d.ok(&["pull", &format!("{host}/race/app:latest")]);
    drop(reg);
    d.finish();
}

/// A small tmpfs mounted (and unmounted on drop, panics included) at a directory.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: std::path::PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&path).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Tmpfs(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A registry whose root fills up (a 12 MiB tmpfs) during a push of the Debian image: the
/// push fails with 507 Insufficient Storage, no upload is left holding space, nothing is tagged,
/// every stored blob is whole, and the server still serves: busybox pushes and pulls.
#[test]
fn registry_serve_full_disk() {
    let t = "registry_serve_full_disk";
    let Some((debian, d)) = setup(
        t,
        &["skopeo", "curl", "sha256sum", "mount", "umount"],
        "debian-bookworm-minbase",
    ) else {
        return;
    };
    let Some(busybox) = berth_testutil::image(t, "busybox") else {
        return;
    };
    let root = d.dir.path().join("small-root");
    let small = Tmpfs::mount(root.clone(), "12m");
    let reg = serve_registry(&root, free_port(), &[], &[]);
    let host = format!("127.0.0.1:{}", reg.port);
    wait_up(&format!("http://{host}/v2/"), &[]);
    let o = skopeo_push(&debian, &format!("docker://{host}/big/debian:v1"), &[]);
    assert!(!o.status.success(), "the Debian image fit in 12 MiB");
    let err = String::from_utf8_lossy(&o.stderr);
    // 507 with the spec's error body (skopeo prints the status line of a 5xx only).
    assert!(
        err.contains("507 Insufficient Storage") || err.contains("storage is full"),
        "{err}"
    );
    let (code, body, _) = curl(&[&format!("http://{host}/v2/big/debian/manifests/v1")]);
    assert_eq!(code, 404, "{body}");
    assert_store_whole(&root);
    let o = skopeo_push(&busybox, &format!("docker://{host}/small/busybox:v1"), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.ok(&["pull", &format!("{host}/small/busybox:v1")]);
    drop(reg);
    drop(small);
    d.finish();
}
