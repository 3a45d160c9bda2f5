//! The narrow, synchronous port the engine needs from an image store. berth-store implements
//! it (see `store_adapter`); tests use an in-memory fake. Called from `spawn_blocking`.

use std::io::{Read, Write};
use std::path::PathBuf;

use berth_oci::{Digest, ImageRuntimeConfig, Reference};

use crate::error::Result;

/// An image as the engine sees it: the store's own record, so the port adds no copy of it.
pub use berth_store::ImageRecord as StoredImage;

/// What removing one image did (untagged names, deleted ids, bytes freed).
pub use berth_store::RemoveReport as Removed;

/// Disk usage of the image store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreUsage {
    /// Bytes of all unpacked layers, counted once.
    pub layers_size: u64,
    /// Per image: (id, bytes shared with at least one other image).
    pub shared: Vec<(Digest, u64)>,
}

/// What `docker import` creates.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    pub config: ImageRuntimeConfig,
    pub comment: String,
    pub tag: Option<Reference>,
    pub architecture: String,
    pub os: String,
}

/// The engine's view of an image store.
pub trait ImageStore: Send + Sync + 'static {
    fn images(&self) -> Result<Vec<StoredImage>>;
    /// Resolve a full/short ID, `name`, `name:tag` or `name@digest` like Docker.
    fn image(&self, name: &str) -> Result<StoredImage>;
    fn tag(&self, id: &Digest, r: &Reference) -> Result<()>;
    fn untag(&self, r: &Reference) -> Result<()>;
    /// Remove the image with all its references and the layers nothing else uses.
    fn remove_image(&self, id: &Digest) -> Result<Removed>;
    /// Delete unreferenced blobs and layers; bytes freed.
    fn gc(&self) -> Result<u64>;
    fn usage(&self) -> Result<StoreUsage>;
    /// Unpacked layer directories, bottom first.
    fn layer_dirs(&self, id: &Digest) -> Result<Vec<PathBuf>>;
    /// Load an OCI or `docker save` archive; all-or-nothing. Each image with the names the
    /// archive gave it.
    fn load(&self, r: &mut dyn Read) -> Result<Vec<(StoredImage, Vec<Reference>)>>;
    /// Write one archive holding `images`, each under the given references.
    fn save(&self, images: &[(StoredImage, Vec<Reference>)], w: &mut dyn Write) -> Result<()>;
    /// Create a one-layer image from a root filesystem tarball.
    fn import(&self, r: &mut dyn Read, req: ImportRequest) -> Result<StoredImage>;
}
