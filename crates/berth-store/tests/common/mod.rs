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
    (Manifest::oci(&cb, layers).to_vec(), cb)
}

/// `b` gzipped (a layer blob as registries serve them).
pub fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}
