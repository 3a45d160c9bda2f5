//! The pull pipeline: a layer written through `ingest_layer` is unpacked while it arrives,
//! and registering the image adopts that unpack (the snapshot holds the files, `staging/` is
//! empty after); a download that fails leaves no staged directory; a staged unpack whose diff
//! id is not the config's is not used (the image is refused as without staging).

mod common;

use std::fs;
use std::io::Write;

use berth_oci::{media_type, Descriptor, Digest};
use berth_store::{ErrorKind, Store};
use common::{gzip, tar_of, E};

/// Manifest and config of a one-layer image whose config names `diff_id`.
fn image(blob: &[u8], diff_id: Digest) -> (Vec<u8>, Vec<u8>) {
    let layer = Descriptor::new(
        media_type::OCI_LAYER_GZIP,
        Digest::of(blob),
        blob.len() as i64,
    );
    common::manifest_and_config(vec![layer], vec![diff_id])
}

/// Write `blob` through `ingest_layer` in small pieces, as a download does.
fn download(s: &Store, blob: &[u8]) -> berth_store::Result<u64> {
    let mut ing = s.ingest_layer(&Digest::of(blob))?;
    for piece in blob.chunks(7) {
        ing.write_all(piece).unwrap();
    }
    ing.commit()
}

fn staging_entries(s: &Store) -> usize {
    fs::read_dir(s.root().join("staging")).unwrap().count()
}

#[test]
fn a_layer_unpacked_while_downloading_becomes_the_snapshot() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("store")).unwrap();
    let tar = tar_of(&[
        E::File("etc/hello", b"hi"),
        E::Dir("var/"),
        E::File("var/x", b"x"),
    ]);
    let blob = gzip(&tar);
    download(&s, &blob).unwrap();
    // The download itself unpacked it (bounded wait for the follower thread to finish).
    let staged = || {
        fs::read_dir(s.root().join("staging"))
            .unwrap()
            .any(|e| e.unwrap().path().join("fs/etc/hello").exists())
    };
    let seen = (0..1000).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        staged()
    });
    assert!(seen, "staging/*/fs/etc/hello never appeared");
    let (m, c) = image(&blob, Digest::of(&tar));
    let img = s.register_image(&m, &c, &[]).unwrap();
    let dirs = s.image_layers(&img.id).unwrap();
    assert_eq!(fs::read(dirs[0].join("etc/hello")).unwrap(), b"hi");
    assert_eq!(fs::read(dirs[0].join("var/x")).unwrap(), b"x");
    assert_eq!(
        staging_entries(&s),
        0,
        "the staged unpack was adopted, not left"
    );
    // A second image with the same layer: the snapshot is there, nothing is staged twice.
    download(&s, &blob).unwrap_or_default();
    s.discard_staged(&[Digest::of(&blob)]);
    assert_eq!(staging_entries(&s), 0);
}

#[test]
fn a_failed_download_leaves_no_staged_unpack() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("store")).unwrap();
    let tar = tar_of(&[E::File("f", b"data")]);
    let blob = gzip(&tar);
    // The bytes do not hash to the digest asked for: the commit refuses, the unpack stops.
    let mut ing = s.ingest_layer(&Digest::of(b"another blob")).unwrap();
    ing.write_all(&blob).unwrap();
    assert_eq!(ing.commit().unwrap_err().kind(), ErrorKind::Invalid);
    s.discard_staged(&[Digest::of(b"another blob")]);
    assert_eq!(staging_entries(&s), 0);
    // Cut short (dropped mid-download): the partial is kept for a resume, the unpack is not.
    let mut ing = s.ingest_layer(&Digest::of(&blob)).unwrap();
    ing.write_all(&blob[..blob.len() / 2]).unwrap();
    drop(ing);
    s.discard_staged(&[Digest::of(&blob)]);
    assert_eq!(staging_entries(&s), 0);
    // Resumed: the whole blob is unpacked from the start of the partial.
    let mut ing = s.ingest_layer(&Digest::of(&blob)).unwrap();
    assert_eq!(ing.offset(), (blob.len() / 2) as u64);
    ing.write_all(&blob[blob.len() / 2..]).unwrap();
    ing.commit().unwrap();
    let (m, c) = image(&blob, Digest::of(&tar));
    let img = s.register_image(&m, &c, &[]).unwrap();
    let dirs = s.image_layers(&img.id).unwrap();
    assert_eq!(fs::read(dirs[0].join("f")).unwrap(), b"data");
    assert_eq!(staging_entries(&s), 0);
}

#[test]
fn a_staged_unpack_with_another_diff_id_is_not_used() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("store")).unwrap();
    let tar = tar_of(&[E::File("f", b"data")]);
    let blob = gzip(&tar);
    download(&s, &blob).unwrap();
    let (m, c) = image(&blob, Digest::of(b"not the tar"));
    let err = s.register_image(&m, &c, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("uncompressed content"), "{err}");
    assert_eq!(staging_entries(&s), 0);
    assert!(s.images().unwrap().is_empty());
}
