//! Tests of archive_ops: hostile docker cp archives and symlinks must stay inside the root.

use super::*;
use std::fs;
use std::os::unix::fs::symlink;

/// A tar entry with a raw (unchecked) name, so hostile names can be built.
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    data: &[u8],
    link: &str,
) {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tar_of(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (n, k, d, l) in entries {
        raw_entry(&mut b, n, *k, d, l);
    }
    b.into_inner().unwrap()
}

fn names(tar_bytes: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let n = e.path().unwrap().to_string_lossy().into_owned();
            let l = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut d = Vec::new();
            e.read_to_end(&mut d).unwrap();
            (n, l, d)
        })
        .collect()
}

fn keep() -> ExtractOpts {
    ExtractOpts {
        copy_uid_gid: true,
        ..Default::default()
    }
}

fn root0() -> ExtractOpts {
    ExtractOpts::default()
}

fn no_clobber() -> ExtractOpts {
    ExtractOpts {
        no_overwrite_dir_non_dir: true,
        ..Default::default()
    }
}

struct Fixture {
    _t: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    let outside = t.path().join("outside");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("dst")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(root.join("etc/shadow"), b"container-shadow").unwrap();
    Fixture {
        _t: t,
        root,
        outside,
    }
}

fn outside_is_empty(f: &Fixture) -> bool {
    fs::read_dir(&f.outside).unwrap().next().is_none()
}

#[test]
fn hostile_put_archive_writes_nothing_outside() {
    if !berth_testutil::require_root("hostile_put_archive_writes_nothing_outside") {
        return;
    }
    let f = fixture();
    let abs_out = f.outside.to_str().unwrap().to_string();
    // 1. `..` climbing out: rejected.
    let t = tar_of(&[("../../outside/x", tar::EntryType::Regular, b"pwned", "")]);
    assert!(extract(&f.root, &[], "/dst", keep(), t.as_slice()).is_err());
    // 2. An absolute symlink to the host dir, then a file through it.
    let t = tar_of(&[
        ("link", tar::EntryType::Symlink, b"", &abs_out),
        ("link/pwned", tar::EntryType::Regular, b"pwned", ""),
    ]);
    let _ = extract(&f.root, &[], "/dst", root0(), t.as_slice());
    // 3. The destination itself is a symlink to an absolute host path.
    symlink(&f.outside, f.root.join("evil")).unwrap();
    let t = tar_of(&[("y", tar::EntryType::Regular, b"pwned", "")]);
    let r = extract(&f.root, &[], "/evil", root0(), t.as_slice());
    assert_eq!(
        r.unwrap_err().kind(),
        crate::ErrorKind::NotFound,
        "clamped to <root>{abs_out}"
    );
    // 4. A symlinked parent pointing up and out with `..`.
    symlink("../../../../../../..", f.root.join("dst/up")).unwrap();
    let t = tar_of(&[("z", tar::EntryType::Regular, b"pwned", "")]);
    extract(
        &f.root,
        &[],
        &format!("/dst/up{abs_out}/.."),
        root0(),
        t.as_slice(),
    )
    .ok();
    assert!(
        outside_is_empty(&f),
        "nothing escaped to {}",
        f.outside.display()
    );
    // A normal copy lands, owned by root unless copyUIDGID.
    let t = tar_of(&[("ok.txt", tar::EntryType::Regular, b"hi", "")]);
    extract(&f.root, &[], "/dst", root0(), t.as_slice()).unwrap();
    assert_eq!(fs::read(f.root.join("dst/ok.txt")).unwrap(), b"hi");
    // noOverwriteDirNonDir: a file over a directory is refused, nothing written.
    let t = tar_of(&[
        ("fresh.txt", tar::EntryType::Regular, b"x", ""),
        ("sub", tar::EntryType::Regular, b"x", ""),
    ]);
    fs::create_dir_all(f.root.join("dst/sub")).unwrap();
    let e = extract(&f.root, &[], "/dst", no_clobber(), t.as_slice()).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Invalid);
    assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
    assert!(!f.root.join("dst/fresh.txt").exists());
    assert!(f.root.join("dst/sub").is_dir());
    // A `.wh.` name never deletes anything (the layer applier would read it as a whiteout).
    for opts in [root0(), keep()] {
        let t = tar_of(&[(".wh.shadow", tar::EntryType::Regular, b"", "")]);
        let e = extract(&f.root, &[], "/etc", opts, t.as_slice()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Invalid);
        assert_eq!(
            fs::read(f.root.join("etc/shadow")).unwrap(),
            b"container-shadow"
        );
    }
    // Not a directory → invalid.
    let r = extract(&f.root, &[], "/etc/shadow", root0(), t.as_slice());
    assert_eq!(r.unwrap_err().kind(), crate::ErrorKind::Invalid);
}

#[test]
fn get_archive_of_symlink_to_shadow_is_the_containers_file() {
    let f = fixture();
    symlink("/etc/shadow", f.root.join("leak")).unwrap();
    symlink("/etc", f.root.join("etcl")).unwrap();
    // The symlink itself is archived, not followed.
    let mut out = Vec::new();
    let st = archive(&f.root, &[], "/leak", &mut out).unwrap();
    assert_eq!(st.link_target, "/etc/shadow");
    assert_eq!(st.mode & (1 << 27), 1 << 27, "symlink mode bit");
    let e = names(&out);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].1.as_deref(), Some("/etc/shadow"));
    // docker cp -L asks for the link target: resolved inside the root.
    for p in [
        "/etcl/shadow",
        "/../../../etc/shadow",
        "/etcl/../etcl/shadow",
    ] {
        let mut out = Vec::new();
        archive(&f.root, &[], p, &mut out).unwrap();
        let e = names(&out);
        assert_eq!(e[0].0, "shadow");
        assert_eq!(e[0].2, b"container-shadow", "{p}");
    }
    // A directory archive names entries `<base>/…` and stat says it is a directory.
    let mut out = Vec::new();
    let st = archive(&f.root, &[], "/etc", &mut out).unwrap();
    assert_ne!(st.mode & (1 << 31), 0);
    let e: Vec<String> = names(&out).into_iter().map(|x| x.0).collect();
    assert_eq!(e, vec!["etc/", "etc/shadow"]);
    assert_eq!(
        stat(&f.root, &[], "/nope").unwrap_err().kind(),
        crate::ErrorKind::NotFound
    );
}

#[test]
fn mounts_redirect_paths() {
    let f = fixture();
    let vol = f.outside.join("vol");
    fs::create_dir_all(&vol).unwrap();
    fs::write(vol.join("data.txt"), b"in volume").unwrap();
    // The rootfs has its own (hidden) file under the mount point.
    fs::create_dir_all(f.root.join("data")).unwrap();
    fs::write(f.root.join("data/data.txt"), b"under the mount").unwrap();
    symlink("/data", f.root.join("dlink")).unwrap();
    let mounts = vec![FsMount {
        destination: "/data".into(),
        source: vol.clone(),
        read_only: true,
    }];
    for p in [
        "/data/data.txt",
        "/dlink/data.txt",
        "/etc/../data/./data.txt",
    ] {
        let mut out = Vec::new();
        archive(&f.root, &mounts, p, &mut out).unwrap();
        assert_eq!(names(&out)[0].2, b"in volume", "{p}");
        assert_eq!(stat(&f.root, &mounts, p).unwrap().size, 9, "{p}");
    }
    // The mount point itself stats as the volume's root, named after the destination.
    let st = stat(&f.root, &mounts, "/data").unwrap();
    assert_eq!(st.name, "data");
    assert_ne!(st.mode & (1 << 31), 0);
    let t = tar_of(&[("x", tar::EntryType::Regular, b"x", "")]);
    for p in ["/data", "/dlink", "/data/"] {
        let e = extract(&f.root, &mounts, p, root0(), t.as_slice()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Forbidden, "{p}");
        assert_eq!(e.to_string(), "mounted volume is marked read-only");
    }
    // A tar extracted into `/` that reaches into the read-only mount is refused whole.
    let t = tar_of(&[
        ("etc/new", tar::EntryType::Regular, b"x", ""),
        ("data/x", tar::EntryType::Regular, b"x", ""),
    ]);
    let e = extract(&f.root, &mounts, "/", root0(), t.as_slice()).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Forbidden);
    assert!(!f.root.join("etc/new").exists(), "nothing written");
    // --read-only: the rootfs refuses, a writable mount still takes files.
    let rw = vec![FsMount {
        destination: "/data".into(),
        source: vol.clone(),
        read_only: false,
    }];
    let ro_root = ExtractOpts {
        rootfs_read_only: true,
        ..Default::default()
    };
    let t = tar_of(&[("x", tar::EntryType::Regular, b"x", "")]);
    let e = extract(&f.root, &rw, "/etc", ro_root, t.as_slice()).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Forbidden);
    assert_eq!(e.to_string(), "container rootfs is marked read-only");
    if berth_testutil::require_root("mounts_redirect_paths") {
        extract(&f.root, &rw, "/data", ro_root, t.as_slice()).unwrap();
        assert_eq!(fs::read(vol.join("x")).unwrap(), b"x");
    }
}

#[test]
fn archive_descends_into_mounts_and_extract_routes_into_them() {
    if !berth_testutil::require_root("archive_descends_into_mounts") {
        return;
    }
    let f = fixture();
    let (vol, bind) = (f.outside.join("vol"), f.outside.join("bind"));
    fs::create_dir_all(vol.join("sub")).unwrap();
    fs::write(vol.join("sub/v.txt"), b"volume").unwrap();
    fs::create_dir_all(&bind).unwrap();
    fs::write(f.outside.join("one-file"), b"file bind").unwrap();
    fs::create_dir_all(f.root.join("srv")).unwrap();
    fs::write(f.root.join("srv/own"), b"rootfs").unwrap();
    let mounts = vec![
        // /srv/vol has no directory in the rootfs (a created container).
        FsMount {
            destination: "/srv/vol".into(),
            source: vol.clone(),
            read_only: false,
        },
        FsMount {
            destination: "/srv/bind".into(),
            source: bind.clone(),
            read_only: false,
        },
        FsMount {
            destination: "/srv/file".into(),
            source: f.outside.join("one-file"),
            read_only: true,
        },
    ];
    let mut out = Vec::new();
    archive(&f.root, &mounts, "/srv", &mut out).unwrap();
    let got: Vec<(String, Vec<u8>)> = names(&out).into_iter().map(|x| (x.0, x.2)).collect();
    let want: Vec<(String, Vec<u8>)> = [
        ("srv/", ""),
        ("srv/bind/", ""),
        ("srv/file", "file bind"),
        ("srv/own", "rootfs"),
        ("srv/vol/", ""),
        ("srv/vol/sub/", ""),
        ("srv/vol/sub/v.txt", "volume"),
    ]
    .iter()
    .map(|(n, d)| (n.to_string(), d.as_bytes().to_vec()))
    .collect();
    assert_eq!(got, want);
    // A stat of the file bind is the host file's.
    assert_eq!(stat(&f.root, &mounts, "/srv/file").unwrap().size, 9);
    // Extracting a tree into /srv: entries under a mount land in that mount.
    let t = tar_of(&[
        ("vol", tar::EntryType::Directory, b"", ""),
        ("vol/new.txt", tar::EntryType::Regular, b"new", ""),
        ("bind/deep/b.txt", tar::EntryType::Regular, b"b", ""),
        ("top.txt", tar::EntryType::Regular, b"t", ""),
    ]);
    extract(&f.root, &mounts, "/srv", root0(), t.as_slice()).unwrap();
    assert_eq!(fs::read(vol.join("new.txt")).unwrap(), b"new");
    assert_eq!(fs::read(bind.join("deep/b.txt")).unwrap(), b"b");
    assert_eq!(fs::read(f.root.join("srv/top.txt")).unwrap(), b"t");
    assert!(
        !f.root.join("srv/vol").exists(),
        "nothing under the mount point"
    );
    // A hard link across two roots is refused before anything is written.
    let t = tar_of(&[
        ("vol/h1", tar::EntryType::Regular, b"h", ""),
        ("h2", tar::EntryType::Link, b"", "vol/h1"),
    ]);
    let e = extract(&f.root, &mounts, "/srv", root0(), t.as_slice()).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Invalid, "{e}");
    assert!(!vol.join("h1").exists());
    // Writing over a read-only file mount is refused.
    let t = tar_of(&[("file", tar::EntryType::Regular, b"x", "")]);
    assert!(extract(&f.root, &mounts, "/srv", root0(), t.as_slice()).is_err());
    assert_eq!(fs::read(f.outside.join("one-file")).unwrap(), b"file bind");
}

#[test]
fn changes_and_export() {
    if !berth_testutil::require_root("changes_and_export") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
    fs::create_dir_all(lower.join("etc")).unwrap();
    fs::write(lower.join("etc/passwd"), b"x").unwrap();
    fs::write(lower.join("gone"), b"x").unwrap();
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::write(upper.join("etc/passwd"), b"y").unwrap();
    fs::write(upper.join("new"), b"n").unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        upper.join("gone"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let c = changes(&upper, std::slice::from_ref(&lower)).unwrap();
    let got: Vec<(&str, u8)> = c.iter().map(|c| (c.path.as_str(), c.kind)).collect();
    assert_eq!(
        got,
        vec![("/etc", 0), ("/etc/passwd", 0), ("/gone", 2), ("/new", 1)]
    );
    let mut out = Vec::new();
    export(&lower, &mut out).unwrap();
    let e: Vec<String> = names(&out).into_iter().map(|x| x.0).collect();
    assert_eq!(e, vec!["etc/", "etc/passwd", "gone"]);
}

#[test]
fn mount_points_are_created_inside_the_rootfs() {
    let f = fixture();
    let dir = f.outside.join("d");
    fs::create_dir_all(&dir).unwrap();
    let file = f.outside.join("file");
    fs::write(&file, b"x").unwrap();
    symlink("../../../..", f.root.join("esc")).unwrap();
    let m = |dest: &str, source: &Path| FsMount {
        destination: dest.into(),
        source: source.to_path_buf(),
        read_only: false,
    };
    let mounts = vec![
        m("/a/b/c", &dir),
        m("/etc/x.conf", &file),
        m("/esc/m", &dir),
        m("/etc", &dir),
    ];
    ensure_mount_points(&f.root, &mounts).unwrap();
    ensure_mount_points(&f.root, &mounts).unwrap();
    assert!(f.root.join("a/b/c").is_dir());
    assert!(f.root.join("etc/x.conf").is_file());
    assert!(
        f.root.join("m").is_dir(),
        "the symlinked parent resolved inside the root"
    );
    assert!(outside_is_empty_but(&f, &["d", "file"]));
    // Now the nested mount is reachable by path, and `/a` archives down into it.
    fs::write(dir.join("in-d"), b"d").unwrap();
    let mut out = Vec::new();
    archive(&f.root, &mounts[..1], "/a", &mut out).unwrap();
    let e: Vec<String> = names(&out).into_iter().map(|x| x.0).collect();
    assert_eq!(e, ["a/", "a/b/", "a/b/c/", "a/b/c/in-d"]);
}

fn outside_is_empty_but(f: &Fixture, keep: &[&str]) -> bool {
    fs::read_dir(&f.outside)
        .unwrap()
        .flatten()
        .all(|e| keep.contains(&e.file_name().to_str().unwrap()))
}

/// Hostile or broken archives are the client's error (400, kind Invalid), never a 500, and
/// leave the container and the host as they were. Before, a body that is not a tar, a
/// truncated tar and corrupt compression all answered 500.
#[test]
fn broken_or_hostile_archives_are_invalid_not_internal() {
    if !berth_testutil::require_root("broken_or_hostile_archives_are_invalid_not_internal") {
        return;
    }
    let f = fixture();
    let abs_out = f.outside.to_str().unwrap().to_string();
    let big = vec![b'x'; 4096];
    let whole = tar_of(&[("big.bin", tar::EntryType::Regular, &big, "")]);
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gz.extend_from_slice(b"this is no deflate stream at all, just bytes");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text body", b"hello, this is not a tar archive\n".to_vec()),
        ("512 bytes of junk", vec![b'j'; 512]),
        ("truncated in a header", whole[..300].to_vec()),
        ("truncated in the data", whole[..512 + 1000].to_vec()),
        ("corrupt gzip", gz),
        (
            "dot-dot escape",
            tar_of(&[("../../outside/x", tar::EntryType::Regular, b"pwned", "")]),
        ),
        (
            "hard link out",
            tar_of(&[("h", tar::EntryType::Link, b"", "../../outside/h")]),
        ),
    ];
    for (what, body) in cases {
        let e = extract(&f.root, &[], "/dst", root0(), body.as_slice()).expect_err(what);
        assert_eq!(e.kind(), crate::ErrorKind::Invalid, "{what}: {e}");
        assert!(!e.to_string().is_empty());
    }
    // An absolute symlink, then a file written through it: confined to the rootfs.
    let t = tar_of(&[
        ("link", tar::EntryType::Symlink, b"", &abs_out),
        ("link/pwned", tar::EntryType::Regular, b"pwned", ""),
    ]);
    if let Err(e) = extract(&f.root, &[], "/dst", root0(), t.as_slice()) {
        assert_ne!(e.kind(), crate::ErrorKind::Internal, "{e}");
    }
    assert!(outside_is_empty(&f), "nothing escaped to {abs_out}");
    assert!(
        !f.root.join("dst/big.bin").exists(),
        "a truncated archive wrote"
    );
    assert_eq!(
        fs::read(f.root.join("etc/shadow")).unwrap(),
        b"container-shadow"
    );
}

/// Raw entry names, as a Go client reads them (no normalising of a leading `/`).
fn raw_names(tar_bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

#[test]
fn archive_names_follow_the_path_as_asked() {
    let f = fixture();
    symlink("/", f.root.join("etc/root")).unwrap();
    let tar_of_path = |p: &str| {
        let mut out = Vec::new();
        archive(&f.root, &[], p, &mut out).unwrap();
        raw_names(&out)
    };
    // moby's TestCopyFromContainer: `/` is named `/`, its entries `/etc/…` (was `./`, `etc/`).
    let all = tar_of_path("/");
    assert_eq!(all[0], "/");
    assert!(all.contains(&"/etc/shadow".to_string()), "{all:?}");
    // A link to `/` followed by a trailing slash is named after the link (was `./`).
    let via = tar_of_path("/etc/root/");
    assert_eq!(via[0], "root/");
    assert!(via.contains(&"root/etc/shadow".to_string()), "{via:?}");
    // `/.` copies the contents.
    assert!(tar_of_path("/.").contains(&"etc/shadow".to_string()));
    // A trailing slash on a file is an error naming the path (was the file).
    let e = archive(&f.root, &[], "/etc/shadow/", &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
    assert!(stat(&f.root, &[], "/etc/shadow/").is_err());
}
