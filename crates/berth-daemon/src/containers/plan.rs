//! Pure decisions for starting a container: signals, port mappings, cgroup resources and
//! log rotation options from Docker's request types.

use std::net::IpAddr;

use berth_api::{ApiError, ApiResult};
use berth_network::{PortMapping, Proto};
use berth_runtime::{NsMode, Resources};

use super::Record;

/// Parse `SIGTERM`, `TERM`, `15`.
pub fn parse_signal(s: &str) -> ApiResult<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => {
            if let Some(off) = name
                .strip_prefix("RTMIN+")
                .and_then(|n| n.parse::<i32>().ok())
            {
                return Ok(libc::SIGRTMIN() + off);
            }
            return Err(ApiError::invalid(format!("Invalid signal: {s}")));
        }
    };
    Ok(n)
}

/// Docker-style port spec key `80/tcp` → (port, proto).
fn parse_port_key(k: &str) -> Option<(u16, Proto)> {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    Some((p.parse().ok()?, proto.parse().ok()?))
}

/// The port mappings a container asks for (`-p`, `-P`).
pub fn port_mappings(r: &Record) -> ApiResult<Vec<PortMapping>> {
    let mut out = Vec::new();
    let pb = r.host_config.port_bindings.clone().unwrap_or_default();
    for (k, binds) in &pb {
        let (cport, proto) = parse_port_key(k)
            .ok_or_else(|| ApiError::invalid(format!("invalid port specification: {k:?}")))?;
        for b in binds.clone().unwrap_or_default() {
            let hip = b.host_ip.unwrap_or_default();
            let host_ip: IpAddr = if hip.is_empty() {
                IpAddr::from([0, 0, 0, 0])
            } else {
                hip.parse()
                    .map_err(|_| ApiError::invalid(format!("invalid host IP {hip:?}")))?
            };
            let hp = b.host_port.unwrap_or_default();
            let host_port: u16 = if hp.is_empty() {
                0
            } else {
                hp.split('-')
                    .next()
                    .unwrap_or("0")
                    .parse()
                    .map_err(|_| ApiError::invalid(format!("invalid host port {hp:?}")))?
            };
            out.push(PortMapping {
                host_ip,
                host_port,
                container_port: cport,
                proto,
            });
        }
    }
    if r.host_config.publish_all_ports.unwrap_or(false) {
        for k in r.config.exposed_ports.clone().unwrap_or_default() {
            if pb.contains_key(&k) {
                continue;
            }
            if let Some((cport, proto)) = parse_port_key(&k) {
                out.push(PortMapping {
                    host_ip: IpAddr::from([0, 0, 0, 0]),
                    host_port: 0,
                    container_port: cport,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

/// Parse a memory size like `64m` from log options.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mul) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        'b' => (&s[..s.len() - 1], 1),
        _ => (&s[..], 1),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

/// Resources from a host config (Docker's units).
pub fn resources_of(h: &berth_api::models::HostConfig) -> Resources {
    let nano = h.nano_cpus.unwrap_or(0);
    let (quota, period) = if nano > 0 {
        (nano * 100_000 / 1_000_000_000, 100_000u64)
    } else {
        (h.cpu_quota.unwrap_or(0), h.cpu_period.unwrap_or(0) as u64)
    };
    Resources {
        memory: h.memory.unwrap_or(0),
        memory_swap: h.memory_swap.unwrap_or(0),
        memory_reservation: h.memory_reservation.unwrap_or(0),
        cpu_shares: h.cpu_shares.unwrap_or(0).max(0) as u64,
        cpu_quota: quota,
        cpu_period: period,
        cpuset_cpus: h.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: h.cpuset_mems.clone().unwrap_or_default(),
        pids_limit: h.pids_limit.unwrap_or(0).max(0),
        blkio_weight: h.blkio_weight.unwrap_or(0),
    }
}

pub(crate) fn ns_mode(v: &Option<String>) -> NsMode {
    if v.as_deref() == Some("host") {
        NsMode::Host
    } else {
        NsMode::Private
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_sizes() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("kill").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("512"), Some(512));
    }

    #[test]
    fn ports_from_bindings_and_publish_all() {
        let mut r = Record::default();
        let mut pb = std::collections::HashMap::new();
        pb.insert(
            "80/tcp".to_string(),
            Some(vec![berth_api::models::PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some("8080".into()),
            }]),
        );
        r.host_config.port_bindings = Some(pb);
        r.host_config.publish_all_ports = Some(true);
        r.config.exposed_ports = Some(vec!["80/tcp".into(), "53/udp".into()]);
        let m = port_mappings(&r).unwrap();
        assert_eq!(m.len(), 2);
        assert!(m
            .iter()
            .any(|p| p.host_port == 8080 && p.container_port == 80));
        assert!(m.iter().any(|p| p.host_port == 0 && p.proto == Proto::Udp));
    }
}
