//! Each variant's text and kind, as dockerd v20.10 words and classifies it.

use super::{DaemonError as D, ErrorKind as K};
use berth_api_types::ApiError;

fn api(e: D) -> (K, String) {
    let a = ApiError::from(e);
    (a.kind, a.message)
}

#[test]
fn texts_and_kinds_are_dockerds() {
    let id = "0123abcd".to_string();
    let cases: Vec<(D, K, &str)> = vec![
        (D::NoSuchContainer("x".into()), K::NotFound, "No such container: x"),
        (D::NoSuchImage("x:latest".into()), K::NotFound, "No such image: x:latest"),
        (D::NoSuchImage("x".into()), K::NotFound, "No such image: x:latest"),
        (D::NoSuchImage("sha256:ab".into()), K::NotFound, "No such image: sha256:ab"),
        (D::NoSuchExec("e".into()), K::NotFound, "No such exec instance: e"),
        (D::NoSuchNetwork("n".into()), K::NotFound, "network n not found"),
        (D::NoSuchVolume("v".into()), K::NotFound, "get v: no such volume"),
        (
            D::NameInUse { name: "x".into(), id: id.clone() },
            K::Conflict,
            "Conflict. The container name \"/x\" is already in use by container \"0123abcd\". You have to remove (or rename) that container to be able to reuse that name.",
        ),
        (D::ContainerNotRunning(id.clone()), K::Conflict, "Container 0123abcd is not running"),
        (
            D::ContainerPaused { id: id.clone(), then: "exec" },
            K::Conflict,
            "Container 0123abcd is paused, unpause the container before exec",
        ),
        (D::ContainerAlreadyPaused(id.clone()), K::Conflict, "Container 0123abcd is already paused"),
        (
            D::RemoveRunning { id: id.clone(), state: "running" },
            K::Conflict,
            "You cannot remove a running container 0123abcd. Stop the container before attempting removal or force remove",
        ),
        (
            D::RemoveRunning { id: id.clone(), state: "paused" },
            K::Conflict,
            "You cannot remove a paused container 0123abcd. Unpause and then stop the container before attempting removal or force remove",
        ),
        (
            D::VolumeInUse { name: "v".into(), users: vec!["a".into(), "b".into()] },
            K::Conflict,
            "remove v: volume is in use - [a, b]",
        ),
        (D::InvalidFilter("status=x".into()), K::Invalid, "Invalid filter 'status=x'"),
        (
            berth_network::Error::NetworkNotFound("n".into()).into(),
            K::NotFound,
            "network n not found",
        ),
        (
            berth_network::Error::NetworkExists("n".into()).into(),
            K::Conflict,
            "network with name n already exists",
        ),
    ];
    for (e, kind, text) in cases {
        assert_eq!(api(e), (kind, text.to_string()));
    }
}

#[test]
fn an_api_error_passes_through_unchanged() {
    let a = ApiError::new(K::Forbidden, "read-only");
    assert_eq!(ApiError::from(D::from(a.clone())), a);
}

#[test]
fn lower_errors_stay_sources() {
    let io = std::io::Error::other("disk gone");
    let e = D::io("write /x", io);
    assert_eq!(e.to_string(), "write /x: disk gone");
    assert!(std::error::Error::source(&e).is_some());
}

/// Internal failures keep the lower error as their source (for logs and `{:?}`) and show
/// "<what>: <lower text>", as the formatted texts did.
#[test]
fn internal_failures_keep_their_source() {
    use std::error::Error;
    let e = D::failed(
        "mount rootfs of c1",
        berth_store::StoreError::RwLayerNotFound("c1".into()),
    );
    let lower = berth_store::StoreError::RwLayerNotFound("c1".into()).to_string();
    assert_eq!(e.to_string(), format!("mount rootfs of c1: {lower}"));
    assert_eq!(e.kind(), K::Internal);
    let src = e.source().expect("a source");
    assert!(src.downcast_ref::<berth_store::StoreError>().is_some());

    // The volume store's failure names the directory once and says what to do; the cause
    // is the source (the old text repeated it at the end).
    let io = D::io(
        "create /r/volumes",
        std::io::Error::from_raw_os_error(libc::EACCES),
    );
    let e = D::VolumeStoreOpen {
        dir: "/r/volumes".into(),
        source: Box::new(io),
    };
    assert_eq!(
        e.to_string(),
        "cannot open the volume store /r/volumes: create /r/volumes: Permission denied (os error 13); \
         check that the directory is readable and writable by root"
    );
    assert!(e.source().is_some());
}

#[test]
fn an_unmapped_owner_says_which_ids_a_ranged_rootless_daemon_maps() {
    // The plan's mapping: root = the user, 1..=65536 = subordinate ids.
    let full = "         0       1000          1\n         1     100000      65536\n";
    let h = super::mapped_range_hint(full, "alice");
    assert_eq!(
        h,
        "this rootless daemon maps container ids 0-65536 only (root is your user, the others \
         your subordinate ids)"
    );
    // A short range (or a gap) also says how to get the whole range.
    let short = "0 1000 1\n1 100000 1000\n2000 300000 10\n";
    let h = super::mapped_range_hint(short, "alice");
    assert!(
        h.starts_with("this rootless daemon maps container ids 0-1000 only"),
        "{h}"
    );
    assert!(
        h.ends_with(
            "give your user 65536 subordinate ids with `sudo usermod --add-subuids 100000-165535 \
             --add-subgids 100000-165535 alice` and restart it"
        ),
        "{h}"
    );
    // Errors about anything else are left alone (and outside rootless mode, no hint).
    assert_eq!(super::with_unmapped_hint("x".into()), "x");
}
