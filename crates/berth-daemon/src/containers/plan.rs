//! Pure decisions for starting a container: signals, port mappings, cgroup resources, log
//! rotation options and the init binary from Docker's request types; and what follows its
//! exit (restart policy, auto-remove).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::stored::RestartPolicyNameEnum as R;
use crate::error::{DaemonError, Result};
use berth_network::{PortRequest, Proto};
use berth_runtime::Resources;

use super::Record;

/// Parse `SIGTERM`, `TERM`, `15`.
pub fn parse_signal(s: &str) -> Result<i32> {
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
            return Err(DaemonError::Invalid(format!("Invalid signal: {s}")));
        }
    };
    Ok(n)
}

/// Docker-style port spec key `80/tcp` → (port, proto).
fn parse_port_key(k: &str) -> Option<(u16, Proto)> {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    Some((p.parse().ok()?, proto.parse().ok()?))
}

/// The ports a container asks to publish (`-p`, `-P`); no host address (`-p 8080:80`, `-P`)
/// is kept as none: the network manager publishes it on each family the container has.
pub fn port_mappings(r: &Record) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    let pb = r.host_config.port_bindings.clone().unwrap_or_default();
    for (k, binds) in &pb {
        let (cport, proto) = parse_port_key(k)
            .ok_or_else(|| DaemonError::Invalid(format!("invalid port specification: {k:?}")))?;
        for b in binds.clone().unwrap_or_default() {
            let hip = b.host_ip.unwrap_or_default();
            let host_ip: Option<IpAddr> = if hip.is_empty() {
                None
            } else {
                Some(
                    hip.parse()
                        .map_err(|_| DaemonError::Invalid(format!("invalid host IP {hip:?}")))?,
                )
            };
            let hp = b.host_port.unwrap_or_default();
            let host_port: u16 = if hp.is_empty() {
                0
            } else {
                hp.split('-')
                    .next()
                    .unwrap_or("0")
                    .parse()
                    .map_err(|_| DaemonError::Invalid(format!("invalid host port {hp:?}")))?
            };
            out.push(PortRequest {
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
                out.push(PortRequest {
                    host_ip: None,
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
pub fn resources_of(h: &super::stored::HostConfig) -> Resources {
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

/// What `--init` and legacy links add to a starting container's spec and /etc/hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartExtras {
    /// Link variables; the container's own env is applied over them.
    pub env: Vec<String>,
    /// /etc/hosts entries (`names`, address) of linked containers.
    pub hosts: Vec<(String, IpAddr)>,
    /// Host path of the init binary to run as PID 1.
    pub init: Option<PathBuf>,
    /// The donor's IPC namespace file for `--ipc container:<x>`.
    pub ipc_ns: Option<PathBuf>,
    /// The donor's PID namespace file for `--pid container:<x>`.
    pub pid_ns: Option<PathBuf>,
    /// The donor's UTS namespace file for `--uts container:<x>`.
    pub uts_ns: Option<PathBuf>,
    /// Host directory bound at /dev/shm: a `shareable` container's own host-side tmpfs, or
    /// its IPC donor's (the host's /dev/shm for a `host` donor), unless a mount of the
    /// container's own is at /dev/shm.
    pub shm: Option<PathBuf>,
}

impl StartExtras {
    /// The process env: link variables overridden by the container's `own` env.
    pub fn env_with(&self, own: &[String]) -> Vec<String> {
        super::names::merge_env(&self.env, own)
    }
}

/// Where berth looks for an init binary when daemon.json names none: Debian's static tini
/// (package `tini`; static because it runs inside any image), then Docker's own names.
pub const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/libexec/docker/docker-init",
    "/usr/local/bin/docker-init",
    "/usr/bin/docker-init",
];

/// The init binary to bind at /sbin/docker-init, if the container runs one: `HostConfig.Init`
/// when set, else the daemon's `init` default; the daemon's `init-path`, else the first of
/// [`INIT_CANDIDATES`] that `exists`. A wanted but missing binary is an error saying what to do.
pub fn init_binary(
    requested: Option<bool>,
    daemon_default: bool,
    configured: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Result<Option<PathBuf>> {
    if !requested.unwrap_or(daemon_default) {
        return Ok(None);
    }
    if let Some(p) = configured {
        if exists(p) {
            return Ok(Some(p.to_path_buf()));
        }
        return Err(DaemonError::Invalid(format!(
            "--init: the init binary {} (daemon.json \"init-path\") does not exist: install it or fix the setting",
            p.display()
        )));
    }
    INIT_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| exists(p))
        .map(|p| Some(p.to_path_buf()))
        .ok_or_else(|| {
            DaemonError::Invalid(format!(
                "--init: no init binary found (looked for {}): install tini (Debian: apt-get install tini) or set \"init-path\" in daemon.json",
                INIT_CANDIDATES.join(", ")
            ))
        })
}

/// What follows a container's exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    /// Its restart policy restarts it after `delay` (100 ms doubling per restart, to 51.2 s).
    Restart { delay: Duration },
    /// `--rm`: remove it.
    Remove,
    /// It stays exited.
    Keep,
}

/// The restart policy's decision for `r` exiting with `code` (never restart and auto-remove
/// together: create refuses that pair). A manual stop never restarts.
pub fn after_exit(r: &Record, code: i64) -> AfterExit {
    let policy = r.host_config.restart_policy.clone().unwrap_or_default();
    let name = policy.name.unwrap_or(R::EMPTY);
    let max = policy.maximum_retry_count.unwrap_or(0);
    let restart = !r.manually_stopped
        && match name {
            R::ALWAYS | R::UNLESS_STOPPED => true,
            R::ON_FAILURE => code != 0 && (max == 0 || r.restart_count < max),
            _ => false,
        };
    if restart {
        let n = r.restart_count;
        AfterExit::Restart {
            delay: Duration::from_millis(100u64 << n.clamp(0, 9)),
        }
    } else if r.host_config.auto_remove.unwrap_or(false) {
        AfterExit::Remove
    } else {
        AfterExit::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_policy(name: R, max: i64, restarts: i64) -> Record {
        let mut r = Record::default();
        r.host_config.restart_policy = Some(crate::containers::stored::RestartPolicy {
            name: Some(name),
            maximum_retry_count: Some(max),
        });
        r.restart_count = restarts;
        r
    }

    #[test]
    fn restart_policy_decisions() {
        let ms = |n| AfterExit::Restart {
            delay: Duration::from_millis(n),
        };
        assert_eq!(after_exit(&Record::default(), 1), AfterExit::Keep);
        assert_eq!(after_exit(&with_policy(R::NO, 0, 0), 1), AfterExit::Keep);
        assert_eq!(after_exit(&with_policy(R::ALWAYS, 0, 0), 0), ms(100));
        assert_eq!(
            after_exit(&with_policy(R::UNLESS_STOPPED, 0, 3), 0),
            ms(800)
        );
        // The back-off stops doubling after nine restarts.
        assert_eq!(after_exit(&with_policy(R::ALWAYS, 0, 40), 0), ms(51_200));
        // on-failure: only non-zero exits, and at most `max` times (0: no limit).
        assert_eq!(
            after_exit(&with_policy(R::ON_FAILURE, 0, 0), 0),
            AfterExit::Keep
        );
        assert_eq!(after_exit(&with_policy(R::ON_FAILURE, 0, 7), 2), ms(12_800));
        assert_eq!(after_exit(&with_policy(R::ON_FAILURE, 2, 1), 2), ms(200));
        assert_eq!(
            after_exit(&with_policy(R::ON_FAILURE, 2, 2), 2),
            AfterExit::Keep
        );
        // A manual stop never restarts.
        let mut stopped = with_policy(R::ALWAYS, 0, 0);
        stopped.manually_stopped = true;
        assert_eq!(after_exit(&stopped, 137), AfterExit::Keep);
        // --rm removes whatever the exit code.
        let mut rm = Record::default();
        rm.host_config.auto_remove = Some(true);
        assert_eq!(after_exit(&rm, 0), AfterExit::Remove);
        assert_eq!(after_exit(&rm, 3), AfterExit::Remove);
    }

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
    fn init_binary_choice() {
        let none = |_: &Path| false;
        let tini = |p: &Path| p == Path::new("/usr/bin/tini-static");
        assert_eq!(init_binary(None, false, None, none).unwrap(), None);
        assert_eq!(init_binary(Some(false), true, None, tini).unwrap(), None);
        assert_eq!(
            init_binary(Some(true), false, None, tini).unwrap(),
            Some(PathBuf::from("/usr/bin/tini-static"))
        );
        // The daemon default applies when the request says nothing.
        assert!(init_binary(None, true, None, tini).unwrap().is_some());
        let e = init_binary(Some(true), false, None, none).unwrap_err();
        assert!(e.to_string().contains("install tini"), "{e}");
        let custom = Path::new("/opt/my-init");
        let e = init_binary(Some(true), false, Some(custom), tini).unwrap_err();
        assert!(e.to_string().contains("/opt/my-init"), "{e}");
        let ok = init_binary(Some(true), false, Some(custom), |p: &Path| p == custom).unwrap();
        assert_eq!(ok, Some(custom.to_path_buf()));
    }

    #[test]
    fn ports_from_bindings_and_publish_all() {
        let mut r = Record::default();
        let mut pb = std::collections::HashMap::new();
        pb.insert(
            "80/tcp".to_string(),
            Some(vec![crate::containers::stored::PortBinding {
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
        assert!(m
            .iter()
            .any(|p| p.host_port == 0 && p.proto == Proto::Udp && p.host_ip.is_none()));
        assert!(m
            .iter()
            .any(|p| p.host_ip == Some(IpAddr::from([127, 0, 0, 1]))));
    }
}
