//! Container cgroup facts read straight from the filesystem: OOM kills (v1 and v2), leftover
//! directories, memory usage. The cgroup root is a parameter so tests can use a temp dir.

use std::path::{Path, PathBuf};

/// The usual cgroup mount point.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Number of OOM kills recorded for the cgroup at `cg_path` (e.g. "/berth/<id>"), from v1's
/// `memory/<path>/memory.oom_control` (oom_kill) or v2's `<path>/memory.events` (oom_kill).
pub fn oom_kills(root: &Path, cg_path: &str) -> u64 {
    let rel = cg_path.trim_start_matches('/');
    let v1 = root.join("memory").join(rel).join("memory.oom_control");
    let v2 = root.join(rel).join("memory.events");
    let unified = root.join("unified").join(rel).join("memory.events");
    [v1, v2, unified]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|t| counter(&t, "oom_kill"))
        .sum()
}

/// Memory usage in bytes (v1 `memory.usage_in_bytes` or v2 `memory.current`).
pub fn memory_usage(root: &Path, cg_path: &str) -> Option<u64> {
    let rel = cg_path.trim_start_matches('/');
    [
        root.join("memory").join(rel).join("memory.usage_in_bytes"),
        root.join(rel).join("memory.current"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
}

/// Whether containers' swap can be limited (Info `SwapLimit`), as dockerd decides it: v1 has
/// `memory/memory.memsw.limit_in_bytes` (kernel built with swap accounting, `swapaccount=1`);
/// v2 has `memory.swap.max` in this process's own cgroup (`proc_self_cgroup`'s `0::` line).
pub fn swap_limit(root: &Path, proc_self_cgroup: &str) -> bool {
    if root.join("cgroup.controllers").exists() {
        proc_self_cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .is_some_and(|g| {
                root.join(g.trim_start_matches('/'))
                    .join("memory.swap.max")
                    .exists()
            })
    } else {
        root.join("memory/memory.memsw.limit_in_bytes").exists()
    }
}

/// Every directory for `cg_path` that still exists under `root` (any v1 controller or v2).
pub fn existing_dirs(root: &Path, cg_path: &str) -> Vec<PathBuf> {
    let rel = cg_path.trim_start_matches('/');
    let mut out = Vec::new();
    if root.join(rel).is_dir() {
        out.push(root.join(rel));
    }
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            let p = e.path().join(rel);
            if p.is_dir() {
                out.push(p);
            }
        }
    }
    out
}

/// SIGKILL every process in the cgroup at `cg_path` in any hierarchy (thawing a frozen one)
/// until it is empty (bounded): for removing a container whatever its shim did.
pub fn kill_all(root: &Path, cg_path: &str) {
    crate::sys::kill_cgroup(root, cg_path)
}

/// Remove leftover (empty) cgroup dirs of `cg_path`, deepest first. Best effort.
pub fn remove_dirs(root: &Path, cg_path: &str) {
    for d in existing_dirs(root, cg_path) {
        match std::fs::remove_dir(&d) {
            // Someone else (the shim, the daemon) removed it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(dir = %d.display(), "could not remove cgroup dir: {e}"),
            Ok(()) => {}
        }
    }
}

/// The `cgroup.procs` file of the calling process's own cgroup, from `/proc/self/cgroup` text:
/// the first v1 hierarchy with a controller mounted under `root`, else the v2 (`0::`) cgroup.
pub fn own_procs_file(root: &Path, proc_self_cgroup: &str) -> Option<PathBuf> {
    let mut v2 = None;
    for line in proc_self_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if id == "0" && ctrls.is_empty() {
            v2 = Some(root.join(rel).join("cgroup.procs"));
            continue;
        }
        for c in ctrls
            .split(',')
            .filter(|c| !c.is_empty() && !c.starts_with("name="))
        {
            let p = root.join(c).join(rel).join("cgroup.procs");
            if p.exists() {
                return Some(p);
            }
        }
    }
    v2.filter(|p| p.exists())
}

/// Move the calling process into the cgroup it is already in (writes "0" to its own
/// `cgroup.procs`): a no-op migration. The first migration after an idle spell waits for an
/// RCU grace period (the kernel's cgroup threadgroup lock, 7–19 ms here); a container start
/// migrates its init right after spawning the shim, so doing this first lets that grace period
/// run while the shim starts instead of in front of it. Best effort.
pub fn prewarm_migration(root: &Path) {
    let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") else {
        return;
    };
    if let Some(p) = own_procs_file(root, &text) {
        if let Err(e) = std::fs::write(&p, "0") {
            tracing::debug!(path = %p.display(), "cgroup prewarm: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_limit_as_dockerd_detects_it() {
        let v1 = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(v1.path().join("memory")).unwrap();
        assert!(!swap_limit(v1.path(), ""));
        std::fs::write(v1.path().join("memory/memory.memsw.limit_in_bytes"), "").unwrap();
        assert!(swap_limit(v1.path(), ""));

        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "memory pids").unwrap();
        std::fs::create_dir_all(v2.path().join("sys/berth")).unwrap();
        let own = "0::/sys/berth\n";
        assert!(!swap_limit(v2.path(), own));
        std::fs::write(v2.path().join("sys/berth/memory.swap.max"), "max").unwrap();
        assert!(swap_limit(v2.path(), own));
        assert!(!swap_limit(v2.path(), "1:name=systemd:/\n"));
    }

    #[test]
    fn own_procs_file_prefers_a_v1_controller() {
        let d = tempfile::tempdir().unwrap();
        for c in ["pids/a", "memory/b/c", "x/y"] {
            std::fs::create_dir_all(d.path().join(c)).unwrap();
            std::fs::write(d.path().join(c).join("cgroup.procs"), "").unwrap();
        }
        let text = "9:name=systemd:/\n8:pids:/a\n4:memory:/b/c\n0::/x/y\n";
        assert_eq!(
            own_procs_file(d.path(), text),
            Some(d.path().join("pids/a/cgroup.procs"))
        );
        // Controllers not mounted under the root are skipped; v2 is the fallback.
        assert_eq!(
            own_procs_file(d.path(), "3:cpuset:/q\n0::/x/y\n"),
            Some(d.path().join("x/y/cgroup.procs"))
        );
        assert_eq!(own_procs_file(d.path(), "3:cpuset:/q\n"), None);
    }

    #[test]
    fn oom_counters_v1_and_v2() {
        let d = tempfile::tempdir().unwrap();
        let v1 = d.path().join("memory/berth/x");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(
            v1.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(oom_kills(d.path(), "/berth/x"), 2);
        let v2 = d.path().join("berth/y");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(
            v2.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(oom_kills(d.path(), "/berth/y"), 1);
        assert_eq!(oom_kills(d.path(), "/berth/z"), 0);
        assert_eq!(existing_dirs(d.path(), "/berth/x"), vec![v1]);
    }
}
