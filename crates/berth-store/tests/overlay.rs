//! Container rw layers through real overlay mounts: whiteouts and opaque dirs from layers hide
//! lower content, container changes export as an OCI diff with `.wh.` entries, and that diff
//! commits back into a layer.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use berth_oci::Digest;
use berth_store::{Mounter, StorageDriver, Store};
use common::{tar_of, E};

/// Unmounts and removes a container's rw layer even when the test panics.
struct RwGuard<'a> {
    store: &'a Store,
    id: String,
}

impl Drop for RwGuard<'_> {
    fn drop(&mut self) {
        let _ = self.store.unmount_rw_layer(&self.id);
        let _ = self.store.remove_rw_layer(&self.id);
    }
}

/// A two-layer image: layer 2 deletes `a/file1` (whiteout) and replaces `d/` (opaque).
fn two_layer_image(s: &Store) -> Digest {
    let l1 = s
        .commit_layer(
            None,
            &tar_of(&[
                E::File("a/file1", b"one"),
                E::File("a/keep", b"keep"),
                E::File("d/x", b"x"),
                E::File("top", b"t"),
            ])[..],
        )
        .unwrap();
    let l2 = s
        .commit_layer(
            Some(&l1.chain_id),
            &tar_of(&[
                E::File("a/.wh.file1", b""),
                E::Dir("d/"),
                E::File("d/.wh..wh..opq", b""),
                E::File("d/y", b"y"),
            ])[..],
        )
        .unwrap();
    let (m, cb) = common::manifest_and_config(
        vec![l1.descriptor, l2.descriptor],
        vec![l1.diff_id.clone(), l2.diff_id.clone()],
    );
    let img = s.register_image(&m, &cb, &[]).unwrap();
    assert_eq!(s.image_layers(&img.id).unwrap().len(), 2);
    img.id
}

fn tar_names(t: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(t);
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[test]
fn whiteouts_and_opaque_dirs_hide_lower_content_in_a_real_overlay() {
    if !berth_testutil::require_root("whiteouts_and_opaque_dirs_hide_lower_content") {
        return;
    }
    overlay_case(StorageDriver::ROOTFUL);
}

/// A rootless daemon's kernel overlay: `user.overlay.*` markers, mounted with `userxattr`
/// (root can mount it so too, which lets this run without a user namespace).
#[test]
fn opaque_dirs_in_user_xattrs_work_with_userxattr_overlays() {
    if !berth_testutil::require_root("opaque_dirs_in_user_xattrs") {
        return;
    }
    overlay_case(StorageDriver::USERNS_KERNEL);
}

/// The rootless fallback: fuse-overlayfs reads the same `user.overlay.*` markers and leaves
/// its own in the upper dir, which the diff turns into one `.wh..wh..opq`.
#[test]
fn fuse_overlayfs_mounts_reads_and_diffs_the_same_layers() {
    let test = "fuse_overlayfs_mounts_reads_and_diffs_the_same_layers";
    if !berth_testutil::require_root(test)
        || !berth_testutil::require_cmds(test, &["fuse-overlayfs"])
    {
        return;
    }
    overlay_case(StorageDriver::USERNS_FUSE);
}

fn overlay_case(driver: StorageDriver) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open_with(&d.path().join("store"), driver).unwrap();
    let id = two_layer_image(&s);
    // The opaque marker of layer 2 is in the driver's namespace.
    let snap = s.image_layers(&id).unwrap()[1].clone();
    assert!(driver.xattrs.is_opaque(&snap.join("d")), "{driver:?}");
    let cid = format!("ovl-{}", std::process::id());
    s.create_rw_layer(&cid, Some(&id)).unwrap();
    let _g = RwGuard {
        store: &s,
        id: cid.clone(),
    };
    let plan = s.plan_rw_mount(&cid).unwrap();
    assert_eq!(plan.lower, {
        let mut l = s.image_layers(&id).unwrap();
        l.reverse();
        l
    });
    let merged = s.mount_rw_layer(&cid).unwrap();
    assert_eq!(
        s.mount_rw_layer(&cid).unwrap(),
        merged,
        "mount is idempotent"
    );
    if driver.mounter == Mounter::Fuse {
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
        let line = mounts
            .lines()
            .find(|l| l.split(' ').nth(1) == merged.to_str())
            .unwrap_or_default();
        assert!(line.contains("fuse.fuse-overlayfs"), "{line:?}");
    }
    assert!(
        !merged.join("a/file1").exists(),
        "whiteout must hide a/file1"
    );
    assert_eq!(fs::read(merged.join("a/keep")).unwrap(), b"keep");
    assert!(!merged.join("d/x").exists(), "opaque d/ must hide d/x");
    assert_eq!(fs::read(merged.join("d/y")).unwrap(), b"y");
    assert_eq!(fs::read(merged.join("top")).unwrap(), b"t");

    // Container changes: a new file, a deleted lower file, a replaced directory.
    fs::write(merged.join("new"), b"n").unwrap();
    fs::remove_file(merged.join("a/keep")).unwrap();
    fs::remove_dir_all(merged.join("d")).unwrap();
    fs::create_dir(merged.join("d")).unwrap();
    fs::write(merged.join("d/z"), b"z").unwrap();
    let mut diff = Vec::new();
    s.rw_diff_tar(&cid, &mut diff).unwrap();
    let names = tar_names(&diff);
    for want in ["new", "a/.wh.keep", "d/.wh..wh..opq", "d/z"] {
        assert_eq!(
            names.iter().filter(|n| *n == want).count(),
            1,
            "{want} once in {names:?}"
        );
    }
    assert_eq!(
        names.iter().filter(|n| n.starts_with("d/")).count(),
        2,
        "{names:?}"
    );
    // The whiteout entry is an empty regular file, as the OCI spec wants.
    let mut ar = tar::Archive::new(&diff[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().ends_with(".wh.keep") {
            assert_eq!(e.header().entry_type(), tar::EntryType::Regular);
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            assert!(b.is_empty());
        }
    }

    // Committing that diff gives a layer whose snapshot carries overlay markers again.
    let diff_ids = s.image(&id.to_string()).unwrap().config.rootfs.diff_ids;
    let top_chain = berth_store::chain_ids(&diff_ids).pop().unwrap();
    let l3 = s.commit_layer(Some(&top_chain), &diff[..]).unwrap();
    assert_eq!(l3.diff_id, Digest::of(&diff));
    let fsdir = s.snapshot_fs(&l3.chain_id).unwrap();
    let wh = fs::symlink_metadata(fsdir.join("a/keep")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert!(driver.xattrs.is_opaque(&fsdir.join("d")));

    s.unmount_rw_layer(&cid).unwrap();
    assert!(!merged.join("top").exists(), "unmounted");
    s.remove_rw_layer(&cid).unwrap();
    assert!(!d.path().join("store/containers-rw").join(&cid).exists());
}

#[test]
fn rw_layer_without_image_mounts_an_empty_writable_root() {
    if !berth_testutil::require_root("rw_layer_without_image") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("store")).unwrap();
    let cid = format!("empty-{}", std::process::id());
    s.create_rw_layer(&cid, None).unwrap();
    let _g = RwGuard {
        store: &s,
        id: cid.clone(),
    };
    assert_eq!(
        s.create_rw_layer(&cid, None).unwrap_err().kind(),
        berth_store::ErrorKind::Conflict
    );
    let merged = s.mount_rw_layer(&cid).unwrap();
    assert_eq!(fs::read_dir(&merged).unwrap().count(), 0);
    fs::write(merged.join("f"), b"1").unwrap();
    assert_eq!(
        fs::read(s.rw_layer(&cid).unwrap().upper.join("f")).unwrap(),
        b"1"
    );
    // A removal cut short by a crash can take the scratch dirs: the next mount makes them
    // again and the container's changes are still there.
    s.unmount_rw_layer(&cid).unwrap();
    let l = s.rw_layer(&cid).unwrap();
    fs::remove_dir_all(&l.work).unwrap();
    fs::remove_dir_all(&l.merged).unwrap();
    let merged = s.mount_rw_layer(&cid).unwrap();
    assert_eq!(fs::read(merged.join("f")).unwrap(), b"1");
    s.unmount_rw_layer(&cid).unwrap();
    let du = s.disk_usage().unwrap();
    assert_eq!(du.containers.len(), 1);
    s.remove_rw_layer(&cid).unwrap();
    assert_eq!(
        s.rw_layer(&cid).unwrap_err().kind(),
        berth_store::ErrorKind::NotFound
    );
    assert_eq!(
        s.create_rw_layer("../evil", None).unwrap_err().kind(),
        berth_store::ErrorKind::Invalid
    );
}

fn mount_options(target: &std::path::Path) -> Option<String> {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let t = target.to_str().unwrap();
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.get(1) == Some(&t)).then(|| f[3].to_string())
    })
}

#[test]
fn volatile_rw_layer_mounts_volatile_and_mounts_again_afterwards() {
    if !berth_testutil::require_root("volatile_rw_layer_mounts_volatile_and_mounts_again") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let id = "perf-auto-rm";
    store.create_rw_layer(id, None).unwrap();
    let _g = RwGuard {
        store: &store,
        id: id.into(),
    };
    let target = store.mount_rw_layer_volatile(id).unwrap();
    let opts = mount_options(&target).expect("rootfs is mounted");
    assert!(
        opts.contains(",volatile") || opts.contains("fsync=volatile"),
        "{opts}"
    );
    // Idempotent while mounted.
    assert_eq!(store.mount_rw_layer_volatile(id).unwrap(), target);
    store.unmount_rw_layer(id).unwrap();
    assert!(mount_options(&target).is_none());
    // The volatile marker overlayfs left would refuse this mount; it is cleared first.
    let target = store.mount_rw_layer(id).unwrap();
    let opts = mount_options(&target).expect("rootfs is mounted again");
    assert!(
        !opts.contains(",volatile") && !opts.contains("fsync=volatile"),
        "{opts}"
    );
}
