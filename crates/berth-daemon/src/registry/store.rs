//! The registry client's blob ports over berth-store ([`StoreBlobs`]: pulled blobs land through
//! `Store::ingest`, pushed blobs are read from the store), and the small persistent table of
//! which repositories a blob was pulled from ([`BlobSources`], for cross-repository mounts).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_oci::Digest;
use berth_registry::{BlobSource, BlobTarget, BlobWriter};
use berth_store::{Ingest, Store, StoreError};

fn io_err(e: StoreError) -> io::Error {
    let kind = match e {
        StoreError::DigestMismatch { .. } => io::ErrorKind::InvalidData,
        StoreError::BlobNotFound(_) => io::ErrorKind::NotFound,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}

/// One pull's or push's view of the store. Remembers the blobs it committed, so a failed pull
/// can take them back out ([`StoreBlobs::discard_committed`]).
pub struct StoreBlobs {
    store: Arc<Store>,
    committed: Mutex<Vec<Digest>>,
    /// Layers begun with an unpack riding on the download.
    staged: Mutex<Vec<Digest>>,
}

impl StoreBlobs {
    pub fn new(store: Arc<Store>) -> StoreBlobs {
        StoreBlobs {
            store,
            committed: Mutex::new(Vec::new()),
            staged: Mutex::new(Vec::new()),
        }
    }

    /// Layers whose download also unpacked them (for [`Store::discard_staged`] after a
    /// failed pull).
    pub fn staged(&self) -> Vec<Digest> {
        self.staged.lock().expect("staged lock").clone()
    }

    fn writer<'a>(&'a self, ingest: Ingest<'a>, digest: &Digest) -> Box<dyn BlobWriter + 'a> {
        Box::new(IngestWriter {
            ingest: Some(ingest),
            digest: digest.clone(),
            committed: &self.committed,
        })
    }

    /// Blobs this target committed so far.
    pub fn committed(&self) -> Vec<Digest> {
        self.committed.lock().expect("committed lock").clone()
    }

    /// Remove the blobs this target committed that no image references (after a failed pull).
    /// Returns how many were removed.
    pub fn discard_committed(&self, keep: &dyn Fn(&Digest) -> bool) -> usize {
        let mut n = 0;
        for d in self.committed() {
            if keep(&d) {
                continue;
            }
            match std::fs::remove_file(self.store.blob_path(&d)) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(digest = %d, error = %e, "cannot remove blob of failed pull")
                }
            }
        }
        n
    }
}

impl BlobTarget for StoreBlobs {
    fn has_blob(&self, digest: &Digest) -> io::Result<bool> {
        Ok(self.store.has_blob(digest))
    }

    fn begin<'a>(&'a self, digest: &Digest) -> io::Result<Box<dyn BlobWriter + 'a>> {
        let ingest = self.store.ingest(digest).map_err(io_err)?;
        Ok(self.writer(ingest, digest))
    }

    fn begin_layer<'a>(&'a self, digest: &Digest) -> io::Result<Box<dyn BlobWriter + 'a>> {
        let ingest = self.store.ingest_layer(digest).map_err(io_err)?;
        self.staged
            .lock()
            .expect("staged lock")
            .push(digest.clone());
        Ok(self.writer(ingest, digest))
    }

    fn read_blob(&self, digest: &Digest) -> io::Result<Vec<u8>> {
        self.store.read_blob(digest).map_err(io_err)
    }
}

impl BlobSource for StoreBlobs {
    fn size(&self, digest: &Digest) -> io::Result<u64> {
        self.store.blob_size(digest).map_err(io_err)
    }

    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        let f = fs_err::File::open(self.store.blob_path(digest))?;
        Ok(Box::new(io::BufReader::with_capacity(256 * 1024, f)))
    }
}

/// A pull target that fetches only what `GET /distribution/{name}/json` needs: the manifest(s)
/// and the image config, kept in memory; layers are reported present so they are never
/// downloaded and nothing reaches the store. berth-registry asks `has_blob` for the config
/// first (before any layer), so the first digest asked about is fetched and every later one
/// is declared present.
#[derive(Default)]
pub struct InspectOnly {
    state: Mutex<InspectState>,
}

#[derive(Default)]
struct InspectState {
    asked_first: bool,
    blobs: HashMap<Digest, Vec<u8>>,
}

impl InspectOnly {
    fn state(&self) -> std::sync::MutexGuard<'_, InspectState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BlobTarget for InspectOnly {
    fn has_blob(&self, digest: &Digest) -> io::Result<bool> {
        let mut s = self.state();
        if s.blobs.contains_key(digest) {
            return Ok(true);
        }
        Ok(std::mem::replace(&mut s.asked_first, true))
    }

    fn begin<'a>(&'a self, digest: &Digest) -> io::Result<Box<dyn BlobWriter + 'a>> {
        Ok(Box::new(MemWriter {
            target: self,
            digest: digest.clone(),
            buf: Vec::new(),
        }))
    }

    fn read_blob(&self, digest: &Digest) -> io::Result<Vec<u8>> {
        self.state().blobs.get(digest).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("blob {digest} is not fetched when inspecting"),
            )
        })
    }
}

/// Collects one (small) blob in memory for [`InspectOnly`].
struct MemWriter<'a> {
    target: &'a InspectOnly,
    digest: Digest,
    buf: Vec<u8>,
}

impl Write for MemWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for MemWriter<'_> {
    fn offset(&self) -> u64 {
        0
    }

    fn commit(self: Box<Self>) -> io::Result<()> {
        if Digest::of(&self.buf) != self.digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {} does not match its digest", self.digest),
            ));
        }
        let MemWriter {
            target,
            digest,
            buf,
        } = *self;
        target.state().blobs.insert(digest, buf);
        Ok(())
    }

    fn abort(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}

/// Dropped unfinished, it keeps a non-empty partial (the next pull resumes it) but removes an
/// empty one, so a pull that failed before receiving a byte leaves nothing behind.
struct IngestWriter<'a> {
    ingest: Option<Ingest<'a>>,
    digest: Digest,
    committed: &'a Mutex<Vec<Digest>>,
}

impl Write for IngestWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.ingest.as_mut().expect("open ingest").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.ingest.as_mut().expect("open ingest").flush()
    }
}

impl BlobWriter for IngestWriter<'_> {
    fn offset(&self) -> u64 {
        self.ingest.as_ref().map_or(0, Ingest::offset)
    }

    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let ingest = self.ingest.take().expect("open ingest");
        ingest.commit().map_err(io_err)?;
        self.committed
            .lock()
            .expect("committed lock")
            .push(self.digest.clone());
        Ok(())
    }

    fn abort(mut self: Box<Self>) -> io::Result<()> {
        self.ingest
            .take()
            .expect("open ingest")
            .abort()
            .map_err(io_err)
    }
}

impl Drop for IngestWriter<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.ingest.take() {
            if i.is_empty() {
                if let Err(e) = i.abort() {
                    tracing::warn!(digest = %self.digest, error = %e, "cannot remove empty partial");
                }
            }
        }
    }
}

/// Which repositories (`registry/repository`) each blob was pulled from, persisted as JSON in
/// `<root>/registry/blob-sources.json`. Push asks it for cross-repository mount candidates.
pub struct BlobSources {
    path: PathBuf,
    map: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl BlobSources {
    /// Open (or start empty) under `dir`. A corrupt file is ignored with a warning: the table
    /// is only an optimisation.
    pub fn open(dir: &Path) -> BlobSources {
        let path = dir.join("blob-sources.json");
        let map = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring corrupt blob source table");
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        BlobSources {
            path,
            map: Mutex::new(map),
        }
    }

    /// Record that `blobs` came from `registry/repository`, and persist.
    pub fn record(&self, registry: &str, repository: &str, blobs: &[Digest]) {
        let repo = format!("{registry}/{repository}");
        let snapshot = {
            let mut m = self.map.lock().expect("sources lock");
            for d in blobs {
                m.entry(d.to_string()).or_default().insert(repo.clone());
            }
            serde_json::to_vec(&*m).expect("json")
        };
        let written = crate::off_worker::off_worker(|| {
            crate::atomic_file::write_atomic(&self.path, &snapshot)
        });
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot persist blob sources");
        }
    }

    /// For each blob, another repository on `registry` it is known to come from (mount source).
    pub fn mount_candidates(
        &self,
        registry: &str,
        repository: &str,
        blobs: &[Digest],
    ) -> HashMap<Digest, String> {
        let m = self.map.lock().expect("sources lock");
        let prefix = format!("{registry}/");
        let own = format!("{registry}/{repository}");
        let mut out = HashMap::new();
        for d in blobs {
            let Some(repos) = m.get(&d.to_string()) else {
                continue;
            };
            if repos.contains(&own) {
                continue; // already there: the existence check finds it
            }
            if let Some(r) = repos.iter().find_map(|r| r.strip_prefix(&prefix)) {
                out.insert(d.clone(), r.to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_commit_and_discard() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let t = StoreBlobs::new(store.clone());
        let data = b"layer bytes";
        let d = Digest::of(data);
        assert!(!t.has_blob(&d).unwrap());
        drop(t.begin(&d).unwrap()); // nothing received: nothing kept
        assert_eq!(
            std::fs::read_dir(dir.path().join("ingest"))
                .unwrap()
                .count(),
            0
        );
        let mut w = t.begin(&d).unwrap();
        w.write_all(&data[..4]).unwrap();
        drop(w); // interrupted: resumable
        let mut w = t.begin(&d).unwrap();
        assert_eq!(w.offset(), 4);
        w.write_all(&data[4..]).unwrap();
        w.commit().unwrap();
        assert!(t.has_blob(&d).unwrap());
        assert_eq!(t.read_blob(&d).unwrap(), data);
        assert_eq!(BlobSource::size(&t, &d).unwrap(), data.len() as u64);
        let bad = Digest::of(b"other");
        let mut w = t.begin(&bad).unwrap();
        w.write_all(data).unwrap();
        let e = w.commit().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(t.committed(), vec![d.clone()]);
        assert_eq!(t.discard_committed(&|_| false), 1);
        assert!(!store.has_blob(&d));
    }

    #[test]
    fn sources_persist_and_offer_other_repos_of_the_same_registry() {
        let dir = tempfile::tempdir().unwrap();
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let s = BlobSources::open(dir.path());
        s.record("127.0.0.1:5000", "library/busybox", &[a.clone(), b.clone()]);
        s.record("other.example", "x/y", std::slice::from_ref(&b));
        let s = BlobSources::open(dir.path());
        let m = s.mount_candidates("127.0.0.1:5000", "mine/copy", &[a.clone(), b.clone()]);
        assert_eq!(m[&a], "library/busybox");
        assert_eq!(m[&b], "library/busybox");
        assert!(s
            .mount_candidates(
                "127.0.0.1:5000",
                "library/busybox",
                std::slice::from_ref(&a)
            )
            .is_empty());
        assert!(s.mount_candidates("third.example", "q", &[a]).is_empty());
    }
}
