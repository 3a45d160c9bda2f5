//! Orphan discovery shared by start-up reconciliation and `system check`: what exists on the
//! host for containers and build steps (shims, cgroups and their processes, mounts, netns
//! files, endpoints, veths, rw layers, runtime and state dirs), observed into [`Facts`], and
//! [`plan`], a pure function from container records and facts to the [`Action`]s that undo
//! every half-done step. Observing lives in `observe.rs`, applying the actions in
//! `containers/reconcile.rs`.

mod observe;

pub use observe::{mount_owner, mount_points, observe, observe_one};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where a daemon keeps things: its root, its exec root and the cgroup mount.
#[derive(Debug, Clone)]
pub struct Roots {
    pub root: PathBuf,
    pub exec_root: PathBuf,
    pub cgroup_root: PathBuf,
}

impl Roots {
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn rw(&self) -> PathBuf {
        self.root.join("containers-rw")
    }
    pub fn build_tmp(&self) -> PathBuf {
        self.root.join("build-tmp")
    }
    pub fn netns(&self) -> PathBuf {
        self.exec_root.join("netns")
    }
    /// Runtime (libcontainer) state roots: containers', then build steps'.
    pub fn runtime_roots(&self) -> [PathBuf; 2] {
        [
            self.exec_root.join("runtime"),
            self.build_tmp().join("runtime"),
        ]
    }
}

/// A container's cgroup as found: its directories in every hierarchy and the processes in them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupFacts {
    pub path: String,
    pub dirs: Vec<PathBuf>,
    pub pids: Vec<i32>,
}

/// What exists on the host for the ids of one daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `<root>/containers/<id>` directories.
    pub ctr_dirs: BTreeSet<String>,
    /// Those of them holding a `config.v2.json` (a record, readable or not).
    pub record_files: BTreeSet<String>,
    /// `<root>/containers-rw/<id>` directories.
    pub rw_layers: BTreeSet<String>,
    /// `<exec-root>/netns/<id>` files.
    pub netns: BTreeSet<String>,
    /// Runtime state dirs (`<exec-root>/runtime/<id>`, `<root>/build-tmp/runtime/<id>`).
    pub runtime_state: BTreeMap<String, Vec<PathBuf>>,
    /// Live shim processes by id (from `shim.pid`, checked against `/proc`).
    pub shims: BTreeMap<String, i32>,
    /// Cgroups by id.
    pub cgroups: BTreeMap<String, CgroupFacts>,
    /// Mount points under the root or exec root, with the id they belong to.
    pub mounts: Vec<(Option<String>, PathBuf)>,
    /// Ids with endpoints in the network state.
    pub endpoints: BTreeSet<String>,
    /// Host veths on this daemon's bridges that no endpoint owns: (veth, bridge).
    pub stray_veths: Vec<(String, String)>,
    /// `<root>/build-tmp` entries by build step id (context dirs under their own name).
    pub build_files: BTreeMap<String, Vec<PathBuf>>,
    /// A build is running (an unpacked context exists): build steps are not orphans then.
    pub builds_active: bool,
}

/// What the plan needs of a container record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    pub id: String,
    pub status: crate::containers::Status,
    /// An operation (start, stop, remove) holds the container now: leave it alone.
    pub busy: bool,
}

impl RecordView {
    fn live(&self) -> bool {
        self.status.is_running()
    }
}

/// When the plan is made: at daemon start nothing runs but what the recovery reconnected;
/// a check runs beside live operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Startup,
    Check,
}

/// One repair step. Variants are listed in the order they are applied: processes die before
/// their mounts and cgroups go, state dirs go last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    KillProcesses {
        id: String,
        cgroup: String,
        pids: Vec<i32>,
    },
    KillShim {
        id: String,
        pid: i32,
    },
    ReleaseEndpoints {
        id: String,
    },
    RemoveNetns {
        id: String,
        path: PathBuf,
    },
    DeleteVeth {
        name: String,
        bridge: String,
    },
    Unmount {
        id: Option<String>,
        path: PathBuf,
    },
    RemoveCgroup {
        id: String,
        dirs: Vec<PathBuf>,
    },
    RemoveRuntimeState {
        id: String,
        dir: PathBuf,
    },
    RemoveBuildFile {
        id: String,
        path: PathBuf,
    },
    RemoveRwLayer {
        id: String,
        dir: PathBuf,
    },
    /// A record that can never start again (its rw layer is gone) or whose removal was cut
    /// short: finish removing the container.
    RemoveContainer {
        id: String,
        why: String,
    },
    RemoveStateDir {
        id: String,
        dir: PathBuf,
    },
    /// A record file the daemon could not read: never deleted, only reported.
    UnreadableRecord {
        id: String,
        path: PathBuf,
    },
}

impl Action {
    fn rank(&self) -> u8 {
        match self {
            Action::KillProcesses { .. } => 0,
            Action::KillShim { .. } => 1,
            Action::ReleaseEndpoints { .. } => 2,
            Action::RemoveNetns { .. } => 3,
            Action::DeleteVeth { .. } => 4,
            Action::Unmount { .. } => 5,
            Action::RemoveCgroup { .. } => 6,
            Action::RemoveRuntimeState { .. } => 7,
            Action::RemoveBuildFile { .. } => 8,
            Action::RemoveRwLayer { .. } => 9,
            Action::RemoveContainer { .. } => 10,
            Action::RemoveStateDir { .. } => 11,
            Action::UnreadableRecord { .. } => 12,
        }
    }

    /// The container or build step the action belongs to (a veth names none).
    pub fn id(&self) -> Option<&str> {
        match self {
            Action::KillProcesses { id, .. }
            | Action::KillShim { id, .. }
            | Action::ReleaseEndpoints { id }
            | Action::RemoveNetns { id, .. }
            | Action::RemoveCgroup { id, .. }
            | Action::RemoveRuntimeState { id, .. }
            | Action::RemoveBuildFile { id, .. }
            | Action::RemoveRwLayer { id, .. }
            | Action::RemoveContainer { id, .. }
            | Action::RemoveStateDir { id, .. }
            | Action::UnreadableRecord { id, .. } => Some(id),
            Action::Unmount { id, .. } => id.as_deref(),
            Action::DeleteVeth { .. } => None,
        }
    }

    /// The finding this action repairs: (kind, what, where).
    pub fn finding(&self) -> (&'static str, String, String) {
        let p = |p: &Path| p.display().to_string();
        match self {
            Action::KillProcesses { cgroup, pids, .. } => (
                "process",
                pids.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                format!("cgroup {cgroup}"),
            ),
            Action::KillShim { id, pid } => {
                ("shim", format!("pid {pid}"), format!("container {id}"))
            }
            Action::ReleaseEndpoints { id } => {
                ("endpoint", id.clone(), "network state".to_string())
            }
            Action::RemoveNetns { id, path } => ("netns", id.clone(), p(path)),
            Action::DeleteVeth { name, bridge } => {
                ("veth", name.clone(), format!("bridge {bridge}"))
            }
            Action::Unmount { id, path } => (
                "mount",
                p(path),
                id.as_deref()
                    .map(|i| format!("container {i}"))
                    .unwrap_or_else(|| "no owner".into()),
            ),
            Action::RemoveCgroup { id, dirs } => (
                "cgroup",
                id.clone(),
                dirs.iter().map(|d| p(d)).collect::<Vec<_>>().join(","),
            ),
            Action::RemoveRuntimeState { id, dir } => ("runtime-state", id.clone(), p(dir)),
            Action::RemoveBuildFile { id, path } => ("build-step", id.clone(), p(path)),
            Action::RemoveRwLayer { id, dir } => ("rw-layer", id.clone(), p(dir)),
            Action::RemoveContainer { id, why } => ("record", id.clone(), why.clone()),
            Action::RemoveStateDir { id, dir } => ("state-dir", id.clone(), p(dir)),
            Action::UnreadableRecord { id, path } => ("unreadable-record", id.clone(), p(path)),
        }
    }
}

/// Build step ids (`build-<hex>`) are not container records.
pub fn is_build_step(id: &str) -> bool {
    id.starts_with("build-")
}

/// Every id some fact mentions.
fn ids_of(f: &Facts) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    ids.extend(f.ctr_dirs.iter().cloned());
    ids.extend(f.rw_layers.iter().cloned());
    ids.extend(f.netns.iter().cloned());
    ids.extend(f.runtime_state.keys().cloned());
    ids.extend(f.shims.keys().cloned());
    ids.extend(f.cgroups.keys().cloned());
    ids.extend(f.endpoints.iter().cloned());
    // Context dirs are no id: they go with the unowned leftovers.
    ids.extend(f.build_files.keys().filter(|k| is_build_step(k)).cloned());
    ids.extend(f.mounts.iter().filter_map(|(i, _)| i.clone()));
    ids
}

/// The repairs that make every record startable or removable and leave nothing of ids no
/// record owns. Pure: records and facts in, actions out, in the order to apply them.
pub fn plan(roots: &Roots, records: &[RecordView], f: &Facts, mode: Mode) -> Vec<Action> {
    let recs: BTreeMap<&str, &RecordView> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut out = Vec::new();
    let mut ids = ids_of(f);
    ids.extend(records.iter().map(|r| r.id.clone()));
    for id in ids {
        let rec = recs.get(id.as_str()).copied();
        if rec.is_some_and(|r| r.busy || r.live()) {
            // Live ones were reconnected (or finished) by the recovery; busy ones are in
            // the middle of an operation that owns their state.
            continue;
        }
        if rec.is_none() && mode == Mode::Check && f.builds_active && is_build_step(&id) {
            continue;
        }
        if rec.is_some() && mode == Mode::Check && !f.record_files.contains(&id) {
            // Listed but not yet on disk: a create in progress (its rw layer comes first).
            continue;
        }
        // `docker cp`/export/diff mount a stopped container's rw layer and leave it mounted:
        // not an orphan while the daemon runs (the start-up pass unmounts it).
        let keep_rootfs = mode == Mode::Check && rec.is_some();
        out.extend(undo_all(roots, &id, f, keep_rootfs));
        match rec {
            None => {
                if f.rw_layers.contains(&id) {
                    out.push(Action::RemoveRwLayer {
                        id: id.clone(),
                        dir: roots.rw().join(&id),
                    });
                }
                if f.record_files.contains(&id) {
                    out.push(Action::UnreadableRecord {
                        id: id.clone(),
                        path: roots.containers().join(&id).join("config.v2.json"),
                    });
                } else if f.ctr_dirs.contains(&id) {
                    out.push(Action::RemoveStateDir {
                        id: id.clone(),
                        dir: roots.containers().join(&id),
                    });
                }
            }
            Some(r) if r.status == crate::containers::Status::Removing => {
                out.push(Action::RemoveContainer {
                    id: id.clone(),
                    why: "its removal was interrupted".into(),
                })
            }
            Some(_) if !f.rw_layers.contains(&id) => out.push(Action::RemoveContainer {
                id: id.clone(),
                why: "its rw layer is gone, it can never start".into(),
            }),
            Some(_) => {}
        }
    }
    if !(mode == Mode::Check && f.builds_active) {
        for (name, bridge) in &f.stray_veths {
            out.push(Action::DeleteVeth {
                name: name.clone(),
                bridge: bridge.clone(),
            });
        }
        for (id, path) in &f.mounts {
            if id.is_none() {
                out.push(Action::Unmount {
                    id: None,
                    path: path.clone(),
                });
            }
        }
        for (key, paths) in &f.build_files {
            if !is_build_step(key) {
                out.extend(paths.iter().map(|p| Action::RemoveBuildFile {
                    id: key.clone(),
                    path: p.clone(),
                }));
            }
        }
    }
    // Deeper mounts first within the unmounts; otherwise apply order.
    out.sort_by(|a, b| {
        a.rank().cmp(&b.rank()).then_with(|| match (a, b) {
            (Action::Unmount { path: x, .. }, Action::Unmount { path: y, .. }) => {
                y.components().count().cmp(&x.components().count())
            }
            _ => std::cmp::Ordering::Equal,
        })
    });
    out
}

/// Everything that may exist for a container that does not run: processes, shim, network,
/// mounts (but its rootfs with `keep_rootfs`), cgroups, runtime state and build files.
fn undo_all(roots: &Roots, id: &str, f: &Facts, keep_rootfs: bool) -> Vec<Action> {
    let mut out = Vec::new();
    let id_s = id.to_string();
    if let Some(cg) = f.cgroups.get(id) {
        if !cg.pids.is_empty() {
            out.push(Action::KillProcesses {
                id: id_s.clone(),
                cgroup: cg.path.clone(),
                pids: cg.pids.clone(),
            });
        }
        if !cg.dirs.is_empty() {
            out.push(Action::RemoveCgroup {
                id: id_s.clone(),
                dirs: cg.dirs.clone(),
            });
        }
    }
    if let Some(&pid) = f.shims.get(id) {
        out.push(Action::KillShim {
            id: id_s.clone(),
            pid,
        });
    }
    if f.endpoints.contains(id) {
        out.push(Action::ReleaseEndpoints { id: id_s.clone() });
    }
    if f.netns.contains(id) {
        out.push(Action::RemoveNetns {
            id: id_s.clone(),
            path: roots.netns().join(id),
        });
    }
    for (owner, path) in &f.mounts {
        let rootfs = *path == roots.rw().join(id).join("merged");
        if owner.as_deref() == Some(id) && !is_netns_mount(path, id) && !(keep_rootfs && rootfs) {
            out.push(Action::Unmount {
                id: Some(id_s.clone()),
                path: path.clone(),
            });
        }
    }
    for dir in f.runtime_state.get(id).into_iter().flatten() {
        out.push(Action::RemoveRuntimeState {
            id: id_s.clone(),
            dir: dir.clone(),
        });
    }
    for path in f.build_files.get(id).into_iter().flatten() {
        out.push(Action::RemoveBuildFile {
            id: id_s.clone(),
            path: path.clone(),
        });
    }
    out
}

/// The netns bind mount itself is undone by [`Action::RemoveNetns`].
fn is_netns_mount(path: &Path, id: &str) -> bool {
    path.file_name().is_some_and(|n| n == id)
        && path
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "netns")
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

    fn rec(id: &str, status: &str) -> RecordView {
        RecordView {
            id: id.into(),
            status: serde_json::from_str(&format!("\"{status}\"")).unwrap(),
            busy: false,
        }
    }

    /// What a `run -d` killed between shim create and start leaves: everything.
    fn half_started(id: &str) -> Facts {
        let mut f = Facts::default();
        f.ctr_dirs.insert(id.into());
        f.rw_layers.insert(id.into());
        f.netns.insert(id.into());
        f.endpoints.insert(id.into());
        f.shims.insert(id.into(), 41);
        f.runtime_state
            .insert(id.into(), vec![PathBuf::from(format!("/x/runtime/{id}"))]);
        f.cgroups.insert(
            id.into(),
            CgroupFacts {
                path: format!("/berth/{id}"),
                dirs: vec![PathBuf::from(format!("/cg/pids/berth/{id}"))],
                pids: vec![42, 43],
            },
        );
        f.mounts.push((
            Some(id.into()),
            PathBuf::from(format!("/r/containers-rw/{id}/merged")),
        ));
        f.mounts
            .push((Some(id.into()), PathBuf::from(format!("/x/netns/{id}"))));
        f
    }

    fn kinds(a: &[Action]) -> Vec<&'static str> {
        a.iter().map(|a| a.finding().0).collect()
    }

    #[test]
    fn a_created_container_with_leftovers_is_undone_in_order_and_kept() {
        let f = half_started("c1");
        let a = plan(&roots(), &[rec("c1", "created")], &f, Mode::Startup);
        assert_eq!(
            kinds(&a),
            [
                "process",
                "shim",
                "endpoint",
                "netns",
                "mount",
                "cgroup",
                "runtime-state"
            ]
        );
        // The netns bind mount goes with RemoveNetns, not as a second unmount.
        assert!(a.contains(&Action::Unmount {
            id: Some("c1".into()),
            path: "/r/containers-rw/c1/merged".into()
        }));
        assert!(a.contains(&Action::RemoveNetns {
            id: "c1".into(),
            path: "/x/netns/c1".into()
        }));
    }

    #[test]
    fn a_check_leaves_the_rootfs_mount_of_a_stopped_container() {
        let mut f = Facts::default();
        f.rw_layers.insert("c1".into());
        f.record_files.insert("c1".into());
        f.mounts
            .push((Some("c1".into()), "/r/containers-rw/c1/merged".into()));
        assert_eq!(plan(&roots(), &[rec("c1", "exited")], &f, Mode::Check), []);
        assert_eq!(
            kinds(&plan(&roots(), &[rec("c1", "exited")], &f, Mode::Startup)),
            ["mount"]
        );
    }

    #[test]
    fn a_check_leaves_a_container_being_created_alone() {
        // In the daemon's list, no record file yet, no rw layer yet.
        let mut f = Facts::default();
        f.ctr_dirs.insert("new".into());
        assert_eq!(
            plan(&roots(), &[rec("new", "created")], &f, Mode::Check),
            []
        );
        f.record_files.insert("new".into());
        assert_eq!(
            kinds(&plan(&roots(), &[rec("new", "created")], &f, Mode::Check)),
            ["record"]
        );
    }

    #[test]
    fn running_and_busy_records_are_left_alone() {
        let f = half_started("c1");
        for status in ["running", "paused", "restarting"] {
            assert_eq!(plan(&roots(), &[rec("c1", status)], &f, Mode::Check), []);
        }
        let mut busy = rec("c1", "created");
        busy.busy = true;
        assert_eq!(plan(&roots(), &[busy], &f, Mode::Check), []);
    }

    #[test]
    fn state_without_a_record_is_removed_whole() {
        let f = half_started("gone");
        let a = plan(&roots(), &[], &f, Mode::Startup);
        let k = kinds(&a);
        assert_eq!(k[k.len() - 2..], ["rw-layer", "state-dir"]);
        assert!(a.contains(&Action::RemoveStateDir {
            id: "gone".into(),
            dir: "/r/containers/gone".into()
        }));
    }

    #[test]
    fn an_unreadable_record_is_reported_never_deleted() {
        let mut f = half_started("bad");
        f.record_files.insert("bad".into());
        let a = plan(&roots(), &[], &f, Mode::Startup);
        assert_eq!(kinds(&a).last(), Some(&"unreadable-record"));
        assert!(!a.iter().any(|a| matches!(a, Action::RemoveStateDir { .. })));
    }

    #[test]
    fn records_that_cannot_start_or_were_being_removed_are_removed() {
        let mut f = Facts::default();
        f.ctr_dirs.insert("a".into());
        f.ctr_dirs.insert("b".into());
        f.rw_layers.insert("b".into());
        let a = plan(
            &roots(),
            &[
                rec("a", "created"),
                rec("b", "removing"),
                rec("c", "exited"),
            ],
            &f,
            Mode::Startup,
        );
        let ids: Vec<String> = a
            .iter()
            .filter_map(|a| match a {
                Action::RemoveContainer { id, .. } => Some(id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn build_steps_are_orphans_unless_a_build_runs_during_a_check() {
        let id = "build-0123456789abcdef01234567";
        let mut f = Facts::default();
        f.rw_layers.insert(id.into());
        f.build_files.insert(
            id.into(),
            vec![PathBuf::from(format!("/r/build-tmp/{id}-shim"))],
        );
        f.shims.insert(id.into(), 7);
        f.stray_veths.push(("vb01".into(), "br0".into()));
        let a = plan(&roots(), &[], &f, Mode::Startup);
        assert_eq!(kinds(&a), ["shim", "veth", "build-step", "rw-layer"]);
        assert_eq!(plan(&roots(), &[], &f, Mode::Check), a);
        f.builds_active = true;
        f.build_files
            .insert("ctx-1".into(), vec![PathBuf::from("/r/build-tmp/ctx-1")]);
        assert_eq!(plan(&roots(), &[], &f, Mode::Check), []);
        // At start no build runs: the context dir goes too.
        assert_eq!(
            kinds(&plan(&roots(), &[], &f, Mode::Startup)),
            ["shim", "veth", "build-step", "build-step", "rw-layer"]
        );
    }

    #[test]
    fn unowned_mounts_go_deepest_first() {
        let mut f = Facts::default();
        f.mounts.push((None, "/r/build-tmp".into()));
        f.mounts.push((None, "/r/build-tmp/a/b".into()));
        let a = plan(&roots(), &[], &f, Mode::Startup);
        assert_eq!(
            a,
            [
                Action::Unmount {
                    id: None,
                    path: "/r/build-tmp/a/b".into()
                },
                Action::Unmount {
                    id: None,
                    path: "/r/build-tmp".into()
                }
            ]
        );
    }
}
