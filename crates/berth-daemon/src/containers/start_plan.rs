//! The pure start plan of a container: from its record, what its network attach gave, its
//! resolved user, link/init extras and security inputs to the shim config (OCI-bound spec,
//! mounts) and the /etc files berth-task writes. No I/O: tested without root.

use std::net::IpAddr;
use std::path::PathBuf;

use berth_runtime::{ContainerSpec, LogConfig, MountSpec, ShimConfig, User};
use berth_task::{Attached, PlannedFile, StartPlan};

use super::plan::{resources_of, StartExtras};
use super::security::Confinement;
use super::Record;

/// What a container's network attach gives beyond the namespace: its endpoints and the ports
/// published for it.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub endpoints: Vec<berth_network::Endpoint>,
    pub published: Vec<berth_network::PortMapping>,
}

/// The daemon's side of a start, as values.
#[derive(Debug, Clone)]
pub struct StartContext {
    /// The container's directory: its /etc files, the shim's socket and config.
    pub dir: PathBuf,
    /// The mounted rootfs.
    pub rootfs: PathBuf,
    /// libcontainer's state root.
    pub state_root: PathBuf,
    pub log: LogConfig,
    /// The host's /etc/hosts, read for `--network host` only.
    pub host_hosts: Option<String>,
    /// The daemon's `--userns-remap` mapping (identity without it).
    pub ids: berth_rootless::IdMapping,
}

/// The network mode a record asks for: `bridge` when unset or `default`.
pub fn network_mode(r: &Record) -> String {
    let mode = r.host_config.network_mode.clone().unwrap_or_default();
    if mode.is_empty() || mode == "default" {
        "bridge".to_string()
    } else {
        mode
    }
}

/// `--add-host` entries (`name:ip` or `name=ip`) that parse.
fn extra_hosts(r: &Record) -> Vec<(String, IpAddr)> {
    r.host_config
        .extra_hosts
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|h| {
            let (n, ip) = h.split_once(':').or_else(|| h.split_once('='))?;
            Some((n.to_string(), ip.parse().ok()?))
        })
        .collect()
}

/// The /etc files a container gets: (name, text) for hostname, hosts and resolv.conf.
fn etc_files(
    r: &Record,
    net: &Attached<Endpoints>,
    extras: &StartExtras,
    host_hosts: Option<&str>,
) -> [(&'static str, String); 3] {
    let hostname = r.config.hostname.clone().unwrap_or_default();
    let extra = [extras.hosts.clone(), extra_hosts(r)].concat();
    let hosts = match host_hosts {
        Some(h) => h.to_string(),
        None => berth_network::files::hosts_file(&berth_network::files::HostsInput {
            hostname: &hostname,
            domainname: r.config.domainname.as_deref().unwrap_or(""),
            ips: &net.ips,
            extra_hosts: &extra,
            ipv6: false,
        }),
    };
    [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts),
        ("resolv.conf", net.resolv.clone()),
    ]
}

/// The container's start plan.
pub fn start_plan(
    r: &Record,
    net: &Attached<Endpoints>,
    user: User,
    extras: &StartExtras,
    sec: Confinement,
    cx: StartContext,
) -> StartPlan {
    let id = &r.id;
    let hc = &r.host_config;
    let mut files = Vec::new();
    let mut mounts = Vec::new();
    for (name, text) in etc_files(r, net, extras, cx.host_hosts.as_deref()) {
        let path = cx.dir.join(name);
        mounts.push(MountSpec {
            destination: format!("/etc/{name}"),
            kind: "bind".into(),
            source: path.display().to_string(),
            options: vec!["rbind".into(), "rprivate".into()],
        });
        files.push(PlannedFile {
            path,
            text,
            what: format!("{name} of {id}"),
            remove_on_unwind: false,
        });
    }
    if let Some(shm) = &extras.shm {
        mounts.push(MountSpec {
            destination: "/dev/shm".into(),
            kind: "bind".into(),
            source: shm.display().to_string(),
            options: vec!["rbind".into(), "rprivate".into()],
        });
    }
    mounts.extend(r.mount_specs.iter().cloned());
    let mut args = vec![r.path.clone()];
    args.extend(r.args.clone());
    let spec = ContainerSpec {
        id: id.clone(),
        rootfs: cx.rootfs.clone(),
        args,
        env: extras.env_with(&r.config.env.clone().unwrap_or_default()),
        cwd: r.config.working_dir.clone().unwrap_or_default(),
        user,
        tty: r.config.tty.unwrap_or(false),
        open_stdin: r.config.open_stdin.unwrap_or(false),
        hostname: r.config.hostname.clone().unwrap_or_default(),
        domainname: r.config.domainname.clone().unwrap_or_default(),
        readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
        mounts,
        cap_add: hc.cap_add.clone().unwrap_or_default(),
        cap_drop: hc.cap_drop.clone().unwrap_or_default(),
        privileged: hc.privileged.unwrap_or(false),
        no_new_privileges: sec.opts.no_new_privileges,
        seccomp: sec.opts.seccomp,
        masked_paths: sec.masked_paths,
        readonly_paths: sec.readonly_paths,
        resources: resources_of(hc),
        ulimits: hc
            .ulimits
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|u| berth_runtime::Ulimit {
                name: u.name.unwrap_or_default(),
                soft: u.soft.unwrap_or(0).max(0) as u64,
                hard: u.hard.unwrap_or(0).max(0) as u64,
            })
            .collect(),
        oom_score_adj: hc.oom_score_adj.map(|v| v as i32),
        sysctls: hc.sysctls.clone().unwrap_or_default().into_iter().collect(),
        own_netns: {
            let mode = network_mode(r);
            mode != "host" && !mode.starts_with("container:")
        },
        network: net.mode.clone(),
        ipc: super::ns_join::mode(hc.ipc_mode.as_deref(), extras.ipc_ns.as_ref()),
        pid: super::ns_join::mode(hc.pid_mode.as_deref(), extras.pid_ns.as_ref()),
        uts: super::ns_join::mode(hc.uts_mode.as_deref(), extras.uts_ns.as_ref()),
        init: extras.init.clone(),
        stop_signal: r.config.stop_signal.clone(),
        cgroup_parent: hc.cgroup_parent.clone().filter(|c| !c.is_empty()),
        labels: r
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        shm_size: hc.shm_size.filter(|s| *s > 0).map(|s| s as u64),
        auto_remove: hc.auto_remove.unwrap_or(false),
        devices: sec.devices,
        device_rules: sec.device_rules,
        apparmor_profile: sec.opts.apparmor_profile,
        // `--userns=host` keeps the host's ids under `--userns-remap`.
        userns: (!cx.ids.is_identity() && hc.userns_mode.as_deref() != Some("host"))
            .then(|| cx.ids.clone()),
    };
    StartPlan {
        files,
        shim_dir: cx.dir,
        config: ShimConfig {
            spec,
            state_root: cx.state_root,
            log: cx.log,
            start_on_request: true,
        },
        reap_failed_spawn: false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use berth_runtime::{NetworkMode, User};

    use super::*;
    use crate::containers::security::SecurityOpts;

    fn no_confinement() -> Confinement {
        Confinement {
            opts: SecurityOpts::default(),
            devices: vec![],
            device_rules: vec![],
            masked_paths: None,
            readonly_paths: None,
        }
    }

    fn cx(host_hosts: Option<&str>) -> StartContext {
        StartContext {
            dir: "/var/lib/berth/containers/c1".into(),
            rootfs: "/var/lib/berth/containers-rw/c1/merged".into(),
            state_root: "/run/berth/runtime".into(),
            log: LogConfig::with_defaults(PathBuf::from("/var/lib/berth/containers/c1/log.json")),
            host_hosts: host_hosts.map(str::to_string),
            ids: berth_rootless::IdMapping::identity(),
        }
    }

    #[test]
    fn remapped_daemon_gives_a_user_namespace_unless_userns_host() {
        let ids = berth_rootless::IdMapping::range(100000, 100000, 65536);
        let remapped = StartContext {
            ids: ids.clone(),
            ..cx(None)
        };
        let plan = |r: &Record, cx: &StartContext| {
            start_plan(
                r,
                &bridge(),
                user(),
                &extras(),
                no_confinement(),
                cx.clone(),
            )
        };
        assert_eq!(plan(&record(), &remapped).config.spec.userns, Some(ids));
        let mut host = record();
        host.host_config.userns_mode = Some("host".into());
        assert_eq!(plan(&host, &remapped).config.spec.userns, None);
        let p = plan(&record(), &cx(None));
        assert_eq!(p.config.spec.userns, None, "no remap, no user namespace");
    }

    fn bridge() -> Attached<Endpoints> {
        Attached {
            mode: NetworkMode::Path("/run/berth/netns/c1".into()),
            netns: Some("/run/berth/netns/c1".into()),
            resolv: "nameserver 172.17.0.1\n".into(),
            ips: vec![[172, 17, 0, 2].into()],
            extra: Endpoints::default(),
        }
    }

    fn record() -> Record {
        let mut r = Record {
            id: "c1".into(),
            name: "web".into(),
            path: "/bin/sh".into(),
            args: vec!["-c".into(), "echo hi".into()],
            ..Default::default()
        };
        r.config.hostname = Some("web".into());
        r.config.domainname = Some("example.org".into());
        r.config.env = Some(vec!["A=own".into(), "PATH=/bin".into()]);
        r.config.working_dir = Some("/srv".into());
        r.config.stop_signal = Some("SIGINT".into());
        r.host_config.extra_hosts = Some(vec![
            "db:10.0.0.5".into(),
            "cache=10.0.0.6".into(),
            "bad:not-an-ip".into(),
        ]);
        r.host_config.cap_add = Some(vec!["NET_ADMIN".into()]);
        r.host_config.ipc_mode = Some("host".into());
        r.host_config.shm_size = Some(64 << 20);
        r.mount_specs = vec![MountSpec {
            destination: "/data".into(),
            kind: "bind".into(),
            source: "/var/lib/berth/volumes/v/_data".into(),
            options: vec!["rbind".into()],
        }];
        r
    }

    fn extras() -> StartExtras {
        StartExtras {
            env: vec!["A=link".into(), "DB_PORT=tcp://172.17.0.3:5432".into()],
            hosts: vec![("db-link".into(), [172, 17, 0, 3].into())],
            init: Some("/usr/bin/tini-static".into()),
            ..Default::default()
        }
    }

    fn user() -> User {
        User {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![27],
            home: Some("/home/app".into()),
        }
    }

    #[test]
    fn bridge_container_plan() {
        let p = start_plan(
            &record(),
            &bridge(),
            user(),
            &extras(),
            no_confinement(),
            cx(None),
        );
        let dir = Path::new("/var/lib/berth/containers/c1");
        assert_eq!(p.shim_dir, dir);
        assert!(
            !p.reap_failed_spawn,
            "a container's failed spawn is left alone"
        );
        // /etc files: written in the container's dir, kept on unwind.
        let names: Vec<_> = p.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(
            names,
            ["hostname", "hosts", "resolv.conf"].map(|n| dir.join(n))
        );
        assert!(p.files.iter().all(|f| !f.remove_on_unwind));
        assert_eq!(p.files[0].text, "web\n");
        assert_eq!(p.files[0].what, "hostname of c1");
        let hosts = &p.files[1].text;
        for want in [
            "172.17.0.2\tweb.example.org web",
            "172.17.0.3\tdb-link",
            "10.0.0.5\tdb",
            "10.0.0.6\tcache",
        ] {
            assert!(hosts.contains(want), "{want:?} missing in {hosts}");
        }
        assert!(!hosts.contains("not-an-ip"), "{hosts}");
        // Links come before --add-host entries.
        assert!(hosts.find("db-link") < hosts.find("10.0.0.5"), "{hosts}");
        assert_eq!(p.files[2].text, "nameserver 172.17.0.1\n");
        let s = &p.config.spec;
        let dests: Vec<_> = s.mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(
            dests,
            ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/data"]
        );
        assert_eq!(s.mounts[1].source, dir.join("hosts").display().to_string());
        assert_eq!(s.mounts[1].options, ["rbind", "rprivate"]);
        assert_eq!(s.args, ["/bin/sh", "-c", "echo hi"]);
        // The container's own env wins over link variables.
        assert!(s.env.contains(&"A=own".to_string()), "{:?}", s.env);
        assert!(!s.env.contains(&"A=link".to_string()), "{:?}", s.env);
        assert!(
            s.env.iter().any(|e| e.starts_with("DB_PORT=")),
            "{:?}",
            s.env
        );
        assert_eq!(s.user, user());
        assert_eq!(s.cwd, "/srv");
        assert_eq!(s.network, NetworkMode::Path("/run/berth/netns/c1".into()));
        assert_eq!(s.ipc, berth_runtime::NsMode::Host);
        assert_eq!(s.pid, berth_runtime::NsMode::Private);
        assert_eq!(s.init.as_deref(), Some(Path::new("/usr/bin/tini-static")));
        assert_eq!(s.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(s.shm_size, Some(64 << 20));
        assert_eq!(s.cap_add, ["NET_ADMIN"]);
        assert_eq!(
            s.rootfs,
            Path::new("/var/lib/berth/containers-rw/c1/merged")
        );
        assert!(
            p.config.start_on_request,
            "attaches come before the process starts"
        );
        assert_eq!(p.config.state_root, Path::new("/run/berth/runtime"));
    }

    #[test]
    fn host_network_uses_the_hosts_files_given() {
        let mut r = record();
        r.host_config.network_mode = Some("host".into());
        let net = Attached {
            mode: NetworkMode::Host,
            resolv: "nameserver 192.168.1.1\n".into(),
            ..Default::default()
        };
        let plan = |r: &Record| {
            start_plan(
                r,
                &net,
                user(),
                &StartExtras::default(),
                no_confinement(),
                cx(Some("127.0.0.1 localhost myhost\n")),
            )
        };
        let p = plan(&r);
        assert_eq!(p.files[1].text, "127.0.0.1 localhost myhost\n");
        assert_eq!(p.files[2].text, "nameserver 192.168.1.1\n");
        assert_eq!(p.config.spec.network, NetworkMode::Host);
        // No namespace of its own: dockerd's network sysctls stay off (as for container:).
        assert!(!p.config.spec.own_netns);
        r.host_config.network_mode = Some("container:abc".into());
        assert!(!plan(&r).config.spec.own_netns);
    }

    #[test]
    fn network_mode_defaults_to_bridge() {
        let mut r = Record::default();
        assert_eq!(network_mode(&r), "bridge");
        r.host_config.network_mode = Some("default".into());
        assert_eq!(network_mode(&r), "bridge");
        r.host_config.network_mode = Some("container:abc".into());
        assert_eq!(network_mode(&r), "container:abc");
    }

    /// The whole spec as JSON for a minimal container: any field the planner drops or changes
    /// shows here (reviewed when written; update deliberately).
    #[test]
    fn minimal_spec_snapshot() {
        let r = Record {
            id: "c2".into(),
            path: "true".into(),
            ..Default::default()
        };
        let net = Attached {
            mode: NetworkMode::None,
            ..Default::default()
        };
        let p = start_plan(
            &r,
            &net,
            User::default(),
            &StartExtras::default(),
            no_confinement(),
            cx(None),
        );
        let got = serde_json::to_value(&p.config.spec).expect("spec serializes");
        let want = serde_json::json!({
          "apparmor_profile": null,
          "args": [
            "true"
          ],
          "auto_remove": false,
          "cap_add": [],
          "cap_drop": [],
          "cgroup_parent": null,
          "cwd": "",
          "device_rules": [],
          "devices": [],
          "domainname": "",
          "env": [],
          "hostname": "",
          "id": "c2",
          "init": null,
          "ipc": "Private",
          "labels": {},
          "masked_paths": null,
          "mounts": [
            {
              "destination": "/etc/hostname",
              "options": [
                "rbind",
                "rprivate"
              ],
              "source": "/var/lib/berth/containers/c1/hostname",
              "type": "bind"
            },
            {
              "destination": "/etc/hosts",
              "options": [
                "rbind",
                "rprivate"
              ],
              "source": "/var/lib/berth/containers/c1/hosts",
              "type": "bind"
            },
            {
              "destination": "/etc/resolv.conf",
              "options": [
                "rbind",
                "rprivate"
              ],
              "source": "/var/lib/berth/containers/c1/resolv.conf",
              "type": "bind"
            }
          ],
          "network": "None",
          "no_new_privileges": false,
          "oom_score_adj": null,
          "open_stdin": false,
          "own_netns": true,
          "pid": "Private",
          "privileged": false,
          "readonly_paths": null,
          "readonly_rootfs": false,
          "resources": {
            "blkio_weight": 0,
            "cpu_period": 0,
            "cpu_quota": 0,
            "cpu_shares": 0,
            "cpuset_cpus": "",
            "cpuset_mems": "",
            "memory": 0,
            "memory_reservation": 0,
            "memory_swap": 0,
            "pids_limit": 0
          },
          "rootfs": "/var/lib/berth/containers-rw/c1/merged",
          "seccomp": "Default",
          "shm_size": null,
          "stop_signal": null,
          "sysctls": {},
          "tty": false,
          "ulimits": [],
          "user": {
            "additional_gids": [],
            "gid": 0,
            "home": null,
            "uid": 0
          },
          "uts": "Private"
        });
        assert_eq!(got, want, "{}", serde_json::to_string_pretty(&got).unwrap());
    }
}
