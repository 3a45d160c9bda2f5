//! berth-oci: the pure vocabulary of images — references, digests, descriptors, manifests,
//! indexes, image configs and platforms. No I/O beyond hashing bytes handed in.

pub mod config;
pub mod digest;
pub mod duration;
pub mod manifest;
pub mod platform;
pub mod reference;
pub mod v1;

pub use config::{HealthConfig, History, ImageConfig, ImageRuntimeConfig, RootFs};
pub use digest::{Digest, DigestError, Sha256Writer};
pub use duration::go_duration;
pub use manifest::{media_type, sniff_media_type, Descriptor, Index, Manifest, ManifestError};
pub use platform::Platform;
pub use reference::{Reference, ReferenceError};
