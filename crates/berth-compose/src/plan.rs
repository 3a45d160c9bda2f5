//! From the normalized model to Engine API requests, without touching the engine: container
//! names, Compose v2's labels, the per-service config hash, container create bodies, and the
//! network and volume create bodies. Pure, so every mapping is unit-tested.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::units::{parse_duration, ram_in_bytes};

/// Compose v2's label keys (so `docker compose` sees berth's projects and the other way round).
pub mod labels {
    pub const PROJECT: &str = "com.docker.compose.project";
    pub const SERVICE: &str = "com.docker.compose.service";
    pub const NUMBER: &str = "com.docker.compose.container-number";
    pub const ONEOFF: &str = "com.docker.compose.oneoff";
    pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
    pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
    pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
    pub const VERSION: &str = "com.docker.compose.version";
    pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
    pub const NETWORK: &str = "com.docker.compose.network";
    pub const VOLUME: &str = "com.docker.compose.volume";
}

/// What a project's containers share.
#[derive(Debug, Clone)]
pub struct ProjectInfo<'a> {
    pub name: &'a str,
    pub working_dir: &'a str,
    pub config_files: &'a str,
}

/// `<project>-<service>-<n>`, or the service's `container_name`.
pub fn container_name(project: &str, service: &str, svc: &Value, number: u32) -> String {
    match svc.get("container_name").and_then(Value::as_str) {
        Some(n) => n.to_string(),
        None => format!("{project}-{service}-{number}"),
    }
}

/// How many containers the service wants: `deploy.replicas`, else `scale`, else 1.
pub fn replicas(svc: &Value) -> u32 {
    svc.pointer("/deploy/replicas")
        .or_else(|| svc.get("scale"))
        .and_then(Value::as_u64)
        .map(|n| n as u32)
        .unwrap_or(1)
}

/// The service's config hash: sha256 of its normalized model without what does not change
/// the container (replica count, build section, pull policy). `up` recreates a container
/// whose label differs.
pub fn config_hash(svc: &Value) -> String {
    let mut v = svc.clone();
    if let Some(m) = v.as_object_mut() {
        for k in ["build", "pull_policy", "scale"] {
            m.remove(k);
        }
        if let Some(Value::Object(d)) = m.get_mut("deploy") {
            d.remove("replicas");
        }
    }
    // serde_json's map is ordered by key: the text is canonical.
    let text = serde_json::to_string(&v).expect("a JSON value serializes");
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn str_list(v: Option<&Value>) -> Vec<Value> {
    v.and_then(Value::as_array)
        .map(|a| a.to_vec())
        .unwrap_or_default()
}

fn nanos(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_str)
        .and_then(parse_duration)
        .map(|n| n as i64)
}

fn bytes(v: Option<&Value>) -> Option<i64> {
    v.and_then(|v| match v {
        Value::String(s) => ram_in_bytes(s),
        Value::Number(n) => n.as_i64(),
        _ => None,
    })
}

/// The engine-side name of network `key` of the project model.
pub fn network_name(model: &Value, key: &str) -> String {
    model
        .pointer(&format!("/networks/{key}/name"))
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| {
            format!(
                "{}_{key}",
                model
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )
        })
}

/// The engine-side name of volume `key` of the project model.
pub fn volume_name(model: &Value, key: &str) -> String {
    model
        .pointer(&format!("/volumes/{key}/name"))
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| {
            format!(
                "{}_{key}",
                model
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )
        })
}

/// The service's networks in a stable order: (key, per-service settings).
pub fn service_networks(svc: &Value) -> Vec<(String, Value)> {
    svc.get("networks")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// The endpoint settings of one network for one container of `service`.
pub fn endpoint(service: &str, cname: &str, settings: &Value) -> Value {
    let mut aliases = vec![json!(service), json!(cname)];
    aliases.extend(str_list(settings.get("aliases")));
    let mut ep = json!({"Aliases": aliases});
    let mut ipam = Map::new();
    if let Some(ip) = settings.get("ipv4_address") {
        ipam.insert("IPv4Address".into(), ip.clone());
    }
    if let Some(ip) = settings.get("ipv6_address") {
        ipam.insert("IPv6Address".into(), ip.clone());
    }
    if !ipam.is_empty() {
        ep["IPAMConfig"] = Value::Object(ipam);
    }
    if let Some(mac) = settings.get("mac_address") {
        ep["MacAddress"] = mac.clone();
    }
    ep
}

/// The `POST /containers/create` body for container `number` of `service`, attached to the
/// service's first network (the others are connected before start).
pub fn create_body(
    project: &ProjectInfo,
    model: &Value,
    service: &str,
    svc: &Value,
    number: u32,
) -> Value {
    let cname = container_name(project.name, service, svc, number);
    let mut labels: Map<String, Value> = svc
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in [
        (labels::PROJECT, project.name.to_string()),
        (labels::SERVICE, service.to_string()),
        (labels::NUMBER, number.to_string()),
        (labels::ONEOFF, "False".to_string()),
        (labels::CONFIG_HASH, config_hash(svc)),
        (labels::WORKING_DIR, project.working_dir.to_string()),
        (labels::CONFIG_FILES, project.config_files.to_string()),
        (
            labels::VERSION,
            concat!("berth-", env!("CARGO_PKG_VERSION")).to_string(),
        ),
        (labels::DEPENDS_ON, depends_label(svc)),
    ] {
        labels.insert(k.into(), json!(v));
    }
    let env: Vec<Value> = svc
        .get("environment")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| json!(format!("{k}={v}"))))
                .collect()
        })
        .unwrap_or_default();
    let mut exposed = Map::new();
    let mut bindings: Map<String, Value> = Map::new();
    for p in str_list(svc.get("ports")) {
        let key = format!(
            "{}/{}",
            p.get("target").and_then(Value::as_u64).unwrap_or_default(),
            p.get("protocol").and_then(Value::as_str).unwrap_or("tcp")
        );
        exposed.insert(key.clone(), json!({}));
        let b = json!({
            "HostIp": p.get("host_ip").and_then(Value::as_str).unwrap_or(""),
            "HostPort": p.get("published").and_then(Value::as_str).unwrap_or(""),
        });
        match bindings.get_mut(&key) {
            Some(Value::Array(a)) => a.push(b),
            _ => {
                bindings.insert(key, json!([b]));
            }
        }
    }
    for e in str_list(svc.get("expose")) {
        let e = e.as_str().unwrap_or_default().to_string();
        let key = if e.contains('/') {
            e
        } else {
            format!("{e}/tcp")
        };
        exposed.entry(key).or_insert_with(|| json!({}));
    }
    let mut mounts: Vec<Value> = str_list(svc.get("volumes"))
        .iter()
        .map(|v| mount(model, v))
        .collect();
    for f in secret_and_config_files(model, svc) {
        if let FileSource::Host(src) = &f.source {
            mounts
                .push(json!({"Type": "bind", "Source": src, "Target": f.target, "ReadOnly": true}));
        }
    }
    let networks = service_networks(svc);
    let network_mode = match svc.get("network_mode").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => networks
            .first()
            .map(|(k, _)| network_name(model, k))
            .unwrap_or_else(|| "none".into()),
    };
    let mut host = json!({
        "NetworkMode": network_mode,
        "PortBindings": bindings,
        "Mounts": mounts,
        "RestartPolicy": restart(svc.get("restart").and_then(Value::as_str)),
    });
    let h = host.as_object_mut().expect("object");
    let copy = |h: &mut Map<String, Value>, from: &str, to: &str| {
        if let Some(v) = svc.get(from) {
            h.insert(to.into(), v.clone());
        }
    };
    copy(h, "cap_add", "CapAdd");
    copy(h, "cap_drop", "CapDrop");
    copy(h, "dns", "Dns");
    copy(h, "dns_search", "DnsSearch");
    copy(h, "dns_opt", "DnsOptions");
    copy(h, "privileged", "Privileged");
    copy(h, "read_only", "ReadonlyRootfs");
    copy(h, "init", "Init");
    copy(h, "security_opt", "SecurityOpt");
    copy(h, "sysctls", "Sysctls");
    copy(h, "group_add", "GroupAdd");
    copy(h, "pid", "PidMode");
    copy(h, "ipc", "IpcMode");
    copy(h, "cgroup_parent", "CgroupParent");
    copy(h, "oom_score_adj", "OomScoreAdj");
    copy(h, "device_cgroup_rules", "DeviceCgroupRules");
    if let Some(devs) = svc.get("devices").and_then(Value::as_array) {
        // `host[:container[:permissions]]`, as `docker run --device` reads it.
        let api: Vec<Value> = devs
            .iter()
            .filter_map(Value::as_str)
            .map(|d| {
                let parts: Vec<&str> = d.split(':').collect();
                let host = parts[0];
                let ctr = parts.get(1).copied().unwrap_or(host);
                let perms = parts.get(2).copied().unwrap_or("rwm");
                json!({"PathOnHost": host, "PathInContainer": ctr, "CgroupPermissions": perms})
            })
            .collect();
        h.insert("Devices".into(), json!(api));
    }
    if let Some(hosts) = svc.get("extra_hosts").and_then(Value::as_array) {
        // The model writes `host=ip`; the API takes `host:ip`.
        let api: Vec<Value> = hosts
            .iter()
            .filter_map(Value::as_str)
            .map(|h| json!(h.replacen('=', ":", 1)))
            .collect();
        h.insert("ExtraHosts".into(), json!(api));
    }
    if let Some(t) = svc.get("tmpfs").and_then(Value::as_array) {
        let m: Map<String, Value> = t
            .iter()
            .filter_map(Value::as_str)
            .map(|s| match s.split_once(':') {
                Some((p, o)) => (p.to_string(), json!(o)),
                None => (s.to_string(), json!("")),
            })
            .collect();
        h.insert("Tmpfs".into(), Value::Object(m));
    }
    if let Some(l) = svc.get("logging") {
        h.insert(
            "LogConfig".into(),
            json!({
                "Type": l.get("driver").cloned().unwrap_or(json!("")),
                "Config": l.get("options").cloned().unwrap_or(json!({})),
            }),
        );
    }
    if let Some(Value::Object(u)) = svc.get("ulimits") {
        let list: Vec<Value> = u
            .iter()
            .map(|(name, v)| match v {
                Value::Object(o) => {
                    json!({"Name": name, "Soft": o.get("soft"), "Hard": o.get("hard")})
                }
                n => json!({"Name": name, "Soft": n, "Hard": n}),
            })
            .collect();
        h.insert("Ulimits".into(), json!(list));
    }
    let limits = svc.pointer("/deploy/resources/limits");
    if let Some(m) =
        bytes(svc.get("mem_limit")).or_else(|| bytes(limits.and_then(|l| l.get("memory"))))
    {
        h.insert("Memory".into(), json!(m));
    }
    if let Some(m) = bytes(svc.get("mem_reservation")) {
        h.insert("MemoryReservation".into(), json!(m));
    }
    if let Some(m) = bytes(svc.get("shm_size")) {
        h.insert("ShmSize".into(), json!(m));
    }
    let cpus = svc
        .get("cpus")
        .or_else(|| limits.and_then(|l| l.get("cpus")))
        .and_then(|c| match c {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        });
    if let Some(c) = cpus {
        h.insert("NanoCpus".into(), json!((c * 1e9) as i64));
    }
    if let Some(p) = svc
        .get("pids_limit")
        .or_else(|| limits.and_then(|l| l.get("pids")))
    {
        h.insert("PidsLimit".into(), p.clone());
    }
    let mut body = json!({
        "Image": svc.get("image").cloned().unwrap_or(json!(format!("{}-{service}", project.name))),
        "Env": env,
        "Labels": labels,
        "ExposedPorts": exposed,
        "HostConfig": host,
    });
    let b = body.as_object_mut().expect("object");
    for (from, to) in [
        ("command", "Cmd"),
        ("entrypoint", "Entrypoint"),
        ("hostname", "Hostname"),
        ("domainname", "Domainname"),
        ("user", "User"),
        ("working_dir", "WorkingDir"),
        ("tty", "Tty"),
        ("stdin_open", "OpenStdin"),
        ("stop_signal", "StopSignal"),
        ("mac_address", "MacAddress"),
    ] {
        if let Some(v) = svc.get(from).filter(|v| !v.is_null()) {
            b.insert(to.into(), v.clone());
        }
    }
    if let Some(ns) = nanos(svc.get("stop_grace_period")) {
        b.insert("StopTimeout".into(), json!(ns / 1_000_000_000));
    }
    if let Some(hc) = svc.get("healthcheck") {
        b.insert("Healthcheck".into(), healthcheck(hc));
    }
    if let Some((key, settings)) = networks.first() {
        if svc.get("network_mode").is_none() {
            b.insert(
                "NetworkingConfig".into(),
                json!({"EndpointsConfig": {network_name(model, key): endpoint(service, &cname, settings)}}),
            );
        }
    }
    body
}

/// Where a secret's or config's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A host file, bind-mounted read-only.
    Host(String),
    /// Bytes written into the container before it starts (`content:`).
    Content(String),
    /// A variable of the project's environment (`environment:`).
    Variable(String),
}

/// One secret or config file of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFile {
    pub target: String,
    pub source: FileSource,
    /// Octal mode (Compose's default 0444).
    pub mode: u32,
}

/// The service's secrets (at `/run/secrets/<name>` unless a target is given) and configs (at
/// `/<name>`), with where their bytes come from. External and driver-backed ones (Swarm
/// only) are left out.
pub fn secret_and_config_files(model: &Value, svc: &Value) -> Vec<ServiceFile> {
    let mut out = Vec::new();
    for (section, default_dir) in [("secrets", "/run/secrets/"), ("configs", "/")] {
        for r in str_list(svc.get(section)) {
            let Some(name) = r.get("source").and_then(Value::as_str) else {
                continue;
            };
            let Some(def) = model.pointer(&format!("/{section}/{name}")) else {
                continue;
            };
            let source = if let Some(f) = def.get("file").and_then(Value::as_str) {
                FileSource::Host(f.to_string())
            } else if let Some(c) = def.get("content").and_then(Value::as_str) {
                FileSource::Content(c.to_string())
            } else if let Some(v) = def.get("environment").and_then(Value::as_str) {
                FileSource::Variable(v.to_string())
            } else {
                continue;
            };
            let target = match r.get("target").and_then(Value::as_str) {
                Some(t) if t.starts_with('/') => t.to_string(),
                Some(t) => format!("{default_dir}{t}"),
                None => format!("{default_dir}{name}"),
            };
            let mode = match r.get("mode") {
                Some(Value::Number(n)) => n.as_u64().unwrap_or(0o444) as u32,
                Some(Value::String(s)) => {
                    u32::from_str_radix(s.trim_start_matches("0o"), 8).unwrap_or(0o444)
                }
                _ => 0o444,
            };
            out.push(ServiceFile {
                target,
                source,
                mode,
            });
        }
    }
    out
}

fn depends_label(svc: &Value) -> String {
    svc.get("depends_on")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(name, d)| {
                    format!(
                        "{name}:{}:{}",
                        d.get("condition")
                            .and_then(Value::as_str)
                            .unwrap_or("service_started"),
                        d.get("restart").and_then(Value::as_bool).unwrap_or(false)
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn restart(policy: Option<&str>) -> Value {
    match policy {
        Some(p) => {
            let (name, count) = match p.split_once(':') {
                Some((n, c)) => (n, c.parse::<i64>().unwrap_or(0)),
                None => (p, 0),
            };
            let name = if name == "no" { "" } else { name };
            json!({"Name": name, "MaximumRetryCount": count})
        }
        None => json!({"Name": "", "MaximumRetryCount": 0}),
    }
}

fn healthcheck(hc: &Value) -> Value {
    if hc.get("disable").and_then(Value::as_bool) == Some(true) {
        return json!({"Test": ["NONE"]});
    }
    let mut out = Map::new();
    if let Some(t) = hc.get("test") {
        out.insert("Test".into(), t.clone());
    }
    for (from, to) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
        ("start_interval", "StartInterval"),
    ] {
        if let Some(n) = nanos(hc.get(from)) {
            out.insert(to.into(), json!(n));
        }
    }
    if let Some(r) = hc.get("retries") {
        out.insert("Retries".into(), r.clone());
    }
    Value::Object(out)
}

/// A long-form volume entry as an API mount.
fn mount(model: &Value, v: &Value) -> Value {
    let typ = v.get("type").and_then(Value::as_str).unwrap_or("volume");
    let mut m = json!({
        "Type": typ,
        "Target": v.get("target").cloned().unwrap_or(json!("")),
        "ReadOnly": v.get("read_only").and_then(Value::as_bool).unwrap_or(false),
    });
    match typ {
        "volume" => {
            if let Some(src) = v.get("source").and_then(Value::as_str) {
                m["Source"] = json!(volume_name(model, src));
            }
            if v.pointer("/volume/nocopy") == Some(&Value::Bool(true)) {
                m["VolumeOptions"] = json!({"NoCopy": true});
            }
        }
        "bind" => {
            m["Source"] = v.get("source").cloned().unwrap_or(json!(""));
            if let Some(p) = v.pointer("/bind/propagation") {
                m["BindOptions"] = json!({"Propagation": p});
            }
        }
        "tmpfs" => {
            if let Some(size) = bytes(v.pointer("/tmpfs/size")) {
                m["TmpfsOptions"] = json!({"SizeBytes": size});
            }
        }
        _ => {}
    }
    m
}

/// The `POST /networks/create` body of project network `key`.
pub fn network_body(project: &str, key: &str, spec: &Value, name: &str) -> Value {
    let mut labels: Map<String, Value> = spec
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(labels::PROJECT.into(), json!(project));
    labels.insert(labels::NETWORK.into(), json!(key));
    labels.insert(
        labels::VERSION.into(),
        json!(concat!("berth-", env!("CARGO_PKG_VERSION"))),
    );
    let mut body = json!({
        "Name": name,
        "Driver": spec.get("driver").cloned().unwrap_or(json!("bridge")),
        "Labels": labels,
        "CheckDuplicate": true,
    });
    if let Some(o) = spec.get("driver_opts") {
        body["Options"] = o.clone();
    }
    for (from, to) in [
        ("internal", "Internal"),
        ("enable_ipv6", "EnableIPv6"),
        ("attachable", "Attachable"),
    ] {
        if let Some(v) = spec.get(from) {
            body[to] = v.clone();
        }
    }
    if let Some(ipam) = spec
        .get("ipam")
        .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
    {
        let config: Vec<Value> = str_list(ipam.get("config"))
            .iter()
            .map(|c| {
                let mut out = Map::new();
                for (from, to) in [
                    ("subnet", "Subnet"),
                    ("ip_range", "IPRange"),
                    ("gateway", "Gateway"),
                ] {
                    if let Some(v) = c.get(from) {
                        out.insert(to.into(), v.clone());
                    }
                }
                Value::Object(out)
            })
            .collect();
        body["IPAM"] = json!({
            "Driver": ipam.get("driver").cloned().unwrap_or(json!("default")),
            "Config": config,
            "Options": ipam.get("options").cloned().unwrap_or(json!({})),
        });
    }
    body
}

/// The `POST /volumes/create` body of project volume `key`.
pub fn volume_body(project: &str, key: &str, spec: &Value, name: &str) -> Value {
    let mut labels: Map<String, Value> = spec
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(labels::PROJECT.into(), json!(project));
    labels.insert(labels::VOLUME.into(), json!(key));
    labels.insert(
        labels::VERSION.into(),
        json!(concat!("berth-", env!("CARGO_PKG_VERSION"))),
    );
    json!({
        "Name": name,
        "Driver": spec.get("driver").cloned().unwrap_or(json!("local")),
        "DriverOpts": spec.get("driver_opts").cloned().unwrap_or(json!({})),
        "Labels": labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Value {
        json!({
            "name": "app",
            "networks": {"default": {"name": "app_default", "ipam": {}},
                         "front": {"name": "app_front", "ipam": {"config": [{"subnet": "10.5.0.0/16"}]}}},
            "volumes": {"data": {"name": "app_data"}},
            "services": {"web": {
                "image": "busybox",
                "command": ["httpd", "-f"],
                "entrypoint": null,
                "environment": {"A": "1", "B": null},
                "labels": {"mine": "x"},
                "ports": [{"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"},
                          {"mode": "ingress", "host_ip": "127.0.0.1", "target": 53, "protocol": "udp"}],
                "expose": ["3000"],
                "volumes": [{"type": "volume", "source": "data", "target": "/data", "volume": {}},
                            {"type": "bind", "source": "/h", "target": "/c", "read_only": true, "bind": {"create_host_path": true}}],
                "networks": {"front": {"aliases": ["w"], "ipv4_address": "10.5.0.5"}, "default": null},
                "healthcheck": {"test": ["CMD", "true"], "interval": "1s", "retries": 3},
                "restart": "on-failure:3",
                "extra_hosts": ["h=1.2.3.4"],
                "stop_grace_period": "1m0s",
                "deploy": {"replicas": 2, "resources": {"limits": {"cpus": 0.5, "memory": "52428800"}}},
                "depends_on": {"db": {"condition": "service_healthy", "required": true}},
            }}
        })
    }

    #[test]
    fn a_service_becomes_a_create_body() {
        let m = model();
        let svc = &m["services"]["web"];
        let info = ProjectInfo {
            name: "app",
            working_dir: "/p",
            config_files: "/p/compose.yaml",
        };
        let b = create_body(&info, &m, "web", svc, 2);
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["httpd", "-f"]));
        assert!(b.get("Entrypoint").is_none());
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["Labels"]["mine"], "x");
        assert_eq!(b["Labels"][labels::PROJECT], "app");
        assert_eq!(b["Labels"][labels::SERVICE], "web");
        assert_eq!(b["Labels"][labels::NUMBER], "2");
        assert_eq!(b["Labels"][labels::DEPENDS_ON], "db:service_healthy:false");
        assert_eq!(b["Labels"][labels::CONFIG_HASH], config_hash(svc));
        assert_eq!(
            b["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "3000/tcp": {}})
        );
        let h = &b["HostConfig"];
        assert_eq!(
            h["PortBindings"]["80/tcp"],
            json!([{"HostIp": "", "HostPort": "8080"}])
        );
        assert_eq!(
            h["PortBindings"]["53/udp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": ""}])
        );
        assert_eq!(
            h["Mounts"][0],
            json!({"Type": "volume", "Source": "app_data", "Target": "/data", "ReadOnly": false})
        );
        assert_eq!(
            h["Mounts"][1],
            json!({"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": true})
        );
        assert_eq!(h["NetworkMode"], "app_default");
        assert_eq!(
            h["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(h["ExtraHosts"], json!(["h:1.2.3.4"]));
        assert_eq!(h["Memory"], 52428800);
        let mut with_dev = svc.clone();
        with_dev["devices"] = json!(["/dev/fuse", "/dev/null:/dev/n0:r"]);
        let b2 = create_body(&info, &m, "web", &with_dev, 1);
        assert_eq!(
            b2["HostConfig"]["Devices"],
            json!([{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"},
                   {"PathOnHost": "/dev/null", "PathInContainer": "/dev/n0", "CgroupPermissions": "r"}])
        );
        assert_eq!(h["NanoCpus"], 500000000);
        assert_eq!(b["StopTimeout"], 60);
        assert_eq!(
            b["Healthcheck"],
            json!({"Test": ["CMD", "true"], "Interval": 1000000000u64, "Retries": 3})
        );
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"]["app_default"]["Aliases"],
            json!(["web", "app-web-2"])
        );
        let ep = endpoint("web", "app-web-2", &svc["networks"]["front"]);
        assert_eq!(ep["Aliases"], json!(["web", "app-web-2", "w"]));
        assert_eq!(ep["IPAMConfig"]["IPv4Address"], "10.5.0.5");
        assert_eq!(replicas(svc), 2);
    }

    #[test]
    fn secrets_and_configs_become_mounts_or_written_files() {
        let model = json!({
            "secrets": {"pw": {"file": "/p/pw.txt"}, "key": {"environment": "API_KEY"}},
            "configs": {"conf": {"content": "a=1"}, "ext": {"external": true}},
        });
        let svc = json!({
            "secrets": [{"source": "pw", "target": "/run/secrets/pw"}, {"source": "key", "target": "k"}],
            "configs": [{"source": "conf"}, {"source": "ext"}, {"source": "conf", "target": "/etc/c", "mode": 288}],
        });
        let files = secret_and_config_files(&model, &svc);
        assert_eq!(
            files,
            vec![
                ServiceFile {
                    target: "/run/secrets/pw".into(),
                    source: FileSource::Host("/p/pw.txt".into()),
                    mode: 0o444
                },
                ServiceFile {
                    target: "/run/secrets/k".into(),
                    source: FileSource::Variable("API_KEY".into()),
                    mode: 0o444
                },
                ServiceFile {
                    target: "/conf".into(),
                    source: FileSource::Content("a=1".into()),
                    mode: 0o444
                },
                ServiceFile {
                    target: "/etc/c".into(),
                    source: FileSource::Content("a=1".into()),
                    mode: 0o440
                },
            ]
        );
        let info = ProjectInfo {
            name: "p",
            working_dir: "/p",
            config_files: "",
        };
        let b = create_body(&info, &model, "s", &svc, 1);
        assert_eq!(
            b["HostConfig"]["Mounts"],
            json!([{"Type": "bind", "Source": "/p/pw.txt", "Target": "/run/secrets/pw", "ReadOnly": true}])
        );
    }

    #[test]
    fn the_hash_ignores_replicas_and_build_only() {
        let m = model();
        let svc = m["services"]["web"].clone();
        let mut scaled = svc.clone();
        scaled["deploy"]["replicas"] = json!(5);
        scaled["build"] = json!({"context": "/x"});
        assert_eq!(config_hash(&svc), config_hash(&scaled));
        let mut edited = svc.clone();
        edited["environment"]["A"] = json!("2");
        assert_ne!(config_hash(&svc), config_hash(&edited));
    }

    #[test]
    fn networks_and_volumes_carry_project_labels() {
        let m = model();
        let n = network_body("app", "front", &m["networks"]["front"], "app_front");
        assert_eq!(n["Name"], "app_front");
        assert_eq!(n["Labels"][labels::NETWORK], "front");
        assert_eq!(n["IPAM"]["Config"], json!([{"Subnet": "10.5.0.0/16"}]));
        let d = network_body("app", "default", &m["networks"]["default"], "app_default");
        assert!(d.get("IPAM").is_none());
        let v = volume_body("app", "data", &m["volumes"]["data"], "app_data");
        assert_eq!(v["Labels"][labels::VOLUME], "data");
        assert_eq!(v["Driver"], "local");
    }
}
