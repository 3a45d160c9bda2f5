//! Helpers shared by berth-store's integration tests: berth-rootfs's hostile-input suite (raw
//! tar building with hostile names allowed, and a sentinel directory beside the apply root
//! that must never change).
#![allow(dead_code, unused_imports)]

pub use berth_rootfs::testsuite::{tar_of, tree, Sandbox, E};

use berth_oci::{media_type, Descriptor, Digest, ImageConfig, Manifest, RootFs};

/// The manifest and config bytes of an amd64 image made of `layers`, whose config names
/// `diff_ids`.
pub fn manifest_and_config(layers: Vec<Descriptor>, diff_ids: Vec<Digest>) -> (Vec<u8>, Vec<u8>) {
    let cfg = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        ..Default::default()
    };
    let cb = cfg.to_vec();
    let m = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config: Descriptor::new(media_type::OCI_CONFIG, Digest::of(&cb), cb.len() as i64),
        layers,
        annotations: None,
    };
    (m.to_vec(), cb)
}
