//! berth installed as `dockerd` (issue 14): linked under that name it is the daemon and takes
//! dockerd's command line — `--data-root`, `--pidfile`, `--iptables=false`, `--live-restore`,
//! the containerd flags (accepted: berth runs containers itself) — and daemon.json's
//! `deprecated-key-path` keeps the engine ID a dockerd host had. moby's own suite starts its
//! test daemons exactly so.

use std::process::{Child, Command, Stdio};

use crate::common;

use common::cli::{berth_bin, rand_tag, DOCKER};
use common::poll;

/// The spawned daemon, interrupted (by its PID) and reaped on drop.
struct Dockerd(Child);

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            unsafe { libc::kill(self.0.id() as i32, libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }
}

fn docker(sock: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(DOCKER)
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", sock.parent().unwrap().join("cfg"))
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap()
}

#[test]
fn linked_as_dockerd_it_takes_dockerds_command_line() {
    let Some(bin) = berth_bin() else {
        assert!(std::env::var_os("CI").is_none(), "berth binary not built");
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("berth-dockerd-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("bin")).unwrap();
    std::os::unix::fs::symlink(&bin, d.join("bin/dockerd")).unwrap();
    let kid = "WTJ3:YSIP:CE2E:G6KJ:PSBD:YX2Y:WEYD:M64G:NU2V:XPZV:H2CR:VLUB";
    std::fs::write(
        d.join("key.json"),
        format!(r#"{{"crv":"P-256","kid":"{kid}","kty":"EC"}}"#),
    )
    .unwrap();
    std::fs::write(
        d.join("daemon.json"),
        format!(
            r#"{{"deprecated-key-path": "{}"}}"#,
            d.join("key.json").display()
        ),
    )
    .unwrap();
    let sock = d.join("d.sock");
    let table = format!("berthdkd{}", rand_tag());
    let spawn = |extra: &[&str]| {
        Command::new(d.join("bin/dockerd"))
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("d.pid"))
            .args(["--userland-proxy=true", "--containerd-namespace", "t1"])
            .args([
                "--containerd-plugins-namespace",
                "t1p",
                "--containerd",
                "/nonexistent.sock",
            ])
            .arg("--host")
            .arg(format!("unix://{}", sock.display()))
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .args(["--debug", "--bridge", "none", "--nft-table", &table])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // live-restore off would be ignored, so it is refused (before: "unexpected argument").
    let out = spawn(&["--live-restore=false"]).wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--live-restore=false is not supported"));

    let child = Dockerd(spawn(&["--live-restore", "--iptables=false"]));
    let pid = child.0.id();
    let up = poll(30, || {
        docker(&sock, &["version"]).status.success().then_some(())
    });
    assert!(up.is_some(), "berth as dockerd did not come up");
    assert_eq!(
        std::fs::read_to_string(d.join("d.pid")).unwrap().trim(),
        pid.to_string()
    );
    assert!(d.join("root").is_dir(), "--data-root is the state root");
    // The engine ID is the libtrust key's (before: a random one of berth's).
    let o = docker(&sock, &["info", "-f", "{{.ID}}"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), kid);
    // --iptables=false: no nft table, and publishing a port is refused, not silently dead.
    let nft = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    assert!(
        !nft.status.success(),
        "nft table written despite --iptables=false"
    );
    let o = docker(
        &sock,
        &[
            "network",
            "create",
            "--subnet",
            "10.251.7.0/24",
            "-o",
            &format!("com.docker.network.bridge.name=bdk{}", &table[8..]),
            "n1",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let img = berth_testutil::image("linked_as_dockerd", "busybox");
    if let Some(img) = img {
        let o = docker(&sock, &["load", "-i", img.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = docker(
            &sock,
            &[
                "run",
                "--rm",
                "--network",
                "n1",
                "-p",
                "18080:80",
                "busybox",
                "true",
            ],
        );
        assert!(!o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--iptables=false"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = docker(
            &sock,
            &["run", "--rm", "--network", "n1", "busybox", "true"],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(docker(&sock, &["network", "rm", "n1"]).status.success());
    // SIGINT, as moby's harness stops its daemons: a clean exit that removes the pid file.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let mut child = child;
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!d.join("d.pid").exists());
}
