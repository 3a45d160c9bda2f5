//! The docker CLI's context store, shared with it: `$DOCKER_CONFIG` (else `~/.docker`)
//! `/contexts/meta/<sha256 of the name>/meta.json` and `currentContext` in `config.json`.
//! `-H`/`BERTH_HOST`/`DOCKER_HOST` win; else `--context`/`BERTH_CONTEXT`, `DOCKER_CONTEXT`,
//! `currentContext` pick a context whose docker endpoint names the daemon.

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

fn from_meta(v: &Value) -> Context {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    Context {
        name: s(v.get("Name")),
        description: s(v.pointer("/Metadata/Description")),
        host: v
            .pointer("/Endpoints/docker/Host")
            .and_then(Value::as_str)
            .map(String::from),
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
        });
    }
    Ok(from_meta(&meta(cfg, name)?))
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

/// The daemon address to use: `host` (-H/BERTH_HOST) or DOCKER_HOST first, else the
/// selected context's docker endpoint; None means the default socket.
pub fn resolve_host(host: Option<&str>, context: Option<&str>) -> anyhow::Result<Option<String>> {
    let docker_host = std::env::var("DOCKER_HOST").ok();
    if let Some(h) = host.or(docker_host.as_deref()).filter(|h| !h.is_empty()) {
        return Ok(Some(h.to_string()));
    }
    let cfg = config_dir();
    Ok(load(&cfg, &selected(&cfg, context)?)?.host)
}

/// All contexts, `default` first, then by name.
pub fn list(cfg: &Path) -> anyhow::Result<Vec<Context>> {
    let mut out = vec![load(cfg, DEFAULT)?];
    let dir = cfg.join("contexts/meta");
    let mut named = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            if let Some(v) = read_json(&e.path().join("meta.json"))? {
                named.push(from_meta(&v));
            }
        }
    }
    named.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(named);
    Ok(out)
}

/// Make context `name` with a docker endpoint at `host` (checked as berth would dial it).
pub fn create(cfg: &Path, name: &str, host: &str, description: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
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
                "context name {name:?} is invalid: use letters, digits and _.+- (not \"default\")"
            ),
        ));
    }
    berth_client::Host::parse(host).map_err(|e| Exit::msg(1, e.to_string()))?;
    let dir = meta_dir(cfg, name);
    if dir.join("meta.json").exists() {
        return Err(Exit::msg(1, format!("context \"{name}\" already exists")));
    }
    let meta = json!({
        "Name": name,
        "Metadata": {"Description": description},
        "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}},
    });
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("meta.json"), serde_json::to_vec(&meta)?)?;
    Ok(())
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
    let tls = cfg
        .join("contexts/tls")
        .join(berth_oci::Digest::of(name.as_bytes()).hex());
    match std::fs::remove_dir_all(&tls) {
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
                   "Endpoints": {"docker": {"Host": berth_client::Host::default().to_string()}}})
        } else {
            meta(cfg, n)?
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
        create(cfg, "box", "ssh://me@box:2222", "build box").unwrap();
        assert!(create(cfg, "box", "unix:///x", "").is_err());
        assert!(create(cfg, "bad name", "unix:///x", "").is_err());
        assert!(create(cfg, "h", "ftp://x", "").is_err());
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
}
