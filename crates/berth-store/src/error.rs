//! The store's error type and its coarse kinds (the API maps kinds to HTTP codes).

use std::path::PathBuf;

use berth_oci::Digest;

pub use berth_errors::ErrorKind;

/// Every failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata database error ({what}): {source}")]
    Db {
        what: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("blob {0} not found in the store: pull or load the image again")]
    BlobNotFound(Digest),
    #[error("content digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("no such image: {0}")]
    ImageNotFound(String),
    #[error(
        "image reference {reference:?} is ambiguous: it matches {count} images; use a longer id"
    )]
    Ambiguous { reference: String, count: usize },
    #[error("invalid image {what}: {why}")]
    InvalidImage { what: String, why: String },
    /// The layer applier's refusals and failures (unsafe entry, malformed tar, apply).
    #[error(transparent)]
    Rootfs(#[from] berth_rootfs::RootfsError),
    #[error("invalid archive: {0}")]
    Archive(String),
    #[error("no read-write layer for container {0}")]
    RwLayerNotFound(String),
    #[error("read-write layer for container {0} already exists")]
    RwLayerExists(String),
    #[error("mounting overlay for container {id} at {path} failed: {source}")]
    Mount {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {0} is already being downloaded by another pull; retry when it finishes")]
    IngestBusy(Digest),
    #[error("invalid container id {0:?}: expected 1-128 characters [A-Za-z0-9_.-]")]
    InvalidContainerId(String),
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::BlobNotFound(_)
            | StoreError::ImageNotFound(_)
            | StoreError::RwLayerNotFound(_) => ErrorKind::NotFound,
            StoreError::Ambiguous { .. }
            | StoreError::RwLayerExists(_)
            | StoreError::IngestBusy(_) => ErrorKind::Conflict,
            StoreError::DigestMismatch { .. }
            | StoreError::InvalidImage { .. }
            | StoreError::Archive(_)
            | StoreError::InvalidContainerId(_) => ErrorKind::Invalid,
            StoreError::Rootfs(e) => e.kind(),
            StoreError::Io { .. } | StoreError::Mount { .. } => ErrorKind::Unavailable,
            StoreError::Db { .. } => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attach a path to an io::Error.
pub(crate) trait IoCtx<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoCtx<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.into(),
            source,
        })
    }
}

/// Attach a description to a rusqlite error.
pub(crate) trait DbCtx<T> {
    fn db(self, what: &str) -> Result<T>;
}

impl<T> DbCtx<T> for rusqlite::Result<T> {
    fn db(self, what: &str) -> Result<T> {
        self.map_err(|source| StoreError::Db {
            what: what.to_string(),
            source,
        })
    }
}
