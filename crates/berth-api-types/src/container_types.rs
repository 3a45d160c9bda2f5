//! Typed request and response bodies of the container and exec service: what Docker sends and
//! accepts on the wire, key for key (keys Docker sends as `null` are never skipped).

use std::collections::{BTreeMap, HashMap};

use bollard_stubs::models::{
    ContainerConfig, ContainerCreateBody, ContainerUpdateBody, ExecConfig, HostConfig, MountPoint,
    PortMap,
};
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// dockerd's check of a restart policy name, made on the raw body so an unknown name gets its
/// message rather than the decoder's.
pub fn check_restart_name(name: Option<&Value>) -> ApiResult<()> {
    match name.and_then(|n| n.as_str()) {
        None | Some("" | "no" | "always" | "unless-stopped" | "on-failure") => Ok(()),
        Some(other) => Err(ApiError::invalid(format!(
            "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ))),
    }
}

/// `POST /containers/create` body: Docker's `ContainerCreateBody` plus the container-wide
/// `MacAddress` older clients send (the engine moves it to the endpoint).
#[derive(Clone, Debug, Default)]
pub struct ContainerCreateRequest {
    /// Top-level `MacAddress` (empty when absent).
    pub mac_address: String,
    pub body: ContainerCreateBody,
}

impl ContainerCreateRequest {
    /// Decode a create body the routes have already made lenient (strslice, API version).
    pub fn from_json(body: Value) -> ApiResult<Self> {
        let mac_address = body
            .get("MacAddress")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .to_string();
        check_restart_name(body.pointer("/HostConfig/RestartPolicy/Name"))?;
        let body = serde_json::from_value(body)
            .map_err(|e| ApiError::invalid(format!("invalid container config: {e}")))?;
        Ok(Self { mac_address, body })
    }
}

/// `POST /containers/{id}/update` body.
pub fn update_body_from_json(body: Value) -> ApiResult<ContainerUpdateBody> {
    check_restart_name(body.pointer("/RestartPolicy/Name"))?;
    serde_json::from_value(body).map_err(|e| ApiError::invalid(format!("invalid update body: {e}")))
}

/// `POST /containers/{id}/exec` body: Docker's `ExecConfig`, with `DetachKeys` read as Go
/// reads JSON keys (case-insensitively: docker-py sends `detachKeys`).
#[derive(Clone, Debug, Default)]
pub struct ExecCreateRequest {
    pub detach_keys: Option<String>,
    pub config: ExecConfig,
}

impl ExecCreateRequest {
    pub fn from_json(body: Value) -> ApiResult<Self> {
        let detach_keys = body.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("DetachKeys"))
                .and_then(|(_, v)| v.as_str().map(String::from))
        });
        let config = serde_json::from_value(body)
            .map_err(|e| ApiError::invalid(format!("invalid exec config: {e}")))?;
        Ok(Self {
            detach_keys,
            config,
        })
    }
}

/// `POST /containers/{id}/wait` answer: `{"StatusCode": n, "Error": null}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerWaitResult {
    pub status_code: i64,
    pub error: Option<WaitError>,
}

/// `Error` of a wait answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitError {
    pub message: String,
}

/// `GET /exec/{id}/json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    /// `null` until the process exits.
    pub exit_code: Option<i64>,
    pub process_config: ExecProcessConfig,
    pub open_stdin: bool,
    pub open_stderr: bool,
    pub open_stdout: bool,
    pub can_remove: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub detach_keys: String,
    pub pid: i32,
}

/// `ProcessConfig` of an exec inspect (Docker's keys are lowercase here).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ExecProcessConfig {
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
    pub privileged: bool,
    pub user: String,
}

/// `State.Health` of a container inspect.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerHealth {
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthLogEntry>,
}

/// One probe result in `State.Health.Log`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthLogEntry {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// `State` of a container inspect.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerStateView {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// `null` for containers without a healthcheck.
    pub health: Option<ContainerHealth>,
}

/// dockerd's default `ShmSize` (64 MiB), recorded at create and shown by inspect.
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// `HostConfig` of a container inspect: the stored host config, with Docker's defaults filled
/// in by [`InspectHostConfig::with_defaults`]. Every key dockerd (a Go struct without
/// `omitempty`) always sends is there: what the stored config leaves unset is `null` (Go's nil
/// slice, map or pointer) or, for keys bollard's `HostConfig` lacks, Go's zero value.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InspectHostConfig {
    #[serde(flatten)]
    pub config: HostConfig,
    /// Keys `config` leaves out (bollard skips `None`), with what dockerd sends for them.
    #[serde(flatten)]
    unset: BTreeMap<&'static str, Value>,
}

impl InspectHostConfig {
    /// Docker's defaults for what the stored config leaves unset (`NetworkMode` `bridge`,
    /// zero limits, restart policy `no`, `json-file` logging, no port bindings).
    pub fn with_defaults(mut h: HostConfig) -> Self {
        use bollard_stubs::models::{HostConfigLogConfig, RestartPolicy, RestartPolicyNameEnum};
        if h.network_mode.as_deref().is_none_or(str::is_empty) {
            h.network_mode = Some("bridge".into());
        }
        // dockerd's HostConfig is a Go struct: every field below is always present, so a
        // template such as `{{.HostConfig.CpuQuota}}` prints its zero value.
        for f in [
            &mut h.memory,
            &mut h.memory_swap,
            &mut h.memory_reservation,
            &mut h.nano_cpus,
            &mut h.cpu_shares,
            &mut h.cpu_period,
            &mut h.cpu_quota,
            &mut h.cpu_realtime_period,
            &mut h.cpu_realtime_runtime,
            &mut h.cpu_count,
            &mut h.cpu_percent,
            &mut h.io_maximum_iops,
            &mut h.io_maximum_bandwidth,
            &mut h.oom_score_adj,
        ] {
            f.get_or_insert(0);
        }
        h.blkio_weight.get_or_insert(0);
        for f in [
            &mut h.privileged,
            &mut h.readonly_rootfs,
            &mut h.auto_remove,
            &mut h.publish_all_ports,
        ] {
            f.get_or_insert(false);
        }
        for f in [
            &mut h.cgroup_parent,
            &mut h.cpuset_cpus,
            &mut h.cpuset_mems,
            &mut h.container_id_file,
            &mut h.volume_driver,
            &mut h.cgroup,
            &mut h.pid_mode,
            &mut h.uts_mode,
            &mut h.userns_mode,
        ] {
            f.get_or_insert_with(String::new);
        }
        for f in [
            &mut h.blkio_device_read_bps,
            &mut h.blkio_device_write_bps,
            &mut h.blkio_device_read_iops,
            &mut h.blkio_device_write_iops,
        ] {
            f.get_or_insert_with(Vec::new);
        }
        h.blkio_weight_device.get_or_insert_with(Vec::new);
        h.devices.get_or_insert_with(Vec::new);
        for f in [&mut h.dns, &mut h.dns_options, &mut h.dns_search] {
            f.get_or_insert_with(Vec::new);
        }
        h.console_size.get_or_insert_with(|| vec![0, 0]);
        h.restart_policy.get_or_insert(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: Some(0),
        });
        h.log_config.get_or_insert(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::new()),
        });
        h.port_bindings.get_or_insert_with(HashMap::new);
        // What dockerd 20.10 records at create when the request leaves them out: berth's
        // create records the same, these fill records made without it. berth makes no cgroup
        // namespace (dockerd's "host" mode) and leaves the OOM killer on.
        h.cgroupns_mode
            .get_or_insert(bollard_stubs::models::HostConfigCgroupnsModeEnum::HOST);
        h.ipc_mode.get_or_insert_with(|| "private".into());
        h.isolation
            .get_or_insert(bollard_stubs::models::HostConfigIsolationEnum::EMPTY);
        h.shm_size.get_or_insert(DEFAULT_SHM_SIZE);
        h.oom_kill_disable.get_or_insert(false);
        let nil = [
            ("PidsLimit", h.pids_limit.is_none()),
            ("Binds", h.binds.is_none()),
            ("CapAdd", h.cap_add.is_none()),
            ("CapDrop", h.cap_drop.is_none()),
            ("Links", h.links.is_none()),
            ("VolumesFrom", h.volumes_from.is_none()),
            ("GroupAdd", h.group_add.is_none()),
            ("ExtraHosts", h.extra_hosts.is_none()),
            ("SecurityOpt", h.security_opt.is_none()),
            ("Ulimits", h.ulimits.is_none()),
            ("DeviceRequests", h.device_requests.is_none()),
            ("DeviceCgroupRules", h.device_cgroup_rules.is_none()),
            ("MemorySwappiness", h.memory_swappiness.is_none()),
            ("MaskedPaths", h.masked_paths.is_none()),
            ("ReadonlyPaths", h.readonly_paths.is_none()),
        ];
        let mut unset = nulls(nil);
        // API 1.41's kernel-memory limits, which berth does not set (bollard dropped them).
        unset.insert("KernelMemory", 0.into());
        unset.insert("KernelMemoryTCP", 0.into());
        Self { config: h, unset }
    }

    /// Show `links` as `Links` (`null` when there are none to show).
    pub fn set_links(&mut self, links: Option<Vec<String>>) {
        self.set_nullable("Links", links, |h| &mut h.links);
    }

    /// Show the paths the runtime masks and makes read-only (dockerd records its defaults at
    /// create for an unprivileged container); `null` when it applies none.
    pub fn set_protected_paths(
        &mut self,
        masked: Option<Vec<String>>,
        readonly: Option<Vec<String>>,
    ) {
        self.set_nullable("MaskedPaths", masked, |h| &mut h.masked_paths);
        self.set_nullable("ReadonlyPaths", readonly, |h| &mut h.readonly_paths);
    }

    fn set_nullable<T>(
        &mut self,
        key: &'static str,
        v: Option<T>,
        field: impl FnOnce(&mut HostConfig) -> &mut Option<T>,
    ) {
        if v.is_none() {
            self.unset.insert(key, Value::Null);
        } else {
            self.unset.remove(key);
        }
        *field(&mut self.config) = v;
    }
}

/// `null` for each key whose value is unset (Go's nil), for a struct's `unset` keys.
fn nulls<const N: usize>(keys: [(&'static str, bool); N]) -> BTreeMap<&'static str, Value> {
    keys.into_iter()
        .filter(|(_, is_nil)| *is_nil)
        .map(|(k, _)| (k, Value::Null))
        .collect()
}

/// `Config` of a container inspect: the stored config with every key dockerd always sends
/// (`Config` is a Go struct without `omitempty` there): false, `""` or `null` when unset.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InspectConfig {
    #[serde(flatten)]
    pub config: ContainerConfig,
    /// Keys `config` leaves out (bollard skips `None`) that dockerd sends as `null`.
    #[serde(flatten)]
    unset: BTreeMap<&'static str, Value>,
}

impl InspectConfig {
    pub fn with_defaults(mut c: ContainerConfig) -> Self {
        for f in [
            &mut c.attach_stdin,
            &mut c.attach_stdout,
            &mut c.attach_stderr,
            &mut c.tty,
            &mut c.open_stdin,
            &mut c.stdin_once,
        ] {
            f.get_or_insert(false);
        }
        for f in [
            &mut c.hostname,
            &mut c.domainname,
            &mut c.user,
            &mut c.working_dir,
            &mut c.image,
        ] {
            f.get_or_insert_with(String::new);
        }
        let nil = [
            ("Cmd", c.cmd.is_none()),
            ("Entrypoint", c.entrypoint.is_none()),
            ("Env", c.env.is_none()),
            ("OnBuild", c.on_build.is_none()),
            ("Volumes", c.volumes.is_none()),
            ("Labels", c.labels.is_none()),
        ];
        Self {
            config: c,
            unset: nulls(nil),
        }
    }
}

/// `GraphDriver` of a container inspect.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerGraphDriver {
    pub name: String,
    pub data: Option<HashMap<String, String>>,
}

/// `IPAMConfig` of an endpoint: only the addresses asked for.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EndpointIpam {
    #[serde(rename = "IPv4Address", skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(rename = "IPv6Address", skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "Option::is_none")]
    pub link_local_ips: Option<Vec<String>>,
}

/// One entry of `NetworkSettings.Networks`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EndpointView {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpam>,
    #[serde(rename = "Links")]
    pub links: Option<Vec<String>>,
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "DriverOpts")]
    pub driver_opts: Option<HashMap<String, String>>,
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
}

/// `NetworkSettings.Networks`, by network name.
pub type EndpointMap = BTreeMap<String, EndpointView>;

/// `NetworkSettings` of a container inspect.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InspectNetworkSettings {
    #[serde(rename = "Bridge")]
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "SandboxKey")]
    pub sandbox_key: String,
    #[serde(rename = "HairpinMode")]
    pub hairpin_mode: bool,
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: i64,
    /// Exposed ports map to `null`, published ones to their bindings.
    #[serde(rename = "Ports")]
    pub ports: PortMap,
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Vec<String>>,
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Vec<String>>,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "Networks")]
    pub networks: EndpointMap,
}

/// `GET /containers/{id}/json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ContainerInspect {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Args")]
    pub args: Vec<String>,
    #[serde(rename = "State")]
    pub state: ContainerStateView,
    #[serde(rename = "Image")]
    pub image: String,
    #[serde(rename = "ResolvConfPath")]
    pub resolv_conf_path: String,
    #[serde(rename = "HostnamePath")]
    pub hostname_path: String,
    #[serde(rename = "HostsPath")]
    pub hosts_path: String,
    #[serde(rename = "LogPath")]
    pub log_path: String,
    /// berth extension: the log rotation in force, also when defaulted (berth rotates by
    /// default; `HostConfig.LogConfig.Config` stays what the user gave, as dockerd's does).
    #[serde(rename = "LogRotation", skip_serializing_if = "Option::is_none")]
    pub log_rotation: Option<LogRotation>,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "RestartCount")]
    pub restart_count: i64,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "Platform")]
    pub platform: String,
    #[serde(rename = "MountLabel")]
    pub mount_label: String,
    #[serde(rename = "ProcessLabel")]
    pub process_label: String,
    #[serde(rename = "AppArmorProfile")]
    pub app_armor_profile: String,
    /// Running execs; `null` when there are none.
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    #[serde(rename = "HostConfig")]
    pub host_config: InspectHostConfig,
    #[serde(rename = "GraphDriver")]
    pub graph_driver: ContainerGraphDriver,
    #[serde(rename = "Mounts")]
    pub mounts: Vec<MountPoint>,
    #[serde(rename = "Config")]
    pub config: InspectConfig,
    #[serde(rename = "NetworkSettings")]
    pub network_settings: InspectNetworkSettings,
    /// Only with `?size=1`.
    #[serde(rename = "SizeRw", skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
}

/// One port of a container summary: published (`IP`, `PublicPort`) or only exposed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SummaryPort {
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    #[serde(rename = "PublicPort", skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    #[serde(rename = "Type")]
    pub typ: String,
}

/// `HostConfig` of a container summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SummaryHostConfig {
    #[serde(rename = "NetworkMode")]
    pub network_mode: String,
}

/// `NetworkSettings` of a container summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SummaryNetworkSettings {
    #[serde(rename = "Networks")]
    pub networks: EndpointMap,
}

/// One item of `GET /containers/json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ContainerSummaryView {
    #[serde(rename = "Id")]
    pub id: String,
    /// `/name` first, then legacy link names (`/parent/alias`).
    #[serde(rename = "Names")]
    pub names: Vec<String>,
    #[serde(rename = "Image")]
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    #[serde(rename = "Command")]
    pub command: String,
    /// Unix seconds.
    #[serde(rename = "Created")]
    pub created: i64,
    #[serde(rename = "Ports")]
    pub ports: Vec<SummaryPort>,
    #[serde(rename = "Labels")]
    pub labels: HashMap<String, String>,
    #[serde(rename = "State")]
    pub state: String,
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "HostConfig")]
    pub host_config: SummaryHostConfig,
    #[serde(rename = "NetworkSettings")]
    pub network_settings: SummaryNetworkSettings,
    #[serde(rename = "Mounts")]
    pub mounts: Vec<MountPoint>,
    /// Only with `?size=1`.
    #[serde(rename = "SizeRw", skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
}

/// One frame of `GET /containers/{id}/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ContainerStats {
    pub id: String,
    /// `/name`.
    pub name: String,
    /// RFC 3339 time of this reading and of the previous one (Go's zero time for none).
    pub read: String,
    pub preread: String,
    pub pids_stats: PidsStats,
    pub blkio_stats: BlkioStats,
    pub num_procs: u32,
    pub storage_stats: StorageStats,
    pub cpu_stats: CpuStats,
    /// The previous reading's `cpu_stats` (clients compute CPU% from the difference).
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
    /// By interface name inside the container.
    pub networks: BTreeMap<String, InterfaceStats>,
}

/// `pids_stats` of a stats frame.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PidsStats {
    pub current: u64,
}

/// `blkio_stats` of a stats frame (not measured: `null` lists, as dockerd on cgroup v2).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Option<Vec<BlkioStatEntry>>,
}

/// One entry of a blkio list.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BlkioStatEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// `storage_stats` (Windows only: always `{}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StorageStats {}

/// `cpu_stats` / `precpu_stats`; before the first reading only `cpu_usage.total_usage` and an
/// empty `throttling_data` are sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_cpu_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_cpus: Option<u64>,
    pub throttling_data: ThrottlingData,
}

/// `cpu_usage` of a CPU reading, nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CpuUsage {
    pub total_usage: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_in_kernelmode: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_in_usermode: Option<u64>,
}

/// `throttling_data` of a CPU reading.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ThrottlingData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periods: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_periods: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_time: Option<u64>,
}

/// `memory_stats` of a stats frame, bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MemoryStats {
    pub usage: u64,
    pub limit: u64,
    pub stats: BTreeMap<String, u64>,
}

/// Counters of one network interface.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InterfaceStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_defaults_are_written_and_set_values_kept() {
        let v =
            serde_json::to_value(InspectHostConfig::with_defaults(HostConfig::default())).unwrap();
        for k in ["PidsLimit", "Binds", "CapAdd", "CapDrop"] {
            assert_eq!(v.get(k), Some(&Value::Null), "{k}");
        }
        assert_eq!(v["NetworkMode"], "bridge");
        assert_eq!(
            v["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        assert_eq!(v["LogConfig"], json!({"Type": "json-file", "Config": {}}));
        let h = HostConfig {
            pids_limit: Some(7),
            binds: Some(vec!["/a:/b".into()]),
            network_mode: Some(String::new()),
            ..Default::default()
        };
        let v = serde_json::to_value(InspectHostConfig::with_defaults(h)).unwrap();
        assert_eq!(v["PidsLimit"], 7);
        assert_eq!(v["Binds"], json!(["/a:/b"]));
        assert_eq!(v["NetworkMode"], "bridge");
        // dockerd 20.10 sends `Links: null` for a container without links (was left out).
        assert_eq!(v.get("Links"), Some(&Value::Null));
        assert_eq!(v["KernelMemory"], 0);
        assert_eq!(v["IpcMode"], "private");
        assert_eq!(v["CgroupnsMode"], "host");
        let mut h = InspectHostConfig::with_defaults(HostConfig::default());
        h.set_protected_paths(Some(vec!["/proc/kcore".into()]), None);
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["MaskedPaths"], json!(["/proc/kcore"]));
        assert_eq!(v.get("ReadonlyPaths"), Some(&Value::Null));
        let mut h = InspectHostConfig::with_defaults(HostConfig::default());
        h.set_links(None);
        assert_eq!(serde_json::to_value(&h).unwrap()["Links"], Value::Null);
        h.set_links(Some(vec!["/db:/web/db".into()]));
        assert_eq!(
            serde_json::to_value(&h).unwrap()["Links"],
            json!(["/db:/web/db"])
        );
    }

    #[test]
    fn exec_body_reads_detach_keys_in_any_case() {
        let r =
            ExecCreateRequest::from_json(json!({"Cmd": ["ls"], "detachKeys": "ctrl-a"})).unwrap();
        assert_eq!(r.detach_keys.as_deref(), Some("ctrl-a"));
        assert_eq!(r.config.cmd, Some(vec!["ls".to_string()]));
        let e = ExecCreateRequest::from_json(json!({"Cmd": 3})).unwrap_err();
        assert!(e.to_string().contains("invalid exec config"), "{e}");
    }

    #[test]
    fn create_body_checks_the_restart_name_first() {
        let e = ContainerCreateRequest::from_json(
            json!({"Image": "x", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown policy 'sometimes'"), "{e}");
        let r = ContainerCreateRequest::from_json(json!({"Image": "x", "MacAddress": "02:42"}))
            .unwrap();
        assert_eq!(r.mac_address, "02:42");
        assert_eq!(r.body.image.as_deref(), Some("x"));
        let e = update_body_from_json(json!({"RestartPolicy": {"Name": "x"}})).unwrap_err();
        assert!(e.to_string().contains("unknown policy 'x'"), "{e}");
    }

    #[test]
    fn wait_result_keeps_a_null_error() {
        let v = serde_json::to_value(ContainerWaitResult {
            status_code: 3,
            error: None,
        })
        .unwrap();
        assert_eq!(v, json!({"StatusCode": 3, "Error": null}));
    }

    #[test]
    fn restart_names_are_checked_before_parsing() {
        let v = serde_json::json!("sometimes");
        let e = check_restart_name(Some(&v)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid restart policy: unknown policy 'sometimes'"),
            "{e}"
        );
        for ok in ["", "no", "always", "unless-stopped", "on-failure"] {
            assert!(check_restart_name(Some(&serde_json::json!(ok))).is_ok());
        }
        assert!(check_restart_name(None).is_ok());
    }
}

/// The json-file/local log rotation in force for a container (`max-size` bytes, `max-file`
/// files kept including the live one; a `MaxSize` of 0 means no rotation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogRotation {
    #[serde(rename = "MaxSize")]
    pub max_size: u64,
    #[serde(rename = "MaxFile")]
    pub max_file: u32,
}
