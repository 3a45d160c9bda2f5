//! Store-level tests: blobs and resumable ingest, loading the shared images (checked against
//! skopeo), save round trips, docker-save format, all-or-nothing loads, tags, removal, GC,
//! import and disk usage.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use berth_oci::{Digest, Reference};
use berth_store::{load_archive, save_archive, ErrorKind, ImportOptions, Store};

fn fresh() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("store")).unwrap();
    (d, s)
}

/// (manifest digest, config digest) as skopeo reports them for an oci-archive.
fn skopeo_digests(archive: &str) -> (Digest, Digest) {
    let out = Command::new("skopeo")
        .args(["inspect", &format!("oci-archive:{archive}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let md: Digest = v["Digest"].as_str().unwrap().parse().unwrap();
    let cfg = Command::new("skopeo")
        .args([
            "inspect",
            "--config",
            "--raw",
            &format!("oci-archive:{archive}"),
        ])
        .output()
        .unwrap();
    assert!(cfg.status.success());
    (md, Digest::of(&cfg.stdout))
}

fn load_file(s: &Store, p: &Path) -> Vec<berth_store::ImageRecord> {
    load_archive(s, fs::File::open(p).unwrap()).unwrap()
}

/// Everything under the store root except SQLite's own files, for before/after comparisons.
fn content_tree(s: &Store) -> Vec<String> {
    let mut v: Vec<String> = common::tree(s.root())
        .into_keys()
        .map(|p| p.strip_prefix(s.root()).unwrap().display().to_string())
        .filter(|p| !p.starts_with("meta.db"))
        .collect();
    v.sort();
    v
}

#[test]
fn blobs_and_resumable_ingest() {
    let (_d, s) = fresh();
    let d = s.put_blob(b"hello").unwrap();
    assert_eq!(d, Digest::of(b"hello"));
    assert!(s.has_blob(&d));
    assert_eq!(s.read_blob(&d).unwrap(), b"hello");
    assert_eq!(
        s.read_blob(&Digest::of(b"nope")).unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Wrong expected digest: nothing lands in blobs/.
    let err = s
        .put_blob_reader(&b"abc"[..], Some(&Digest::of(b"xyz")))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(!s.has_blob(&Digest::of(b"abc")));
    assert_eq!(fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);

    // Interrupted download resumes at the offset and verifies ALL bytes.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let want = Digest::of(&data);
    {
        let mut ing = s.ingest(&want).unwrap();
        assert_eq!(ing.offset(), 0);
        ing.write_all(&data[..40_000]).unwrap();
        // A second concurrent ingest of the same digest is refused.
        assert_eq!(s.ingest(&want).unwrap_err().kind(), ErrorKind::Conflict);
    } // dropped: partial kept
    let mut ing = s.ingest(&want).unwrap();
    assert_eq!(ing.offset(), 40_000);
    ing.write_all(&data[40_000..]).unwrap();
    assert_eq!(ing.commit().unwrap(), 100_000);
    assert_eq!(s.read_blob(&want).unwrap(), data);

    // A corrupt download is deleted on commit.
    let want2 = Digest::of(b"good");
    let mut ing = s.ingest(&want2).unwrap();
    ing.write_all(b"evil").unwrap();
    assert_eq!(ing.commit().unwrap_err().kind(), ErrorKind::Invalid);
    assert!(!s.has_blob(&want2));
    assert_eq!(s.ingest(&want2).unwrap().offset(), 0);
}

#[test]
fn load_busybox_matches_skopeo_and_resolves_like_docker() {
    if !berth_testutil::require_root("load_busybox_matches_skopeo")
        || !berth_testutil::require_cmds("load_busybox_matches_skopeo", &["skopeo"])
    {
        return;
    }
    let Some(bb) = berth_testutil::image("load_busybox_matches_skopeo", "busybox") else {
        return;
    };
    let (md, cfg) = skopeo_digests(bb.to_str().unwrap());
    let (d, s) = fresh();
    let imgs = load_file(&s, &bb);
    assert_eq!(imgs.len(), 1);
    let img = &imgs[0];
    assert_eq!(img.id, cfg);
    assert_eq!(img.manifest_digest, md);
    assert_eq!(img.repo_tags, ["busybox:latest"]);
    assert_eq!(img.repo_digests, [format!("busybox@{md}")]);
    assert_eq!(img.config.config.cmd, Some(vec!["sh".to_string()]));
    assert!(img.size > 500_000, "size {}", img.size);
    for q in [
        "busybox".to_string(),
        "busybox:latest".to_string(),
        "docker.io/library/busybox:latest".to_string(),
        format!("busybox@{md}"),
        cfg.to_string(),
        cfg.short().to_string(),
        cfg.hex()[..20].to_string(),
    ] {
        assert_eq!(s.image(&q).unwrap().id, cfg, "{q}");
    }
    assert_eq!(
        s.image("busybox:other").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.image("ffffffffffff").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let layers = s.image_layers(&cfg).unwrap();
    assert_eq!(layers.len(), 1);
    assert!(layers[0].join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(layers[0].join("bin/sh")).unwrap().to_str(),
        Some("/bin/busybox")
    );
    // Loading again is idempotent and reuses the snapshot.
    load_file(&s, &bb);
    assert_eq!(s.images().unwrap().len(), 1);
    assert_eq!(fs::read_dir(s.root().join("snapshots")).unwrap().count(), 1);
    // Survives reopening.
    drop(s);
    let s = Store::open(&d.path().join("store")).unwrap();
    assert_eq!(s.image("busybox").unwrap().id, cfg);
    assert_eq!(s.image_layers(&cfg).unwrap(), layers);
}

#[test]
fn save_round_trips_and_skopeo_reads_it() {
    if !berth_testutil::require_root("save_round_trips")
        || !berth_testutil::require_cmds("save_round_trips", &["skopeo"])
    {
        return;
    }
    let Some(bb) = berth_testutil::image("save_round_trips", "busybox") else {
        return;
    };
    let (d, s) = fresh();
    let img = load_file(&s, &bb).remove(0);
    let out = d.path().join("saved.tar");
    let r = Reference::parse("busybox:latest").unwrap();
    save_archive(
        &s,
        &[(img.clone(), vec![r])],
        fs::File::create(&out).unwrap(),
    )
    .unwrap();
    let (md, cfg) = skopeo_digests(out.to_str().unwrap());
    assert_eq!((md, cfg), (img.manifest_digest.clone(), img.id.clone()));
    // docker's manifest.json is there too and points at real members.
    let mut ar = tar::Archive::new(fs::File::open(&out).unwrap());
    let mut names = Vec::new();
    let mut mj = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().display().to_string();
        if n == "manifest.json" {
            e.read_to_end(&mut mj).unwrap();
        }
        names.push(n);
    }
    let mj: serde_json::Value = serde_json::from_slice(&mj).unwrap();
    assert_eq!(mj[0]["RepoTags"][0], "busybox:latest");
    assert!(names.contains(&mj[0]["Config"].as_str().unwrap().to_string()));
    // Load the saved archive into another store: same image.
    let s2 = Store::open(&d.path().join("store2")).unwrap();
    let again = load_file(&s2, &out).remove(0);
    assert_eq!(again.id, img.id);
    assert_eq!(again.manifest_digest, img.manifest_digest);
    assert_eq!(again.repo_tags, ["busybox:latest"]);
}

/// Decompress busybox's layer and write it as a classic `docker save` tar.
fn legacy_docker_save(bb: &Path, out: &Path) -> Digest {
    let mut ar = tar::Archive::new(fs::File::open(bb).unwrap());
    let mut blobs = std::collections::HashMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().display().to_string();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        blobs.insert(n, b);
    }
    let idx: serde_json::Value = serde_json::from_slice(&blobs["index.json"]).unwrap();
    let md = idx["manifests"][0]["digest"].as_str().unwrap().to_string();
    let m: serde_json::Value =
        serde_json::from_slice(&blobs[&format!("blobs/sha256/{}", &md[7..])]).unwrap();
    let cfg_hex = &m["config"]["digest"].as_str().unwrap()[7..];
    let layer_hex = &m["layers"][0]["digest"].as_str().unwrap()[7..];
    let mut layer = Vec::new();
    flate2::read::GzDecoder::new(&blobs[&format!("blobs/sha256/{layer_hex}")][..])
        .read_to_end(&mut layer)
        .unwrap();
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add(
        "manifest.json",
        format!(r#"[{{"Config":"{cfg_hex}.json","RepoTags":["legacy/bb:1"],"Layers":["abc/layer.tar"]}}]"#)
            .as_bytes(),
    );
    add(
        &format!("{cfg_hex}.json"),
        &blobs[&format!("blobs/sha256/{cfg_hex}")],
    );
    add("abc/layer.tar", &layer);
    add("abc/VERSION", b"1.0");
    b.finish().unwrap();
    Digest::from_hex(cfg_hex).unwrap()
}

#[test]
fn loads_classic_docker_save_format() {
    if !berth_testutil::require_root("loads_classic_docker_save_format") {
        return;
    }
    let Some(bb) = berth_testutil::image("loads_classic_docker_save_format", "busybox") else {
        return;
    };
    let (d, s) = fresh();
    let out = d.path().join("legacy.tar");
    let cfg = legacy_docker_save(&bb, &out);
    let img = load_file(&s, &out).remove(0);
    assert_eq!(img.id, cfg);
    assert_eq!(img.repo_tags, ["legacy/bb:1"]);
    assert_eq!(img.layers[0].media_type, berth_oci::media_type::OCI_LAYER);
    assert!(s.image_layers(&cfg).unwrap()[0]
        .join("bin/busybox")
        .is_file());
}

/// Every entry of a tar: path → (type, bytes or link target).
fn tar_entries(p: &Path) -> std::collections::BTreeMap<String, (tar::EntryType, Vec<u8>)> {
    let mut ar = tar::Archive::new(fs::File::open(p).unwrap());
    let mut out = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().display().to_string();
        let t = e.header().entry_type();
        let mut b = Vec::new();
        if t == tar::EntryType::Symlink {
            b = e.link_name_bytes().unwrap().into_owned();
        } else {
            e.read_to_end(&mut b).unwrap();
        }
        out.insert(n, (t, b));
    }
    out
}

/// What dockerd 20.10 writes for old tools besides manifest.json: `repositories` naming the
/// top layer's v1 id, and `<v1 id>/{VERSION,json,layer.tar}`. The id is moby's `v1.CreateID`
/// (d12d09fa… computed by moby's own Go code for this config), `layer.tar` a link to the blob.
/// The legacy reader of skopeo (`docker-archive:`) reads the archive.
#[test]
fn save_writes_dockerd_legacy_entries() {
    let t = "save_writes_dockerd_legacy_entries";
    if !berth_testutil::require_root(t) || !berth_testutil::require_cmds(t, &["skopeo"]) {
        return;
    }
    let Some(bb) = berth_testutil::image(t, "busybox") else {
        return;
    };
    let (d, s) = fresh();
    let img = load_file(&s, &bb).remove(0);
    let out = d.path().join("saved.tar");
    let refs = vec![
        Reference::parse("busybox:latest").unwrap(),
        Reference::parse("example.com/bb:v1").unwrap(),
    ];
    save_archive(&s, &[(img.clone(), refs)], fs::File::create(&out).unwrap()).unwrap();
    let e = tar_entries(&out);
    let v1 = "d12d09fa53ecff2efd444187f7df62f160b52c7b22dbaae0c61efe6f31ef1ce0";
    let repos: serde_json::Value = serde_json::from_slice(&e["repositories"].1).unwrap();
    assert_eq!(
        repos,
        serde_json::json!({"busybox": {"latest": v1}, "example.com/bb": {"v1": v1}})
    );
    assert_eq!(e[&format!("{v1}/VERSION")].1, b"1.0");
    let json: serde_json::Value = serde_json::from_slice(&e[&format!("{v1}/json")].1).unwrap();
    assert_eq!(json["id"], v1);
    assert_eq!(json["os"], "linux");
    assert_eq!(json["config"]["Cmd"], serde_json::json!(["sh"]));
    let (kind, target) = &e[&format!("{v1}/layer.tar")];
    assert_eq!(*kind, tar::EntryType::Symlink);
    let target = String::from_utf8_lossy(target).into_owned();
    assert_eq!(
        target,
        format!("../blobs/sha256/{}", img.layers[0].digest.hex())
    );
    assert!(
        e.contains_key(&target[3..]),
        "{target} is not in the archive"
    );

    let o = Command::new("skopeo")
        .args(["inspect", &format!("docker-archive:{}", out.display())])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);

    // And berth loads its own archive again.
    let s2 = Store::open(&d.path().join("store2")).unwrap();
    let again = load_file(&s2, &out);
    assert_eq!(again[0].id, img.id);
}

/// A `docker save` archive in the layout of dockerd 20.10 / Debian's docker.io, as skopeo's
/// `docker-archive:` writes it (uncompressed `<digest>.tar` layers, `<config>.json`,
/// `<v1 id>/layer.tar` symlinks, `repositories`), loads with its name.
#[test]
fn loads_a_skopeo_docker_archive() {
    let t = "loads_a_skopeo_docker_archive";
    if !berth_testutil::require_root(t) || !berth_testutil::require_cmds(t, &["skopeo"]) {
        return;
    }
    let Some(bb) = berth_testutil::image(t, "busybox") else {
        return;
    };
    let (d, s) = fresh();
    let out = d.path().join("skopeo.tar");
    let o = Command::new("skopeo")
        .arg("copy")
        .arg("-q")
        .arg(format!("oci-archive:{}", bb.display()))
        .arg(format!("docker-archive:{}:legacy/bb:2", out.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = tar_entries(&out);
    assert!(e.contains_key("repositories"), "{:?}", e.keys());
    let (_, cfg) = skopeo_digests(bb.to_str().unwrap());
    let img = load_file(&s, &out).remove(0);
    assert_eq!(img.id, cfg);
    assert_eq!(img.repo_tags, ["legacy/bb:2"]);
    assert!(s.image_layers(&cfg).unwrap()[0]
        .join("bin/busybox")
        .is_file());
}

/// Rewrite busybox's archive with a config whose diff_id is wrong (all digests consistent).
fn lying_archive(bb: &Path, out: &Path) {
    let mut ar = tar::Archive::new(fs::File::open(bb).unwrap());
    let mut files = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().display().to_string();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        files.push((n, b));
    }
    let get = |n: &str| files.iter().find(|f| f.0 == n).unwrap().1.clone();
    let idx: serde_json::Value = serde_json::from_slice(&get("index.json")).unwrap();
    let md = idx["manifests"][0]["digest"].as_str().unwrap().to_string();
    let mut m: serde_json::Value =
        serde_json::from_slice(&get(&format!("blobs/sha256/{}", &md[7..]))).unwrap();
    let cfg_d = m["config"]["digest"].as_str().unwrap().to_string();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&get(&format!("blobs/sha256/{}", &cfg_d[7..]))).unwrap();
    cfg["rootfs"]["diff_ids"][0] = Digest::of(b"not the layer").to_string().into();
    let cb = serde_json::to_vec(&cfg).unwrap();
    m["config"]["digest"] = Digest::of(&cb).to_string().into();
    m["config"]["size"] = cb.len().into();
    let mb = serde_json::to_vec(&m).unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"liar:latest"}}}}]}}"#,
        Digest::of(&mb),
        mb.len()
    );
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    let mut add = |name: String, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    for (n, data) in &files {
        if n.starts_with("blobs/sha256/") && n.len() > 20 {
            add(n.clone(), data);
        }
    }
    add(format!("blobs/sha256/{}", Digest::of(&cb).hex()), &cb);
    add(format!("blobs/sha256/{}", Digest::of(&mb).hex()), &mb);
    add("index.json".into(), index.as_bytes());
    b.finish().unwrap();
}

#[test]
fn failed_loads_leave_the_store_exactly_as_before() {
    if !berth_testutil::require_root("failed_loads_leave_the_store") {
        return;
    }
    let Some(bb) = berth_testutil::image("failed_loads_leave_the_store", "busybox") else {
        return;
    };
    let (d, s) = fresh();
    // A store holding one unrelated image (imported) so "as before" is not just "empty".
    let rootfs = common::tar_of(&[common::E::File("hello", b"world")]);
    berth_store::import_rootfs(&s, &rootfs[..], ImportOptions::default()).unwrap();
    let before = content_tree(&s);
    let images_before = s.images().unwrap();

    // 1. A config whose diff_id does not match the layer: fails while unpacking.
    let liar = d.path().join("liar.tar");
    lying_archive(&bb, &liar);
    let err = load_archive(&s, fs::File::open(&liar).unwrap()).unwrap_err();
    assert!(
        matches!(err, berth_store::StoreError::DigestMismatch { .. }),
        "{err}"
    );
    assert_eq!(content_tree(&s), before);
    assert_eq!(s.images().unwrap(), images_before);

    // 2. A corrupted blob (bytes do not match its name): fails while streaming.
    let mut bytes = fs::read(&bb).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    assert!(load_archive(&s, &bytes[..]).is_err());
    assert_eq!(content_tree(&s), before);

    // 3. A truncated archive and a non-archive.
    assert!(load_archive(&s, &fs::read(&bb).unwrap()[..300_000]).is_err());
    assert!(load_archive(&s, &b"definitely not a tar file, not even close......"[..]).is_err());
    assert_eq!(content_tree(&s), before);
    assert_eq!(s.images().unwrap(), images_before);
}

#[test]
fn tags_untag_remove_and_gc() {
    if !berth_testutil::require_root("tags_untag_remove_and_gc") {
        return;
    }
    let Some(bb) = berth_testutil::image("tags_untag_remove_and_gc", "busybox") else {
        return;
    };
    let (_d, s) = fresh();
    let img = load_file(&s, &bb).remove(0);
    let r = Reference::parse("example.com/team/bb:v1").unwrap();
    s.tag(&img.id, &r).unwrap();
    assert_eq!(s.image("example.com/team/bb:v1").unwrap().id, img.id);
    let mut tags = s.image("busybox").unwrap().repo_tags;
    tags.sort();
    assert_eq!(tags, ["busybox:latest", "example.com/team/bb:v1"]);
    // `sha256:x` would read as an image ID (was tagged; moby's TestTagInvalidReference).
    let e = s
        .tag(&img.id, &Reference::parse("sha256:sometag").unwrap())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e
        .to_string()
        .contains("ambiguous tag using digest algorithm"));
    s.untag(&r).unwrap();
    assert_eq!(s.untag(&r).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        s.image("example.com/team/bb:v1").unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // An orphan blob and a stale partial are garbage; the image's content is not.
    let orphan = s.put_blob(b"orphan").unwrap();
    {
        let mut ing = s.ingest(&Digest::of(b"partial")).unwrap();
        ing.write_all(b"par").unwrap();
    }
    // `garbage` (system check) lists what gc removes, and removes nothing itself.
    let g = s.garbage().unwrap();
    assert_eq!(g.blobs, vec![s.blob_path(&orphan)]);
    assert!(g.snapshots.is_empty());
    assert!(s.blob_path(&orphan).exists());
    // At daemon start: the orphan goes, the partial stays for a resumed pull.
    let kept = s.gc_keep_partials().unwrap();
    assert_eq!(kept.blobs_removed, vec![orphan.clone()]);
    assert_eq!(kept.partials_removed, 0);
    let orphan = s.put_blob(b"orphan").unwrap();
    let gc = s.gc().unwrap();
    assert_eq!(gc.blobs_removed, vec![orphan]);
    assert!(s.garbage().unwrap().is_empty());
    assert_eq!(gc.partials_removed, 1);
    assert_eq!(gc.snapshots_removed, 0);
    assert!(s.image_layers(&img.id).unwrap()[0]
        .join("bin/busybox")
        .exists());

    let rep = s.remove_image(&img.id).unwrap();
    assert_eq!(rep.untagged, ["busybox:latest"]);
    assert_eq!(rep.deleted[0], img.id);
    assert!(rep.bytes_freed > 1_000_000, "{}", rep.bytes_freed);
    assert_eq!(
        fs::read_dir(s.root().join("blobs/sha256")).unwrap().count(),
        0
    );
    assert_eq!(fs::read_dir(s.root().join("snapshots")).unwrap().count(), 0);
    assert!(s.images().unwrap().is_empty());
    assert_eq!(s.gc().unwrap().bytes_freed, 0);
}

#[test]
fn import_rootfs_makes_a_one_layer_image() {
    if !berth_testutil::require_root("import_rootfs_makes_a_one_layer_image") {
        return;
    }
    let (_d, s) = fresh();
    let rootfs = common::tar_of(&[
        common::E::Dir("bin/"),
        common::E::File("bin/sh", b"#!fake"),
        common::E::Symlink("bin/bash", "sh"),
    ]);
    let opts = ImportOptions {
        changes: berth_oci::ImageRuntimeConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        },
        tags: vec![Reference::parse("imported:1").unwrap()],
        comment: None,
        platform: None,
    };
    let img = berth_store::import_rootfs(&s, &rootfs[..], opts).unwrap();
    assert_eq!(img.repo_tags, ["imported:1"]);
    assert_eq!(img.config.rootfs.diff_ids, vec![Digest::of(&rootfs)]);
    assert_eq!(img.config.config.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(
        img.config.history[0].comment.as_deref(),
        Some("Imported from -")
    );
    let layer = &s.image_layers(&img.id).unwrap()[0];
    assert_eq!(fs::read(layer.join("bin/sh")).unwrap(), b"#!fake");
    // The layer blob is the tar itself (compressed only when pushed): its digest is the diff id.
    assert_eq!(img.layers[0].digest, Digest::of(&rootfs));
    assert_eq!(img.layers[0].media_type, berth_oci::media_type::OCI_LAYER);
    assert_eq!(
        fs::read(s.blob_path(&img.layers[0].digest)).unwrap(),
        rootfs
    );
    // What a push sends: the same manifest with a gzip layer that decompresses to the input,
    // made once (a second call finds the same blob).
    let manifest = s.read_blob(&img.manifest_digest).unwrap();
    let mt = s.manifest_media_type(&img.id).unwrap();
    let pushed = s
        .distributable_manifest(&manifest, &mt)
        .unwrap()
        .expect("a manifest with compressed layers");
    let m = berth_oci::Manifest::from_slice(&pushed).unwrap();
    assert_eq!(
        m.config,
        berth_oci::Manifest::from_slice(&manifest).unwrap().config
    );
    assert_eq!(
        m.layers[0].media_type,
        berth_oci::media_type::OCI_LAYER_GZIP
    );
    assert_eq!(
        m.layers[0].size as u64,
        s.blob_size(&m.layers[0].digest).unwrap()
    );
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(s.blob_path(&m.layers[0].digest)).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(raw, rootfs);
    assert_eq!(
        s.distributable_manifest(&manifest, &mt).unwrap().unwrap(),
        pushed
    );
    // A manifest whose layers are all compressed is pushed as it is.
    assert_eq!(s.distributable_manifest(&pushed, &mt).unwrap(), None);
    // Registering what was pushed (as a push records its repo digest) keeps the image usable.
    let cfg = s.read_blob(&img.id).unwrap();
    let again = s.register_image(&pushed, &cfg, &[]).unwrap();
    assert_eq!(again.id, img.id);
    let layer = &s.image_layers(&img.id).unwrap()[0];
    assert_eq!(fs::read(layer.join("bin/sh")).unwrap(), b"#!fake");
}

#[test]
fn debian_disk_usage() {
    if !berth_testutil::require_root("debian_disk_usage") {
        return;
    }
    let Some(deb) = berth_testutil::image("debian_disk_usage", "debian-bookworm-minbase") else {
        return;
    };
    let (_d, s) = fresh();
    let img = load_file(&s, &deb).remove(0);
    assert_eq!(img.repo_tags, ["debian:bookworm-minbase"]);
    assert!(s.image_layers(&img.id).unwrap()[0]
        .join("usr/bin/apt")
        .exists());
    let du = s.disk_usage().unwrap();
    let archive = fs::metadata(&deb).unwrap().len();
    eprintln!(
        "debian bookworm minbase: archive {archive} B, blobs {} B, snapshots {} B, metadata {} B, total {} B, image size (uncompressed content) {} B",
        du.blobs, du.snapshots, du.metadata, du.total(), img.size
    );
    assert!(du.blobs >= archive * 9 / 10 && du.blobs <= archive * 11 / 10);
    assert!(du.snapshots > du.blobs);
    assert_eq!(du.images.len(), 1);
    assert_eq!(du.images[0].size, img.size);
}
