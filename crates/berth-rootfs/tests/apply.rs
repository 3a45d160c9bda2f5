//! The layer applier against hostile tars: each case proves nothing was written outside the root.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use berth_rootfs::apply::{apply_layer, decompressed};
use berth_rootfs::testsuite::{tar_of, Sandbox, E, SENTINEL};

fn apply(sb: &Sandbox, tar: &[u8]) -> berth_rootfs::Result<berth_rootfs::apply::ApplyStats> {
    apply_layer(&sb.root, "test-layer", tar)
}

#[test]
fn dotdot_names_are_rejected_with_entry_and_layer() {
    if !berth_testutil::require_root("dotdot_names_are_rejected_with_entry_and_layer") {
        return;
    }
    for name in ["../outside/pwned", "a/../../outside/pwned", "./../x"] {
        let sb = Sandbox::new();
        let err = apply(&sb, &tar_of(&[E::File(name, b"evil")])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(name) && msg.contains("test-layer"), "{msg}");
        assert_eq!(err.kind(), berth_rootfs::ErrorKind::Invalid);
        sb.assert_outside_untouched();
    }
}

#[test]
fn a_build_context_reads_dotdot_names_as_rooted_paths() {
    if !berth_testutil::require_root("a_build_context_reads_dotdot_names_as_rooted_paths") {
        return;
    }
    // dockerd reads a context's `../foo` as `foo` (moby's TestBuildUncleanTarFilenames); a
    // layer keeps refusing it (above). Either way nothing lands outside.
    let sb = Sandbox::new();
    let tar = tar_of(&[
        E::File("../foo", b"foo"),
        E::File("a/../../../bar", b"bar"),
        E::File("/baz", b"baz"),
    ]);
    berth_rootfs::apply::apply_build_context(&sb.root, &tar[..]).unwrap();
    sb.assert_outside_untouched();
    for n in ["foo", "bar", "baz"] {
        assert_eq!(fs::read(sb.root.join(n)).unwrap(), n.as_bytes());
    }
}

#[test]
fn absolute_names_land_inside_root() {
    if !berth_testutil::require_root("absolute_names_land_inside_root") {
        return;
    }
    let sb = Sandbox::new();
    let abs = format!("{}/pwned", sb.outside_abs());
    apply(&sb, &tar_of(&[E::File(&abs, b"x")])).unwrap();
    sb.assert_outside_untouched();
    let inside = sb.root.join(abs.trim_start_matches('/'));
    assert_eq!(fs::read(inside).unwrap(), b"x");
}

#[test]
fn symlink_to_root_then_write_through_it_stays_inside() {
    if !berth_testutil::require_root("symlink_to_root_then_write_through_it_stays_inside") {
        return;
    }
    let sb = Sandbox::new();
    let through = format!("evil{}/pwned", sb.outside_abs());
    let t = tar_of(&[E::Symlink("evil", "/"), E::File(&through, b"x")]);
    apply(&sb, &t).unwrap();
    sb.assert_outside_untouched();
    // `evil/<outside>/pwned` resolved with evil = the layer root.
    let inside = sb
        .root
        .join(sb.outside_abs().trim_start_matches('/'))
        .join("pwned");
    assert_eq!(fs::read(inside).unwrap(), b"x");
    assert_eq!(
        fs::read_link(sb.root.join("evil")).unwrap().to_str(),
        Some("/")
    );
}

#[test]
fn symlinked_parent_and_chain_stay_inside() {
    if !berth_testutil::require_root("symlinked_parent_and_chain_stay_inside") {
        return;
    }
    let sb = Sandbox::new();
    let outside = sb.outside_abs();
    let t = tar_of(&[
        E::Symlink("a", "b"),
        E::Symlink("b", "../../../../.."),
        E::Symlink("direct", &outside),
        E::File("direct/pwned", b"1"),
        E::File(&format!("a{outside}/pwned2"), b"2"),
        E::File("b/x/pwned3", b"3"),
    ]);
    apply(&sb, &t).unwrap();
    sb.assert_outside_untouched();
    let o = outside.trim_start_matches('/');
    assert_eq!(fs::read(sb.root.join(o).join("pwned")).unwrap(), b"1");
    assert_eq!(fs::read(sb.root.join(o).join("pwned2")).unwrap(), b"2");
    assert_eq!(fs::read(sb.root.join("x/pwned3")).unwrap(), b"3");
}

#[test]
fn hardlinks_resolve_inside_root_only() {
    if !berth_testutil::require_root("hardlinks_resolve_inside_root_only") {
        return;
    }
    // To a host file: resolved in root, where it does not exist → error, no link made.
    let sb = Sandbox::new();
    let err = apply(&sb, &tar_of(&[E::Hardlink("shadow", "/etc/shadow")])).unwrap_err();
    assert!(err.to_string().contains("shadow"), "{err}");
    assert!(!sb.root.join("shadow").exists());
    let host = fs::metadata("/etc/shadow").unwrap();
    assert_eq!(host.nlink(), 1, "host /etc/shadow gained a link");
    sb.assert_outside_untouched();

    // Through `..` → rejected.
    let sb = Sandbox::new();
    let err = apply(&sb, &tar_of(&[E::Hardlink("s", "../outside/sentinel")])).unwrap_err();
    assert!(err.to_string().contains("climbs out"), "{err}");
    sb.assert_outside_untouched();

    // Through a symlink to the outside dir → resolved in root, missing → error.
    let sb = Sandbox::new();
    let t = tar_of(&[
        E::Symlink("o", &sb.outside_abs()),
        E::Hardlink("s", "o/sentinel"),
    ]);
    assert!(apply(&sb, &t).is_err());
    assert_eq!(
        fs::metadata(sb.outside.join("sentinel")).unwrap().nlink(),
        1
    );
    sb.assert_outside_untouched();

    // A legitimate hardlink inside the layer works.
    let sb = Sandbox::new();
    let t = tar_of(&[E::File("f", b"data"), E::Hardlink("g", "f")]);
    apply(&sb, &t).unwrap();
    let (f, g) = (
        fs::metadata(sb.root.join("f")).unwrap(),
        fs::metadata(sb.root.join("g")).unwrap(),
    );
    assert_eq!(f.ino(), g.ino());
    sb.assert_outside_untouched();
}

#[test]
fn devices_fifos_empty_files_and_metadata() {
    if !berth_testutil::require_root("devices_fifos_empty_files_and_metadata") {
        return;
    }
    let sb = Sandbox::new();
    let t = tar_of(&[
        E::Dir("dev/"),
        E::Char("dev/null", 1, 3),
        E::Fifo("dev/fifo"),
        E::File("empty", b""),
        E::File("deep/er/file", b"abc"),
    ]);
    let stats = apply(&sb, &t).unwrap();
    assert_eq!(stats.entries, 5);
    assert_eq!(stats.bytes, 3);
    let m = fs::symlink_metadata(sb.root.join("dev/null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(m.mode() & 0o777, 0o666);
    assert!(fs::symlink_metadata(sb.root.join("dev/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(fs::metadata(sb.root.join("empty")).unwrap().len(), 0);
    assert_eq!(fs::read(sb.root.join("deep/er/file")).unwrap(), b"abc");
    // mtimes from the headers (directories set after their children were written).
    assert_eq!(
        fs::metadata(sb.root.join("dev")).unwrap().mtime(),
        1_700_000_000
    );
    assert_eq!(
        fs::metadata(sb.root.join("empty")).unwrap().mtime(),
        1_700_000_000
    );
    sb.assert_outside_untouched();
}

#[test]
fn whiteouts_become_overlay_markers() {
    if !berth_testutil::require_root("whiteouts_become_overlay_markers") {
        return;
    }
    let sb = Sandbox::new();
    let t = tar_of(&[
        E::File("a/.wh.gone", b""),
        E::File("d/.wh..wh..opq", b""),
        E::File("d/.wh..wh.plnk", b""),
    ]);
    apply(&sb, &t).unwrap();
    let m = fs::symlink_metadata(sb.root.join("a/gone")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), 0);
    let mut buf = [0u8; 4];
    let n =
        rustix::fs::lgetxattr(sb.root.join("d"), "trusted.overlay.opaque", &mut buf[..]).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(!sb.root.join("d/.wh..wh.plnk").exists());
    // A whiteout named `..` is refused.
    let sb = Sandbox::new();
    assert!(apply(&sb, &tar_of(&[E::File("a/.wh...", b"")])).is_err());
    sb.assert_outside_untouched();
}

/// A rootless store marks opaque dirs in `user.overlay.*`; overlay metadata a layer brings in
/// its PAX records (in any namespace) is never applied.
#[test]
fn user_namespace_opaque_markers_and_no_smuggled_overlay_xattrs() {
    if !berth_testutil::require_root("user_namespace_opaque_markers") {
        return;
    }
    use berth_rootfs::OverlayXattrs;
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.user.overlay.opaque", &b"y"[..]),
        ("SCHILY.xattr.user.fuseoverlayfs.opaque", &b"y"[..]),
        ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
        ("SCHILY.xattr.user.kept", &b"1"[..]),
    ])
    .unwrap();
    for (name, kind) in [
        ("smuggled/", tar::EntryType::Directory),
        ("d/.wh..wh..opq", tar::EntryType::Regular),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    }
    let t = b.into_inner().unwrap();
    let sb = Sandbox::new();
    berth_rootfs::apply_overlay_layer(&sb.root, "userns", OverlayXattrs::User, &t[..]).unwrap();
    assert!(OverlayXattrs::User.is_opaque(&sb.root.join("d")));
    assert!(!OverlayXattrs::Trusted.is_opaque(&sb.root.join("d")));
    let smuggled = sb.root.join("smuggled");
    assert!(!OverlayXattrs::User.is_opaque(&smuggled));
    assert!(!OverlayXattrs::Trusted.is_opaque(&smuggled));
    let mut buf = [0u8; 4];
    assert_eq!(
        rustix::fs::lgetxattr(&smuggled, "user.kept", &mut buf[..]).unwrap(),
        1,
        "other xattrs are applied"
    );
    sb.assert_outside_untouched();
}

#[test]
fn garbage_truncated_and_empty_streams() {
    if !berth_testutil::require_root("garbage_truncated_and_empty_streams") {
        return;
    }
    let sb = Sandbox::new();
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let err = apply(&sb, &junk).unwrap_err();
    assert_eq!(err.kind(), berth_rootfs::ErrorKind::Invalid, "{err}");
    sb.assert_outside_untouched();

    let sb = Sandbox::new();
    let data = vec![b'z'; 10_000];
    let full = tar_of(&[E::File("big", &data)]);
    let err = apply(&sb, &full[..3000]).unwrap_err();
    assert!(err.to_string().contains("big"), "{err}");
    sb.assert_outside_untouched();

    let sb = Sandbox::new();
    let stats = apply(&sb, &[][..]).unwrap();
    assert_eq!(stats.entries, 0);
    sb.assert_outside_untouched();
}

#[test]
fn compressed_layers_are_detected() {
    if !berth_testutil::require_root("compressed_layers_are_detected") {
        return;
    }
    use std::io::Write;
    let sb = Sandbox::new();
    let t = tar_of(&[E::File("f", b"gz")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&t).unwrap();
    let gz = gz.finish().unwrap();
    apply_layer(&sb.root, "gz", decompressed(&gz[..]).unwrap()).unwrap();
    assert_eq!(fs::read(sb.root.join("f")).unwrap(), b"gz");
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    /// `@OUT` stands for the absolute path of the sentinel dir (known only at run time).
    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just("".to_string()),
            Just("evil".to_string()),
            Just("a".to_string()),
            Just(".wh.a".to_string()),
            Just(".wh..wh..opq".to_string()),
            "[a-c]{1,3}",
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        (0..3u8, proptest::collection::vec(component(), 1..5)).prop_map(|(prefix, comps)| {
            let p = match prefix {
                0 => "",
                1 => "/",
                _ => "@OUT/",
            };
            format!("{p}{}", comps.join("/"))
        })
    }

    #[derive(Debug, Clone)]
    enum Kind {
        File,
        Dir,
        Symlink(String),
        Hardlink(String),
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            Just(Kind::File),
            Just(Kind::Dir),
            prop_oneof![
                Just("/".to_string()),
                Just("@OUT".to_string()),
                Just("../../..".to_string()),
                name(),
            ]
            .prop_map(Kind::Symlink),
            name().prop_map(Kind::Hardlink),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
        #[test]
        fn random_hostile_tars_never_write_outside(
            ents in proptest::collection::vec((name(), kind()), 1..12)
        ) {
            if !berth_testutil::require_root("random_hostile_tars_never_write_outside") {
                return Ok(());
            }
            // Every entry point that takes a tar, each in a fresh sandbox; after the plain
            // apply, the readers (export, diff) walk what it left.
            for entry_point in 0..4 {
            let sb = Sandbox::new();
            let out = sb.outside_abs();
            let sub = |s: &str| s.replace("@OUT", &out);
            let owned: Vec<(String, Kind)> = ents
                .iter()
                .map(|(n, k)| {
                    let k = match k {
                        Kind::Symlink(t) => Kind::Symlink(sub(t)),
                        Kind::Hardlink(t) => Kind::Hardlink(sub(t)),
                        other => other.clone(),
                    };
                    (sub(n), k)
                })
                .filter(|(n, k)| {
                    n.len() < 100
                        && match k {
                            Kind::Symlink(t) | Kind::Hardlink(t) => t.len() < 100,
                            _ => true,
                        }
                })
                .collect();
            let specs: Vec<E<'_>> = owned
                .iter()
                .map(|(n, k)| match k {
                    Kind::File => E::File(n, b"p"),
                    Kind::Dir => E::Dir(n),
                    Kind::Symlink(t) => E::Symlink(n, t),
                    Kind::Hardlink(t) => E::Hardlink(n, t),
                })
                .collect();
            let tar = tar_of(&specs);
            match entry_point {
                0 => {
                    let _ = apply(&sb, &tar);
                    let mut out = Vec::new();
                    let _ = berth_rootfs::archive::export(&sb.root, &mut out);
                    prop_assert!(!out
                        .windows(SENTINEL.len())
                        .any(|w| w == SENTINEL));
                    let _ = berth_rootfs::archive::changes(&sb.root, &[]);
                }
                1 | 2 => {
                    let opts = berth_rootfs::archive::ExtractOpts {
                        copy_uid_gid: entry_point == 2,
                        ..Default::default()
                    };
                    let _ = berth_rootfs::archive::extract(&sb.root, &[], "/", opts, &tar[..]);
                }
                _ => {
                    let w = berth_rootfs::writer::RootWriter::open(&sb.root).unwrap();
                    let _ = w.extract_from("/app", &tar[..]);
                }
            }
            sb.assert_outside_untouched();
            }
        }
    }
}

/// Go's archive/tar reads blank numeric fields as 0, so Docker accepts a build context or a
/// `docker cp` archive whose writer left uid, gid, mode and mtime empty. Before, berth refused
/// it ("numeric field was not a number").
#[test]
fn blank_numeric_fields_read_as_zero_like_go() {
    if !berth_testutil::require_root("blank_numeric_fields_read_as_zero_like_go") {
        return;
    }
    let sb = Sandbox::new();
    apply(&sb, &tar_of(&[E::Blank("blank", b"data")])).unwrap();
    let p = sb.root.join("blank");
    assert_eq!(fs::read(&p).unwrap(), b"data");
    let md = fs::symlink_metadata(&p).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777, md.mtime()),
        (0, 0, 0, 0)
    );
    sb.assert_outside_untouched();
}

/// The docker CLI rewrites the build context for `build -f - DIR` and leaves off the
/// end-of-archive blocks; Go's archive/tar reads such a stream to its end, and so must we.
#[test]
fn a_tar_without_end_of_archive_blocks_applies() {
    if !berth_testutil::require_root("a_tar_without_end_of_archive_blocks_applies") {
        return;
    }
    let sb = Sandbox::new();
    let mut tar = tar_of(&[E::Dir("d"), E::File("d/Dockerfile", b"FROM scratch\n")]);
    while tar.len() >= 512 && tar[tar.len() - 512..].iter().all(|b| *b == 0) {
        tar.truncate(tar.len() - 512);
    }
    apply(&sb, &tar).unwrap();
    assert_eq!(
        fs::read(sb.root.join("d/Dockerfile")).unwrap(),
        b"FROM scratch\n"
    );
}

/// What the docker CLI really sends for `build -f - DIR`: the last entry's data is not padded
/// to a block either. Go reads that as the end; a stream cut inside the data stays an error.
#[test]
fn a_tar_ending_inside_the_last_padding_applies_but_cut_data_does_not() {
    if !berth_testutil::require_root("a_tar_ending_inside_the_last_padding_applies") {
        return;
    }
    let body = b"FROM scratch\n";
    let full = tar_of(&[E::Dir("d"), E::File("d/Dockerfile", body)]);
    // Two headers and a directory with no data: the file's data starts at 1024.
    let data_end = 1024 + body.len();
    let sb = Sandbox::new();
    apply(&sb, &full[..data_end]).unwrap();
    assert_eq!(fs::read(sb.root.join("d/Dockerfile")).unwrap(), body);
    let sb = Sandbox::new();
    let err = apply(&sb, &full[..data_end - 3]).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    // A header cut short after the last entry is refused too.
    let mut cut_header = full[..data_end.next_multiple_of(512)].to_vec();
    cut_header.extend_from_slice(&full[512..612]);
    let sb = Sandbox::new();
    assert!(apply(&sb, &cut_header).is_err());
}
