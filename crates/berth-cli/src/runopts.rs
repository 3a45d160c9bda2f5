//! `run`/`create` flags → the API's container-create request (pure: env and files are
//! passed in), with docker's flag error messages.

use std::collections::HashMap;

use berth_client::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig,
    HostConfigLogConfig, NetworkingConfig,
};

use crate::cli::{ResourceFlags, RunArgs};
use crate::opts::{self, VolumeSpec};
use crate::units::{parse_go_duration, ram_in_bytes};

/// A planned `POST /containers/create`.
#[derive(Debug, Clone)]
pub struct CreatePlan {
    pub name: Option<String>,
    pub platform: Option<String>,
    pub body: ContainerCreateBody,
}

/// Inputs from the environment that conversion needs (kept out so it stays pure).
pub struct Env<'a> {
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub read_file: &'a dyn Fn(&str) -> Result<String, String>,
    pub cwd: &'a std::path::Path,
}

fn flag_err(val: &str, flag: &str, msg: impl std::fmt::Display) -> String {
    format!("invalid argument \"{val}\" for \"{flag}\" flag: {msg}")
}

fn size(v: &Option<String>, flag: &str) -> Result<Option<i64>, String> {
    v.as_deref()
        .map(|s| {
            if s == "-1" {
                return Ok(-1);
            }
            ram_in_bytes(s).map_err(|e| flag_err(s, flag, e))
        })
        .transpose()
}

fn nanos(v: &Option<String>, flag: &str) -> Result<Option<i64>, String> {
    v.as_deref()
        .map(|s| {
            parse_go_duration(s)
                .map(|d| d.as_nanos() as i64)
                .map_err(|e| flag_err(s, flag, e))
        })
        .transpose()
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// Resource flags parsed into the API's HostConfig values, with Docker's flag errors.
#[derive(Debug, Default, PartialEq)]
pub struct Resources {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
}

/// Parse `run`/`create`/`update`'s resource flags.
pub fn resources(a: &ResourceFlags) -> Result<Resources, String> {
    let nano_cpus = a
        .cpus
        .as_deref()
        .map(|s| {
            s.parse::<f64>()
                .ok()
                .filter(|f| *f >= 0.0)
                .map(|f| (f * 1e9) as i64)
                .ok_or_else(|| {
                    flag_err(
                        s,
                        "--cpus",
                        format!("failed to parse {s} as a rational number"),
                    )
                })
        })
        .transpose()?;
    Ok(Resources {
        memory: size(&a.memory, "-m, --memory")?,
        memory_swap: size(&a.memory_swap, "--memory-swap")?,
        memory_reservation: size(&a.memory_reservation, "--memory-reservation")?,
        nano_cpus,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
    })
}

/// `--security-opt` as the docker CLI sends it: `seccomp=<file>` carries the file's JSON
/// (compacted), not its path, which the daemon cannot read; the built-in names stay.
fn security_opts(opts: &[String], env: &Env) -> Result<Vec<String>, String> {
    opts.iter()
        .map(|o| {
            let Some(path) = o.strip_prefix("seccomp=").or(o.strip_prefix("seccomp:")) else {
                return Ok(o.clone());
            };
            if matches!(path, "unconfined" | "builtin") {
                return Ok(o.clone());
            }
            let text = (env.read_file)(path)
                .map_err(|e| format!("opening seccomp profile ({path}) failed: {e}"))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("compacting json for seccomp profile ({path}) failed: {e}"))?;
            Ok(format!("seccomp={json}"))
        })
        .collect()
}

/// Convert parsed flags into a create plan.
pub fn plan(a: &RunArgs, env: &Env) -> Result<CreatePlan, String> {
    let res = resources(&a.resources)?;
    let shm_size = size(&a.shm_size, "--shm-size")?;

    let mut env_list = Vec::new();
    for f in &a.env_file {
        let text = (env.read_file)(f).map_err(|e| format!("open {f}: {e}"))?;
        env_list.extend(opts::parse_env_file(&text, env.lookup)?);
    }
    env_list.extend(a.env.iter().filter_map(|e| opts::env_entry(e, env.lookup)));

    let mut labels = HashMap::new();
    for f in &a.label_file {
        let text = (env.read_file)(f).map_err(|e| format!("open {f}: {e}"))?;
        labels.extend(opts::kv_map(&opts::parse_env_file(&text, &|_| None)?));
    }
    labels.extend(opts::kv_map(&a.label));

    let mut publishes = Vec::new();
    for p in &a.publish {
        publishes.extend(opts::parse_publish(p).map_err(|e| flag_err(p, "-p, --publish", e))?);
    }
    let mut exposed: Vec<String> = publishes.iter().map(|p| p.port.clone()).collect();
    for e in &a.expose {
        exposed.extend(opts::parse_expose(e).map_err(|m| flag_err(e, "--expose", m))?);
    }
    exposed.sort();
    exposed.dedup();

    let mut binds = Vec::new();
    let mut volumes = Vec::new();
    for v in &a.volume {
        match opts::parse_volume(v, env.cwd).map_err(|e| flag_err(v, "-v, --volume", e))? {
            VolumeSpec::Anonymous(d) => volumes.push(d),
            VolumeSpec::Bind(b) => binds.push(b),
        }
    }
    let mounts = a
        .mount
        .iter()
        .map(|m| opts::parse_mount(m).map_err(|e| flag_err(m, "--mount", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let tmpfs = a
        .tmpfs
        .iter()
        .map(|t| opts::parse_tmpfs(t).map_err(|e| flag_err(t, "--tmpfs", e)))
        .collect::<Result<HashMap<_, _>, _>>()?;
    let ulimits = a
        .ulimit
        .iter()
        .map(|u| opts::parse_ulimit(u).map_err(|e| flag_err(u, "--ulimit", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let devices = a
        .device
        .iter()
        .map(|d| opts::parse_device(d).map_err(|e| flag_err(d, "--device", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let restart = a
        .restart
        .as_deref()
        .map(|r| opts::parse_restart(r).map_err(|e| flag_err(r, "--restart", e)))
        .transpose()?;
    if a.rm
        && restart
            .as_ref()
            .is_some_and(|r| r.name != Some(berth_client::models::RestartPolicyNameEnum::NO))
    {
        return Err("conflicting options: cannot specify both --restart and --rm".into());
    }
    if a.log_driver.as_deref() == Some("none") && !a.log_opt.is_empty() {
        return Err("invalid logging opts for driver none".into());
    }
    let mut sysctls = HashMap::new();
    for s in &a.sysctl {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| flag_err(s, "--sysctl", format!("sysctl '{s}' is not allowed")))?;
        sysctls.insert(k.to_string(), v.to_string());
    }

    let healthcheck = if a.no_healthcheck {
        if a.health_cmd.is_some() {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        })
    } else {
        let hc = HealthConfig {
            test: a
                .health_cmd
                .as_ref()
                .map(|c| vec!["CMD-SHELL".into(), c.clone()]),
            interval: nanos(&a.health_interval, "--health-interval")?,
            timeout: nanos(&a.health_timeout, "--health-timeout")?,
            retries: a.health_retries,
            start_period: nanos(&a.health_start_period, "--health-start-period")?,
            start_interval: nanos(&a.health_start_interval, "--health-start-interval")?,
        };
        (hc != HealthConfig::default()).then_some(hc)
    };

    let attach_stdin = !a.detach && (a.interactive || a.attach.iter().any(|s| s == "stdin"));
    let (attach_stdout, attach_stderr) = if a.detach {
        (false, false)
    } else if a.attach.is_empty() {
        (true, true)
    } else {
        (
            a.attach.iter().any(|s| s == "stdout"),
            a.attach.iter().any(|s| s == "stderr"),
        )
    };
    if a.detach && !a.attach.is_empty() {
        return Err("conflicting options: cannot specify both --attach and --detach".into());
    }

    let network_mode = a.network.clone();
    let networking_config = match (&network_mode, a.network_alias.is_empty() && a.ip.is_none()) {
        (Some(n), false) => Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                n.clone(),
                EndpointSettings {
                    aliases: non_empty(a.network_alias.clone()),
                    ipam_config: a.ip.as_ref().map(|ip| EndpointIpamConfig {
                        ipv4_address: Some(ip.clone()),
                        ..Default::default()
                    }),
                    mac_address: a.mac_address.clone(),
                    ..Default::default()
                },
            )])),
        }),
        (None, false) => return Err("--network-alias and --ip need --network".into()),
        // --mac-address alone: the endpoint of the default network, as docker's CLI keys it.
        _ => a.mac_address.as_ref().map(|m| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network_mode.clone().unwrap_or_else(|| "default".into()),
                EndpointSettings {
                    mac_address: Some(m.clone()),
                    ..Default::default()
                },
            )])),
        }),
    };

    let host_config = HostConfig {
        binds: non_empty(binds),
        mounts: non_empty(mounts),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        port_bindings: (!publishes.is_empty()).then(|| opts::port_map(&publishes)),
        publish_all_ports: a.publish_all.then_some(true),
        auto_remove: a.rm.then_some(true),
        restart_policy: restart,
        memory: res.memory,
        memory_swap: res.memory_swap,
        memory_reservation: res.memory_reservation,
        nano_cpus: res.nano_cpus,
        cpu_shares: res.cpu_shares,
        cpuset_cpus: res.cpuset_cpus,
        pids_limit: res.pids_limit,
        oom_kill_disable: a.oom_kill_disable.then_some(true),
        shm_size,
        ulimits: non_empty(ulimits),
        devices: non_empty(devices),
        privileged: a.privileged.then_some(true),
        readonly_rootfs: a.read_only.then_some(true),
        cap_add: non_empty(a.cap_add.clone()),
        cap_drop: non_empty(a.cap_drop.clone()),
        security_opt: non_empty(security_opts(&a.security_opt, env)?),
        device_cgroup_rules: non_empty(a.device_cgroup_rule.clone()),
        init: a.init.then_some(true),
        links: non_empty(a.link.clone()),
        network_mode,
        dns: non_empty(a.dns.clone()),
        dns_search: non_empty(a.dns_search.clone()),
        dns_options: non_empty(a.dns_option.clone()),
        extra_hosts: non_empty(a.add_host.iter().map(|h| h.replacen('=', ":", 1)).collect()),
        volumes_from: non_empty(a.volumes_from.clone()),
        sysctls: (!sysctls.is_empty()).then_some(sysctls),
        group_add: non_empty(a.group_add.clone()),
        ipc_mode: a.ipc.clone(),
        pid_mode: a.pid.clone(),
        uts_mode: a.uts.clone(),
        userns_mode: a.userns.clone(),
        // `--log-opt` alone configures the daemon's default driver (docker sends Type "").
        log_config: (a.log_driver.is_some() || !a.log_opt.is_empty()).then(|| {
            HostConfigLogConfig {
                typ: a.log_driver.clone(),
                config: Some(opts::kv_map(&a.log_opt)),
            }
        }),
        ..Default::default()
    };

    let body = ContainerCreateBody {
        image: Some(a.image.clone()),
        cmd: non_empty(a.args.clone()),
        entrypoint: a.entrypoint.as_ref().map(|e| vec![e.clone()]),
        env: non_empty(env_list),
        labels: (!labels.is_empty()).then_some(labels),
        hostname: a.hostname.clone(),
        domainname: a.domainname.clone(),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        tty: Some(a.tty),
        open_stdin: Some(a.interactive),
        stdin_once: Some(attach_stdin),
        attach_stdin: Some(attach_stdin),
        attach_stdout: Some(attach_stdout),
        attach_stderr: Some(attach_stderr),
        exposed_ports: non_empty(exposed),
        volumes: non_empty(volumes),
        healthcheck,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    };
    Ok(CreatePlan {
        name: a.name.clone(),
        platform: a.platform.clone(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<CreatePlan, String> {
        let mut v = vec!["berth", "run"];
        v.extend_from_slice(args);
        let cli = crate::cli::Cli::try_parse_from(v).map_err(|e| e.to_string())?;
        let crate::cli::Command::C(crate::cli::ContainerCmd::Run(r)) = cli.cmd else {
            panic!("not run")
        };
        let env = Env {
            lookup: &|k| (k == "FOO").then(|| "bar".to_string()),
            read_file: &|f| match f {
                "envf" => Ok("A=1\n#x\nFOO\n".into()),
                "prof.json" => Ok("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n".into()),
                "bad.json" => Ok("{nope".into()),
                _ => Err("no such file or directory".into()),
            },
            cwd: std::path::Path::new("/w"),
        };
        plan(&r, &env)
    }

    #[test]
    fn full_body() {
        let p = parse(&[
            "-d",
            "--rm",
            "--name",
            "web",
            "-e",
            "X=1",
            "-e",
            "FOO",
            "--env-file",
            "envf",
            "-p",
            "8080:80",
            "-v",
            "/data",
            "-v",
            "/a:/b:ro",
            "-m",
            "10m",
            "--cpus",
            "1.5",
            "-l",
            "k=v",
            "--restart",
            "no",
            "--health-cmd",
            "true",
            "--health-interval",
            "5s",
            "-h",
            "box",
            "--network",
            "n1",
            "--network-alias",
            "web1",
            "busybox",
            "sh",
            "-c",
            "echo hi",
        ])
        .unwrap();
        let b = &p.body;
        let h = b.host_config.as_ref().unwrap();
        assert_eq!(p.name.as_deref(), Some("web"));
        assert_eq!(b.cmd.as_ref().unwrap(), &["sh", "-c", "echo hi"]);
        assert_eq!(
            b.env.as_ref().unwrap(),
            &["A=1", "FOO=bar", "X=1", "FOO=bar"]
        );
        assert_eq!(h.memory, Some(10 << 20));
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert_eq!(h.binds.as_ref().unwrap(), &["/a:/b:ro"]);
        assert_eq!(b.volumes.as_ref().unwrap(), &["/data"]);
        assert_eq!(b.exposed_ports.as_ref().unwrap(), &["80/tcp"]);
        assert_eq!(h.auto_remove, Some(true));
        assert_eq!(b.hostname.as_deref(), Some("box"));
        assert_eq!(
            b.healthcheck.as_ref().unwrap().interval,
            Some(5_000_000_000)
        );
        assert_eq!(b.attach_stdout, Some(false));
        let j = serde_json::to_value(b).unwrap();
        assert_eq!(
            j["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
            "8080"
        );
        assert_eq!(j["ExposedPorts"]["80/tcp"], serde_json::json!({}));
        assert_eq!(
            j["NetworkingConfig"]["EndpointsConfig"]["n1"]["Aliases"][0],
            "web1"
        );
    }

    #[test]
    fn seccomp_profile_content_and_device_rules_are_sent() {
        let p = parse(&[
            "--security-opt",
            "seccomp=prof.json",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "no-new-privileges",
            "--device-cgroup-rule",
            "c 1:5 rwm",
            "busybox",
        ])
        .unwrap();
        let h = p.body.host_config.unwrap();
        assert_eq!(
            h.security_opt.unwrap(),
            [
                r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#,
                "seccomp=unconfined",
                "no-new-privileges"
            ]
        );
        assert_eq!(h.device_cgroup_rules.unwrap(), ["c 1:5 rwm"]);
        let e = parse(&["--security-opt", "seccomp=bad.json", "busybox"]).unwrap_err();
        assert!(
            e.starts_with("compacting json for seccomp profile (bad.json) failed"),
            "{e}"
        );
        let e = parse(&["--security-opt", "seccomp=none.json", "busybox"]).unwrap_err();
        assert!(
            e.starts_with("opening seccomp profile (none.json) failed"),
            "{e}"
        );
    }

    #[test]
    fn interactive_attach() {
        let p = parse(&["-it", "busybox"]).unwrap();
        assert_eq!(p.body.tty, Some(true));
        assert_eq!(p.body.open_stdin, Some(true));
        assert_eq!(p.body.attach_stdin, Some(true));
        assert_eq!(p.body.cmd, None);
    }

    #[test]
    fn flag_errors_match_docker() {
        assert_eq!(
            parse(&["--memory", "10q", "busybox"]).unwrap_err(),
            "invalid argument \"10q\" for \"-m, --memory\" flag: invalid size: '10q'"
        );
        assert!(parse(&["-p", "x:80", "busybox"])
            .unwrap_err()
            .contains("\"-p, --publish\""));
        assert!(parse(&["--rm", "--restart", "always", "busybox"]).is_err());
        assert!(parse(&["--env-file", "missing", "busybox"])
            .unwrap_err()
            .contains("open missing"));
        assert!(parse(&["--health-interval", "5", "busybox"]).is_err());
        assert_eq!(
            parse(&["--log-driver", "none", "--log-opt", "a=b", "busybox"]).unwrap_err(),
            "invalid logging opts for driver none"
        );
    }

    #[test]
    fn log_opt_alone_is_for_the_default_driver() {
        let p = parse(&["--log-opt", "max-size=1k", "busybox"]).unwrap();
        let lc = p.body.host_config.unwrap().log_config.unwrap();
        assert_eq!(lc.typ, None);
        assert_eq!(
            lc.config,
            Some(HashMap::from([("max-size".into(), "1k".into())]))
        );
        let p = parse(&["busybox"]).unwrap();
        assert_eq!(p.body.host_config.unwrap().log_config, None);
    }

    #[test]
    fn trailing_args_are_the_command() {
        let p = parse(&["busybox", "ls", "-la", "--rm"]).unwrap();
        assert_eq!(p.body.cmd.as_ref().unwrap(), &["ls", "-la", "--rm"]);
        assert_eq!(p.body.host_config.as_ref().unwrap().auto_remove, None);
    }

    #[test]
    fn init_link_mac_and_start_interval() {
        let p = parse(&[
            "--init",
            "--link",
            "db:sql",
            "--mac-address",
            "02:42:ac:11:00:0a",
            "--health-cmd",
            "true",
            "--health-start-interval",
            "2s",
            "busybox",
        ])
        .unwrap();
        let h = p.body.host_config.as_ref().unwrap();
        assert_eq!(h.init, Some(true));
        assert_eq!(h.links.as_deref(), Some(&["db:sql".to_string()][..]));
        let eps = p.body.networking_config.as_ref().unwrap();
        let ep = &eps.endpoints_config.as_ref().unwrap()["default"];
        assert_eq!(ep.mac_address.as_deref(), Some("02:42:ac:11:00:0a"));
        let hc = p.body.healthcheck.as_ref().unwrap();
        assert_eq!(hc.start_interval, Some(2_000_000_000));
    }
}
