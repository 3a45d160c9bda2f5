//! Found by moby 20.10's own integration suite (issue 14): clients speaking API versions down
//! to 1.12 get what those versions meant, the default IPC mode is dockerd's, and
//! `--ipc/--pid container:<x>` join the donor's namespace and `create --platform` is checked,
//! instead of both being ignored.

use crate::common;

use common::cli::Daemon;
use serde_json::Value;

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn old_api_versions_get_what_those_versions_meant() {
    let Some(d) = Daemon::start("old_api_versions_get_what_those_versions_meant") else {
        return;
    };
    // Before: 400 "client version 1.19 is too old. Minimum supported API version is 1.24".
    let (code, body) = d.api("GET", "/v1.20/info", None);
    assert_eq!(code, 200, "{body}");
    let info = json(&body);
    assert_eq!(info["ExecutionDriver"], "<not supported>");
    assert!(
        info["SecurityOptions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| !o.as_str().unwrap().contains("name=")),
        "1.20 security options are names only: {body}"
    );
    let (code, body) = d.api("GET", "/v1.11/version", None);
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("Minimum supported API version is 1.12"),
        "{body}"
    );

    // Inspect at 1.19 repeats the cpuset inside Config.
    d.ok(&[
        "create",
        "--name",
        "old-cpuset",
        "--cpuset-cpus",
        "0",
        "busybox",
        "true",
    ]);
    let (code, body) = d.api("GET", "/v1.19/containers/old-cpuset/json", None);
    assert_eq!(code, 200, "{body}");
    let c = json(&body);
    assert_eq!(c["Config"]["Cpuset"], "0", "{body}");
    assert!(c["Volumes"].is_object(), "{body}");
    // Killing a container that is not running was not an error before 1.20 …
    let (code, body) = d.api("POST", "/v1.19/containers/old-cpuset/kill", None);
    assert_eq!(code, 204, "{body}");
    // … and is one since.
    let (code, _) = d.api("POST", "/v1.41/containers/old-cpuset/kill", None);
    assert_eq!(code, 409);

    // The IPC namespace is private by default; a client older than 1.40 asked for shareable.
    d.ok(&["create", "--name", "ipc-now", "busybox", "true"]);
    assert_eq!(d.inspect("ipc-now", "{{.HostConfig.IpcMode}}"), "private");
    let (code, body) = d.api(
        "POST",
        "/v1.39/containers/create?name=ipc-old",
        Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{}}"#),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(d.inspect("ipc-old", "{{.HostConfig.IpcMode}}"), "shareable");
    d.finish();
}

#[test]
fn ipc_and_pid_container_modes_join_the_donor() {
    let Some(d) = Daemon::start("ipc_and_pid_container_modes_join_the_donor") else {
        return;
    };
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ns-donor",
        "--ipc",
        "shareable",
        "busybox",
        "sleep",
        "300",
    ]);
    let donor_ipc = d.ok(&["exec", "ns-donor", "readlink", "/proc/self/ns/ipc"]);
    // Before: the option was accepted and ignored (a fresh namespace each).
    let joined = d.ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:ns-donor",
        "busybox",
        "readlink",
        "/proc/self/ns/ipc",
    ]);
    assert_eq!(joined.trim(), donor_ipc.trim());
    // POSIX shared memory is shared too: the joiner's /dev/shm is the donor's (before: its
    // own empty tmpfs); a private container's is not; the donor's size is its --shm-size.
    d.ok(&["exec", "ns-donor", "sh", "-c", "echo shared > /dev/shm/seg"]);
    let seen = d.ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:ns-donor",
        "busybox",
        "cat",
        "/dev/shm/seg",
    ]);
    assert_eq!(seen, "shared");
    let o = d.docker(&["run", "--rm", "busybox", "cat", "/dev/shm/seg"]);
    assert!(
        !o.status.success(),
        "a private container sees the donor's shm"
    );
    let df = d.ok(&["exec", "ns-donor", "df", "-k", "/dev/shm"]);
    assert!(df.contains("65536"), "64 MiB by default: {df}");
    let ps = d.ok(&[
        "run",
        "--rm",
        "--pid",
        "container:ns-donor",
        "busybox",
        "ps",
        "-o",
        "args",
    ]);
    assert!(
        ps.contains("sleep 300"),
        "the donor's processes are visible: {ps}"
    );

    // A private donor is refused with dockerd's hint, a stopped one as not running.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ns-private",
        "busybox",
        "sleep",
        "300",
    ]);
    let err = d.fails(&[
        "run",
        "--rm",
        "--ipc",
        "container:ns-private",
        "busybox",
        "true",
    ]);
    assert!(
        err.contains("non-shareable IPC (hint: use IpcMode:shareable for the donor container)"),
        "{err}"
    );
    d.ok(&["create", "--name", "ns-stopped", "busybox", "true"]);
    let err = d.fails(&[
        "run",
        "--rm",
        "--pid",
        "container:ns-stopped",
        "busybox",
        "true",
    ]);
    assert!(err.contains("is not running"), "{err}");
    let err = d.fails(&["create", "--ipc", "bogus", "busybox", "true"]);
    assert!(err.contains("invalid IPC mode: bogus"), "{err}");
    // The host-side shm goes with the donor: nothing of it stays mounted.
    let id = d.inspect("ns-donor", "{{.Id}}");
    d.ok(&["rm", "-f", "ns-donor"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&id),
        "a mount of the removed donor remains"
    );
    d.finish();
}

#[test]
fn create_checks_the_platform_asked_and_pull_names_a_bad_one() {
    let Some(d) = Daemon::start("create_checks_the_platform_asked_and_pull_names_a_bad_one") else {
        return;
    };
    let arch = d.inspect("busybox", "{{.Architecture}}");
    // Before: the platform was ignored and the container created. (The docker CLI answers a
    // 404 from create by pulling, so this goes to the API directly.)
    let (code, body) = d.api(
        "POST",
        "/v1.41/containers/create?platform=linux%2Fs390x",
        Some(r#"{"Image":"busybox"}"#),
    );
    assert_eq!(code, 404, "{body}");
    assert!(
        body.contains("was found but does not match the specified platform: wanted linux/s390x"),
        "{body}"
    );
    let (code, body) = d.api(
        "POST",
        "/v1.41/containers/create?platform=plan10%2Famd64",
        Some(r#"{"Image":"busybox"}"#),
    );
    assert_eq!(code, 404, "{body}");
    d.ok(&[
        "create",
        "--platform",
        &format!("linux/{arch}"),
        "busybox",
        "true",
    ]);
    // containerd's words for a platform that is neither an OS nor an architecture.
    let (code, body) = d.api(
        "POST",
        "/images/create?fromImage=busybox&platform=foobar",
        None,
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("unknown operating system or architecture"),
        "{body}"
    );
    d.finish();
}

#[test]
fn update_and_volumes_from_refusals_read_as_dockerd() {
    let Some(d) = Daemon::start("update_and_volumes_from_refusals_read_as_dockerd") else {
        return;
    };
    d.ok(&[
        "run", "-d", "--rm", "--name", "upd-rm", "busybox", "sleep", "300",
    ]);
    // Before: create's words ("can't create 'AutoRemove' container with restart policy").
    let err = d.fails(&["update", "--restart", "always", "upd-rm"]);
    assert!(
        err.contains(
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        ),
        "{err}"
    );
    // Before: a 404, which makes the docker CLI try to pull the image.
    let (code, body) = d.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"VolumesFrom":["nosuchcontainer"]}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("No such container: nosuchcontainer"),
        "{body}"
    );
    // Before: tagged, and then `sha256:sometag` read as an image ID.
    let err = d.fails(&["tag", "busybox", "sha256:sometag"]);
    assert!(err.contains("refusing to create an ambiguous tag"), "{err}");
    d.ok(&["rm", "-f", "upd-rm"]);
    d.finish();
}

/// POST /build with a one-file context tar; (status, body).
fn build_raw(d: &Daemon, files: &[(&str, &[u8])]) -> (u16, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctx.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        // Raw names: a context may carry `../x` (the tar crate's set_path refuses it).
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.finish().unwrap();
    let o = std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
        .arg("--unix-socket")
        .arg(d.sock())
        .args(["-H", "Content-Type: application/x-tar", "--data-binary"])
        .arg(format!("@{}", path.display()))
        .arg("http://localhost/v1.41/build?rm=1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn build_context_and_dockerfile_edges_as_dockerd() {
    let Some(d) = Daemon::start("build_context_and_dockerfile_edges_as_dockerd") else {
        return;
    };
    // A Dockerfile that does not parse is a 400 before the stream (was a 200 with the error
    // inside it, so Go's ImageBuild returned no error and moby's test crashed).
    let (code, body) = build_raw(&d, &[("Dockerfile", b"# this is a comment")]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("file with no instructions"), "{body}");
    // Blank lines alone are the same (was "cannot be empty", which moby keeps for 0 bytes).
    let (code, body) = build_raw(&d, &[("Dockerfile", b"\n\n   \n")]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("file with no instructions"), "{body}");
    // `../foo` and `/bar` in a context are `foo` and `bar` (was: "name climbs out").
    let df = b"FROM scratch\nCOPY foo /\nCOPY bar /\n";
    let (code, body) = build_raw(
        &d,
        &[("Dockerfile", df), ("../foo", b"foo0"), ("/bar", b"bar0")],
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Successfully built"), "{body}");
    d.finish();
}
