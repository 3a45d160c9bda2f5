//! plan_mounts: Docker's parsing and errors; apply/seed against a temp volume store.

use super::*;
use crate::containers::stored::{MountBindOptions, MountTmpfsOptions, MountVolumeOptions};

fn err(binds: &[&str], mounts: &[Mount]) -> String {
    let b: Vec<String> = binds.iter().map(|s| s.to_string()).collect();
    plan_mounts(&b, mounts, &HashMap::new(), &[], &[])
        .unwrap_err()
        .to_string()
}

fn plan(binds: &[&str]) -> Vec<PlannedMount> {
    let b: Vec<String> = binds.iter().map(|s| s.to_string()).collect();
    plan_mounts(&b, &[], &HashMap::new(), &[], &[]).unwrap()
}

fn mount(t: MountType, src: &str, target: &str) -> Mount {
    Mount {
        typ: Some(t),
        source: Some(src.into()).filter(|s: &String| !s.is_empty()),
        target: Some(target.into()),
        ..Default::default()
    }
}

#[test]
fn dash_v_forms() {
    let p = plan(&["data:/var/lib/data:ro,nocopy", "/host/dir:/mnt/", "/anon"]);
    assert_eq!(p.len(), 3);
    assert_eq!(p[0].destination, "/var/lib/data");
    assert!(p[0].read_only);
    assert!(
        matches!(&p[0].kind, MountKind::Volume { name: Some(n), nocopy: true, .. } if n == "data")
    );
    assert_eq!(p[0].mode, "ro,nocopy");
    assert_eq!(p[1].destination, "/mnt");
    assert!(
        matches!(&p[1].kind, MountKind::Bind { create: true, propagation, .. } if propagation == "rprivate")
    );
    assert!(matches!(&p[2].kind, MountKind::Volume { name: None, .. }));
    let p = plan(&["/h:/c:rslave,ro"]);
    assert!(matches!(&p[0].kind, MountKind::Bind { propagation, .. } if propagation == "rslave"));
}

#[test]
fn dash_v_errors() {
    assert_eq!(
        err(&["data:rel"], &[]),
        "invalid volume specification: 'data:rel': invalid mount config for type \"volume\": \
         invalid mount path: 'rel' mount path must be absolute"
    );
    assert_eq!(
        err(&["a:/b:c:d"], &[]),
        "invalid volume specification: 'a:/b:c:d'"
    );
    assert_eq!(err(&["a:/b:bogus"], &[]), "invalid mode: bogus");
    assert_eq!(err(&["/h:/b:nocopy"], &[]), "invalid mode: nocopy");
    assert_eq!(err(&["a:/b:ro,rw"], &[]), "invalid mode: ro,rw");
    assert!(err(&["/h:/"], &[]).contains("destination can't be '/'"));
    assert_eq!(err(&["a:/x", "b:/x/"], &[]), "Duplicate mount point: /x");
    assert_eq!(
        err(&["a:/x"], &[mount(MountType::VOLUME, "b", "/x")]),
        "Duplicate mount point: /x"
    );
}

#[test]
fn dash_dash_mount() {
    let mut tm = mount(MountType::TMPFS, "", "/run/t");
    tm.tmpfs_options = Some(MountTmpfsOptions {
        size_bytes: Some(1 << 20),
        mode: Some(0o1777),
        ..Default::default()
    });
    let mut v = mount(MountType::VOLUME, "vol1", "/v");
    v.read_only = Some(true);
    v.volume_options = Some(MountVolumeOptions {
        no_copy: Some(true),
        ..Default::default()
    });
    let mut b = mount(MountType::BIND, "/srv", "/srv");
    b.bind_options = Some(MountBindOptions {
        propagation: Some(MountBindOptionsPropagationEnum::RSHARED),
        ..Default::default()
    });
    let p = plan_mounts(&[], &[tm, v, b], &HashMap::new(), &[], &[]).unwrap();
    assert!(
        matches!(&p[0].kind, MountKind::Tmpfs { options } if options.contains(&"size=1048576".to_string()) && options.contains(&"mode=1777".to_string()))
    );
    assert!(p[1].read_only);
    assert!(matches!(&p[1].kind, MountKind::Volume { nocopy: true, .. }));
    assert!(
        matches!(&p[2].kind, MountKind::Bind { create: false, propagation, .. } if propagation == "rshared")
    );
    assert_eq!(
        err(&[], &[mount(MountType::BIND, "", "/x")]),
        "invalid mount config for type \"bind\": field Source must not be empty"
    );
    assert_eq!(
        err(&[], &[mount(MountType::VOLUME, "v", "rel")]),
        "invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"
    );
    assert_eq!(
        err(&[], &[mount(MountType::TMPFS, "src", "/t")]),
        "invalid mount config for type \"tmpfs\": field Source must not be specified"
    );
    let mut bv = mount(MountType::BIND, "/a", "/t");
    bv.volume_options = Some(MountVolumeOptions::default());
    assert!(err(&[], &[bv]).contains("field VolumeOptions must not be specified"));
}

#[test]
fn precedence_image_volumes_and_volumes_from() {
    let from = VolumesFrom {
        spec: "c1:ro".into(),
        mounts: plan(&["shared:/shared", "other:/data"]),
    };
    let tmpfs: HashMap<String, String> = [("/tmp".to_string(), "size=64k".to_string())].into();
    let p = plan_mounts(
        &["mine:/data".to_string()],
        &[],
        &tmpfs,
        &["/data".into(), "/var/cache".into()],
        &[from],
    )
    .unwrap();
    let by: HashMap<&str, &PlannedMount> = p.iter().map(|m| (m.destination.as_str(), m)).collect();
    assert_eq!(by.len(), 4);
    assert!(matches!(&by["/data"].kind, MountKind::Volume { name: Some(n), .. } if n == "mine"));
    assert!(matches!(
        &by["/var/cache"].kind,
        MountKind::Volume { name: None, .. }
    ));
    assert!(by["/shared"].read_only, ":ro of --volumes-from applies");
    assert!(
        matches!(&by["/tmp"].kind, MountKind::Tmpfs { options } if options.contains(&"size=64k".to_string()))
    );
    let bad = VolumesFrom {
        spec: "c1:xx".into(),
        mounts: vec![],
    };
    assert!(plan_mounts(&[], &[], &HashMap::new(), &[], &[bad]).is_err());
}

#[test]
fn apply_creates_acquires_and_seeds() {
    if !berth_testutil::require_root("apply_creates_acquires_and_seeds") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = VolumeStore::open(&t.path().join("volumes")).unwrap();
    let rootfs = t.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("var/cache/app")).unwrap();
    std::fs::write(rootfs.join("var/cache/app/seed.txt"), b"from image").unwrap();
    std::os::unix::fs::chown(
        rootfs.join("var/cache/app/seed.txt"),
        Some(1234),
        Some(5678),
    )
    .unwrap();
    let has_xattr = rustix::fs::setxattr(
        rootfs.join("var/cache/app/seed.txt"),
        "user.berth",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .is_ok();
    let p = plan_mounts(
        &["named:/var/cache".into(), "/etc".into()],
        &[mount(MountType::BIND, "/does/not/exist", "/b")],
        &HashMap::new(),
        &[],
        &[],
    )
    .unwrap();
    let e = apply_mounts(&store, "c1", &p).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid mount config for type \"bind\": bind source path does not exist: /does/not/exist"
    );
    let applied = apply_mounts(&store, "c1", &p[..2]).unwrap();
    assert_eq!(store.in_use("named"), vec!["c1".to_string()]);
    let anon = applied[1].point.name.clone().unwrap();
    assert_eq!(anon.len(), 64);
    assert_eq!(applied[0].spec.kind, "bind");
    assert_eq!(applied[0].spec.options, vec!["rbind", "rw"]);
    seed_volumes(&store, &rootfs, &applied).unwrap();
    let seeded = store.mountpoint("named").join("app/seed.txt");
    assert_eq!(std::fs::read(&seeded).unwrap(), b"from image");
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(&seeded).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 5678), "owner preserved");
    if has_xattr {
        let mut buf = [0u8; 16];
        let n = rustix::fs::getxattr(&seeded, "user.berth", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"kept", "xattr preserved");
    }
    // Not seeded twice (the volume is no longer new/empty), and released on rm.
    std::fs::write(store.mountpoint("named").join("app/seed.txt"), b"changed").unwrap();
    seed_volumes(&store, &rootfs, &applied).unwrap();
    assert_eq!(std::fs::read(&seeded).unwrap(), b"changed");
    store.release("c1");
    assert!(store.in_use("named").is_empty());
}
