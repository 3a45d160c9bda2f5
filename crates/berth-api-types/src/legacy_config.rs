//! The container `Config` as dockerd 20.10 prints it inside an image inspect's
//! `ContainerConfig`: every field without `omitempty` present with its zero value (`""`,
//! `false`, `null`), in moby's field order. docker-compose 1.29 reads
//! `ContainerConfig.Volumes` on every recreate and fails when the object is missing.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// moby's `container.Config` (API v1.41), read from an image config's `container_config` and
/// written back in its wire shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LegacyContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "empty_map")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    pub image: String,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub working_dir: String,
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "is_false")]
    pub network_disabled: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(skip_serializing_if = "empty_list", deserialize_with = "str_slice")]
    pub shell: Option<Vec<String>>,
}

impl LegacyContainerConfig {
    /// The stored `container_config` of an image config in dockerd's shape; the zero config
    /// when there is none (or it is not an object moby could read), as dockerd prints it.
    pub fn from_stored(v: Option<&serde_json::Value>) -> LegacyContainerConfig {
        v.and_then(|v| LegacyContainerConfig::deserialize(v).ok())
            .unwrap_or_default()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn empty_map<V>(m: &Option<BTreeMap<String, V>>) -> bool {
    m.as_ref().is_none_or(|m| m.is_empty())
}

fn empty_list(v: &Option<Vec<String>>) -> bool {
    v.as_ref().is_none_or(|v| v.is_empty())
}

/// moby's `strslice.StrSlice`: a JSON array of strings, or one string (older configs).
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_config_prints_as_dockerd_does() {
        let v = serde_json::to_value(LegacyContainerConfig::from_stored(None)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "Hostname": "", "Domainname": "", "User": "",
                "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
                "Tty": false, "OpenStdin": false, "StdinOnce": false,
                "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
                "Entrypoint": null, "OnBuild": null, "Labels": null
            })
        );
    }

    #[test]
    fn stored_config_keeps_its_values_and_fills_the_rest() {
        let stored = serde_json::json!({
            "Hostname": "abc", "Cmd": "/bin/sh -c true", "Volumes": {"/data": {}},
            "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGINT", "ArgsEscaped": true,
            "Env": ["PATH=/bin"]
        });
        let c = LegacyContainerConfig::from_stored(Some(&stored));
        assert_eq!(c.cmd, Some(vec!["/bin/sh -c true".to_string()]));
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["Hostname"], "abc");
        assert_eq!(v["Volumes"], serde_json::json!({"/data": {}}));
        assert_eq!(v["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(v["StopSignal"], "SIGINT");
        assert_eq!(v["ArgsEscaped"], true);
        assert_eq!(v["User"], "");
        assert_eq!(v["Labels"], serde_json::Value::Null);
        assert!(v.get("Shell").is_none() && v.get("Healthcheck").is_none());
    }

    #[test]
    fn unreadable_config_is_the_zero_config() {
        let c = LegacyContainerConfig::from_stored(Some(&serde_json::json!("nope")));
        assert_eq!(c, LegacyContainerConfig::default());
    }
}
