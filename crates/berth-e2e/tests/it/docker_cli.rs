//! End to end with the REAL docker CLI against an in-process berth daemon.

use crate::common;

use common::{busybox, path_str, TestDaemon};

const BUSYBOX_ID: &str = "sha256:c50ff9579a6201a92c094cbcb771a8a33f805bfe4f407e782060abaa04a4c240";

#[test]
fn docker_version_info_and_negotiation() {
    if !berth_testutil::require_cmds("docker_version_info_and_negotiation", &["docker"]) {
        return;
    }
    let d = TestDaemon::start();
    let v = d.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Client.APIVersion}} {{.Server.Os}}",
    ]);
    let parts: Vec<&str> = v.split_whitespace().collect();
    assert_eq!(parts[0], "1.53", "server API version: {v}");
    assert_eq!(parts[1], "1.12");
    // docker 28's CLI speaks at most 1.50 and negotiates down to it.
    let client: f64 = parts[2].parse().unwrap();
    assert!(client <= 1.53, "client negotiated {client}");
    assert_eq!(parts[3], "linux");
    let info = d.docker_ok(&[
        "info",
        "--format",
        "{{.Images}} {{.Driver}} {{.OSType}} {{.DockerRootDir}}",
    ]);
    assert_eq!(
        info.trim(),
        format!("0 overlay2 linux {}", d.root().display())
    );
    let imgs = d.docker_ok(&["images", "-q"]);
    assert_eq!(imgs.trim(), "");
    // A version above ours gets Docker's message.
    let o = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .env("DOCKER_API_VERSION", "1.99")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("client version 1.99 is too new. Maximum supported API version is 1.53"),
        "{err}"
    );
    // Pulling from a loopback port nobody listens on fails with the registry named.
    let o = d.docker(&["pull", "127.0.0.1:9/nosuch:1"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("127.0.0.1:9"));
}

#[test]
fn docker_image_lifecycle() {
    let t = "docker_image_lifecycle";
    if !berth_testutil::require_root(t) || !berth_testutil::require_cmds(t, &["docker", "tar"]) {
        return;
    }
    let Some(archive) = busybox(t) else { return };
    let d = TestDaemon::start();

    let out = d.docker_ok(&["load", "-i", path_str(&archive)]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");

    let out = d.docker_ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    assert_eq!(out.trim(), format!("busybox:latest {BUSYBOX_ID}"));

    let out = d.docker_ok(&[
        "image", "inspect", "busybox", "--format",
        "{{.Id}} {{.Os}}/{{.Architecture}} {{index .RepoTags 0}} {{.RootFS.Type}} {{len .RootFS.Layers}} {{index .Config.Cmd 0}} {{.GraphDriver.Name}}",
    ]);
    assert_eq!(
        out.trim(),
        format!("{BUSYBOX_ID} linux/amd64 busybox:latest layers 1 sh overlay2")
    );

    d.docker_ok(&["tag", "busybox", "example.com/team/box:v1"]);
    let out = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut tags: Vec<&str> = out.lines().collect();
    tags.sort();
    assert_eq!(tags, vec!["busybox:latest", "example.com/team/box:v1"]);
    let out = d.docker_ok(&["images", "--filter", "reference=busybox", "-q"]);
    assert_eq!(out.lines().count(), 1);

    // By ID with two repositories: needs force, with Docker's message.
    let o = d.docker(&["rmi", &BUSYBOX_ID[7..19]]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("image is referenced in multiple repositories"),
        "{err}"
    );
    let out = d.docker_ok(&["rmi", "example.com/team/box:v1"]);
    assert_eq!(out.trim(), "Untagged: example.com/team/box:v1");

    let out = d.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Comment}}",
        "busybox",
    ]);
    assert_eq!(out.trim(), format!("{BUSYBOX_ID}|Imported from -"));

    let saved = d.dir.path().join("saved.tar");
    d.docker_ok(&["save", "-o", path_str(&saved), "busybox"]);
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&saved)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for want in ["index.json", "manifest.json", "oci-layout"] {
        assert!(list.lines().any(|l| l == want), "{want} missing in {list}");
    }

    let df = d.docker_ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.lines().any(|l| l == "Images 1"), "{df}");

    // Import a rootfs with --change, then prune everything.
    let rootfs = d.dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hello"), "hi\n").unwrap();
    let tarball = d.dir.path().join("rootfs.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let out = d.docker_ok(&[
        "import",
        "--change",
        "CMD [\"/bin/hello\"]",
        "-m",
        "from test",
        path_str(&tarball),
        "imported:1",
    ]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let out = d.docker_ok(&[
        "image",
        "inspect",
        "imported:1",
        "--format",
        "{{index .Config.Cmd 0}} {{.Comment}}",
    ]);
    assert_eq!(out.trim(), "/bin/hello from test");

    let ev = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &format!("{}", now() + 1),
        "--filter",
        "type=image",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = ev.lines().collect();
    for a in ["load", "tag", "untag", "save", "import"] {
        assert!(actions.contains(&a), "no {a} event in {actions:?}");
    }

    // Remove and reload from our own save: same ID.
    let out = d.docker_ok(&["rmi", "busybox"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains(&format!("Deleted: {BUSYBOX_ID}")), "{out}");
    let out = d.docker_ok(&["load", "-i", path_str(&saved)]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    let out = d.docker_ok(&["images", "-q", "--no-trunc", "busybox"]);
    assert_eq!(out.trim(), BUSYBOX_ID);

    // load reports what the archive names, not every tag the image has here; by ID: the ID.
    d.docker_ok(&["tag", "busybox", "other:tag"]);
    let by_id = d.dir.path().join("by-id.tar");
    d.docker_ok(&["save", "-o", path_str(&by_id), BUSYBOX_ID]);
    let out = d.docker_ok(&["load", "-i", path_str(&by_id)]);
    assert_eq!(out.trim(), format!("Loaded image ID: {BUSYBOX_ID}"));
    let out = d.docker_ok(&["load", "-i", path_str(&saved)]);
    assert_eq!(out.trim(), "Loaded image: busybox:latest");
    d.docker_ok(&["rmi", "other:tag"]);
    // A file that is no archive: the error comes in the stream (as moby), exit 1, nothing added.
    let junk = d.dir.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar").unwrap();
    let o = d.docker(&["load", "-i", path_str(&junk)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("invalid archive"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(out.trim(), "imported:1\nbusybox:latest");

    let out = d.docker_ok(&["image", "prune", "-af"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert!(out.contains(&format!("deleted: {BUSYBOX_ID}")), "{out}");
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
