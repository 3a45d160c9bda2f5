//! The inspect/list JSON snapshots checked field by field against moby's API v1.41 (dockerd
//! 20.10): a table derived from its `api/swagger.yaml` and Go API types
//! (`tests/fixtures/moby-api-1.41-fields.json`, made by `scripts/swagger-fields.py`). Every key
//! berth sends must be a field of the right JSON type (or a deliberate extra below), and every
//! field dockerd always sends (no `omitempty`) must be there (or be excused below). Container
//! and network JSON come from the snapshots; an image and a volume are rendered here.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Keys berth sends that API v1.41 does not have, each with why.
const EXTRAS: &[(&str, &str, &str)] = &[
    (
        "Network",
        "EnableIPv4",
        "API 1.47+ (dockerd 28): berth answers newer clients with the same body",
    ),
    (
        "EndpointSettings",
        "DNSNames",
        "API 1.44+ (dockerd 25): the names the embedded DNS answers for the endpoint",
    ),
];

/// Fields dockerd 20.10 always sends that berth's renderers leave out, by where (the end of
/// the path checked) and why.
const ABSENT: &[(&str, &[&str], &str)] = &[
    (
        "image summary",
        &["VirtualSize"],
        "the image routes add it (= Size) for clients before API 1.44, as moby does",
    ),
    (
        "image inspect",
        &["VirtualSize"],
        "the image routes add it (= Size) for clients before API 1.44, as moby does",
    ),
    (
        "image inspect.Config",
        &[
            "AttachStderr",
            "AttachStdin",
            "AttachStdout",
            "Domainname",
            "Entrypoint",
            "Hostname",
            "Image",
            "OnBuild",
            "OpenStdin",
            "StdinOnce",
            "Tty",
            "User",
            "Volumes",
        ],
        "an image's Config is the current API's image config (as dockerd 28 sends it: no \
         container-only fields, unset ones left out); dockerd 20.10 sent a container Config",
    ),
];

/// Snapshots whose body API v1.41 does not describe field by field.
const UNDESCRIBED: &[(&str, &str)] = &[(
    "stats_",
    "swagger 1.41 types the stats body as a bare object",
)];

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn table() -> Map<String, Value> {
    let p = manifest().join("tests/fixtures/moby-api-1.41-fields.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    v["types"].as_object().unwrap().clone()
}

/// The table type a snapshot's body is.
fn root_of(file: &str) -> Option<&'static str> {
    [
        ("inspect_", "ContainerInspect"),
        ("summary_", "ContainerSummary"),
        ("network_", "Network"),
    ]
    .into_iter()
    .find(|(prefix, _)| file.starts_with(prefix))
    .map(|(_, t)| t)
}

struct Checker {
    types: Map<String, Value>,
    problems: Vec<String>,
}

impl Checker {
    /// Check `v` (at `at`) against the table type `ty`: a JSON type, `[T]`, `map<T>`, or an
    /// object type of the table.
    fn value(&mut self, at: &str, ty: &str, nullable: bool, v: &Value) {
        if v.is_null() {
            if !nullable {
                self.problems.push(format!("{at}: null, want {ty}"));
            }
            return;
        }
        let ok = match ty {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "object" => v.is_object(),
            "any" => true,
            t if t.starts_with('[') => {
                let inner = &t[1..t.len() - 1];
                if let Some(items) = v.as_array() {
                    for (i, x) in items.iter().enumerate() {
                        self.value(&format!("{at}[{i}]"), inner, false, x);
                    }
                }
                v.is_array()
            }
            t if t.starts_with("map<") => {
                let inner = &t[4..t.len() - 1];
                if let Some(m) = v.as_object() {
                    for (k, x) in m {
                        self.value(&format!("{at}[{k:?}]"), inner, true, x);
                    }
                }
                v.is_object()
            }
            t => {
                if let Some(m) = v.as_object() {
                    self.object(at, t, m);
                }
                v.is_object()
            }
        };
        if !ok {
            self.problems.push(format!("{at}: {v}, want {ty}"));
        }
    }

    fn object(&mut self, at: &str, ty: &str, m: &Map<String, Value>) {
        let Some(fields) = self.types.get(ty).and_then(Value::as_object).cloned() else {
            self.problems
                .push(format!("{at}: no type {ty} in the table"));
            return;
        };
        for (k, v) in m {
            match fields.get(k) {
                Some(f) => {
                    let fty = f["type"].as_str().unwrap();
                    let nullable = f["nullable"].as_bool().unwrap_or(false);
                    self.value(&format!("{at}.{k}"), fty, nullable, v);
                }
                None if EXTRAS.iter().any(|(t, f, _)| *t == ty && f == k) => {}
                None => self.problems.push(format!("{at}.{k}: not a field of {ty}")),
            }
        }
        for (k, f) in &fields {
            let always = f["always"].as_bool().unwrap_or(false);
            let excused = ABSENT
                .iter()
                .any(|(at_end, fs, _)| at.ends_with(at_end) && fs.contains(&k.as_str()));
            if always && !m.contains_key(k) && !excused {
                self.problems
                    .push(format!("{at}.{k}: dockerd always sends it ({ty})"));
            }
        }
    }
}

fn snapshots(dir: &Path) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let v = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            (name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn snapshots_have_the_fields_and_types_of_api_1_41() {
    let mut c = Checker {
        types: table(),
        problems: Vec::new(),
    };
    let all = snapshots(&manifest().join("src/containers/snapshots"));
    let mut checked = 0;
    for (file, v) in &all {
        if UNDESCRIBED.iter().any(|(p, _)| file.starts_with(p)) {
            continue;
        }
        let ty = root_of(file).unwrap_or_else(|| panic!("{file}: which API type is it?"));
        c.value(file, ty, false, v);
        checked += 1;
    }
    assert!(checked >= 13, "only {checked} snapshots checked");
    assert!(c.problems.is_empty(), "{}", c.problems.join("\n"));
}

/// The checker itself: a wrong type, an unknown key and a missing always-sent field are
/// each found.
#[test]
fn the_checker_finds_each_kind_of_difference() {
    let mut c = Checker {
        types: table(),
        problems: Vec::new(),
    };
    let v = serde_json::json!({"Id": 1, "Nope": true, "Status": "running"});
    c.value("x", "ContainerState", false, &v);
    let p = c.problems.join("\n");
    assert!(p.contains("x.Id: not a field of ContainerState"), "{p}");
    assert!(p.contains("x.Nope: not a field"), "{p}");
    assert!(p.contains("x.Pid: dockerd always sends it"), "{p}");
    c.problems.clear();
    c.value(
        "y",
        "ContainerState",
        false,
        &serde_json::json!({"Pid": "1"}),
    );
    assert!(c
        .problems
        .iter()
        .any(|p| p.contains("y.Pid: \"1\", want integer")));
}

/// Images and volumes have no snapshots: a representative one of each is rendered here (an
/// image with tags, digests, history and two layers; a named volume with labels) and checked
/// the same way.
#[test]
fn image_and_volume_json_have_the_fields_and_types_of_api_1_41() {
    use crate::images::{plan, store::StoredImage};
    let mut c = Checker {
        types: table(),
        problems: Vec::new(),
    };
    let cfg = serde_json::json!({
        "created": "2024-01-02T03:04:05Z", "architecture": "amd64", "os": "linux",
        "author": "someone",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"a": "b"},
                   "ExposedPorts": {"80/tcp": {}}, "WorkingDir": "/srv"},
        "rootfs": {"type": "layers", "diff_ids": [
            "sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "sha256:2222222222222222222222222222222222222222222222222222222222222222"]},
        "history": [{"created_by": "ADD rootfs"},
                    {"created_by": "CMD [\"sh\"]", "empty_layer": true, "comment": "c"}]
    });
    let img = StoredImage {
        id: berth_oci::Digest::of(b"cfg"),
        manifest_digest: berth_oci::Digest::of(b"man"),
        repo_tags: vec!["app:1".into()],
        repo_digests: vec![format!("app@{}", berth_oci::Digest::of(b"man"))],
        config: serde_json::from_value(cfg).unwrap(),
        created: None,
        size: 42,
        layers: vec![],
        parent: Some(berth_oci::Digest::of(b"parent")),
    };
    let summary = serde_json::to_value(plan::summary(&img, Some(0), 1)).unwrap();
    c.value("image summary", "ImageSummary", false, &summary);
    let dirs = ["/l/1".into(), "/l/2".into()];
    let inspect = serde_json::to_value(plan::inspect(&img, &dirs)).unwrap();
    c.value("image inspect", "ImageInspect", false, &inspect);

    let d = tempfile::tempdir().unwrap();
    let store = crate::volumes::VolumeStore::open(d.path()).unwrap();
    let (v, _) = store
        .create(crate::volumes::CreateVolume {
            name: Some("data".into()),
            labels: [("tier".to_string(), "db".to_string())].into(),
            ..Default::default()
        })
        .unwrap();
    let vol = serde_json::to_value(crate::volumes::service::render(&store, &v, None)).unwrap();
    c.value("volume", "Volume", false, &vol);
    assert!(c.problems.is_empty(), "{}", c.problems.join("\n"));
}
