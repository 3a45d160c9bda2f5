//! Confinement inputs of the spec that need care beyond Docker's defaults: host devices and
//! device cgroup rules (`--device`, `--device-cgroup-rule`), the capabilities this runtime can
//! actually grant (its own bounding set), and the read-only cover over `/sys/fs/cgroup`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::spec::{MountSpec, ALL_CAPS};

/// A host device node made inside the container (OCI `linux.devices` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Path inside the container.
    pub path: String,
    /// "c" or "b".
    pub kind: String,
    pub major: i64,
    pub minor: i64,
    /// Permission bits of the node (from the host's node).
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Cgroup access: a combination of r, w, m.
    pub access: String,
}

/// One device cgroup rule (`--device-cgroup-rule 'c 1:5 rwm'`); None = any number (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    /// "a", "c" or "b".
    pub kind: String,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

fn valid_access(a: &str) -> bool {
    !a.is_empty() && a.len() <= 3 && a.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

/// Parse a rule in the kernel's devices.allow format: `TYPE MAJOR:MINOR ACCESS`.
pub fn parse_device_rule(s: &str) -> Result<DeviceRule> {
    let bad = || Error::Invalid(format!("invalid device cgroup format '{s}'"));
    let f: Vec<&str> = s.split_whitespace().collect();
    let [kind, nums, access] = f[..] else {
        return Err(bad());
    };
    if !matches!(kind, "a" | "b" | "c") || !valid_access(access) {
        return Err(bad());
    }
    let num = |n: &str| -> Result<Option<i64>> {
        if n == "*" {
            return Ok(None);
        }
        n.parse::<u32>().map(|v| Some(v as i64)).map_err(|_| bad())
    };
    let (ma, mi) = nums.split_once(':').ok_or_else(bad)?;
    Ok(DeviceRule {
        kind: kind.into(),
        major: num(ma)?,
        minor: num(mi)?,
        access: access.into(),
    })
}

/// Docker's wording for a device that cannot be added.
fn gather_err(host: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!(
        "error gathering device information while adding custom device \"{host}\": {why}"
    ))
}

/// The device node(s) for `--device host[:container[:access]]`: a device file, or every device
/// below a directory (placed below `container` at the same relative path). Reads the host.
pub fn devices_from_path(host: &str, container: &str, access: &str) -> Result<Vec<Device>> {
    let access = if access.is_empty() { "rwm" } else { access };
    if !valid_access(access) {
        return Err(Error::Invalid(format!(
            "invalid device mode {access:?} for {host}: use a combination of r, w and m"
        )));
    }
    let container = if container.is_empty() {
        host
    } else {
        container
    };
    if !container.starts_with('/') {
        return Err(Error::Invalid(format!(
            "invalid device mapping {host}:{container}: {container} is not an absolute path"
        )));
    }
    let resolved = std::fs::canonicalize(host).map_err(|e| gather_err(host, io_why(&e)))?;
    let meta = std::fs::metadata(&resolved).map_err(|e| gather_err(host, io_why(&e)))?;
    if let Some(d) = device_of(&meta, container, access) {
        return Ok(vec![d]);
    }
    if !meta.is_dir() {
        return Err(gather_err(host, "not a device node"));
    }
    let mut out = Vec::new();
    walk_devices(&resolved, &resolved, container, access, &mut out)
        .map_err(|e| gather_err(host, io_why(&e)))?;
    Ok(out)
}

/// An io error as Go prints it ("no such file or directory"), without Rust's "(os error N)".
fn io_why(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    s.to_ascii_lowercase()
}

fn device_of(meta: &std::fs::Metadata, container: &str, access: &str) -> Option<Device> {
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return None;
    };
    let rdev = meta.rdev();
    Some(Device {
        path: container.to_string(),
        kind: kind.into(),
        major: libc::major(rdev) as i64,
        minor: libc::minor(rdev) as i64,
        file_mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        access: access.into(),
    })
}

fn walk_devices(
    base: &Path,
    dir: &Path,
    container: &str,
    access: &str,
    out: &mut Vec<Device>,
) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let meta = std::fs::symlink_metadata(e.path())?;
        if meta.is_dir() {
            walk_devices(base, &e.path(), container, access, out)?;
            continue;
        }
        let rel = e.path().strip_prefix(base).unwrap_or(&e.path()).to_owned();
        let inside = format!("{}/{}", container.trim_end_matches('/'), rel.display());
        out.extend(device_of(&meta, &inside, access));
    }
    Ok(())
}

/// The OCI `linux.devices` entries and their cgroup allow rules.
pub fn devices_json(devices: &[Device], rules: &[DeviceRule]) -> (Vec<Value>, Vec<Value>) {
    let nodes = devices
        .iter()
        .map(|d| {
            json!({"path": d.path, "type": d.kind, "major": d.major, "minor": d.minor,
                   "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid})
        })
        .collect();
    let mut allow: Vec<Value> = devices
        .iter()
        .map(|d| json!({"allow": true, "type": d.kind, "major": d.major, "minor": d.minor, "access": d.access}))
        .collect();
    for r in rules {
        let mut v = json!({"allow": true, "type": r.kind, "access": r.access});
        if let Some(m) = r.major {
            v["major"] = json!(m);
        }
        if let Some(m) = r.minor {
            v["minor"] = json!(m);
        }
        allow.push(v);
    }
    (nodes, allow)
}

/// The capability bounding set of this process (`CapBnd` of /proc/self/status); all known
/// capabilities when it cannot be read.
pub fn bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_cap_bnd(&s))
        .unwrap_or(u64::MAX)
}

fn parse_cap_bnd(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Whether capability `name` (CAP_…) is in `bounding`. [`ALL_CAPS`] is in kernel order, so a
/// capability's bit is its index there.
pub fn held(name: &str, bounding: u64) -> bool {
    ALL_CAPS
        .iter()
        .position(|c| *c == name)
        .is_none_or(|bit| bounding & (1u64 << bit) != 0)
}

/// Split `caps` into those `bounding` allows and those it does not.
pub fn split_held(caps: &[String], bounding: u64) -> (Vec<String>, Vec<String>) {
    caps.iter().cloned().partition(|c| held(c, bounding))
}

/// libcontainer 0.7 bind-mounts each cgroup v1 hierarchy read-write whatever the options of
/// the spec's cgroup mount say (its tmpfs too), so container root could raise its own limits.
/// This recursive, recursively read-only bind of the container's own `/sys/fs/cgroup` onto
/// itself, planned right after the cgroup mount, covers the whole tree as runc leaves it: the
/// tmpfs and every controller read-only. Harmless on cgroup v2 (already read-only there).
pub fn cgroup_cover(rootfs: &Path) -> MountSpec {
    MountSpec {
        destination: "/sys/fs/cgroup".into(),
        kind: "bind".into(),
        source: rootfs.join("sys/fs/cgroup").display().to_string(),
        options: ["rbind", "rro", "ro", "nosuid", "noexec", "nodev"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_rules() {
        let r = parse_device_rule("c 1:5 rwm").unwrap();
        assert_eq!(
            r,
            DeviceRule {
                kind: "c".into(),
                major: Some(1),
                minor: Some(5),
                access: "rwm".into()
            }
        );
        let r = parse_device_rule("b *:* m").unwrap();
        assert_eq!((r.major, r.minor), (None, None));
        for bad in ["c 1:5", "x 1:5 r", "c 1 r", "c 1:5 rwx", "c a:5 r", ""] {
            let e = parse_device_rule(bad).unwrap_err().to_string();
            assert!(e.contains("invalid device cgroup format"), "{bad}: {e}");
        }
    }

    #[test]
    fn devices_from_host_paths() {
        let d = devices_from_path("/dev/null", "/dev/nil", "").unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(
            (
                d[0].path.as_str(),
                d[0].kind.as_str(),
                d[0].major,
                d[0].minor
            ),
            ("/dev/nil", "c", 1, 3)
        );
        assert_eq!(d[0].access, "rwm");
        let e = devices_from_path("/dev/nosuchdev-berth", "", "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "error gathering device information while adding custom device \"/dev/nosuchdev-berth\": no such file or directory"
        );
        let e = devices_from_path("/proc/self/status", "", "r").unwrap_err();
        assert!(e.to_string().ends_with("not a device node"), "{e}");
        assert!(devices_from_path("/dev/null", "", "rx").is_err());
        assert!(devices_from_path("/dev/null", "nil", "")
            .unwrap_err()
            .to_string()
            .ends_with("nil is not an absolute path"));
        // A directory brings every device below it, at the same relative path.
        if std::path::Path::new("/dev/net/tun").exists() {
            let d = devices_from_path("/dev/net", "/dev/mynet", "r").unwrap();
            assert!(
                d.iter()
                    .any(|d| d.path == "/dev/mynet/tun" && (d.major, d.minor) == (10, 200)),
                "{d:?}"
            );
        }
        let (nodes, allow) = devices_json(&d, &[parse_device_rule("c 10:* r").unwrap()]);
        assert_eq!(nodes[0]["path"], "/dev/nil");
        assert_eq!(allow[0]["minor"], 3);
        assert_eq!(allow[1]["major"], 10);
        assert!(allow[1].get("minor").is_none());
    }

    #[test]
    fn bounding_set_bits() {
        let status = "Name:\tx\nCapBnd:\t000001fffeffffff\n";
        let b = parse_cap_bnd(status).unwrap();
        assert!(held("CAP_CHOWN", b));
        assert!(!held("CAP_SYS_RESOURCE", b));
        assert!(held("CAP_CHECKPOINT_RESTORE", b));
        let (kept, dropped) = split_held(&["CAP_KILL".into(), "CAP_SYS_RESOURCE".into()], b);
        assert_eq!(kept, ["CAP_KILL"]);
        assert_eq!(dropped, ["CAP_SYS_RESOURCE"]);
        assert_eq!(ALL_CAPS[24], "CAP_SYS_RESOURCE");
    }
}
