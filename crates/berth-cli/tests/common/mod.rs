//! A private dockerd per test (own socket, data-root, exec-root), stopped by PID on drop.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Dockerd {
    pub dir: PathBuf,
    pub host: String,
    child: Option<Child>,
}

impl Dockerd {
    /// Start dockerd under a fresh directory; panics if it does not answer /_ping.
    pub fn start(name: &str) -> Dockerd {
        let dir = PathBuf::from(format!("/tmp/bcli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("d.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--host")
            .arg(format!("unix://{}", sock.display()))
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        let mut d = Dockerd {
            host: format!("unix://{}", sock.display()),
            dir,
            child: Some(child),
        };
        // bounded readiness poll (not a timing assertion)
        for _ in 0..600 {
            if sock.exists()
                && d.berth()
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            {
                return d;
            }
            if let Some(Ok(Some(st))) = d.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(d.dir.join("dockerd.log")).unwrap_or_default();
                panic!("dockerd exited {st}: {log}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("dockerd did not come up in {}", d.dir.display());
    }

    /// `berth -H <this dockerd>`.
    pub fn berth(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("berth"));
        c.env("BERTH_HOST", &self.host)
            .env("BERTH_CONFIG", self.dir.join("cfg"))
            .env_remove("BERTH_API_VERSION");
        c
    }

    /// Load the shared busybox OCI archive (converted with skopeo: dockerd 20.10 only loads
    /// docker-archive tarballs).
    pub fn load_busybox(&self, oci: &Path) {
        let tar = self.dir.join("busybox.docker.tar");
        if !tar.exists() {
            let st = Command::new("skopeo")
                .args(["copy", "-q"])
                .arg(format!("oci-archive:{}", oci.display()))
                .arg(format!("docker-archive:{}:busybox:latest", tar.display()))
                .status()
                .unwrap();
            assert!(st.success(), "skopeo copy failed");
        }
        let o = self
            .berth()
            .arg("load")
            .arg("-i")
            .arg(&tar)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "Loaded image: busybox:latest\n"
        );
    }
}

fn unmount_under(dir: &Path) {
    let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut mounts: Vec<String> = mi
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = c.wait();
        }
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// stdout of a successful command (panics with stderr otherwise).
pub fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{:?} failed ({}): {}",
        c,
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}
