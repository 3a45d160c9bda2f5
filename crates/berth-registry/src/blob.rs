//! Where pulled blobs go and pushed blobs come from: the `BlobTarget` / `BlobSource` traits the
//! daemon implements over its store, and `DirBlobStore`, a plain-directory implementation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_oci::{Digest, Sha256Writer};

/// Receives pulled blobs. Implementations must verify the digest at `commit`.
pub trait BlobTarget: Send + Sync {
    /// Whether the blob is already complete (then it is never fetched).
    fn has_blob(&self, digest: &Digest) -> io::Result<bool>;
    /// Start (or resume) writing the blob; `offset()` tells how many bytes survive from an
    /// interrupted attempt, and the client asks the registry only for the rest. The writer may
    /// borrow the target (as the store's `Ingest<'_>` does).
    fn begin<'a>(&'a self, digest: &Digest) -> io::Result<Box<dyn BlobWriter + 'a>>;
    /// [`BlobTarget::begin`] for an image layer: a target may start unpacking it while the
    /// bytes arrive (the daemon's store does). The default is `begin`.
    fn begin_layer<'a>(&'a self, digest: &Digest) -> io::Result<Box<dyn BlobWriter + 'a>> {
        self.begin(digest)
    }
    /// A complete blob's bytes (used for small blobs such as image configs).
    fn read_blob(&self, digest: &Digest) -> io::Result<Vec<u8>>;
}

/// A resumable blob writer. Dropping it without `commit`/`abort` keeps the partial data.
pub trait BlobWriter: Write + Send {
    /// Bytes already present when the writer was opened.
    fn offset(&self) -> u64;
    /// Verify the digest of everything written (prefix included), make it durable and visible.
    /// A mismatch is an `io::ErrorKind::InvalidData` error and leaves nothing stored.
    fn commit(self: Box<Self>) -> io::Result<()>;
    /// Discard the partial data.
    fn abort(self: Box<Self>) -> io::Result<()>;
}

/// Supplies blobs to push.
pub trait BlobSource: Send + Sync {
    fn size(&self, digest: &Digest) -> io::Result<u64>;
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>>;
}

/// Blobs as files: `<root>/blobs/sha256/<hex>`, partial downloads in `<root>/ingest/<hex>`.
#[derive(Debug, Clone)]
pub struct DirBlobStore {
    root: PathBuf,
}

impl DirBlobStore {
    pub fn new(root: &Path) -> io::Result<DirBlobStore> {
        fs::create_dir_all(root.join("blobs/sha256"))?;
        fs::create_dir_all(root.join("ingest"))?;
        Ok(DirBlobStore {
            root: root.to_path_buf(),
        })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn ingest_path(&self, d: &Digest) -> PathBuf {
        self.root.join("ingest").join(d.hex())
    }

    /// Store bytes directly (verified by construction).
    pub fn put_blob(&self, bytes: &[u8]) -> io::Result<Digest> {
        let d = Digest::of(bytes);
        let mut w = self.begin(&d)?;
        if w.offset() != 0 {
            w.abort()?;
            w = self.begin(&d)?;
        }
        w.write_all(bytes)?;
        w.commit()?;
        Ok(d)
    }
}

impl BlobTarget for DirBlobStore {
    fn has_blob(&self, digest: &Digest) -> io::Result<bool> {
        Ok(self.blob_path(digest).is_file())
    }

    fn begin<'a>(&'a self, digest: &Digest) -> io::Result<Box<dyn BlobWriter + 'a>> {
        let path = self.ingest_path(digest);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        // Hash the surviving prefix so commit verifies the whole blob.
        let mut hasher = Sha256Writer::new(io::sink());
        io::copy(&mut file, &mut hasher)?;
        let offset = hasher.len();
        Ok(Box::new(DirWriter {
            file,
            hasher,
            offset,
            path,
            dest: self.blob_path(digest),
            want: digest.clone(),
        }))
    }

    fn read_blob(&self, digest: &Digest) -> io::Result<Vec<u8>> {
        fs::read(self.blob_path(digest))
    }
}

impl BlobSource for DirBlobStore {
    fn size(&self, digest: &Digest) -> io::Result<u64> {
        Ok(fs::metadata(self.blob_path(digest))?.len())
    }

    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(self.blob_path(digest))?))
    }
}

struct DirWriter {
    file: File,
    hasher: Sha256Writer<io::Sink>,
    offset: u64,
    path: PathBuf,
    dest: PathBuf,
    want: Digest,
}

impl Write for DirWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.write_all(&buf[..n])?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter for DirWriter {
    fn offset(&self) -> u64 {
        self.offset
    }

    fn commit(self: Box<Self>) -> io::Result<()> {
        let DirWriter {
            file,
            hasher,
            path,
            dest,
            want,
            ..
        } = *self;
        let (got, _) = hasher.finish();
        if got != want {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("content has digest {got}, expected {want}"),
            ));
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&path, &dest)?;
        if let Some(dir) = dest.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn abort(self: Box<Self>) -> io::Result<()> {
        let path = self.path.clone();
        drop(self);
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let s = DirBlobStore::new(dir.path()).unwrap();
        let data = b"hello resumable world";
        let d = Digest::of(data);
        let mut w = s.begin(&d).unwrap();
        assert_eq!(w.offset(), 0);
        w.write_all(&data[..7]).unwrap();
        drop(w); // interrupted: partial stays
        let mut w = s.begin(&d).unwrap();
        assert_eq!(w.offset(), 7);
        w.write_all(&data[7..]).unwrap();
        w.commit().unwrap();
        assert!(s.has_blob(&d).unwrap());
        assert_eq!(s.read_blob(&d).unwrap(), data);
        assert!(!s.ingest_path(&d).exists());

        let bad = Digest::of(b"other");
        let mut w = s.begin(&bad).unwrap();
        w.write_all(b"not it").unwrap();
        let e = w.commit().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(!s.has_blob(&bad).unwrap());
        assert!(!s.ingest_path(&bad).exists());
    }
}
