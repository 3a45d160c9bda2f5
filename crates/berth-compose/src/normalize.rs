//! One service's short forms written out long, as Compose v2's `config` shows them: ports and
//! volumes as objects, environment/labels/sysctls as maps, commands split, durations and sizes
//! in Go's notation, relative paths made absolute. Pure: files (`env_file`) are read by the
//! caller through the `read` function it passes.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::interpolate::Env;
use crate::units::{format_duration, parse_duration, ram_in_bytes, split_command};

/// A value that cannot be normalized; the path names where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {why}")]
pub struct NormalizeError {
    pub path: String,
    pub why: String,
}

fn err(path: &str, why: impl Into<String>) -> NormalizeError {
    NormalizeError {
        path: path.to_string(),
        why: why.into(),
    }
}

/// What normalizing a service needs from around it.
pub struct Context<'a> {
    /// The project directory: relative paths are resolved against it.
    pub dir: &'a Path,
    /// Variables for bare `environment` names (`- FOO` takes FOO's value).
    pub env: &'a Env,
    /// `$HOME`, for `~/` in bind sources.
    pub home: Option<&'a Path>,
    /// Reads an `env_file`; the error text is shown as is.
    pub read: &'a dyn Fn(&Path) -> Result<String, String>,
}

/// Normalize service `name` in place.
pub fn service(name: &str, svc: &mut Value, cx: &Context) -> Result<(), NormalizeError> {
    let path = format!("services.{name}");
    let Value::Object(m) = svc else {
        if svc.is_null() {
            *svc = json!({});
            return service(name, svc, cx);
        }
        return Err(err(&path, "must be a mapping"));
    };
    for key in ["command", "entrypoint"] {
        if let Some(Value::String(s)) = m.get(key) {
            let words = split_command(s)
                .ok_or_else(|| err(&format!("{path}.{key}"), "unterminated quote"))?;
            m.insert(
                key.into(),
                Value::Array(words.into_iter().map(Value::String).collect()),
            );
        }
    }
    if let Some(b) = m.get_mut("build") {
        build(b, cx.dir);
    }
    environment(m, &path, cx)?;
    for key in ["labels", "sysctls", "annotations"] {
        if let Some(v) = m.get_mut(key) {
            *v = list_to_map(v, false);
        }
    }
    for key in ["dns", "dns_search", "tmpfs", "env_file"] {
        if let Some(Value::String(s)) = m.get(key) {
            let s = s.clone();
            m.insert(key.into(), json!([s]));
        }
    }
    if let Some(Value::Array(items)) = m.get_mut("expose") {
        for it in items.iter_mut() {
            *it = Value::String(scalar_text(it));
        }
    }
    if let Some(v) = m.get_mut("extra_hosts") {
        *v = extra_hosts(v);
    }
    if let Some(v) = m.get_mut("ports") {
        *v = ports(v, &format!("{path}.ports"))?;
    }
    if let Some(v) = m.get_mut("volumes") {
        *v = volumes(v, &format!("{path}.volumes"), cx)?;
    }
    if let Some(v) = m.get_mut("depends_on") {
        *v = depends_on(v);
    }
    for key in ["secrets", "configs"] {
        if let Some(Value::Array(items)) = m.get_mut(key) {
            for it in items.iter_mut() {
                if let Value::String(s) = it {
                    // Compose writes a target for a secret only; a config's stays unset.
                    *it = if key == "secrets" {
                        json!({"source": s.clone(), "target": format!("/run/secrets/{s}")})
                    } else {
                        json!({"source": s.clone()})
                    };
                }
            }
        }
    }
    if let Some(v) = m.get_mut("networks") {
        *v = list_to_map(v, true);
    }
    if let Some(Value::Object(h)) = m.get_mut("healthcheck") {
        if let Some(Value::String(t)) = h.get("test") {
            let t = t.clone();
            h.insert("test".into(), json!(["CMD-SHELL", t]));
        }
        for k in ["interval", "timeout", "start_period", "start_interval"] {
            go_duration(h, k, &format!("{path}.healthcheck.{k}"))?;
        }
    }
    go_duration(m, "stop_grace_period", &format!("{path}.stop_grace_period"))?;
    for k in ["mem_limit", "mem_reservation", "memswap_limit", "shm_size"] {
        bytes_field(m, k, &format!("{path}.{k}"))?;
    }
    if let Some(Value::Object(d)) = m.get_mut("deploy") {
        d.entry("placement").or_insert_with(|| json!({}));
        if let Some(Value::Object(r)) = d.get_mut("resources") {
            for part in ["limits", "reservations"] {
                if let Some(Value::Object(l)) = r.get_mut(part) {
                    bytes_field(
                        l,
                        "memory",
                        &format!("{path}.deploy.resources.{part}.memory"),
                    )?;
                    if let Some(Value::String(c)) = l.get("cpus") {
                        let n: f64 = c.trim().parse().map_err(|_| {
                            err(
                                &format!("{path}.deploy.resources.{part}.cpus"),
                                format!("invalid number {c:?}"),
                            )
                        })?;
                        l.insert("cpus".into(), json!(n));
                    }
                }
            }
        }
    }
    Ok(())
}

/// What Compose fills in once the files are merged: `command`/`entrypoint` shown as null when
/// unset, and the `default` network for a service with neither networks nor a network mode.
pub fn defaults(m: &mut Map<String, Value>) {
    m.entry("command").or_insert(Value::Null);
    m.entry("entrypoint").or_insert(Value::Null);
    if !m.contains_key("networks") && !m.contains_key("network_mode") {
        m.insert("networks".into(), json!({"default": null}));
    }
}

/// A scalar as text (numbers as YAML wrote them).
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn go_duration(m: &mut Map<String, Value>, key: &str, path: &str) -> Result<(), NormalizeError> {
    if let Some(Value::String(s)) = m.get(key) {
        let ns = parse_duration(s)
            .ok_or_else(|| err(path, format!("invalid duration {s:?} (use 90s, 1m30s, …)")))?;
        m.insert(key.into(), Value::String(format_duration(ns)));
    }
    Ok(())
}

fn bytes_field(m: &mut Map<String, Value>, key: &str, path: &str) -> Result<(), NormalizeError> {
    if let Some(v) = m.get(key) {
        let text = scalar_text(v);
        let n = ram_in_bytes(&text)
            .ok_or_else(|| err(path, format!("invalid size {text:?} (use 512m, 1g, …)")))?;
        m.insert(key.into(), Value::String(n.to_string()));
    }
    Ok(())
}

fn build(b: &mut Value, dir: &Path) {
    if let Value::String(ctx) = b {
        let ctx = ctx.clone();
        *b = json!({"context": ctx});
    }
    if let Value::Object(m) = b {
        let ctx = m
            .get("context")
            .and_then(Value::as_str)
            .unwrap_or(".")
            .to_string();
        // A remote context (git URL, http) is kept as written.
        let is_remote = ctx.contains("://") || ctx.starts_with("git@");
        let abs = if is_remote {
            ctx
        } else {
            absolute(dir, &ctx).to_string_lossy().into_owned()
        };
        m.insert("context".into(), Value::String(abs));
        if !m.contains_key("dockerfile_inline") {
            m.entry("dockerfile")
                .or_insert_with(|| Value::String("Dockerfile".into()));
        }
        if let Some(a) = m.get_mut("args") {
            *a = list_to_map(a, true);
        }
        if let Some(a) = m.get_mut("labels") {
            *a = list_to_map(a, false);
        }
    }
}

/// `dir/rel` without `.`/`..` components (no filesystem access, as Compose does).
pub fn absolute(dir: &Path, rel: &str) -> PathBuf {
    let joined = if Path::new(rel).is_absolute() {
        PathBuf::from(rel)
    } else {
        dir.join(rel)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `["a=b", "c"]` / `{a: b}` as a map; `c` alone is `""` (labels) or null (`null_bare`).
pub fn list_to_map(v: &Value, null_bare: bool) -> Value {
    match v {
        Value::Array(items) => {
            let mut m = Map::new();
            for it in items {
                let s = scalar_text(it);
                match s.split_once('=') {
                    Some((k, val)) => m.insert(k.to_string(), Value::String(val.to_string())),
                    None if null_bare => m.insert(s, Value::Null),
                    None => m.insert(s, Value::String(String::new())),
                };
            }
            Value::Object(m)
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Null | Value::Object(_) | Value::Array(_) => v.clone(),
                        scalar => Value::String(scalar_text(scalar)),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `environment` as a map, `env_file` contents beneath it, bare names resolved.
fn environment(m: &mut Map<String, Value>, path: &str, cx: &Context) -> Result<(), NormalizeError> {
    let mut env = Map::new();
    if let Some(files) = m.remove("env_file") {
        let files = match files {
            Value::String(s) => vec![json!(s)],
            Value::Array(a) => a,
            _ => vec![],
        };
        for f in files {
            let (file, required) = match &f {
                Value::Object(o) => (
                    o.get("path").map(scalar_text).unwrap_or_default(),
                    o.get("required").and_then(Value::as_bool).unwrap_or(true),
                ),
                other => (scalar_text(other), true),
            };
            let p = absolute(cx.dir, &file);
            let text = match (cx.read)(&p) {
                Ok(t) => t,
                Err(_) if !required => continue,
                Err(e) => {
                    return Err(err(
                        &format!("{path}.env_file"),
                        format!("env file {} not found: {e}", p.display()),
                    ))
                }
            };
            let pairs = crate::dotenv::parse(&text, cx.env)
                .map_err(|e| err(&format!("{path}.env_file"), format!("{}: {e}", p.display())))?;
            for (k, v) in pairs {
                env.insert(k, Value::String(v));
            }
        }
    }
    if let Some(v) = m.remove("environment") {
        if let Value::Object(given) = list_to_map(&v, true) {
            for (k, v) in given {
                let v = match v {
                    Value::Null => cx
                        .env
                        .get(&k)
                        .map(|s| Value::String(s.clone()))
                        .unwrap_or(Value::Null),
                    other => other,
                };
                env.insert(k, v);
            }
        }
    }
    if !env.is_empty() {
        m.insert("environment".into(), Value::Object(env));
    }
    Ok(())
}

fn extra_hosts(v: &Value) -> Value {
    let mut out: Vec<String> = match v {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                let s = scalar_text(i);
                match s.split_once('=') {
                    Some(_) => s,
                    // `host:ip`, where the ip may itself hold colons (IPv6).
                    None => match s.split_once(':') {
                        Some((h, ip)) => format!("{h}={ip}"),
                        None => s,
                    },
                }
            })
            .collect(),
        Value::Object(m) => m
            .iter()
            .flat_map(|(h, ips)| match ips {
                Value::Array(a) => a
                    .iter()
                    .map(|ip| format!("{h}={}", scalar_text(ip)))
                    .collect::<Vec<_>>(),
                other => vec![format!("{h}={}", scalar_text(other))],
            })
            .collect(),
        _ => return v.clone(),
    };
    out.sort();
    Value::Array(out.into_iter().map(Value::String).collect())
}

fn port_num(s: &str, path: &str) -> Result<u32, NormalizeError> {
    s.parse::<u32>()
        .ok()
        .filter(|n| *n <= 65535)
        .ok_or_else(|| err(path, format!("invalid port {s:?}")))
}

fn range(s: &str, path: &str) -> Result<(u32, u32), NormalizeError> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port_num(a, path)?, port_num(b, path)?);
            if b < a {
                return Err(err(path, format!("invalid port range {s:?}")));
            }
            Ok((a, b))
        }
        None => {
            let n = port_num(s, path)?;
            Ok((n, n))
        }
    }
}

/// The short port syntax `[[ip:]published:]target[/protocol]` as long entries, one per port of
/// a range.
fn short_port(spec: &str, path: &str) -> Result<Vec<Value>, NormalizeError> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_string()),
        None => (spec, "tcp".to_string()),
    };
    // An IPv6 host address is written in brackets.
    let (host_ip, rest) = if let Some(after) = rest.strip_prefix('[') {
        let (ip, tail) = after
            .split_once(']')
            .ok_or_else(|| err(path, format!("invalid port {spec:?}")))?;
        let tail = tail.strip_prefix(':').unwrap_or(tail);
        (Some(ip.to_string()), tail)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, published, target) = match (host_ip, parts.as_slice()) {
        (None, [t]) => (None, None, *t),
        (None, [p, t]) => (None, Some(*p), *t),
        (None, [ip, p, t]) => (Some(ip.to_string()), Some(*p), *t),
        (Some(ip), [p, t]) => (Some(ip), Some(*p), *t),
        (Some(ip), [t]) => (Some(ip), None, *t),
        _ => return Err(err(path, format!("invalid port {spec:?}"))),
    };
    let (t0, t1) = range(target, path)?;
    let published = published.filter(|p| !p.is_empty());
    let pub_range = published.map(|p| range(p, path)).transpose()?;
    let n = t1 - t0 + 1;
    let mut out = Vec::new();
    for i in 0..n {
        let mut m = Map::new();
        m.insert("mode".into(), json!("ingress"));
        if let Some(ip) = host_ip.as_ref().filter(|s| !s.is_empty()) {
            m.insert("host_ip".into(), json!(ip));
        }
        m.insert("target".into(), json!(t0 + i));
        match pub_range {
            // A published range as wide as the target range maps port to port.
            Some((p0, p1)) if p1 - p0 + 1 == n => {
                m.insert("published".into(), json!((p0 + i).to_string()));
            }
            // Otherwise each target takes any free port of the published range.
            Some((p0, p1)) if p0 != p1 => {
                m.insert("published".into(), json!(format!("{p0}-{p1}")));
            }
            Some((p0, _)) => {
                m.insert("published".into(), json!(p0.to_string()));
            }
            None => {}
        }
        m.insert("protocol".into(), json!(proto));
        out.push(Value::Object(m));
    }
    Ok(out)
}

fn ports(v: &Value, path: &str) -> Result<Value, NormalizeError> {
    let Value::Array(items) = v else {
        return Ok(v.clone());
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let here = format!("{path}.{i}");
        match it {
            Value::Object(m) => {
                let mut m = m.clone();
                m.entry("mode").or_insert_with(|| json!("ingress"));
                m.entry("protocol").or_insert_with(|| json!("tcp"));
                if let Some(t) = m.get("target") {
                    let n = port_num(&scalar_text(t), &format!("{here}.target"))?;
                    m.insert("target".into(), json!(n));
                }
                if let Some(p) = m.get("published") {
                    let s = scalar_text(p);
                    m.insert("published".into(), json!(s));
                }
                out.push(Value::Object(m));
            }
            other => out.extend(short_port(&scalar_text(other), &here)?),
        }
    }
    Ok(Value::Array(out))
}

fn is_path_source(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~')
}

fn volumes(v: &Value, path: &str, cx: &Context) -> Result<Value, NormalizeError> {
    let Value::Array(items) = v else {
        return Ok(v.clone());
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let here = format!("{path}.{i}");
        let mut m = match it {
            Value::Object(m) => m.clone(),
            other => short_volume(&scalar_text(other), &here)?,
        };
        if m.get("type").and_then(Value::as_str) == Some("bind") {
            if let Some(src) = m.get("source").and_then(Value::as_str) {
                let resolved = expand_home(src, cx.home)
                    .unwrap_or_else(|| absolute(cx.dir, src).to_string_lossy().into_owned());
                m.insert("source".into(), json!(resolved));
            }
        }
        if let Some(Value::Object(t)) = m.get_mut("tmpfs") {
            if let Some(s) = t.get("size") {
                let text = scalar_text(s);
                let n = ram_in_bytes(&text)
                    .ok_or_else(|| err(&format!("{here}.tmpfs.size"), "invalid size"))?;
                t.insert("size".into(), json!(n.to_string()));
            }
        }
        out.push(Value::Object(m));
    }
    Ok(Value::Array(out))
}

fn expand_home(src: &str, home: Option<&Path>) -> Option<String> {
    let rest = src.strip_prefix('~')?;
    let home = home?;
    Some(
        absolute(home, rest.trim_start_matches('/'))
            .to_string_lossy()
            .into_owned(),
    )
}

/// `[source:]target[:mode]` as a long volume entry.
fn short_volume(spec: &str, path: &str) -> Result<Map<String, Value>, NormalizeError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => return Err(err(path, format!("invalid volume specification {spec:?}"))),
    };
    if target.is_empty() {
        return Err(err(path, format!("invalid volume specification {spec:?}")));
    }
    let mut m = Map::new();
    let bind = source.is_some_and(is_path_source);
    m.insert("type".into(), json!(if bind { "bind" } else { "volume" }));
    if let Some(s) = source {
        m.insert("source".into(), json!(s));
    }
    m.insert("target".into(), json!(target));
    let mut bind_opts = Map::new();
    let mut vol_opts = Map::new();
    for opt in mode
        .unwrap_or_default()
        .split(',')
        .filter(|o| !o.is_empty())
    {
        match opt {
            "ro" => {
                m.insert("read_only".into(), json!(true));
            }
            "rw" => {}
            "z" | "Z" => {
                bind_opts.insert("selinux".into(), json!(opt));
            }
            "nocopy" => {
                vol_opts.insert("nocopy".into(), json!(true));
            }
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                bind_opts.insert("propagation".into(), json!(opt));
            }
            "cached" | "delegated" | "consistent" => {
                m.insert("consistency".into(), json!(opt));
            }
            other => {
                return Err(err(
                    path,
                    format!("invalid volume option {other:?} in {spec:?}"),
                ))
            }
        }
    }
    if bind {
        bind_opts.insert("create_host_path".into(), json!(true));
        m.insert("bind".into(), Value::Object(bind_opts));
    } else {
        m.insert("volume".into(), Value::Object(vol_opts));
    }
    Ok(m)
}

fn depends_on(v: &Value) -> Value {
    let mut out = Map::new();
    match v {
        Value::Array(items) => {
            for it in items {
                out.insert(
                    scalar_text(it),
                    json!({"condition": "service_started", "required": true}),
                );
            }
        }
        Value::Object(m) => {
            for (k, d) in m {
                let mut d = d.as_object().cloned().unwrap_or_default();
                d.entry("condition")
                    .or_insert_with(|| json!("service_started"));
                d.entry("required").or_insert_with(|| json!(true));
                out.insert(k.clone(), Value::Object(d));
            }
        }
        other => return other.clone(),
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx_run(v: Value) -> Result<Value, NormalizeError> {
        let env: Env = [("FROM_ENV".to_string(), "e".to_string())].into();
        let read = |p: &Path| -> Result<String, String> {
            if p == Path::new("/p/web.env") {
                Ok("F=1\nA=from-file\n".into())
            } else {
                Err("No such file or directory".into())
            }
        };
        let cx = Context {
            dir: Path::new("/p"),
            env: &env,
            home: Some(Path::new("/root")),
            read: &read,
        };
        let mut v = v;
        service("web", &mut v, &cx)?;
        defaults(v.as_object_mut().unwrap());
        Ok(v)
    }

    #[test]
    fn short_forms_are_written_long() {
        let v = cx_run(json!({
            "build": "./app",
            "command": "echo \"hello world\" 'x y'",
            "environment": ["A=1", "FROM_ENV", "NOPE", "C="],
            "env_file": "web.env",
            "ports": ["8081:80", 443, "127.0.0.1:9000-9001:9000-9001/udp", "[::1]:7000:7000"],
            "volumes": ["/host:/c:rw,z", "named:/n:nocopy", "./rel:/r:ro", "~/h:/h", "/anon"],
            "labels": ["a=b", "c"],
            "depends_on": ["db"],
            "healthcheck": {"test": "curl -f x", "interval": "90s"},
            "stop_grace_period": "1m",
            "extra_hosts": ["h:1.2.3.4", "a=::1"],
            "dns": "8.8.8.8",
            "deploy": {"resources": {"limits": {"cpus": "0.5", "memory": "50M"}}},
        }))
        .unwrap();
        assert_eq!(
            v["build"],
            json!({"context": "/p/app", "dockerfile": "Dockerfile"})
        );
        assert_eq!(v["command"], json!(["echo", "hello world", "x y"]));
        assert_eq!(v["entrypoint"], Value::Null);
        assert_eq!(
            v["environment"],
            json!({"A": "1", "C": "", "F": "1", "FROM_ENV": "e", "NOPE": null})
        );
        assert!(v.get("env_file").is_none());
        assert_eq!(
            v["ports"][0],
            json!({"mode": "ingress", "target": 80, "published": "8081", "protocol": "tcp"})
        );
        assert_eq!(
            v["ports"][1],
            json!({"mode": "ingress", "target": 443, "protocol": "tcp"})
        );
        assert_eq!(v["ports"][3]["published"], "9001");
        assert_eq!(v["ports"][3]["host_ip"], "127.0.0.1");
        assert_eq!(v["ports"][4]["host_ip"], "::1");
        assert_eq!(
            v["volumes"][0],
            json!({"type": "bind", "source": "/host", "target": "/c",
                   "bind": {"create_host_path": true, "selinux": "z"}})
        );
        assert_eq!(
            v["volumes"][1],
            json!({"type": "volume", "source": "named", "target": "/n", "volume": {"nocopy": true}})
        );
        assert_eq!(v["volumes"][2]["source"], "/p/rel");
        assert_eq!(v["volumes"][2]["read_only"], true);
        assert_eq!(v["volumes"][3]["source"], "/root/h");
        assert_eq!(
            v["volumes"][4],
            json!({"type": "volume", "target": "/anon", "volume": {}})
        );
        assert_eq!(v["labels"], json!({"a": "b", "c": ""}));
        assert_eq!(
            v["depends_on"]["db"],
            json!({"condition": "service_started", "required": true})
        );
        assert_eq!(v["healthcheck"]["test"], json!(["CMD-SHELL", "curl -f x"]));
        assert_eq!(v["healthcheck"]["interval"], "1m30s");
        assert_eq!(v["stop_grace_period"], "1m0s");
        assert_eq!(v["extra_hosts"], json!(["a=::1", "h=1.2.3.4"]));
        assert_eq!(v["dns"], json!(["8.8.8.8"]));
        assert_eq!(v["networks"], json!({"default": null}));
        assert_eq!(
            v["deploy"]["resources"]["limits"],
            json!({"cpus": 0.5, "memory": "52428800"})
        );
    }

    #[test]
    fn bad_values_name_their_path() {
        let e = cx_run(json!({"ports": ["80:99999"]})).unwrap_err();
        assert_eq!(e.path, "services.web.ports.0");
        let e = cx_run(json!({"volumes": ["a:b:c:d"]})).unwrap_err();
        assert_eq!(e.path, "services.web.volumes.0");
        let e = cx_run(json!({"env_file": ["missing.env"]})).unwrap_err();
        assert!(e.why.contains("/p/missing.env"), "{e}");
        let e = cx_run(json!({"stop_grace_period": "soon"})).unwrap_err();
        assert_eq!(e.path, "services.web.stop_grace_period");
        let e = cx_run(json!({"command": "echo 'open"})).unwrap_err();
        assert_eq!(e.path, "services.web.command");
    }
}
