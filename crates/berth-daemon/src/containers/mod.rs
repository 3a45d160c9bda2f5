//! Container records and their in-memory registry: ids, names, crash-safe persistence
//! (`<root>/containers/<id>/config.v2.json`, tmp+fsync+rename), lookups and lifecycle
//! notifications. Lifecycle lives in `run.rs`, stdio in `io.rs`, API glue in `service.rs`.

pub(crate) mod archive;
mod create;
mod health;
pub mod init_layer;
mod io;
mod list_filter;
mod names;
mod ns_join;
mod plan;
mod platform;
mod reconcile;
mod render;
#[cfg(test)]
mod render_snapshots;
mod run;
mod security;
mod service;
mod shm;
mod start_plan;
mod stats;
mod status;
mod stop;
pub mod stored;
#[cfg(test)]
mod swagger_shapes;
mod task;
mod update;
mod update_plan;
pub mod validate;
pub(crate) mod validate_net;
mod workdir;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::DaemonError;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

pub use names::generate_name;
pub(crate) use names::parse_link;
pub use status::Status;
use stored::{ContainerConfig, HostConfig, NetworkingConfig};

/// Persisted state of one container (Docker's `State`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CtrState {
    pub status: Status,
    pub pid: i32,
    pub shim_pid: i32,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
}

/// Everything berth keeps about a container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    /// The image as the user named it.
    pub image: String,
    /// `sha256:…`
    pub image_id: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    #[serde(default)]
    pub networking: Option<NetworkingConfig>,
    pub state: CtrState,
    #[serde(default)]
    pub restart_count: i64,
    /// Stopped by the user (unless-stopped must not bring it back).
    #[serde(default)]
    pub manually_stopped: bool,
    /// Endpoints the container had when it last started (berth-network's type).
    #[serde(default)]
    pub endpoints: Vec<berth_network::Endpoint>,
    /// Ports actually published (host port filled in).
    #[serde(default)]
    pub ports: Vec<berth_network::PortMapping>,
    /// Netns we created for it, if any.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    #[serde(default)]
    pub health: Option<serde_json::Value>,
    /// Mounts planned and applied at create (volumes, binds, tmpfs), see `volumes::mounts`.
    #[serde(default)]
    pub planned_mounts: Vec<crate::volumes::mounts::PlannedMount>,
    #[serde(default)]
    pub mount_specs: Vec<berth_runtime::MountSpec>,
    #[serde(default)]
    pub mount_points: Vec<stored::MountPoint>,
    /// Volumes were seeded from the image at the first start.
    #[serde(default)]
    pub seeded: bool,
    /// Volumes an `update` added, to seed from the image at the next start (those only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seed_volumes: Vec<String>,
    /// The config before a managed recreate, while one runs (see `update.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updating: Option<update::Shape>,
}

impl Record {
    pub fn running(&self) -> bool {
        self.state.status.is_running()
    }
}

/// What waiters watch: counters bumped on every exit and on removal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Life {
    pub exits: u64,
    pub exit_code: i64,
    pub starts: u64,
    pub removed: bool,
}

/// An attach waiting for the next start: gets the shim, attaches, then says ready.
pub(crate) type AttachWaiter = oneshot::Sender<(berth_runtime::Shim, oneshot::Sender<()>)>;

/// One container in memory.
pub struct Ctr {
    pub(crate) rec: Mutex<Record>,
    pub(crate) life: watch::Sender<Life>,
    pub(crate) attach_waiters: Mutex<Vec<AttachWaiter>>,
    /// Serialises start/stop/remove of this container.
    pub(crate) op: tokio::sync::Mutex<()>,
    /// Held for a whole `update` (which takes `op` for each step): one update at a time.
    pub(crate) update: tokio::sync::Mutex<()>,
}

impl Ctr {
    fn new(rec: Record) -> Arc<Ctr> {
        Arc::new(Ctr {
            rec: Mutex::new(rec),
            life: watch::channel(Life::default()).0,
            attach_waiters: Mutex::new(Vec::new()),
            op: tokio::sync::Mutex::new(()),
            update: tokio::sync::Mutex::new(()),
        })
    }

    pub fn snapshot(&self) -> Record {
        lock(&self.rec).clone()
    }

    pub fn id(&self) -> String {
        lock(&self.rec).id.clone()
    }
}

/// One exec instance.
#[derive(Debug, Clone, Default)]
pub struct ExecRec {
    pub id: String,
    pub container_id: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
    /// `DetachKeys` given at create (raw text; empty: the default).
    pub detach_keys: String,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i32,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// All containers of the engine.
pub struct Containers {
    pub(crate) dir: PathBuf,
    pub(crate) map: Mutex<HashMap<String, Arc<Ctr>>>,
    pub(crate) execs: Mutex<HashMap<String, Arc<Mutex<ExecRec>>>>,
}

impl Containers {
    /// Load every record under `<root>/containers` (state is reconciled by `recover`). A
    /// record that cannot be read or parsed is skipped with a warning naming its path (a
    /// directory without one, left by a crash during create, is skipped quietly).
    pub fn open(root: &Path) -> Containers {
        let dir = root.join("containers");
        let _ = berth_store::fsmode::private_dir(&dir);
        let mut map = HashMap::new();
        let entries = fs_err::read_dir(&dir)
            .inspect_err(|e| tracing::warn!(error = %e, "no container records loaded"));
        for e in entries.into_iter().flatten().flatten() {
            let p = e.path().join("config.v2.json");
            match fs_err::read(&p).map(|b| serde_json::from_slice::<Record>(&b)) {
                Ok(Ok(r)) => {
                    map.insert(r.id.clone(), Ctr::new(r));
                }
                Ok(Err(err)) => {
                    tracing::warn!(path = %p.display(), error = %err, "skipping unreadable container record")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(error = %e, "skipping unreadable container record"),
            }
        }
        Containers {
            dir,
            map: Mutex::new(map),
            execs: Mutex::new(HashMap::new()),
        }
    }

    pub fn ctr_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Where a `shareable` container's host-side /dev/shm is mounted (see `shm.rs`).
    pub fn shm_dir(&self, id: &str) -> PathBuf {
        self.ctr_dir(id).join("shm")
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.ctr_dir(id).join(format!("{id}-json.log"))
    }

    /// Find by full id, unique id prefix, or name (`/name` or `name`).
    pub fn get(&self, key: &str) -> Result<Arc<Ctr>, DaemonError> {
        let asked = key;
        let key = key.trim_start_matches('/');
        let m = lock(&self.map);
        if let Some(c) = m.get(key) {
            return Ok(c.clone());
        }
        if let Some(c) = m.values().find(|c| lock(&c.rec).name == key) {
            return Ok(c.clone());
        }
        if !key.is_empty() {
            let hits: Vec<&Arc<Ctr>> = m
                .iter()
                .filter(|(id, _)| id.starts_with(key))
                .map(|(_, c)| c)
                .collect();
            if hits.len() == 1 {
                return Ok(hits[0].clone());
            }
            if hits.len() > 1 {
                return Err(DaemonError::Invalid(format!(
                    "multiple IDs found with provided prefix: {key}"
                )));
            }
        }
        Err(DaemonError::NoSuchContainer(asked.to_string()))
    }

    pub fn all(&self) -> Vec<Arc<Ctr>> {
        lock(&self.map).values().cloned().collect()
    }

    /// The container whose name is `name`, if any.
    pub fn by_name(&self, name: &str) -> Option<String> {
        lock(&self.map)
            .values()
            .map(|c| lock(&c.rec))
            .find(|r| r.name == name)
            .map(|r| r.id.clone())
    }

    /// Write the record crash-safely; concurrent saves of one record each use their own temp
    /// file ([`crate::atomic_file`]), so the last rename wins whole. Durable on return; the
    /// fsyncs do not stall the async worker calling it ([`crate::off_worker`]).
    pub fn persist(&self, rec: &Record) -> std::io::Result<()> {
        self.persist_with(rec, true)
    }

    /// [`Containers::persist`]; without `durable` the fsyncs are skipped (the rename still
    /// replaces the record whole, for readers and after a daemon crash).
    fn persist_with(&self, rec: &Record, durable: bool) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        let path = self.ctr_dir(&rec.id).join("config.v2.json");
        let opts = berth_rootfs::atomic::Options {
            durable,
            ..Default::default()
        };
        crate::off_worker::off_worker(|| {
            berth_rootfs::atomic::write_atomic_with(&path, &bytes, opts)
        })
    }

    /// Persist, logging (not failing) on error: the in-memory state stays authoritative.
    pub fn save(&self, c: &Ctr) {
        self.save_with(c, true)
    }

    /// [`Containers::save`], durable or not (see [`Containers::persist_with`]).
    pub fn save_with(&self, c: &Ctr, durable: bool) {
        let r = c.snapshot();
        if let Err(e) = self.persist_with(&r, durable) {
            tracing::error!(container_id = %r.id, error = %e, "cannot persist container record");
        }
    }

    /// Containers using image `image_id` (`sha256:…`).
    pub fn using_image(&self, image_id: &str) -> Option<String> {
        lock(&self.map)
            .values()
            .map(|c| lock(&c.rec))
            .find(|r| r.image_id == image_id)
            .map(|r| r.id.clone())
    }
}

/// 64 random hex characters.
pub fn new_id() -> String {
    let mut b = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        return berth_oci::Digest::of(seed.as_bytes()).hex().to_string();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Go's zero time, as Docker prints unset timestamps.
pub(crate) const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[cfg(test)]
mod open_tests {
    use std::sync::{Arc, Mutex};

    use super::Containers;

    /// A `tracing` writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            super::lock(&self.0).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A record the daemon cannot read is reported with its path, not dropped silently.
    #[test]
    fn an_unreadable_record_is_reported_with_its_path() {
        let root = tempfile::tempdir().unwrap();
        let rec = root.path().join("containers/c1/config.v2.json");
        std::fs::create_dir_all(&rec).unwrap(); // a directory: reading it fails (EISDIR)
        std::fs::create_dir_all(root.path().join("containers/c2")).unwrap(); // no record
        let logs = Logs::default();
        let sub = tracing_subscriber::fmt()
            .with_writer({
                let l = logs.clone();
                move || l.clone()
            })
            .with_ansi(false)
            .finish();
        let cs = tracing::subscriber::with_default(sub, || Containers::open(root.path()));
        assert!(super::lock(&cs.map).is_empty());
        let text = String::from_utf8(super::lock(&logs.0).clone()).unwrap();
        assert!(text.contains(&rec.display().to_string()), "{text}");
        assert!(!text.contains("c2"), "{text}");
    }
}
