//! Garbage collection (blobs, snapshots and partial downloads nothing references) and disk usage.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

use berth_oci::Digest;

use crate::error::{DbCtx, IoCtx, Result, StoreError};
use crate::Store;

/// What `gc` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: Vec<Digest>,
    pub snapshots_removed: u64,
    pub partials_removed: u64,
    /// On-disk bytes freed.
    pub bytes_freed: u64,
}

/// What a GC would remove: blob files and snapshots (chain id, empty for a dir without a
/// row; and its dir) no image needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Garbage {
    pub blobs: Vec<std::path::PathBuf>,
    pub snapshots: Vec<(String, std::path::PathBuf)>,
}

impl Garbage {
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty() && self.snapshots.is_empty()
    }
}

/// Per-image usage for `docker system df`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUsage {
    pub id: Digest,
    /// Uncompressed layer content.
    pub size: u64,
    /// Part of `size` in layers other images share.
    pub shared_size: u64,
    pub containers: u64,
}

/// On-disk usage of the store (allocated bytes, hardlinks counted once per area).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub blobs: u64,
    pub snapshots: u64,
    pub containers_rw: u64,
    pub ingest: u64,
    pub metadata: u64,
    pub images: Vec<ImageUsage>,
    /// container id → on-disk bytes of its upper dir (Docker's SizeRw).
    pub containers: Vec<(String, u64)>,
}

impl DiskUsage {
    pub fn total(&self) -> u64 {
        self.blobs + self.snapshots + self.containers_rw + self.ingest + self.metadata
    }
}

/// Allocated bytes under `p` (like `du -s`); see [`crate::usage::tree_size`].
pub(crate) fn du(p: &Path) -> u64 {
    crate::usage::tree_size(p, crate::usage::Measure::Allocated)
}

impl Store {
    /// Blobs and chain ids referenced by images (and chain ids of containers' images).
    pub(crate) fn referenced(&self) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        let mut blobs = HashSet::new();
        let mut chains = HashSet::new();
        for row in self.image_rows()? {
            blobs.insert(row.id.clone());
            blobs.insert(row.manifest_digest.clone());
            blobs.extend(row.layers.iter().map(|l| l.digest.clone()));
            chains.extend(row.chain_ids.iter().cloned());
        }
        Ok((blobs, chains))
    }

    pub(crate) fn remove_blob(&self, d: &Digest) -> Result<u64> {
        let p = self.blob_path(d);
        let bytes = du(&p);
        match fs::remove_file(&p) {
            Ok(()) => Ok(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(StoreError::Io { path: p, source: e }),
        }
    }

    /// Files under `blobs/sha256/` no image references: (path, digest when the name is one).
    fn blob_garbage(&self) -> Result<Vec<(std::path::PathBuf, Option<Digest>)>> {
        let (blobs, _) = self.referenced()?;
        let dir = self.blobs_dir();
        let mut out = Vec::new();
        for ent in fs::read_dir(&dir).at(&dir)? {
            let ent = ent.at(&dir)?;
            let name = ent.file_name().to_string_lossy().into_owned();
            match Digest::from_hex(&name) {
                Ok(d) if blobs.contains(&d) => {}
                Ok(d) => out.push((ent.path(), Some(d))),
                Err(_) => out.push((ent.path(), None)),
            }
        }
        Ok(out)
    }

    /// What [`Store::gc`] would remove now, without removing anything (`system check`).
    pub fn garbage(&self) -> Result<Garbage> {
        // As gc does: no blob write (pull, load) is between writing and registering.
        let _g = self.gc_lock.write().unwrap_or_else(|p| p.into_inner());
        let blobs = self.blob_garbage()?.into_iter().map(|(p, _)| p).collect();
        let crate::snapshots::SnapshotGarbage { rows, dirs } = self.snapshot_garbage(true)?;
        let mut snapshots: Vec<(String, std::path::PathBuf)> = rows
            .into_iter()
            .map(|(n, chain)| (chain, self.snapshot_dir(n)))
            .collect();
        snapshots.extend(dirs.into_iter().map(|d| (String::new(), d)));
        Ok(Garbage { blobs, snapshots })
    }

    /// Delete blobs, snapshots and partial downloads that no image references. Images still
    /// used by containers stay referenced because the caller never removes such images.
    pub fn gc(&self) -> Result<GcReport> {
        self.collect(true)
    }

    /// [`Store::gc`] without touching partial downloads, which stay for a resumed pull: what
    /// the daemon runs at start to drop what an interrupted load, pull, build or commit wrote
    /// before its image was registered.
    pub fn gc_keep_partials(&self) -> Result<GcReport> {
        self.collect(false)
    }

    fn collect(&self, partials: bool) -> Result<GcReport> {
        let _g = self.gc_lock.write().unwrap_or_else(|p| p.into_inner());
        let mut report = GcReport::default();
        for (path, digest) in self.blob_garbage()? {
            match digest {
                Some(d) => {
                    report.bytes_freed += self.remove_blob(&d)?;
                    report.blobs_removed.push(d);
                }
                None => {
                    report.bytes_freed += du(&path);
                    fs::remove_file(&path).at(&path)?;
                }
            }
        }
        let (n, bytes) = self.sweep_snapshots(true)?;
        report.snapshots_removed = n;
        report.bytes_freed += bytes;
        let ingest = self.root.join("ingest");
        let active: HashSet<String> = self
            .active_ingests
            .lock()
            .expect("ingest lock")
            .iter()
            .map(|d| format!("{}.partial", d.hex()))
            .collect();
        for ent in fs::read_dir(&ingest).at(&ingest)? {
            let ent = ent.at(&ingest)?;
            if partials && !active.contains(&*ent.file_name().to_string_lossy()) {
                report.bytes_freed += du(&ent.path());
                fs::remove_file(ent.path()).at(ent.path())?;
                report.partials_removed += 1;
            }
        }
        tracing::info!(
            blobs = report.blobs_removed.len(),
            snapshots = report.snapshots_removed,
            bytes = report.bytes_freed,
            "gc done"
        );
        Ok(report)
    }

    /// Disk usage of every area plus per-image and per-container figures.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let rows = self.image_rows()?;
        let snaps = self.complete_snapshots()?;
        let mut uses: std::collections::HashMap<&Digest, u64> = Default::default();
        for r in &rows {
            for c in &r.chain_ids {
                *uses.entry(c).or_default() += 1;
            }
        }
        let containers: Vec<(String, Option<String>)> = {
            let c = self.conn();
            let mut st = c
                .prepare("SELECT container_id, image_id FROM rw_layers ORDER BY container_id")
                .db("list rw layers")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .db("list rw layers")?;
            rows.collect::<rusqlite::Result<_>>().db("list rw layers")?
        };
        let images = rows
            .iter()
            .map(|r| ImageUsage {
                id: r.id.clone(),
                size: r.size,
                shared_size: r
                    .chain_ids
                    .iter()
                    .filter(|c| uses.get(c).copied().unwrap_or(0) > 1)
                    .map(|c| snaps.get(c).map(|s| s.1).unwrap_or(0))
                    .sum(),
                containers: containers
                    .iter()
                    .filter(|(_, i)| i.as_deref() == Some(&r.id.to_string()))
                    .count() as u64,
            })
            .collect();
        let root = &self.root;
        let meta = ["meta.db", "meta.db-wal", "meta.db-shm"]
            .iter()
            .map(|f| du(&root.join(f)))
            .sum();
        Ok(DiskUsage {
            blobs: du(&self.blobs_dir()),
            snapshots: du(&root.join("snapshots")),
            containers_rw: du(&root.join("containers-rw")),
            ingest: du(&root.join("ingest")),
            metadata: meta,
            images,
            containers: containers
                .into_iter()
                .map(|(id, _)| {
                    let b = du(&self.rw_dir(&id).join("upper"));
                    (id, b)
                })
                .collect(),
        })
    }
}
