//! `--userns-remap` in the OCI spec: the container gets its own user namespace whose maps are
//! the daemon's [`IdMapping`], `/sys` is bound read-only from the host (sysfs cannot be
//! mounted from a user namespace that does not own the network namespace, as runc's
//! fallback), and a prepared network namespace is joined by the shim before the container is
//! made (libcontainer enters namespaces by path only after creating the user namespace, and a
//! process there may not join a network namespace the host's user namespace owns).

use std::path::Path;

use berth_rootless::IdMapping;
use serde_json::{json, Value};

use crate::spec::{ContainerSpec, HostInfo, NetworkMode};

/// The network namespace the shim must join before creating `c` (a remapped container on a
/// prepared namespace), else `None` (libcontainer joins or creates it as the spec says).
pub fn shim_netns(c: &ContainerSpec) -> Option<&Path> {
    match (&c.userns, &c.network) {
        (Some(_), NetworkMode::Path(p)) => Some(p),
        _ => None,
    }
}

fn maps(m: &[berth_rootless::IdMap]) -> Value {
    Value::Array(
        m.iter()
            .map(|m| json!({"containerID": m.inside, "hostID": m.outside, "size": m.count}))
            .collect(),
    )
}

/// The `net.*` sysctls the shim writes itself after joining [`shim_netns`] (libcontainer
/// would take a spec without a network namespace for the host's and refuse them).
pub fn shim_sysctls(c: &ContainerSpec, host: &HostInfo) -> Vec<(String, String)> {
    if shim_netns(c).is_none() {
        return Vec::new();
    }
    crate::spec::sysctls_of(c, host)
        .into_iter()
        .filter(|(k, _)| k.starts_with("net."))
        .collect()
}

/// Write `sysctls` for the current network namespace (`/proc/sys/net/…` follows the
/// writer's namespace).
pub fn write_sysctls(sysctls: &[(String, String)]) -> std::io::Result<()> {
    for (k, v) in sysctls {
        let p = Path::new("/proc/sys").join(k.replace('.', "/"));
        std::fs::write(&p, v)
            .map_err(|e| std::io::Error::new(e.kind(), format!("sysctl {k}={v}: {e}")))?;
    }
    Ok(())
}

/// Rewrite `spec` (built by [`crate::spec::build_spec`]) for the user namespace `ids`.
pub fn apply(spec: &mut Value, ids: &IdMapping) {
    let linux = &mut spec["linux"];
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        let joined = ns
            .iter()
            .any(|n| n["type"] == "network" && n.get("path").is_some());
        // A prepared network namespace is joined by the shim (see [`shim_netns`]), which also
        // writes its sysctls ([`shim_sysctls`]).
        ns.retain(|n| !(n["type"] == "network" && n.get("path").is_some()));
        ns.insert(0, json!({"type": "user"}));
        if joined {
            if let Some(s) = linux["sysctl"].as_object_mut() {
                s.retain(|k, _| !k.starts_with("net."));
            }
        }
    }
    linux["uidMappings"] = maps(&ids.uids);
    linux["gidMappings"] = maps(&ids.gids);
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" && m["type"] == "sysfs" {
                *m = json!({"destination": "/sys", "type": "bind", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::build_spec;

    fn host() -> HostInfo {
        HostInfo {
            arch: "amd64".into(),
            kernel: (6, 1),
            nofile: (1024, 1024),
            x32_abi: false,
            bounding: u64::MAX,
            in_userns: false,
            single_id: false,
        }
    }

    fn remapped(network: NetworkMode) -> ContainerSpec {
        ContainerSpec {
            id: "c1".into(),
            rootfs: "/r".into(),
            args: vec!["sh".into()],
            network,
            userns: Some(IdMapping::range(100000, 200000, 65536)),
            ..Default::default()
        }
    }

    #[test]
    fn remapped_spec_has_a_user_namespace_with_the_maps() {
        let c = remapped(NetworkMode::Path("/run/berth/netns/c1".into()));
        let spec = serde_json::to_value(build_spec(&c, &host()).unwrap()).unwrap();
        let ns: Vec<&str> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(ns.contains(&"user"), "{ns:?}");
        // The prepared netns is joined by the shim, not by libcontainer after the userns.
        assert!(!ns.contains(&"network"), "{ns:?}");
        assert_eq!(shim_netns(&c), Some(Path::new("/run/berth/netns/c1")));
        // Its net sysctls are the shim's to write there, not libcontainer's.
        assert!(spec["linux"]["sysctl"]
            .as_object()
            .is_none_or(|s| !s.keys().any(|k| k.starts_with("net."))));
        let c = ContainerSpec {
            own_netns: true,
            ..c
        };
        let shim = shim_sysctls(&c, &host());
        assert!(shim.contains(&("net.ipv4.ping_group_range".into(), "0 2147483647".into())));
        assert_eq!(
            spec["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
        );
        assert_eq!(spec["linux"]["gidMappings"][0]["hostID"], 200000);
        let sys = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        assert_eq!(sys["type"], "bind");
        assert!(sys["options"].as_array().unwrap().contains(&json!("ro")));
    }

    #[test]
    fn host_ids_without_remap_and_a_new_netns_stays_in_the_spec() {
        let mut c = remapped(NetworkMode::New);
        let spec = serde_json::to_value(build_spec(&c, &host()).unwrap()).unwrap();
        let types: Vec<&Value> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| &n["type"])
            .collect();
        assert!(types.contains(&&json!("network")) && types.contains(&&json!("user")));
        assert_eq!(shim_netns(&c), None);
        c.userns = None;
        c.network = NetworkMode::Path("/x".into());
        let spec = serde_json::to_value(build_spec(&c, &host()).unwrap()).unwrap();
        assert!(spec["linux"].get("uidMappings").is_none());
        assert!(!spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "user"));
        assert_eq!(shim_netns(&c), None);
    }
}
