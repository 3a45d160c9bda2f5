//! Pull, push and login end to end: the REAL docker CLI against an in-process berth daemon and
//! a real `docker-registry` on 127.0.0.1 (images put in with skopeo from the shared archives).

use crate::common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use berth_testutil::registry::Registry;
use common::TestDaemon;

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
    let reg = Registry::start();
    let a = reg.addr.clone();
    reg.put_archive(&debian, "library/debian:bookworm-minbase");
    reg.put_archive(&busybox, "broken/bb:1");
    let (deb_digest, _) = reg.inspect("library/debian:bookworm-minbase");
    let (bb_digest, bb_layers) = reg.inspect("broken/bb:1");
    let d = TestDaemon::start();

    // A pull that fails half way (layer data gone from the registry) leaves nothing behind.
    std::fs::remove_file(reg.blob_data_path(bb_layers[0].trim_start_matches("sha256:"))).unwrap();
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
    let (pushed, _) = reg.inspect("copy/debian:v1");
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
    let (fresh_digest, fresh_layers) = reg.inspect("fresh/busybox:latest");
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
    let reg = Registry::start_with(Some(("alice", "s3cret")));
    let a = reg.addr.clone();
    reg.put_archive(&busybox, "library/busybox:latest");
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
    let (digest, _) = reg.inspect("team/busybox:v2");
    assert!(out.contains(&digest), "{out}");
}
