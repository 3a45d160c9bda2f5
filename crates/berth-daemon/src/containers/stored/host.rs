//! The stored `HostConfig`: resources, mounts, ports, restart policy, namespaces, security.

use std::collections::HashMap;

use berth_api_types::models as api;

/// Published ports by `port/proto`: the host bindings of each (`null`: none).
pub type PortMap = HashMap<String, Option<Vec<PortBinding>>>;

stored_struct! {
    /// The container's `HostConfig` as created (and changed by `docker update`).
    pub struct HostConfig <=> api::HostConfig {
        "CpuShares" cpu_shares: i64,
        "Memory" memory: i64,
        "CgroupParent" cgroup_parent: String,
        "BlkioWeight" blkio_weight: u16,
        "BlkioWeightDevice" blkio_weight_device: Vec<ResourcesBlkioWeightDevice>,
        "BlkioDeviceReadBps" blkio_device_read_bps: Vec<ThrottleDevice>,
        "BlkioDeviceWriteBps" blkio_device_write_bps: Vec<ThrottleDevice>,
        "BlkioDeviceReadIOps" blkio_device_read_iops: Vec<ThrottleDevice>,
        "BlkioDeviceWriteIOps" blkio_device_write_iops: Vec<ThrottleDevice>,
        "CpuPeriod" cpu_period: i64,
        "CpuQuota" cpu_quota: i64,
        "CpuRealtimePeriod" cpu_realtime_period: i64,
        "CpuRealtimeRuntime" cpu_realtime_runtime: i64,
        "CpusetCpus" cpuset_cpus: String,
        "CpusetMems" cpuset_mems: String,
        "Devices" devices: Vec<DeviceMapping>,
        "DeviceCgroupRules" device_cgroup_rules: Vec<String>,
        "DeviceRequests" device_requests: Vec<DeviceRequest>,
        "MemoryReservation" memory_reservation: i64,
        "MemorySwap" memory_swap: i64,
        "MemorySwappiness" memory_swappiness: i64,
        "NanoCpus" nano_cpus: i64,
        "OomKillDisable" oom_kill_disable: bool,
        "Init" init: bool,
        "PidsLimit" pids_limit: i64,
        "Ulimits" ulimits: Vec<ResourcesUlimits>,
        "CpuCount" cpu_count: i64,
        "CpuPercent" cpu_percent: i64,
        "IOMaximumIOps" io_maximum_iops: i64,
        "IOMaximumBandwidth" io_maximum_bandwidth: i64,
        "Binds" binds: Vec<String>,
        "ContainerIDFile" container_id_file: String,
        "LogConfig" log_config: HostConfigLogConfig,
        "NetworkMode" network_mode: String,
        "PortBindings" port_bindings: PortMap,
        "RestartPolicy" restart_policy: RestartPolicy,
        "AutoRemove" auto_remove: bool,
        "VolumeDriver" volume_driver: String,
        "VolumesFrom" volumes_from: Vec<String>,
        "Mounts" mounts: Vec<super::Mount>,
        "ConsoleSize" console_size: Vec<usize>,
        "Annotations" annotations: HashMap<String, String>,
        "CapAdd" cap_add: Vec<String>,
        "CapDrop" cap_drop: Vec<String>,
        "CgroupnsMode" cgroupns_mode: HostConfigCgroupnsModeEnum,
        "Dns" dns: Vec<String>,
        "DnsOptions" dns_options: Vec<String>,
        "DnsSearch" dns_search: Vec<String>,
        "ExtraHosts" extra_hosts: Vec<String>,
        "GroupAdd" group_add: Vec<String>,
        "IpcMode" ipc_mode: String,
        "Cgroup" cgroup: String,
        "Links" links: Vec<String>,
        "OomScoreAdj" oom_score_adj: i64,
        "PidMode" pid_mode: String,
        "Privileged" privileged: bool,
        "PublishAllPorts" publish_all_ports: bool,
        "ReadonlyRootfs" readonly_rootfs: bool,
        "SecurityOpt" security_opt: Vec<String>,
        "StorageOpt" storage_opt: HashMap<String, String>,
        "Tmpfs" tmpfs: HashMap<String, String>,
        "UTSMode" uts_mode: String,
        "UsernsMode" userns_mode: String,
        "ShmSize" shm_size: i64,
        "Sysctls" sysctls: HashMap<String, String>,
        "Runtime" runtime: String,
        "Isolation" isolation: HostConfigIsolationEnum,
        "MaskedPaths" masked_paths: Vec<String>,
        "ReadonlyPaths" readonly_paths: Vec<String>,
    }
}

stored_struct! {
    /// `--blkio-weight-device`.
    pub struct ResourcesBlkioWeightDevice <=> api::ResourcesBlkioWeightDevice {
        "Path" path: String,
        "Weight" weight: usize,
    }
}

stored_struct! {
    /// `--device-read-bps` and the like.
    pub struct ThrottleDevice <=> api::ThrottleDevice {
        "Path" path: String,
        "Rate" rate: i64,
    }
}

stored_struct! {
    /// `--device`.
    pub struct DeviceMapping <=> api::DeviceMapping {
        "PathOnHost" path_on_host: String,
        "PathInContainer" path_in_container: String,
        "CgroupPermissions" cgroup_permissions: String,
    }
}

stored_struct! {
    /// `--gpus`.
    pub struct DeviceRequest <=> api::DeviceRequest {
        "Driver" driver: String,
        "Count" count: i64,
        "DeviceIDs" device_ids: Vec<String>,
        "Capabilities" capabilities: Vec<Vec<String>>,
        "Options" options: HashMap<String, String>,
    }
}

stored_struct! {
    /// `--ulimit`.
    pub struct ResourcesUlimits <=> api::ResourcesUlimits {
        "Name" name: String,
        "Soft" soft: i64,
        "Hard" hard: i64,
    }
}

stored_struct! {
    /// `--log-driver` and `--log-opt`.
    pub struct HostConfigLogConfig <=> api::HostConfigLogConfig {
        "Type" typ: String,
        "Config" config: HashMap<String, String>,
    }
}

stored_struct! {
    /// One host binding of a published port.
    pub struct PortBinding <=> api::PortBinding {
        "HostIp" host_ip: String,
        "HostPort" host_port: String,
    }
}

stored_struct! {
    /// `--restart`.
    pub struct RestartPolicy <=> api::RestartPolicy {
        "Name" name: RestartPolicyNameEnum,
        "MaximumRetryCount" maximum_retry_count: i64,
    }
}

stored_enum! {
    /// When the container is restarted after it exits (empty: never).
    pub enum RestartPolicyNameEnum <=> api::RestartPolicyNameEnum {
        "" EMPTY,
        "no" NO,
        "always" ALWAYS,
        "unless-stopped" UNLESS_STOPPED,
        "on-failure" ON_FAILURE,
    }
}

stored_enum! {
    /// `--cgroupns`.
    pub enum HostConfigCgroupnsModeEnum <=> api::HostConfigCgroupnsModeEnum {
        "" EMPTY,
        "private" PRIVATE,
        "host" HOST,
    }
}

stored_enum! {
    /// `--isolation` (Windows only; kept as given).
    pub enum HostConfigIsolationEnum <=> api::HostConfigIsolationEnum {
        "default" DEFAULT,
        "process" PROCESS,
        "hyperv" HYPERV,
        "" EMPTY,
    }
}
