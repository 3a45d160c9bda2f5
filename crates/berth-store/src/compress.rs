//! Lazy layer compression: layers made here (build steps, commits) are stored uncompressed —
//! the diff id is all an image needs locally — and compressed once, when a push needs them,
//! the result cached by uncompressed digest. Docker's classic builder does the same; pulled
//! layers keep the blob they came as, so pushing them reproduces their digests.

use std::fs::File;
use std::io::BufReader;

use berth_oci::{media_type, Descriptor, Digest};
use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use crate::error::{DbCtx, Result, StoreError};
use crate::Store;

/// The compressed media type to push an uncompressed layer as, for a manifest of `manifest_mt`.
fn gzip_type(manifest_mt: &str) -> &'static str {
    if manifest_mt == media_type::DOCKER_MANIFEST {
        media_type::DOCKER_LAYER_GZIP
    } else {
        media_type::OCI_LAYER_GZIP
    }
}

/// Is `mt` an uncompressed layer berth itself would have written (and may compress)?
fn compressible(mt: &str) -> bool {
    mt == media_type::OCI_LAYER || mt == "application/vnd.docker.image.rootfs.diff.tar"
}

impl Store {
    /// The gzip blob of the uncompressed layer blob `layer`: made once (read from the store,
    /// written and hashed as a new blob), then found through the cache while the blob exists.
    pub fn compressed_layer(&self, layer: &Digest) -> Result<(Digest, u64)> {
        let _g = self.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        let cached: Option<(String, i64)> = self
            .conn()
            .query_row(
                "SELECT compressed, size FROM compressed_layers WHERE uncompressed=?1",
                [layer.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .db("read compressed layer")?;
        if let Some((d, size)) = cached {
            if let Ok(d) = d.parse::<Digest>() {
                if self.has_blob(&d) {
                    return Ok((d, size as u64));
                }
            }
        }
        let src = self.blob_path(layer);
        let f = File::open(&src).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::BlobNotFound(layer.clone()),
            _ => StoreError::Io {
                path: src.clone(),
                source: e,
            },
        })?;
        let gz = flate2::read::GzEncoder::new(
            BufReader::with_capacity(1 << 20, f),
            flate2::Compression::default(),
        );
        let (d, size) = self.put_blob_reader(gz, None)?;
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO compressed_layers (uncompressed, compressed, size) VALUES (?1, ?2, ?3)",
                params![layer.to_string(), d.to_string(), size as i64],
            )
            .db("record compressed layer")?;
        Ok((d, size))
    }

    /// The manifest to push for `manifest_bytes` (of media type `manifest_mt`): uncompressed
    /// layers replaced by their gzip blobs ([`Store::compressed_layer`]), everything else kept.
    /// None when every layer is already compressed (push the stored manifest as it is).
    pub fn distributable_manifest(
        &self,
        manifest_bytes: &[u8],
        manifest_mt: &str,
    ) -> Result<Option<Vec<u8>>> {
        let bad = |e: String| StoreError::InvalidImage {
            what: "manifest to push".into(),
            why: e,
        };
        let mut v: Value =
            serde_json::from_slice(manifest_bytes).map_err(|e| bad(e.to_string()))?;
        let Some(layers) = v.get_mut("layers").and_then(Value::as_array_mut) else {
            return Ok(None);
        };
        let mut changed = false;
        for l in layers.iter_mut() {
            let d: Descriptor =
                serde_json::from_value(l.clone()).map_err(|e| bad(e.to_string()))?;
            if !compressible(&d.media_type) {
                continue;
            }
            let (gz, size) = self.compressed_layer(&d.digest)?;
            l["mediaType"] = gzip_type(manifest_mt).into();
            l["digest"] = gz.to_string().into();
            l["size"] = size.into();
            changed = true;
        }
        if !changed {
            return Ok(None);
        }
        let out = serde_json::to_vec(&v).map_err(|e| bad(e.to_string()))?;
        Ok(Some(out))
    }
}
