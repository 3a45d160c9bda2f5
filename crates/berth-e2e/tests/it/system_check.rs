//! `berth system check [--repair]` end to end: orphans made behind a live daemon's back are
//! listed (exit 1), repaired (exit 0), and what is in use is left alone.

use crate::common;

use std::process::Command;

use common::cli::{link_exists, rand_tag, sh, Daemon};
use common::leftovers::{alive, StrayProcess};

fn check(d: &Daemon, repair: bool) -> (i32, String) {
    let mut args = vec!["system", "check"];
    if repair {
        args.push("--repair");
    }
    let o = Command::new(&d.bin)
        .args(["-H", &format!("unix://{}", d.sock().display())])
        .args(&args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// A process that looks like a shim to the daemon; killed on drop.
struct ShimLookalike(std::process::Child);

impl Drop for ShimLookalike {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn system_check_lists_and_repairs_orphans() {
    let Some(mut d) = Daemon::start("system_check_lists_and_repairs_orphans") else {
        return;
    };
    d.ok(&[
        "run", "-d", "-p", "80", "--name", "live", "busybox", "sleep", "1000",
    ]);
    let live_pid: i32 = d.inspect("live", "{{.State.Pid}}").parse().unwrap();
    // `cp` from a stopped container leaves its rootfs mounted: in use, not an orphan.
    d.ok(&["create", "--name", "stopped", "busybox"]);
    let copy = d.dir.path().join("copied-passwd");
    d.ok(&["cp", "stopped:/etc/passwd", copy.to_str().unwrap()]);
    let (code, out) = check(&d, false);
    assert_eq!((code, out.trim()), (0, "clean"), "a fresh daemon is clean");
    // Orphans: state of an id no record owns, a process in its cgroup, a netns file, a
    // mount in its rw layer, and a veth on the daemon's bridge that no endpoint owns.
    let ghost = format!("{:0>64}", rand_tag());
    let root = d.dir.path().join("root");
    let run = d.dir.path().join("run");
    std::fs::create_dir_all(root.join("containers").join(&ghost)).unwrap();
    let merged = root.join("containers-rw").join(&ghost).join("merged");
    std::fs::create_dir_all(&merged).unwrap();
    assert!(
        sh("mount", &["-t", "tmpfs", "tmpfs", merged.to_str().unwrap()])
            .status
            .success()
    );
    std::fs::create_dir_all(run.join("netns")).unwrap();
    std::fs::write(run.join("netns").join(&ghost), "").unwrap();
    let mut stray = StrayProcess::start(&ghost);
    // A shim whose directory is gone (as the old `rm` left them): `<exe> shim <dir>`.
    let gone_dir = root.join("containers").join(format!("{:0>64}", rand_tag()));
    let mut shim = ShimLookalike(
        Command::new("sh")
            .args(["-c", "read x", "shim"])
            .arg(&gone_dir)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let tag = rand_tag();
    let (vb, vp) = (format!("vb{tag}c"), format!("vp{tag}c"));
    d.links.push(vb.clone());
    assert!(sh(
        "ip",
        &["link", "add", &vb, "type", "veth", "peer", "name", &vp]
    )
    .status
    .success());
    assert!(sh("ip", &["link", "set", &vb, "master", &d.bridge])
        .status
        .success());
    let (code, out) = check(&d, false);
    assert_eq!(code, 1, "{out}");
    for kind in [
        "process",
        "shim",
        "cgroup",
        "netns",
        "mount",
        "veth",
        "rw-layer",
        "state-dir",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{kind}\t"))),
            "no {kind} finding in:\n{out}"
        );
    }
    assert!(!out.contains(&d.inspect("live", "{{.Id}}")), "{out}");
    let (code, out) = check(&d, true);
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().all(|l| l.ends_with("\trepaired")), "{out}");
    assert!(stray.gone(), "the orphan process survived the repair");
    let shim_gone = (0..500).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        matches!(shim.0.try_wait(), Ok(Some(_)))
    });
    assert!(shim_gone, "the orphan shim survived the repair");
    assert!(!stray.cgroup.exists());
    assert!(!link_exists(&vb));
    assert!(!root.join("containers").join(&ghost).exists());
    assert!(!root.join("containers-rw").join(&ghost).exists());
    assert!(!run.join("netns").join(&ghost).exists());
    assert_eq!(check(&d, false), (0, "clean\n".to_string()));
    // The container in use was left alone.
    assert!(alive(live_pid));
    assert_eq!(d.inspect("live", "{{.State.Status}}"), "running");
    d.ok(&["rm", "-f", "live", "stopped"]);
    d.finish();
}
