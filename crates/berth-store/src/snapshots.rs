//! Snapshots: one unpacked layer diff per chain id under `snapshots/<n>/fs`, created once,
//! verified against the layer's diff id, made durable by a background `syncfs` (`durable`); plus
//! `commit_layer`, which stores an uncompressed diff tar as a blob and a snapshot at once.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use berth_oci::{media_type, Descriptor, Digest};
use rusqlite::{params, OptionalExtension};
use sha2::Digest as _;

use crate::apply::{apply_overlay_layer_mapped, decompressed, ApplyStats};
use crate::blobs::{sync_dir, unique_name};
use crate::durable::syncfs;
use crate::error::{DbCtx, IoCtx, Result, StoreError};
use crate::images::chain_next;
use crate::Store;

/// A layer created by [`Store::commit_layer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedLayer {
    /// The uncompressed blob (media type `application/vnd.oci.image.layer.v1.tar`); a push
    /// compresses it ([`Store::distributable_manifest`]).
    pub descriptor: Descriptor,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    pub chain_id: Digest,
    /// Uncompressed file content bytes.
    pub size: u64,
}

/// A reader that hashes (sha256) and counts what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: sha2::Sha256::new(),
            len: 0,
        }
    }
    /// Read the rest (tar padding after the end marker counts too) and return digest and length.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let d = Digest::from_hex(&hex::encode(self.hasher.finalize())).expect("sha256 hex");
        Ok((d, self.len))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// How a layer blob becomes a snapshot's `fs/`: the one unpack path, for a blob on disk and
/// for one still downloading (`staging`).
#[derive(Debug, Clone)]
pub(crate) struct Unpacker {
    /// The blob's digest, naming the layer in the applier's errors.
    layer: String,
    /// Where opaque directories are marked (the store's driver decides).
    xattrs: berth_rootfs::OverlayXattrs,
    /// Container ids → host ids for every owner (`--userns-remap`).
    ids: berth_rootfs::IdMapping,
}

impl Unpacker {
    /// Decompress `blob` (gzip, zstd or plain), apply it into `fsdir` and return the digest of
    /// the uncompressed tar (the diff id) and the content bytes. `at` names the source in
    /// errors.
    pub(crate) fn apply(&self, fsdir: &Path, blob: impl Read, at: &Path) -> Result<(Digest, u64)> {
        let dec = decompressed(blob).at(at)?;
        let mut hr = HashingReader::new(dec);
        let stats = self.apply_tar(fsdir, &mut hr)?;
        let (diff_id, _) = hr.finish().at(at)?;
        Ok((diff_id, stats.bytes))
    }

    /// Apply an uncompressed layer tar into `fsdir`.
    pub(crate) fn apply_tar(&self, fsdir: &Path, tar: impl Read) -> Result<ApplyStats> {
        Ok(apply_overlay_layer_mapped(
            fsdir,
            &self.layer,
            self.xattrs,
            tar,
            &self.ids,
        )?)
    }
}

/// A reader that copies what passes through it into a writer.
struct TeeReader<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// What a snapshot sweep would remove: rows (id, chain id) and dirs without a kept row.
pub(crate) struct SnapshotGarbage {
    pub rows: Vec<(i64, String)>,
    pub dirs: Vec<PathBuf>,
}

impl Store {
    pub(crate) fn snapshot_dir(&self, n: i64) -> PathBuf {
        self.root.join("snapshots").join(n.to_string())
    }

    /// chain id → (row id, size) for every complete snapshot.
    pub(crate) fn complete_snapshots(&self) -> Result<HashMap<Digest, (i64, u64)>> {
        let c = self.conn();
        let mut st = c
            .prepare("SELECT chain_id, id, size FROM snapshots WHERE complete=1")
            .db("list snapshots")?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .db("list snapshots")?;
        let mut out = HashMap::new();
        for r in rows {
            let (c, id, size) = r.db("list snapshots")?;
            if let Ok(d) = c.parse::<Digest>() {
                out.insert(d, (id, size as u64));
            }
        }
        Ok(out)
    }

    /// Row id of the snapshot for `chain` (only a complete one with `complete_only`).
    fn snapshot_id(&self, chain: &Digest, complete_only: bool) -> Result<Option<i64>> {
        let sql = if complete_only {
            "SELECT id FROM snapshots WHERE chain_id=?1 AND complete=1"
        } else {
            "SELECT id FROM snapshots WHERE chain_id=?1"
        };
        self.conn()
            .query_row(sql, [chain.to_string()], |r| r.get(0))
            .optional()
            .db("find snapshot")
    }

    /// The `fs` dir of the complete snapshot for `chain`.
    pub fn snapshot_fs(&self, chain: &Digest) -> Result<PathBuf> {
        match self.snapshot_id(chain, true)? {
            Some(n) => Ok(self.snapshot_dir(n).join("fs")),
            None => Err(StoreError::InvalidImage {
                what: format!("layer {chain}"),
                why: "its snapshot is missing; remove and load or pull the image again".into(),
            }),
        }
    }

    /// Make sure the snapshot for `chain` exists, unpacking `blob` (verified against `diff_id`)
    /// if not. Returns (created now, uncompressed size).
    pub(crate) fn ensure_snapshot(
        &self,
        chain: &Digest,
        diff_id: &Digest,
        blob: &Path,
        blob_digest: &Digest,
    ) -> Result<(bool, u64)> {
        // A layer unpacked while it downloaded: waited for before the lock (it needs none).
        let staged = self.take_staged(blob_digest);
        let _u = self.unpack.lock().unwrap_or_else(|p| p.into_inner());
        let existing: Option<(i64, i64, i64)> = self
            .conn()
            .query_row(
                "SELECT id, size, complete FROM snapshots WHERE chain_id=?1",
                [chain.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .db("find snapshot")?;
        let mut staged = match staged {
            Some(Ok(st)) if st.diff_id == *diff_id => Some(st),
            Some(Ok(st)) => {
                tracing::warn!(blob = %blob_digest, staged = %st.diff_id, expected = %diff_id, "staged unpack has another diff id; unpacking the blob again");
                crate::staging::discard(&st);
                None
            }
            Some(Err(e)) => {
                tracing::debug!(blob = %blob_digest, error = %e, "staged unpack failed; unpacking the blob");
                None
            }
            None => None,
        };
        match existing {
            Some((_, size, 1)) => {
                if let Some(st) = staged {
                    crate::staging::discard(&st);
                }
                return Ok((false, size as u64));
            }
            Some((n, _, _)) => {
                self.drop_snapshot_row(n)?;
            }
            None => {}
        }
        let n = self.new_snapshot_row(&chain.to_string(), diff_id)?;
        let res = (|| {
            let fsdir = self.snapshot_dir(n).join("fs");
            let sdir = self.snapshot_dir(n);
            let adopted = match staged.take() {
                Some(st) if !sdir.exists() => match fs::rename(&st.dir, &sdir) {
                    Ok(()) => Some(st.bytes),
                    Err(e) => {
                        tracing::warn!(dir = %st.dir.display(), error = %e, "cannot adopt a staged unpack");
                        crate::staging::discard(&st);
                        None
                    }
                },
                Some(st) => {
                    crate::staging::discard(&st);
                    None
                }
                None => None,
            };
            if let Some(bytes) = adopted {
                self.complete_unsynced(n, bytes)?;
                return Ok(bytes);
            }
            crate::fsmode::private_dir(&sdir).at(&sdir)?;
            fs::create_dir_all(&fsdir).at(&fsdir)?;
            let f = File::open(blob).at(blob)?;
            let (actual, bytes) = self.unpacker(blob_digest).apply(
                &fsdir,
                BufReader::with_capacity(256 * 1024, f),
                blob,
            )?;
            if actual != *diff_id {
                return Err(StoreError::DigestMismatch {
                    what: format!("uncompressed content of layer {blob_digest}"),
                    expected: diff_id.clone(),
                    actual,
                });
            }
            self.complete_unsynced(n, bytes)?;
            Ok(bytes)
        })();
        match res {
            Ok(size) => Ok((true, size)),
            Err(e) => {
                if let Err(e2) = self.drop_snapshot_row(n) {
                    tracing::warn!(error = %e2, "could not clean up failed snapshot");
                }
                Err(e)
            }
        }
    }

    /// The unpack path for a layer (`layer` names it in errors: its blob digest).
    pub(crate) fn unpacker(&self, layer: impl ToString) -> Unpacker {
        Unpacker {
            layer: layer.to_string(),
            xattrs: self.driver.xattrs,
            ids: self.ids.clone(),
        }
    }

    fn new_snapshot_row(&self, chain: &str, diff_id: &Digest) -> Result<i64> {
        let c = self.conn();
        c.execute(
            "INSERT INTO snapshots (chain_id, diff_id, complete) VALUES (?1, ?2, 0)",
            params![chain, diff_id.to_string()],
        )
        .db("insert snapshot")?;
        Ok(c.last_insert_rowid())
    }

    /// Delete a snapshot dir and then its row. Returns bytes freed (on-disk usage).
    pub(crate) fn drop_snapshot_row(&self, n: i64) -> Result<u64> {
        let dir = self.snapshot_dir(n);
        let bytes = crate::gc::du(&dir);
        if dir.exists() {
            fs::remove_dir_all(&dir).at(&dir)?;
        }
        self.conn()
            .execute("DELETE FROM snapshots WHERE id=?1", [n])
            .db("delete snapshot")?;
        Ok(bytes)
    }

    /// Remove the snapshot of `chain` (if any). Returns bytes freed.
    pub(crate) fn remove_snapshot(&self, chain: &Digest) -> Result<u64> {
        let _u = self.unpack.lock().unwrap_or_else(|p| p.into_inner());
        match self.snapshot_id(chain, false)? {
            Some(n) => self.drop_snapshot_row(n),
            None => Ok(0),
        }
    }

    /// Undo snapshots created by a failed operation, unless an image has come to use them.
    pub(crate) fn rollback_snapshots(&self, created: &[Digest]) {
        let used = match self.referenced() {
            Ok((_, chains)) => chains,
            Err(e) => {
                tracing::warn!(error = %e, "rollback: cannot read references; leaving snapshots for gc");
                return;
            }
        };
        for c in created {
            if !used.contains(c) {
                if let Err(e) = self.remove_snapshot(c) {
                    tracing::warn!(chain = %c, error = %e, "rollback: could not remove snapshot");
                }
            }
        }
    }

    /// Snapshots a sweep would remove: rows (id, chain id) that are incomplete or (with
    /// `unreferenced`) that no image uses, and dirs under `snapshots/` that no kept row owns.
    pub(crate) fn snapshot_garbage(&self, unreferenced: bool) -> Result<SnapshotGarbage> {
        let (_, used) = self.referenced()?;
        let rows: Vec<(i64, String, i64)> = {
            let c = self.conn();
            let mut st = c
                .prepare("SELECT id, chain_id, complete FROM snapshots")
                .db("list snapshots")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .db("list snapshots")?;
            rows.collect::<rusqlite::Result<_>>().db("list snapshots")?
        };
        let mut drop = Vec::new();
        let mut keep = std::collections::HashSet::new();
        for (n, chain, complete) in rows {
            let is_used = chain
                .parse::<Digest>()
                .map(|d| used.contains(&d))
                .unwrap_or(false);
            if complete != 1 || (unreferenced && !is_used) {
                drop.push((n, chain));
            } else {
                keep.insert(n.to_string());
            }
        }
        let sdir = self.root.join("snapshots");
        let mut dirs = Vec::new();
        for ent in fs::read_dir(&sdir).at(&sdir)? {
            let ent = ent.at(&sdir)?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) && !drop.iter().any(|(n, _)| n.to_string() == name) {
                dirs.push(ent.path());
            }
        }
        Ok(SnapshotGarbage { rows: drop, dirs })
    }

    /// Remove incomplete snapshots, dirs without rows and (with `unreferenced`) snapshots no
    /// image or container uses. Returns (count, bytes).
    pub(crate) fn sweep_snapshots(&self, unreferenced: bool) -> Result<(u64, u64)> {
        let _u = self.unpack.lock().unwrap_or_else(|p| p.into_inner());
        let SnapshotGarbage { rows, dirs } = self.snapshot_garbage(unreferenced)?;
        let (mut count, mut bytes) = (0u64, 0u64);
        for (n, chain) in rows {
            tracing::info!(snapshot = n, %chain, "removing snapshot");
            bytes += self.drop_snapshot_row(n)?;
            count += 1;
        }
        for d in dirs {
            if d.exists() {
                bytes += crate::gc::du(&d);
                fs::remove_dir_all(&d).at(&d)?;
                count += 1;
            }
        }
        Ok((count, bytes))
    }

    /// Add an UNCOMPRESSED layer diff tar (e.g. from [`Store::rw_diff_tar`] or a build step) on
    /// top of `parent_chain`: one pass stores it as an (uncompressed) blob and unpacks it into a
    /// snapshot.
    /// The result is unreferenced until an image using it is registered (GC may collect it).
    pub fn commit_layer(
        &self,
        parent_chain: Option<&Digest>,
        r: impl Read,
    ) -> Result<CommittedLayer> {
        let _g = self.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        self.commit_layer_unlocked(parent_chain, r)
    }

    /// [`Store::commit_layer`] for callers already holding the GC read lock.
    pub(crate) fn commit_layer_unlocked(
        &self,
        parent_chain: Option<&Digest>,
        r: impl Read,
    ) -> Result<CommittedLayer> {
        let _u = self.unpack.lock().unwrap_or_else(|p| p.into_inner());
        let pending = format!("pending:{}", unique_name("commit"));
        let n = self.new_snapshot_row(&pending, &Digest::of(b""))?;
        let tmp = self.tmp_dir().join(unique_name("layer"));
        let res = (|| {
            let fsdir = self.snapshot_dir(n).join("fs");
            let sdir = self.snapshot_dir(n);
            crate::fsmode::private_dir(&sdir).at(&sdir)?;
            fs::create_dir_all(&fsdir).at(&fsdir)?;
            // The blob is the diff tar itself (its digest is the diff id): compressing it here
            // cost most of a big step's commit time; a push compresses it once, when needed
            // (compress.rs).
            let out = io::BufWriter::with_capacity(1 << 20, File::create(&tmp).at(&tmp)?);
            let mut hr = HashingReader::new(TeeReader { inner: r, out });
            let stats = self.unpacker("commit").apply_tar(&fsdir, &mut hr)?;
            io::copy(&mut hr, &mut io::sink()).at(&tmp)?;
            let diff_id =
                Digest::from_hex(&hex::encode(hr.hasher.clone().finalize())).expect("hex");
            let blob_size = hr.len;
            let f = hr
                .inner
                .out
                .into_inner()
                .map_err(|e| e.into_error())
                .at(&tmp)?;
            f.sync_all().at(&tmp)?;
            drop(f);
            let blob = diff_id.clone();
            let chain = match parent_chain {
                Some(p) => chain_next(p, &diff_id),
                None => diff_id.clone(),
            };
            if self.snapshot_id(&chain, true)?.is_some() {
                self.drop_snapshot_row(n)?;
            } else {
                syncfs(&fsdir)?;
                self.conn()
                    .execute(
                        "DELETE FROM snapshots WHERE chain_id=?1",
                        [chain.to_string()],
                    )
                    .db("clear stale snapshot")?;
                self.conn()
                    .execute(
                        "UPDATE snapshots SET chain_id=?2, diff_id=?3, size=?4, complete=1 WHERE id=?1",
                        params![n, chain.to_string(), diff_id.to_string(), stats.bytes as i64],
                    )
                    .db("complete snapshot")?;
            }
            let dst = self.blob_path(&blob);
            if dst.exists() {
                fs::remove_file(&tmp).at(&tmp)?;
            } else {
                fs::rename(&tmp, &dst).at(&dst)?;
                sync_dir(&self.blobs_dir())?;
            }
            Ok(CommittedLayer {
                descriptor: Descriptor::new(media_type::OCI_LAYER, blob, blob_size as i64),
                diff_id,
                chain_id: chain,
                size: stats.bytes,
            })
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
            let still_pending: Option<i64> = self
                .conn()
                .query_row(
                    "SELECT id FROM snapshots WHERE id=?1 AND complete=0",
                    [n],
                    |r| r.get(0),
                )
                .optional()
                .ok()
                .flatten();
            if still_pending.is_some() {
                let _ = self.drop_snapshot_row(n);
            }
        }
        res
    }
}
