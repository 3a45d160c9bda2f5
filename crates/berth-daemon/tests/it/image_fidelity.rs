//! Image fidelity (issue 14's image items) through the real docker CLI and the raw API:
//! `docker save` archives with dockerd's legacy entries, `save REPO` saving every tag of the
//! repository, parents kept across save and load, and `docker search`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::common;

use common::cli::Daemon;
use serde_json::Value;

/// Every entry of a tar: path → (is a symlink, bytes or link target).
fn tar_entries(p: &Path) -> BTreeMap<String, (bool, Vec<u8>)> {
    let mut ar = tar::Archive::new(std::fs::File::open(p).unwrap());
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().display().to_string();
        let link = e.header().entry_type() == tar::EntryType::Symlink;
        let mut b = Vec::new();
        if link {
            b = e.link_name_bytes().unwrap().into_owned();
        } else {
            e.read_to_end(&mut b).unwrap();
        }
        out.insert(n.trim_end_matches('/').to_string(), (link, b));
    }
    out
}

fn json(b: &[u8]) -> Value {
    serde_json::from_slice(b)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(b)))
}

/// Build a one-step child of busybox (a LABEL: no container needed) tagged `tag`.
fn child_of_busybox(d: &Daemon, tag: &str, label: &str) -> String {
    let df = format!("FROM busybox\nLABEL step={label}\n");
    let o = d.docker_stdin(&["build", "-q", "-t", tag, "-"], df.as_bytes());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.inspect(tag, "{{.Id}}")
}

/// `docker save` writes what dockerd 20.10 writes for tools that predate the OCI layout:
/// `repositories` (name → tag → the top layer's v1 id) and `<v1 id>/{VERSION,json,layer.tar}`
/// with `json` chained by `parent`. Before: only the OCI layout and manifest.json.
#[test]
fn save_writes_the_legacy_repositories_and_layer_dirs() {
    let Some(d) = Daemon::start("save_writes_the_legacy_repositories_and_layer_dirs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bb.tar");
    d.ok(&["tag", "busybox", "example.com/team/bb:v1"]);
    d.ok(&[
        "save",
        "-o",
        out.to_str().unwrap(),
        "busybox",
        "example.com/team/bb:v1",
    ]);
    let e = tar_entries(&out);
    let repos = json(&e.get("repositories").expect("no repositories file").1);
    let top = repos["busybox"]["latest"].as_str().unwrap().to_string();
    assert_eq!(repos["example.com/team/bb"]["v1"], top.as_str(), "{repos}");
    assert_eq!(e[&format!("{top}/VERSION")].1, b"1.0");
    let v1 = json(&e[&format!("{top}/json")].1);
    assert_eq!(v1["id"], top.as_str());
    assert_eq!(v1["config"]["Cmd"], serde_json::json!(["sh"]));
    let (link, target) = &e[&format!("{top}/layer.tar")];
    let target = String::from_utf8_lossy(target).into_owned();
    assert!(*link && target.starts_with("../blobs/sha256/"), "{target}");
    assert!(
        e.contains_key(&target[3..]),
        "{target} is not in the archive"
    );
    // The archive loads again (into a daemon without the image).
    d.ok(&["rmi", "busybox", "example.com/team/bb:v1"]);
    let loaded = d.ok(&["load", "-i", out.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: busybox:latest"), "{loaded}");
    d.finish();
}

/// `docker save REPO` saves every tag of the repository (dockerd's parseNames); `REPO:TAG`
/// only that tag. Before: a bare name meant `REPO:latest` (here: "No such image").
#[test]
fn save_of_a_repository_saves_all_its_tags() {
    let Some(d) = Daemon::start("save_of_a_repository_saves_all_its_tags") else {
        return;
    };
    let other = child_of_busybox(&d, "fidapp:3", "three");
    d.ok(&["tag", "busybox", "fidapp:1"]);
    d.ok(&["tag", "busybox", "fidapp:2"]);
    let dir = tempfile::tempdir().unwrap();
    let tags_in = |name: &str| -> Vec<String> {
        let out = dir.path().join(format!("{}.tar", name.replace(':', "_")));
        d.ok(&["save", "-o", out.to_str().unwrap(), name]);
        let e = tar_entries(&out);
        let mut tags: Vec<String> = json(&e["manifest.json"].1)
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["RepoTags"].as_array().cloned().unwrap_or_default())
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        tags.sort();
        tags
    };
    assert_eq!(tags_in("fidapp"), ["fidapp:1", "fidapp:2", "fidapp:3"]);
    assert_eq!(tags_in("fidapp:2"), ["fidapp:2"]);
    // Loaded into an empty store, the repository comes back whole.
    let all = dir.path().join("fidapp.tar");
    d.ok(&["rmi", "fidapp:1", "fidapp:2", "fidapp:3"]);
    let loaded = d.ok(&["load", "-i", all.to_str().unwrap()]);
    for t in ["fidapp:1", "fidapp:2", "fidapp:3"] {
        assert!(loaded.contains(&format!("Loaded image: {t}")), "{loaded}");
    }
    assert_eq!(d.inspect("fidapp:3", "{{.Id}}"), other);
    d.finish();
}

/// An image built FROM another, saved with its parent and loaded into a daemon without
/// either, has its `Parent` again (dockerd writes `Parent` in manifest.json and sets it on
/// load). Before: Parent was empty after the load.
#[test]
fn parents_are_kept_across_save_and_load() {
    let Some(d) = Daemon::start("parents_are_kept_across_save_and_load") else {
        return;
    };
    let child = child_of_busybox(&d, "fidchild:1", "child");
    let bb = d.inspect("busybox", "{{.Id}}");
    assert_eq!(d.inspect("fidchild:1", "{{.Parent}}"), bb);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("both.tar");
    d.ok(&["save", "-o", out.to_str().unwrap(), "fidchild:1", "busybox"]);
    let mj = json(&tar_entries(&out)["manifest.json"].1);
    let item = mj
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["RepoTags"][0] == "fidchild:1")
        .unwrap()
        .clone();
    assert_eq!(item["Parent"], bb.as_str(), "{mj}");
    d.ok(&["rmi", "fidchild:1", "busybox"]);
    assert!(
        d.ok(&["images", "-aq"]).is_empty(),
        "the store is not empty"
    );
    d.ok(&["load", "-i", out.to_str().unwrap()]);
    assert_eq!(d.inspect("fidchild:1", "{{.Id}}"), child);
    assert_eq!(d.inspect("fidchild:1", "{{.Parent}}"), bb);
    // Saved alone, the child has no parent in the archive and none after a load.
    let alone = dir.path().join("alone.tar");
    d.ok(&["save", "-o", alone.to_str().unwrap(), "fidchild:1"]);
    d.ok(&["rmi", "fidchild:1"]);
    d.ok(&["load", "-i", alone.to_str().unwrap()]);
    assert_eq!(d.inspect("fidchild:1", "{{.Parent}}"), "");
    d.finish();
}
