//! `POST /containers/{id}/update` with berth's extension: Docker's resource/restart body plus
//! typed fields Docker does not know (ports, mounts, env, networks, labels) and `?dryRun=1`.
//! A docker client never sends the extra keys and ignores the extra answer keys.

use std::collections::HashMap;

use bollard_stubs::models::{ContainerUpdateBody, Mount};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// One published port to add or remove: `ContainerPort` is `80/tcp` (`/tcp` when no protocol);
/// an empty `HostPort` picks a free port (add) or means every binding of the port (remove).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PortChange {
    pub container_port: String,
    #[serde(default)]
    pub host_ip: String,
    #[serde(default)]
    pub host_port: String,
}

/// berth's fields of the update body (all optional, absent = unchanged).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateExtension {
    #[serde(default)]
    pub publish_add: Vec<PortChange>,
    #[serde(default)]
    pub publish_rm: Vec<PortChange>,
    /// `--mount` forms, as `HostConfig.Mounts`.
    #[serde(default)]
    pub mounts_add: Vec<Mount>,
    /// `-v` forms, as `HostConfig.Binds` (`name:/dst[:ro]`, `/host:/dst[:ro]`).
    #[serde(default)]
    pub binds_add: Vec<String>,
    /// Container paths whose mount (bind, volume or tmpfs) goes away.
    #[serde(default)]
    pub mounts_rm: Vec<String>,
    /// `KEY=VALUE`; replaces a variable already set.
    #[serde(default)]
    pub env_add: Vec<String>,
    /// Variable names.
    #[serde(default)]
    pub env_rm: Vec<String>,
    /// Network names or ids, connected as `docker network connect` does.
    #[serde(default)]
    pub networks_add: Vec<String>,
    #[serde(default)]
    pub networks_rm: Vec<String>,
    #[serde(default)]
    pub labels_add: HashMap<String, String>,
    #[serde(default)]
    pub labels_rm: Vec<String>,
}

impl UpdateExtension {
    /// Whether any berth field is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// The whole update request: Docker's body, berth's fields, and whether it is a dry run.
#[derive(Clone, Debug, Default)]
pub struct ContainerUpdateRequest {
    pub body: ContainerUpdateBody,
    pub ext: UpdateExtension,
    pub dry_run: bool,
}

/// The berth keys of an update body.
const EXT_KEYS: &[&str] = &[
    "PublishAdd",
    "PublishRm",
    "MountsAdd",
    "BindsAdd",
    "MountsRm",
    "EnvAdd",
    "EnvRm",
    "NetworksAdd",
    "NetworksRm",
    "LabelsAdd",
    "LabelsRm",
];

impl ContainerUpdateRequest {
    /// Split a raw update body into Docker's part and berth's, each decoded strictly enough to
    /// name the bad key.
    pub fn from_json(body: Value, dry_run: bool) -> ApiResult<Self> {
        let mut docker = body;
        let mut ext = serde_json::Map::new();
        if let Some(o) = docker.as_object_mut() {
            for k in EXT_KEYS {
                if let Some(v) = o.remove(*k) {
                    if !v.is_null() {
                        ext.insert((*k).to_string(), v);
                    }
                }
            }
        }
        let ext: UpdateExtension = serde_json::from_value(Value::Object(ext))
            .map_err(|e| ApiError::invalid(format!("invalid update body: {e}")))?;
        let body = crate::container_types::update_body_from_json(docker)?;
        Ok(Self { body, ext, dry_run })
    }
}

/// What an update does to a container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateAction {
    /// Nothing changed.
    #[default]
    None,
    /// Recorded only (a stopped container, labels, restart policy).
    Config,
    /// Applied to the running process: limits, ports, networks (same PID).
    Live,
    /// A managed recreate: the process is stopped and started again with the new config.
    Recreate,
}

/// One changed field, before and after, as inspect shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateChange {
    /// e.g. `Config.Env`, `HostConfig.PortBindings`.
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// The answer: Docker's `Warnings`, plus what berth did (or would do, on a dry run).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerUpdateResult {
    pub warnings: Vec<String>,
    pub action: UpdateAction,
    /// Whether the process is (or would be) restarted.
    pub restart: bool,
    pub changes: Vec<UpdateChange>,
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_docker_and_berth_keys() {
        let r = ContainerUpdateRequest::from_json(
            json!({"Memory": 1048576000, "EnvAdd": ["A=1"], "PublishAdd": [{"ContainerPort": "80/tcp"}],
                   "LabelsAdd": {"k": "v"}, "NetworksRm": null}),
            true,
        )
        .unwrap();
        assert_eq!(r.body.memory, Some(1048576000));
        assert_eq!(r.ext.env_add, vec!["A=1"]);
        assert_eq!(r.ext.publish_add[0].container_port, "80/tcp");
        assert_eq!(r.ext.labels_add["k"], "v");
        assert!(r.ext.networks_rm.is_empty() && r.dry_run);
    }

    #[test]
    fn bad_berth_key_names_it() {
        let e = ContainerUpdateRequest::from_json(json!({"EnvAdd": "A=1"}), false).unwrap_err();
        assert!(e.message.contains("invalid update body"), "{}", e.message);
        let e = ContainerUpdateRequest::from_json(
            json!({"PublishAdd": [{"ContainerPort": "80", "Hostport": "1"}]}),
            false,
        )
        .unwrap_err();
        assert!(e.message.contains("Hostport"), "{}", e.message);
    }

    #[test]
    fn docker_body_alone_has_no_extension() {
        let r = ContainerUpdateRequest::from_json(json!({"CpuShares": 512}), false).unwrap();
        assert!(r.ext.is_empty());
    }
}
