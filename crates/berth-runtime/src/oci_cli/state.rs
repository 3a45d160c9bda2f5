//! runc's container state JSON (`state`, `list --format json`) and `list`'s table, built from
//! libcontainer's saved state; the shapes are pure and tested without root.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use libcontainer::container::{Container, ContainerStatus};
use serde::Serialize;

/// The object `runc state` prints (runc's `containerState`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuncState {
    pub oci_version: String,
    pub id: String,
    /// 0 once stopped, as runc.
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// runc's lower-case status words.
pub fn status_word(s: ContainerStatus) -> &'static str {
    match s {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

/// The rootfs a bundle's config.json names (relative paths are against the bundle).
pub fn rootfs_of(bundle: &Path) -> PathBuf {
    let root = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["root"]["path"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    if root.is_absolute() {
        root
    } else {
        bundle.join(root)
    }
}

/// The state of a loaded (and status-refreshed) container.
pub fn of(c: &Container) -> RuncState {
    let status = c.status();
    let pid = match status {
        ContainerStatus::Stopped => 0,
        _ => c.pid().map(|p| p.as_raw()).unwrap_or(0),
    };
    RuncState {
        oci_version: oci_spec::runtime::VERSION.to_string(),
        id: c.id().to_string(),
        pid,
        status: status_word(status).to_string(),
        bundle: c.bundle().clone(),
        rootfs: rootfs_of(c.bundle()),
        created: c
            .created()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_default(),
        owner: c
            .creator()
            .map(|o| o.to_string_lossy().into_owned())
            .unwrap_or_default(),
        annotations: c.state.annotations.clone().unwrap_or_default(),
    }
}

/// `runc list`'s table: ID PID STATUS BUNDLE CREATED OWNER, padded like Go's tabwriter
/// (min width 12, padding 3).
pub fn table(states: &[RuncState]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for s in states {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.clone(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len() + 3).max(12);
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i == 5 {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RuncState {
        RuncState {
            oci_version: "1.2.0".into(),
            id: "c1".into(),
            pid: 42,
            status: "running".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-12-07T18:00:00.000000001Z".into(),
            owner: "root".into(),
            annotations: HashMap::new(),
        }
    }

    #[test]
    fn state_json_has_runcs_keys() {
        let v = serde_json::to_value(sample()).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "bundle",
                "created",
                "id",
                "ociVersion",
                "owner",
                "pid",
                "rootfs",
                "status"
            ]
        );
        let mut s = sample();
        s.annotations.insert("a".into(), "b".into());
        assert_eq!(serde_json::to_value(s).unwrap()["annotations"]["a"], "b");
    }

    #[test]
    fn rootfs_relative_to_the_bundle() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("config.json"), r#"{"root":{"path":"rfs"}}"#).unwrap();
        assert_eq!(rootfs_of(d.path()), d.path().join("rfs"));
        std::fs::write(d.path().join("config.json"), r#"{"root":{"path":"/abs"}}"#).unwrap();
        assert_eq!(rootfs_of(d.path()), PathBuf::from("/abs"));
    }

    #[test]
    fn list_table_layout() {
        let t = table(&[sample()]);
        let lines: Vec<_> = t.lines().collect();
        assert!(lines[0].starts_with("ID          PID         STATUS      BUNDLE      CREATED"));
        assert!(lines[1].starts_with("c1          42          running     /b          2026-12-07"));
        assert_eq!(status_word(ContainerStatus::Paused), "paused");
    }
}
