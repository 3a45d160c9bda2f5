//! `--userns-remap` in the filesystem layer: a layer's owners are shifted into the mapping
//! when applied (an owner outside it refused, naming the entry), archives and exports shift
//! them back, and confined writes store `--chown` owners shifted.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

use berth_rootfs::IdMapping;

fn ids() -> IdMapping {
    IdMapping::range(100000, 200000, 65536)
}

/// A tar of (name, uid, gid, is_dir) entries.
fn tar(entries: &[(&str, u64, u64, bool)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, uid, gid, dir) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(*uid);
        h.set_gid(*gid);
        h.set_mtime(1);
        if *dir {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, name, std::io::empty()).unwrap();
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(2);
            b.append_data(&mut h, name, &b"hi"[..]).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn owners(tar_bytes: &[u8]) -> HashMap<String, (u64, u64)> {
    tar::Archive::new(tar_bytes)
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let n = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string();
            (n, (e.header().uid().unwrap(), e.header().gid().unwrap()))
        })
        .collect()
}

#[test]
fn layers_are_shifted_in_and_archives_shifted_back() {
    if !berth_testutil::require_root("layers_are_shifted_in_and_archives_shifted_back") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let layer = tar(&[("etc", 0, 0, true), ("etc/app", 1000, 50, false)]);
    berth_rootfs::apply_layer_mapped(root, "l1", &layer[..], &ids()).unwrap();
    let m = std::fs::metadata(root.join("etc/app")).unwrap();
    assert_eq!((m.uid(), m.gid()), (101000, 200050));
    let m = std::fs::metadata(root.join("etc")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100000, 200000));

    let mut out = Vec::new();
    berth_rootfs::archive::export_mapped(root, &ids(), &mut out).unwrap();
    let o = owners(&out);
    assert_eq!(o["etc/app"], (1000, 50));
    assert_eq!(o["etc"], (0, 0));
    let mut out = Vec::new();
    berth_rootfs::archive::archive_mapped(root, &[], "/etc/app", &ids(), &mut out).unwrap();
    assert_eq!(owners(&out)["app"], (1000, 50));

    // A file the host's root owns has no id in the container: the export says which.
    std::fs::write(root.join("stray"), "x").unwrap();
    let e = berth_rootfs::archive::export_mapped(root, &ids(), &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("host owner 0:0 is outside"), "{e}");

    // Confined writes store --chown owners shifted.
    let w = berth_rootfs::writer::RootWriter::open(root)
        .unwrap()
        .mapped(ids());
    let owner = berth_rootfs::writer::Owner { uid: 5, gid: 6 };
    w.write_file("/srv/f", &mut &b"x"[..], 0o600, owner)
        .unwrap();
    let m = std::fs::metadata(root.join("srv/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100005, 200006));
    let m = std::fs::metadata(root.join("srv")).unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (100000, 200000),
        "new parents: the root"
    );
}

#[test]
fn an_owner_outside_the_mapping_is_refused_naming_the_entry() {
    if !berth_testutil::require_root("an_owner_outside_the_mapping_is_refused_naming_the_entry") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layer = tar(&[("ok", 0, 0, false), ("big", 70000, 0, false)]);
    let e = berth_rootfs::apply_layer_mapped(dir.path(), "l2", &layer[..], &ids()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("big")
            && msg.contains("l2")
            && msg.contains("container owner 70000:0 is outside the --userns-remap range"),
        "{msg}"
    );
    assert_eq!(e.kind(), berth_rootfs::ErrorKind::Invalid);
    assert!(!dir.path().join("big").exists());
    // Without a mapping the same layer applies as it is.
    let plain = tempfile::tempdir().unwrap();
    berth_rootfs::apply_layer(plain.path(), "l2", &layer[..]).unwrap();
    assert_eq!(
        std::fs::metadata(plain.path().join("big")).unwrap().uid(),
        70000
    );
}
