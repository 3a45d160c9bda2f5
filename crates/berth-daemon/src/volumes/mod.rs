//! The local volume driver: `<root>/volumes/<name>/_data` plus crash-safe metadata, Docker's
//! name rules, anonymous volumes, and reference counting by container ID.
//!
//! # How the containers code must use volumes
//! The engine wraps steps 1, 2 and 4 as `Engine::create_mounts`, `Engine::seed_mounts` and
//! `Engine::release_mounts` (in `volumes/service.rs`); the containers code only calls those.
//!
//! 1. **create**: call [`crate::volumes::mounts::plan_mounts`] (pure: parses `-v`, `--mount`,
//!    `--tmpfs`, image `VOLUME`s, `--volumes-from`) and store the resulting plan with the
//!    container; then [`crate::volumes::mounts::apply_mounts`] with the container ID, which
//!    creates missing named/anonymous volumes and calls [`VolumeStore::acquire`] for each, so
//!    `docker volume rm` refuses them (409) from then on. Keep the returned
//!    [`crate::volumes::mounts::AppliedMount`]s: they give the runtime `MountSpec`s and the
//!    inspect `Mounts` entries.
//! 2. **first start**: call [`crate::volumes::mounts::seed_volumes`] with the container's merged
//!    rootfs, once (it copies the image content at each destination into volumes that are new
//!    and empty, unless `nocopy`), then pass the `MountSpec`s to the runtime.
//! 3. **daemon restart**: call [`VolumeStore::acquire`] again for every existing container's
//!    volumes (references are kept in memory, the containers' own records are the truth).
//! 4. **rm**: [`VolumeStore::release`] with the container ID; with `rm -v` / `run --rm` then
//!    [`VolumeStore::remove`] every *anonymous* volume the container used (named ones stay).
//!
//! Driver options `type`/`device`/`o` (e.g. `--opt type=tmpfs --opt device=tmpfs --opt
//! o=size=10m`, or `o=bind`) are mounted on `_data` when the first container acquires the volume
//! and unmounted when the last one releases it, as Docker's local driver does.

pub mod mounts;
pub(crate) mod service;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{DaemonError, Result};

/// Label Docker puts on anonymous volumes.
pub const ANON_LABEL: &str = "com.docker.volume.anonymous";
const META: &str = "volume.json";
const OPT_KEYS: &[&str] = &["type", "device", "o", "size"];

/// A volume's persisted metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// RFC 3339 creation time.
    pub created_at: String,
}

impl VolumeRecord {
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANON_LABEL)
    }
}

/// What the API asks for on create.
#[derive(Clone, Debug, Default)]
pub struct CreateVolume {
    /// None or empty: an anonymous volume with a random 64-hex name.
    pub name: Option<String>,
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn invalid_name(name: &str) -> DaemonError {
    DaemonError::Invalid(format!(
        "create {name}: {name:?} includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, \
         use absolute path"
    ))
}

/// A fresh 64-hex name (as Docker's stringid).
pub fn random_name() -> String {
    let mut buf = [0u8; 32];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    let mut s = String::with_capacity(64);
    for b in buf {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[derive(Default)]
struct State {
    vols: BTreeMap<String, VolumeRecord>,
    /// volume name → container IDs using it.
    refs: BTreeMap<String, BTreeSet<String>>,
    /// Volumes whose driver-option mount is active.
    mounted: BTreeSet<String>,
}

/// The volume store of one daemon root.
pub struct VolumeStore {
    dir: PathBuf,
    state: Mutex<State>,
    /// Host uid:gid of new volumes' `_data` (`--userns-remap`: the containers' root).
    owner: Option<(u32, u32)>,
}

fn io_err(what: &str, p: &Path, e: io::Error) -> DaemonError {
    DaemonError::io(format!("{what} {}", p.display()), e)
}

/// Write `bytes` to `path` crash-safely ([`crate::atomic_file`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::atomic_file::write_atomic(path, bytes).map_err(|e| io_err("write", path, e))
}

/// Disk usage of a tree in bytes (allocated blocks, each inode once; mounts not crossed).
pub fn du(p: &Path) -> u64 {
    berth_store::tree_size(p, berth_store::Measure::Allocated)
}

impl VolumeStore {
    /// New volumes' `_data` belong to `owner` (host uid, gid), who may also pass through the
    /// volumes directory to them (`--userns-remap`).
    pub fn owned_by(mut self, owner: (u32, u32)) -> Result<VolumeStore> {
        berth_store::fsmode::group_traverse(&self.dir, owner.1)
            .map_err(|e| io_err("open to the remapped root", &self.dir, e))?;
        self.owner = Some(owner);
        Ok(self)
    }

    /// Open (creating) the store at `dir` (`<root>/volumes`), dropping half-created volumes.
    pub fn open(dir: &Path) -> Result<VolumeStore> {
        berth_store::fsmode::private_dir(dir).map_err(|e| io_err("create", dir, e))?;
        let mut st = State::default();
        for e in fs::read_dir(dir)
            .map_err(|e| io_err("read", dir, e))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            if name.starts_with(".trash-") {
                let _ = fs::remove_dir_all(&p);
                continue;
            }
            if !valid_name(&name) || !p.is_dir() {
                continue;
            }
            match fs::read(p.join(META)).map(|b| serde_json::from_slice::<VolumeRecord>(&b)) {
                Ok(Ok(rec)) if rec.name == name => {
                    st.vols.insert(name, rec);
                }
                _ => {
                    // Crashed between mkdir and the metadata write: nothing was ever handed out.
                    let data = p.join("_data");
                    let empty = fs::read_dir(&data).map(|mut d| d.next().is_none());
                    if empty.unwrap_or(true) {
                        tracing::warn!(volume = %name, "removing half-created volume");
                        let _ = fs::remove_dir_all(&p);
                    } else {
                        tracing::warn!(volume = %name, "volume metadata lost; recreating it");
                        let rec = VolumeRecord {
                            name: name.clone(),
                            driver: "local".into(),
                            created_at: now_rfc3339(),
                            ..Default::default()
                        };
                        let bytes = serde_json::to_vec_pretty(&rec).unwrap_or_default();
                        write_atomic(&p.join(META), &bytes)?;
                        st.vols.insert(name, rec);
                    }
                }
            }
        }
        Ok(VolumeStore {
            dir: dir.to_path_buf(),
            state: Mutex::new(st),
            owner: None,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `<dir>/<name>/_data`: what containers mount (Docker's `Mountpoint`).
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Create a volume, or return the existing one of that name (Docker's create is
    /// idempotent). The bool says whether it was created now.
    pub fn create(&self, req: CreateVolume) -> Result<(VolumeRecord, bool)> {
        let driver = req.driver.clone().filter(|d| !d.is_empty());
        if let Some(d) = driver.as_deref().filter(|d| *d != "local") {
            return Err(DaemonError::NotFound(format!(
                "error looking up volume plugin {d}: plugin {d:?} not found"
            )));
        }
        let mut labels = req.labels;
        let name = match req.name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => {
                labels.entry(ANON_LABEL.into()).or_default();
                random_name()
            }
        };
        if !valid_name(&name) {
            return Err(invalid_name(&name));
        }
        for k in req.options.keys() {
            if !OPT_KEYS.contains(&k.as_str()) {
                return Err(DaemonError::Invalid(format!(
                    "create {name}: invalid option: {k:?}"
                )));
            }
        }
        if req.options.contains_key("device") && !req.options.contains_key("type") {
            return Err(DaemonError::Invalid(format!(
                "create {name}: missing required option: \"type\""
            )));
        }
        let mut st = self.lock();
        if let Some(v) = st.vols.get(&name) {
            return Ok((v.clone(), false));
        }
        let rec = VolumeRecord {
            name: name.clone(),
            driver: "local".into(),
            labels,
            options: req.options,
            created_at: now_rfc3339(),
        };
        let vdir = self.dir.join(&name);
        let data = vdir.join("_data");
        fs::create_dir_all(&data).map_err(|e| io_err("create", &data, e))?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&data, Some(uid), Some(gid))
                .map_err(|e| io_err("chown", &data, e))?;
        }
        let bytes = serde_json::to_vec_pretty(&rec).unwrap_or_default();
        if let Err(e) = write_atomic(&vdir.join(META), &bytes) {
            let _ = fs::remove_dir_all(&vdir);
            return Err(e);
        }
        tracing::info!(volume = %name, "volume created");
        st.vols.insert(name, rec.clone());
        Ok((rec, true))
    }

    pub fn get(&self, name: &str) -> Result<VolumeRecord> {
        self.lock()
            .vols
            .get(name)
            .cloned()
            .ok_or_else(|| no_such(name))
    }

    /// Every volume with the containers using it.
    pub fn list(&self) -> Vec<(VolumeRecord, Vec<String>)> {
        let st = self.lock();
        st.vols
            .values()
            .map(|v| (v.clone(), users(&st, &v.name)))
            .collect()
    }

    /// Container IDs using `name` (empty: unused).
    pub fn in_use(&self, name: &str) -> Vec<String> {
        users(&self.lock(), name)
    }

    /// Record that `container_id` uses `name`; mounts driver options on first use. Returns
    /// the host path to bind into the container.
    pub fn acquire(&self, name: &str, container_id: &str) -> Result<PathBuf> {
        let mut st = self.lock();
        let rec = st.vols.get(name).cloned().ok_or_else(|| no_such(name))?;
        let mp = self.mountpoint(name);
        if rec.options.contains_key("type") && !st.mounted.contains(name) {
            mount_options(&rec, &mp)?;
            st.mounted.insert(name.to_string());
        }
        st.refs
            .entry(name.to_string())
            .or_default()
            .insert(container_id.to_string());
        Ok(mp)
    }

    /// After a daemon restart: the stored container `container_id` uses `name` again, so the
    /// volume stays "in use" for it (references live in memory only). A driver-option volume
    /// still mounted from before (its container kept running) is known as mounted.
    pub fn restore(&self, name: &str, container_id: &str) {
        let mut st = self.lock();
        if !st.vols.contains_key(name) {
            tracing::warn!(volume = %name, container = %container_id, "container uses a missing volume");
            return;
        }
        if berth_store::is_mountpoint(&self.mountpoint(name)) {
            st.mounted.insert(name.to_string());
        }
        st.refs
            .entry(name.to_string())
            .or_default()
            .insert(container_id.to_string());
    }

    /// Drop every reference `container_id` holds; returns the volumes it used. Driver-option
    /// mounts of volumes nobody uses any more are unmounted.
    pub fn release(&self, container_id: &str) -> Vec<String> {
        let mut st = self.lock();
        let mut released = Vec::new();
        let mut idle = Vec::new();
        for (name, set) in st.refs.iter_mut() {
            if set.remove(container_id) {
                released.push(name.clone());
                if set.is_empty() {
                    idle.push(name.clone());
                }
            }
        }
        for name in idle {
            st.refs.remove(&name);
            if st.mounted.remove(&name) {
                let mp = self.mountpoint(&name);
                if let Err(e) = rustix::mount::unmount(&mp, rustix::mount::UnmountFlags::DETACH) {
                    tracing::warn!(volume = %name, error = %e, "cannot unmount volume");
                }
            }
        }
        released
    }

    /// Remove a volume. In use → conflict (also with `force`); `force` ignores a missing one.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        let mut st = self.lock();
        if !st.vols.contains_key(name) {
            return if force { Ok(()) } else { Err(no_such(name)) };
        }
        let u = users(&st, name);
        if !u.is_empty() {
            return Err(DaemonError::VolumeInUse {
                name: name.to_string(),
                users: u,
            });
        }
        self.remove_dir(name)?;
        st.vols.remove(name);
        tracing::info!(volume = %name, "volume removed");
        Ok(())
    }

    /// Rename out of the way (atomic disappearance), then delete.
    fn remove_dir(&self, name: &str) -> Result<()> {
        let vdir = self.dir.join(name);
        let trash = self
            .dir
            .join(format!(".trash-{name}-{}", &random_name()[..8]));
        fs::rename(&vdir, &trash).map_err(|e| io_err("remove", &vdir, e))?;
        if let Err(e) = fs::remove_dir_all(&trash) {
            tracing::warn!(path = %trash.display(), error = %e, "cannot delete removed volume");
        }
        Ok(())
    }

    /// Remove every unused volume `select` accepts; returns names and bytes freed.
    pub fn prune(&self, select: impl Fn(&VolumeRecord) -> bool) -> Result<(Vec<String>, u64)> {
        let mut st = self.lock();
        let victims: Vec<String> = st
            .vols
            .values()
            .filter(|v| users(&st, &v.name).is_empty() && select(v))
            .map(|v| v.name.clone())
            .collect();
        let mut freed = 0;
        for name in &victims {
            freed += du(&self.mountpoint(name));
            self.remove_dir(name)?;
            st.vols.remove(name);
        }
        Ok((victims, freed))
    }

    /// Bytes used by a volume's data.
    pub fn size(&self, name: &str) -> u64 {
        du(&self.mountpoint(name))
    }
}

fn users(st: &State, name: &str) -> Vec<String> {
    st.refs
        .get(name)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default()
}

fn no_such(name: &str) -> DaemonError {
    DaemonError::NoSuchVolume(name.to_string())
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Mount a volume's `type`/`device`/`o` options on its `_data` (Docker's local driver).
fn mount_options(rec: &VolumeRecord, target: &Path) -> Result<()> {
    use rustix::mount::{mount, mount_bind, MountFlags};
    let typ = rec.options.get("type").map(String::as_str).unwrap_or("");
    let device = rec.options.get("device").map(String::as_str).unwrap_or("");
    let o = rec.options.get("o").map(String::as_str).unwrap_or("");
    let parts: Vec<&str> = o.split(',').filter(|s| !s.is_empty()).collect();
    let res = if parts.iter().any(|p| *p == "bind" || *p == "rbind") {
        mount_bind(device, target)
    } else {
        let mut flags = MountFlags::empty();
        let mut data = Vec::new();
        for p in parts {
            match p {
                "ro" => flags |= MountFlags::RDONLY,
                "nosuid" => flags |= MountFlags::NOSUID,
                "nodev" => flags |= MountFlags::NODEV,
                "noexec" => flags |= MountFlags::NOEXEC,
                p => data.push(p),
            }
        }
        if let Some(sz) = rec.options.get("size") {
            data.push(sz.as_str());
        }
        let data = std::ffi::CString::new(data.join(",")).unwrap_or_default();
        mount(device, target, typ, flags, data.as_c_str())
    };
    res.map_err(|e| {
        DaemonError::Invalid(format!(
            "error while mounting volume '{}': failed to mount local volume: mount {device}:{}, \
             type {typ}, data {o:?}: {e}",
            rec.name,
            target.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: &str) -> CreateVolume {
        CreateVolume {
            name: Some(n.into()),
            ..Default::default()
        }
    }

    #[test]
    fn names_follow_docker() {
        assert!(valid_name("data"));
        assert!(valid_name("a1_b.c-d"));
        assert!(!valid_name("a"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("-ab"));
        assert!(!valid_name(".."));
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path()).unwrap();
        let e = s.create(named("a/b")).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Invalid);
        assert!(e.to_string().starts_with(
            "create a/b: \"a/b\" includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
        ));
    }

    #[test]
    fn crud_refs_and_persistence() {
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path()).unwrap();
        let (v, created) = s.create(named("data")).unwrap();
        assert!(created && v.driver == "local");
        assert!(!s.create(named("data")).unwrap().1, "create is idempotent");
        let (anon, _) = s.create(CreateVolume::default()).unwrap();
        assert_eq!(anon.name.len(), 64);
        assert!(anon.anonymous());
        fs::write(s.mountpoint("data").join("f"), b"hello").unwrap();
        assert_eq!(s.acquire("data", "c1").unwrap(), s.mountpoint("data"));
        s.acquire("data", "c2").unwrap();
        let e = s.remove("data", true).unwrap_err();
        assert_eq!(e.to_string(), "remove data: volume is in use - [c1, c2]");
        // A new service over the same directory (a daemon restart) knows the users once
        // they are restored from the container records.
        let again = VolumeStore::open(d.path()).unwrap();
        again.restore("data", "c1");
        again.restore("gone", "c1");
        let e = again.remove("data", true).unwrap_err();
        assert_eq!(e.to_string(), "remove data: volume is in use - [c1]");
        assert_eq!(e.kind(), crate::ErrorKind::Conflict);
        assert_eq!(s.release("c1"), vec!["data".to_string()]);
        assert_eq!(s.in_use("data"), vec!["c2".to_string()]);
        // Reopen: metadata survives, a half-created dir is dropped.
        fs::create_dir_all(d.path().join("broken/_data")).unwrap();
        drop(s);
        let s = VolumeStore::open(d.path()).unwrap();
        assert!(!d.path().join("broken").exists());
        assert_eq!(s.list().len(), 2);
        assert_eq!(s.get("data").unwrap(), v);
        // Prune only what the selector accepts.
        let (gone, _) = s.prune(|v| v.anonymous()).unwrap();
        assert_eq!(gone, vec![anon.name.clone()]);
        s.remove("data", false).unwrap();
        assert!(!d.path().join("data").exists());
        assert_eq!(
            s.remove("data", false).unwrap_err().kind(),
            crate::ErrorKind::NotFound
        );
        s.remove("data", true).unwrap();
    }

    #[test]
    fn options_are_validated() {
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path()).unwrap();
        let mut r = named("opt");
        r.options.insert("bogus".into(), "1".into());
        assert_eq!(s.create(r).unwrap_err().kind(), crate::ErrorKind::Invalid);
        let mut r = named("opt");
        r.driver = Some("nfsplugin".into());
        assert_eq!(s.create(r).unwrap_err().kind(), crate::ErrorKind::NotFound);
    }

    #[test]
    fn tmpfs_option_mounts_on_first_use() {
        if !berth_testutil::require_root("tmpfs_option_mounts_on_first_use") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path()).unwrap();
        let mut r = named("tmpvol");
        r.options.insert("type".into(), "tmpfs".into());
        r.options.insert("device".into(), "tmpfs".into());
        r.options.insert("o".into(), "size=1m".into());
        s.create(r).unwrap();
        struct Guard(PathBuf);
        impl Drop for Guard {
            fn drop(&mut self) {
                let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
            }
        }
        let mp = s.acquire("tmpvol", "c1").unwrap();
        let _g = Guard(mp.clone());
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            mounts.contains(&format!("{} ", mp.display())),
            "tmpfs mounted"
        );
        s.release("c1");
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&format!("{} ", mp.display())), "unmounted");
    }
}
