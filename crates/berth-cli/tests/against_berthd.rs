//! End-to-end: the CLI auto-starts `berth daemon` on a private socket and root, then drives
//! the image commands through it.

#![cfg(feature = "daemon")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::ok;

/// Stops the auto-started daemon (by the PID in its pid file) and removes its directories.
struct Berthd {
    dir: PathBuf,
}

impl Berthd {
    fn sock(&self) -> PathBuf {
        self.dir.join("run/berth.sock")
    }
    fn berth(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("berth"));
        c.arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .arg("--root")
            .arg(self.dir.join("root"))
            .env_remove("BERTH_HOST")
            .env_remove("BERTH_NO_AUTOSTART")
            .env("BERTH_CONFIG", self.dir.join("cfg"))
            // The autostarted daemon inherits these: no default bridge, a table of its own
            // (removed on drop), so the test leaves no berth0 or `inet berth` behind.
            .env("BERTH_DEFAULT_BRIDGE", "none")
            .env("BERTH_NFT_TABLE", self.table());
        c
    }
    fn table(&self) -> String {
        format!("bcliauto{}", std::process::id())
    }
}

fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

impl Drop for Berthd {
    fn drop(&mut self) {
        let pidf = self.dir.join("run/berth.pid");
        if let Some(pid) = std::fs::read_to_string(&pidf)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            for _ in 0..300 {
                if !pid_alive(pid) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            if pid_alive(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table()])
            .output();
    }
}

fn unmount_under(dir: &Path) {
    let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    for m in mi
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
    {
        let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn autostarted_daemon_serves_image_commands() {
    let test = "autostarted_daemon_serves_image_commands";
    if !berth_testutil::require_root(test) {
        return;
    }
    let Some(bb) = berth_testutil::image(test, "busybox") else {
        return;
    };
    let d = Berthd {
        dir: PathBuf::from(format!("/tmp/bcli-berthd-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&d.dir);

    // first command starts the daemon
    let out = ok(d.berth().arg("images"));
    assert_eq!(out, "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n");
    assert!(d.sock().exists());
    assert!(d.dir.join("root/daemon.log").exists());

    // OCI archive straight in (berth loads OCI layouts, unlike dockerd 20.10)
    let out = ok(d.berth().arg("load").arg("-i").arg(&bb));
    assert!(out.contains("busybox"), "{out}");
    let rows = ok(d
        .berth()
        .args(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]));
    let (name, id) = rows.trim().split_once(' ').unwrap();
    assert_eq!(name, "busybox:latest");
    assert_eq!(id.len(), 12);

    ok(d.berth().args(["tag", "busybox", "example.test/bb:2"]));
    let inspect = ok(d.berth().args([
        "image",
        "inspect",
        "-f",
        "{{json .RepoTags}}",
        "example.test/bb:2",
    ]));
    assert!(inspect.contains("example.test/bb:2"), "{inspect}");
    assert_eq!(
        ok(d.berth().args(["rmi", "example.test/bb:2"])),
        "Untagged: example.test/bb:2\n"
    );
    let v = ok(d
        .berth()
        .args(["version", "--format", "{{.Server.Version}}"]));
    assert!(!v.trim().is_empty());
}
