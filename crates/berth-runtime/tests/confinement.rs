//! A container must not undo its own limits (root, busybox, through the real shim): read-only
//! cgroups, custom seccomp profiles, devices and their cgroup rules, capabilities within the
//! runtime's bounding set, owner/group-only executables, and runtime errors naming their step.

mod common;

use std::os::unix::fs::PermissionsExt;

use berth_runtime::confine::{devices_from_path, parse_device_rule};
use berth_runtime::{MountSpec, Resources, SeccompMode, User};
use common::Fixture;

macro_rules! fixture {
    ($name:expr) => {
        match Fixture::new($name) {
            Some(f) => f,
            None => return,
        }
    };
}

/// Run `spec` to its end; (exit code, stdout+stderr as logged).
async fn run(f: &Fixture, spec: berth_runtime::ContainerSpec) -> (i32, String) {
    let s = f.start(spec).await.unwrap();
    let code = s.wait().await.unwrap().exit_code;
    let out: String = f.logs().into_iter().map(|e| e.log).collect();
    let _ = std::fs::remove_file(f.dir.join("container.log"));
    (code, out)
}

/// Tries to raise the memory and pids limits from inside, prints what happened.
const RAISE_LIMITS: &str = include_str!("data/raise_limits.sh");

#[tokio::test]
async fn cgroup_limits_cannot_be_raised_from_inside() {
    let f = fixture!("cgroup_limits_cannot_be_raised_from_inside");
    let mut spec = f.spec(&["sh", "-c", RAISE_LIMITS]);
    spec.resources = Resources {
        memory: 32 << 20,
        pids_limit: 50,
        ..Resources::default()
    };
    let (code, out) = run(&f, spec).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    for failed in ["mem_rc=", "pids_rc=", "tmpfs_rc="] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(failed) && l != format!("{failed}0")),
            "{failed} write succeeded:\n{out}"
        );
    }
    assert!(out.contains(&format!("mem={}", 32 << 20)), "{out}");
    assert!(out.contains("pids=50"), "{out}");

    // What is mounted on top of /sys/fs/cgroup: read-only, unless privileged (as runc).
    let top = "awk '$2==\"/sys/fs/cgroup\"{o=substr($4,1,2)} END{print o}' /proc/self/mounts";
    let (code, out) = run(&f, f.spec(&["sh", "-c", top])).await;
    assert_eq!((code, out.trim()), (0, "ro"), "{out}");
    let mut spec = f.spec(&["sh", "-c", top]);
    spec.privileged = true;
    let (code, out) = run(&f, spec).await;
    assert_eq!((code, out.trim()), (0, "rw"), "{out}");
    assert!(f.cgroup_dirs().is_empty());
}

#[tokio::test]
async fn custom_seccomp_profile_blocks_what_it_lists() {
    let f = fixture!("custom_seccomp_profile_blocks_what_it_lists");
    let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let mut spec = f.spec(&["mkdir", "/x"]);
    spec.seccomp = SeccompMode::Custom(profile.into());
    let (code, out) = run(&f, spec).await;
    assert_ne!(
        code, 0,
        "mkdir succeeded under a profile blocking it: {out}"
    );
    assert!(out.contains("Operation not permitted"), "{out}");
    let (code, out) = run(&f, f.spec(&["mkdir", "/y"])).await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn devices_and_cgroup_rules() {
    let f = fixture!("devices_and_cgroup_rules");
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "ls -l /dev/nulo; head -c 4 /dev/nulo | od -An -tx1; exec 3</dev/lc && echo lc-open",
    ]);
    spec.devices = devices_from_path("/dev/zero", "/dev/nulo", "rwm").unwrap();
    spec.devices
        .extend(devices_from_path("/dev/loop-control", "/dev/lc", "r").unwrap());
    let (code, out) = run(&f, spec).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" 00 00 00 00"), "{out}");
    assert!(out.starts_with('c'), "{out}");
    // loop-control is not among the default devices: only its allow rule opens it.
    assert!(out.contains("lc-open"), "{out}");

    // A node made inside for a device without a rule cannot be opened; a rule opens it.
    let probe = "rm -f /tmp/lc; mknod /tmp/lc c 10 237 && exec 3</tmp/lc && echo opened";
    let (_, out) = run(&f, f.spec(&["sh", "-c", probe])).await;
    assert!(out.contains("Operation not permitted"), "{out}");
    let mut spec = f.spec(&["sh", "-c", probe]);
    spec.device_rules = vec![parse_device_rule("c 10:237 r").unwrap()];
    let (code, out) = run(&f, spec).await;
    assert_eq!((code, out.trim()), (0, "opened"), "{out}");
}

#[tokio::test]
async fn privileged_and_all_caps_within_the_bounding_set() {
    let f = fixture!("privileged_and_all_caps_within_the_bounding_set");
    let mut spec = f.spec(&["sh", "-c", "grep CapEff /proc/self/status"]);
    spec.privileged = true;
    let (code, out) = run(&f, spec).await;
    assert_eq!(code, 0, "{out}");
    let mut spec = f.spec(&["true"]);
    spec.cap_add = vec!["ALL".into()];
    let (code, out) = run(&f, spec).await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn runtime_errors_name_the_failing_step() {
    let f = fixture!("runtime_errors_name_the_failing_step");
    let mut spec = f.spec(&["true"]);
    spec.mounts.push(MountSpec {
        destination: "/berth-bad-mount".into(),
        kind: "berthnosuchfs".into(),
        source: "none".into(),
        options: vec![],
    });
    let e = f.start(spec).await.err().unwrap().to_string();
    // libcontainer reports only "failed to prepare rootfs"; the step is in its log.
    assert!(e.contains("berthnosuchfs"), "{e}");
    assert!(f.cgroup_dirs().is_empty());
}

#[tokio::test]
async fn owner_only_entrypoint_runs_for_its_users_only() {
    let f = fixture!("owner_only_entrypoint_runs_for_its_users_only");
    let script = f.rootfs.join("entry.sh");
    std::fs::write(&script, "#!/bin/sh\necho entry-ran\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::chown(&script, Some(0), Some(0)).unwrap();
    let (code, out) = run(&f, f.spec(&["/entry.sh"])).await;
    assert_eq!((code, out.trim()), (0, "entry-ran"), "{out}");
    // A member of the file's group may run it too.
    let mut spec = f.spec(&["/entry.sh"]);
    spec.user = User {
        uid: 1000,
        gid: 1000,
        additional_gids: vec![0],
        home: None,
    };
    let (code, out) = run(&f, spec).await;
    assert_eq!((code, out.trim()), (0, "entry-ran"), "{out}");
    // Neither owner nor in the group: 126, Docker's text.
    let mut spec = f.spec(&["/entry.sh"]);
    spec.user = User {
        uid: 1000,
        gid: 1000,
        ..Default::default()
    };
    let e = f.start(spec).await.err().unwrap();
    assert_eq!(e.exit_code(), 126, "{e}");
    assert_eq!(e.to_string(), "exec: \"/entry.sh\": permission denied");

    // The same for exec into a running container.
    let s = f.start(f.spec(&["sleep", "1000"])).await.unwrap();
    let ec = berth_runtime::ExecConfig {
        args: vec!["/entry.sh".into()],
        ..Default::default()
    };
    let (_pid, st) = s.exec(&ec).await.unwrap();
    let (out, _err, code) = st.collect().await.unwrap();
    assert_eq!(
        (code, String::from_utf8_lossy(&out).trim()),
        (Some(0), "entry-ran")
    );
    let e = s
        .exec(&berth_runtime::ExecConfig {
            user: Some(User {
                uid: 1000,
                gid: 1000,
                ..Default::default()
            }),
            ..ec
        })
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 126, "{e}");
    s.kill(9).await.unwrap();
    assert_eq!(s.wait().await.unwrap().exit_code, 137);
}
