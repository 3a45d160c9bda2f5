//! `GET /containers/{id}/stats`: one reading of a container's cgroup files (v1 first, then
//! v2) and `/proc/stat`, and Docker's stats JSON rendered from it (pure, snapshot-tested).

use serde_json::{json, Value};

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
pub(crate) fn stats_of(r: &Record, prev: Option<&Value>) -> Value {
    render(r, &read_sample(r), prev)
}

/// Docker's stats JSON for sample `s`; `prev` fills `preread` and `precpu_stats`.
pub(crate) fn render(r: &Record, s: &Sample, prev: Option<&Value>) -> Value {
    let mut nets = serde_json::Map::new();
    if r.netns.is_some() {
        for e in &r.endpoints {
            nets.insert(
                e.ifname.clone(),
                json!({"rx_bytes": 0, "rx_packets": 0, "rx_errors": 0,
                "rx_dropped": 0, "tx_bytes": 0, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0}),
            );
        }
    }
    let cpu_stats = json!({
        "cpu_usage": {"total_usage": s.cpu, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "system_cpu_usage": s.system, "online_cpus": s.ncpu,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    });
    json!({
        "id": r.id,
        "name": format!("/{}", r.name),
        "read": s.read,
        "preread": prev.and_then(|p| p.get("read").cloned()).unwrap_or(json!(super::ZERO_TIME)),
        "pids_stats": {"current": s.pids},
        "blkio_stats": {"io_service_bytes_recursive": null},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_stats,
        "precpu_stats": prev.and_then(|p| p.get("cpu_stats").cloned()).unwrap_or(json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}})),
        "memory_stats": {"usage": s.mem, "limit": s.limit, "stats": {}},
        "networks": nets,
    })
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
