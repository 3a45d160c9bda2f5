//! Content-addressed blobs: verified, fsynced writes into `blobs/sha256/<hex>`, and resumable
//! ingests kept in `ingest/<hex>.partial`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_oci::{Digest, Sha256Writer};
use sha2::Digest as _;

use crate::error::{IoCtx, Result, StoreError};
use crate::Store;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique name for a scratch file or directory.
pub(crate) fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// fsync a directory so a rename into it survives power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

/// Stream `r` into a new file at `tmp`, hashing it; fsync. Returns digest and length.
pub(crate) fn write_hashed(tmp: &Path, r: &mut impl Read) -> Result<(Digest, u64)> {
    let f = File::create(tmp).at(tmp)?;
    let mut w = Sha256Writer::new(io::BufWriter::with_capacity(256 * 1024, f));
    io::copy(r, &mut w).at(tmp)?;
    let (d, bw) = w.finish();
    let f = bw.into_inner().map_err(|e| e.into_error()).at(tmp)?;
    f.sync_all().at(tmp)?;
    let len = f.metadata().at(tmp)?.len();
    Ok((d, len))
}

/// Write `r` into `dir/<hex>` verifying `expected`; the temp file is removed on any failure.
pub(crate) fn put_into(
    dir: &Path,
    tmp_dir: &Path,
    r: &mut impl Read,
    expected: Option<&Digest>,
) -> Result<(Digest, u64)> {
    let tmp = tmp_dir.join(unique_name("blob"));
    let res = (|| {
        let (d, len) = write_hashed(&tmp, r)?;
        if let Some(e) = expected {
            if *e != d {
                return Err(StoreError::DigestMismatch {
                    what: "blob".into(),
                    expected: e.clone(),
                    actual: d,
                });
            }
        }
        let dst = dir.join(d.hex());
        fs::rename(&tmp, &dst).at(&dst)?;
        sync_dir(dir)?;
        Ok((d, len))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

impl Store {
    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound(d.clone()),
            _ => StoreError::Io { path: p, source: e },
        })
    }

    /// Size in bytes of a stored blob.
    pub fn blob_size(&self, d: &Digest) -> Result<u64> {
        let p = self.blob_path(d);
        fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|_| StoreError::BlobNotFound(d.clone()))
    }

    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        if !self.has_blob(&d) {
            put_into(
                &self.blobs_dir(),
                &self.tmp_dir(),
                &mut &bytes[..],
                Some(&d),
            )?;
        }
        Ok(d)
    }

    /// Stream a blob into the store, verifying `expected` when given. Returns digest and size.
    pub fn put_blob_reader(
        &self,
        mut r: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64)> {
        put_into(&self.blobs_dir(), &self.tmp_dir(), &mut r, expected)
    }

    /// [`Store::ingest`] for an image layer: it is unpacked as it arrives (the pull
    /// pipeline, `staging`), and the snapshot made from it later adopts that unpack.
    pub fn ingest_layer(&self, expected: &Digest) -> Result<Ingest<'_>> {
        let mut ing = self.ingest(expected)?;
        ing.stager = self.stage_layer(expected, &ing.path, ing.offset);
        Ok(ing)
    }

    /// Start or resume downloading the blob `expected`. Only one ingest per digest at a time:
    /// a second concurrent one fails with a conflict.
    pub fn ingest(&self, expected: &Digest) -> Result<Ingest<'_>> {
        {
            let mut active = self.active_ingests.lock().expect("ingest lock");
            if !active.insert(expected.clone()) {
                return Err(StoreError::IngestBusy(expected.clone()));
            }
        }
        let path = self
            .root
            .join("ingest")
            .join(format!("{}.partial", expected.hex()));
        let open = || -> Result<(File, sha2::Sha256, u64)> {
            let mut f = OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&path)
                .at(&path)?;
            // Re-hash what an earlier attempt left, so commit verifies ALL bytes.
            let mut h = sha2::Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut off = 0u64;
            loop {
                let n = f.read(&mut buf).at(&path)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                off += n as u64;
            }
            Ok((f, h, off))
        };
        match open() {
            Ok((file, hasher, offset)) => Ok(Ingest {
                store: self,
                expected: expected.clone(),
                path,
                file: Some(file),
                hasher,
                offset,
                written: 0,
                stager: None,
            }),
            Err(e) => {
                self.active_ingests
                    .lock()
                    .expect("ingest lock")
                    .remove(expected);
                Err(e)
            }
        }
    }
}

/// A resumable blob download. Dropping it without `commit` keeps the partial for a later resume.
#[derive(Debug)]
pub struct Ingest<'a> {
    store: &'a Store,
    expected: Digest,
    path: PathBuf,
    file: Option<File>,
    hasher: sha2::Sha256,
    offset: u64,
    written: u64,
    /// Unpacking it as it arrives; dropped (cancelled) unless the blob commits.
    stager: Option<crate::Stager>,
}

impl Ingest<'_> {
    /// Bytes already present from an earlier, interrupted attempt (resume the download here).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Total bytes in the partial so far.
    pub fn len(&self) -> u64 {
        self.offset + self.written
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verify the digest over all bytes, fsync and move into `blobs/`. A mismatch deletes the
    /// partial. Returns the blob size.
    pub fn commit(mut self) -> Result<u64> {
        let f = self.file.take().expect("ingest file");
        let actual =
            Digest::from_hex(&hex::encode(self.hasher.clone().finalize())).expect("sha256 hex");
        if actual != self.expected {
            drop(f);
            let _ = fs::remove_file(&self.path);
            return Err(StoreError::DigestMismatch {
                what: format!("download of {}", self.expected),
                expected: self.expected.clone(),
                actual,
            });
        }
        f.sync_all().at(&self.path)?;
        let dst = self.store.blob_path(&self.expected);
        fs::rename(&self.path, &dst).at(&dst)?;
        sync_dir(&self.store.blobs_dir())?;
        if let Some(s) = self.stager.take() {
            s.done();
        }
        Ok(self.offset + self.written)
    }

    /// Give up and delete the partial.
    pub fn abort(mut self) -> Result<()> {
        self.file.take();
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io {
                path: self.path.clone(),
                source: e,
            }),
        }
    }
}

impl Write for Ingest<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = self.file.as_mut().expect("ingest file");
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        if let Some(s) = &self.stager {
            s.advance(n as u64);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("ingest file").flush()
    }
}

impl Drop for Ingest<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            let _ = f.sync_all();
        }
        self.store
            .active_ingests
            .lock()
            .expect("ingest lock")
            .remove(&self.expected);
    }
}
