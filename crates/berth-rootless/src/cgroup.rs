//! Cgroups for a rootless daemon. On a cgroup v1 host an ordinary user can create no cgroup,
//! and libcontainer (libcgroups' v1 manager) insists on putting each container into one. So
//! the daemon's mount namespace gets a private tmpfs over `/sys/fs/cgroup` with a directory
//! per v1 controller ([`private_tree`]), and the shim prepares each container's directories
//! there ([`prepare`]): `cgroup.procs` and the device rule files lead to `/dev/null` (writes
//! are accepted, reads list no process, so a cleanup kills nothing), cpuset files carry the
//! host's CPUs. Containers stay in the user's own cgroup; resource limits are refused at create
//! ([`limits_refused`]), never silently dropped; stats have no cgroup to read.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::RootlessError;

/// The cgroup mount point.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Marks [`CGROUP_ROOT`] as the private tree (for the shim, in the daemon's mount namespace).
const MARKER: &str = ".berth-rootless";
/// The files libcontainer writes into a container's v1 cgroup when no limit is set: they
/// lead to `/dev/null`.
const SINKS: &[&str] = &["cgroup.procs", "tasks", "devices.allow", "devices.deny"];
/// cpuset files libcgroups copies down from the parent when empty: given the host's values.
const CPUSET: &[(&str, &str)] = &[
    ("cpuset.cpus", "/sys/devices/system/cpu/online"),
    ("cpuset.mems", "/sys/devices/system/node/online"),
];

/// Whether `/sys/fs/cgroup` is the unified (v2) hierarchy.
pub fn cgroup2_root() -> bool {
    nix::sys::statfs::statfs(CGROUP_ROOT)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// Whether this process sees the private tree (the rootless daemon and its shims).
pub fn private_tree_active(root: &Path) -> bool {
    root.join(MARKER).exists()
}

/// The v1 controllers' mount points below `/sys/fs/cgroup` in `mountinfo`'s text (pure).
pub fn v1_mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            let name = point.strip_prefix("/sys/fs/cgroup/")?;
            (fstype == "cgroup" && !name.is_empty() && !name.contains('/')).then(|| name.into())
        })
        .collect()
}

/// Mount the private tree over `/sys/fs/cgroup` in the daemon's mount namespace: a tmpfs with
/// an empty directory per v1 controller (libcgroups finds controllers in `mountinfo`, which
/// still lists the covered mounts, and resolves their paths into this tree). The host's
/// cgroups are untouched.
pub fn private_tree() -> Result<(), RootlessError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RootlessError::io("read /proc/self/mountinfo", e))?;
    let names = v1_mount_points(&info);
    mount(
        Some("berth-rootless-cgroup"),
        CGROUP_ROOT,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(|e| RootlessError::io("mount a private tmpfs on /sys/fs/cgroup", e.into()))?;
    // libcontainer bind-mounts the daemon's own cgroup of each controller into containers.
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| RootlessError::io("read /proc/self/cgroup", e))?;
    let root = Path::new(CGROUP_ROOT);
    let io = |what: &Path, e| RootlessError::io(format!("create {}", what.display()), e);
    for n in &names {
        let dir = root.join(n);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        populate(&dir, n).map_err(|e| io(&dir, e))?;
    }
    for rel in own_cgroups(&own, &names) {
        let parts: Vec<&str> = rel.split('/').collect();
        let ctrl = parts[0];
        let path = parts[1..].join("/");
        prepare_one(&root.join(ctrl), ctrl, &path).map_err(|e| io(&root.join(&rel), e))?;
    }
    std::fs::write(root.join(MARKER), b"").map_err(|e| io(&root.join(MARKER), e))?;
    tracing::info!(
        "rootless on a cgroup v1 host: containers run in the user's cgroup \
         (no resource limits, no cgroup stats)"
    );
    Ok(())
}

/// `<controller dir>/<own cgroup path>` for each of `names` (the tree's controller
/// directories) from `/proc/self/cgroup`'s text (pure).
pub fn own_cgroups(proc_self_cgroup: &str, names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let ctrls = ctrls.strip_prefix("name=").unwrap_or(ctrls);
        let mut want: Vec<&str> = ctrls.split(',').collect();
        want.sort();
        for n in names {
            let mut have: Vec<&str> = n.split(',').collect();
            have.sort();
            let path = path.trim_matches('/');
            if !ctrls.is_empty() && have == want && !path.is_empty() {
                out.push(format!("{n}/{path}"));
            }
        }
    }
    out
}

/// The files of one directory of controller `ctrl` in the private tree.
fn populate(dir: &Path, ctrl: &str) -> std::io::Result<()> {
    for f in SINKS {
        match std::os::unix::fs::symlink("/dev/null", dir.join(f)) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    if ctrl.split(',').any(|c| c == "cpuset") {
        for (f, src) in CPUSET {
            let v = std::fs::read_to_string(src).unwrap_or_else(|_| "0".into());
            std::fs::write(dir.join(f), v.trim())?;
        }
    }
    Ok(())
}

/// The directory of cgroup `cg_path` (`/berth/<id>`) under each controller of `root`.
fn dirs_of(root: &Path, cg_path: &str) -> Vec<PathBuf> {
    let rel: PathBuf = cg_path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .collect();
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path().join(&rel))
        .collect()
}

/// Make cgroup `cg_path` in the private tree at `root` ready for libcontainer (the shim calls
/// this before creating the container when [`private_tree_active`]).
pub fn prepare(root: &Path, cg_path: &str) -> std::io::Result<()> {
    for e in std::fs::read_dir(root)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            prepare_one(&e.path(), &e.file_name().to_string_lossy(), cg_path)?;
        }
    }
    Ok(())
}

/// [`prepare`] for one controller directory `dir` (named `ctrl`).
fn prepare_one(dir: &Path, ctrl: &str, cg_path: &str) -> std::io::Result<()> {
    let mut d = dir.to_path_buf();
    for p in cg_path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
    {
        d.push(p);
        std::fs::create_dir_all(&d)?;
        populate(&d, ctrl)?;
    }
    Ok(())
}

/// Remove what [`prepare`] made for `cg_path` (its deepest directory; the shared parents
/// stay), before libcontainer's own cleanup looks for it. Missing pieces are fine.
pub fn release(root: &Path, cg_path: &str) {
    for d in dirs_of(root, cg_path) {
        if d == root || d.parent() == Some(root) {
            continue;
        }
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_dir(&d);
    }
}

/// Why resource limits are refused in this daemon (None: they are not). Rootless limits need
/// cgroup v2 delegation, which berth does not set up yet; on a v1 host it cannot exist.
pub fn limits_refused() -> Option<String> {
    if !matches!(crate::stage(), crate::Stage::Inner { .. }) {
        return None;
    }
    Some(if cgroup2_root() {
        "resource limits need cgroup v2 delegation, which rootless berth does not set up yet; \
         run the rootful daemon for limits"
            .into()
    } else {
        "resource limits need cgroup v2 delegation; this host has cgroup v1 controllers, where \
         a rootless daemon cannot create cgroups (run the rootful daemon for limits)"
            .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_controllers_from_mountinfo() {
        let info = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 / /mnt/cg rw - cgroup cgroup rw,pids
";
        assert_eq!(v1_mount_points(info), ["cpu,cpuacct", "memory", "systemd"]);
        let names = v1_mount_points(info);
        let own = "9:name=systemd:/user.slice\n4:memory:/process_api/39\n2:cpuacct,cpu:/x\n3:pids:/\n0::/\n";
        assert_eq!(
            own_cgroups(own, &names),
            [
                "systemd/user.slice",
                "memory/process_api/39",
                "cpu,cpuacct/x"
            ]
        );
    }

    #[test]
    fn prepare_then_release_leaves_the_shared_parents() {
        let t = tempfile::tempdir().unwrap();
        for c in ["cpuset", "pids"] {
            std::fs::create_dir(t.path().join(c)).unwrap();
            populate(&t.path().join(c), c).unwrap();
        }
        prepare(t.path(), "/berth/abc").unwrap();
        prepare(t.path(), "/berth/abc").unwrap(); // again: nothing to redo
        let procs = t.path().join("pids/berth/abc/cgroup.procs");
        assert_eq!(std::fs::read_link(&procs).unwrap(), Path::new("/dev/null"));
        // A write is accepted and nothing is listed back: a cleanup kills nothing.
        std::fs::write(&procs, b"1234").unwrap();
        assert_eq!(std::fs::read_to_string(&procs).unwrap(), "");
        let cpus = std::fs::read_to_string(t.path().join("cpuset/berth/abc/cpuset.cpus")).unwrap();
        assert!(!cpus.trim().is_empty());
        assert!(!t.path().join("pids/berth/abc/cpuset.cpus").exists());
        release(t.path(), "/berth/abc");
        assert!(!t.path().join("pids/berth/abc").exists());
        assert!(!t.path().join("cpuset/berth/abc").exists());
        assert!(t.path().join("cpuset/berth/cpuset.cpus").exists());
        // A path cannot climb out of the tree.
        prepare(t.path(), "/../../x").unwrap();
        assert!(t.path().join("pids/x").exists());
    }
}
