//! berth-store: content-addressed blob store, SQLite metadata, safe layer applier, overlay
//! snapshots, container read-write layers, archive load/save/import and GC.
//!
//! Layout under the root passed to [`Store::open`]:
//! ```text
//! blobs/sha256/<hex>            compressed blobs, manifests, configs (immutable)
//! ingest/<hex>.partial          in-progress downloads (kept for resume)
//! snapshots/<n>/fs              one unpacked layer diff per chain id, shared between images
//! staging/<hex>-<pid>-<n>/fs    a layer unpacked while it downloads, until its snapshot
//!                               takes it (renamed to snapshots/<n>); emptied on open
//! containers-rw/<id>/{upper,work,merged}
//! tmp/                          scratch, emptied on open
//! meta.db                       SQLite, WAL, synchronous=FULL
//! ```
//! Synchronous by design: the async daemon calls it through `spawn_blocking`.

/// The layer applier (moved to berth-rootfs with the other confined filesystem code).
pub use berth_rootfs::apply;
pub mod archive;
mod blobs;
mod compress;
pub mod driver;
mod durable;
mod error;
/// The modes of berth's state (moved to berth-rootfs; re-exported so its users stay put).
pub use berth_rootfs::fsmode;
mod gc;
mod images;
mod rw;
mod snapshots;
mod staging;
pub mod usage;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use berth_oci::Digest;
use rusqlite::Connection;

pub use archive::{import_rootfs, load_archive, load_archive_named, save_archive, ImportOptions};
pub use blobs::Ingest;
pub use driver::{Mounter, StorageDriver};
pub use error::{ErrorKind, Result, StoreError};
pub use gc::{DiskUsage, Garbage, GcReport, ImageUsage};
pub use images::{chain_ids, ImageRecord, RemoveReport};
pub use rw::{apply_overlay, diff_tar, is_mountpoint, OverlayPlan, RwLayer};
pub use snapshots::CommittedLayer;
pub use staging::Stager;
pub use usage::{tree_size, Measure};

use error::{DbCtx, IoCtx};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    layers TEXT NOT NULL,
    chain_ids TEXT NOT NULL,
    parent TEXT,
    added TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS repo_digests (
    repo TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    image_id TEXT NOT NULL,
    PRIMARY KEY (repo, manifest_digest)
);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_id TEXT UNIQUE NOT NULL,
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS compressed_layers (
    uncompressed TEXT PRIMARY KEY,
    compressed TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS unsynced_snapshots (
    id INTEGER PRIMARY KEY,
    boot_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rw_layers (
    container_id TEXT PRIMARY KEY,
    image_id TEXT
);
";

/// The image store. `Send + Sync`; every method is blocking.
pub struct Store {
    root: PathBuf,
    /// How overlays are mounted and opaque dirs marked (chosen by the daemon at start).
    driver: StorageDriver,
    /// Shared (not only owned) so the background sync of new snapshots writes through this
    /// one connection: a second writer would make other transactions fail with SQLITE_BUSY.
    db: std::sync::Arc<Mutex<Connection>>,
    /// Serialises snapshot creation so one chain id is unpacked once.
    unpack: Mutex<()>,
    /// GC takes it for writing; operations that create not-yet-referenced content take it for
    /// reading, so GC never deletes what they are about to reference.
    gc_lock: RwLock<()>,
    active_ingests: Mutex<HashSet<Digest>>,
    /// Layers being unpacked while they download ([`staging`]).
    staged: staging::StagedMap,
    /// Container ids → host ids (`--userns-remap`): layers are unpacked shifted and
    /// exported shifted back. Identity otherwise.
    ids: berth_rootfs::IdMapping,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

impl Store {
    /// Open (creating if needed) the store at `root` and repair what a crash may have left:
    /// clears `tmp/`, removes snapshots not marked complete (or not referenced by any image or
    /// container), snapshot dirs without a row, images whose blobs or snapshots are missing.
    pub fn open(root: &Path) -> Result<Store> {
        Store::open_with(root, StorageDriver::ROOTFUL)
    }

    /// [`Store::open`] with the storage driver the daemon chose ([`driver::choose`]).
    pub fn open_with(root: &Path, driver: StorageDriver) -> Result<Store> {
        Store::open_full(root, driver, berth_rootfs::IdMapping::identity())
    }

    /// [`Store::open`] with both the storage driver and the id mapping (`--userns-remap`:
    /// files are owned by `ids`' host ids, and the container's root (its group) may traverse
    /// to the rw layers' mount points).
    pub fn open_full(
        root: &Path,
        driver: StorageDriver,
        ids: berth_rootfs::IdMapping,
    ) -> Result<Store> {
        let root_s = root.to_string_lossy();
        if root_s.contains(',') || root_s.contains(':') {
            return Err(StoreError::Io {
                path: root.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "store root must not contain ',' or ':' (they break overlay mount options)",
                ),
            });
        }
        fsmode::private_dir(root).at(root)?;
        for d in [
            "blobs",
            "blobs/sha256",
            "ingest",
            "snapshots",
            "containers-rw",
            "staging",
            "tmp",
        ] {
            let p = root.join(d);
            fsmode::private_dir(&p).at(&p)?;
        }
        // Whole trees are unpacked into these: spread them over the filesystem (see
        // `spread_subdirs`: after an rmi, ext4 without a journal made a pull 6-15x slower).
        for d in ["snapshots", "staging", "containers-rw"] {
            let p = root.join(d);
            if let Err(e) = fsmode::spread_subdirs(&p) {
                tracing::warn!(path = %p.display(), error = %e, "cannot mark the directory to spread its subdirectories; unpacking may be slower after deletions");
            }
        }
        let root = fs::canonicalize(root).at(root)?;
        let tmp = root.join("tmp");
        fs::remove_dir_all(&tmp).at(&tmp)?;
        fsmode::private_dir(&tmp).at(&tmp)?;
        // Unpacks of a daemon that stopped mid-pull: the blobs (kept) are unpacked again.
        let staging = root.join("staging");
        for ent in fs::read_dir(&staging).at(&staging)? {
            let p = ent.at(&staging)?.path();
            fs::remove_dir_all(&p).at(&p)?;
        }
        let dbp = root.join("meta.db");
        let conn = Connection::open(&dbp).db("open meta.db")?;
        // Before WAL mode: SQLite gives the -wal and -shm files the database's mode.
        fs::set_permissions(&dbp, fs::Permissions::from_mode(fsmode::PRIVATE_FILE)).at(&dbp)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .db("set WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")
            .db("set synchronous")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .db("busy timeout")?;
        conn.execute_batch(SCHEMA).db("create schema")?;
        let store = Store {
            root,
            driver,
            db: std::sync::Arc::new(Mutex::new(conn)),
            unpack: Mutex::new(()),
            gc_lock: RwLock::new(()),
            active_ingests: Mutex::new(HashSet::new()),
            staged: Default::default(),
            ids,
        };
        if !store.ids.is_identity() {
            let gid = store.ids.root().1;
            for p in [store.root.clone(), store.root.join("containers-rw")] {
                fsmode::group_traverse(&p, gid).at(&p)?;
            }
        }
        store.settle_unsynced(&durable::boot_id())?;
        store.repair()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn driver(&self) -> StorageDriver {
        self.driver
    }

    /// Where this store's layers mark opaque directories.
    pub fn overlay_xattrs(&self) -> berth_rootfs::OverlayXattrs {
        self.driver.xattrs
    }

    /// The `--userns-remap` mapping files are stored under (identity without it).
    pub fn ids(&self) -> &berth_rootfs::IdMapping {
        &self.ids
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn repair(&self) -> Result<()> {
        // Images whose content is gone cannot be used or saved: drop them (tags too).
        let images = self.image_rows()?;
        let complete = self.complete_snapshots()?;
        for row in &images {
            let mut missing: Vec<Digest> = vec![row.manifest_digest.clone(), row.id.clone()];
            missing.extend(row.layers.iter().map(|l| l.digest.clone()));
            missing.retain(|d| !self.has_blob(d));
            let snaps_ok = row.chain_ids.iter().all(|c| complete.contains_key(c));
            if !missing.is_empty() || !snaps_ok {
                tracing::warn!(image = %row.id, ?missing, snaps_ok, "repair: removing image with missing content");
                self.delete_image_rows(&row.id)?;
            }
        }
        // Containers whose rw dir vanished.
        let rw = self.rw_layer_ids()?;
        for id in &rw {
            if !self.rw_dir(id).is_dir() {
                self.conn()
                    .execute("DELETE FROM rw_layers WHERE container_id=?1", [id])
                    .db("delete rw layer row")?;
            }
        }
        // rw dirs without a row (crash during create), unless something is mounted there.
        let rw: HashSet<String> = rw.into_iter().collect();
        let crw = self.root.join("containers-rw");
        for ent in fs::read_dir(&crw).at(&crw)? {
            let ent = ent.at(&crw)?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if !rw.contains(&name) && !rw::is_mountpoint(&ent.path().join("merged")) {
                tracing::warn!(container = %name, "repair: removing orphan rw layer dir");
                fs::remove_dir_all(ent.path()).at(ent.path())?;
            }
        }
        // Snapshots: incomplete, unreferenced, or dirs without a row.
        self.sweep_snapshots(true)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn store_is_send_sync() {
        assert_send_sync::<Store>();
    }
}
