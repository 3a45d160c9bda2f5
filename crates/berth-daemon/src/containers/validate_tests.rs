//! Table tests of the create-time checks: each bad value and dockerd's message, and the
//! neighbouring good values that must still pass.

use std::collections::HashMap;

use berth_api_types::models::ContainerCreateBody as ContainerConfig;

use crate::containers::stored::{
    HostConfig, HostConfigLogConfig, PortBinding, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum as R,
};

use super::*;

fn host() -> HostFacts {
    HostFacts {
        cpus: "0-1".into(),
        mems: "0".into(),
        ipv6: Some(
            ["::1", "fd00::2", "fe80::1"]
                .iter()
                .map(|a| a.parse().unwrap())
                .collect(),
        ),
        limits_refused: None,
        remapped: false,
    }
}

fn restart(name: R, count: i64) -> HostConfig {
    HostConfig {
        restart_policy: Some(RestartPolicy {
            name: Some(name),
            maximum_retry_count: Some(count),
        }),
        ..Default::default()
    }
}

fn log(opts: &[(&str, &str)]) -> HostConfig {
    HostConfig {
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(
                opts.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }),
        ..Default::default()
    }
}

fn ports(key: &str, host_port: &str) -> HostConfig {
    HostConfig {
        port_bindings: Some(HashMap::from([(
            key.to_string(),
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some(host_port.into()),
            }]),
        )])),
        ..Default::default()
    }
}

fn ports_on(host_ip: &str) -> HostConfig {
    let mut h = ports("80/tcp", "8080");
    for b in h
        .port_bindings
        .as_mut()
        .unwrap()
        .values_mut()
        .flatten()
        .flatten()
    {
        b.host_ip = Some(host_ip.into());
    }
    h
}

fn ulimit(name: &str, soft: i64, hard: i64) -> HostConfig {
    HostConfig {
        ulimits: Some(vec![ResourcesUlimits {
            name: Some(name.into()),
            soft: Some(soft),
            hard: Some(hard),
        }]),
        ..Default::default()
    }
}

fn sysctl(key: &str, network: &str) -> HostConfig {
    HostConfig {
        sysctls: Some(HashMap::from([(key.to_string(), "1".to_string())])),
        network_mode: Some(network.into()),
        ..Default::default()
    }
}

fn tmpfs(dest: &str) -> HostConfig {
    HostConfig {
        tmpfs: Some(HashMap::from([(dest.to_string(), String::new())])),
        ..Default::default()
    }
}

fn hosts(entry: &str) -> HostConfig {
    HostConfig {
        extra_hosts: Some(vec![entry.to_string()]),
        ..Default::default()
    }
}

/// Each row: a config and the message it must be refused with (None: accepted).
fn rows() -> Vec<(&'static str, HostConfig, Option<&'static str>)> {
    let mb = 1024 * 1024;
    let hc = HostConfig::default;
    vec![
        ("empty", hc(), None),
        ("memory 4MB", HostConfig { memory: Some(4 * mb), ..hc() }, Some("Minimum memory limit allowed is 6MB")),
        ("memory 6MB", HostConfig { memory: Some(6 * mb), ..hc() }, None),
        ("swap below memory", HostConfig { memory: Some(64 * mb), memory_swap: Some(32 * mb), ..hc() }, Some("Minimum memoryswap limit should be larger than memory limit, see usage")),
        ("swap -1", HostConfig { memory: Some(64 * mb), memory_swap: Some(-1), ..hc() }, None),
        ("swap -2", HostConfig { memory: Some(64 * mb), memory_swap: Some(-2), ..hc() }, Some("invalid memory swap limit -2")),
        ("swappiness 101", HostConfig { memory_swappiness: Some(101), ..hc() }, Some("Invalid value: 101, valid memory swappiness range is 0-100")),
        ("swappiness -1", HostConfig { memory_swappiness: Some(-1), ..hc() }, None),
        ("reservation 1MB", HostConfig { memory_reservation: Some(mb), ..hc() }, Some("Minimum memory reservation allowed is 6MB")),
        ("reservation above limit", HostConfig { memory: Some(8 * mb), memory_reservation: Some(16 * mb), ..hc() }, Some("Minimum memory limit can not be less than memory reservation limit, see usage")),
        ("shm -1", HostConfig { shm_size: Some(-1), ..hc() }, Some("SHM size can not be less than 0")),
        ("cpu shares -5", HostConfig { cpu_shares: Some(-5), ..hc() }, Some("invalid CPU shares -5: must not be negative")),
        ("cpu shares 0", HostConfig { cpu_shares: Some(0), ..hc() }, None),
        ("oom -1001", HostConfig { oom_score_adj: Some(-1001), ..hc() }, Some("Invalid value -1001, range for oom score adj is [-1000, 1000]")),
        ("oom 1001", HostConfig { oom_score_adj: Some(1001), ..hc() }, Some("Invalid value 1001, range for oom score adj is [-1000, 1000]")),
        ("oom 1000", HostConfig { oom_score_adj: Some(1000), ..hc() }, None),
        ("cpuset syntax", HostConfig { cpuset_cpus: Some("0-x".into()), ..hc() }, Some("Invalid value 0-x for cpuset cpus: invalid format: 0-x")),
        ("cpuset reversed", HostConfig { cpuset_cpus: Some("1-0".into()), ..hc() }, Some("Invalid value 1-0 for cpuset cpus: invalid format: 1-0")),
        ("cpuset absent cpu", HostConfig { cpuset_cpus: Some("9".into()), ..hc() }, Some("Requested CPUs are not available - requested 9, available: 0-1")),
        ("cpuset huge", HostConfig { cpuset_cpus: Some("1-9223372036854775807".into()), ..hc() }, Some("Invalid value 1-9223372036854775807 for cpuset cpus")),
        ("cpuset ok", HostConfig { cpuset_cpus: Some("0,1".into()), ..hc() }, None),
        ("cpuset mems absent", HostConfig { cpuset_mems: Some("1".into()), ..hc() }, Some("Requested memory nodes are not available - requested 1, available: 0")),
        ("cpu period 999", HostConfig { cpu_period: Some(999), ..hc() }, Some("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")),
        ("cpu period 1000001", HostConfig { cpu_period: Some(1_000_001), ..hc() }, Some("CPU cfs period can not be less than 1ms")),
        ("cpu quota 999", HostConfig { cpu_quota: Some(999), ..hc() }, Some("CPU cfs quota can not be less than 1ms (i.e. 1000)")),
        ("cpu quota -1", HostConfig { cpu_quota: Some(-1), ..hc() }, None),
        ("cpu quota -5", HostConfig { cpu_quota: Some(-5), ..hc() }, Some("invalid CPU cfs quota -5")),
        ("nano and period", HostConfig { nano_cpus: Some(1_000_000_000), cpu_period: Some(100_000), ..hc() }, Some("Conflicting options: Nano CPUs and CPU Period cannot both be set")),
        ("nano and quota", HostConfig { nano_cpus: Some(1_000_000_000), cpu_quota: Some(50_000), ..hc() }, Some("Conflicting options: Nano CPUs and CPU Quota cannot both be set")),
        ("blkio 5", HostConfig { blkio_weight: Some(5), ..hc() }, Some("Range of blkio weight is from 10 to 1000")),
        ("blkio 1001", HostConfig { blkio_weight: Some(1001), ..hc() }, Some("Range of blkio weight is from 10 to 1000")),
        ("blkio 0", HostConfig { blkio_weight: Some(0), ..hc() }, None),
        ("io max", HostConfig { io_maximum_iops: Some(5), ..hc() }, Some("Invalid QoS settings")),
        ("pids -2", HostConfig { pids_limit: Some(-2), ..hc() }, None),
        ("pids -1", HostConfig { pids_limit: Some(-1), ..hc() }, None),
        ("port 70000", ports("70000/tcp", ""), Some("invalid port specification: \"70000/tcp\"")),
        ("port 0", ports("0/tcp", ""), Some("invalid port specification: \"0/tcp\"")),
        ("port proto", ports("80/xyz", ""), Some("invalid port specification: \"80/xyz\"")),
        ("host port 70000", ports("80/tcp", "70000"), Some("invalid port specification: \"70000\"")),
        ("host port range reversed", ports("80/tcp", "90-80"), Some("invalid port specification: \"90-80\"")),
        ("host port range", ports("80/udp", "8000-8010"), None),
        ("sctp", ports("80/sctp", "8080"), None),
        ("host ip v4", ports_on("127.0.0.1"), None),
        ("host ip any v6", ports_on("::"), None),
        ("host ip v6 loopback", ports_on("::1"), None),
        ("host ip v6 of the host", ports_on("fd00::2"), None),
        ("host ip v6 elsewhere", ports_on("fd00::3"), Some("cannot publish 80/tcp on fd00::3: no interface of this host has that address")),
        ("host ip v6 link-local", ports_on("fe80::1"), Some("cannot publish 80/tcp on fe80::1: a link-local address needs an interface scope")),
        ("host ip bad", ports_on("localhost"), Some("invalid host IP address \"localhost\" for port 80/tcp")),
        ("always with count", restart(R::ALWAYS, 3), Some("invalid restart policy: maximum retry count can only be used with 'on-failure'")),
        ("always with negative count", restart(R::ALWAYS, -1), Some("invalid restart policy: maximum retry count can only be used with 'on-failure' and cannot be negative")),
        ("on-failure negative", restart(R::ON_FAILURE, -1), Some("invalid restart policy: maximum retry count cannot be negative")),
        ("on-failure 3", restart(R::ON_FAILURE, 3), None),
        ("rm with restart", HostConfig { auto_remove: Some(true), ..restart(R::ALWAYS, 0) }, Some("can't create 'AutoRemove' container with restart policy")),
        ("rm with no", HostConfig { auto_remove: Some(true), ..restart(R::NO, 0) }, None),
        ("log unknown opt", log(&[("max-sise", "1m")]), Some("unknown log opt 'max-sise' for json-file log driver")),
        ("log bad size", log(&[("max-size", "10x")]), Some("invalid log opt max-size: invalid size: '10x'")),
        ("log zero size", log(&[("max-size", "0")]), Some("max-size must be a positive number")),
        ("log bad file", log(&[("max-file", "three")]), Some("invalid log opt max-file")),
        ("log zero files", log(&[("max-file", "0")]), Some("max-file cannot be less than 1")),
        ("log compress alone", log(&[("compress", "true")]), Some("compress cannot be true when max-file is less than 2 or max-size is not set")),
        ("log bad mode", log(&[("mode", "fast")]), Some("logger: logging mode not supported: fast")),
        ("log ok", log(&[("max-size", "10m"), ("max-file", "3"), ("compress", "true"), ("tag", "x")]), None),
        ("ulimit name", ulimit("nofiles", 1, 2), Some("invalid ulimit type: nofiles")),
        ("ulimit soft above hard", ulimit("nofile", 2048, 1024), Some("ulimit soft limit must be less than or equal to hard limit: 2048 > 1024")),
        ("ulimit unlimited", ulimit("core", -1, -1), None),
        ("ulimit ok", ulimit("nofile", 1024, 2048), None),
        ("sysctl kernel", sysctl("kernel.xyz", "bridge"), Some("sysctl 'kernel.xyz' is not allowed")),
        ("sysctl host net", sysctl("net.ipv4.ip_forward", "host"), Some("sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace")),
        ("sysctl net", sysctl("net.ipv4.ip_forward", "bridge"), None),
        ("sysctl ipc", sysctl("kernel.shmmax", "bridge"), None),
        ("runtime unknown", HostConfig { runtime: Some("kata".into()), ..hc() }, Some("Unknown runtime specified kata")),
        ("runtime runc", HostConfig { runtime: Some("runc".into()), ..hc() }, None),
        ("runtime containerd", HostConfig { runtime: Some("io.containerd.runc.v2".into()), ..hc() }, None),
        ("tmpfs relative", tmpfs("data"), Some("invalid mount path: 'data' mount path must be absolute")),
        ("tmpfs root", tmpfs("/"), Some("invalid specification: destination can't be '/'")),
        ("tmpfs root dotted", tmpfs("/a/../."), Some("invalid specification: destination can't be '/'")),
        ("tmpfs ok", tmpfs("/run/x"), None),
        ("add-host no ip", hosts("db"), Some("bad format for add-host: \"db\"")),
        ("add-host no name", hosts(":1.2.3.4"), Some("bad format for add-host: \":1.2.3.4\"")),
        ("add-host bad ip", hosts("db:1.2.3"), Some("invalid IP address in add-host: \"1.2.3\"")),
        ("add-host ok", hosts("db:1.2.3.4"), None),
        ("add-host =", hosts("db=1.2.3.4"), None),
        ("add-host v6", hosts("db:::1"), None),
        ("add-host gateway", hosts("db:host-gateway"), None),
    ]
}

#[test]
fn host_config_table() {
    let mut failures = Vec::new();
    for (name, h, want) in rows() {
        // Refusals may come from this module or from the older checks it runs beside
        // (`create::validate_host_config`, which calls in here with the real host's CPUs).
        let mut got = host_config(&h, &host());
        if got.is_ok() && want.is_some() {
            got = super::super::create::validate_host_config(&h).map_err(|e| e.to_string());
        }
        match (want, &got) {
            (None, Ok(())) => {}
            (Some(w), Err(e)) if e.starts_with(w) => {}
            _ => failures.push(format!("{name}: want {want:?}, got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn container_config_table() {
    let cc = ContainerConfig::default;
    let rows: Vec<(&str, ContainerConfig, Option<&str>)> = vec![
        ("empty", cc(), None),
        (
            "long hostname",
            ContainerConfig {
                hostname: Some("h".repeat(65)),
                ..cc()
            },
            Some("hostname \"hhhh"),
        ),
        (
            "relative workdir",
            ContainerConfig {
                working_dir: Some("app".into()),
                ..cc()
            },
            Some("the working directory 'app' is invalid, it needs to be an absolute path"),
        ),
        (
            "exposed 70000",
            ContainerConfig {
                exposed_ports: Some(vec!["70000/tcp".into()]),
                ..cc()
            },
            Some("invalid port specification: \"70000/tcp\""),
        ),
        (
            "env without a name",
            ContainerConfig {
                env: Some(vec!["A=1".into(), "=x".into()]),
                ..cc()
            },
            Some("invalid environment variable: =x"),
        ),
        (
            "empty env entry",
            ContainerConfig {
                env: Some(vec!["".into()]),
                ..cc()
            },
            Some("invalid environment variable: "),
        ),
        (
            "exposed ok",
            ContainerConfig {
                exposed_ports: Some(vec!["53/udp".into(), "80".into()]),
                working_dir: Some("/app".into()),
                env: Some(vec!["A=".into(), "B".into(), "C=x=y".into()]),
                ..cc()
            },
            None,
        ),
    ];
    for (name, c, want) in rows {
        let got = config(&c);
        match (want, &got) {
            (None, Ok(())) => {}
            (Some(w), Err(e)) if e.starts_with(w) => {}
            _ => panic!("{name}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn ipv6_host_addresses_need_ipv6_on_the_host() {
    let off = HostFacts {
        ipv6: None,
        ..host()
    };
    for ip in ["::1", "::"] {
        let err = host_config(&ports_on(ip), &off).unwrap_err();
        assert_eq!(
            err,
            format!("cannot publish 80/tcp on {ip}: IPv6 is disabled on this host")
        );
    }
    assert_eq!(host_config(&ports_on("127.0.0.1"), &off), Ok(()));
}

#[test]
fn host_facts_parse_as_lists() {
    let h = HostFacts::detect();
    assert!(parse_list(&h.cpus, u32::MAX).is_ok(), "{h:?}");
    assert!(parse_list(&h.mems, u32::MAX).is_ok(), "{h:?}");
}

#[test]
fn a_daemon_without_cgroups_refuses_limits_by_flag() {
    let rootless = HostFacts {
        limits_refused: Some("resource limits need cgroup v2 delegation".into()),
        ..host()
    };
    let cases = [
        (
            HostConfig {
                memory: Some(64 << 20),
                ..Default::default()
            },
            "--memory",
        ),
        (
            HostConfig {
                pids_limit: Some(10),
                ..Default::default()
            },
            "--pids-limit",
        ),
        (
            HostConfig {
                nano_cpus: Some(500_000_000),
                ..Default::default()
            },
            "--cpus",
        ),
    ];
    for (h, flag) in cases {
        assert_eq!(
            host_config(&h, &rootless).unwrap_err(),
            format!("{flag}: resource limits need cgroup v2 delegation")
        );
        assert_eq!(host_config(&h, &host()), Ok(()));
    }
    // "Unlimited" values and no limits at all pass.
    let unlimited = HostConfig {
        pids_limit: Some(-1),
        memory_swap: Some(-1),
        memory: Some(0),
        ..Default::default()
    };
    assert_eq!(host_config(&unlimited, &rootless), Ok(()));
}

#[test]
fn root_users_by_name_or_id() {
    for u in ["", "0", "root", "0:0", "root:root", "root:0"] {
        assert!(is_root_user(u), "{u}");
    }
    for u in ["1000", "nobody", "0:5", "root:tty"] {
        assert!(!is_root_user(u), "{u}");
    }
}

#[test]
fn userns_remap_refuses_what_needs_host_ids_unless_userns_host() {
    let remapped = HostFacts {
        remapped: true,
        ..host()
    };
    let privileged = HostConfig {
        privileged: Some(true),
        ..Default::default()
    };
    assert_eq!(
        host_config(&privileged, &remapped).unwrap_err(),
        "privileged mode is incompatible with user namespaces.  You must run the container in \
         the host namespace when running privileged mode"
    );
    // Without remapping, or with --userns=host, it is allowed.
    assert_eq!(host_config(&privileged, &host()), Ok(()));
    let host_ns = HostConfig {
        userns_mode: Some("host".into()),
        ..privileged.clone()
    };
    assert_eq!(host_config(&host_ns, &remapped), Ok(()));
    let net = HostConfig {
        network_mode: Some("host".into()),
        ..Default::default()
    };
    assert!(host_config(&net, &remapped)
        .unwrap_err()
        .contains("host's network namespace"));
    let pid = HostConfig {
        pid_mode: Some("host".into()),
        ..Default::default()
    };
    assert!(host_config(&pid, &remapped)
        .unwrap_err()
        .contains("host PID namespace"));
    let bad = HostConfig {
        userns_mode: Some("private".into()),
        ..Default::default()
    };
    assert!(host_config(&bad, &host())
        .unwrap_err()
        .starts_with("invalid --userns \"private\""));
}
