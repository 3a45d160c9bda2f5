//! The workload between berth and Kubernetes: a pod of containers with what both sides can
//! express (image, command/args, env, ports, mounts, probes, limits, security), read from
//! `docker inspect` JSON or a Compose service, and written as Kubernetes objects. A Compose
//! service's `env_file:` values become a ConfigMap of the pod (`compose_env_file_pairs`,
//! `env_files_to_config_map`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// A port a container listens on, and where the host publishes it (if it does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub container: u16,
    pub host: Option<u16>,
    pub host_ip: Option<String>,
    /// `TCP`, `UDP` or `SCTP` (Kubernetes spelling).
    pub protocol: String,
}

/// A mount: a named volume (→ PersistentVolumeClaim) or a host path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
    Bind {
        source: String,
        target: String,
        read_only: bool,
    },
    Tmpfs {
        target: String,
    },
}

/// A healthcheck as Kubernetes counts it (seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The probe's exec command.
    pub command: Vec<String>,
    pub period: Option<i32>,
    pub timeout: Option<i32>,
    pub retries: Option<i32>,
    pub start: Option<i32>,
}

/// One container of a pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerModel {
    pub name: String,
    pub image: String,
    /// Docker's entrypoint: Kubernetes' `command`.
    pub entrypoint: Option<Vec<String>>,
    /// Docker's cmd: Kubernetes' `args`.
    pub cmd: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub ports: Vec<Port>,
    pub mounts: Vec<Mount>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub read_only: bool,
    pub privileged: bool,
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub check: Option<Check>,
    pub tty: bool,
    pub stdin: bool,
    /// ConfigMaps of the pod whose keys become environment variables (`envFrom`); `env` is
    /// applied over them.
    pub env_from: Vec<String>,
    /// Keys of the pod's Secret mounted as files (Compose's `secrets:`).
    pub secret_files: Vec<SecretFile>,
}

/// A key of the pod's Secret that a container reads as the file `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFile {
    pub key: String,
    pub target: String,
    pub mode: u32,
}

/// A pod: its name, labels and containers; `restart` is Docker's policy name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodModel {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub containers: Vec<ContainerModel>,
    pub restart: Option<String>,
    pub replicas: Option<i32>,
    /// ConfigMaps the pod's containers use: (name, data).
    pub config_maps: Vec<(String, BTreeMap<String, String>)>,
    /// Secrets the pod's containers use: (name, data).
    pub secrets: Vec<(String, crate::sources::Data)>,
}

/// A name as Kubernetes accepts it (RFC 1123 label: lowercase letters, digits, `-`; at most 63).
pub fn dns_name(s: &str) -> String {
    let mut out: String = s
        .trim_start_matches('/')
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out = out.trim_matches('-');
    let mut out: String = out.chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "unnamed".into()
    } else {
        out
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    })
}

fn secs(ns: Option<i64>) -> Option<i32> {
    ns.filter(|n| *n > 0)
        .map(|n| ((n + 999_999_999) / 1_000_000_000) as i32)
}

/// A Docker healthcheck (`Test`, durations in ns) as an exec probe; None when disabled.
pub fn check_from_docker(h: &Value) -> Option<Check> {
    let test = strings(h.get("Test")?)?;
    let command = match test.split_first() {
        Some((k, rest)) if k == "CMD" => rest.to_vec(),
        Some((k, rest)) if k == "CMD-SHELL" => {
            vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
        }
        _ => return None,
    };
    Some(Check {
        command,
        period: secs(h.get("Interval").and_then(Value::as_i64)),
        timeout: secs(h.get("Timeout").and_then(Value::as_i64)),
        retries: h
            .get("Retries")
            .and_then(Value::as_i64)
            .filter(|r| *r > 0)
            .map(|r| r as i32),
        start: secs(h.get("StartPeriod").and_then(Value::as_i64)),
    })
}

/// The ports a container (as `GET /containers/{id}/json` shows it) exposes, with their host
/// bindings. A played pod's are on its infra container.
pub fn ports_from_inspect(v: &Value) -> Vec<Port> {
    let cfg = &v["Config"];
    let host = &v["HostConfig"];
    let mut ports = Vec::new();
    if let Some(exposed) = cfg["ExposedPorts"].as_object() {
        for key in exposed.keys() {
            let (num, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let Ok(container) = num.parse::<u16>() else {
                continue;
            };
            let binding = host["PortBindings"][key.as_str()].get(0).cloned();
            ports.push(Port {
                container,
                host: binding
                    .as_ref()
                    .and_then(|b| b["HostPort"].as_str())
                    .and_then(|p| p.parse().ok()),
                host_ip: binding
                    .as_ref()
                    .and_then(|b| b["HostIp"].as_str())
                    .filter(|ip| !ip.is_empty() && *ip != "0.0.0.0")
                    .map(String::from),
                protocol: proto.to_uppercase(),
            });
        }
    }
    ports.sort_by_key(|p| (p.container, p.protocol.clone()));
    ports
}

/// A container as `GET /containers/{id}/json` shows it.
pub fn container_from_inspect(v: &Value) -> ContainerModel {
    let cfg = &v["Config"];
    let host = &v["HostConfig"];
    let mut env = Vec::new();
    for e in cfg["Env"].as_array().into_iter().flatten() {
        if let Some((k, val)) = e.as_str().and_then(|s| s.split_once('=')) {
            // The image's PATH comes back with the image; writing it would pin it.
            if k != "PATH" {
                env.push((k.to_string(), val.to_string()));
            }
        }
    }
    let ports = ports_from_inspect(v);
    let mut mounts = Vec::new();
    for m in v["Mounts"].as_array().into_iter().flatten() {
        let target = m["Destination"].as_str().unwrap_or_default().to_string();
        let read_only = m["RW"] == Value::Bool(false);
        match m["Type"].as_str() {
            Some("volume") => mounts.push(Mount::Volume {
                name: m["Name"].as_str().unwrap_or_default().to_string(),
                target,
                read_only,
            }),
            Some("bind") => mounts.push(Mount::Bind {
                source: m["Source"].as_str().unwrap_or_default().to_string(),
                target,
                read_only,
            }),
            Some("tmpfs") => mounts.push(Mount::Tmpfs { target }),
            _ => {}
        }
    }
    let list = |v: &Value| strings(v).unwrap_or_default();
    let nonempty = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    ContainerModel {
        name: dns_name(v["Name"].as_str().unwrap_or("container")),
        image: cfg["Image"].as_str().unwrap_or_default().to_string(),
        entrypoint: strings(&cfg["Entrypoint"]).filter(|e| !e.is_empty()),
        cmd: strings(&cfg["Cmd"]).filter(|c| !c.is_empty()),
        env,
        ports,
        mounts,
        workdir: nonempty(&cfg["WorkingDir"]),
        user: nonempty(&cfg["User"]),
        cap_add: list(&host["CapAdd"]),
        cap_drop: list(&host["CapDrop"]),
        read_only: host["ReadonlyRootfs"] == Value::Bool(true),
        privileged: host["Privileged"] == Value::Bool(true),
        memory: host["Memory"].as_i64().filter(|m| *m > 0),
        nano_cpus: host["NanoCpus"].as_i64().filter(|n| *n > 0),
        check: cfg.get("Healthcheck").and_then(check_from_docker),
        tty: cfg["Tty"] == Value::Bool(true),
        stdin: cfg["OpenStdin"] == Value::Bool(true),
        ..ContainerModel::default()
    }
}

/// A Compose service of a loaded project (berth-compose's model) as one container.
pub fn container_from_compose(project: &Value, name: &str, svc: &Value) -> ContainerModel {
    let project_name = project["name"].as_str().unwrap_or_default();
    let mut env: Vec<(String, String)> = svc["environment"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    env.sort();
    let ports = svc["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Port {
            container: p["target"].as_u64().unwrap_or(0) as u16,
            host: p["published"].as_str().and_then(|s| s.parse().ok()),
            host_ip: p["host_ip"].as_str().map(String::from),
            protocol: p["protocol"].as_str().unwrap_or("tcp").to_uppercase(),
        })
        .collect();
    let mounts = svc["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let target = m["target"].as_str()?.to_string();
            let read_only = m["read_only"] == Value::Bool(true);
            match m["type"].as_str()? {
                "volume" => Some(Mount::Volume {
                    name: m["source"]
                        .as_str()
                        .map(|s| {
                            project
                                .pointer(&format!("/volumes/{s}/name"))
                                .and_then(Value::as_str)
                                .map(String::from)
                                .unwrap_or_else(|| format!("{project_name}_{s}"))
                        })
                        .unwrap_or_else(|| format!("{project_name}-{name}-data")),
                    target,
                    read_only,
                }),
                "bind" => Some(Mount::Bind {
                    source: m["source"].as_str()?.to_string(),
                    target,
                    read_only,
                }),
                "tmpfs" => Some(Mount::Tmpfs { target }),
                _ => None,
            }
        })
        .collect();
    let check = svc.get("healthcheck").and_then(|h| {
        let test = strings(&h["test"])?;
        let dur = |k: &str| {
            h[k].as_str()
                .and_then(berth_compose::units::parse_duration)
                .map(|n| n as i64)
        };
        check_from_docker(&serde_json::json!({
            "Test": test,
            "Interval": dur("interval"),
            "Timeout": dur("timeout"),
            "StartPeriod": dur("start_period"),
            "Retries": h["retries"],
        }))
    });
    let limits = svc.pointer("/deploy/resources/limits");
    ContainerModel {
        name: dns_name(name),
        image: svc["image"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("{project_name}-{name}")),
        entrypoint: strings(&svc["entrypoint"]),
        cmd: strings(&svc["command"]),
        env,
        ports,
        mounts,
        workdir: svc["working_dir"].as_str().map(String::from),
        user: svc["user"].as_str().map(String::from),
        cap_add: strings(&svc["cap_add"]).unwrap_or_default(),
        cap_drop: strings(&svc["cap_drop"]).unwrap_or_default(),
        read_only: svc["read_only"] == Value::Bool(true),
        privileged: svc["privileged"] == Value::Bool(true),
        memory: svc["mem_limit"]
            .as_str()
            .or_else(|| limits.and_then(|l| l["memory"].as_str()))
            .and_then(|m| m.parse().ok()),
        nano_cpus: limits
            .and_then(|l| l["cpus"].as_f64())
            .map(|c| (c * 1e9) as i64),
        check,
        tty: svc["tty"] == Value::Bool(true),
        stdin: svc["stdin_open"] == Value::Bool(true),
        ..ContainerModel::default()
    }
}

/// What service `service`'s `env_file:` entries hold. berth-compose's model merges them into
/// `environment`, so the entries are read from the project's files as written (later files
/// adding to earlier ones; a service an `include` brings in has none here), interpolated with
/// the project's variables, resolved against its directory and parsed as Compose parses them
/// (an optional file that is missing is skipped). `read` reads a file.
pub fn compose_env_file_pairs(
    p: &berth_compose::Project,
    service: &str,
    read: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<Vec<(String, String)>, String> {
    let mut entries = Vec::new();
    for f in &p.files {
        let text = read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let doc: Value =
            serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        let list = match &doc["services"][service]["env_file"] {
            Value::Array(a) => a.clone(),
            Value::Null => vec![],
            one => vec![one.clone()],
        };
        for e in list {
            entries.push(match &e {
                Value::Object(o) => (
                    o.get("path")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    o.get("required").and_then(Value::as_bool).unwrap_or(true),
                ),
                other => (other.as_str().unwrap_or_default().to_string(), true),
            });
        }
    }
    let mut out = Vec::new();
    for (path, required) in entries {
        let path = berth_compose::interpolate::interpolate(&path, &p.env)
            .map_err(|e| format!("services.{service}.env_file: {e}"))?
            .text;
        let full = p.dir.join(path);
        let text = match read(&full) {
            Ok(t) => t,
            Err(_) if !required => continue,
            Err(e) => return Err(format!("env file {}: {e}", full.display())),
        };
        let pairs = berth_compose::dotenv::parse(&text, &p.env)
            .map_err(|e| format!("{}: {e}", full.display()))?;
        out.extend(pairs);
    }
    Ok(out)
}

/// A Compose service's `secrets:` as one Secret `<pod>-secrets`: a key per secret (its target's
/// file name) holding its bytes (`file:` read through `read`, `content:`, or the project's
/// variable for `environment:`), mounted file by file at the targets with their modes. None
/// when the service uses no secrets (external ones, Swarm's, are left out as Compose does).
pub fn compose_secrets(
    p: &berth_compose::Project,
    pod: &str,
    c: &mut ContainerModel,
    svc: &Value,
    read: &dyn Fn(&Path) -> Result<Vec<u8>, String>,
) -> Result<Option<(String, crate::sources::Data)>, String> {
    use berth_compose::plan::FileSource;
    let mut only_secrets = svc.clone();
    if let Some(m) = only_secrets.as_object_mut() {
        m.remove("configs");
    }
    let mut data = BTreeMap::new();
    for f in berth_compose::plan::secret_and_config_files(&p.model, &only_secrets) {
        let bytes = match &f.source {
            FileSource::Host(path) => {
                read(Path::new(path)).map_err(|e| format!("secret file {path}: {e}"))?
            }
            FileSource::Content(text) => text.clone().into_bytes(),
            FileSource::Variable(v) => p.env.get(v).cloned().unwrap_or_default().into_bytes(),
        };
        let base: String = Path::new(&f.target)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| crate::sources::valid_key(n))
            .unwrap_or_else(|| "secret".into());
        let mut key = base.clone();
        let mut n = 1;
        while data.contains_key(&key) {
            n += 1;
            key = format!("{base}-{n}");
        }
        data.insert(key.clone(), bytes);
        c.secret_files.push(SecretFile {
            key,
            target: f.target,
            mode: f.mode,
        });
    }
    if data.is_empty() {
        return Ok(None);
    }
    Ok(Some((dns_name(&format!("{pod}-secrets")), data)))
}

/// Move what a container's env files gave (`from_files`, later pairs winning) into a ConfigMap
/// `<pod>-env` that it takes with `envFrom`; its own `env` keeps a variable `environment:` set
/// (the files lack it, or it differs from theirs: `env` wins over `envFrom`, as `environment`
/// over `env_file`) and any name a ConfigMap key cannot be. None when the files gave nothing.
pub fn env_files_to_config_map(
    pod: &str,
    c: &mut ContainerModel,
    from_files: &[(String, String)],
) -> Option<(String, BTreeMap<String, String>)> {
    let files: BTreeMap<&str, &str> = from_files
        .iter()
        .filter(|(k, _)| crate::sources::valid_key(k))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if files.is_empty() {
        return None;
    }
    c.env
        .retain(|(k, v)| files.get(k.as_str()) != Some(&v.as_str()));
    let name = dns_name(&format!("{pod}-env"));
    c.env_from.push(name.clone());
    let data = files
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some((name, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_files_become_a_config_map_and_environment_stays_inline() {
        let dir = std::env::temp_dir();
        let compose = dir.join("compose.yaml");
        let p = berth_compose::Project {
            name: "proj".into(),
            dir: dir.clone(),
            files: vec![compose.clone()],
            model: json!({}),
            warnings: vec![],
            env: [("WHICH".to_string(), "app".to_string())].into(),
        };
        let read = |f: &Path| -> Result<String, String> {
            match f.file_name().and_then(|n| n.to_str()) {
                Some("compose.yaml") => Ok("services:\n  app:\n    env_file: [\"${WHICH}.env\", {path: gone.env, required: false}]\n".into()),
                Some("app.env") => Ok("A=from-file\nB=kept\nC=${WHICH}\n".into()),
                _ => Err("no such file".into()),
            }
        };
        let pairs = compose_env_file_pairs(&p, "app", &read).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("A".to_string(), "from-file".to_string()),
                ("B".into(), "kept".into()),
                ("C".into(), "app".into())
            ]
        );
        assert_eq!(compose_env_file_pairs(&p, "db", &read).unwrap(), vec![]);
        // The model's environment: the files' pairs under `environment:` (A overridden, D own).
        let mut c = ContainerModel {
            env: vec![
                ("A".into(), "inline".into()),
                ("B".into(), "kept".into()),
                ("C".into(), "app".into()),
                ("D".into(), "own".into()),
            ],
            ..ContainerModel::default()
        };
        let (name, data) = env_files_to_config_map("proj-app", &mut c, &pairs).unwrap();
        assert_eq!(name, "proj-app-env");
        assert_eq!(data["A"], "from-file");
        assert_eq!(data.len(), 3);
        assert_eq!(
            c.env,
            vec![
                ("A".to_string(), "inline".to_string()),
                ("D".into(), "own".into())
            ]
        );
        assert_eq!(c.env_from, vec!["proj-app-env"]);
        let mut none = ContainerModel::default();
        assert!(env_files_to_config_map("p", &mut none, &[]).is_none());
        // A required file that is missing is named.
        let read_missing = |f: &Path| -> Result<String, String> {
            if f.ends_with("compose.yaml") {
                Ok("services:\n  app:\n    env_file: missing.env\n".into())
            } else {
                Err("no such file".into())
            }
        };
        let e = compose_env_file_pairs(&p, "app", &read_missing).unwrap_err();
        assert!(e.contains("missing.env: no such file"), "{e}");
    }

    #[test]
    fn compose_secrets_become_one_secret_mounted_file_by_file() {
        let p = berth_compose::Project {
            name: "proj".into(),
            dir: "/p".into(),
            files: vec![],
            model: json!({"secrets": {
                "token": {"file": "/p/token.txt"},
                "inline": {"content": "abc"},
                "fromenv": {"environment": "KEY"},
            }}),
            warnings: vec![],
            env: [("KEY".to_string(), "k3y".to_string())].into(),
        };
        let svc = json!({"secrets": [
            {"source": "token", "target": "/run/secrets/token"},
            {"source": "inline", "target": "/etc/app/token", "mode": 256},
            {"source": "fromenv", "target": "/run/secrets/fromenv"},
        ], "configs": [{"source": "x"}]});
        let read = |f: &Path| -> Result<Vec<u8>, String> {
            assert_eq!(f, Path::new("/p/token.txt"));
            Ok(b"s3cret".to_vec())
        };
        let mut c = ContainerModel::default();
        let (name, data) = compose_secrets(&p, "proj-app", &mut c, &svc, &read)
            .unwrap()
            .unwrap();
        assert_eq!(name, "proj-app-secrets");
        assert_eq!(data["token"], b"s3cret");
        assert_eq!(data["token-2"], b"abc");
        assert_eq!(data["fromenv"], b"k3y");
        assert_eq!(
            c.secret_files[1],
            SecretFile {
                key: "token-2".into(),
                target: "/etc/app/token".into(),
                mode: 256
            }
        );
        let mut none = ContainerModel::default();
        assert!(compose_secrets(&p, "p", &mut none, &json!({}), &read)
            .unwrap()
            .is_none());
    }

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_name("/My_App.web-1"), "my-app-web-1");
        assert_eq!(dns_name("__"), "unnamed");
        assert_eq!(dns_name(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn an_inspected_container_reads_as_a_model() {
        let v = json!({
            "Name": "/web_1",
            "Config": {
                "Image": "busybox", "Entrypoint": null, "Cmd": ["httpd", "-f"],
                "Env": ["PATH=/bin", "A=1"], "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
                "WorkingDir": "", "User": "1000",
                "Healthcheck": {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5_000_000_000u64, "Retries": 3}
            },
            "HostConfig": {
                "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
                "CapAdd": ["NET_ADMIN"], "ReadonlyRootfs": true, "Memory": 1048576
            },
            "Mounts": [{"Type": "volume", "Name": "data", "Destination": "/data", "RW": true},
                       {"Type": "bind", "Source": "/h", "Destination": "/c", "RW": false}]
        });
        let c = container_from_inspect(&v);
        assert_eq!(c.name, "web-1");
        assert_eq!(c.cmd, Some(vec!["httpd".into(), "-f".into()]));
        assert_eq!(c.env, vec![("A".to_string(), "1".to_string())]);
        assert_eq!(c.ports.len(), 2);
        assert_eq!(
            c.ports[1],
            Port {
                container: 80,
                host: Some(8080),
                host_ip: Some("127.0.0.1".into()),
                protocol: "TCP".into()
            }
        );
        assert_eq!(
            c.mounts[1],
            Mount::Bind {
                source: "/h".into(),
                target: "/c".into(),
                read_only: true
            }
        );
        assert_eq!(c.user.as_deref(), Some("1000"));
        assert!(c.read_only);
        let check = c.check.unwrap();
        assert_eq!(check.command, vec!["/bin/sh", "-c", "wget -q localhost"]);
        assert_eq!(check.period, Some(5));
        assert_eq!(check.retries, Some(3));
    }
}
