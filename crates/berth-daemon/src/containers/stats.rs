//! `GET /containers/{id}/stats`: one reading of a container's cgroup files (v1 first, then
//! v2) and `/proc/stat`, and Docker's stats JSON rendered from it (pure, snapshot-tested).

use berth_api_types::container_types::{
    BlkioStats, ContainerStats, CpuStats, CpuUsage, InterfaceStats, MemoryStats, PidsStats,
    StorageStats, ThrottlingData,
};

use super::Record;

/// What one stats sample read from the host.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Sample {
    /// RFC 3339 time of the reading.
    pub read: String,
    pub mem: u64,
    pub limit: u64,
    /// cpuacct.usage, nanoseconds.
    pub cpu: u64,
    pub pids: u64,
    pub ncpu: usize,
    /// Host CPU time from `/proc/stat`, nanoseconds.
    pub system: u64,
}

fn read_u64(p: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// The memory limit stats report, as dockerd: the host's memory when the cgroup has none
/// (v2 `max`, unreadable) or one above it (v1's "unlimited" is about 8 EiB).
fn mem_limit(cgroup: Option<u64>, host: u64) -> u64 {
    match cgroup {
        Some(l) if l > 0 && (host == 0 || l < host) => l,
        Some(l) if host == 0 => l,
        _ => host,
    }
}

/// Read one sample for `r` from its cgroup files.
pub(crate) fn read_sample(r: &Record) -> Sample {
    let root = std::path::Path::new(berth_runtime::cgroups::CGROUP_ROOT);
    let parent = r
        .host_config
        .cgroup_parent
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or("berth".into());
    let rel = format!("{}/{}", parent.trim_matches('/'), r.id);
    let mem = if r.running() {
        berth_runtime::cgroups::memory_usage(root, &rel).unwrap_or(0)
    } else {
        0
    };
    let limit = mem_limit(
        read_u64(&root.join("memory").join(&rel).join("memory.limit_in_bytes"))
            .or_else(|| read_u64(&root.join(&rel).join("memory.max"))),
        crate::system::mem_total().max(0) as u64,
    );
    let cpu = read_u64(&root.join("cpu,cpuacct").join(&rel).join("cpuacct.usage"))
        .or_else(|| read_u64(&root.join("cpuacct").join(&rel).join("cpuacct.usage")))
        .unwrap_or(0);
    let pids = read_u64(&root.join("pids").join(&rel).join("pids.current")).unwrap_or(0);
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let system = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let l = s.lines().next()?.to_string();
            Some(
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse::<u64>().ok())
                    .sum::<u64>()
                    * 10_000_000,
            )
        })
        .unwrap_or(0);
    Sample {
        read: super::now_rfc3339(),
        mem,
        limit,
        cpu,
        pids,
        ncpu,
        system,
    }
}

/// One stats sample of `r` (with the previous one, for `precpu_stats`).
pub(crate) fn stats_of(r: &Record, prev: Option<&ContainerStats>) -> ContainerStats {
    render(r, &read_sample(r), prev)
}

/// Docker's stats JSON for sample `s`; `prev` fills `preread` and `precpu_stats`.
pub(crate) fn render(r: &Record, s: &Sample, prev: Option<&ContainerStats>) -> ContainerStats {
    let networks = match r.netns {
        Some(_) => r
            .endpoints
            .iter()
            .map(|e| (e.ifname.clone(), InterfaceStats::default()))
            .collect(),
        None => Default::default(),
    };
    let cpu_stats = CpuStats {
        cpu_usage: CpuUsage {
            total_usage: s.cpu,
            usage_in_kernelmode: Some(0),
            usage_in_usermode: Some(0),
        },
        system_cpu_usage: Some(s.system),
        online_cpus: Some(s.ncpu as u64),
        throttling_data: ThrottlingData {
            periods: Some(0),
            throttled_periods: Some(0),
            throttled_time: Some(0),
        },
    };
    ContainerStats {
        id: r.id.clone(),
        name: format!("/{}", r.name),
        read: s.read.clone(),
        preread: prev.map_or(super::ZERO_TIME.to_string(), |p| p.read.clone()),
        pids_stats: PidsStats { current: s.pids },
        blkio_stats: BlkioStats::default(),
        num_procs: 0,
        storage_stats: StorageStats {},
        cpu_stats,
        precpu_stats: prev.map(|p| p.cpu_stats.clone()).unwrap_or_default(),
        memory_stats: MemoryStats {
            usage: s.mem,
            limit: s.limit,
            stats: Default::default(),
        },
        networks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_memory_reports_the_hosts() {
        let host = 8 << 30;
        // cgroup v1's "unlimited" (about 8 EiB), v2's "max" (unreadable as a number).
        assert_eq!(mem_limit(Some(9_223_372_036_854_771_712), host), host);
        assert_eq!(mem_limit(None, host), host);
        assert_eq!(mem_limit(Some(64 << 20), host), 64 << 20);
        assert_eq!(mem_limit(Some(64 << 20), 0), 64 << 20);
    }
}
