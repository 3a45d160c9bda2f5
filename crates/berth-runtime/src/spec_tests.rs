//! Unit tests of the pure spec translation.

use super::*;

fn base() -> ContainerSpec {
    ContainerSpec {
        id: "abc".into(),
        rootfs: "/tmp/rootfs".into(),
        args: vec!["sh".into()],
        hostname: "abc".into(),
        ..ContainerSpec::default()
    }
}

fn host() -> HostInfo {
    HostInfo {
        arch: "amd64".into(),
        kernel: (6, 1),
        nofile: DEFAULT_NOFILE,
        x32_abi: true,
        bounding: u64::MAX,
        in_userns: false,
        single_id: false,
    }
}

fn caps_of(s: &Spec) -> Vec<String> {
    let v = serde_json::to_value(s).unwrap();
    serde_json::from_value(v["process"]["capabilities"]["effective"].clone()).unwrap()
}

#[test]
fn defaults_match_docker() {
    let s = build_spec(&base(), &host()).unwrap();
    let v = serde_json::to_value(&s).unwrap();
    let mut caps = caps_of(&s);
    caps.sort();
    let mut want: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(caps, want);
    assert_eq!(v["linux"]["cgroupsPath"], "/berth/abc");
    assert_eq!(v["hostname"], "abc");
    assert_eq!(v["process"]["cwd"], "/");
    let env: Vec<String> = serde_json::from_value(v["process"]["env"].clone()).unwrap();
    assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
    assert!(env.contains(&"HOSTNAME=abc".to_string()));
    assert_eq!(v["linux"]["maskedPaths"].as_array().unwrap().len(), 11);
    assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(v["linux"]["seccomp"]["defaultErrnoRet"], 1);
    let ns: Vec<String> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ns, ["mount", "pid", "ipc", "uts", "network"]);
    let dests: Vec<&str> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm"
        ]
    );
    let rl = &v["process"]["rlimits"][0];
    assert_eq!(rl["type"], "RLIMIT_NOFILE");
}

#[test]
fn cap_arithmetic() {
    let c = |add: &[&str], drop: &[&str]| {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        let drop: Vec<String> = drop.iter().map(|s| s.to_string()).collect();
        effective_caps(false, &add, &drop)
    };
    let caps = c(&["net_admin"], &["CAP_CHOWN", "mknod"]).unwrap();
    assert!(caps.contains(&"CAP_NET_ADMIN".into()));
    assert!(!caps.contains(&"CAP_CHOWN".into()) && !caps.contains(&"CAP_MKNOD".into()));
    assert_eq!(
        c(&["KILL"], &["ALL"]).unwrap(),
        vec!["CAP_KILL".to_string()]
    );
    assert_eq!(c(&["ALL"], &[]).unwrap().len(), ALL_CAPS.len());
    assert!(c(&["NOPE"], &[]).is_err());
}

#[test]
fn seccomp_depends_on_caps() {
    let names = |s: &Spec| -> Vec<(String, String, usize)> {
        let v = serde_json::to_value(s).unwrap();
        v["linux"]["seccomp"]["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                let action = r["action"].as_str().unwrap().to_string();
                let nargs = r["args"].as_array().map(|a| a.len()).unwrap_or(0);
                r["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |n| (n.as_str().unwrap().to_string(), action.clone(), nargs))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let plain = names(&build_spec(&base(), &host()).unwrap());
    // mount only with CAP_SYS_ADMIN; clone only without namespace flags; clone3 → ENOSYS.
    assert!(!plain.iter().any(|(n, _, _)| n == "mount"));
    assert!(plain
        .iter()
        .any(|(n, a, k)| n == "clone" && a == "SCMP_ACT_ALLOW" && *k == 1));
    assert!(plain
        .iter()
        .any(|(n, a, _)| n == "clone3" && a == "SCMP_ACT_ERRNO"));
    assert!(plain.iter().any(|(n, _, _)| n == "arch_prctl"));
    assert!(!plain.iter().any(|(n, _, _)| n == "s390_runtime_instr"));
    let mut c = base();
    c.cap_add = vec!["SYS_ADMIN".into()];
    let admin = names(&build_spec(&c, &host()).unwrap());
    assert!(admin.iter().any(|(n, _, _)| n == "mount"));
    assert!(admin
        .iter()
        .any(|(n, a, k)| n == "clone" && a == "SCMP_ACT_ALLOW" && *k == 0));
    assert!(!admin
        .iter()
        .any(|(n, a, _)| n == "clone3" && a == "SCMP_ACT_ERRNO"));
    let v = serde_json::to_value(build_spec(&c, &host()).unwrap()).unwrap();
    assert_eq!(
        v["linux"]["seccomp"]["architectures"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    // Without the x32 ABI in the kernel the filter leaves out its (costly) x32 section.
    let no_x32 = HostInfo {
        x32_abi: false,
        ..host()
    };
    let v = serde_json::to_value(build_spec(&c, &no_x32).unwrap()).unwrap();
    assert_eq!(
        v["linux"]["seccomp"]["architectures"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
    );
    c.seccomp = SeccompMode::Unconfined;
    let v = serde_json::to_value(build_spec(&c, &host()).unwrap()).unwrap();
    assert!(v["linux"]["seccomp"].is_null());
}

#[test]
fn custom_seccomp_and_errors() {
    let mut c = base();
    c.seccomp = SeccompMode::Custom(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}"#
            .into(),
    );
    let v = serde_json::to_value(build_spec(&c, &host()).unwrap()).unwrap();
    assert_eq!(v["linux"]["seccomp"]["syscalls"][0]["names"][0], "chmod");
    c.seccomp = SeccompMode::Custom("{not json".into());
    assert!(matches!(
        build_spec(&c, &host()),
        Err(Error::InvalidSeccomp(_))
    ));
    let mut c = base();
    c.args.clear();
    assert_eq!(
        build_spec(&c, &host()).unwrap_err().kind(),
        crate::ErrorKind::Invalid
    );
}

#[test]
fn resources_init_and_host_modes() {
    let mut c = base();
    c.resources = Resources {
        memory: 64 << 20,
        pids_limit: 20,
        cpu_quota: 50_000,
        cpu_shares: 512,
        ..Resources::default()
    };
    c.init = Some("/usr/bin/tini-static".into());
    c.network = NetworkMode::Host;
    c.ipc = NsMode::Host;
    c.mounts.push(MountSpec {
        destination: "/dev/shm".into(),
        kind: "tmpfs".into(),
        source: "tmpfs".into(),
        options: vec![],
    });
    c.ulimits.push(Ulimit {
        name: "nproc".into(),
        soft: 10,
        hard: 20,
    });
    c.labels.insert("a".into(), "b".into());
    let v = serde_json::to_value(build_spec(&c, &host()).unwrap()).unwrap();
    let r = &v["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], 64 << 20);
    assert_eq!(r["memory"]["swap"], 128 << 20);
    assert_eq!(r["pids"]["limit"], 20);
    assert_eq!(r["cpu"]["period"], 100_000);
    assert_eq!(v["process"]["args"], json!([INIT_PATH, "--", "sh"]));
    assert_eq!(v["annotations"]["a"], "b");
    let ns = v["linux"]["namespaces"].as_array().unwrap();
    assert!(!ns
        .iter()
        .any(|n| n["type"] == "network" || n["type"] == "ipc"));
    let mounts = v["mounts"].as_array().unwrap();
    assert_eq!(
        mounts
            .iter()
            .filter(|m| m["destination"] == "/dev/shm")
            .count(),
        1
    );
    assert!(mounts
        .iter()
        .any(|m| m["destination"] == "/sys" && m["type"] == "bind"));
    assert!(mounts.iter().any(|m| m["destination"] == INIT_PATH));
    assert!(v["process"]["rlimits"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["type"] == "RLIMIT_NPROC" && r["hard"] == 20));
    c.network = NetworkMode::Path("/run/netns/x".into());
    let v = serde_json::to_value(build_spec(&c, &host()).unwrap()).unwrap();
    assert!(v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "network" && n["path"] == "/run/netns/x"));
}

#[test]
fn privileged_drops_confinement() {
    let mut c = base();
    c.privileged = true;
    let v = serde_json::to_value(build_spec(&c, &host()).unwrap()).unwrap();
    assert!(v["linux"]["seccomp"].is_null());
    assert!(v["linux"]["maskedPaths"].is_null());
    assert_eq!(
        caps_of(&build_spec(&c, &host()).unwrap()).len(),
        ALL_CAPS.len()
    );
}

#[test]
fn cgroup_tree_is_covered_read_only_unless_privileged() {
    let cover = |c: &ContainerSpec| -> Vec<MountSpec> {
        plan_mounts(c)
            .into_iter()
            .filter(|m| m.destination == "/sys/fs/cgroup")
            .collect()
    };
    let m = cover(&base());
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(m[0].kind, "cgroup");
    assert!(m[0].options.contains(&"ro".to_string()));
    // libcontainer ignores "ro" for v1 hierarchies: the second mount re-binds the container's
    // own tree onto itself, recursively read-only.
    assert_eq!(m[1].kind, "bind");
    assert_eq!(m[1].source, "/tmp/rootfs/sys/fs/cgroup");
    assert!(m[1].options.contains(&"rbind".to_string()));
    assert!(m[1].options.contains(&"rro".to_string()));
    let mut c = base();
    c.privileged = true;
    let m = cover(&c);
    assert_eq!(m.len(), 1);
    assert!(m[0].options.contains(&"rw".to_string()));
    // A user mount on /sys/fs/cgroup replaces both.
    let mut c = base();
    c.mounts.push(MountSpec {
        destination: "/sys/fs/cgroup".into(),
        kind: "bind".into(),
        source: "/sys/fs/cgroup".into(),
        options: vec!["rbind".into(), "ro".into()],
    });
    let m = cover(&c);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].source, "/sys/fs/cgroup");
}

#[test]
fn caps_never_exceed_the_runtime_bounding_set() {
    let mut c = base();
    c.privileged = true;
    let lacking = HostInfo {
        bounding: !(1u64 << 24),
        ..host()
    };
    let caps = caps_of(&build_spec(&c, &lacking).unwrap());
    assert_eq!(caps.len(), ALL_CAPS.len() - 1);
    assert!(!caps.contains(&"CAP_SYS_RESOURCE".to_string()));
    let mut c = base();
    c.cap_add = vec!["ALL".into()];
    let caps = caps_of(&build_spec(&c, &lacking).unwrap());
    assert!(!caps.contains(&"CAP_SYS_RESOURCE".to_string()));
    assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
}

#[test]
fn devices_and_rules_reach_the_spec() {
    let mut c = base();
    c.devices = vec![crate::confine::Device {
        path: "/dev/nulo".into(),
        kind: "c".into(),
        major: 1,
        minor: 5,
        file_mode: 0o666,
        uid: 0,
        gid: 0,
        access: "rwm".into(),
    }];
    c.device_rules = vec![crate::confine::parse_device_rule("c 42:* r").unwrap()];
    let v = serde_json::to_value(build_spec(&c, &host()).unwrap()).unwrap();
    assert_eq!(v["linux"]["devices"][0]["path"], "/dev/nulo");
    assert_eq!(v["linux"]["devices"][0]["major"], 1);
    let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
    assert_eq!(rules[0]["allow"], false, "deny-all comes first");
    assert!(rules
        .iter()
        .any(|r| r["allow"] == true && r["major"] == 1 && r["minor"] == 5 && r["access"] == "rwm"));
    assert!(rules
        .iter()
        .any(|r| r["major"] == 42 && r.get("minor").is_none() && r["access"] == "r"));
}

#[test]
fn own_netns_gets_dockers_network_sysctls_unless_set() {
    let sysctl = |c: &ContainerSpec, h: &HostInfo| {
        let v = serde_json::to_value(build_spec(c, h).unwrap()).unwrap();
        v["linux"]["sysctl"].clone()
    };
    let mut c = base();
    assert_eq!(sysctl(&c, &host()), serde_json::json!({}));
    c.own_netns = true;
    assert_eq!(
        sysctl(&c, &host()),
        serde_json::json!({
            "net.ipv4.ping_group_range": "0 2147483647",
            "net.ipv4.ip_unprivileged_port_start": "0",
        })
    );
    c.sysctls
        .insert("net.ipv4.ip_unprivileged_port_start".into(), "1024".into());
    assert_eq!(
        sysctl(&c, &host())["net.ipv4.ip_unprivileged_port_start"],
        "1024"
    );
    // A kernel before 4.11 has no ip_unprivileged_port_start: not set there.
    let old = HostInfo {
        kernel: (4, 9),
        ..host()
    };
    c.sysctls.clear();
    assert_eq!(
        sysctl(&c, &old),
        serde_json::json!({"net.ipv4.ping_group_range": "0 2147483647"})
    );
    // In a user namespace the whole gid range cannot be named: only the port sysctl.
    let userns = HostInfo {
        in_userns: true,
        ..host()
    };
    assert_eq!(
        sysctl(&c, &userns),
        serde_json::json!({"net.ipv4.ip_unprivileged_port_start": "0"})
    );
    assert!(id_mapped("         0          0 4294967295\n", 5));
    assert!(id_mapped("0 1000 1\n1 100000 65536\n", 5));
    assert!(!id_mapped("         0       1000          1\n", 5));
    assert!(single_id("0 1000 1\n"));
    assert!(!single_id("0 1000 1\n1 100000 65536\n"));
    let single = HostInfo {
        single_id: true,
        ..userns
    };
    let devpts = |h: &HostInfo| {
        let v = serde_json::to_value(build_spec(&c, h).unwrap()).unwrap();
        let m = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == "devpts")
            .cloned();
        m.unwrap()["options"].clone()
    };
    assert!(devpts(&host())
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("gid=5")));
    assert!(!devpts(&single)
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("gid=5")));
    let mut grouped = c.clone();
    grouped.user.additional_gids = vec![0, 10];
    let gids = |h: &HostInfo| {
        let v = serde_json::to_value(build_spec(&grouped, h).unwrap()).unwrap();
        v["process"]["user"]["additionalGids"].clone()
    };
    assert_eq!(gids(&host()), serde_json::json!([0, 10]));
    assert_eq!(gids(&single), serde_json::json!([]));
    assert!(!in_userns("         0          0 4294967295\n"));
    assert!(in_userns("         0       1000          1\n"));
    assert!(!in_userns(""));
}

#[test]
fn updates_lift_limits_as_dockerd_asks_runc() {
    let v = |r: &Resources| serde_json::to_value(resources_to_oci(r).unwrap()).unwrap();
    let none = v(&Resources::default());
    assert_eq!(none["pids"]["limit"], -1, "{none}");
    assert!(none.get("cpu").is_none(), "{none}");
    let set = v(&Resources {
        pids_limit: 16,
        cpu_quota: 10_000,
        ..Default::default()
    });
    assert_eq!(set["pids"]["limit"], 16);
    assert_eq!(set["cpu"]["quota"], 10_000);
    assert_eq!(set["cpu"]["period"], 100_000);
    let unset = v(&Resources {
        cpu_quota: -1,
        ..Default::default()
    });
    assert_eq!(unset["cpu"]["quota"], -1, "{unset}");
}
