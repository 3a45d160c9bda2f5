//! Container mounts: pure planning of `-v`, `--mount`, `--tmpfs`, image `VOLUME`s and
//! `--volumes-from` with Docker's parsing and errors ([`plan_mounts`]), then the apply step
//! that creates/acquires volumes and yields runtime `MountSpec`s plus inspect `Mounts`
//! ([`apply_mounts`]), and seeding new volumes from the image ([`seed_volumes`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use berth_runtime::MountSpec;
use serde::{Deserialize, Serialize};

use crate::containers::stored::{Mount, MountBindOptionsPropagationEnum, MountPoint, MountType};
use crate::error::{DaemonError, Result};
use crate::volumes::{CreateVolume, VolumeStore};

/// What is mounted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// A volume; `name` None = a new anonymous volume.
    Volume {
        name: Option<String>,
        nocopy: bool,
        labels: BTreeMap<String, String>,
        driver_opts: BTreeMap<String, String>,
        /// `--mount …,volume-subpath=x`: mount only this path inside the volume (relative,
        /// checked at start to exist with no symlink on the way: [`check_subpaths`]).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        subpath: String,
    },
    /// A host path; `create` = make it if missing (`-v`), else it must exist (`--mount`).
    Bind {
        source: String,
        create: bool,
        propagation: String,
    },
    Tmpfs {
        options: Vec<String>,
    },
}

/// One planned mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedMount {
    pub destination: String,
    pub kind: MountKind,
    pub read_only: bool,
    /// The mode string as given (`-v` third field), shown in inspect.
    pub mode: String,
}

/// `--volumes-from <spec>` resolved by the caller: the spec (`c1[:ro|rw]`) and the mounts of
/// that container.
#[derive(Clone, Debug, Default)]
pub struct VolumesFrom {
    pub spec: String,
    pub mounts: Vec<PlannedMount>,
}

fn invalid(m: String) -> DaemonError {
    DaemonError::Invalid(m)
}

/// Go's `filepath.IsLocal`: relative, not empty, and never above where it starts.
fn is_local(p: &str) -> bool {
    if p.is_empty() || p.starts_with('/') {
        return false;
    }
    let mut depth = 0i32;
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

/// At start: every volume subpath must exist inside its volume with no symlink on the way
/// (the runtime bind-mounts it by host path, and a symlink planted by another container
/// could point anywhere on the host). moby resolves it at start too.
pub fn check_subpaths(planned: &[PlannedMount], specs: &[MountSpec]) -> Result<()> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
    for p in planned {
        let MountKind::Volume { subpath, .. } = &p.kind else {
            continue;
        };
        if subpath.is_empty() {
            continue;
        }
        let Some(spec) = specs.iter().find(|s| s.destination == p.destination) else {
            continue;
        };
        let full = Path::new(&spec.source);
        let depth = Path::new(subpath).components().count();
        let Some(base) = full.ancestors().nth(depth) else {
            continue;
        };
        let err = |e: std::io::Error| {
            DaemonError::Invalid(format!(
                "cannot access path {}: {e}: the volume subpath must exist and contain no symlinks",
                full.display()
            ))
        };
        let dir = openat2(
            CWD,
            base,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::empty(),
        )
        .map_err(|e| err(e.into()))?;
        openat2(
            &dir,
            subpath.as_str(),
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        )
        .map_err(|e| err(e.into()))?;
    }
    Ok(())
}

pub(crate) fn clean_dest(d: &str) -> String {
    let comps: Vec<&str> = d
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", comps.join("/"))
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// Parse one `-v` spec.
pub fn parse_bind(spec: &str) -> Result<PlannedMount> {
    let bad = |why: &str| invalid(format!("invalid volume specification: '{spec}'{why}"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dest, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad("")),
    };
    if dest.is_empty() {
        return Err(bad(""));
    }
    if !dest.starts_with('/') {
        let t = if src.starts_with('/') {
            "bind"
        } else {
            "volume"
        };
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{t}\": \
             invalid mount path: '{dest}' mount path must be absolute"
        )));
    }
    if clean_dest(dest) == "/" {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"bind\": \
             invalid specification: destination can't be '/'"
        )));
    }
    let (mut ro, mut nocopy, mut prop) = (false, false, String::new());
    let mut seen_rw = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" | "rw" if seen_rw => return Err(invalid(format!("invalid mode: {mode}"))),
            "ro" => (ro, seen_rw) = (true, true),
            "rw" => seen_rw = true,
            "z" | "Z" | "consistent" | "cached" | "delegated" => {}
            "nocopy" if !src.starts_with('/') => nocopy = true,
            p if PROPAGATIONS.contains(&p) && src.starts_with('/') => prop = p.to_string(),
            _ => return Err(invalid(format!("invalid mode: {mode}"))),
        }
    }
    let kind = if src.starts_with('/') {
        MountKind::Bind {
            source: src.to_string(),
            create: true,
            propagation: if prop.is_empty() {
                "rprivate".into()
            } else {
                prop
            },
        }
    } else {
        MountKind::Volume {
            name: Some(src.to_string()).filter(|s| !s.is_empty()),
            nocopy,
            labels: BTreeMap::new(),
            driver_opts: BTreeMap::new(),
            subpath: String::new(),
        }
    };
    Ok(PlannedMount {
        destination: clean_dest(dest),
        kind,
        read_only: ro,
        mode: mode.to_string(),
    })
}

/// Convert one `--mount` (HostConfig.Mounts entry).
pub fn parse_mount(m: &Mount) -> Result<PlannedMount> {
    let typ = m
        .typ
        .ok_or_else(|| invalid("invalid mount config: mount type unknown".into()))?;
    let t = typ.to_string();
    let bad = |why: String| invalid(format!("invalid mount config for type \"{t}\": {why}"));
    let target = m.target.clone().unwrap_or_default();
    if target.is_empty() {
        return Err(bad("field Target must not be empty".into()));
    }
    if !target.starts_with('/') {
        return Err(bad(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    let source = m.source.clone().unwrap_or_default();
    let ro = m.read_only.unwrap_or(false);
    let kind = match typ {
        MountType::BIND => {
            if source.is_empty() {
                return Err(bad("field Source must not be empty".into()));
            }
            if m.volume_options.is_some() {
                return Err(bad("field VolumeOptions must not be specified".into()));
            }
            if m.tmpfs_options.is_some() {
                return Err(bad("field TmpfsOptions must not be specified".into()));
            }
            if !source.starts_with('/') {
                return Err(bad(format!(
                    "invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            let prop = m
                .bind_options
                .as_ref()
                .and_then(|b| b.propagation)
                .filter(|p| *p != MountBindOptionsPropagationEnum::EMPTY)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "rprivate".into());
            let create = m
                .bind_options
                .as_ref()
                .and_then(|b| b.create_mountpoint)
                .unwrap_or(false);
            MountKind::Bind {
                source,
                create,
                propagation: prop,
            }
        }
        MountType::VOLUME => {
            if m.bind_options.is_some() {
                return Err(bad("field BindOptions must not be specified".into()));
            }
            if m.tmpfs_options.is_some() {
                return Err(bad("field TmpfsOptions must not be specified".into()));
            }
            let vo = m.volume_options.clone().unwrap_or_default();
            let dc = vo.driver_config.unwrap_or_default();
            let subpath = vo.subpath.unwrap_or_default();
            if !subpath.is_empty() && !is_local(&subpath) {
                return Err(bad(
                    "subpath must be a relative path within the volume".into()
                ));
            }
            MountKind::Volume {
                name: Some(source).filter(|s| !s.is_empty()),
                nocopy: vo.no_copy.unwrap_or(false),
                labels: vo.labels.unwrap_or_default().into_iter().collect(),
                driver_opts: dc.options.unwrap_or_default().into_iter().collect(),
                subpath,
            }
        }
        MountType::TMPFS => {
            if !source.is_empty() {
                return Err(bad("field Source must not be specified".into()));
            }
            if m.bind_options.is_some() || m.volume_options.is_some() {
                return Err(bad("field BindOptions must not be specified".into()));
            }
            let mut options = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
            if let Some(t) = &m.tmpfs_options {
                if let Some(sz) = t.size_bytes.filter(|s| *s > 0) {
                    options.push(format!("size={sz}"));
                }
                if let Some(md) = t.mode.filter(|m| *m > 0) {
                    options.push(format!("mode={md:o}"));
                }
            }
            MountKind::Tmpfs { options }
        }
        other => {
            return Err(invalid(format!(
                "mount type {other} is not supported by berth"
            )))
        }
    };
    if clean_dest(&target) == "/" {
        return Err(bad("invalid specification: destination can't be '/'".into()));
    }
    Ok(PlannedMount {
        destination: clean_dest(&target),
        kind,
        read_only: ro,
        mode: String::new(),
    })
}

/// Plan every mount of a container, with Docker's precedence: image `VOLUME`s (unless a user
/// mount covers the path), then `--volumes-from`, then `-v`, `--mount` and `--tmpfs` (these
/// three must not repeat a destination: `Duplicate mount point: /x`).
pub fn plan_mounts(
    binds: &[String],
    mounts: &[Mount],
    tmpfs: &HashMap<String, String>,
    image_volumes: &[String],
    volumes_from: &[VolumesFrom],
) -> Result<Vec<PlannedMount>> {
    let mut user: Vec<PlannedMount> = Vec::new();
    let push = |p: PlannedMount, user: &mut Vec<PlannedMount>| {
        if user.iter().any(|u| u.destination == p.destination) {
            return Err(invalid(format!("Duplicate mount point: {}", p.destination)));
        }
        user.push(p);
        Ok(())
    };
    for b in binds {
        push(parse_bind(b)?, &mut user)?;
    }
    for m in mounts {
        push(parse_mount(m)?, &mut user)?;
    }
    let mut tmp: Vec<(&String, &String)> = tmpfs.iter().collect();
    tmp.sort();
    for (dest, opts) in tmp {
        if !dest.starts_with('/') {
            return Err(invalid(format!(
                "invalid mount config for type \"tmpfs\": invalid mount path: '{dest}' mount \
                 path must be absolute"
            )));
        }
        let mut options = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
        options.extend(
            opts.split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string),
        );
        let ro = options.iter().any(|o| o == "ro");
        options.retain(|o| o != "ro" && o != "rw");
        let p = PlannedMount {
            destination: clean_dest(dest),
            kind: MountKind::Tmpfs { options },
            read_only: ro,
            mode: opts.clone(),
        };
        push(p, &mut user)?;
    }
    let mut out: Vec<PlannedMount> = Vec::new();
    let set = |p: PlannedMount, out: &mut Vec<PlannedMount>| {
        out.retain(|o| o.destination != p.destination);
        out.push(p);
    };
    for v in image_volumes {
        set(
            PlannedMount {
                destination: clean_dest(v),
                kind: MountKind::Volume {
                    name: None,
                    nocopy: false,
                    labels: BTreeMap::new(),
                    driver_opts: BTreeMap::new(),
                    subpath: String::new(),
                },
                read_only: false,
                mode: String::new(),
            },
            &mut out,
        );
    }
    for vf in volumes_from {
        let (_, mode) = match vf.spec.rsplit_once(':') {
            Some((c, m)) if m == "ro" || m == "rw" => (c, m),
            Some((_, m)) => return Err(invalid(format!("invalid mode: {m}"))),
            None => (vf.spec.as_str(), ""),
        };
        for m in &vf.mounts {
            let mut m = m.clone();
            if mode == "ro" {
                m.read_only = true;
            } else if mode == "rw" {
                m.read_only = false;
            }
            set(m, &mut out);
        }
    }
    for u in user {
        set(u, &mut out);
    }
    Ok(out)
}

/// A mount after apply: the runtime's view, the inspect entry, and whether its volume is new
/// (to be seeded from the image at first start).
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedMount {
    /// The plan with anonymous volume names filled in (store this with the container).
    pub planned: PlannedMount,
    pub spec: MountSpec,
    pub point: MountPoint,
    pub new_volume: bool,
}

/// Create missing volumes (anonymous ones get their name here), acquire each for
/// `container_id`, create missing `-v` bind sources, and refuse missing `--mount` ones.
pub fn apply_mounts(
    store: &VolumeStore,
    container_id: &str,
    plan: &[PlannedMount],
) -> Result<Vec<AppliedMount>> {
    // Refuse before creating anything, so a failed create leaves no volumes or references.
    for p in plan {
        if let MountKind::Bind {
            source,
            create: false,
            ..
        } = &p.kind
        {
            if !Path::new(source).exists() {
                return Err(invalid(format!(
                    "invalid mount config for type \"bind\": bind source path does not \
                     exist: {source}"
                )));
            }
        }
    }
    let res = apply_inner(store, container_id, plan);
    if res.is_err() {
        store.release(container_id);
    }
    res
}

fn apply_inner(
    store: &VolumeStore,
    container_id: &str,
    plan: &[PlannedMount],
) -> Result<Vec<AppliedMount>> {
    let mut out = Vec::new();
    for p in plan {
        let mut planned = p.clone();
        let rw = if p.read_only { "ro" } else { "rw" };
        let (spec, point, new_volume) = match &mut planned.kind {
            MountKind::Volume {
                name,
                labels,
                driver_opts,
                subpath,
                ..
            } => {
                let (rec, created) = store.create(CreateVolume {
                    name: name.clone(),
                    driver: None,
                    labels: labels.clone(),
                    options: driver_opts.clone(),
                })?;
                *name = Some(rec.name.clone());
                let mut src = store.acquire(&rec.name, container_id)?;
                if !subpath.is_empty() {
                    src = src.join(&*subpath);
                }
                let source = src.to_string_lossy().into_owned();
                (
                    MountSpec {
                        destination: p.destination.clone(),
                        kind: "bind".into(),
                        source: source.clone(),
                        options: vec!["rbind".into(), rw.into()],
                    },
                    MountPoint {
                        typ: Some("volume".into()),
                        name: Some(rec.name.clone()),
                        source: Some(source),
                        destination: Some(p.destination.clone()),
                        driver: Some(rec.driver.clone()),
                        mode: Some(p.mode.clone()),
                        rw: Some(!p.read_only),
                        propagation: Some(String::new()),
                    },
                    created,
                )
            }
            MountKind::Bind {
                source,
                create,
                propagation,
            } => {
                let sp = Path::new(source.as_str());
                if !sp.exists() {
                    if *create {
                        std::fs::create_dir_all(sp).map_err(|e| {
                            DaemonError::io(format!("create bind source {source}"), e)
                        })?;
                    } else {
                        return Err(invalid(format!(
                            "invalid mount config for type \"bind\": bind source path does not \
                             exist: {source}"
                        )));
                    }
                }
                (
                    MountSpec {
                        destination: p.destination.clone(),
                        kind: "bind".into(),
                        source: source.clone(),
                        options: vec!["rbind".into(), rw.into(), propagation.clone()],
                    },
                    MountPoint {
                        typ: Some("bind".into()),
                        name: None,
                        source: Some(source.clone()),
                        destination: Some(p.destination.clone()),
                        driver: None,
                        mode: Some(p.mode.clone()),
                        rw: Some(!p.read_only),
                        propagation: Some(propagation.clone()),
                    },
                    false,
                )
            }
            MountKind::Tmpfs { options } => {
                let mut o = options.clone();
                o.push(rw.into());
                (
                    MountSpec {
                        destination: p.destination.clone(),
                        kind: "tmpfs".into(),
                        source: "tmpfs".into(),
                        options: o,
                    },
                    MountPoint {
                        typ: Some("tmpfs".into()),
                        source: Some(String::new()),
                        destination: Some(p.destination.clone()),
                        mode: Some(p.mode.clone()),
                        rw: Some(!p.read_only),
                        propagation: Some(String::new()),
                        ..Default::default()
                    },
                    false,
                )
            }
        };
        out.push(AppliedMount {
            planned,
            spec,
            point,
            new_volume,
        });
    }
    Ok(out)
}

/// At a container's first start: copy the image content at each volume's destination into
/// the volume if it is still empty (as Docker: new or never written), preserving owners, modes, times and xattrs (Docker's
/// copy-up), unless `nocopy`. `rootfs` is the container's merged rootfs.
pub fn seed_volumes(store: &VolumeStore, rootfs: &Path, mounts: &[AppliedMount]) -> Result<()> {
    for m in mounts {
        let MountKind::Volume {
            name: Some(name),
            nocopy,
            ..
        } = &m.planned.kind
        else {
            continue;
        };
        if *nocopy {
            continue;
        }
        let data: PathBuf = store.mountpoint(name);
        let empty = std::fs::read_dir(&data)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            continue;
        }
        let dest = format!("{}/.", m.planned.destination);
        let mut buf = berth_rootfs::archive::spool_file()
            .map_err(|e| DaemonError::io(format!("seed volume {name}"), e))?;
        match berth_rootfs::archive::archive(rootfs, &[], &dest, &mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == crate::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        }
        let label = format!("seed volume {name}");
        std::io::Seek::rewind(&mut buf).map_err(|e| DaemonError::io(label.clone(), e))?;
        berth_rootfs::apply_layer(&data, &label, buf)?;
        tracing::info!(volume = %name, destination = %m.planned.destination, "volume seeded");
    }
    Ok(())
}

#[cfg(test)]
#[path = "mounts_tests.rs"]
mod tests;
