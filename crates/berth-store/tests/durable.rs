//! Snapshots become durable off the pull's path: a registered image's snapshot is listed as
//! unsynced until the background sync takes it off; one listed from another boot (the machine
//! went down before the sync) is unpacked again from its blob when the store opens, and the
//! image is kept.

mod common;

use std::fs;

use berth_oci::{media_type, Descriptor, Digest};
use berth_store::Store;
use common::{gzip, tar_of, E};

fn unsynced(root: &std::path::Path) -> Vec<(i64, String)> {
    let c = rusqlite::Connection::open(root.join("meta.db")).unwrap();
    let mut st = c
        .prepare("SELECT id, boot_id FROM unsynced_snapshots")
        .unwrap();
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

#[test]
fn a_snapshot_listed_from_another_boot_is_unpacked_again() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("store");
    let tar = tar_of(&[E::File("etc/os", b"berth"), E::File("bin/tool", b"x")]);
    let blob = gzip(&tar);
    let img = {
        let s = Store::open(&root).unwrap();
        let bd = s.put_blob(&blob).unwrap();
        let layer = Descriptor::new(media_type::OCI_LAYER_GZIP, bd, blob.len() as i64);
        let (m, c) = common::manifest_and_config(vec![layer], vec![Digest::of(&tar)]);
        s.register_image(&m, &c, &[]).unwrap().id
    };
    // The background sync takes the new snapshot off the list (bounded wait for its thread).
    let cleared = (0..1000).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        unsynced(&root).is_empty()
    });
    assert!(cleared, "still listed: {:?}", unsynced(&root));
    // As if the machine had gone down before the sync: listed from another boot, and a file
    // of the snapshot lost.
    let n: i64 = rusqlite::Connection::open(root.join("meta.db"))
        .unwrap()
        .query_row("SELECT id FROM snapshots", [], |r| r.get(0))
        .unwrap();
    rusqlite::Connection::open(root.join("meta.db"))
        .unwrap()
        .execute(
            "INSERT INTO unsynced_snapshots (id, boot_id) VALUES (?1, 'a-boot-long-gone')",
            [n],
        )
        .unwrap();
    fs::remove_file(root.join(format!("snapshots/{n}/fs/etc/os"))).unwrap();
    let s = Store::open(&root).unwrap();
    let dirs = s.image_layers(&img).unwrap();
    assert_eq!(fs::read(dirs[0].join("etc/os")).unwrap(), b"berth");
    assert_eq!(fs::read(dirs[0].join("bin/tool")).unwrap(), b"x");
    assert!(!unsynced(&root).iter().any(|(_, b)| b == "a-boot-long-gone"));
}
