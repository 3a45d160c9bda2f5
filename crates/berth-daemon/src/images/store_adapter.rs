//! [`ImageStore`] over berth-store: maps its records and errors into the engine's terms.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_oci::{Digest, Platform, Reference};
use berth_store::{Store, StoreError};

use crate::error::{DaemonError, Result};
use crate::images::store::{ImageStore, ImportRequest, Removed, StoreUsage, StoredImage};

/// Open (and repair) the store under `root`.
pub fn open(root: &Path) -> anyhow::Result<Arc<dyn ImageStore>> {
    Ok(open_shared(
        root,
        berth_store::StorageDriver::ROOTFUL,
        berth_rootfs::IdMapping::identity(),
    )?
    .1)
}

/// Open the store and return it both as itself (for the builder, containers' rw layers) and
/// behind the engine's port; its overlays mounted by `driver`, files owned by `ids`' host ids
/// (`--userns-remap`).
pub fn open_shared(
    root: &Path,
    driver: berth_store::StorageDriver,
    ids: berth_rootfs::IdMapping,
) -> anyhow::Result<(Arc<Store>, Arc<dyn ImageStore>)> {
    let s = Store::open_full(root, driver, ids)
        .map_err(|e| anyhow::anyhow!("open image store at {}: {e}", root.display()))?;
    let s = Arc::new(s);
    Ok((s.clone(), Arc::new(StoreAdapter(s))))
}

/// berth-store behind the engine's port.
pub struct StoreAdapter(pub Arc<Store>);

impl From<StoreError> for DaemonError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ImageNotFound(name) => DaemonError::NoSuchImage(name),
            e => DaemonError::Store(Box::new(e)),
        }
    }
}

impl ImageStore for StoreAdapter {
    fn images(&self) -> Result<Vec<StoredImage>> {
        Ok(self.0.images()?)
    }
    fn image(&self, name: &str) -> Result<StoredImage> {
        Ok(self.0.image(name)?)
    }
    fn tag(&self, id: &Digest, r: &Reference) -> Result<()> {
        Ok(self.0.tag(id, r)?)
    }
    fn untag(&self, r: &Reference) -> Result<()> {
        Ok(self.0.untag(r)?)
    }
    fn remove_image(&self, id: &Digest) -> Result<Removed> {
        Ok(self.0.remove_image(id)?)
    }
    fn gc(&self) -> Result<u64> {
        Ok(self.0.gc()?.bytes_freed)
    }
    fn usage(&self) -> Result<StoreUsage> {
        let u = self.0.disk_usage()?;
        Ok(StoreUsage {
            layers_size: u.snapshots,
            shared: u
                .images
                .into_iter()
                .map(|i| (i.id, i.shared_size))
                .collect(),
        })
    }
    fn layer_dirs(&self, id: &Digest) -> Result<Vec<PathBuf>> {
        Ok(self.0.image_layers(id)?)
    }
    fn load(&self, r: &mut dyn Read) -> Result<Vec<(StoredImage, Vec<Reference>)>> {
        Ok(berth_store::load_archive_named(&self.0, r)?)
    }
    fn save(&self, images: &[(StoredImage, Vec<Reference>)], w: &mut dyn Write) -> Result<()> {
        Ok(berth_store::save_archive(&self.0, images, w)?)
    }
    fn import(&self, r: &mut dyn Read, req: ImportRequest) -> Result<StoredImage> {
        let mut platform = Platform::host();
        platform.architecture = req.architecture;
        platform.os = req.os;
        let opts = berth_store::ImportOptions {
            changes: req.config,
            tags: req.tag.into_iter().collect(),
            comment: (!req.comment.is_empty()).then_some(req.comment),
            platform: Some(platform),
        };
        Ok(berth_store::import_rootfs(&self.0, r, opts)?)
    }
}
