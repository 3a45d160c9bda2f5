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

/// A tiny registry index on loopback serving `GET /v1/search` over plain HTTP (a TLS hello
/// is closed at once, so the daemon falls back to http as for any insecure registry). It
/// answers every query with the same three repositories and records each request as
/// `<path and query> auth=<Authorization>`.
struct FakeIndex {
    addr: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const FAKE_RESULTS: &str = r#"{"num_results":3,"query":"fid","results":[
 {"name":"fid/plain","description":"","star_count":0,"is_official":false,"is_automated":false},
 {"name":"fid/auto","description":"built automatically from a repository whose description\nruns over two lines","star_count":3,"is_official":false,"is_automated":true},
 {"name":"fid","description":"the official one","star_count":50,"is_official":true,"is_automated":false}]}"#;

impl FakeIndex {
    fn start() -> FakeIndex {
        use std::io::Write;
        use std::sync::atomic::Ordering;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        l.set_nonblocking(true).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                    if !req[0].is_ascii_uppercase() {
                        break; // a TLS ClientHello: not ours
                    }
                }
                let text = String::from_utf8_lossy(&req).into_owned();
                let Some(path) = text.strip_prefix("GET ").and_then(|r| r.split(' ').next()) else {
                    continue;
                };
                let auth = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .starts_with("authorization:")
                            .then(|| l[14..].trim().to_string())
                    })
                    .unwrap_or_default();
                seen2.lock().unwrap().push(format!("{path} auth={auth}"));
                let (status, body) = if path.starts_with("/v1/search?") {
                    ("200 OK", FAKE_RESULTS)
                } else {
                    ("404 Not Found", "{}")
                };
                let _ = write!(
                    c,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeIndex {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn searches(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.starts_with("/v1/search"))
            .cloned()
            .collect()
    }
}

impl Drop for FakeIndex {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `berth` (the CLI under test) against this daemon.
fn berth(d: &Daemon, args: &[&str]) -> std::process::Output {
    std::process::Command::new(&d.bin)
        .args(["-H", &format!("unix://{}", d.sock().display())])
        .args(args)
        .output()
        .unwrap()
}

/// `docker search HOST/TERM` (and `berth search`, the raw API) ask HOST's v1 search through
/// the daemon's registry client (loopback is insecure: https, then http), with dockerd's
/// query (`q`, `n`), filters with dockerd's validation, results as dockerd's JSON and as
/// docker's table. Before: `GET /images/search` answered 404 "page not found".
#[test]
fn search_asks_the_registry_named_in_the_term() {
    let Some(d) = Daemon::start_opts(
        "search_asks_the_registry_named_in_the_term",
        common::cli::Opts {
            busybox: false,
            ..Default::default()
        },
    ) else {
        return;
    };
    let idx = FakeIndex::start();
    let term = format!("{}/fid", idx.addr);

    let out = d.ok(&["search", &term]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..3], ["NAME", "DESCRIPTION", "STARS"], "{out}");
    // (docker 28's CLI prints the daemon's order; 20.10's, like berth's, sorted by stars)
    let mut names: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
    names.sort();
    assert_eq!(names, ["fid", "fid/auto", "fid/plain"], "{out}");
    assert!(out.contains("[OK]"), "{out}");
    // The registry got the remote name and the default limit.
    assert_eq!(idx.searches(), ["/v1/search?q=fid&n=25 auth="]);

    let names_with = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["search", "--format", "{{.Name}}"];
        a.extend_from_slice(args);
        a.push(&term);
        d.ok(&a).lines().map(str::to_string).collect()
    };
    assert_eq!(names_with(&["--filter", "is-official=true"]), ["fid"]);
    assert_eq!(names_with(&["--filter", "is-automated=true"]), ["fid/auto"]);
    let mut starred = names_with(&["--filter", "stars=3"]);
    starred.sort();
    assert_eq!(starred, ["fid", "fid/auto"]);
    assert_eq!(
        names_with(&["--filter", "stars=3", "--filter", "is-official=false"]),
        ["fid/auto"]
    );
    names_with(&["--limit", "2"]);
    assert!(
        idx.searches().last().unwrap().contains("&n=2 "),
        "{:?}",
        idx.searches()
    );

    // dockerd's refusals, before anything is asked of the registry.
    let asked = idx.searches().len();
    for (args, want) in [
        (
            vec!["--filter", "is-official=maybe"],
            "Invalid filter 'is-official=[maybe]'",
        ),
        (
            vec!["--filter", "stars=many"],
            "Invalid filter 'stars=many'",
        ),
        (vec!["--filter", "color=red"], "Invalid filter 'color'"),
        (
            vec!["--limit", "101"],
            "Limit 101 is outside the range of [1, 100]",
        ),
    ] {
        let mut a = vec!["search"];
        a.extend_from_slice(&args);
        a.push(&term);
        let err = d.fails(&a);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(idx.searches().len(), asked);

    // The raw API: dockerd's fields, every one present.
    let (code, body) = d.api(
        "GET",
        &format!("/v1.41/images/search?term={term}&limit=5"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let v = json(body.as_bytes());
    let official = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "fid")
        .unwrap();
    assert_eq!(
        *official,
        serde_json::json!({"name": "fid", "description": "the official one", "star_count": 50,
                           "is_official": true, "is_automated": false})
    );
    let (code, body) = d.api("GET", &format!("/images/search?term={term}&limit=x"), None);
    assert_eq!(code, 400, "{body}");

    // berth's own CLI: docker 20.10's table (with AUTOMATED), --no-trunc, --format.
    let o = berth(&d, &["search", &term]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let head: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    );
    assert!(
        out.contains("built automatically from a repository whose …"),
        "{out}"
    );
    let o = berth(
        &d,
        &[
            "search",
            "--no-trunc",
            "--format",
            "{{.Name}}|{{.Description}}|{{.IsAutomated}}",
            "--filter",
            "is-automated=true",
            &term,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim_end(),
        "fid/auto|built automatically from a repository whose description runs over two lines|[OK]"
    );
    d.finish();
}

/// A distribution registry (Debian's docker-registry) has no v1 search: the answer names the
/// registry and says it does not support search, as a 501 (dockerd: 500 "Unexpected status
/// code 404"). Before: 404 "page not found: /images/search".
#[test]
fn search_of_a_registry_without_search_says_so() {
    let t = "search_of_a_registry_without_search_says_so";
    if !berth_testutil::require_cmds(t, &["docker-registry"]) {
        return;
    }
    let Some(d) = Daemon::start_opts(
        t,
        common::cli::Opts {
            busybox: false,
            ..Default::default()
        },
    ) else {
        return;
    };
    let reg = berth_testutil::registry::Registry::start();
    let err = d.fails(&["search", &format!("{}/busybox", reg.addr)]);
    assert!(
        err.contains(&format!("registry {} does not support search", reg.addr)),
        "{err}"
    );
    let (code, body) = d.api(
        "GET",
        &format!("/images/search?term={}/busybox", reg.addr),
        None,
    );
    assert_eq!(code, 501, "{body}");
    d.finish();
}
