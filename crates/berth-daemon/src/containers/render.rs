//! Docker's JSON shapes for containers: inspect, the `/containers/json` summary (with
//! filters), and `Up 3 seconds` / `Exited (0) 2 minutes ago` status strings.

use super::Status;
use berth_api_types::{ApiError, ApiResult, Filters};
use serde_json::{json, Value};

use super::{Containers, Record, ZERO_TIME};

fn secs_since(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| (chrono::Utc::now() - d.with_timezone(&chrono::Utc)).num_seconds())
        .unwrap_or(0)
}

/// Go's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=2699 => format!("{} minutes", s / 60),
        2700..=5399 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 7 * 24 * 3600 * 2 => format!("{} days", s / 86400),
        _ if s < 30 * 24 * 3600 * 3 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
    }
}

pub fn status_text(r: &Record) -> String {
    match r.state.status {
        Status::Running => format!("Up {}", human_duration(secs_since(&r.state.started_at))),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(secs_since(&r.state.started_at))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            human_duration(secs_since(&r.state.finished_at))
        ),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        _ if r.state.finished_at == ZERO_TIME => "Created".into(),
        _ => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            human_duration(secs_since(&r.state.finished_at))
        ),
    }
}

fn ports_json(r: &Record) -> Value {
    let mut m = serde_json::Map::new();
    for p in r.config.exposed_ports.clone().unwrap_or_default() {
        m.insert(p, Value::Null);
    }
    for p in &r.ports {
        let k = format!("{}/{}", p.container_port, p.proto);
        let entry = m.entry(k).or_insert(Value::Array(vec![]));
        if !entry.is_array() {
            *entry = Value::Array(vec![]);
        }
        if let Value::Array(a) = entry {
            a.push(json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}));
        }
    }
    Value::Object(m)
}

fn networks_json(r: &Record) -> Value {
    let mut m = serde_json::Map::new();
    for e in &r.endpoints {
        let (ipam, links, opts) = crate::networks::endpoint_settings_json(r, &e.network);
        m.insert(
            e.network.clone(),
            json!({
                "IPAMConfig": ipam, "Links": links, "Aliases": e.aliases,
                "MacAddress": e.mac, "NetworkID": e.network_id, "EndpointID": e.veth_host,
                "Gateway": e.gateway.to_string(), "IPAddress": e.ip.to_string(),
                "IPPrefixLen": e.prefix, "IPv6Gateway": e.gateway6.map(|g| g.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": e.ipv6.map(|g| g.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": e.prefix6.unwrap_or(0), "DriverOpts": opts, "DNSNames": null,
            }),
        );
    }
    if m.is_empty() {
        let mode = r.host_config.network_mode.clone().unwrap_or_default();
        let mode = if mode.is_empty() || mode == "default" {
            "bridge".to_string()
        } else {
            mode
        };
        if !mode.starts_with("container:") {
            m.insert(
                mode,
                json!({"IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
                       "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
                       "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                       "GlobalIPv6PrefixLen": 0, "DriverOpts": null, "DNSNames": null}),
            );
        }
        crate::networks::add_configured_networks(r, &mut m);
    }
    Value::Object(m)
}

fn mounts_json(r: &Record) -> Value {
    if !r.mount_points.is_empty() {
        return serde_json::to_value(&r.mount_points).unwrap_or(Value::Array(vec![]));
    }
    let mut v = vec![];
    for b in r.host_config.binds.clone().unwrap_or_default() {
        let parts: Vec<&str> = b.split(':').collect();
        if parts.len() >= 2 {
            let mode = parts.get(2).copied().unwrap_or("");
            v.push(json!({"Type": "bind", "Source": parts[0], "Destination": parts[1],
                "Mode": mode, "RW": !mode.split(',').any(|m| m == "ro"), "Propagation": "rprivate"}));
        }
    }
    Value::Array(v)
}

pub fn inspect(cs: &Containers, r: &Record) -> Value {
    let dir = cs.ctr_dir(&r.id);
    let st = &r.state;
    let first_ep = r.endpoints.first();
    let mut hc = serde_json::to_value(&r.host_config).unwrap_or(json!({}));
    if let Value::Object(m) = &mut hc {
        for (k, d) in [
            ("NetworkMode", json!("bridge")),
            ("Memory", json!(0)),
            ("MemorySwap", json!(0)),
            ("NanoCpus", json!(0)),
            ("CpuShares", json!(0)),
            ("PidsLimit", Value::Null),
            ("Privileged", json!(false)),
            ("ReadonlyRootfs", json!(false)),
            ("AutoRemove", json!(false)),
            (
                "RestartPolicy",
                json!({"Name": "no", "MaximumRetryCount": 0}),
            ),
            ("LogConfig", json!({"Type": "json-file", "Config": {}})),
            ("Binds", Value::Null),
            ("PortBindings", json!({})),
            ("CapAdd", Value::Null),
            ("CapDrop", Value::Null),
        ] {
            m.entry(k).or_insert(d);
        }
        if m.get("NetworkMode").and_then(|v| v.as_str()) == Some("") {
            m.insert("NetworkMode".into(), json!("bridge"));
        }
        if r.host_config.links.is_some() {
            let links = if r.host_config.network_mode.as_deref() == Some("bridge") {
                super::names::render_links(r, |id| cs.get(id).ok().map(|c| c.snapshot().name))
            } else {
                r.host_config.links.clone()
            };
            m.insert("Links".into(), json!(links));
        }
    }
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": {
            "Status": st.status,
            "Running": st.status.is_running(),
            "Paused": st.status == Status::Paused,
            "Restarting": st.status == Status::Restarting,
            "OOMKilled": st.oom_killed,
            "Dead": st.status == Status::Dead,
            "Pid": st.pid,
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": st.started_at,
            "FinishedAt": st.finished_at,
            "Health": r.health,
        },
        "Image": r.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": cs.log_path(&r.id),
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": hc,
        "GraphDriver": {"Name": "overlay2", "Data": null},
        "Mounts": mounts_json(r),
        "Config": r.config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": r.id,
            "SandboxKey": r.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_json(r),
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": first_ep.map(|e| e.veth_host.clone()).unwrap_or_default(),
            "Gateway": first_ep.map(|e| e.gateway.to_string()).unwrap_or_default(),
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": first_ep.map(|e| e.ip.to_string()).unwrap_or_default(),
            "IPPrefixLen": first_ep.map(|e| e.prefix).unwrap_or(0),
            "IPv6Gateway": "",
            "MacAddress": first_ep.map(|e| e.mac.clone()).unwrap_or_default(),
            "Networks": networks_json(r),
        },
    })
}

pub fn summary(r: &Record) -> Value {
    let created = chrono::DateTime::parse_from_rfc3339(&r.created)
        .map(|d| d.timestamp())
        .unwrap_or(0);
    let mut cmd = vec![r.path.clone()];
    cmd.extend(r.args.iter().map(|a| {
        if a.contains(' ') {
            format!("\"{a}\"")
        } else {
            a.clone()
        }
    }));
    let mut ports: Vec<Value> = r
        .ports
        .iter()
        .map(|p| {
            json!({"IP": p.host_ip.to_string(), "PrivatePort": p.container_port,
                   "PublicPort": p.host_port, "Type": p.proto.to_string()})
        })
        .collect();
    for e in r.config.exposed_ports.clone().unwrap_or_default() {
        let (p, proto) = e.split_once('/').unwrap_or((&e, "tcp"));
        let Ok(p) = p.parse::<u16>() else { continue };
        if !r.ports.iter().any(|x| x.container_port == p) {
            ports.push(json!({"PrivatePort": p, "Type": proto}));
        }
    }
    let mode = r.host_config.network_mode.clone().unwrap_or_default();
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": cmd.join(" "),
        "Created": created,
        "Ports": ports,
        "Labels": r.config.labels.clone().unwrap_or_default(),
        "State": r.state.status,
        "Status": status_text(r),
        "HostConfig": {"NetworkMode": if mode.is_empty() { "bridge".to_string() } else { mode }},
        "NetworkSettings": {"Networks": networks_json(r)},
        "Mounts": mounts_json(r),
    })
}

/// Add the legacy link names (`/parent/alias`) other containers gave `r` to a summary's
/// `Names`, after its own name, as dockerd lists them.
pub fn add_link_names(v: &mut Value, r: &Record, all: &[Record]) {
    let mut names: Vec<String> = all
        .iter()
        .filter(|p| p.host_config.network_mode.as_deref() == Some("bridge"))
        .flat_map(|p| {
            p.host_config
                .links
                .iter()
                .flatten()
                .filter_map(|l| super::names::split_stored(l))
                .filter(|(t, _)| *t == r.id)
                .map(|(_, a)| format!("/{}/{a}", p.name))
                .collect::<Vec<_>>()
        })
        .collect();
    if names.is_empty() {
        return;
    }
    names.sort();
    if let Some(arr) = v.get_mut("Names").and_then(|n| n.as_array_mut()) {
        arr.extend(names.into_iter().map(Value::String));
    }
}

/// Docker's `/containers/json` filters.
pub fn matches(f: &Filters, r: &Record, all: &[Record]) -> ApiResult<bool> {
    f.validate(&[
        "id",
        "name",
        "label",
        "status",
        "ancestor",
        "exited",
        "before",
        "since",
        "network",
        "volume",
        "health",
        "is-task",
        "expose",
        "publish",
        "isolation",
    ])?;
    let any = |k: &str, pred: &dyn Fn(&str) -> bool| {
        let v = f.get(k);
        v.is_empty() || v.iter().any(|x| pred(x))
    };
    if !any("id", &|x| r.id.starts_with(x)) {
        return Ok(false);
    }
    if !any("name", &|x| {
        let x = x.trim_start_matches('/');
        r.name.contains(x)
    }) {
        return Ok(false);
    }
    for s in f.get("status") {
        if ![
            "created",
            "restarting",
            "running",
            "removing",
            "paused",
            "exited",
            "dead",
        ]
        .contains(&s)
        {
            return Err(ApiError::invalid(format!("invalid filter 'status={s}'")));
        }
    }
    if !any("status", &|x| x == r.state.status.as_str()) {
        return Ok(false);
    }
    let labels = r.config.labels.clone().unwrap_or_default();
    if !f.labels_match("label", &labels) {
        return Ok(false);
    }
    if !any("ancestor", &|x| {
        r.image == x
            || r.image_id == x
            || r.image_id
                .trim_start_matches("sha256:")
                .starts_with(x.trim_start_matches("sha256:"))
            || super::create::with_latest(&r.image) == super::create::with_latest(x)
    }) {
        return Ok(false);
    }
    if !f.get("exited").is_empty() {
        if r.state.status != Status::Exited {
            return Ok(false);
        }
        if !any("exited", &|x| {
            x.parse::<i64>().ok() == Some(r.state.exit_code)
        }) {
            return Ok(false);
        }
    }
    let created_of = |key: &str| -> Option<String> {
        all.iter()
            .find(|o| o.id.starts_with(key) || o.name == key.trim_start_matches('/'))
            .map(|o| o.created.clone())
    };
    for b in f.get("before") {
        let c =
            created_of(b).ok_or_else(|| ApiError::not_found(format!("No such container: {b}")))?;
        if r.created >= c {
            return Ok(false);
        }
    }
    for s in f.get("since") {
        let c =
            created_of(s).ok_or_else(|| ApiError::not_found(format!("No such container: {s}")))?;
        if r.created <= c {
            return Ok(false);
        }
    }
    if !any("network", &|x| {
        let mode = r.host_config.network_mode.clone().unwrap_or_default();
        let mode = if mode.is_empty() || mode == "default" {
            "bridge".to_string()
        } else {
            mode
        };
        mode == x
            || r.endpoints
                .iter()
                .any(|e| e.network == x || e.network_id.starts_with(x))
    }) {
        return Ok(false);
    }
    if !any("volume", &|x| {
        r.host_config
            .binds
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|b| b.split(':').take(2).any(|p| p == x))
    }) {
        return Ok(false);
    }
    if !any("health", &|x| {
        let h = r
            .health
            .as_ref()
            .and_then(|h| h.get("Status"))
            .and_then(|s| s.as_str())
            .unwrap_or("none");
        h == x
    }) {
        return Ok(false);
    }
    if !any("expose", &|x| {
        r.config
            .exposed_ports
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|p| p == x || p.split('/').next() == Some(x))
    }) {
        return Ok(false);
    }
    if !any("publish", &|x| {
        r.ports
            .iter()
            .any(|p| x == p.host_port.to_string() || x == format!("{}/{}", p.host_port, p.proto))
    }) {
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_follow_the_own_name() {
        let t = Record {
            id: "t1".into(),
            name: "db".into(),
            ..Default::default()
        };
        let mut p = Record {
            id: "p1".into(),
            name: "web".into(),
            ..Default::default()
        };
        p.host_config.network_mode = Some("bridge".into());
        p.host_config.links = Some(vec![super::super::names::stored_link("t1", "sql")]);
        let mut v = summary(&t);
        add_link_names(&mut v, &t, &[t.clone(), p]);
        assert_eq!(v["Names"], json!(["/db", "/web/sql"]));
    }

    #[test]
    fn human_durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(65), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3 * 3600), "3 hours");
    }

    #[test]
    fn filters_by_status_label_exited() {
        let mut r = Record {
            id: "abc".into(),
            name: "web".into(),
            ..Default::default()
        };
        r.state.status = Status::Exited;
        r.state.exit_code = 3;
        let mut l = std::collections::HashMap::new();
        l.insert("a".to_string(), "1".to_string());
        r.config.labels = Some(l);
        let all = vec![r.clone()];
        let f = |s: &str| Filters::parse(s).unwrap();
        assert!(matches(&f(r#"{"status":{"exited":true}}"#), &r, &all).unwrap());
        assert!(!matches(&f(r#"{"status":{"running":true}}"#), &r, &all).unwrap());
        assert!(matches(&f(r#"{"exited":{"3":true}}"#), &r, &all).unwrap());
        assert!(!matches(&f(r#"{"exited":{"0":true}}"#), &r, &all).unwrap());
        assert!(matches(&f(r#"{"label":{"a=1":true}}"#), &r, &all).unwrap());
        assert!(matches(&f(r#"{"name":{"we":true}}"#), &r, &all).unwrap());
        assert!(matches(&f(r#"{"status":{"bogus":true}}"#), &r, &all).is_err());
    }
}
