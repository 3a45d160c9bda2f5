//! The docker CLI's context store, shared with it: `$DOCKER_CONFIG` (else `~/.docker`)
//! `/contexts/meta/<sha256 of the name>/meta.json` and `currentContext` in `config.json`.
//! `-H`/`BERTH_HOST`/`DOCKER_HOST` win; else `--context`/`BERTH_CONTEXT`, `DOCKER_CONTEXT`,
//! `currentContext` pick a context whose docker endpoint names the daemon. TLS material lives
//! in `contexts/tls/<sha256>/docker/{ca,cert,key}.pem`; `export`/`import` move a context as
//! docker's tar (`meta.json`, `tls/docker/*.pem`).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::exit::Exit;

/// The name meaning "no context": the host from flags/environment or the default socket.
pub const DEFAULT: &str = "default";

/// One context as `ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub name: String,
    pub description: String,
    /// The docker endpoint's `Host`; None for `default`.
    pub host: Option<String>,
    /// The docker endpoint's TLS settings, when it has any.
    pub tls: Option<ContextTls>,
}

/// A context's TLS: the files it stores and whether the daemon's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextTls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub skip_verify: bool,
}

impl ContextTls {
    /// The client's options: verify against the stored CA unless `skip-tls-verify`.
    pub fn options(&self) -> berth_client::TlsOptions {
        berth_client::TlsOptions {
            verify: !self.skip_verify,
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }
}

/// `--docker host=URL,ca=FILE,cert=FILE,key=FILE,skip-tls-verify=BOOL` (docker's keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSpec {
    pub host: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub skip_tls_verify: Option<bool>,
}

impl EndpointSpec {
    pub fn parse(spec: &str) -> anyhow::Result<EndpointSpec> {
        let bad = |why: String| Exit::msg(1, format!("--docker {spec:?}: {why}"));
        let mut e = EndpointSpec::default();
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("{part:?} is not key=value")))?;
            let v = v.trim();
            match k.trim() {
                "host" => e.host = Some(v.to_string()),
                "ca" => e.ca = Some(v.into()),
                "cert" => e.cert = Some(v.into()),
                "key" => e.key = Some(v.into()),
                "skip-tls-verify" => {
                    e.skip_tls_verify =
                        Some(v.parse().map_err(|_| {
                            bad(format!("skip-tls-verify={v:?}: write true or false"))
                        })?)
                }
                other => {
                    return Err(bad(format!(
                        "unknown key {other:?} (known: host, ca, cert, key, skip-tls-verify)"
                    )))
                }
            }
        }
        if e.cert.is_some() != e.key.is_some() {
            return Err(bad("cert and key go together".into()));
        }
        if let Some(h) = &e.host {
            berth_client::Host::parse(h).map_err(|err| bad(err.to_string()))?;
        }
        Ok(e)
    }

    fn has_tls_files(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

/// `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn config_dir() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".docker"),
    }
}

fn meta_dir(cfg: &Path, name: &str) -> PathBuf {
    let id = berth_oci::Digest::of(name.as_bytes());
    cfg.join("contexts/meta").join(id.hex())
}

fn read_json(p: &Path) -> anyhow::Result<Option<Value>> {
    match std::fs::read(p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Exit::msg(1, format!("{}: not valid JSON: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Exit::msg(1, format!("cannot read {}: {e}", p.display()))),
    }
}

fn tls_dir(cfg: &Path, name: &str) -> PathBuf {
    let id = berth_oci::Digest::of(name.as_bytes());
    cfg.join("contexts/tls").join(id.hex())
}

fn from_meta(cfg: &Path, v: &Value) -> Context {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let name = s(v.get("Name"));
    let skip_verify = v
        .pointer("/Endpoints/docker/SkipTLSVerify")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let dir = tls_dir(cfg, &name).join("docker");
    let file = |f: &str| Some(dir.join(f)).filter(|p| p.is_file());
    let (ca, cert, key) = (file("ca.pem"), file("cert.pem"), file("key.pem"));
    let tls = (ca.is_some() || cert.is_some() || skip_verify).then_some(ContextTls {
        ca,
        cert,
        key,
        skip_verify,
    });
    Context {
        description: s(v.pointer("/Metadata/Description")),
        host: v
            .pointer("/Endpoints/docker/Host")
            .and_then(Value::as_str)
            .map(String::from),
        name,
        tls,
    }
}

/// The context `name`'s stored metadata; an unknown name is one line, exit 1.
fn meta(cfg: &Path, name: &str) -> anyhow::Result<Value> {
    read_json(&meta_dir(cfg, name).join("meta.json"))?.ok_or_else(|| {
        Exit::msg(
            1,
            format!("context \"{name}\" does not exist (`berth context ls` lists them)"),
        )
    })
}

/// The context `name` (`default` is always there).
pub fn load(cfg: &Path, name: &str) -> anyhow::Result<Context> {
    if name == DEFAULT {
        return Ok(Context {
            name: DEFAULT.into(),
            description: "Current DOCKER_HOST based configuration".into(),
            host: None,
            tls: None,
        });
    }
    Ok(from_meta(cfg, &meta(cfg, name)?))
}

/// `currentContext` of `config.json`, else `default`.
pub fn current(cfg: &Path) -> anyhow::Result<String> {
    Ok(read_json(&cfg.join("config.json"))?
        .and_then(|v| v.get("currentContext")?.as_str().map(String::from))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT.into()))
}

/// Which context is selected: the flag/`BERTH_CONTEXT`, `DOCKER_CONTEXT`, `currentContext`.
pub fn selected(cfg: &Path, flag: Option<&str>) -> anyhow::Result<String> {
    let env = std::env::var("DOCKER_CONTEXT").ok();
    match flag.or(env.as_deref()).filter(|s| !s.is_empty()) {
        Some(n) => Ok(n.to_string()),
        None => current(cfg),
    }
}

/// Where the client connects: an address and, from a context, its TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub tls: Option<ContextTls>,
}

/// The daemon to use, in docker's order: `--context` and `-H` together are refused; then
/// `--context`/`BERTH_CONTEXT`, `-H`/`BERTH_HOST`, `DOCKER_HOST`, `DOCKER_CONTEXT`,
/// `currentContext`. None means the default socket.
pub fn resolve_host(host: Option<&str>, context: Option<&str>) -> anyhow::Result<Option<Target>> {
    let host = host.filter(|h| !h.is_empty());
    let context = context.filter(|c| !c.is_empty());
    if host.is_some() && context.is_some() {
        return Err(Exit::msg(
            1,
            "conflicting options: either specify --host or --context, not both",
        ));
    }
    let cfg = config_dir();
    let name = match (context, host) {
        (Some(c), _) => c.to_string(),
        (None, Some(h)) => {
            return Ok(Some(Target {
                host: h.to_string(),
                tls: None,
            }))
        }
        (None, None) => match std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()) {
            Some(h) => return Ok(Some(Target { host: h, tls: None })),
            None => selected(&cfg, None)?,
        },
    };
    let c = load(&cfg, &name)?;
    Ok(c.host.map(|host| Target { host, tls: c.tls }))
}

/// All contexts, `default` first, then by name.
pub fn list(cfg: &Path) -> anyhow::Result<Vec<Context>> {
    let mut out = vec![load(cfg, DEFAULT)?];
    let dir = cfg.join("contexts/meta");
    let mut named = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            if let Some(v) = read_json(&e.path().join("meta.json"))? {
                named.push(from_meta(cfg, &v));
            }
        }
    }
    named.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(named);
    Ok(out)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() >= 2
        && name != DEFAULT
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
    if !valid {
        return Err(Exit::msg(
            1,
            format!(
                "context name {name:?} is invalid: use two or more letters, digits and _.+- (not \"default\")"
            ),
        ));
    }
    Ok(())
}

/// A valid name no context has yet (what `create` and `import` may make).
fn check_new(cfg: &Path, name: &str) -> anyhow::Result<()> {
    check_name(name)?;
    if meta_dir(cfg, name).join("meta.json").exists() {
        return Err(Exit::msg(1, format!("context \"{name}\" already exists")));
    }
    Ok(())
}

/// Write `bytes` to `path` with `mode`, through a temporary file and a rename.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| Exit::msg(1, format!("cannot write {}: {e}", tmp.display())))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The endpoint's TLS files, read and checked to be PEM before anything is written.
fn read_tls_files(e: &EndpointSpec) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    let mut out = Vec::new();
    for (file, path, flag) in [
        ("ca.pem", &e.ca, "ca"),
        ("cert.pem", &e.cert, "cert"),
        ("key.pem", &e.key, "key"),
    ] {
        let Some(p) = path else { continue };
        let bytes = std::fs::read(p)
            .map_err(|err| Exit::msg(1, format!("--docker {flag}={}: {err}", p.display())))?;
        if !String::from_utf8_lossy(&bytes).contains("-----BEGIN ") {
            return Err(Exit::msg(
                1,
                format!("--docker {flag}={}: not a PEM file", p.display()),
            ));
        }
        out.push((file, bytes));
    }
    Ok(out)
}

/// Replace the context's TLS directory with `files` (key files 0600, directories 0700).
fn store_tls(cfg: &Path, name: &str, files: &[(&str, Vec<u8>)]) -> anyhow::Result<()> {
    let dir = tls_dir(cfg, name);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    if files.is_empty() {
        return Ok(());
    }
    let ep = dir.join("docker");
    std::fs::create_dir_all(&ep)?;
    use std::os::unix::fs::PermissionsExt;
    for d in [&dir, &ep] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
    }
    for (file, bytes) in files {
        write_file(&ep.join(file), bytes, 0o600)?;
    }
    Ok(())
}

fn endpoint_json(host: &str, skip: bool) -> Value {
    json!({"Host": host, "SkipTLSVerify": skip})
}

/// Make context `name` with the docker endpoint `e` (its host checked as berth would dial it).
pub fn create(cfg: &Path, name: &str, e: &EndpointSpec, description: &str) -> anyhow::Result<()> {
    check_new(cfg, name)?;
    let host = e.host.as_deref().ok_or_else(|| {
        Exit::msg(
            1,
            "--docker needs host=unix:///path, host=tcp://h:p or host=ssh://[user@]host[:port]",
        )
    })?;
    let files = read_tls_files(e)?;
    let dir = meta_dir(cfg, name);
    let meta = json!({
        "Name": name,
        "Metadata": {"Description": description},
        "Endpoints": {"docker": endpoint_json(host, e.skip_tls_verify.unwrap_or(false))},
    });
    store_tls(cfg, name, &files)?;
    write_file(&dir.join("meta.json"), &serde_json::to_vec(&meta)?, 0o644)
}

/// `context update`: a new description and/or docker endpoint (TLS files are replaced when
/// any is given; the host and skip flag keep their values unless given).
pub fn update(
    cfg: &Path,
    name: &str,
    description: Option<&str>,
    e: Option<&EndpointSpec>,
) -> anyhow::Result<()> {
    if name == DEFAULT {
        return Err(Exit::msg(1, "the default context cannot be updated"));
    }
    let mut v = meta(cfg, name)?;
    let files = match e {
        Some(e) if e.has_tls_files() => Some(read_tls_files(e)?),
        _ => None,
    };
    if let Some(d) = description {
        v["Metadata"]["Description"] = d.into();
    }
    if let Some(e) = e {
        let old = from_meta(cfg, &v);
        let host = e.host.clone().or(old.host).unwrap_or_default();
        let skip = e
            .skip_tls_verify
            .unwrap_or_else(|| old.tls.is_some_and(|t| t.skip_verify));
        v["Endpoints"]["docker"] = endpoint_json(&host, skip);
    }
    if let Some(files) = files {
        store_tls(cfg, name, &files)?;
    }
    write_file(
        &meta_dir(cfg, name).join("meta.json"),
        &serde_json::to_vec(&v)?,
        0o644,
    )
}

/// `context export`: docker's tar of the context (`meta.json`, `tls/docker/*.pem`).
pub fn export(cfg: &Path, name: &str, out: impl std::io::Write) -> anyhow::Result<()> {
    if name == DEFAULT {
        return Err(Exit::msg(1, "the default context cannot be exported"));
    }
    let meta_bytes = serde_json::to_vec(&meta(cfg, name)?)?;
    let mut t = tar::Builder::new(out);
    let mut add = |path: &str, bytes: &[u8], mode: u32| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, path, bytes)
    };
    add("meta.json", &meta_bytes, 0o644)?;
    let ep = tls_dir(cfg, name).join("docker");
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        if let Ok(bytes) = std::fs::read(ep.join(f)) {
            add(&format!("tls/docker/{f}"), &bytes, 0o600)?;
        }
    }
    t.into_inner()?.flush()?;
    Ok(())
}

/// The most an imported archive may hold (a context is a few KiB).
const IMPORT_LIMIT: u64 = 1 << 20;

/// `context import`: a tar from `export` (berth's or docker's) as context `name`. Only
/// `meta.json` and `tls/<endpoint>/<file>.pem` are taken; anything else is refused.
pub fn import(cfg: &Path, name: &str, input: impl std::io::Read) -> anyhow::Result<()> {
    use std::io::Read;
    check_new(cfg, name)?;
    let bad = |why: String| Exit::msg(1, format!("cannot import context {name:?}: {why}"));
    let mut meta_v: Option<Value> = None;
    let mut files: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut total = 0u64;
    let mut ar = tar::Archive::new(input);
    for entry in ar
        .entries()
        .map_err(|e| bad(format!("not a context archive: {e}")))?
    {
        let mut entry = match entry {
            Ok(e) => e,
            // docker's own export ends without padding or the two zero blocks (its writer is
            // never closed): after whole entries, a short end is the end.
            Err(e)
                if meta_v.is_some()
                    && (e.kind() == std::io::ErrorKind::UnexpectedEof
                        || e.to_string().contains("unexpected EOF")) =>
            {
                break
            }
            Err(e) => return Err(bad(format!("not a context archive: {e}"))),
        };
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let p = path.to_string_lossy().trim_start_matches("./").to_string();
        match entry.header().entry_type() {
            tar::EntryType::Directory if p == "tls" || p.starts_with("tls/") => continue,
            tar::EntryType::Regular => {}
            _ => return Err(bad(format!("{p:?} is not a regular file"))),
        }
        total += entry.size();
        if total > IMPORT_LIMIT {
            return Err(bad("the archive holds more than 1 MiB".into()));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{p:?}: {e}")))?;
        if bytes.len() as u64 != entry.size() {
            return Err(bad(format!("{p:?} is cut short")));
        }
        let parts: Vec<&str> = p.split('/').collect();
        match parts.as_slice() {
            ["meta.json"] => {
                meta_v = Some(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| bad(format!("meta.json: not valid JSON: {e}")))?,
                )
            }
            ["tls", "docker", f] => {
                let file = match *f {
                    "ca.pem" => "ca.pem",
                    "cert.pem" => "cert.pem",
                    "key.pem" => "key.pem",
                    other => return Err(bad(format!("unexpected TLS file {other:?}"))),
                };
                files.push((file, bytes));
            }
            // Other endpoints (docker's old kubernetes one) have nothing berth uses.
            ["tls", ep, _] if ep.chars().all(|c| c.is_ascii_alphanumeric()) => {}
            _ => return Err(bad(format!("unexpected entry {p:?}"))),
        }
    }
    let mut v = meta_v.ok_or_else(|| bad("no meta.json in the archive".into()))?;
    let has = |f: &str| files.iter().any(|(n, _)| *n == f);
    if has("cert.pem") != has("key.pem") {
        return Err(bad(
            "it holds a client certificate without its key (or a key without its certificate)"
                .into(),
        ));
    }
    let host = v
        .pointer("/Endpoints/docker/Host")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("meta.json has no docker endpoint".into()))?;
    berth_client::Host::parse(host).map_err(|e| bad(e.to_string()))?;
    v["Name"] = name.into();
    store_tls(cfg, name, &files)?;
    write_file(
        &meta_dir(cfg, name).join("meta.json"),
        &serde_json::to_vec(&v)?,
        0o644,
    )
}

/// Remove context `name` (its metadata and TLS data).
pub fn remove(cfg: &Path, name: &str) -> anyhow::Result<()> {
    meta(cfg, name)?;
    if current(cfg)? == name {
        return Err(Exit::msg(
            1,
            format!("context \"{name}\" is in use: `berth context use default` first"),
        ));
    }
    std::fs::remove_dir_all(meta_dir(cfg, name))?;
    match std::fs::remove_dir_all(tls_dir(cfg, name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Set `currentContext` in `config.json`, keeping everything else there.
pub fn use_context(cfg: &Path, name: &str) -> anyhow::Result<()> {
    load(cfg, name)?;
    let p = cfg.join("config.json");
    let mut v = read_json(&p)?.unwrap_or_else(|| Value::Object(Map::new()));
    let Some(o) = v.as_object_mut() else {
        return Err(Exit::msg(1, format!("{}: not a JSON object", p.display())));
    };
    if name == DEFAULT {
        o.remove("currentContext");
    } else {
        o.insert("currentContext".into(), name.into());
    }
    std::fs::create_dir_all(cfg)?;
    std::fs::write(&p, serde_json::to_vec_pretty(&v)?)?;
    Ok(())
}

/// The stored metadata of each name, as `context inspect` prints it.
pub fn inspect(cfg: &Path, names: &[String]) -> anyhow::Result<Value> {
    let mut out = Vec::new();
    for n in names {
        out.push(if n == DEFAULT {
            let c = load(cfg, DEFAULT)?;
            json!({"Name": c.name, "Metadata": {"Description": c.description},
                   "Endpoints": {"docker": {"Host": crate::defaults::client_host().to_string()}}})
        } else {
            let mut v = meta(cfg, n)?;
            let c = from_meta(cfg, &v);
            let material: Vec<&str> = c
                .tls
                .iter()
                .flat_map(|t| {
                    [
                        ("ca.pem", &t.ca),
                        ("cert.pem", &t.cert),
                        ("key.pem", &t.key),
                    ]
                })
                .filter(|(_, p)| p.is_some())
                .map(|(f, _)| f)
                .collect();
            v["TLSMaterial"] = if material.is_empty() {
                json!({})
            } else {
                json!({ "docker": material })
            };
            v["Storage"] = json!({
                "MetadataPath": meta_dir(cfg, n),
                "TLSPath": tls_dir(cfg, n),
            });
            v
        });
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_use_list_remove_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path();
        std::fs::write(cfg.join("config.json"), r#"{"auths":{"r":{}}}"#).unwrap();
        let ep = |s: &str| EndpointSpec::parse(s).unwrap();
        create(cfg, "box", &ep("host=ssh://me@box:2222"), "build box").unwrap();
        assert!(create(cfg, "box", &ep("host=unix:///x"), "").is_err());
        assert!(create(cfg, "bad name", &ep("host=unix:///x"), "").is_err());
        assert!(EndpointSpec::parse("host=ftp://x").is_err());
        // docker's layout: the directory is the name's sha256 (`printf box | sha256sum`)
        let dir = cfg
            .join("contexts/meta")
            .join("26f8567f2569182294c3fa5b9f9cb2270b554eef628b4c149cf82a42888ff4ae");
        assert!(dir.join("meta.json").is_file());
        let names: Vec<String> = list(cfg).unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["default", "box"]);
        use_context(cfg, "box").unwrap();
        assert_eq!(current(cfg).unwrap(), "box");
        let v: Value =
            serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap()).unwrap();
        assert!(v.get("auths").is_some(), "other keys kept: {v}");
        assert_eq!(
            load(cfg, "box").unwrap().host.as_deref(),
            Some("ssh://me@box:2222")
        );
        assert!(remove(cfg, "box").is_err(), "in use");
        use_context(cfg, DEFAULT).unwrap();
        remove(cfg, "box").unwrap();
        assert!(load(cfg, "box").is_err());
        assert!(use_context(cfg, "nope").is_err());
    }

    #[test]
    fn endpoint_specs_are_docker_s_keys() {
        let e = EndpointSpec::parse(
            "host=tcp://h:2376,ca=/c.pem,cert=/a.pem,key=/k.pem,skip-tls-verify=true",
        )
        .unwrap();
        assert_eq!(e.host.as_deref(), Some("tcp://h:2376"));
        assert_eq!(e.ca.as_deref(), Some(Path::new("/c.pem")));
        assert_eq!(e.skip_tls_verify, Some(true));
        for bad in [
            "host",
            "from=x",
            "skip-tls-verify=maybe",
            "host=tcp://h:1,cert=/a.pem",
        ] {
            assert!(EndpointSpec::parse(bad).is_err(), "{bad}");
        }
    }

    fn pem(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("-----BEGIN X-----\n{name}\n-----END X-----\n")).unwrap();
        p
    }

    #[test]
    fn tls_files_update_export_and_import() {
        let d = tempfile::tempdir().unwrap();
        let cfg = &d.path().join("cfg");
        let src = d.path();
        let spec = format!(
            "host=tcp://127.0.0.1:2376,ca={},cert={},key={}",
            pem(src, "ca").display(),
            pem(src, "cert").display(),
            pem(src, "key").display()
        );
        create(cfg, "remote", &EndpointSpec::parse(&spec).unwrap(), "r").unwrap();
        let c = load(cfg, "remote").unwrap();
        let tls = c.tls.clone().expect("tls stored");
        assert!(!tls.skip_verify);
        let key = tls.key.clone().unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(tls.options().verify);
        // a file that is not PEM is refused before anything changes
        std::fs::write(src.join("junk"), "junk").unwrap();
        let junk = EndpointSpec::parse(&format!("ca={}", src.join("junk").display())).unwrap();
        assert!(update(cfg, "remote", None, Some(&junk)).is_err());
        assert_eq!(load(cfg, "remote").unwrap(), c);
        // update keeps the host, sets the flag and the description
        let skip = EndpointSpec::parse("skip-tls-verify=true").unwrap();
        update(cfg, "remote", Some("new"), Some(&skip)).unwrap();
        let c2 = load(cfg, "remote").unwrap();
        assert_eq!(c2.host.as_deref(), Some("tcp://127.0.0.1:2376"));
        assert_eq!(c2.description, "new");
        assert!(c2.tls.as_ref().unwrap().skip_verify);
        // export → import under another name: same endpoint, same files
        let mut buf = Vec::new();
        export(cfg, "remote", &mut buf).unwrap();
        import(cfg, "copy", &buf[..]).unwrap();
        let c3 = load(cfg, "copy").unwrap();
        assert_eq!((c3.host, c3.description), (c2.host, c2.description));
        let t3 = c3.tls.unwrap();
        assert!(t3.skip_verify);
        assert_eq!(
            std::fs::read(t3.key.unwrap()).unwrap(),
            std::fs::read(key).unwrap()
        );
        assert!(import(cfg, "copy", &buf[..]).is_err(), "exists");
    }

    #[test]
    fn hostile_imports_are_refused_and_leave_nothing() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path();
        let tar_of = |entries: &[(&str, &[u8])]| {
            let mut t = tar::Builder::new(Vec::new());
            for (p, b) in entries {
                let mut h = tar::Header::new_gnu();
                h.set_size(b.len() as u64);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                // set_path refuses "..": write the raw name as a hostile archive would
                h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
                h.set_cksum();
                t.append(&h, *b).unwrap();
            }
            t.into_inner().unwrap()
        };
        let meta = br#"{"Name":"x","Metadata":{},"Endpoints":{"docker":{"Host":"unix:///s"}}}"#;
        for (what, entries) in [
            (
                "traversal",
                vec![("meta.json", &meta[..]), ("../evil", b"x".as_slice())],
            ),
            (
                "other file",
                vec![
                    ("meta.json", &meta[..]),
                    ("tls/docker/evil.sh", b"x".as_slice()),
                ],
            ),
            ("no meta", vec![("tls/docker/ca.pem", b"x".as_slice())]),
            (
                "bad host",
                vec![(
                    "meta.json",
                    br#"{"Endpoints":{"docker":{"Host":"ftp://x"}}}"#.as_slice(),
                )],
            ),
        ] {
            let r = import(cfg, "imp", &tar_of(&entries)[..]);
            assert!(r.is_err(), "{what}");
            assert!(load(cfg, "imp").is_err(), "{what}: left a context");
            assert!(!tls_dir(cfg, "imp").exists(), "{what}: left TLS files");
        }
        assert!(import(cfg, "imp", &b"not a tar at all"[..]).is_err());
        assert!(!d.path().join("evil").exists());
    }
}
