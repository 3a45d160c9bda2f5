//! Old clients: what dockerd's routers change for a request made at an older API version
//! (down to 1.12, as dockerd 20.10 accepted), kept in one place so handlers stay current-only.

use serde_json::{json, Map, Value};

use crate::version::ApiVersion;

/// Adjust a create body to what its API version meant, as moby's `postContainersCreate`:
/// fields a version did not have yet are dropped and defaults that changed are kept as they
/// were for that client.
pub(crate) fn create_body(v: ApiVersion, body: &mut Value) {
    if !v.before("1.44") {
        return;
    }
    if let Some(h) = body.get_mut("Healthcheck").and_then(|h| h.as_object_mut()) {
        h.remove("StartInterval");
    }
    // Endpoint `MacAddress`es are dropped unless the old container-wide `MacAddress` is set
    // (the engine moves that one to the endpoint).
    let wide = body
        .get("MacAddress")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    if wide.is_empty() {
        if let Some(eps) = body
            .pointer_mut("/NetworkingConfig/EndpointsConfig")
            .and_then(|e| e.as_object_mut())
        {
            for ep in eps.values_mut().filter_map(|e| e.as_object_mut()) {
                ep.remove("MacAddress");
            }
        }
    }
    let Some(hc) = body.get_mut("HostConfig").and_then(|h| h.as_object_mut()) else {
        return;
    };
    // Up to 1.24 the client removed `--rm` containers itself.
    if v.before("1.25") {
        hc.insert("AutoRemove".into(), Value::Bool(false));
    }
    if v.before("1.40") {
        // Older clients expect a container's IPC namespace to be shareable by default.
        let empty = hc
            .get("IpcMode")
            .and_then(|m| m.as_str())
            .is_none_or(str::is_empty);
        if empty {
            hc.insert("IpcMode".into(), json!("shareable"));
        }
    }
}

/// `GET /info` before 1.25 had `ExecutionDriver` and security options by name only; before
/// 1.39 an unknown kernel or OS was `<unknown>`.
pub(crate) fn info(v: ApiVersion, info: &mut Value) {
    let Some(o) = info.as_object_mut() else {
        return;
    };
    if v.before("1.39") {
        for k in ["KernelVersion", "OperatingSystem"] {
            if o.get(k).and_then(|s| s.as_str()).is_none_or(str::is_empty) {
                o.insert(k.into(), json!("<unknown>"));
            }
        }
    }
    if v.before("1.25") {
        o.insert("ExecutionDriver".into(), json!("<not supported>"));
        if let Some(Value::Array(opts)) = o.get_mut("SecurityOptions") {
            for opt in opts.iter_mut() {
                if let Some(name) = opt.as_str().and_then(security_option_name) {
                    *opt = json!(name);
                }
            }
        }
    }
}

/// `name=seccomp,profile=default` → `seccomp` (moby's `DecodeSecurityOptions`, names only).
fn security_option_name(opt: &str) -> Option<String> {
    opt.split(',')
        .find_map(|kv| kv.strip_prefix("name="))
        .map(str::to_string)
}

/// `GET /containers/{id}/json` before 1.20 (moby's `containerInspectPre120`): resources and a
/// few settings repeated inside `Config`, and the mounts as `Volumes`/`VolumesRW` maps.
pub(crate) fn inspect(v: ApiVersion, c: &mut Value) {
    if !v.before("1.20") {
        return;
    }
    let hc = c.get("HostConfig").cloned().unwrap_or(Value::Null);
    let pick = |k: &str| hc.get(k).cloned().unwrap_or(Value::Null);
    let (mut volumes, mut volumes_rw) = (Map::new(), Map::new());
    for m in c
        .get("Mounts")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
    {
        let Some(dst) = m.get("Destination").and_then(|d| d.as_str()) else {
            continue;
        };
        volumes.insert(dst.into(), m.get("Source").cloned().unwrap_or(json!("")));
        volumes_rw.insert(dst.into(), m.get("RW").cloned().unwrap_or(json!(false)));
    }
    if let Some(cfg) = c.get_mut("Config").and_then(|x| x.as_object_mut()) {
        cfg.entry("MacAddress").or_insert(json!(""));
        cfg.entry("NetworkDisabled").or_insert(json!(false));
        cfg.entry("ExposedPorts").or_insert(Value::Null);
        cfg.insert("VolumeDriver".into(), pick("VolumeDriver"));
        cfg.insert("Memory".into(), pick("Memory"));
        cfg.insert("MemorySwap".into(), pick("MemorySwap"));
        cfg.insert("CpuShares".into(), pick("CpuShares"));
        cfg.insert("Cpuset".into(), pick("CpusetCpus"));
    }
    if let Some(o) = c.as_object_mut() {
        o.insert("Volumes".into(), Value::Object(volumes));
        o.insert("VolumesRW".into(), Value::Object(volumes_rw));
    }
}

/// Before 1.20 killing a container that is not running was not an error.
pub(crate) fn kill_of_stopped_is_ok(v: ApiVersion) -> bool {
    v.before("1.20")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ApiVersion {
        ApiVersion::parse(s).unwrap()
    }

    #[test]
    fn old_clients_get_a_shareable_ipc_namespace_and_no_auto_remove() {
        let mut b = json!({"HostConfig": {"AutoRemove": true}});
        create_body(v("1.19"), &mut b);
        assert_eq!(b["HostConfig"]["IpcMode"], "shareable");
        assert_eq!(b["HostConfig"]["AutoRemove"], false);
        let mut b = json!({"HostConfig": {"AutoRemove": true, "IpcMode": "host"}});
        create_body(v("1.39"), &mut b);
        assert_eq!(b["HostConfig"]["IpcMode"], "host");
        assert_eq!(b["HostConfig"]["AutoRemove"], true);
        let mut b = json!({"HostConfig": {}});
        create_body(v("1.40"), &mut b);
        assert!(b["HostConfig"].get("IpcMode").is_none());
    }

    #[test]
    fn info_before_1_25_names_security_options_and_the_execution_driver() {
        let mut i = json!({"SecurityOptions": ["name=seccomp,profile=default", "name=cgroupns"],
                           "KernelVersion": ""});
        info(v("1.20"), &mut i);
        assert_eq!(i["ExecutionDriver"], "<not supported>");
        assert_eq!(i["SecurityOptions"], json!(["seccomp", "cgroupns"]));
        assert_eq!(i["KernelVersion"], "<unknown>");
        let mut i = json!({"SecurityOptions": ["name=seccomp,profile=default"]});
        info(v("1.41"), &mut i);
        assert!(i.get("ExecutionDriver").is_none());
        assert_eq!(i["SecurityOptions"][0], "name=seccomp,profile=default");
    }

    #[test]
    fn inspect_before_1_20_repeats_resources_in_config() {
        let mut c = json!({
            "Config": {"Image": "busybox"},
            "HostConfig": {"CpusetCpus": "0", "Memory": 5, "MemorySwap": 10, "CpuShares": 2},
            "Mounts": [{"Destination": "/d", "Source": "/v/d", "RW": true}]
        });
        inspect(v("1.19"), &mut c);
        assert_eq!(c["Config"]["Cpuset"], "0");
        assert_eq!(c["Config"]["Memory"], 5);
        assert_eq!(c["Volumes"]["/d"], "/v/d");
        assert_eq!(c["VolumesRW"]["/d"], true);
        let mut c = json!({"Config": {}, "HostConfig": {"CpusetCpus": "0"}});
        inspect(v("1.20"), &mut c);
        assert!(c["Config"].get("Cpuset").is_none());
    }
}
