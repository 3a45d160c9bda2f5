//! What keys each part of a compose file may hold, and the JSON type of each, after the
//! Compose Specification's schema: unknown keys are refused with their path, as Compose v2
//! refuses them (`services.web additional properties 'portz' not allowed`); `x-*` extension
//! keys are allowed anywhere an object is.

use serde_json::Value;

/// The JSON types the schema distinguishes (Compose's messages use these words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Num,
    Bool,
    Arr,
    Obj,
}

impl Ty {
    fn word(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Num => "number",
            Ty::Bool => "boolean",
            Ty::Arr => "array",
            Ty::Obj => "object",
        }
    }

    fn of(v: &Value) -> Option<Ty> {
        match v {
            Value::String(_) => Some(Ty::Str),
            Value::Number(_) => Some(Ty::Num),
            Value::Bool(_) => Some(Ty::Bool),
            Value::Array(_) => Some(Ty::Arr),
            Value::Object(_) => Some(Ty::Obj),
            Value::Null => None,
        }
    }
}

/// A schema violation, worded as Compose v2 words it (without the `validating FILE: ` prefix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("{path} additional properties '{key}' not allowed")]
    Unknown { path: String, key: String },
    #[error("{path} must be a {expected}")]
    Type { path: String, expected: String },
}

use Ty::*;

/// One key: its name, the types it may have, and the shape of an object value.
struct Key(&'static str, &'static [Ty], Shape);

#[derive(Clone, Copy)]
enum Shape {
    /// No further checks below this key.
    Any,
    /// An object with these keys.
    Obj(&'static [Key]),
    /// An object whose values (any name) each have this shape when they are objects.
    Map(&'static [Key]),
    /// An array whose object items have these keys.
    Items(&'static [Key]),
}

const STRISH: &[Ty] = &[Str, Num];
const LIST_OR_MAP: &[Ty] = &[Arr, Obj];
const STR_OR_LIST: &[Ty] = &[Str, Arr];

const BUILD: &[Key] = &[
    Key("context", &[Str], Shape::Any),
    Key("dockerfile", &[Str], Shape::Any),
    Key("dockerfile_inline", &[Str], Shape::Any),
    Key("args", LIST_OR_MAP, Shape::Any),
    Key("ssh", LIST_OR_MAP, Shape::Any),
    Key("labels", LIST_OR_MAP, Shape::Any),
    Key("cache_from", &[Arr], Shape::Any),
    Key("cache_to", &[Arr], Shape::Any),
    Key("no_cache", &[Bool], Shape::Any),
    Key("additional_contexts", LIST_OR_MAP, Shape::Any),
    Key("network", &[Str], Shape::Any),
    Key("pull", &[Bool], Shape::Any),
    Key("target", &[Str], Shape::Any),
    Key("shm_size", STRISH, Shape::Any),
    Key("extra_hosts", LIST_OR_MAP, Shape::Any),
    Key("isolation", &[Str], Shape::Any),
    Key("privileged", &[Bool], Shape::Any),
    Key("secrets", &[Arr], Shape::Any),
    Key("tags", &[Arr], Shape::Any),
    Key("ulimits", &[Obj], Shape::Any),
    Key("platforms", &[Arr], Shape::Any),
];

const HEALTHCHECK: &[Key] = &[
    Key("disable", &[Bool], Shape::Any),
    Key("interval", &[Str], Shape::Any),
    Key("retries", &[Num], Shape::Any),
    Key("test", STR_OR_LIST, Shape::Any),
    Key("timeout", &[Str], Shape::Any),
    Key("start_period", &[Str], Shape::Any),
    Key("start_interval", &[Str], Shape::Any),
];

const RESOURCE: &[Key] = &[
    Key("cpus", STRISH, Shape::Any),
    Key("memory", STRISH, Shape::Any),
    Key("pids", &[Num], Shape::Any),
    Key("devices", &[Arr], Shape::Any),
    Key("generic_resources", &[Arr], Shape::Any),
];

const DEPLOY: &[Key] = &[
    Key("mode", &[Str], Shape::Any),
    Key("endpoint_mode", &[Str], Shape::Any),
    Key("replicas", &[Num], Shape::Any),
    Key("labels", LIST_OR_MAP, Shape::Any),
    Key("rollback_config", &[Obj], Shape::Any),
    Key("update_config", &[Obj], Shape::Any),
    Key(
        "resources",
        &[Obj],
        Shape::Obj(&[
            Key("limits", &[Obj], Shape::Obj(RESOURCE)),
            Key("reservations", &[Obj], Shape::Obj(RESOURCE)),
        ]),
    ),
    Key("restart_policy", &[Obj], Shape::Any),
    Key("placement", &[Obj], Shape::Any),
];

const PORT: &[Key] = &[
    Key("name", &[Str], Shape::Any),
    Key("mode", &[Str], Shape::Any),
    Key("host_ip", &[Str], Shape::Any),
    Key("target", STRISH, Shape::Any),
    Key("published", STRISH, Shape::Any),
    Key("protocol", &[Str], Shape::Any),
    Key("app_protocol", &[Str], Shape::Any),
];

const VOLUME_MOUNT: &[Key] = &[
    Key("type", &[Str], Shape::Any),
    Key("source", &[Str], Shape::Any),
    Key("target", &[Str], Shape::Any),
    Key("read_only", &[Bool], Shape::Any),
    Key("consistency", &[Str], Shape::Any),
    Key(
        "bind",
        &[Obj],
        Shape::Obj(&[
            Key("propagation", &[Str], Shape::Any),
            Key("create_host_path", &[Bool], Shape::Any),
            Key("selinux", &[Str], Shape::Any),
            Key("recursive", &[Str], Shape::Any),
        ]),
    ),
    Key(
        "volume",
        &[Obj],
        Shape::Obj(&[
            Key("nocopy", &[Bool], Shape::Any),
            Key("subpath", &[Str], Shape::Any),
        ]),
    ),
    Key(
        "tmpfs",
        &[Obj],
        Shape::Obj(&[
            Key("size", STRISH, Shape::Any),
            Key("mode", STRISH, Shape::Any),
        ]),
    ),
    Key("image", &[Obj], Shape::Any),
];

const SERVICE_NETWORK: &[Key] = &[
    Key("aliases", &[Arr], Shape::Any),
    Key("ipv4_address", &[Str], Shape::Any),
    Key("ipv6_address", &[Str], Shape::Any),
    Key("link_local_ips", &[Arr], Shape::Any),
    Key("mac_address", &[Str], Shape::Any),
    Key("driver_opts", &[Obj], Shape::Any),
    Key("priority", &[Num], Shape::Any),
    Key("gw_priority", &[Num], Shape::Any),
    Key("interface_name", &[Str], Shape::Any),
];

const DEPENDS: &[Key] = &[
    Key("condition", &[Str], Shape::Any),
    Key("restart", &[Bool], Shape::Any),
    Key("required", &[Bool], Shape::Any),
];

const SERVICE: &[Key] = &[
    Key("annotations", LIST_OR_MAP, Shape::Any),
    Key("attach", &[Bool], Shape::Any),
    Key("build", &[Str, Obj], Shape::Obj(BUILD)),
    Key("blkio_config", &[Obj], Shape::Any),
    Key("cap_add", &[Arr], Shape::Any),
    Key("cap_drop", &[Arr], Shape::Any),
    Key("cgroup", &[Str], Shape::Any),
    Key("cgroup_parent", &[Str], Shape::Any),
    Key("command", STR_OR_LIST, Shape::Any),
    Key("configs", &[Arr], Shape::Any),
    Key("container_name", &[Str], Shape::Any),
    Key("cpu_count", STRISH, Shape::Any),
    Key("cpu_percent", STRISH, Shape::Any),
    Key("cpu_shares", STRISH, Shape::Any),
    Key("cpu_quota", STRISH, Shape::Any),
    Key("cpu_period", STRISH, Shape::Any),
    Key("cpu_rt_period", STRISH, Shape::Any),
    Key("cpu_rt_runtime", STRISH, Shape::Any),
    Key("cpus", STRISH, Shape::Any),
    Key("cpuset", &[Str], Shape::Any),
    Key("credential_spec", &[Obj], Shape::Any),
    Key("depends_on", LIST_OR_MAP, Shape::Map(DEPENDS)),
    Key("deploy", &[Obj], Shape::Obj(DEPLOY)),
    Key("develop", &[Obj], Shape::Any),
    Key("device_cgroup_rules", &[Arr], Shape::Any),
    Key("devices", &[Arr], Shape::Any),
    Key("dns", STR_OR_LIST, Shape::Any),
    Key("dns_opt", &[Arr], Shape::Any),
    Key("dns_search", STR_OR_LIST, Shape::Any),
    Key("domainname", &[Str], Shape::Any),
    Key("entrypoint", STR_OR_LIST, Shape::Any),
    Key("env_file", STR_OR_LIST, Shape::Any),
    Key("environment", LIST_OR_MAP, Shape::Any),
    Key("expose", &[Arr], Shape::Any),
    Key("extends", &[Str, Obj], Shape::Any),
    Key("external_links", &[Arr], Shape::Any),
    Key("extra_hosts", LIST_OR_MAP, Shape::Any),
    Key("gpus", &[Str, Arr], Shape::Any),
    Key("group_add", &[Arr], Shape::Any),
    Key("healthcheck", &[Obj], Shape::Obj(HEALTHCHECK)),
    Key("hostname", &[Str], Shape::Any),
    Key("image", &[Str], Shape::Any),
    Key("init", &[Bool], Shape::Any),
    Key("ipc", &[Str], Shape::Any),
    Key("isolation", &[Str], Shape::Any),
    Key("label_file", STR_OR_LIST, Shape::Any),
    Key("labels", LIST_OR_MAP, Shape::Any),
    Key("links", &[Arr], Shape::Any),
    Key(
        "logging",
        &[Obj],
        Shape::Obj(&[
            Key("driver", &[Str], Shape::Any),
            Key("options", &[Obj], Shape::Any),
        ]),
    ),
    Key("mac_address", &[Str], Shape::Any),
    Key("mem_limit", STRISH, Shape::Any),
    Key("mem_reservation", STRISH, Shape::Any),
    Key("mem_swappiness", STRISH, Shape::Any),
    Key("memswap_limit", STRISH, Shape::Any),
    Key("network_mode", &[Str], Shape::Any),
    Key("networks", LIST_OR_MAP, Shape::Map(SERVICE_NETWORK)),
    Key("oom_kill_disable", &[Bool], Shape::Any),
    Key("oom_score_adj", STRISH, Shape::Any),
    Key("pid", &[Str], Shape::Any),
    Key("pids_limit", STRISH, Shape::Any),
    Key("platform", &[Str], Shape::Any),
    Key("ports", &[Arr], Shape::Items(PORT)),
    Key("post_start", &[Arr], Shape::Any),
    Key("pre_stop", &[Arr], Shape::Any),
    Key("privileged", &[Bool], Shape::Any),
    Key("profiles", &[Arr], Shape::Any),
    Key("pull_policy", &[Str], Shape::Any),
    Key("read_only", &[Bool], Shape::Any),
    Key("restart", &[Str], Shape::Any),
    Key("runtime", &[Str], Shape::Any),
    Key("scale", &[Num], Shape::Any),
    Key("security_opt", &[Arr], Shape::Any),
    Key("shm_size", STRISH, Shape::Any),
    Key("secrets", &[Arr], Shape::Any),
    Key("sysctls", LIST_OR_MAP, Shape::Any),
    Key("stdin_open", &[Bool], Shape::Any),
    Key("stop_grace_period", &[Str], Shape::Any),
    Key("stop_signal", &[Str], Shape::Any),
    Key("storage_opt", &[Obj], Shape::Any),
    Key("tmpfs", STR_OR_LIST, Shape::Any),
    Key("tty", &[Bool], Shape::Any),
    Key("ulimits", &[Obj], Shape::Any),
    Key("user", &[Str], Shape::Any),
    Key("userns_mode", &[Str], Shape::Any),
    Key("uts", &[Str], Shape::Any),
    Key("volumes", &[Arr], Shape::Items(VOLUME_MOUNT)),
    Key("volumes_from", &[Arr], Shape::Any),
    Key("working_dir", &[Str], Shape::Any),
];

const NETWORK: &[Key] = &[
    Key("name", &[Str], Shape::Any),
    Key("driver", &[Str], Shape::Any),
    Key("driver_opts", &[Obj], Shape::Any),
    Key(
        "ipam",
        &[Obj],
        Shape::Obj(&[
            Key("driver", &[Str], Shape::Any),
            Key("config", &[Arr], Shape::Any),
            Key("options", &[Obj], Shape::Any),
        ]),
    ),
    Key("external", &[Bool, Obj], Shape::Any),
    Key("internal", &[Bool], Shape::Any),
    Key("enable_ipv4", &[Bool], Shape::Any),
    Key("enable_ipv6", &[Bool], Shape::Any),
    Key("attachable", &[Bool], Shape::Any),
    Key("labels", LIST_OR_MAP, Shape::Any),
];

const VOLUME: &[Key] = &[
    Key("name", &[Str], Shape::Any),
    Key("driver", &[Str], Shape::Any),
    Key("driver_opts", &[Obj], Shape::Any),
    Key("external", &[Bool, Obj], Shape::Any),
    Key("labels", LIST_OR_MAP, Shape::Any),
];

const SECRET_OR_CONFIG: &[Key] = &[
    Key("name", &[Str], Shape::Any),
    Key("file", &[Str], Shape::Any),
    Key("environment", &[Str], Shape::Any),
    Key("content", &[Str], Shape::Any),
    Key("external", &[Bool, Obj], Shape::Any),
    Key("labels", LIST_OR_MAP, Shape::Any),
    Key("driver", &[Str], Shape::Any),
    Key("driver_opts", &[Obj], Shape::Any),
    Key("template_driver", &[Str], Shape::Any),
];

const TOP: &[Key] = &[
    Key("version", &[Str], Shape::Any),
    Key("name", &[Str], Shape::Any),
    Key("include", &[Arr], Shape::Any),
    Key("services", &[Obj], Shape::Map(SERVICE)),
    Key("networks", &[Obj], Shape::Map(NETWORK)),
    Key("volumes", &[Obj], Shape::Map(VOLUME)),
    Key("secrets", &[Obj], Shape::Map(SECRET_OR_CONFIG)),
    Key("configs", &[Obj], Shape::Map(SECRET_OR_CONFIG)),
    Key("models", &[Obj], Shape::Any),
];

/// Check a whole (interpolated) compose file.
pub fn validate(doc: &Value) -> Result<(), SchemaError> {
    let Value::Object(_) = doc else {
        return Err(SchemaError::Type {
            path: "(root)".into(),
            expected: "object".into(),
        });
    };
    check_obj(doc, "", TOP)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check_obj(v: &Value, path: &str, keys: &[Key]) -> Result<(), SchemaError> {
    let Value::Object(m) = v else { return Ok(()) };
    for (k, val) in m {
        if k.starts_with("x-") {
            continue;
        }
        let Some(Key(_, tys, shape)) = keys.iter().find(|Key(n, _, _)| n == k) else {
            return Err(SchemaError::Unknown {
                // Compose prints an empty path for the root.
                path: path.to_string(),
                key: k.clone(),
            });
        };
        let here = join(path, k);
        // null is allowed for any key (it means "unset" in overrides and service maps).
        if let Some(t) = Ty::of(val) {
            if !tys.contains(&t) {
                return Err(SchemaError::Type {
                    path: here,
                    expected: tys.iter().map(|t| t.word()).collect::<Vec<_>>().join(","),
                });
            }
        }
        check_shape(val, &here, *shape)?;
    }
    Ok(())
}

fn check_shape(v: &Value, path: &str, shape: Shape) -> Result<(), SchemaError> {
    match (shape, v) {
        (Shape::Any, _) => Ok(()),
        (Shape::Obj(keys), Value::Object(_)) => check_obj(v, path, keys),
        (Shape::Map(keys), Value::Object(m)) => {
            for (name, item) in m {
                if item.is_object() {
                    check_obj(item, &join(path, name), keys)?;
                }
            }
            Ok(())
        }
        (Shape::Items(keys), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if item.is_object() {
                    check_obj(item, &format!("{path}.{i}"), keys)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_and_wrong_types_name_their_path() {
        let e = validate(&json!({"services": {"web": {"image": "x", "portz": [1]}}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "services.web additional properties 'portz' not allowed"
        );
        let e = validate(&json!({"services": {"web": {"ports": 12}}})).unwrap_err();
        assert_eq!(e.to_string(), "services.web.ports must be a array");
        let e = validate(&json!({"foo": 1})).unwrap_err();
        assert_eq!(e.to_string(), " additional properties 'foo' not allowed");
        let e = validate(&json!({"services": {"w": {"ports": [{"target": 1, "hostip": "x"}]}}}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "services.w.ports.0 additional properties 'hostip' not allowed"
        );
        let e = validate(
            &json!({"services": {"w": {"deploy": {"resources": {"limits": {"mem": 1}}}}}}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "services.w.deploy.resources.limits additional properties 'mem' not allowed"
        );
    }

    #[test]
    fn extensions_and_nulls_pass() {
        validate(&json!({
            "x-any": {"whatever": 1},
            "services": {"web": {"image": "x", "x-meta": 1, "networks": {"a": null},
                                 "depends_on": {"db": {"condition": "service_healthy"}}}},
            "volumes": {"v": null},
        }))
        .unwrap();
    }
}
