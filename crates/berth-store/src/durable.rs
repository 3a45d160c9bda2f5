//! Snapshot durability off the pull's path. A snapshot is derived data: its blob is durable
//! (fsynced at ingest) and the same unpack makes it again. So a finished unpack is marked
//! complete at once and listed in `unsynced_snapshots` with this boot's id, and a background
//! `syncfs` makes it durable and takes it off the list. `syncfs` flushes the whole filesystem,
//! everybody's dirty data: on the pull's path it cost 0.16–0.8 s on a busy machine.
//! At open, what is still listed is settled: from this boot (the daemon died, the page cache
//! did not) one `syncfs` is enough; from another boot (the machine went down before the sync)
//! the snapshot may have lost data, so it is unpacked again from its blob.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_oci::Digest;
use rusqlite::params;

use crate::error::{DbCtx, IoCtx, Result, StoreError};
use crate::Store;

/// This boot's id (`/proc/sys/kernel/random/boot_id`); empty where there is none, which
/// makes every listed snapshot count as from another boot: unpacked again, the safe side.
pub(crate) fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Flush the filesystem holding `dir`.
pub(crate) fn syncfs(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir).at(dir)?;
    rustix::fs::syncfs(&f).map_err(|e| StoreError::Io {
        path: dir.to_path_buf(),
        source: e.into(),
    })
}

/// Sync the filesystem of `root`, then take the listed snapshots `ids` off the list, through
/// the store's own connection (it may outlive the store that started it).
fn sync_and_clear(root: &Path, db: &Mutex<rusqlite::Connection>, ids: &[i64]) {
    if let Err(e) = syncfs(root) {
        tracing::warn!(error = %e, "background sync of new snapshots failed; settled at the next start");
        return;
    }
    let c = db.lock().unwrap_or_else(|p| p.into_inner());
    for id in ids {
        if let Err(e) = c.execute("DELETE FROM unsynced_snapshots WHERE id=?1", [id]) {
            tracing::debug!(error = %e, "cannot clear a synced snapshot; settled at the next start");
        }
    }
}

impl Store {
    /// Mark snapshot `n` complete with `bytes` of content, not yet durable: listed until a
    /// background sync has flushed it.
    pub(crate) fn complete_unsynced(&self, n: i64, bytes: u64) -> Result<()> {
        {
            let mut c = self.conn();
            let tx = c.transaction().db("begin complete snapshot")?;
            tx.execute(
                "UPDATE snapshots SET complete=1, size=?2 WHERE id=?1",
                params![n, bytes as i64],
            )
            .db("complete snapshot")?;
            tx.execute(
                "INSERT OR REPLACE INTO unsynced_snapshots (id, boot_id) VALUES (?1, ?2)",
                params![n, boot_id()],
            )
            .db("list unsynced snapshot")?;
            tx.commit().db("commit complete snapshot")?;
        }
        let (root, db): (PathBuf, Arc<Mutex<rusqlite::Connection>>) =
            (self.root.clone(), self.db.clone());
        let spawned = std::thread::Builder::new()
            .name("berth-sync".into())
            .spawn(move || sync_and_clear(&root, &db, &[n]));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the background sync; settled at the next start");
        }
        Ok(())
    }

    /// Settle what a previous run left listed (see the module doc). Before `repair`, which
    /// drops images whose snapshots are gone.
    pub(crate) fn settle_unsynced(&self, this_boot: &str) -> Result<()> {
        let rows: Vec<(i64, String)> = {
            let c = self.conn();
            let mut st = c
                .prepare("SELECT id, boot_id FROM unsynced_snapshots")
                .db("list unsynced snapshots")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .db("list unsynced snapshots")?;
            rows.collect::<rusqlite::Result<_>>()
                .db("list unsynced snapshots")?
        };
        if rows.is_empty() {
            return Ok(());
        }
        let (same, other): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|(_, b)| !this_boot.is_empty() && b == this_boot);
        if !same.is_empty() {
            syncfs(&self.root)?;
            for (n, _) in &same {
                self.conn()
                    .execute("DELETE FROM unsynced_snapshots WHERE id=?1", [n])
                    .db("clear synced snapshot")?;
            }
        }
        for (n, _) in other {
            self.unpack_again(n)?;
        }
        Ok(())
    }

    /// Snapshot `n` may have lost data in an unclean reboot: make it again from its blob
    /// (found through an image naming its chain id). Without one it is dropped, and `repair`
    /// drops what referenced it.
    fn unpack_again(&self, n: i64) -> Result<()> {
        let row: Option<(String, String)> = {
            use rusqlite::OptionalExtension;
            self.conn()
                .query_row(
                    "SELECT chain_id, diff_id FROM snapshots WHERE id=?1",
                    [n],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .db("read unsynced snapshot")?
        };
        self.conn()
            .execute("DELETE FROM unsynced_snapshots WHERE id=?1", [n])
            .db("clear unsynced snapshot")?;
        let Some((chain, diff_id)) = row else {
            return Ok(());
        };
        tracing::warn!(snapshot = n, chain = %chain, "a snapshot made before an unclean reboot is unpacked again from its blob");
        self.drop_snapshot_row(n)?;
        let (Ok(chain), Ok(diff_id)) = (chain.parse::<Digest>(), diff_id.parse::<Digest>()) else {
            return Ok(());
        };
        let blob = self.image_rows()?.into_iter().find_map(|img| {
            img.chain_ids
                .iter()
                .position(|c| *c == chain)
                .and_then(|i| img.layers.get(i).map(|l| l.digest.clone()))
        });
        if let Some(blob) = blob.filter(|b| self.has_blob(b)) {
            if let Err(e) = self.ensure_snapshot(&chain, &diff_id, &self.blob_path(&blob), &blob) {
                tracing::warn!(chain = %chain, error = %e, "cannot unpack the snapshot again; its images are dropped");
            }
        }
        Ok(())
    }
}
