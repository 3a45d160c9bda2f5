//! Looking at the host for the orphan plan: state dirs, rw layers, netns files, runtime
//! state, live shims, berth cgroups and their processes, mounts under the daemon's roots.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{ids_of, is_build_step, CgroupFacts, Facts, Roots};

/// Names of the entries of `dir` (none when it is missing).
fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The directory a shim serves, from its `/proc/<pid>/cmdline` (`<exe> shim <dir>`).
fn shim_dir_of(cmdline: &[u8]) -> Option<PathBuf> {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let i = args.iter().position(|a| *a == b"shim")?;
    let dir = args.get(i + 1).filter(|a| !a.is_empty())?;
    Some(PathBuf::from(String::from_utf8_lossy(dir).into_owned()))
}

/// The id whose shim serves `dir`: `<root>/containers/<id>` or `<root>/build-tmp/<id>-shim`.
fn shim_owner(roots: &Roots, dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_string_lossy().into_owned();
    let parent = dir.parent()?;
    if parent == roots.containers() {
        return Some(name);
    }
    let id = name.strip_suffix("-shim")?;
    (parent == roots.build_tmp() && is_build_step(id)).then(|| id.to_string())
}

/// The pid in `<dir>/shim.pid` if that process is still a shim serving `dir`.
fn live_shim(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join("shim.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (shim_dir_of(&cmdline)? == dir).then_some(pid)
}

/// Every live shim serving a directory of this daemon, by id, from `/proc`: also those whose
/// directory is gone (an older `rm` removed it under a live shim).
fn live_shims(roots: &Roots) -> BTreeMap<String, i32> {
    let mut out = BTreeMap::new();
    for name in names(Path::new("/proc")) {
        let Ok(pid) = name.parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if let Some(id) = shim_dir_of(&cmdline).and_then(|d| shim_owner(roots, &d)) {
            out.insert(id, pid);
        }
    }
    out
}

/// Pids listed in `cgroup.procs` of any of `dirs`.
fn cgroup_pids(dirs: &[PathBuf]) -> Vec<i32> {
    let mut pids: BTreeSet<i32> = BTreeSet::new();
    for d in dirs {
        if let Ok(t) = std::fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
    pids.into_iter().collect()
}

/// Mount points from `/proc/self/mountinfo` text (field 5, octal escapes undone).
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Which id a mount point under this daemon's areas belongs to: `Some(None)` for one in an
/// area of ours that names no id, `None` for one outside them (volumes, other daemons).
pub fn mount_owner(roots: &Roots, m: &Path) -> Option<Option<String>> {
    let first = |base: &Path| -> Option<Option<String>> {
        let rest = m.strip_prefix(base).ok()?;
        Some(
            rest.components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned()),
        )
    };
    if let Some(id) = first(&roots.rw()) {
        return Some(id);
    }
    if let Some(id) = first(&roots.containers()) {
        return Some(id);
    }
    if let Some(id) = first(&roots.netns()) {
        return Some(id);
    }
    if let Some(name) = first(&roots.build_tmp()) {
        return Some(name.map(|n| build_key(&n).unwrap_or(n)));
    }
    None
}

/// The build step a `<root>/build-tmp` entry belongs to: `build-<hex>-shim`, `-resolv.conf`,
/// `-hosts`, `-secret-<n>`, `-ssh-<n>` give `build-<hex>`; context dirs keep their own name.
fn build_key(name: &str) -> Option<String> {
    for suffix in ["-shim", "-resolv.conf", "-hosts"] {
        if let Some(id) = name.strip_suffix(suffix) {
            if is_build_step(id) {
                return Some(id.to_string());
            }
        }
    }
    for infix in ["-secret-", "-ssh-"] {
        if let Some((id, n)) = name.rsplit_once(infix) {
            if is_build_step(id) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                return Some(id.to_string());
            }
        }
    }
    name.starts_with("ctx-").then(|| name.to_string())
}

/// Look at the host: everything under this daemon's roots, and the cgroups under `berth/`
/// (plus those at `record_cgroups`, the cgroup paths of records with another parent) that
/// belong to ids found here. Blocking; endpoints and veths are added by the caller.
pub fn observe(roots: &Roots, record_cgroups: &BTreeMap<String, String>) -> Facts {
    let mut f = Facts {
        shims: live_shims(roots),
        ..Facts::default()
    };
    for id in names(&roots.containers()) {
        if roots.containers().join(&id).is_dir() {
            if roots.containers().join(&id).join("config.v2.json").exists() {
                f.record_files.insert(id.clone());
            }
            f.ctr_dirs.insert(id);
        }
    }
    f.rw_layers.extend(names(&roots.rw()));
    f.netns.extend(names(&roots.netns()));
    for r in roots.runtime_roots() {
        for id in names(&r) {
            f.runtime_state
                .entry(id.clone())
                .or_default()
                .push(r.join(id));
        }
    }
    for name in names(&roots.build_tmp()) {
        let Some(key) = build_key(&name) else {
            continue;
        };
        let path = roots.build_tmp().join(&name);
        if key.starts_with("ctx-") {
            f.builds_active = true;
        }
        f.build_files.entry(key).or_default().push(path);
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for m in mount_points(&mountinfo) {
        if let Some(owner) = mount_owner(roots, &m) {
            f.mounts.push((owner, m));
        }
    }
    // Cgroups: ids known from the facts above or a record, under berth/ or the record's path.
    let mut known = ids_of(&f);
    known.extend(record_cgroups.keys().cloned());
    let mut by_id: BTreeMap<String, String> = BTreeMap::new();
    let mut parents = vec![roots.cgroup_root.join("berth")];
    parents.extend(
        names(&roots.cgroup_root)
            .into_iter()
            .map(|c| roots.cgroup_root.join(c).join("berth")),
    );
    for p in parents {
        for id in names(&p) {
            if known.contains(&id) && p.join(&id).is_dir() {
                by_id.insert(id.clone(), format!("/berth/{id}"));
            }
        }
    }
    by_id.extend(record_cgroups.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (id, path) in by_id {
        let dirs = berth_runtime::cgroups::existing_dirs(&roots.cgroup_root, &path);
        if dirs.is_empty() {
            continue;
        }
        let pids = cgroup_pids(&dirs);
        f.cgroups.insert(id, CgroupFacts { path, dirs, pids });
    }
    f
}

/// [`observe`] for one container id only, looking at its own paths (cheap: for `rm`).
pub fn observe_one(roots: &Roots, id: &str, cg_path: &str) -> Facts {
    let mut f = Facts::default();
    let one = |s: &mut BTreeSet<String>, p: PathBuf| {
        if p.symlink_metadata().is_ok() {
            s.insert(id.to_string());
        }
    };
    one(&mut f.ctr_dirs, roots.containers().join(id));
    one(&mut f.rw_layers, roots.rw().join(id));
    one(&mut f.netns, roots.netns().join(id));
    if let Some(pid) = live_shim(&roots.containers().join(id)) {
        f.shims.insert(id.to_string(), pid);
    }
    for r in roots.runtime_roots() {
        if r.join(id).exists() {
            f.runtime_state
                .entry(id.to_string())
                .or_default()
                .push(r.join(id));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for m in mount_points(&mountinfo) {
        if let Some(Some(owner)) = mount_owner(roots, &m) {
            if owner == id {
                f.mounts.push((Some(owner), m));
            }
        }
    }
    let dirs = berth_runtime::cgroups::existing_dirs(&roots.cgroup_root, cg_path);
    if !dirs.is_empty() {
        let pids = cgroup_pids(&dirs);
        f.cgroups.insert(
            id.to_string(),
            CgroupFacts {
                path: cg_path.to_string(),
                dirs,
                pids,
            },
        );
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Roots {
        Roots {
            root: "/r".into(),
            exec_root: "/x".into(),
            cgroup_root: "/cg".into(),
        }
    }

    #[test]
    fn shims_are_found_by_the_directory_they_serve() {
        let r = roots();
        let of = |c: &[u8]| shim_dir_of(c).and_then(|d| shim_owner(&r, &d));
        assert_eq!(
            of(b"/proc/self/exe\0shim\0/r/containers/c1\0"),
            Some("c1".into())
        );
        assert_eq!(
            of(b"/usr/bin/berth\0shim\0/r/build-tmp/build-ab-shim\0"),
            Some("build-ab".into())
        );
        // Another daemon's shim, a build dir that is no step, no shim at all.
        assert_eq!(of(b"berth\0shim\0/other/containers/c1\0"), None);
        assert_eq!(of(b"berth\0shim\0/r/build-tmp/ctx-1-shim\0"), None);
        assert_eq!(of(b"sleep\0shim\0"), None);
        assert_eq!(of(b""), None);
    }

    #[test]
    fn a_build_steps_files_are_keyed_by_the_step() {
        for f in [
            "-shim",
            "-resolv.conf",
            "-hosts",
            "-secret-0",
            "-secret-12",
            "-ssh-0",
        ] {
            let name = format!("build-ab{f}");
            assert_eq!(build_key(&name), Some("build-ab".into()), "{name}");
        }
        assert_eq!(build_key("build-ab-secret-"), None);
        assert_eq!(build_key("build-ab-secret-x"), None);
        assert_eq!(build_key("ctx-1"), Some("ctx-1".into()));
    }

    #[test]
    fn mounts_are_attributed_to_ids_and_areas() {
        let r = roots();
        let own = |p: &str| mount_owner(&r, Path::new(p));
        assert_eq!(own("/r/containers-rw/c1/merged"), Some(Some("c1".into())));
        assert_eq!(own("/x/netns/c2"), Some(Some("c2".into())));
        assert_eq!(
            own("/r/build-tmp/build-ab-shim/x"),
            Some(Some("build-ab".into()))
        );
        assert_eq!(own("/r/containers-rw"), Some(None));
        assert_eq!(own("/r/volumes/v/_data"), None);
        assert_eq!(own("/elsewhere"), None);
        let mi = "36 35 98:0 / /r/containers-rw/a\\040b/merged rw - overlay overlay rw\n";
        assert_eq!(
            mount_points(mi),
            [PathBuf::from("/r/containers-rw/a b/merged")]
        );
    }

    #[test]
    fn observe_finds_state_dirs_layers_and_build_files() {
        let d = tempfile::tempdir().unwrap();
        let r = Roots {
            root: d.path().join("root"),
            exec_root: d.path().join("run"),
            cgroup_root: d.path().join("cg"),
        };
        for p in [
            "root/containers/c1",
            "root/containers-rw/c1/merged",
            "root/containers-rw/c2",
            "root/build-tmp/build-aa-shim",
            "root/build-tmp/runtime/build-aa",
            "root/build-tmp/downloads",
            "run/runtime/c1",
            "run/netns",
            "cg/pids/berth/c1",
            "cg/pids/berth/foreign",
        ] {
            std::fs::create_dir_all(d.path().join(p)).unwrap();
        }
        std::fs::write(d.path().join("run/netns/c2"), "").unwrap();
        std::fs::write(d.path().join("cg/pids/berth/c1/cgroup.procs"), "12\n13\n").unwrap();
        // A stale pid file naming a process that is no shim.
        std::fs::write(d.path().join("root/containers/c1/shim.pid"), "1").unwrap();
        let f = observe(&r, &BTreeMap::new());
        assert_eq!(f.ctr_dirs, BTreeSet::from(["c1".to_string()]));
        assert_eq!(f.rw_layers.len(), 2);
        assert_eq!(f.netns, BTreeSet::from(["c2".to_string()]));
        assert!(f.shims.is_empty());
        assert_eq!(f.cgroups.len(), 1, "only cgroups of ids found here");
        assert_eq!(f.cgroups["c1"].pids, [12, 13]);
        assert_eq!(f.runtime_state.len(), 2);
        assert_eq!(f.build_files.len(), 1);
        assert!(!f.builds_active);
    }
}
