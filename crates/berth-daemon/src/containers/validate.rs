//! Create- and update-time checks of a container's settings, with dockerd's messages
//! (moby `verifyContainerSettings`, `verifyPlatformContainerResources`,
//! `verifyPlatformContainerSettings`, `ValidateRestartPolicy`, the json-file log options, the
//! CLI's ulimit and sysctl rules): an out-of-range value is a 400 at create (docker exits 125),
//! never a 500 at start or a silently ignored setting. The checks are pure: the host's CPUs and
//! memory nodes come in as [`HostFacts`].

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};

use crate::error::DaemonError;
use berth_api_types::models::ContainerCreateBody;

use super::stored::HostConfig;

/// What the checks need to know about the host.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// The CPUs containers may use, in cpuset list syntax (`0-1`).
    pub cpus: String,
    /// The memory nodes containers may use (`0`).
    pub mems: String,
    /// The host's IPv6 addresses (`/proc/net/if_inet6`); `None` when IPv6 is disabled
    /// (`net.ipv6.conf.all.disable_ipv6=1`) or absent (`ipv6.disable=1`).
    pub ipv6: Option<Vec<Ipv6Addr>>,
    /// Why this daemon cannot apply resource limits (rootless: berth-rootless says why).
    pub limits_refused: Option<String>,
    /// The daemon runs with `--userns-remap`.
    pub remapped: bool,
}

impl HostFacts {
    /// Read from the root cpuset cgroup (v1 or v2), falling back to sysfs.
    pub fn detect() -> HostFacts {
        let first = |paths: &[&str], default: &str| {
            paths
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .map(|s| s.trim().to_string())
                .find(|s| !s.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        HostFacts {
            cpus: first(
                &[
                    "/sys/fs/cgroup/cpuset/cpuset.cpus",
                    "/sys/fs/cgroup/cpuset.cpus.effective",
                    "/sys/devices/system/cpu/online",
                ],
                "0",
            ),
            mems: first(
                &[
                    "/sys/fs/cgroup/cpuset/cpuset.mems",
                    "/sys/fs/cgroup/cpuset.mems.effective",
                    "/sys/devices/system/node/online",
                ],
                "0",
            ),
            ipv6: host_ipv6(),
            limits_refused: berth_rootless::cgroup::limits_refused(),
            remapped: berth_rootless::remap_host::active().is_some(),
        }
    }
}

/// The addresses in `/proc/net/if_inet6` (32 hex digits first on each line), or `None` when
/// the host has IPv6 off.
fn host_ipv6() -> Option<Vec<Ipv6Addr>> {
    let off = std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        .map_or(true, |s| s.trim() == "1");
    if off {
        return None;
    }
    let table = std::fs::read_to_string("/proc/net/if_inet6").ok()?;
    Some(
        table
            .lines()
            .filter_map(|l| u128::from_str_radix(l.split_whitespace().next()?, 16).ok())
            .map(Ipv6Addr::from)
            .collect(),
    )
}

const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// moby's bound on cpuset lists (CVE-2018-20699: `1-9223372036854775807` exhausted memory).
const MAX_CPUS: u32 = 8192;

/// Check a create's (or an update's merged) host config against this host.
pub fn check_host_config(h: &HostConfig) -> Result<(), DaemonError> {
    host_config(h, &HostFacts::detect()).map_err(DaemonError::Invalid)
}

/// Check the container config part of a create (as the client sent it, before the image's
/// config is merged in).
pub fn check_create_body(c: &ContainerCreateBody) -> Result<(), DaemonError> {
    config(c).map_err(DaemonError::Invalid)?;
    // A rootless daemon without subordinate ids maps root alone: no other user can exist.
    let user = c.user.as_deref().unwrap_or("");
    if let (false, Some(hint)) = (is_root_user(user), berth_rootless::spawn::single_id_hint()) {
        return Err(DaemonError::Invalid(format!(
            "user {user:?} has no id here: {hint}"
        )));
    }
    Ok(())
}

/// Whether `--user` names root (or nothing: the image's user, root for most images).
fn is_root_user(user: &str) -> bool {
    let mut parts = user.splitn(2, ':');
    let (u, g) = (parts.next().unwrap_or(""), parts.next());
    matches!(u, "" | "0" | "root") && g.is_none_or(|g| matches!(g, "0" | "root"))
}

/// The pure host-config checks (first failure wins, in dockerd's order).
pub fn host_config(h: &HostConfig, host: &HostFacts) -> Result<(), String> {
    userns(h, host.remapped)?;
    restart_policy(h)?;
    ports(
        h.port_bindings
            .iter()
            .flatten()
            .map(|(k, v)| (k, v.as_deref())),
    )?;
    host_addresses(h, host)?;
    memory(h)?;
    cpu(h, host)?;
    if let (Some(why), Some(flag)) = (&host.limits_refused, first_limit(h)) {
        return Err(format!("{flag}: {why}"));
    }
    if let Some(w) = h.blkio_weight.filter(|w| *w > 0) {
        if !(10..=1000).contains(&w) {
            return Err("Range of blkio weight is from 10 to 1000".into());
        }
    }
    if h.io_maximum_bandwidth.unwrap_or(0) != 0 || h.io_maximum_iops.unwrap_or(0) != 0 {
        return Err(
            "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps"
                .into(),
        );
    }
    if h.shm_size.unwrap_or(0) < 0 {
        return Err("SHM size can not be less than 0".into());
    }
    let oom = h.oom_score_adj.unwrap_or(0);
    if !(-1000..=1000).contains(&oom) {
        return Err(format!(
            "Invalid value {oom}, range for oom score adj is [-1000, 1000]"
        ));
    }
    ulimits(h)?;
    sysctls(h)?;
    log_config(h)?;
    extra_hosts(h)?;
    runtime(h)?;
    tmpfs(h)
}

/// `--userns`: only `host` (or nothing) exists; under `--userns-remap` what needs the host's
/// ids needs `--userns=host` too (moby's `verifyPlatformContainerSettings`: refused, not
/// ignored).
fn userns(h: &HostConfig, remapped: bool) -> Result<(), String> {
    let mode = h.userns_mode.as_deref().unwrap_or("");
    if !matches!(mode, "" | "host") {
        return Err(format!(
            "invalid --userns {mode:?}: give host (or nothing for the daemon's default)"
        ));
    }
    if !remapped || mode == "host" {
        return Ok(());
    }
    if h.privileged == Some(true) {
        return Err("privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode".into());
    }
    if h.network_mode.as_deref() == Some("host") {
        return Err(
            "cannot share the host's network namespace when user namespaces are enabled".into(),
        );
    }
    if h.pid_mode.as_deref() == Some("host") {
        return Err("cannot share the host PID namespace when user namespaces are enabled".into());
    }
    Ok(())
}

/// The first resource limit `h` sets (as the docker flag naming it); unset, 0 and -1
/// (unlimited) are no limit.
fn first_limit(h: &HostConfig) -> Option<&'static str> {
    fn set(v: Option<i64>) -> bool {
        v.is_some_and(|v| v != 0 && v != -1)
    }
    fn listed<T>(v: &Option<Vec<T>>) -> bool {
        v.as_ref().is_some_and(|v| !v.is_empty())
    }
    let text = |v: &Option<String>| v.as_ref().is_some_and(|s| !s.is_empty());
    [
        ("--memory", set(h.memory)),
        ("--memory-swap", set(h.memory_swap)),
        ("--memory-reservation", set(h.memory_reservation)),
        (
            "--memory-swappiness",
            h.memory_swappiness.is_some_and(|v| v >= 0),
        ),
        ("--cpus", set(h.nano_cpus)),
        ("--cpu-shares", set(h.cpu_shares)),
        ("--cpu-period", set(h.cpu_period)),
        ("--cpu-quota", set(h.cpu_quota)),
        ("--cpu-rt-runtime", set(h.cpu_realtime_runtime)),
        ("--cpuset-cpus", text(&h.cpuset_cpus)),
        ("--cpuset-mems", text(&h.cpuset_mems)),
        ("--pids-limit", h.pids_limit.is_some_and(|v| v > 0)),
        ("--blkio-weight", h.blkio_weight.is_some_and(|v| v > 0)),
        ("--blkio-weight-device", listed(&h.blkio_weight_device)),
        ("--device-read-bps", listed(&h.blkio_device_read_bps)),
        ("--device-write-bps", listed(&h.blkio_device_write_bps)),
        ("--device-read-iops", listed(&h.blkio_device_read_iops)),
        ("--device-write-iops", listed(&h.blkio_device_write_iops)),
        ("--oom-kill-disable", h.oom_kill_disable == Some(true)),
    ]
    .into_iter()
    .find_map(|(flag, on)| on.then_some(flag))
}

/// The OCI runtimes a container may name: berth's own, under the names clients use for it.
pub const RUNTIMES: &[&str] = &["runc", "berth", "io.containerd.runc.v2"];

fn runtime(h: &HostConfig) -> Result<(), String> {
    match h.runtime.as_deref().unwrap_or("") {
        "" => Ok(()),
        r if RUNTIMES.contains(&r) => Ok(()),
        r => Err(format!("Unknown runtime specified {r}")),
    }
}

/// `--tmpfs` targets: absolute and not `/` (moby `ValidateTmpfsMountDestination`).
fn tmpfs(h: &HostConfig) -> Result<(), String> {
    let mut dests: Vec<&String> = h.tmpfs.iter().flatten().map(|(d, _)| d).collect();
    dests.sort();
    for d in dests {
        if is_root(d) {
            return Err("invalid specification: destination can't be '/'".into());
        }
        if !d.starts_with('/') {
            return Err(format!(
                "invalid mount path: '{d}' mount path must be absolute"
            ));
        }
    }
    Ok(())
}

/// Whether an absolute path names `/` once cleaned (`/`, `/.`, `/a/..`).
fn is_root(p: &str) -> bool {
    let depth = p.split('/').fold(0usize, |depth, c| match c {
        "" | "." => depth,
        ".." => depth.saturating_sub(1),
        _ => depth + 1,
    });
    p.starts_with('/') && depth == 0
}

/// `--add-host` entries: `name:ip` (or `name=ip`), the address an IP or `host-gateway`
/// (moby `ValidateExtraHost`).
fn extra_hosts(h: &HostConfig) -> Result<(), String> {
    for e in h.extra_hosts.iter().flatten() {
        let Some((name, ip)) = e.split_once(':').or_else(|| e.split_once('=')) else {
            return Err(format!("bad format for add-host: {e:?}"));
        };
        if name.is_empty() {
            return Err(format!("bad format for add-host: {e:?}"));
        }
        let bare = ip.trim_start_matches('[').trim_end_matches(']');
        if ip != "host-gateway" && bare.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("invalid IP address in add-host: {ip:?}"));
        }
    }
    Ok(())
}

fn restart_policy(h: &HostConfig) -> Result<(), String> {
    use super::stored::RestartPolicyNameEnum as R;
    let Some(rp) = &h.restart_policy else {
        return Ok(());
    };
    let name = rp.name.unwrap_or(R::EMPTY);
    let count = rp.maximum_retry_count.unwrap_or(0);
    if h.auto_remove.unwrap_or(false) && !matches!(name, R::EMPTY | R::NO) {
        return Err("can't create 'AutoRemove' container with restart policy".into());
    }
    match name {
        R::ALWAYS | R::UNLESS_STOPPED | R::NO if count != 0 => {
            let mut m =
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .to_string();
            if count < 0 {
                m.push_str(" and cannot be negative");
            }
            Err(m)
        }
        R::ON_FAILURE if count < 0 => {
            Err("invalid restart policy: maximum retry count cannot be negative".into())
        }
        _ => Ok(()),
    }
}

/// `<port>[/<proto>]` keys (1..=65535; tcp, udp or sctp) and their host ports (a port or range).
fn ports<'a>(
    bindings: impl Iterator<Item = (&'a String, Option<&'a [super::stored::PortBinding]>)>,
) -> Result<(), String> {
    for (key, binds) in bindings {
        let (num, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let ok_proto = matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp");
        if !ok_proto || !matches!(num.parse::<u32>(), Ok(1..=65535)) {
            return Err(format!("invalid port specification: {key:?}"));
        }
        for b in binds.into_iter().flatten() {
            let hp = b.host_port.as_deref().unwrap_or("");
            if !hp.is_empty() && !valid_port_range(hp) {
                return Err(format!("invalid port specification: {hp:?}"));
            }
        }
    }
    Ok(())
}

/// Host addresses of port bindings: an IP, and an IPv6 one needs IPv6 on the host and must be
/// one of the host's own (refused here, not as a 500 when the container starts).
fn host_addresses(h: &HostConfig, host: &HostFacts) -> Result<(), String> {
    for (key, binds) in h.port_bindings.iter().flatten() {
        for b in binds.iter().flatten() {
            let hip = b.host_ip.as_deref().unwrap_or("");
            match hip.parse::<IpAddr>() {
                _ if hip.is_empty() => {}
                Err(_) => return Err(format!("invalid host IP address {hip:?} for port {key}")),
                Ok(IpAddr::V6(ip)) => {
                    let why = match &host.ipv6 {
                        None => Some("IPv6 is disabled on this host"),
                        // A link-local address is only one with an interface scope.
                        Some(_) if ip.segments()[0] & 0xffc0 == 0xfe80 => {
                            Some("a link-local address needs an interface scope; use a global or unique local one")
                        }
                        Some(own) if !ip.is_unspecified() && !own.contains(&ip) => {
                            Some("no interface of this host has that address")
                        }
                        Some(_) => None,
                    };
                    if let Some(why) = why {
                        return Err(format!("cannot publish {key} on {hip}: {why}"));
                    }
                }
                Ok(IpAddr::V4(_)) => {}
            }
        }
    }
    Ok(())
}

fn valid_port_range(s: &str) -> bool {
    let port = |p: &str| p.parse::<u32>().ok().filter(|n| *n <= 65535);
    match s.split_once('-') {
        Some((a, b)) => matches!((port(a), port(b)), (Some(a), Some(b)) if a <= b),
        None => port(s).is_some(),
    }
}

fn memory(h: &HostConfig) -> Result<(), String> {
    let mem = h.memory.unwrap_or(0);
    if let Some(s) = h.memory_swappiness.filter(|s| *s != -1) {
        if !(0..=100).contains(&s) {
            return Err(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            ));
        }
    }
    let res = h.memory_reservation.unwrap_or(0);
    if res > 0 && res < MIN_MEMORY {
        return Err("Minimum memory reservation allowed is 6MB".into());
    }
    if mem > 0 && res > 0 && mem < res {
        return Err(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        );
    }
    if h.memory_swap.unwrap_or(0) < -1 {
        return Err(format!(
            "invalid memory swap limit {}: use a size at least the memory limit, or -1 for unlimited swap",
            h.memory_swap.unwrap_or(0)
        ));
    }
    Ok(())
}

fn cpu(h: &HostConfig, host: &HostFacts) -> Result<(), String> {
    let nano = h.nano_cpus.unwrap_or(0);
    let period = h.cpu_period.unwrap_or(0);
    let quota = h.cpu_quota.unwrap_or(0);
    if nano > 0 && period > 0 {
        return Err("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
    }
    if nano > 0 && quota > 0 {
        return Err("Conflicting options: Nano CPUs and CPU Quota cannot both be set".into());
    }
    if let Some(s) = h.cpu_shares.filter(|s| *s < 0) {
        return Err(format!(
            "invalid CPU shares {s}: must not be negative (0 uses the default, 1024)"
        ));
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        );
    }
    if quota > 0 && quota < 1000 {
        return Err("CPU cfs quota can not be less than 1ms (i.e. 1000)".into());
    }
    if quota < -1 {
        return Err(format!(
            "invalid CPU cfs quota {quota}: use at least 1000 (1ms), or -1 for no limit"
        ));
    }
    cpuset(h.cpuset_cpus.as_deref(), &host.cpus, "cpus", "CPUs")?;
    cpuset(h.cpuset_mems.as_deref(), &host.mems, "mems", "memory nodes")
}

/// A cpuset list (`0-2,4`); dockerd's "invalid format" for anything else.
fn parse_list(s: &str, max: u32) -> Result<BTreeSet<u32>, String> {
    let mut out = BTreeSet::new();
    let bad = || format!("invalid format: {s}");
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (
            a.parse::<u32>().map_err(|_| bad())?,
            b.parse::<u32>().map_err(|_| bad())?,
        );
        if b < a {
            return Err(bad());
        }
        if b > max {
            return Err(format!("value of out range, maximum is {max}"));
        }
        out.extend(a..=b);
    }
    Ok(out)
}

fn cpuset(requested: Option<&str>, available: &str, what: &str, label: &str) -> Result<(), String> {
    let Some(req) = requested.filter(|r| !r.is_empty()) else {
        return Ok(());
    };
    let avail = parse_list(available, u32::MAX).unwrap_or_default();
    let max = avail.iter().copied().max().unwrap_or(0).max(MAX_CPUS);
    let want =
        parse_list(req, max).map_err(|e| format!("Invalid value {req} for cpuset {what}: {e}"))?;
    if !want.is_subset(&avail) {
        return Err(format!(
            "Requested {label} are not available - requested {req}, available: {available}"
        ));
    }
    Ok(())
}

fn ulimits(h: &HostConfig) -> Result<(), String> {
    for u in h.ulimits.iter().flatten() {
        let name = u.name.as_deref().unwrap_or("");
        if !berth_runtime::spec::ULIMIT_NAMES.contains(&name) {
            return Err(format!("invalid ulimit type: {name}"));
        }
        let (soft, hard) = (u.soft.unwrap_or(0), u.hard.unwrap_or(0));
        // -1 is unlimited (RLIM_INFINITY) on either side.
        if hard != -1 && (soft == -1 || soft > hard) {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
    }
    Ok(())
}

/// Only namespaced sysctls can be set in a container (runc's rule): IPC (`kernel.msg*`,
/// `kernel.sem`, `kernel.shm*`, `fs.mqueue.*`) unless `--ipc host`, UTS (`kernel.domainname`,
/// `kernel.hostname`) unless `--uts host`, and `net.*` unless `--network host`.
fn sysctls(h: &HostConfig) -> Result<(), String> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let host = |m: &Option<String>| m.as_deref() == Some("host");
    for key in h.sysctls.iter().flatten().map(|(k, _)| k) {
        let (ns, shared) = if IPC.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            ("IPC", host(&h.ipc_mode))
        } else if key == "kernel.domainname" || key == "kernel.hostname" {
            ("UTS", host(&h.uts_mode))
        } else if key.starts_with("net.") {
            ("network", host(&h.network_mode))
        } else {
            return Err(format!(
                "sysctl '{key}' is not allowed: only namespaced sysctls (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, kernel.domainname, net.*) can be set in a container"
            ));
        };
        if shared {
            return Err(format!("sysctl {key:?} not allowed in host {ns} namespace"));
        }
    }
    Ok(())
}

/// Options of the json-file and local drivers (moby `ValidateLogOpt` and the driver's
/// parsing, which dockerd does only at start).
fn log_config(h: &HostConfig) -> Result<(), String> {
    let Some(lc) = &h.log_config else {
        return Ok(());
    };
    let driver = lc.typ.as_deref().unwrap_or("");
    let driver = if driver.is_empty() {
        "json-file"
    } else {
        driver
    };
    let opts = lc.config.clone().unwrap_or_default();
    if driver == "none" || !matches!(driver, "json-file" | "local") {
        return Ok(()); // unknown drivers are refused by the caller's driver check
    }
    match opts.get("mode").map(String::as_str) {
        None | Some("" | "blocking" | "non-blocking") => {}
        Some(m) => return Err(format!("logger: logging mode not supported: {m}")),
    }
    for key in opts.keys() {
        let common = [
            "env",
            "env-regex",
            "labels",
            "labels-regex",
            "tag",
            "mode",
            "max-buffer-size",
        ];
        let own = ["max-file", "max-size", "compress"];
        if !common.contains(&key.as_str()) && !own.contains(&key.as_str()) {
            return Err(format!("unknown log opt '{key}' for {driver} log driver"));
        }
    }
    let size = match opts.get("max-size") {
        Some(s) => match super::plan::parse_size(s) {
            Some(0) => return Err("max-size must be a positive number".into()),
            Some(n) => Some(n),
            None => return Err(format!("invalid log opt max-size: invalid size: '{s}'")),
        },
        None => None,
    };
    let files = match opts.get("max-file") {
        Some(f) => match f.parse::<i64>() {
            Ok(n) if n < 1 => return Err("max-file cannot be less than 1".into()),
            Ok(n) => n,
            Err(_) => {
                return Err(format!(
                    "invalid log opt max-file: {f:?} is not a number of files"
                ))
            }
        },
        None => 1,
    };
    if let Some(c) = opts.get("compress") {
        let Some(on) = crate::go_parse::parse_bool(c) else {
            return Err(format!("invalid log opt compress: {c:?} is not a boolean"));
        };
        if on && (files == 1 || size.is_none()) {
            return Err(
                "compress cannot be true when max-file is less than 2 or max-size is not set"
                    .into(),
            );
        }
    }
    Ok(())
}

/// The container config's own checks: hostname length, an absolute working dir, exposed ports.
pub fn config(c: &ContainerCreateBody) -> Result<(), String> {
    if let Some(h) = c.hostname.as_deref().filter(|h| h.len() > 64) {
        return Err(format!("hostname {h:?} is too long (maximum 64 bytes)"));
    }
    if let Some(w) = c.working_dir.as_deref().filter(|w| !w.is_empty()) {
        if !w.starts_with('/') {
            return Err(format!(
                "the working directory '{w}' is invalid, it needs to be an absolute path"
            ));
        }
    }
    env(c)?;
    ports(c.exposed_ports.iter().flatten().map(|k| (k, None)))
}

/// Every `Env` entry names a variable (moby `ValidateEnv`: `=x` and `` are refused).
fn env(c: &ContainerCreateBody) -> Result<(), String> {
    match c
        .env
        .iter()
        .flatten()
        .find(|e| e.split('=').next() == Some(""))
    {
        Some(e) => Err(format!("invalid environment variable: {e}")),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
