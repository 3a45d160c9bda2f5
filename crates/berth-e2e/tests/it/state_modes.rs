//! Local users must not reach root through berth's state: an unprivileged user can neither
//! list nor traverse the root, containers, a snapshot or a container's upper dir (no setuid
//! binary of an image or a container can be run from there, no record or log read); the daemon
//! repairs the modes of an older root; the API socket is 0660 root:root, or its configured group.
//! Containers running as nobody and volumes keep working.

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{rand_tag, sh, Daemon, Opts};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Can uid/gid 65534 (no supplementary groups) list `p`?
fn nobody_can_list(p: &Path) -> bool {
    Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "ls",
        ])
        .arg(p)
        .output()
        .unwrap()
        .status
        .success()
}

/// Let others traverse the test's temp dir (0700 from tempfile), so that berth's own modes are
/// all that stands between an unprivileged user and the state.
fn open_test_dir(d: &Daemon) {
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        nobody_can_list(d.dir.path()),
        "control: nobody must be able to list the test dir"
    );
}

/// A daemon with busybox, for a test that needs `setpriv`.
fn start_with_setpriv(test: &str) -> Option<Daemon> {
    Daemon::start_opts(
        test,
        Opts {
            cmds: &["setpriv"],
            ..Default::default()
        },
    )
}

fn first_snapshot(root: &Path) -> PathBuf {
    std::fs::read_dir(root.join("snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("fs").is_dir())
        .expect("a snapshot")
}

#[test]
fn unprivileged_user_cannot_reach_state() {
    let Some(d) = start_with_setpriv("unprivileged_user_cannot_reach_state") else {
        return;
    };
    let (name, vol) = (format!("sm{}", rand_tag()), format!("smv{}", rand_tag()));
    // Containers as nobody, with a volume, still work under private state.
    let out = d.ok(&[
        "run",
        "--name",
        &name,
        "-u",
        "65534:65534",
        "-v",
        &format!("{vol}:/data"),
        "-e",
        "SECRET=hunter2",
        "busybox",
        "sh",
        "-c",
        "id -u; ls -ld /data >/dev/null; cat /etc/hosts >/dev/null; echo ran",
    ]);
    assert_eq!(out, "65534\nran");
    let id = d.inspect(&name, "{{.Id}}");
    open_test_dir(&d);
    let root = d.dir.path().join("root");
    let snap = first_snapshot(&root);
    let ctr = root.join("containers").join(&id);
    let rw = root.join("containers-rw").join(&id);
    for p in [
        root.clone(),
        root.join("containers"),
        ctr.clone(),
        rw.join("upper"),
        snap.join("fs"),
        root.join("blobs/sha256"),
        root.join("volumes"),
    ] {
        assert!(p.exists(), "{}", p.display());
        assert!(!nobody_can_list(&p), "nobody can list {}", p.display());
    }
    for dir in std::iter::once("").chain(berth_daemon::server::STATE_DIRS.iter().copied()) {
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir:?}");
    }
    for p in [ctr.clone(), rw.clone(), snap.clone()] {
        assert_eq!(mode(&p), 0o700, "{}", p.display());
    }
    for f in [
        ctr.join("config.v2.json"),
        ctr.join(format!("{id}-json.log")),
        root.join("meta.db"),
    ] {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    // What the container sees keeps its modes: its `/` and the bind-mounted hosts file.
    assert_eq!(mode(&rw.join("upper")) & 0o755, 0o755);
    assert_eq!(mode(&ctr.join("hosts")), 0o644);
    d.ok(&["rm", "-f", &name]);
    d.ok(&["volume", "rm", &vol]);
    d.finish();
}

#[test]
fn daemon_repairs_modes_of_an_existing_root() {
    let Some(mut d) = start_with_setpriv("daemon_repairs_modes_of_an_existing_root") else {
        return;
    };
    let name = format!("smr{}", rand_tag());
    d.ok(&["create", "--name", &name, "busybox", "true"]);
    d.kill9();
    // A root as an older berth left it: 0755 directories, 0644 files.
    let root = d.dir.path().join("root");
    let loose: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.is_symlink())
        .chain([root.clone()])
        .collect();
    for p in &loose {
        let m = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    open_test_dir(&d);
    assert!(nobody_can_list(&root.join("containers")), "control");
    d.spawn();
    for p in &loose {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(p), want, "{}", p.display());
    }
    assert!(!nobody_can_list(&root));
    // The container made before the restart still runs.
    d.ok(&["start", "-a", &name]);
    d.ok(&["rm", "-f", &name]);
    d.finish();
}

#[test]
fn socket_is_root_only_without_a_group() {
    let Some(d) = Daemon::start_opts(
        "socket_is_root_only_without_a_group",
        Opts {
            busybox: false,
            ..Default::default()
        },
    ) else {
        return;
    };
    let m = std::fs::metadata(d.sock()).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid(), m.gid()), (0o660, 0, 0));
    d.finish();
}

/// A unique group, removed on drop.
struct TestGroup(String);

impl TestGroup {
    fn new() -> TestGroup {
        let g = TestGroup(format!("bertg{}", rand_tag()));
        let o = sh("groupadd", &[&g.0]);
        assert!(o.status.success(), "groupadd: {o:?}");
        g
    }
    fn gid(&self) -> u32 {
        let etc = std::fs::read_to_string("/etc/group").unwrap();
        berth_api::listen::group_gid(&self.0, &etc).unwrap()
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = sh("groupdel", &[&self.0]);
    }
}

#[test]
fn socket_group_from_flag_and_daemon_json() {
    let test = "socket_group_from_flag_and_daemon_json";
    if !berth_testutil::require_root(test)
        || !berth_testutil::require_cmds(test, &["groupadd", "groupdel"])
    {
        return;
    }
    let g = TestGroup::new();
    let json = format!(r#"{{"group":"{}"}}"#, g.0);
    let flag = ["--group", g.0.as_str()];
    for opts in [
        Opts {
            busybox: false,
            extra_args: &flag,
            ..Default::default()
        },
        Opts {
            busybox: false,
            daemon_json: Some(&json),
            ..Default::default()
        },
    ] {
        let Some(d) = Daemon::start_opts(test, opts) else {
            return;
        };
        let m = std::fs::metadata(d.sock()).unwrap();
        assert_eq!((m.mode() & 0o777, m.uid(), m.gid()), (0o660, 0, g.gid()));
        d.finish();
    }
}

#[test]
fn missing_socket_group_is_an_error() {
    let test = "missing_socket_group_is_an_error";
    if !berth_testutil::require_root(test) {
        return;
    }
    let Some(bin) = common::cli::berth_bin() else {
        assert!(!berth_testutil::in_ci(), "{test}: build berth-cli first");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let group = format!("nosuchgrp{}", rand_tag());
    let o = Command::new(bin)
        .args(["daemon", "--root"])
        .arg(dir.path().join("root"))
        .arg("--exec-root")
        .arg(dir.path().join("run"))
        .arg("-H")
        .arg(format!("unix://{}", dir.path().join("d.sock").display()))
        .args(["--group", &group, "--bridge", "none"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&group) && err.contains("does not exist"),
        "{err}"
    );
    assert!(!dir.path().join("d.sock").exists());
}

#[test]
fn an_existing_exec_root_the_user_named_keeps_its_modes() {
    // `berth daemon -H unix:///tmp/x.sock` makes /tmp the exec root: berth must close only
    // its own dirs in there, never the directory or its other files.
    let t = tempfile::tempdir().unwrap();
    let shared = t.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(shared.join("someone-elses"), b"x").unwrap();
    std::fs::set_permissions(
        shared.join("someone-elses"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut cfg = berth_daemon::DaemonConfig::under(t.path());
    cfg.exec_root = shared.clone();
    berth_daemon::server::secure_state(&cfg).unwrap();
    assert_eq!(mode(&shared), 0o1777);
    assert_eq!(mode(&shared.join("someone-elses")), 0o644);
    for d in ["netns", "runtime"] {
        assert_eq!(mode(&shared.join(d)), 0o700, "{d}");
    }
    assert_eq!(mode(&cfg.root), 0o700);
    // An exec root berth creates is private.
    cfg.exec_root = t.path().join("fresh/run");
    berth_daemon::server::secure_state(&cfg).unwrap();
    assert_eq!(mode(&cfg.exec_root), 0o700);
}
