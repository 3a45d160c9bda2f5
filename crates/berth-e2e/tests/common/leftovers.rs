//! What a container or build step can leave on the host, looked up by id: cgroup dirs, live
//! processes, directory entries; and a process the test starts inside a cgroup of its own,
//! killed and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// Entry names of `dir` (none when it is missing).
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Cgroup dirs `berth/<id>` in any hierarchy (v1 controllers or v2).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    names(root)
        .into_iter()
        .map(|c| root.join(c).join("berth").join(id))
        .chain(std::iter::once(root.join("berth").join(id)))
        .filter(|p| p.is_dir())
        .collect()
}

/// A process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Ids of build steps with traces under `root` (rw layers, runtime state).
pub fn build_step_ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = names(&root.join("containers-rw"))
        .into_iter()
        .chain(names(&root.join("build-tmp/runtime")))
        .filter(|n| n.starts_with("build-"))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// `sleep` in the pids cgroup `berth/<id>`, as a crashed start leaves a workload behind.
pub struct StrayProcess {
    pub child: Child,
    pub cgroup: PathBuf,
}

impl StrayProcess {
    pub fn start(id: &str) -> StrayProcess {
        let cgroup = Path::new("/sys/fs/cgroup/pids/berth").join(id);
        std::fs::create_dir_all(&cgroup).unwrap();
        let child = Command::new("sleep").arg("1000").spawn().unwrap();
        std::fs::write(cgroup.join("cgroup.procs"), child.id().to_string()).unwrap();
        StrayProcess { child, cgroup }
    }

    /// Whether the process is gone (reaping it if it died), polled a bounded number of times.
    pub fn gone(&mut self) -> bool {
        for _ in 0..500 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }
}

impl Drop for StrayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir(&self.cgroup);
    }
}

/// On drop (also on panic), kill what build steps under `root` still run and remove their
/// cgroups: the daemon's cleanup removes containers, not build steps.
pub struct BuildStepsGuard(pub PathBuf);

impl Drop for BuildStepsGuard {
    fn drop(&mut self) {
        for id in build_step_ids(&self.0) {
            for _ in 0..100 {
                let dirs = cgroup_dirs(&id);
                let mut any = false;
                for d in &dirs {
                    let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        any = true;
                        // SAFETY: kill(2) on a process in a cgroup of this test's build step.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
                if !any {
                    for d in dirs {
                        let _ = std::fs::remove_dir(d);
                    }
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// Container ends of berth veth pairs (`vp` + 8 hex digits) in the host's namespace. berth
/// creates each pair with its container end already inside the container's namespace, so one
/// here is a pair a crash left half made — whichever daemon made it.
pub fn host_veth_peers() -> Vec<String> {
    names(Path::new("/sys/class/net"))
        .into_iter()
        .filter(|n| {
            n.len() == 10 && n.starts_with("vp") && n[2..].bytes().all(|b| b.is_ascii_hexdigit())
        })
        .collect()
}
