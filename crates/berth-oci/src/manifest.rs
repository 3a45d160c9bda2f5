//! Descriptors, image manifests (OCI and Docker schema 2) and indexes / manifest lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::platform::Platform;

/// Media types berth reads and writes.
pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_FOREIGN: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// How a layer blob is compressed, from its media type.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Compression {
        None,
        Gzip,
        Zstd,
    }

    /// The compression of a layer media type, or None if it is not a layer type berth knows.
    pub fn layer_compression(mt: &str) -> Option<Compression> {
        match mt {
            OCI_LAYER | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
                Some(Compression::None)
            }
            OCI_LAYER_GZIP
            | DOCKER_LAYER_GZIP
            | DOCKER_LAYER_FOREIGN
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => {
                Some(Compression::Gzip)
            }
            OCI_LAYER_ZSTD => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub fn is_index(mt: &str) -> bool {
        mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
    }

    pub fn is_manifest(mt: &str) -> bool {
        mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
    }
}

/// Why a manifest or index document was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("malformed {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported schemaVersion {0} in {1} (expected 2)")]
    SchemaVersion(u32, &'static str),
    #[error("unsupported media type {0:?}")]
    MediaType(String),
}

/// A content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: i64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
        }
    }
}

/// An image manifest (OCI or Docker schema 2 — the same shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Manifest {
    /// An OCI image manifest naming the image config `config` (its bytes) and `layers`.
    pub fn oci(config: &[u8], layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.into()),
            config: Descriptor::new(
                media_type::OCI_CONFIG,
                Digest::of(config),
                config.len() as i64,
            ),
            layers,
            annotations: None,
        }
    }

    pub fn from_slice(b: &[u8]) -> Result<Manifest, ManifestError> {
        let m: Manifest = serde_json::from_slice(b).map_err(|source| ManifestError::Json {
            what: "image manifest",
            source,
        })?;
        if m.schema_version != 2 {
            return Err(ManifestError::SchemaVersion(
                m.schema_version,
                "image manifest",
            ));
        }
        Ok(m)
    }

    /// Serialise canonically (as berth writes new manifests).
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest serialises")
    }
}

/// An image index / manifest list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    pub fn from_slice(b: &[u8]) -> Result<Index, ManifestError> {
        let i: Index = serde_json::from_slice(b).map_err(|source| ManifestError::Json {
            what: "image index",
            source,
        })?;
        if i.schema_version != 2 {
            return Err(ManifestError::SchemaVersion(
                i.schema_version,
                "image index",
            ));
        }
        Ok(i)
    }

    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("index serialises")
    }

    /// The first manifest in the index whose platform matches `want` (entries without a
    /// platform match anything, as single-platform OCI layouts often omit it).
    pub fn select(&self, want: &Platform) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .filter(|d| {
                media_type::is_manifest(&d.media_type) || media_type::is_index(&d.media_type)
            })
            .find(|d| d.platform.as_ref().map(|p| p.matches(want)).unwrap_or(true))
    }
}

/// Peek at a JSON document's `mediaType` (falls back to sniffing `manifests` vs `layers`).
pub fn sniff_media_type(b: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Peek {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let p: Peek = serde_json::from_slice(b).ok()?;
    p.media_type.or_else(|| {
        if p.manifests.is_some() {
            Some(media_type::OCI_INDEX.to_string())
        } else if p.layers.is_some() {
            Some(media_type::OCI_MANIFEST.to_string())
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_roundtrip_and_select() {
        let cfg = Descriptor::new(media_type::OCI_CONFIG, Digest::of(b"c"), 1);
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.into()),
            config: cfg.clone(),
            layers: vec![Descriptor::new(
                media_type::OCI_LAYER_GZIP,
                Digest::of(b"l"),
                1,
            )],
            annotations: None,
        };
        let b = m.to_vec();
        assert_eq!(Manifest::from_slice(&b).unwrap(), m);
        assert_eq!(
            sniff_media_type(&b).as_deref(),
            Some(media_type::OCI_MANIFEST)
        );

        let mut arm = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(b"arm"), 1);
        arm.platform = Some(Platform::parse("linux/arm64").unwrap());
        let mut amd = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(b"amd"), 1);
        amd.platform = Some(Platform::parse("linux/amd64").unwrap());
        let idx = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![arm, amd.clone()],
            annotations: None,
        };
        assert_eq!(
            idx.select(&Platform::parse("linux/amd64").unwrap()),
            Some(&amd)
        );
        assert!(idx
            .select(&Platform::parse("linux/s390x").unwrap())
            .is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert!(Manifest::from_slice(b"{").is_err());
        assert!(Manifest::from_slice(br#"{"schemaVersion":1,"config":{"mediaType":"x","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#).is_err());
    }
}
