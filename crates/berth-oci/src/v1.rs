//! Docker's legacy (v1) image JSON and ids, which `docker save` writes for old tools: one
//! `<v1 id>/json` per layer, chained by `parent`, and the top layer's id in `repositories`.
//!
//! The ids are moby's `image/v1.CreateID`: sha256 of the v1 JSON (without `id`) as a map, with
//! `layer_id` (the chain id) and `parent` (the layer below's v1 id) added. They are hashes of
//! Go's `encoding/json` output, so the JSON here is written the way Go writes moby's
//! `image.V1Image` and `container.Config` (field order, `omitempty`, sorted map keys, HTML
//! escaping, RFC 3339 times), from the image config as Go would have read it.

use serde_json::Value;

use crate::Digest;

/// One layer's legacy entry: its v1 id (hex) and the `json` file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Layer {
    pub id: String,
    pub json: Vec<u8>,
}

/// The legacy entries of an image, bottom layer first, from its raw config and the chain ids
/// of its layers. Every layer but the top gets an empty v1 image created at the epoch (as
/// moby, "for pre v1.9 docker"); the top one carries the image's own metadata.
pub fn v1_layers(config: &[u8], chain_ids: &[Digest]) -> Result<Vec<V1Layer>, serde_json::Error> {
    let cfg: Value = serde_json::from_slice(config)?;
    let top = V1Image::from_config(&cfg);
    let mut out: Vec<V1Layer> = Vec::with_capacity(chain_ids.len());
    for (i, chain) in chain_ids.iter().enumerate() {
        let mut img = if i + 1 == chain_ids.len() {
            top.clone()
        } else {
            V1Image::epoch()
        };
        let parent = out.last().map(|l| l.id.clone());
        let id = create_id(&img, chain, parent.as_deref());
        img.id = id.clone();
        img.parent = parent.unwrap_or_default();
        img.os = top.os.clone();
        out.push(V1Layer {
            id,
            json: img.to_json().into_bytes(),
        });
    }
    Ok(out)
}

/// moby's `v1.CreateID`: the hex of sha256 over the v1 JSON without its id, as a map with
/// `layer_id` and `parent` (a `sha256:` digest) added, keys sorted.
fn create_id(img: &V1Image, chain: &Digest, parent_hex: Option<&str>) -> String {
    let mut no_id = img.clone();
    no_id.id.clear();
    let mut fields = no_id.fields();
    fields.push(("layer_id", go_string(&chain.to_string())));
    if let Some(p) = parent_hex {
        fields.push(("parent", go_string(&format!("sha256:{p}"))));
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    Digest::of(object(&fields).as_bytes()).hex().to_string()
}

/// moby's `image.V1Image` as Go reads it from an image config (`parent` and `id` are not read
/// from it: the config's `parent` belongs to the outer `image.Image`).
#[derive(Debug, Clone, Default)]
struct V1Image {
    id: String,
    parent: String,
    comment: String,
    created: String,
    container: String,
    /// The encoded `container.Config` (always written: a struct, not a pointer).
    container_config: String,
    docker_version: String,
    author: String,
    /// The encoded `*container.Config`, None when absent or null.
    config: Option<String>,
    architecture: String,
    variant: String,
    os: String,
    size: i64,
}

impl V1Image {
    fn epoch() -> V1Image {
        V1Image {
            created: "1970-01-01T00:00:00Z".into(),
            container_config: container_config(None),
            ..Default::default()
        }
    }

    fn from_config(cfg: &Value) -> V1Image {
        let s = |k: &str| str_of(field(cfg, k));
        let config = field(cfg, "config").filter(|v| v.is_object());
        V1Image {
            id: String::new(),
            parent: String::new(),
            comment: s("comment"),
            created: field(cfg, "created")
                .and_then(Value::as_str)
                .map(go_time)
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            container: s("container"),
            container_config: container_config(field(cfg, "container_config")),
            docker_version: s("docker_version"),
            author: s("author"),
            config: config.map(|c| container_config(Some(c))),
            architecture: s("architecture"),
            variant: s("variant"),
            os: s("os"),
            size: field(cfg, "Size").and_then(Value::as_i64).unwrap_or(0),
        }
    }

    /// Encoded fields in Go's struct order, `omitempty` applied.
    fn fields(&self) -> Vec<(&'static str, String)> {
        fn opt(f: &mut Vec<(&'static str, String)>, k: &'static str, v: &str) {
            if !v.is_empty() {
                f.push((k, go_string(v)));
            }
        }
        let mut f = Vec::new();
        opt(&mut f, "id", &self.id);
        opt(&mut f, "parent", &self.parent);
        opt(&mut f, "comment", &self.comment);
        f.push(("created", go_string(&self.created)));
        opt(&mut f, "container", &self.container);
        f.push(("container_config", self.container_config.clone()));
        opt(&mut f, "docker_version", &self.docker_version);
        opt(&mut f, "author", &self.author);
        if let Some(c) = &self.config {
            f.push(("config", c.clone()));
        }
        opt(&mut f, "architecture", &self.architecture);
        opt(&mut f, "variant", &self.variant);
        opt(&mut f, "os", &self.os);
        if self.size != 0 {
            f.push(("Size", self.size.to_string()));
        }
        f
    }

    fn to_json(&self) -> String {
        object(&self.fields())
    }
}

/// A member of a JSON object as Go's decoder finds it: the exact key, else one equal but for
/// case.
fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    o.get(key).or_else(|| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn str_of(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

/// moby's `container.Config` (API 1.41, dockerd 20.10) as Go encodes it.
fn container_config(v: Option<&Value>) -> String {
    let null = Value::Null;
    let v = v.unwrap_or(&null);
    let get = |k: &str| field(v, k).filter(|x| !x.is_null());
    let string = |k: &str| go_string(&str_of(get(k)));
    let boolean = |k: &str| get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut f: Vec<(&'static str, String)> = Vec::new();
    f.push(("Hostname", string("Hostname")));
    f.push(("Domainname", string("Domainname")));
    f.push(("User", string("User")));
    for k in ["AttachStdin", "AttachStdout", "AttachStderr"] {
        f.push((k, boolean(k).to_string()));
    }
    if let Some(p) = get("ExposedPorts").and_then(Value::as_object) {
        if !p.is_empty() {
            f.push(("ExposedPorts", set_of(p.keys())));
        }
    }
    for k in ["Tty", "OpenStdin", "StdinOnce"] {
        f.push((k, boolean(k).to_string()));
    }
    f.push(("Env", strings(get("Env"))));
    f.push(("Cmd", str_slice(get("Cmd"))));
    if let Some(h) = get("Healthcheck").filter(|h| h.is_object()) {
        f.push(("Healthcheck", health(h)));
    }
    if boolean("ArgsEscaped") {
        f.push(("ArgsEscaped", "true".into()));
    }
    f.push(("Image", string("Image")));
    f.push((
        "Volumes",
        match get("Volumes").and_then(Value::as_object) {
            Some(m) => set_of(m.keys()),
            None => "null".into(),
        },
    ));
    f.push(("WorkingDir", string("WorkingDir")));
    f.push(("Entrypoint", str_slice(get("Entrypoint"))));
    if boolean("NetworkDisabled") {
        f.push(("NetworkDisabled", "true".into()));
    }
    let mac = str_of(get("MacAddress"));
    if !mac.is_empty() {
        f.push(("MacAddress", go_string(&mac)));
    }
    f.push(("OnBuild", strings(get("OnBuild"))));
    f.push((
        "Labels",
        match get("Labels").and_then(Value::as_object) {
            Some(m) => {
                let mut kv: Vec<(&String, String)> =
                    m.iter().map(|(k, v)| (k, str_of(Some(v)))).collect();
                kv.sort();
                let parts: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{}:{}", go_string(k), go_string(v)))
                    .collect();
                format!("{{{}}}", parts.join(","))
            }
            None => "null".into(),
        },
    ));
    let stop = str_of(get("StopSignal"));
    if !stop.is_empty() {
        f.push(("StopSignal", go_string(&stop)));
    }
    if let Some(t) = get("StopTimeout").and_then(Value::as_i64) {
        f.push(("StopTimeout", t.to_string()));
    }
    let shell = get("Shell").map(|s| str_slice(Some(s)));
    if let Some(s) = shell.filter(|s| s != "null" && s != "[]") {
        f.push(("Shell", s));
    }
    object(&f)
}

/// `container.HealthConfig`: every field `omitempty`.
fn health(h: &Value) -> String {
    let mut f: Vec<(&'static str, String)> = Vec::new();
    if let Some(t) = field(h, "Test").and_then(Value::as_array) {
        if !t.is_empty() {
            f.push(("Test", strings(field(h, "Test"))));
        }
    }
    for k in ["Interval", "Timeout", "StartPeriod", "Retries"] {
        if let Some(n) = field(h, k).and_then(Value::as_i64).filter(|n| *n != 0) {
            f.push((k, n.to_string()));
        }
    }
    object(&f)
}

/// A `[]string`: null when absent, else the strings.
fn strings(v: Option<&Value>) -> String {
    match v.and_then(Value::as_array) {
        Some(a) => {
            let parts: Vec<String> = a.iter().map(|s| go_string(&str_of(Some(s)))).collect();
            format!("[{}]", parts.join(","))
        }
        None => "null".into(),
    }
}

/// moby's `strslice.StrSlice`: a JSON string reads as a one-element list.
fn str_slice(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => format!("[{}]", go_string(s)),
        other => strings(other),
    }
}

/// A `map[string]struct{}`: keys sorted, values `{}`.
fn set_of<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let mut k: Vec<&String> = keys.collect();
    k.sort();
    let parts: Vec<String> = k.iter().map(|k| format!("{}:{{}}", go_string(k))).collect();
    format!("{{{}}}", parts.join(","))
}

fn object(fields: &[(&str, String)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", go_string(k)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// A string as Go's `encoding/json` writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped, and
/// control characters other than `\n`, `\r`, `\t` as `\u00XX`.
pub fn go_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An RFC 3339 time as Go writes a `time.Time` read from it: fraction without trailing zeros
/// (none when zero), `Z` for a zero offset.
fn go_time(s: &str) -> String {
    let Some(t) = s.find(['T', 't']) else {
        return s.to_string();
    };
    let rest = &s[t + 1..];
    let zone_at = rest
        .find(['Z', 'z', '+', '-'])
        .map(|i| t + 1 + i)
        .unwrap_or(s.len());
    let (clock, zone) = s.split_at(zone_at);
    let (whole, frac) = match clock.split_once('.') {
        Some((w, f)) => (w, f.trim_end_matches('0')),
        None => (clock, ""),
    };
    let zone = match zone {
        "" | "z" | "Z" | "+00:00" | "-00:00" => "Z",
        z => z,
    };
    if frac.is_empty() {
        format!("{whole}{zone}")
    } else {
        format!("{whole}.{frac}{zone}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_go_writes_them() {
        assert_eq!(
            go_time("2023-05-01T10:00:00.120000000Z"),
            "2023-05-01T10:00:00.12Z"
        );
        assert_eq!(go_time("2023-05-01T10:00:00.000Z"), "2023-05-01T10:00:00Z");
        assert_eq!(go_time("2023-05-01T10:00:00+00:00"), "2023-05-01T10:00:00Z");
        assert_eq!(
            go_time("2023-05-01T10:00:00.5-07:00"),
            "2023-05-01T10:00:00.5-07:00"
        );
    }

    #[test]
    fn strings_as_go_writes_them() {
        assert_eq!(
            go_string("a<b>&\"\\\n\u{8}é"),
            r#""a\u003cb\u003e\u0026\"\\\n\u0008é""#
        );
    }

    /// Expected values from Go: moby 20.10's `V1Image`, `container.Config` and `v1.CreateID`
    /// compiled against this config (stdlib `encoding/json`).
    #[test]
    fn ids_and_json_match_moby() {
        let cfg = r##"{"architecture":"amd64","author":"me <me@x>","config":{"Hostname":"","User":"app","Env":["PATH=/bin","A=<&>"],"Cmd":"sh -c 'echo hi'","Healthcheck":{"Test":["CMD","true"],"Interval":30000000000,"Retries":3},"ExposedPorts":{"80/tcp":{},"443/tcp":{}},"Labels":{"z":"1","a":"x\u2028y"},"WorkingDir":"/srv","StopSignal":"SIGTERM","Shell":[],"OnBuild":null},"container":"abc","container_config":{"Cmd":["/bin/sh","-c","#(nop) CMD"],"Volumes":{"/data":{}},"ArgsEscaped":true},"created":"2024-03-05T06:07:08.120000000+00:00","docker_version":"20.10.24","history":[{"created":"2024-03-05T06:07:08Z"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111","sha256:2222222222222222222222222222222222222222222222222222222222222222","sha256:3333333333333333333333333333333333333333333333333333333333333333"]}}"##;
        let v: Value = serde_json::from_str(cfg).unwrap();
        let diffs: Vec<Digest> = v["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().parse().unwrap())
            .collect();
        let mut chains: Vec<Digest> = Vec::new();
        for d in &diffs {
            let next = match chains.last() {
                None => d.clone(),
                Some(p) => Digest::of(format!("{p} {d}").as_bytes()),
            };
            chains.push(next);
        }
        let layers = v1_layers(cfg.as_bytes(), &chains).unwrap();
        let ids: Vec<&str> = layers.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "b92deaa799f8eb0e37ff758683cf41685a53eb2ca7a8c0853efb3c6ef9966ba4",
                "29b668817176055a98223c14cb46abcd368b0c690a08b05d69285cedea8cdad0",
                "32da2cb2f9312e7f016d182fa703da3741a0eb841140a495c696f57a3162f82e",
            ]
        );
        assert_eq!(
            String::from_utf8_lossy(&layers[1].json),
            r##"{"id":"29b668817176055a98223c14cb46abcd368b0c690a08b05d69285cedea8cdad0","parent":"b92deaa799f8eb0e37ff758683cf41685a53eb2ca7a8c0853efb3c6ef9966ba4","created":"1970-01-01T00:00:00Z","container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"os":"linux"}"##
        );
        assert_eq!(
            String::from_utf8_lossy(&layers[2].json),
            r##"{"id":"32da2cb2f9312e7f016d182fa703da3741a0eb841140a495c696f57a3162f82e","parent":"29b668817176055a98223c14cb46abcd368b0c690a08b05d69285cedea8cdad0","created":"2024-03-05T06:07:08.12Z","container":"abc","container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","#(nop) CMD"],"ArgsEscaped":true,"Image":"","Volumes":{"/data":{}},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"docker_version":"20.10.24","author":"me \u003cme@x\u003e","config":{"Hostname":"","Domainname":"","User":"app","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"443/tcp":{},"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/bin","A=\u003c\u0026\u003e"],"Cmd":["sh -c 'echo hi'"],"Healthcheck":{"Test":["CMD","true"],"Interval":30000000000,"Retries":3},"Image":"","Volumes":null,"WorkingDir":"/srv","Entrypoint":null,"OnBuild":null,"Labels":{"a":"x\u2028y","z":"1"},"StopSignal":"SIGTERM"},"architecture":"amd64","os":"linux"}"##
        );
    }
}
