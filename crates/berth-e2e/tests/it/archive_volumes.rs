//! docker cp through volumes and binds, `GET /distribution/{name}/json` against a real
//! `docker-registry`, and `docker system prune`: the real docker CLI (and curl for the raw
//! endpoint) against a berth daemon (the `berth` binary, built by `cargo build -p berth-cli`)
//! on a temp root, socket, bridge and nft table.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use berth_testutil::registry::Registry;
use common::cli::{rand_tag, Daemon, Opts};

fn start(test: &str, cmds: &[&str]) -> Option<Daemon> {
    Daemon::start_opts(
        test,
        Opts {
            cmds,
            ..Default::default()
        },
    )
}

/// Entry names and contents of a tar on stdout.
fn tar_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let n = e.path().unwrap().to_string_lossy().into_owned();
            let mut d = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut d).unwrap();
            (n, d)
        })
        .collect()
}

fn cp_out(d: &Daemon, src: &str) -> Vec<(String, Vec<u8>)> {
    let o = d.docker(&["cp", src, "-"]);
    assert!(
        o.status.success(),
        "docker cp {src} -: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    tar_entries(&o.stdout)
}

fn file_of<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &entries
        .iter()
        .find(|e| e.0 == name)
        .unwrap_or_else(|| panic!("{name} not in {:?}", names(entries)))
        .1
}

fn names(entries: &[(String, Vec<u8>)]) -> Vec<&str> {
    entries.iter().map(|e| e.0.as_str()).collect()
}

#[test]
fn docker_cp_sees_volumes_and_binds_of_created_and_stopped_containers() {
    let t = "docker_cp_sees_volumes_and_binds";
    let Some(d) = start(t, &["docker"]) else {
        return;
    };
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(host.join("in")).unwrap();
    std::fs::write(host.join("in/hostfile"), b"from the host\n").unwrap();
    std::fs::write(host.join("local.txt"), b"copied in\n").unwrap();
    let local = host.join("local.txt");
    let local = local.to_str().unwrap();
    let vol = format!("arv{}", rand_tag());
    let bind = format!("{}:/ro:ro", host.join("in").display());
    // Created, never started: the volume, the anonymous volume and the bind are visible.
    let c = d.ok(&[
        "create",
        "-v",
        &format!("{vol}:/srv/vol"),
        "-v",
        "/anon",
        "-v",
        &bind,
        "busybox",
        "cat",
        "/srv/vol/local.txt",
        "/anon/local.txt",
    ]);
    d.ok(&["cp", local, &format!("{c}:/srv/vol/")]);
    d.ok(&["cp", local, &format!("{c}:/anon/")]);
    let e = cp_out(&d, &format!("{c}:/ro/hostfile"));
    assert_eq!(file_of(&e, "hostfile"), b"from the host\n");
    // Writing under a read-only bind: Docker's error, nothing written.
    let err = d.fails(&["cp", local, &format!("{c}:/ro/")]);
    assert!(err.contains("mounted volume is marked read-only"), "{err}");
    assert!(!host.join("in/local.txt").exists());
    // Archiving a directory that holds a mount point descends into the mount.
    let e = cp_out(&d, &format!("{c}:/srv"));
    assert_eq!(file_of(&e, "srv/vol/local.txt"), b"copied in\n");
    // The container itself sees what docker cp put into its volumes.
    let out = d.ok(&["start", "-a", &c]);
    assert_eq!(out, "copied in\ncopied in");
    // Stopped: still visible; the named volume holds the file outside the container too.
    let e = cp_out(&d, &format!("{c}:/srv/vol/local.txt"));
    assert_eq!(file_of(&e, "local.txt"), b"copied in\n");
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/v"),
        "busybox",
        "cat",
        "/v/local.txt",
    ]);
    assert_eq!(out, "copied in");
    // docker-py's ArchiveTest shape: a file written by the container into an anonymous volume.
    let c2 = d.ok(&[
        "run",
        "-d",
        "-v",
        "/vol1",
        "busybox",
        "sh",
        "-c",
        "echo -n data > /vol1/data.txt",
    ]);
    d.ok(&["wait", &c2]);
    let e = cp_out(&d, &format!("{c2}:/vol1/data.txt"));
    assert_eq!(file_of(&e, "data.txt"), b"data");
    d.ok(&["rm", "-v", &c, &c2]);
    d.ok(&["volume", "rm", &vol]);
}

/// Put an OCI archive into the registry; returns its manifest digest.
fn put(reg: &Registry, archive: &Path, repo_tag: &str) -> String {
    reg.put_archive(archive, repo_tag);
    reg.inspect(repo_tag).0
}

/// PUT a raw manifest or index; returns its digest.
fn put_raw(reg: &Registry, repo: &str, tag: &str, media_type: &str, body: &[u8]) -> String {
    let o = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {media_type}"))
        .arg("--data-binary")
        .arg("@-")
        .arg(format!("http://{}/v2/{repo}/manifests/{tag}", reg.addr))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(body)?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(o.status.success(), "PUT manifest {repo}:{tag}");
    format!("sha256:{}", sha256_hex(body))
}

fn sha256_hex(b: &[u8]) -> String {
    berth_oci::Digest::of(b).to_string()[7..].to_string()
}

#[test]
fn distribution_inspect_against_local_registry() {
    let t = "distribution_inspect_against_local_registry";
    let Some(d) = start(t, &["docker", "docker-registry", "skopeo", "curl"]) else {
        return;
    };
    let Some(busybox) = berth_testutil::image(t, "busybox") else {
        return;
    };
    let reg = Registry::start();
    let a = reg.addr.clone();
    let digest = put(&reg, &busybox, "arv/bb:1");
    let (code, body) = d.api(
        "GET",
        &format!("/v1.47/distribution/{a}/arv/bb:1/json"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Descriptor"]["digest"], digest.as_str(), "{v}");
    let mt = v["Descriptor"]["mediaType"].as_str().unwrap();
    assert!(
        mt.ends_with("manifest.v1+json") || mt.ends_with("manifest.v2+json"),
        "{mt}"
    );
    assert!(v["Descriptor"]["size"].as_i64().unwrap() > 100, "{v}");
    assert_eq!(v["Platforms"][0]["os"], "linux", "{v}");
    assert_eq!(v["Platforms"][0]["architecture"], "amd64", "{v}");
    // Nothing was pulled into the engine.
    assert_eq!(d.ok(&["images", "-q", &format!("{a}/arv/bb")]), "");
    // An index: its own descriptor and every platform it lists.
    let (size, mt) = (v["Descriptor"]["size"].as_i64().unwrap(), mt.to_string());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": mt, "digest": digest, "size": size,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": mt, "digest": digest, "size": size,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        ]
    });
    let body = serde_json::to_vec(&index).unwrap();
    let idx_digest = put_raw(
        &reg,
        "arv/bb",
        "multi",
        "application/vnd.oci.image.index.v1+json",
        &body,
    );
    let (code, body) = d.api("GET", &format!("/distribution/{a}/arv/bb:multi/json"), None);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Descriptor"]["digest"], idx_digest.as_str(), "{v}");
    assert_eq!(
        v["Descriptor"]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let plats: Vec<String> = v["Platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}/{}{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap(),
                p["variant"]
                    .as_str()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64/v8"]);
    // An index without the host's platform is inspectable too.
    let foreign = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": mt, "digest": digest, "size": size,
             "platform": {"architecture": "s390x", "os": "linux"}},
        ]
    });
    let body = serde_json::to_vec(&foreign).unwrap();
    let foreign_digest = put_raw(
        &reg,
        "arv/bb",
        "foreign",
        "application/vnd.oci.image.index.v1+json",
        &body,
    );
    let (code, body) = d.api(
        "GET",
        &format!("/distribution/{a}/arv/bb:foreign/json"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Descriptor"]["digest"], foreign_digest.as_str(), "{v}");
    assert_eq!(v["Platforms"][0]["architecture"], "s390x", "{v}");
    // By digest, and an unknown tag: the registry's 404.
    let (code, _) = d.api(
        "GET",
        &format!("/distribution/{a}/arv/bb@{digest}/json"),
        None,
    );
    assert_eq!(code, 200);
    let (code, body) = d.api(
        "GET",
        &format!("/distribution/{a}/arv/bb:nosuch/json"),
        None,
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("nosuch"), "{body}");
}

#[test]
fn docker_system_prune_removes_what_is_unused() {
    let t = "docker_system_prune_removes_what_is_unused";
    let Some(d) = start(t, &["docker"]) else {
        return;
    };
    let tag = rand_tag();
    let keep = format!("arvkeep{tag}");
    let (net, named) = (format!("arvnet{tag}"), format!("arvvol{tag}"));
    // Unused: a stopped container, a network, an anonymous volume (its container removed
    // without -v), a dangling image and its build cache. In use: a running container.
    d.ok(&["run", "--name", "stopped", "busybox", "true"]);
    d.ok(&["network", "create", &net]);
    d.ok(&["volume", "create", &named]);
    let anon = d.ok(&["create", "-v", "/anon", "busybox", "true"]);
    let anon_vol = d.ok(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", &anon]);
    d.ok(&["rm", &anon]);
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let build = |step: &str| {
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM busybox\nRUN {step}\n"),
        )
        .unwrap();
        d.ok(&["build", "-q", "-t", "arvimg", ctx.to_str().unwrap()])
    };
    let dangling = build("echo one > /f");
    build("echo two > /f"); // arvimg moves on: the first build's image is dangling
    d.ok(&["run", "-d", "--name", &keep, "busybox", "sleep", "600"]);
    // df counts what prune will look at: containers (one running), images in use, build cache.
    let df = |d: &Daemon| {
        d.ok(&[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}}",
        ])
    };
    let before = df(&d);
    assert!(before.contains("Containers 2 1"), "{before}");
    assert!(before.contains("Images 3 1"), "{before}");
    let cache_line = before
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap();
    assert_ne!(cache_line, "Build Cache 0 0", "{before}");
    let info = d.ok(&["info", "--format", "{{.Containers}} {{.ContainersRunning}}"]);
    assert_eq!(info, "2 1");
    let out = d.ok(&["system", "prune", "-f", "--volumes"]);
    for want in [
        "Deleted Containers:",
        "Deleted Networks:",
        "Deleted Volumes:",
        "Deleted Images:",
        "Deleted build cache objects:",
        &net,
        &anon_vol,
        dangling.trim_start_matches("sha256:"),
    ] {
        assert!(out.contains(want), "{want} missing from:\n{out}");
    }
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), keep);
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains(&net), "{nets}");
    // Like Docker ≥ 23, named volumes stay unless `--all` (`docker volume prune -a`).
    let vols = d.ok(&["volume", "ls", "-q"]);
    assert!(vols.contains(&named) && !vols.contains(&anon_vol), "{vols}");
    let after = df(&d);
    assert!(after.contains("Build Cache 0 0"), "{after}");
    assert!(after.contains("Containers 1 1"), "{after}");
    assert!(after.contains("Images 2 1"), "{after}");
    // -a: every image no container uses goes.
    d.ok(&["rm", "-f", &keep]);
    let out = d.ok(&["system", "prune", "-af"]);
    assert!(out.contains("Deleted Images:"), "{out}");
    assert_eq!(d.ok(&["images", "-q"]), "");
    d.ok(&["volume", "rm", &named]);
}
