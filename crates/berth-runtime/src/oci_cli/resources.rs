//! `update`'s input → OCI `LinuxResources` (a JSON file or stdin, then runc's flags on top), and
//! libcgroups' stats → runc's `events --stats` JSON. Pure; applied in `cgroup.rs`.

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use super::args::Update;

/// Bytes from `512`, `512k`, `64m`, `1g` (binary units, as runc's `units.RAMInBytes`); `-1`
/// means unlimited.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid value {s:?}: expected bytes such as 512m or -1"))?;
    if n < 0.0 {
        return Err(format!("invalid value {s:?}: must not be negative (or -1)"));
    }
    Ok((n * mult as f64) as i64)
}

fn set(root: &mut Value, section: &str, key: &str, v: Value) {
    if !root[section].is_object() {
        root[section] = json!({});
    }
    root[section][key] = v;
}

/// The resources an `update` asks for: the JSON document (`-r`), with the flags applied over it.
/// `json_text` is the file's (or stdin's) content when `-r` was given. An error names the field.
pub fn from_update(u: &Update, json_text: Option<&str>) -> Result<LinuxResources, String> {
    let mut v: Value = match json_text {
        Some(t) => serde_json::from_str(t).map_err(|e| format!("invalid resources JSON: {e}"))?,
        None => Value::Object(Map::new()),
    };
    if !v.is_object() {
        return Err("invalid resources JSON: expected an object (OCI LinuxResources)".into());
    }
    if let Some(m) = &u.memory {
        set(&mut v, "memory", "limit", json!(parse_bytes(m)?));
    }
    if let Some(m) = &u.memory_reservation {
        set(&mut v, "memory", "reservation", json!(parse_bytes(m)?));
    }
    if let Some(m) = &u.memory_swap {
        set(&mut v, "memory", "swap", json!(parse_bytes(m)?));
    }
    if let Some(x) = u.cpu_share {
        set(&mut v, "cpu", "shares", json!(x));
    }
    if let Some(x) = u.cpu_quota {
        set(&mut v, "cpu", "quota", json!(x));
    }
    if let Some(x) = u.cpu_period {
        set(&mut v, "cpu", "period", json!(x));
    }
    if let Some(x) = u.cpu_rt_period {
        set(&mut v, "cpu", "realtimePeriod", json!(x));
    }
    if let Some(x) = u.cpu_rt_runtime {
        set(&mut v, "cpu", "realtimeRuntime", json!(x));
    }
    if let Some(x) = &u.cpuset_cpus {
        set(&mut v, "cpu", "cpus", json!(x));
    }
    if let Some(x) = &u.cpuset_mems {
        set(&mut v, "cpu", "mems", json!(x));
    }
    if let Some(x) = u.pids_limit {
        set(&mut v, "pids", "limit", json!(x));
    }
    if let Some(x) = u.blkio_weight {
        set(&mut v, "blockIO", "weight", json!(x));
    }
    let text = v.to_string();
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| format!("invalid resources JSON: field {}: {}", e.path(), e.inner()))
}

/// runc's stats event data (`types.Stats` of runc's `events`) from libcgroups' stats.
pub fn runc_stats(s: &libcgroups::stats::Stats) -> Value {
    let m = &s.memory;
    let entry = |d: &libcgroups::stats::MemoryData| json!({"limit": d.limit, "usage": d.usage, "max": d.max_usage, "failcnt": d.fail_count});
    let blk = |v: &Vec<libcgroups::stats::BlkioDeviceStat>| {
        v.iter()
            .map(|e| {
                json!({"major": e.major, "minor": e.minor,
                       "op": e.op_type.clone().unwrap_or_default(), "value": e.value})
            })
            .collect::<Vec<_>>()
    };
    let hugetlb: Map<String, Value> = s
        .hugetlb
        .iter()
        .map(|(k, h)| {
            (
                k.clone(),
                json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_count}),
            )
        })
        .collect();
    json!({
        "cpu": {
            "usage": {
                "total": s.cpu.usage.usage_total,
                "percpu": s.cpu.usage.per_core_usage_total,
                "percpu_kernel": s.cpu.usage.per_core_usage_kernel,
                "percpu_user": s.cpu.usage.per_core_usage_user,
                "kernel": s.cpu.usage.usage_kernel,
                "user": s.cpu.usage.usage_user,
            },
            "throttling": {
                "periods": s.cpu.throttling.periods,
                "throttledPeriods": s.cpu.throttling.throttled_periods,
                "throttledTime": s.cpu.throttling.throttled_time,
            },
        },
        "memory": {
            "cache": m.cache,
            "usage": entry(&m.memory),
            "swap": entry(&m.memswap),
            "kernel": entry(&m.kernel),
            "kernelTCP": entry(&m.kernel_tcp),
            "raw": m.stats,
        },
        "pids": {"current": s.pids.current, "limit": s.pids.limit},
        "blkio": {
            "ioServiceBytesRecursive": blk(&s.blkio.service_bytes),
            "ioServicedRecursive": blk(&s.blkio.serviced),
            "ioTimeRecursive": blk(&s.blkio.time),
            "sectorsRecursive": blk(&s.blkio.sectors),
        },
        "hugetlb": hugetlb,
    })
}

/// Go duration text as runc's `--interval` takes it: `5s`, `500ms`, `1m`.
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let bad = || format!("invalid interval {s:?}: expected e.g. 5s or 500ms");
    let (num, mult_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60e3)
    } else {
        return Err(bad());
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if n <= 0.0 {
        return Err(format!("invalid interval {s:?}: must be positive"));
    }
    Ok(std::time::Duration::from_millis((n * mult_ms) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upd() -> Update {
        Update {
            id: "c".into(),
            ..Default::default()
        }
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("2kb"), Ok(2048));
        assert_eq!(parse_bytes("-1"), Ok(-1));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-5").is_err());
    }

    #[test]
    fn containerds_update_document() {
        // What `ctr task update --memory-limit` makes the shim send on stdin.
        let r = from_update(&upd(), Some(r#"{"memory":{"limit":67108864}}"#)).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(67108864));
    }

    #[test]
    fn flags_override_the_document() {
        let mut u = upd();
        u.memory = Some("32m".into());
        u.pids_limit = Some(20);
        u.cpu_share = Some(512);
        let r = from_update(&u, Some(r#"{"memory":{"limit":1,"reservation":2}}"#)).unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!((m.limit(), m.reservation()), (Some(32 << 20), Some(2)));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 20);
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
    }

    #[test]
    fn a_bad_document_names_the_field() {
        let e = from_update(&upd(), Some(r#"{"memory":{"limit":"lots"}}"#)).unwrap_err();
        assert!(e.contains("memory.limit"), "{e}");
        assert!(from_update(&upd(), Some("[1]")).is_err());
        assert!(from_update(&upd(), Some("{")).is_err());
    }

    #[test]
    fn stats_in_runcs_shape() {
        let mut s = libcgroups::stats::Stats::default();
        s.memory.memory.usage = 100;
        s.memory.memory.limit = 200;
        s.pids.current = 3;
        s.cpu.usage.usage_total = 7;
        let v = runc_stats(&s);
        assert_eq!(v["memory"]["usage"]["usage"], 100);
        assert_eq!(v["memory"]["usage"]["limit"], 200);
        assert_eq!(v["pids"]["current"], 3);
        assert_eq!(v["cpu"]["usage"]["total"], 7);
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap().as_millis(), 5000);
        assert_eq!(parse_interval("250ms").unwrap().as_millis(), 250);
        assert!(parse_interval("5").is_err());
        assert!(parse_interval("0s").is_err());
    }
}
