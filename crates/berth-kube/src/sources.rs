//! ConfigMap and Secret volumes of `kube play`. Kubernetes projects the keys of a ConfigMap or
//! Secret as files into a read-only volume; berth does it with what every Docker-API engine
//! has. The plan (pure, here) turns each such pod volume into a named volume
//! `<pod>-<volume>`, labelled with the play and the pod so that `kube down` removes it as it
//! removes an `emptyDir`, and the list of files it must hold: the path (the key, or an item's
//! `path`), the bytes and the mode (the item's `mode`, else `defaultMode`, else 0644), owned by
//! root. `apply` creates the volume, creates — never starts — a helper container from the
//! infra image with the pod's filled volumes mounted, writes all files through the archive API
//! (`PUT /containers/{id}/archive`, one tar made by [`tar`]) and removes the helper; the pod's
//! containers then mount the volume read-only, whatever `readOnly` says (`subPath` mounts one
//! file). The files are written once, at play: a changed ConfigMap needs a new play (there is
//! no kubelet refreshing them). Secret `data` is base64 (refused, naming the key, when it is
//! not), `stringData` plain and wins; ConfigMap `data` is text, `binaryData` base64. A source
//! or an item's key the file does not define refuses the play unless `optional: true`.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::KeyToPath;
use serde_json::Value;

/// The keys of a ConfigMap or a Secret and their bytes.
pub type Data = BTreeMap<String, Vec<u8>>;

/// One file a filled volume holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Relative to the volume's root (checked: no `..`, not absolute).
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
}

/// A named volume to fill before the pod's containers start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    /// The engine's volume name (`<pod>-<volume>`).
    pub volume: String,
    /// The pod's name for the volume: the folder it is mounted at in the helper.
    pub mount: String,
    pub files: Vec<File>,
}

/// Where a pod volume's files come from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// `ConfigMap` or `Secret`.
    pub kind: &'static str,
    pub name: &'a str,
    pub items: Option<&'a [KeyToPath]>,
    pub default_mode: Option<i32>,
    pub optional: bool,
}

/// A key as Kubernetes allows it (`[-._a-zA-Z0-9]+`, not `.` or `..`): it is a file name.
pub(crate) fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k != "."
        && k != ".."
        && k.len() <= 253
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The keys of a ConfigMap (`data` text, `binaryData` base64) or a Secret (`data` base64,
/// `stringData` text, which wins) document. The error names the field.
pub fn read_data(doc: &Value, kind: &str) -> Result<Data, String> {
    let (encoded, text) = if kind == "Secret" {
        ("data", "stringData")
    } else {
        ("binaryData", "data")
    };
    let mut out = Data::new();
    for (field, base64) in [(encoded, true), (text, false)] {
        for (k, v) in doc[field].as_object().into_iter().flatten() {
            if !valid_key(k) {
                return Err(format!(
                    "{field}.{k}: not a valid key (letters, digits, '-', '_' and '.')"
                ));
            }
            let s = v
                .as_str()
                .ok_or_else(|| format!("{field}.{k}: must be a string"))?;
            let bytes = if base64 {
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| format!("{field}.{k}: not valid base64 ({e})"))?
            } else {
                s.as_bytes().to_vec()
            };
            out.insert(k.clone(), bytes);
        }
    }
    Ok(out)
}

/// An item's path: relative, without `..`.
fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() || p.starts_with('/') || p.split('/').any(|c| c == "..") {
        return Err(format!(
            "item path {p:?} must be relative and must not contain '..'"
        ));
    }
    Ok(())
}

/// The files a volume of `source` holds, given the source's keys (None: the file does not
/// define it).
pub fn files(s: &Source, data: Option<&Data>) -> Result<Vec<File>, String> {
    let mode = |m: Option<i32>, what: &str| -> Result<u32, String> {
        let m = m.or(s.default_mode).unwrap_or(0o644);
        u32::try_from(m)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| format!("{what} {m} is not a file mode (0 to 0777, 511 in decimal)"))
    };
    let Some(data) = data else {
        if s.optional {
            return Ok(vec![]);
        }
        return Err(format!(
            "{} {:?}, which the file does not define (and the volume is not optional)",
            s.kind, s.name
        ));
    };
    let mut out = Vec::new();
    match s.items {
        None => {
            let m = mode(None, "defaultMode")?;
            for (k, v) in data {
                out.push(File {
                    path: k.clone(),
                    data: v.clone(),
                    mode: m,
                });
            }
        }
        Some(items) => {
            for it in items {
                check_path(&it.path)?;
                let Some(v) = data.get(&it.key) else {
                    if s.optional {
                        continue;
                    }
                    return Err(format!(
                        "key {:?} is not in {} {:?} (and the volume is not optional)",
                        it.key, s.kind, s.name
                    ));
                };
                out.push(File {
                    path: it.path.clone(),
                    data: v.clone(),
                    mode: mode(it.mode, "mode")?,
                });
            }
        }
    }
    Ok(out)
}

/// One tar of every filled volume's files, each under its `mount` folder (with the folders
/// an item path needs, 0755), owned by root.
pub fn tar(filled: &[Filled]) -> std::io::Result<Vec<u8>> {
    let mut t = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    let header = |kind: tar::EntryType, size: u64, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    };
    for f in filled {
        for file in &f.files {
            let path = format!("{}/{}", f.mount, file.path);
            let parts: Vec<&str> = path.split('/').collect();
            for i in 1..parts.len() - 1 {
                let dir = parts[..=i].join("/");
                if dirs.insert(dir.clone()) {
                    let mut h = header(tar::EntryType::Directory, 0, 0o755);
                    t.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
                }
            }
            let mut h = header(tar::EntryType::Regular, file.data.len() as u64, file.mode);
            t.append_data(&mut h, &path, file.data.as_slice())?;
        }
    }
    t.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    fn data() -> Data {
        Data::from([
            ("a.conf".to_string(), b"A".to_vec()),
            ("b".to_string(), b"B".to_vec()),
        ])
    }

    fn source<'a>(items: Option<&'a [KeyToPath]>, optional: bool) -> Source<'a> {
        Source {
            kind: "ConfigMap",
            name: "cfg",
            items,
            default_mode: None,
            optional,
        }
    }

    #[test]
    fn secrets_decode_base64_and_string_data_wins() {
        let doc =
            json!({"data": {"user": "YWRtaW4=", "pass": "eA=="}, "stringData": {"pass": "plain"}});
        let d = read_data(&doc, "Secret").unwrap();
        assert_eq!(d["user"], b"admin");
        assert_eq!(d["pass"], b"plain");
        let e = read_data(&json!({"data": {"token": "not base64!"}}), "Secret").unwrap_err();
        assert!(e.starts_with("data.token: not valid base64"), "{e}");
        let d = read_data(
            &json!({"data": {"k": "dGV4dA=="}, "binaryData": {"bin": "AAE="}}),
            "ConfigMap",
        )
        .unwrap();
        assert_eq!(d["k"], b"dGV4dA==");
        assert_eq!(d["bin"], [0, 1]);
        let e = read_data(&json!({"data": {"../x": "v"}}), "ConfigMap").unwrap_err();
        assert!(e.starts_with("data.../x: not a valid key"), "{e}");
    }

    #[test]
    fn every_key_or_the_items_with_their_modes() {
        let mut s = source(None, false);
        s.default_mode = Some(0o400);
        let f = files(&s, Some(&data())).unwrap();
        assert_eq!(
            f.iter()
                .map(|f| (f.path.as_str(), f.mode))
                .collect::<Vec<_>>(),
            vec![("a.conf", 0o400), ("b", 0o400)]
        );
        let items = [
            item("b", "sub/dir/b.txt", Some(0o600)),
            item("a.conf", "a", None),
        ];
        let f = files(&source(Some(&items), false), Some(&data())).unwrap();
        assert_eq!(f[0].path, "sub/dir/b.txt");
        assert_eq!(f[0].mode, 0o600);
        assert_eq!(f[0].data, b"B");
        assert_eq!(f[1].mode, 0o644);
    }

    #[test]
    fn missing_sources_and_keys_refuse_unless_optional() {
        let e = files(&source(None, false), None).unwrap_err();
        assert_eq!(
            e,
            "ConfigMap \"cfg\", which the file does not define (and the volume is not optional)"
        );
        assert_eq!(files(&source(None, true), None).unwrap(), vec![]);
        let items = [item("nope", "n", None), item("b", "b", None)];
        let e = files(&source(Some(&items), false), Some(&data())).unwrap_err();
        assert!(e.starts_with("key \"nope\" is not in ConfigMap"), "{e}");
        assert_eq!(
            files(&source(Some(&items), true), Some(&data()))
                .unwrap()
                .len(),
            1
        );
        for bad in ["../x", "/etc/passwd", "a/../../b", ""] {
            let items = [item("b", bad, None)];
            assert!(files(&source(Some(&items), false), Some(&data())).is_err());
        }
        let items = [item("b", "b", Some(0o1777))];
        assert!(files(&source(Some(&items), false), Some(&data()))
            .unwrap_err()
            .contains("not a file mode"));
    }

    #[test]
    fn the_tar_holds_folders_files_and_modes() {
        let filled = [Filled {
            volume: "p-cfg".into(),
            mount: "cfg".into(),
            files: vec![
                File {
                    path: "d/x".into(),
                    data: b"xx".to_vec(),
                    mode: 0o600,
                },
                File {
                    path: "y".into(),
                    data: b"y".to_vec(),
                    mode: 0o644,
                },
            ],
        }];
        let bytes = tar(&filled).unwrap();
        let mut a = tar::Archive::new(bytes.as_slice());
        let got: Vec<(String, u32, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                    e.header().size().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("cfg/d/".to_string(), 0o755, 0),
                ("cfg/d/x".to_string(), 0o600, 2),
                ("cfg/y".to_string(), 0o644, 1),
            ]
        );
    }
}
