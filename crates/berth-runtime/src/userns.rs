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

/// The container's own spec, kept for execs (`init.json`) when [`bundle_for_execs`] rewrote
/// `config.json`.
const INIT_SPEC: &str = "init.json";

/// Once a remapped container is created, keep its spec as `init.json` and leave in
/// `config.json` (which libcontainer re-reads to validate every exec) the same spec without
/// the process's supplementary groups: an exec is built from inside the container's user
/// namespace ([`in_user_namespace_of`]), where libcontainer takes itself for unprivileged and
/// refuses a spec that sets them (the exec's own groups come from `init.json`).
pub fn bundle_for_execs(bundle: &Path, oci: &oci_spec::runtime::Spec) -> Result<(), String> {
    oci.save(bundle.join(INIT_SPEC))
        .map_err(|e| format!("keep the container's spec: {e}"))?;
    let mut v = serde_json::to_value(oci).map_err(|e| e.to_string())?;
    if let Some(u) = v["process"]["user"].as_object_mut() {
        u.remove("additionalGids");
    }
    let text = serde_json::to_vec(&v).map_err(|e| e.to_string())?;
    std::fs::write(bundle.join("config.json"), text)
        .map_err(|e| format!("rewrite the bundle's config.json for execs: {e}"))
}

/// The spec an exec starts from: `init.json` when [`bundle_for_execs`] kept one.
pub fn exec_base(bundle: &str) -> std::path::PathBuf {
    let kept = Path::new(bundle).join(INIT_SPEC);
    if kept.exists() {
        kept
    } else {
        Path::new(bundle).join("config.json")
    }
}

/// Run `f` (libcontainer's tenant build, for an exec) in a child process that first joined the
/// user namespace of process `pid` (the container's init): libcontainer 0.7's tenant joins
/// every namespace but the user one, which would leave the exec the host's root. In the child
/// the process keeps its host ids (so the container's state and cgroup files it owns stay
/// writable) while its `setuid(0)` lands on the mapped root, its capabilities count only in
/// the container's user namespace, and the namespaces that one owns (mount, pid, ipc, uts)
/// can be joined. The child reports the exec's pid (or the error) through a pipe and exits;
/// the exec is reparented to the shim (a subreaper), as libcontainer's detached processes are.
pub fn in_user_namespace_of(
    pid: i32,
    f: impl FnOnce() -> Result<nix::unistd::Pid, String>,
) -> Result<i32, String> {
    use std::io::{Read, Write};
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
        .map_err(|e| format!("open the container's user namespace: {e}"))?;
    let (r, w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the shim is single-threaded (its whole design), so the child may run anything.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            drop(r);
            // Whatever happens (a panic too), this child never returns into the shim's loop.
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWUSER)
                    .map_err(|e| format!("join the container's user namespace: {e}"))
                    .and_then(|()| f())
            }))
            .unwrap_or_else(|_| Err("the exec helper panicked".into()));
            let msg = match res {
                Ok(p) => format!("ok {}", p.as_raw()),
                Err(e) => format!("err {e}"),
            };
            let mut w = w;
            let _ = w.write_all(msg.as_bytes());
            drop(w);
            // SAFETY: leave the forked child without running the shim's destructors.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(w);
            let mut out = String::new();
            let mut r = r;
            let read = r.read_to_string(&mut out);
            let _ = nix::sys::wait::waitpid(child, None);
            read.map_err(|e| format!("read the exec helper's answer: {e}"))?;
            match out.split_once(' ') {
                Some(("ok", p)) => p
                    .parse()
                    .map_err(|_| format!("bad exec helper answer {out:?}")),
                Some(("err", e)) => Err(e.to_string()),
                _ => Err(format!("the exec helper died: {out:?}")),
            }
        }
        Err(e) => Err(format!("fork the exec helper: {e}")),
    }
}

/// Rewrite `spec` (built by [`crate::spec::build_spec`]) for the user namespace `ids`.
pub fn apply(spec: &mut Value, ids: &IdMapping) {
    let linux = &mut spec["linux"];
    let mut donor = None;
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        let joined = ns
            .iter()
            .any(|n| n["type"] == "network" && n.get("path").is_some());
        // A prepared network namespace is joined by the shim (see [`shim_netns`]), which also
        // writes its sysctls ([`shim_sysctls`]).
        ns.retain(|n| !(n["type"] == "network" && n.get("path").is_some()));
        // Namespaces joined from another container (`--pid/--ipc/--uts container:X`) belong
        // to X's user namespace: join that one (first) rather than make a new one.
        donor = ns.iter().find_map(|n| donor_user_ns(n["path"].as_str()?));
        let user = match &donor {
            Some(path) => json!({"type": "user", "path": path}),
            None => json!({"type": "user"}),
        };
        ns.insert(0, user);
        if joined {
            if let Some(s) = linux["sysctl"].as_object_mut() {
                s.retain(|k, _| !k.starts_with("net."));
            }
        }
    }
    if donor.is_none() {
        linux["uidMappings"] = maps(&ids.uids);
        linux["gidMappings"] = maps(&ids.gids);
    }
    // sysfs cannot be mounted from a user namespace that does not own the network namespace:
    // the host's /sys is bound read-only instead (runc's fallback).
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" && m["type"] == "sysfs" {
                *m = json!({"destination": "/sys", "type": "bind", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
        }
    }
}

/// `/proc/PID/ns/user` for a namespace path `/proc/PID/ns/{pid,ipc,uts}` (another process's).
fn donor_user_ns(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/proc/")?;
    let (pid, kind) = rest.split_once("/ns/")?;
    (pid.parse::<u32>().is_ok() && matches!(kind, "pid" | "ipc" | "uts"))
        .then(|| format!("/proc/{pid}/ns/user"))
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

    #[test]
    fn execs_validate_against_a_spec_without_supplementary_groups() {
        let mut c = remapped(NetworkMode::New);
        c.user.additional_gids = vec![10, 27];
        let oci = build_spec(&c, &host()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().to_str().unwrap();
        assert_eq!(exec_base(bundle), dir.path().join("config.json"));
        bundle_for_execs(dir.path(), &oci).unwrap();
        let read = |n: &str| -> Value {
            serde_json::from_slice(&std::fs::read(dir.path().join(n)).unwrap()).unwrap()
        };
        assert!(read("config.json")["process"]["user"]
            .get("additionalGids")
            .is_none());
        assert_eq!(
            read("init.json")["process"]["user"]["additionalGids"],
            json!([10, 27])
        );
        assert_eq!(
            read("config.json")["linux"]["uidMappings"],
            read("init.json")["linux"]["uidMappings"]
        );
        assert_eq!(exec_base(bundle), dir.path().join("init.json"));
    }

    #[test]
    fn joining_another_containers_namespaces_joins_its_user_namespace() {
        let mut c = remapped(NetworkMode::Path("/run/berth/netns/c1".into()));
        c.pid = crate::spec::NsMode::Path("/proc/4242/ns/pid".into());
        let spec = serde_json::to_value(build_spec(&c, &host()).unwrap()).unwrap();
        assert_eq!(
            spec["linux"]["namespaces"][0],
            json!({"type": "user", "path": "/proc/4242/ns/user"})
        );
        assert!(spec["linux"].get("uidMappings").is_none());
        assert_eq!(
            donor_user_ns("/proc/7/ns/ipc").as_deref(),
            Some("/proc/7/ns/user")
        );
        assert_eq!(donor_user_ns("/run/berth/netns/c1"), None);
        assert_eq!(donor_user_ns("/proc/7/ns/net"), None);
    }
}
