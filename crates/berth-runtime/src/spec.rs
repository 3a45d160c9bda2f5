//! Pure translation of a Docker-style [`ContainerSpec`] into an OCI runtime spec.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::confine::{self, Device, DeviceRule};
use crate::error::{Error, Result};
use crate::seccomp::{self, Target};
use crate::seccomp_default;
use crate::user::User;

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability this runtime knows (for "ALL" and privileged containers).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What dockerd sets in a container with a network namespace of its own: ICMP echo sockets
/// for every group (ping without CAP_NET_RAW) and any port bindable without
/// CAP_NET_BIND_SERVICE; with the first kernel that has each sysctl.
pub const NETNS_DEFAULT_SYSCTLS: &[(&str, &str, (u32, u32))] = &[
    ("net.ipv4.ping_group_range", "0 2147483647", (3, 0)),
    ("net.ipv4.ip_unprivileged_port_start", "0", (4, 11)),
];

/// The container's sysctls: its own, over Docker's netns defaults when it has its own netns.
pub(crate) fn sysctls_of(c: &ContainerSpec, host: &HostInfo) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if c.own_netns {
        for (k, v, since) in NETNS_DEFAULT_SYSCTLS {
            let unmappable = host.in_userns && *k == "net.ipv4.ping_group_range";
            if host.kernel >= *since && !unmappable {
                out.insert(k.to_string(), v.to_string());
            }
        }
    }
    out.extend(c.sysctls.clone());
    out
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default RLIMIT_NOFILE (soft, hard) as seen inside containers of a stock dockerd;
/// clamped to the runtime's own hard limit by [`HostInfo::detect`].
pub const DEFAULT_NOFILE: (u64, u64) = (1_048_576, 1_048_576);

/// Where the init binary is bind-mounted inside the container.
pub const INIT_PATH: &str = "/sbin/docker-init";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub destination: String,
    /// "bind", "tmpfs", "proc", ...
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompMode {
    #[default]
    Default,
    Unconfined,
    /// A profile in Docker's JSON format.
    Custom(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// A fresh, empty network namespace (only loopback).
    #[default]
    New,
    Host,
    /// Join a prepared namespace (e.g. /run/berth/netns/<id>).
    Path(PathBuf),
    /// No namespace of our own beyond loopback (`--network none`): same as New.
    None,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NsMode {
    #[default]
    Private,
    Host,
    /// Join another container's namespace (`/proc/<pid>/ns/<type>`), as `--ipc container:x`.
    Path(PathBuf),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Bytes; 0 = unlimited.
    pub memory: i64,
    /// Docker semantics: memory+swap total; 0 = default (2x memory), -1 = unlimited swap.
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub cpu_shares: u64,
    pub cpu_quota: i64,
    pub cpu_period: u64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    /// 0 = unlimited (Docker: 0 or -1).
    pub pids_limit: i64,
    pub blkio_weight: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Docker name: "nofile", "nproc", "core", ...
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Everything the daemon decides about one container; the pure input of [`build_spec`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: String,
    /// Already-mounted root filesystem (overlay merged dir).
    pub rootfs: PathBuf,
    /// Entrypoint + cmd, combined.
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Working directory inside the container; empty = "/".
    pub cwd: String,
    pub user: User,
    pub tty: bool,
    pub open_stdin: bool,
    pub hostname: String,
    pub domainname: String,
    pub readonly_rootfs: bool,
    pub mounts: Vec<MountSpec>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub seccomp: SeccompMode,
    /// None = Docker's defaults.
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    pub resources: Resources,
    pub ulimits: Vec<Ulimit>,
    pub oom_score_adj: Option<i32>,
    pub sysctls: BTreeMap<String, String>,
    /// The container has a network namespace of its own (not `host`, not `container:`): it
    /// gets Docker's [`NETNS_DEFAULT_SYSCTLS`] unless `sysctls` sets them.
    #[serde(default)]
    pub own_netns: bool,
    pub network: NetworkMode,
    pub ipc: NsMode,
    pub pid: NsMode,
    pub uts: NsMode,
    /// Static init binary on the host (e.g. /usr/bin/tini-static), run as pid 1.
    pub init: Option<PathBuf>,
    pub stop_signal: Option<String>,
    /// Cgroup parent; None = "berth" → cgroup path /berth/<id>.
    pub cgroup_parent: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// /dev/shm size in bytes; None = 64 MiB.
    pub shm_size: Option<u64>,
    /// Removed at exit and never started again (`--rm`): the shim reports the exit before it
    /// removes the runtime state, so the removal overlaps that cleanup.
    #[serde(default)]
    pub auto_remove: bool,
    /// Host device nodes made in the container (`--device`), each with its cgroup allow rule.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Extra device cgroup allow rules (`--device-cgroup-rule`).
    #[serde(default)]
    pub device_rules: Vec<DeviceRule>,
    /// AppArmor profile for the process (only on hosts with AppArmor enabled).
    #[serde(default)]
    pub apparmor_profile: Option<String>,
    /// `--userns-remap`: a user namespace of its own with these maps (None: the host's ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<berth_rootless::IdMapping>,
}

/// Host facts [`build_spec`] needs (kept out of the function so it stays pure).
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub arch: String,
    pub kernel: (u32, u32),
    /// Default RLIMIT_NOFILE (soft, hard) when the container sets none.
    pub nofile: (u64, u64),
    /// The kernel runs x32 programs (CONFIG_X86_X32_ABI, not disabled at boot).
    pub x32_abi: bool,
    /// This runtime's capability bounding set (bit n = capability n): no container gets a
    /// capability outside it (the kernel would refuse the whole start).
    pub bounding: u64,
    /// This runtime runs in a user namespace (rootless, a sandbox): groups outside its map
    /// cannot be named, so `ping_group_range` is not set (dockerd's `RunningInUserNS`).
    pub in_userns: bool,
    /// This user namespace maps root alone (a rootless daemon without subordinate ids): no
    /// group can be named, so devpts gets no `gid=5` and processes no supplementary groups
    /// (`setgroups` is denied there).
    pub single_id: bool,
}

impl HostInfo {
    pub fn detect() -> HostInfo {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        // Like dockerd, never ask for more than this process holds: raising the hard limit
        // needs CAP_SYS_RESOURCE in the initial user namespace, which a sandbox may lack.
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own.
        let hard = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
            rl.rlim_max
        } else {
            DEFAULT_NOFILE.1
        };
        let n = hard.min(DEFAULT_NOFILE.1);
        HostInfo {
            arch: Target::host_arch().to_string(),
            kernel: Target::parse_kernel(release.trim()),
            nofile: (DEFAULT_NOFILE.0.min(n), n),
            x32_abi: x32_abi(),
            bounding: confine::bounding_set(),
            in_userns: in_userns(
                &std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default(),
            ),
            single_id: single_id(
                &std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default(),
            ),
        }
    }
}

/// Supplementary groups as the runtime can set them: none where only root is mapped.
pub fn groups(gids: &[u32], single_id: bool) -> &[u32] {
    if single_id {
        &[]
    } else {
        gids
    }
}

/// Whether `id` has a line in a `/proc/self/{uid,gid}_map` (`inside outside count` lines).
pub fn id_mapped(map: &str, id: u32) -> bool {
    map.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        f.len() == 3 && (f[0]..f[0] + f[2]).contains(&u64::from(id))
    })
}

/// Whether a `/proc/self/gid_map` maps root alone (see [`HostInfo::single_id`]).
pub fn single_id(gid_map: &str) -> bool {
    in_userns(gid_map) && !id_mapped(gid_map, 1)
}

/// Whether a `/proc/self/uid_map` is a user namespace's: anything but the initial
/// namespace's identity map of all 2^32 ids (as dockerd's `userns.RunningInUserNS`).
pub fn in_userns(uid_map: &str) -> bool {
    let f: Vec<&str> = uid_map.split_whitespace().collect();
    !(f.is_empty() || f == ["0", "0", "4294967295"])
}

/// Whether x32 system calls work: an x32 `getpid` (the syscall number with bit 30 set) fails
/// with ENOSYS on a kernel without the x32 ABI.
#[cfg(target_arch = "x86_64")]
fn x32_abi() -> bool {
    const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
    // SAFETY: getpid takes no arguments and touches no memory; with the x32 bit it is the same
    // call through the x32 table, or ENOSYS.
    unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_getpid) >= 0 }
}

#[cfg(not(target_arch = "x86_64"))]
fn x32_abi() -> bool {
    false
}

/// Normalize a Docker capability name ("net_admin", "CAP_NET_ADMIN") to "CAP_NET_ADMIN".
pub fn normalize_cap(name: &str) -> String {
    let up = name.to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// Docker's capability arithmetic: start from defaults (or all when privileged / add ALL),
/// drop (ALL drops everything first), then add.
pub fn effective_caps(privileged: bool, add: &[String], drop: &[String]) -> Result<Vec<String>> {
    let add: Vec<String> = add.iter().map(|c| normalize_cap(c)).collect();
    let drop: Vec<String> = drop.iter().map(|c| normalize_cap(c)).collect();
    for c in add.iter().chain(drop.iter()) {
        if c != "ALL" && !ALL_CAPS.contains(&c.as_str()) {
            return Err(Error::InvalidConfig(format!(
                "unknown capability: \"{c}\"; use a name such as NET_ADMIN"
            )));
        }
    }
    if privileged {
        return Ok(ALL_CAPS.iter().map(|s| s.to_string()).collect());
    }
    let mut caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        ALL_CAPS.iter().map(|s| s.to_string()).collect()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if drop.iter().any(|c| c == "ALL") {
        caps.clear();
    } else {
        caps.retain(|c| !drop.contains(c));
    }
    for c in add.into_iter().filter(|c| c != "ALL") {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

/// The ulimit names (Docker's, lowercase) that map to an `RLIMIT_*` the runtime can set.
pub const ULIMIT_NAMES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn rlimit_name(docker: &str) -> Result<String> {
    if ULIMIT_NAMES.contains(&docker) {
        Ok(format!("RLIMIT_{}", docker.to_ascii_uppercase()))
    } else {
        Err(Error::InvalidConfig(format!(
            "invalid ulimit type: {docker}"
        )))
    }
}

fn mnt(dest: &str, kind: &str, src: &str, opts: &[&str]) -> MountSpec {
    MountSpec {
        destination: dest.into(),
        kind: kind.into(),
        source: src.into(),
        options: opts.iter().map(|s| s.to_string()).collect(),
    }
}

/// The mount list: Docker's defaults, replaced by any user mount with the same destination
/// (or below /dev/shm etc.), then the user's mounts in order.
pub fn plan_mounts(c: &ContainerSpec) -> Vec<MountSpec> {
    let shm = format!("size={}", c.shm_size.unwrap_or(64 << 20));
    let mut defaults = vec![
        mnt("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mnt(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mnt(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mnt(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mnt(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
        mnt(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mnt(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm],
        ),
    ];
    if c.network == NetworkMode::Host && !c.privileged {
        // sysfs cannot be mounted without owning the netns: bind the host's, read-only.
        defaults[3] = mnt(
            "/sys",
            "bind",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        );
    }
    if c.privileged {
        for m in defaults.iter_mut() {
            m.options.retain(|o| o != "ro");
            if m.destination == "/sys" || m.destination == "/sys/fs/cgroup" {
                m.options.push("rw".into());
            }
        }
    }
    if c.ipc == NsMode::Host {
        defaults.retain(|m| m.destination != "/dev/mqueue" && m.destination != "/dev/shm");
        defaults.push(mnt("/dev/shm", "bind", "/dev/shm", &["rbind", "rprivate"]));
    }
    defaults.retain(|d| !c.mounts.iter().any(|u| u.destination == d.destination));
    if !c.privileged {
        if let Some(i) = defaults
            .iter()
            .position(|m| m.destination == "/sys/fs/cgroup")
        {
            defaults.insert(i + 1, confine::cgroup_cover(&c.rootfs));
        }
    }
    let mut out = defaults;
    if let Some(init) = &c.init {
        out.push(MountSpec {
            destination: INIT_PATH.into(),
            kind: "bind".into(),
            source: init.display().to_string(),
            options: vec!["bind".into(), "ro".into()],
        });
    }
    out.extend(c.mounts.iter().cloned());
    out
}

fn resources_json(r: &Resources) -> Value {
    let mut out = json!({
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
        ]
    });
    let mut mem = serde_json::Map::new();
    if r.memory > 0 {
        mem.insert("limit".into(), json!(r.memory));
        let swap = match r.memory_swap {
            0 => r.memory * 2,
            s => s,
        };
        mem.insert("swap".into(), json!(swap));
    }
    if r.memory_reservation > 0 {
        mem.insert("reservation".into(), json!(r.memory_reservation));
    }
    if !mem.is_empty() {
        out["memory"] = Value::Object(mem);
    }
    let mut cpu = serde_json::Map::new();
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(r.cpu_shares));
    }
    // A negative quota (-1) is "no quota": written too, so an update can lift an earlier one.
    if r.cpu_quota != 0 {
        cpu.insert("quota".into(), json!(r.cpu_quota.max(-1)));
        cpu.insert(
            "period".into(),
            json!(if r.cpu_period > 0 {
                r.cpu_period
            } else {
                100_000
            }),
        );
    } else if r.cpu_period > 0 {
        cpu.insert("period".into(), json!(r.cpu_period));
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(r.cpuset_cpus));
    }
    if !r.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(r.cpuset_mems));
    }
    if !cpu.is_empty() {
        out["cpu"] = Value::Object(cpu);
    }
    if r.pids_limit > 0 {
        out["pids"] = json!({ "limit": r.pids_limit });
    }
    if r.blkio_weight > 0 {
        out["blockIO"] = json!({ "weight": r.blkio_weight });
    }
    out
}

/// The OCI `linux.resources` object for an update of a running container. The PIDs limit is
/// always written (-1 = "max", as dockerd asks runc), so an update to 0/-1 lifts a limit.
pub fn resources_to_oci(r: &Resources) -> Result<oci_spec::runtime::LinuxResources> {
    let mut v = resources_to_value(r);
    if let Some(o) = v.as_object_mut() {
        o.remove("devices");
        o.insert(
            "pids".into(),
            json!({ "limit": if r.pids_limit > 0 { r.pids_limit } else { -1 } }),
        );
    }
    serde_json::from_value(v).map_err(|e| Error::InvalidConfig(format!("resources: {e}")))
}

fn resources_to_value(r: &Resources) -> Value {
    resources_json(r)
}

/// The PATH the spec's process runs with (Docker's default when unset).
pub fn path_of(spec: &Spec) -> String {
    spec.process()
        .as_ref()
        .and_then(|p| p.env().as_ref())
        .and_then(|env| env.iter().find_map(|e| e.strip_prefix("PATH=")))
        .unwrap_or(DEFAULT_PATH)
        .to_string()
}

/// The cgroup path (relative to each hierarchy's root) of container `id` below `parent`.
pub fn cgroup_path(parent: Option<&str>, id: &str) -> String {
    let parent = parent.unwrap_or("berth").trim_matches('/');
    if parent.is_empty() {
        format!("/{id}")
    } else {
        format!("/{parent}/{id}")
    }
}

/// Translate a [`ContainerSpec`] into an OCI runtime spec. Pure: no filesystem access.
pub fn build_spec(c: &ContainerSpec, host: &HostInfo) -> Result<Spec> {
    if c.id.is_empty() {
        return Err(Error::InvalidConfig("container id is empty".into()));
    }
    if c.args.is_empty() {
        return Err(Error::InvalidConfig(
            "no command specified; give the container a command or an image with CMD".into(),
        ));
    }
    let (caps, _) = confine::split_held(
        &effective_caps(c.privileged, &c.cap_add, &c.cap_drop)?,
        host.bounding,
    );

    let mut env = c.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) && !c.hostname.is_empty() {
        env.push(format!("HOSTNAME={}", c.hostname));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            c.user.home.as_deref().unwrap_or("/root")
        ));
    }
    if c.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }

    let mut args = c.args.clone();
    if c.init.is_some() {
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }

    let mut rlimits: Vec<Value> = Vec::new();
    if !c.ulimits.iter().any(|u| u.name == "nofile") {
        rlimits
            .push(json!({"type": "RLIMIT_NOFILE", "soft": host.nofile.0, "hard": host.nofile.1}));
    }
    for u in &c.ulimits {
        rlimits.push(json!({"type": rlimit_name(&u.name)?, "soft": u.soft, "hard": u.hard}));
    }

    let mut process = json!({
        "terminal": c.tty,
        "user": {
            "uid": c.user.uid,
            "gid": c.user.gid,
            "additionalGids": groups(&c.user.additional_gids, host.single_id),
        },
        "args": args,
        "env": env,
        "cwd": if c.cwd.is_empty() { "/" } else { c.cwd.as_str() },
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "rlimits": rlimits,
    });
    // Only ever write `true`: libcontainer 0.7 decides when to load seccomp by whether the field
    // is present, and with `false` it loads it after dropping CAP_SYS_ADMIN → EPERM.
    if c.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if let Some(adj) = c.oom_score_adj {
        process["oomScoreAdj"] = json!(adj);
    }
    if let Some(p) = &c.apparmor_profile {
        process["apparmorProfile"] = json!(p);
    }

    let mounts: Vec<Value> = plan_mounts(c)
        .into_iter()
        .map(|mut m| {
            if m.kind == "devpts" && host.single_id {
                m.options.retain(|o| o != "gid=5");
            }
            json!({"destination": m.destination, "type": m.kind, "source": m.source, "options": m.options})
        })
        .collect();

    let mut namespaces = vec![json!({"type": "mount"})];
    for (kind, mode) in [("pid", &c.pid), ("ipc", &c.ipc), ("uts", &c.uts)] {
        match mode {
            NsMode::Private => namespaces.push(json!({"type": kind})),
            NsMode::Path(p) => namespaces.push(json!({"type": kind, "path": p})),
            NsMode::Host => {}
        }
    }
    match &c.network {
        NetworkMode::Host => {}
        NetworkMode::New | NetworkMode::None => namespaces.push(json!({"type": "network"})),
        NetworkMode::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources_json(&c.resources),
        "cgroupsPath": cgroup_path(c.cgroup_parent.as_deref(), &c.id),
        "sysctl": sysctls_of(c, host),
    });
    if !c.privileged {
        linux["maskedPaths"] = json!(c
            .masked_paths
            .clone()
            .unwrap_or_else(|| DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect()));
        linux["readonlyPaths"] =
            json!(c
                .readonly_paths
                .clone()
                .unwrap_or_else(|| DEFAULT_READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()));
    } else {
        linux["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    let (nodes, allow) = confine::devices_json(&c.devices, &c.device_rules);
    if !nodes.is_empty() {
        linux["devices"] = json!(nodes);
    }
    if !c.privileged {
        if let Some(rules) = linux["resources"]["devices"].as_array_mut() {
            rules.extend(allow);
        }
    }
    let profile = match (&c.seccomp, c.privileged) {
        (SeccompMode::Unconfined, _) | (SeccompMode::Default, true) => None,
        (SeccompMode::Default, false) => Some(seccomp_default::default_profile()),
        (SeccompMode::Custom(text), _) => Some(seccomp::parse_profile(text)?),
    };
    if let Some(p) = profile {
        let target = Target {
            arch: &host.arch,
            caps: &caps,
            kernel: host.kernel,
            x32_abi: host.x32_abi,
        };
        linux["seccomp"] = seccomp::to_oci(&p, &target);
    }

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": c.rootfs, "readonly": c.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
        "annotations": c.labels,
    });
    if let Some(ids) = &c.userns {
        crate::userns::apply(&mut spec, ids);
    }
    if c.uts == NsMode::Private {
        if !c.hostname.is_empty() {
            spec["hostname"] = json!(c.hostname);
        }
        if !c.domainname.is_empty() {
            spec["domainname"] = json!(c.domainname);
        }
    }
    serde_json::from_value(spec).map_err(|e| Error::InvalidConfig(format!("oci spec: {e}")))
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
