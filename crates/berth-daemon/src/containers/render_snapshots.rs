//! Snapshot tests of the container inspect and list JSON: representative records rendered and
//! compared with the JSON berth sent before the service returned typed structs
//! (`snapshots/*.json`, captured from the `serde_json::Value` renderer). Regenerate only on
//! purpose: `BERTH_UPDATE_SNAPSHOTS=1 cargo test -p berth-daemon --lib render_snapshots`.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::{render, Containers, Record};

/// A container that was only created: every optional part of the record unset.
fn minimal() -> Value {
    json!({
        "id": "aaaa000000000000000000000000000000000000000000000000000000000001",
        "name": "plain",
        "created": "2026-01-02T03:04:05.123456789Z",
        "path": "sh",
        "args": ["-c", "echo hi there"],
        "image": "busybox",
        "image_id": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
        "config": {"Image": "busybox", "Cmd": ["sh", "-c", "echo hi there"]},
        "host_config": {},
        "state": {"status": "created", "pid": 0, "shim_pid": 0, "exit_code": 0, "error": "",
                  "started_at": "0001-01-01T00:00:00Z", "finished_at": "0001-01-01T00:00:00Z",
                  "oom_killed": false}
    })
}

/// An exited container with most of what inspect renders: limits, binds, links, published and
/// exposed ports, two endpoints, health log, mounts, endpoint config echoed back.
fn full() -> Value {
    json!({
        "id": "bbbb000000000000000000000000000000000000000000000000000000000002",
        "name": "web",
        "created": "2026-01-02T03:04:06Z",
        "path": "/entry.sh",
        "args": ["serve", "--port", "80"],
        "image": "nginx:1",
        "image_id": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
        "config": {
            "Hostname": "bbbb00000000", "Image": "nginx:1", "Tty": true, "OpenStdin": true,
            "Env": ["A=1", "PATH=/usr/bin"], "Cmd": ["serve", "--port", "80"],
            "Entrypoint": ["/entry.sh"], "WorkingDir": "/srv",
            "Labels": {"tier": "front", "com.example.x": ""},
            "ExposedPorts": {"80/tcp": {}, "443/tcp": {}, "53/udp": {}},
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000}
        },
        "host_config": {
            "NetworkMode": "bridge", "Memory": 67108864, "MemorySwap": -1, "PidsLimit": 50,
            "Binds": ["/srv/data:/data:ro,z", "/tmp/x:/x"], "CapAdd": ["NET_ADMIN"],
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
            "Links": ["bbbb000000000000000000000000000000000000000000000000000000000009:db"],
            "Runtime": "runc", "ShmSize": 67108864, "AutoRemove": false
        },
        "networking": {"EndpointsConfig": {
            "bridge": {"Aliases": ["w"], "Links": ["db:db"], "DriverOpts": {"o": "1"},
                       "IPAMConfig": {"IPv4Address": "172.17.0.9", "IPv6Address": ""},
                       "MacAddress": "02:42:ac:11:00:09"}
        }},
        "state": {"status": "exited", "pid": 0, "shim_pid": 0, "exit_code": 3,
                  "error": "boom", "started_at": "2026-01-02T03:04:07Z",
                  "finished_at": "2026-01-02T03:05:07Z", "oom_killed": true},
        "restart_count": 2,
        "endpoints": [
            {"container_id": "bbbb000000000000000000000000000000000000000000000000000000000002",
             "network_id": "nnnn01", "network": "bridge", "name": "web", "aliases": ["w", "web"],
             "ip": "172.17.0.9", "prefix": 16, "gateway": "172.17.0.1", "ipv6": "fd00::9",
             "prefix6": 64, "gateway6": "fd00::1", "mac": "02:42:ac:11:00:09",
             "veth_host": "veth01", "ifname": "eth0", "netns": "/run/netns/x"},
            {"container_id": "bbbb000000000000000000000000000000000000000000000000000000000002",
             "network_id": "nnnn02", "network": "back", "name": "web", "aliases": [],
             "ip": "10.9.0.2", "prefix": 24, "gateway": "10.9.0.1", "ipv6": null,
             "prefix6": null, "gateway6": null, "mac": "02:42:0a:09:00:02",
             "veth_host": "veth02", "ifname": "eth1", "netns": "/run/netns/x"}
        ],
        "ports": [{"host_ip": "0.0.0.0", "host_port": 8080, "container_port": 80, "proto": "tcp"}],
        "netns": "/run/netns/x",
        "health": {"Status": "unhealthy", "FailingStreak": 2, "Log": [
            {"Start": "2026-01-02T03:04:08Z", "End": "2026-01-02T03:04:09Z", "ExitCode": 1,
             "Output": "no\n"}
        ]},
        "mount_points": [
            {"Type": "volume", "Name": "v1", "Source": "/var/lib/berth/volumes/v1/_data",
             "Destination": "/v", "Driver": "local", "Mode": "z", "RW": true, "Propagation": ""}
        ]
    })
}

/// Host networking and a stopped container's configured networks; binds without mount points.
fn host_mode() -> Value {
    let mut v = minimal();
    v["id"] = json!("cccc000000000000000000000000000000000000000000000000000000000003");
    v["name"] = json!("hosty");
    v["host_config"] = json!({"NetworkMode": "host", "Binds": ["/a:/b", "/c:/d:ro"],
                              "Privileged": true, "Links": ["nobody:alias"]});
    v["networking"] = json!({"EndpointsConfig": {"extra": {"Aliases": ["e"]}}});
    v["state"]["status"] = json!("dead");
    v
}

/// Sharing another container's network namespace: no networks listed.
fn container_mode() -> Value {
    let mut v = minimal();
    v["id"] = json!("dddd000000000000000000000000000000000000000000000000000000000004");
    v["name"] = json!("side");
    v["host_config"] = json!({"NetworkMode": "container:web"});
    v["state"]["status"] = json!("exited");
    v["state"]["finished_at"] = json!("2026-01-02T03:05:07Z");
    v
}

/// The one linked to: its summary lists `/web/db` after its own name.
fn link_target() -> Value {
    let mut v = minimal();
    v["id"] = json!("bbbb000000000000000000000000000000000000000000000000000000000009");
    v["name"] = json!("db");
    v
}

fn records() -> Vec<(&'static str, Record)> {
    [
        ("minimal", minimal()),
        ("full", full()),
        ("host_mode", host_mode()),
        ("container_mode", container_mode()),
        ("link_target", link_target()),
    ]
    .into_iter()
    .map(|(n, v)| (n, serde_json::from_value(v).expect("fixture record")))
    .collect()
}

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/containers/snapshots")
        .join(format!("{name}.json"))
}

/// Replace what depends on the machine or the clock: the engine root, and the age in an
/// `Exited (3) 2 hours ago` status.
fn normalize(mut v: Value, root: &std::path::Path) -> Value {
    let text = serde_json::to_string(&v).unwrap();
    let text = text.replace(&root.display().to_string(), "<root>");
    v = serde_json::from_str(&text).unwrap();
    if let Some(s) = v.get("Status").and_then(Value::as_str) {
        if let Some((head, _)) = s.split_once(") ") {
            v["Status"] = json!(format!("{head}) <ago>"));
        }
    }
    v
}

/// Exposed ports come from a hash map (bollard decodes `ExposedPorts` into a list in hash
/// order): a summary's `Ports` are compared in sorted order.
fn sort_ports(v: &mut Value) {
    if let Some(Value::Array(ports)) = v.get_mut("Ports") {
        ports.sort_by_key(|p| p.to_string());
    }
}

fn check(name: &str, mut got: Value) {
    sort_ports(&mut got);
    let path = snapshot_path(name);
    if std::env::var_os("BERTH_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let mut want: Value = serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
    )
    .unwrap();
    sort_ports(&mut want);
    assert_eq!(
        got,
        want,
        "{name}: rendered JSON differs from {}",
        path.display()
    );
}

#[test]
fn inspect_json_matches_the_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let cs = Containers::open(dir.path());
    for (_, r) in records() {
        super::lock(&cs.map).insert(r.id.clone(), super::Ctr::new(r));
    }
    for (name, r) in records() {
        let v = serde_json::to_value(render::inspect(&cs, &r)).unwrap();
        check(&format!("inspect_{name}"), normalize(v, dir.path()));
    }
}

#[test]
fn list_json_matches_the_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<Record> = records().into_iter().map(|(_, r)| r).collect();
    for (name, r) in records() {
        let mut s = render::summary(&r);
        render::add_link_names(&mut s, &r, &all);
        let v = serde_json::to_value(s).unwrap();
        check(&format!("summary_{name}"), normalize(v, dir.path()));
    }
}

/// Networks: a user network with IPv6, an IP range, auxiliary addresses and one container; the
/// predefined bridge (its bridge name shown, IPAM options hidden); a network without IPAM.
fn networks() -> Vec<(&'static str, berth_network::NetworkInfo)> {
    let net = |v: Value| -> berth_network::Network { serde_json::from_value(v).unwrap() };
    let user = berth_network::NetworkInfo {
        network: net(json!({
            "id": "eeee000000000000000000000000000000000000000000000000000000000005",
            "name": "front", "driver": "bridge", "bridge": "br-eeee00000000",
            "ipam": {"subnet": "10.7.0.0/24", "gateway": "10.7.0.1",
                     "subnet6": "fd07::/64", "gateway6": "fd07::1"},
            "internal": true, "labels": {"env": "prod"},
            "options": {"berth.ipam.iprange": "10.7.0.128/25", "berth.ipam.aux.router": "10.7.0.2",
                        "com.docker.network.bridge.enable_icc": "true"},
            "created": 1767323045u64, "predefined": false
        })),
        endpoints: vec![serde_json::from_value(json!({
            "container_id": "bbbb000000000000000000000000000000000000000000000000000000000002",
            "network_id": "eeee000000000000000000000000000000000000000000000000000000000005",
            "network": "front", "name": "/web", "aliases": [], "ip": "10.7.0.3", "prefix": 24,
            "gateway": "10.7.0.1", "ipv6": "fd07::3", "prefix6": 64, "gateway6": "fd07::1",
            "mac": "02:42:0a:07:00:03", "veth_host": "veth9", "ifname": "eth0",
            "netns": "/run/netns/x"
        }))
        .unwrap()],
    };
    let bridge = berth_network::NetworkInfo {
        network: net(json!({
            "id": "ffff000000000000000000000000000000000000000000000000000000000006",
            "name": "bridge", "driver": "bridge", "bridge": "berth0",
            "ipam": {"subnet": "172.17.0.0/16", "gateway": "172.17.0.1",
                     "subnet6": null, "gateway6": null},
            "internal": false, "labels": {}, "options": {},
            "created": 1767323000u64, "predefined": true
        })),
        endpoints: vec![],
    };
    let host = berth_network::NetworkInfo {
        network: net(json!({
            "id": "9999000000000000000000000000000000000000000000000000000000000007",
            "name": "host", "driver": "host", "bridge": null, "ipam": null,
            "internal": false, "labels": {}, "options": {},
            "created": 0u64, "predefined": true
        })),
        endpoints: vec![],
    };
    vec![("user", user), ("bridge", bridge), ("host", host)]
}

#[test]
fn network_json_matches_the_snapshots() {
    for (name, n) in networks() {
        let v = serde_json::to_value(crate::networks::network_json(&n)).unwrap();
        check(&format!("network_{name}"), v);
    }
}

/// Stats of the full record (two interfaces) from a fixed reading: the first frame (no
/// previous sample) and the next one (`preread`, `precpu_stats` from the first).
#[test]
fn stats_json_matches_the_snapshots() {
    let r: Record = serde_json::from_value(full()).unwrap();
    let sample = |read: &str, cpu: u64| super::stats::Sample {
        read: read.into(),
        mem: 1 << 20,
        limit: 64 << 20,
        cpu,
        pids: 3,
        ncpu: 2,
        system: 123_450_000_000,
    };
    let first = super::stats::render(&r, &sample("2026-01-02T03:04:10.5Z", 1000), None);
    check("stats_first", serde_json::to_value(&first).unwrap());
    let next = super::stats::render(&r, &sample("2026-01-02T03:04:11.5Z", 5000), Some(&first));
    check("stats_next", serde_json::to_value(next).unwrap());
    let mut plain: Record = serde_json::from_value(minimal()).unwrap();
    plain.netns = None;
    let v = super::stats::render(&plain, &sample("2026-01-02T03:04:10.5Z", 0), None);
    check("stats_no_netns", serde_json::to_value(v).unwrap());
}
