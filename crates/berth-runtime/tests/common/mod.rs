//! Shared fixture: a busybox rootfs from the shared OCI archive, a shim dir, and cleanup.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_runtime::{ContainerSpec, LogConfig, Shim, ShimConfig};

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub id: String,
    pub rootfs: PathBuf,
    pub dir: PathBuf,
    pub state_root: PathBuf,
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Unpack the busybox image's single layer into `dest`.
pub fn unpack_busybox(archive: &Path, dest: &Path) {
    let oci = dest.with_extension("oci");
    std::fs::create_dir_all(&oci).unwrap();
    std::fs::create_dir_all(dest).unwrap();
    sh(&format!(
        "tar -xf {} -C {}",
        archive.display(),
        oci.display()
    ));
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(oci.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| oci.join("blobs").join(d.replace(':', "/"));
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(blob(&mdigest)).unwrap()).unwrap();
    let m = if m["layers"].is_null() {
        let d = m["manifests"][0]["digest"].as_str().unwrap().to_string();
        serde_json::from_str(&std::fs::read_to_string(blob(&d)).unwrap()).unwrap()
    } else {
        m
    };
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    sh(&format!(
        "tar -xzf {} -C {}",
        blob(layer).display(),
        dest.display()
    ));
    std::fs::remove_dir_all(&oci).unwrap();
}

impl Fixture {
    pub fn new(test: &str) -> Option<Fixture> {
        if !berth_testutil::require_root(test) {
            return None;
        }
        let archive = berth_testutil::image(test, "busybox")?;
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = tmp.path().join("rootfs");
        unpack_busybox(&archive, &rootfs);
        let id = format!("brt-{}-{}", test.replace('_', "-"), std::process::id());
        Some(Fixture {
            dir: tmp.path().join("ctr"),
            state_root: tmp.path().join("runtime"),
            rootfs,
            id,
            tmp,
        })
    }

    pub fn spec(&self, args: &[&str]) -> ContainerSpec {
        ContainerSpec {
            id: self.id.clone(),
            rootfs: self.rootfs.clone(),
            args: args.iter().map(|s| s.to_string()).collect(),
            hostname: "box".into(),
            ..ContainerSpec::default()
        }
    }

    pub fn config(&self, spec: ContainerSpec) -> ShimConfig {
        ShimConfig {
            spec,
            state_root: self.state_root.clone(),
            log: LogConfig::with_defaults(self.dir.join("container.log")),
            start_on_request: false,
        }
    }

    pub async fn start(&self, spec: ContainerSpec) -> berth_runtime::Result<Shim> {
        let exe = Path::new(env!("CARGO_BIN_EXE_berth-runtime-shim"));
        Shim::spawn(exe, &self.dir, &self.config(spec))
            .await
            .map(|(s, _)| s)
    }

    pub fn logs(&self) -> Vec<berth_runtime::LogEntry> {
        berth_runtime::logs::read_logs(
            &self.dir.join("container.log"),
            &berth_runtime::ReadOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            },
        )
        .unwrap()
    }

    pub fn stdout(&self) -> String {
        self.logs()
            .into_iter()
            .filter(|e| e.stream == "stdout")
            .map(|e| e.log)
            .collect()
    }

    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        berth_runtime::cgroups::existing_dirs(
            Path::new("/sys/fs/cgroup"),
            &berth_runtime::spec::cgroup_path(None, &self.id),
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Kill whatever is left (shim by pid, container via its cgroup) and remove cgroups.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("shim.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                if Path::new(&format!("/proc/{pid}")).exists()
                    && self.dir.join("shim.sock").exists()
                {
                    // SAFETY: plain kill(2) on a pid this test's shim wrote.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        if self.dir.join("shim-config.json").exists() {
            let _ = berth_runtime::cleanup_orphan(&self.dir);
        }
    }
}
