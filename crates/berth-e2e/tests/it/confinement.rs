//! A container must not undo its own limits, end to end with the real docker CLI against a
//! berth daemon on a temp root: read-only cgroups, `--security-opt` (custom seccomp profiles,
//! refusals at create), `--device`/`--device-cgroup-rule`, `--privileged`/`--cap-add ALL`
//! within the daemon's bounding set, and owner/group-only entrypoints.

use crate::common;

use common::cli::{rand_tag, Daemon, Opts};

fn start(test: &str) -> Option<Daemon> {
    Daemon::start_opts(
        test,
        Opts {
            cmds: &["curl"],
            ..Opts::default()
        },
    )
}

fn stderr_of(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let o = d.docker(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// No container of this daemon exists (a refused create left nothing behind).
fn assert_no_containers(d: &Daemon) {
    assert_eq!(
        d.ok(&["ps", "-aq"]),
        "",
        "a refused create left a container"
    );
}

/// Tries to raise the memory and pids limits from inside, prints what happened.
const RAISE_LIMITS: &str = include_str!("../../../berth-runtime/tests/data/raise_limits.sh");

#[test]
fn container_root_cannot_raise_its_memory_or_pids_limit() {
    let Some(d) = start("container_root_cannot_raise_its_memory_or_pids_limit") else {
        return;
    };
    let (code, out, err) = stderr_of(
        &d,
        &[
            "run",
            "--rm",
            "--memory",
            "32m",
            "--pids-limit",
            "50",
            "busybox",
            "sh",
            "-c",
            RAISE_LIMITS,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Read-only file system"), "{out}\n{err}");
    assert!(!out.contains("mem_rc=0\n"), "{out}");
    assert!(!out.contains("pids_rc=0\n"), "{out}");
    assert!(!out.contains("tmpfs_rc=0\n"), "{out}");
    assert!(out.contains(&format!("mem={}\n", 32 << 20)), "{out}");
    assert!(out.contains("pids=50\n"), "{out}");
    d.finish();
}

const BLOCK_MKDIR: &str = r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
  ]
}"#;

#[test]
fn security_opts_apply_or_are_refused_at_create() {
    let Some(d) = start("security_opts_apply_or_are_refused_at_create") else {
        return;
    };
    let profile = d.dir.path().join("no-mkdir.json");
    std::fs::write(&profile, BLOCK_MKDIR).unwrap();
    let opt = format!("seccomp={}", profile.display());
    // The CLI sends the profile's content; it blocks what it lists, nothing else.
    let (code, _, err) = stderr_of(
        &d,
        &[
            "run",
            "--rm",
            "--security-opt",
            &opt,
            "busybox",
            "mkdir",
            "/x",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    d.ok(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "touch",
        "/y",
    ]);
    d.ok(&["run", "--rm", "busybox", "mkdir", "/x"]);

    let status = |opts: &[&str]| {
        let mut args = vec!["run", "--rm"];
        for o in opts {
            args.extend(["--security-opt", o]);
        }
        args.extend([
            "busybox",
            "grep",
            "-E",
            "^(Seccomp|NoNewPrivs):",
            "/proc/self/status",
        ]);
        d.ok(&args)
    };
    assert!(status(&[]).contains("Seccomp:\t2"));
    assert!(status(&["seccomp=unconfined"]).contains("Seccomp:\t0"));
    assert!(status(&["no-new-privileges"]).contains("NoNewPrivs:\t1"));
    assert!(status(&["no-new-privileges=false"]).contains("NoNewPrivs:\t0"));
    // label=disable asks for less than this host has (no SELinux): accepted.
    status(&["label=disable"]);
    // systempaths=unconfined: nothing masked (/proc/timer_list reads empty when masked).
    let readable = |extra: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend(extra);
        args.extend(["busybox", "sh", "-c", "head -c 10 /proc/timer_list | wc -c"]);
        d.ok(&args)
    };
    if std::path::Path::new("/proc/timer_list").exists() {
        assert_eq!(readable(&[]), "0");
        assert_eq!(
            readable(&["--security-opt", "systempaths=unconfined"]),
            "10"
        );
    }

    // What cannot be honoured is a 400 at create (docker run exits 125), nothing is created.
    let refused = |opt: &str, want: &str| {
        let (code, _, err) = stderr_of(
            &d,
            &["run", "--rm", "--security-opt", opt, "busybox", "true"],
        );
        assert_eq!(code, 125, "{opt}: {err}");
        assert!(err.contains(want), "{opt}: {err}");
    };
    refused("foo=bar", "invalid --security-opt: \"foo=bar\"");
    refused("no-new-privileges=perhaps", "invalid --security-opt");
    refused("label=level:s0:c1", "only label=disable is accepted");
    refused("systempaths=masked", "invalid --security-opt");
    if !std::path::Path::new("/sys/module/apparmor/parameters/enabled").exists() {
        refused(
            "apparmor=docker-default",
            "apparmor is not enabled on this host, cannot apply profile docker-default",
        );
        status(&["apparmor=unconfined"]);
    }
    let bad = d.dir.path().join("bad-action.json");
    std::fs::write(&bad, r#"{"defaultAction":"SCMP_ACT_SOMETIMES"}"#).unwrap();
    refused(
        &format!("seccomp={}", bad.display()),
        "invalid seccomp profile",
    );
    // The raw API says 400 too.
    let (status, body) = d.api(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"SecurityOpt":["bogus"]}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid --security-opt"), "{body}");
    assert_no_containers(&d);
    d.finish();
}

/// A character major no driver on this host registered (an allowed open of it fails with
/// ENXIO, a cgroup-denied one with EPERM).
fn unused_char_major() -> u32 {
    let devices = std::fs::read_to_string("/proc/devices").unwrap();
    let chars: Vec<u32> = devices
        .split("Block devices:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    (234..=254)
        .rev()
        .chain(60..=63)
        .find(|m| !chars.contains(m))
        .expect("a free character major")
}

#[test]
fn devices_and_device_cgroup_rules() {
    let Some(d) = start("devices_and_device_cgroup_rules") else {
        return;
    };
    let out = d.ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/zero:/dev/nulo",
        "busybox",
        "sh",
        "-c",
        "ls -l /dev/nulo; head -c 4 /dev/nulo | od -An -tx1",
    ]);
    assert!(out.starts_with('c'), "{out}");
    assert!(out.contains(" 00 00 00 00"), "{out}");
    // A device outside the default set opens only with its --device rule.
    let open_lc = "exec 3</dev/lc && echo opened";
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--device",
            "/dev/loop-control:/dev/lc:r",
            "busybox",
            "sh",
            "-c",
            open_lc,
        ]),
        "opened"
    );
    // A node made inside without a rule is not accessible; --device-cgroup-rule opens it.
    let major = unused_char_major();
    let probe = format!("mknod /tmp/d c {major} 0 && cat /tmp/d");
    let (_, _, err) = stderr_of(&d, &["run", "--rm", "busybox", "sh", "-c", &probe]);
    assert!(err.contains("Operation not permitted"), "{err}");
    let rule = format!("c {major}:* r");
    let (_, _, err) = stderr_of(
        &d,
        &[
            "run",
            "--rm",
            "--device-cgroup-rule",
            &rule,
            "busybox",
            "sh",
            "-c",
            &probe,
        ],
    );
    assert!(err.contains("No such device or address"), "{err}");
    // A missing host device is dockerd's 400 at create.
    let missing = format!("/dev/berth-missing-{}", rand_tag());
    let (code, _, err) = stderr_of(
        &d,
        &["run", "--rm", "--device", &missing, "busybox", "true"],
    );
    // The CLI turns any error saying "no such file or directory" into 127 (dockerd's too).
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "error gathering device information while adding custom device \"{missing}\": no such file or directory"
        )),
        "{err}"
    );
    assert_no_containers(&d);
    d.finish();
}

/// Capabilities this process (like the daemon it spawned) cannot grant, by kernel number.
fn lacking_caps() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    let bnd = u64::from_str_radix(&hex, 16).unwrap();
    (0..=40).filter(|b| bnd & (1u64 << b) == 0).collect()
}

#[test]
fn privileged_and_cap_add_all_run_with_what_the_daemon_holds() {
    let Some(d) = start("privileged_and_cap_add_all_run_with_what_the_daemon_holds") else {
        return;
    };
    let (code, _, err) = stderr_of(&d, &["run", "--rm", "--privileged", "busybox", "true"]);
    assert_eq!(code, 0, "{err}");
    let lacking = lacking_caps();
    if lacking.contains(&24) {
        assert!(
            err.contains("WARNING") && err.contains("CAP_SYS_RESOURCE"),
            "no warning about the dropped capability: {err}"
        );
        // Named explicitly, it cannot be granted: refused at create.
        let (code, _, err) = stderr_of(
            &d,
            &[
                "run",
                "--rm",
                "--cap-add",
                "SYS_RESOURCE",
                "busybox",
                "true",
            ],
        );
        assert_eq!(code, 125, "{err}");
        assert!(err.contains("CAP_SYS_RESOURCE"), "{err}");
    }
    let (code, _, err) = stderr_of(&d, &["run", "--rm", "--cap-add", "ALL", "busybox", "true"]);
    assert_eq!(code, 0, "{err}");
    // Privileged exec too.
    let name = format!("priv{}", rand_tag());
    d.ok(&["run", "-d", "--name", &name, "busybox", "sleep", "600"]);
    d.ok(&["exec", "--privileged", &name, "true"]);
    d.ok(&["rm", "-f", &name]);
    d.finish();
}

#[test]
fn owner_and_group_only_entrypoints_run_for_their_users() {
    let Some(d) = start("owner_and_group_only_entrypoints_run_for_their_users") else {
        return;
    };
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("entry.sh"), "#!/bin/sh\necho entry-ran \"$@\"\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY --chmod=0750 entry.sh /entry.sh\nENTRYPOINT [\"/entry.sh\"]\n",
    )
    .unwrap();
    let tag = format!("owner-only-{}", rand_tag());
    d.ok(&["build", "-q", "-t", &tag, ctx.to_str().unwrap()]);
    assert_eq!(d.ok(&["run", "--rm", &tag, "x"]), "entry-ran x");
    // A user in the file's group (root) may run it; one in neither owner nor group may not.
    assert_eq!(
        d.ok(&["run", "--rm", "--user", "1000:0", &tag]),
        "entry-ran"
    );
    let (code, _, err) = stderr_of(&d, &["run", "--rm", "--user", "1000:1000", &tag]);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("permission denied"), "{err}");
    // exec: as root it runs, as a stranger it is refused with 126.
    let name = format!("own{}", rand_tag());
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--entrypoint",
        "sleep",
        &tag,
        "600",
    ]);
    assert_eq!(d.ok(&["exec", &name, "/entry.sh"]), "entry-ran");
    assert_eq!(
        d.code(&["exec", "-u", "1000:1000", &name, "/entry.sh"]),
        126
    );
    d.ok(&["rm", "-f", &name]);
    d.finish();
}
