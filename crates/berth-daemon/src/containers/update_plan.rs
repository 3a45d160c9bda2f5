//! `docker update` and berth's extension as a plan (pure): the stored record and the request
//! in, the new config, host config and mounts out, with what must happen to the process
//! (nothing, a live port/network change, or a managed recreate) and the changes to show.
//! `update.rs` applies it.

use std::net::IpAddr;

use berth_api_types::models::ContainerUpdateBody;
use berth_api_types::{UpdateAction, UpdateChange, UpdateExtension};
use berth_network::{PortMapping, PortRequest, Proto};
use serde_json::Value;

use super::stored::{self, ContainerConfig, HostConfig, Mirror, PortBinding};
use super::{Record, Status};
use crate::error::{DaemonError, Result};
use crate::volumes::mounts::{parse_bind, parse_mount, MountKind, PlannedMount};

/// Paths the engine itself mounts in every container: a user mount there cannot work.
const ENGINE_PATHS: &[&str] = &["/proc", "/sys", "/dev"];

/// What an update does, decided before anything is touched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdatePlan {
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The container's mounts after the update (anonymous volume names kept).
    pub planned_mounts: Vec<PlannedMount>,
    pub mounts_changed: bool,
    /// Host paths of added binds: each must exist before anything stops.
    pub bind_sources: Vec<String>,
    /// Published ports to take away live (as published now, host port filled in).
    pub ports_rm: Vec<PortMapping>,
    /// Ports to publish live: one without a host address becomes a mapping per family the
    /// container has, as at start.
    pub ports_add: Vec<PortRequest>,
    pub networks_add: Vec<String>,
    pub networks_rm: Vec<String>,
    /// Docker's resource fields changed (the running cgroup is updated).
    pub limits_changed: bool,
    pub action: UpdateAction,
    pub changes: Vec<UpdateChange>,
}

impl UpdatePlan {
    pub fn restart(&self) -> bool {
        self.action == UpdateAction::Recreate
    }
}

fn invalid(m: String) -> DaemonError {
    DaemonError::Invalid(m)
}

/// Plan an update of `r`. Errors are the request's fault (400) or the container's state (409).
pub fn plan_update(
    r: &Record,
    body: &ContainerUpdateBody,
    ext: &UpdateExtension,
) -> Result<UpdatePlan> {
    let mut hc = r.host_config.clone();
    let mut cfg = r.config.clone();
    apply_limits(&mut hc, body)?;
    let limits_changed = resources(&hc) != resources(&r.host_config);
    edit_env(&mut cfg, ext)?;
    edit_labels(&mut cfg, ext)?;
    let (ports_add, ports_rm) = edit_ports(r, &mut hc, &mut cfg, ext)?;
    let (planned_mounts, bind_sources) = edit_mounts(r, &mut hc, ext)?;
    let mounts_changed = planned_mounts != r.planned_mounts;
    let (networks_add, networks_rm) = edit_networks(r, ext)?;
    super::create::validate_host_config(&hc)?;

    let mut changes = diff("Config", &r.config, &cfg);
    changes.extend(diff("HostConfig", &r.host_config, &hc));
    if !networks_add.is_empty() || !networks_rm.is_empty() {
        let before = connected_networks(r);
        let mut after: Vec<String> = before
            .iter()
            .filter(|n| !networks_rm.contains(n))
            .cloned()
            .collect();
        after.extend(networks_add.iter().cloned());
        changes.push(UpdateChange {
            field: "NetworkSettings.Networks".into(),
            before: Value::from(before),
            after: Value::from(after),
        });
    }
    let needs_process = cfg.env != r.config.env || mounts_changed;
    let live = limits_changed
        || !ports_add.is_empty()
        || !ports_rm.is_empty()
        || !networks_add.is_empty()
        || !networks_rm.is_empty();
    // Between an exit and its policy restart a container has no process, endpoints or
    // ports to change; a change that needs them waits until it runs again.
    if r.state.status == Status::Restarting
        && (needs_process || !ports_add.is_empty() || !ports_rm.is_empty())
    {
        return Err(DaemonError::Conflict(format!(
            "container {} is restarting: wait until it runs before changing its ports, env or \
             mounts",
            r.id
        )));
    }
    let running = matches!(r.state.status, Status::Running | Status::Paused);
    let action = if changes.is_empty() {
        UpdateAction::None
    } else if !running {
        UpdateAction::Config
    } else if needs_process {
        UpdateAction::Recreate
    } else if live {
        UpdateAction::Live
    } else {
        UpdateAction::Config
    };
    if action == UpdateAction::Recreate && r.host_config.auto_remove.unwrap_or(false) {
        return Err(invalid(format!(
            "cannot change env or mounts of running container {}: it was started with --rm and \
             would be removed when stopped",
            r.id
        )));
    }
    if action == UpdateAction::Recreate && r.state.status == Status::Paused {
        return Err(DaemonError::Conflict(format!(
            "container {} is paused: unpause it before an update that restarts it (env or mounts)",
            r.id
        )));
    }
    Ok(UpdatePlan {
        config: cfg,
        host_config: hc,
        planned_mounts,
        mounts_changed,
        bind_sources,
        ports_rm: if running { ports_rm } else { vec![] },
        ports_add: if running { ports_add } else { vec![] },
        networks_add,
        networks_rm,
        limits_changed,
        action,
        changes,
    })
}

/// Docker's own update fields, as dockerd applies them.
fn apply_limits(hc: &mut HostConfig, u: &ContainerUpdateBody) -> Result<()> {
    let mut u = u.clone();
    // dockerd: 0 and any negative PIDs limit in an update mean "unlimited", recorded as 0.
    u.pids_limit = u.pids_limit.map(|p| p.max(0));
    macro_rules! set {
        ($($f:ident),*) => { $( if u.$f.is_some() { hc.$f = u.$f.clone().mirror(); } )* };
    }
    set!(
        cpu_shares,
        memory,
        cpu_period,
        cpu_quota,
        cpuset_cpus,
        cpuset_mems,
        memory_reservation,
        memory_swap,
        nano_cpus,
        pids_limit,
        blkio_weight,
        restart_policy
    );
    let restarts = |p: &stored::RestartPolicy| {
        use stored::RestartPolicyNameEnum as R;
        !matches!(p.name, None | Some(R::EMPTY) | Some(R::NO))
    };
    if hc.auto_remove.unwrap_or(false) && hc.restart_policy.as_ref().is_some_and(restarts) {
        // moby's update wording (create says "can't create 'AutoRemove' container …").
        return Err(DaemonError::invalid(
            "Restart policy cannot be updated because AutoRemove is enabled for the container",
        ));
    }
    Ok(())
}

/// The cgroup-backed fields of a host config (what the shim's live update applies).
fn resources(hc: &HostConfig) -> Value {
    serde_json::json!([
        hc.cpu_shares,
        hc.memory,
        hc.cpu_period,
        hc.cpu_quota,
        hc.cpuset_cpus,
        hc.cpuset_mems,
        hc.memory_reservation,
        hc.memory_swap,
        hc.nano_cpus,
        hc.pids_limit,
        hc.blkio_weight
    ])
}

fn edit_env(cfg: &mut ContainerConfig, ext: &UpdateExtension) -> Result<()> {
    let mut env = cfg.env.clone().unwrap_or_default();
    let name_of = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    for k in &ext.env_rm {
        if k.is_empty() || k.contains('=') {
            return Err(invalid(format!(
                "invalid variable name {k:?} in EnvRm: want a name without '='"
            )));
        }
        let before = env.len();
        env.retain(|e| name_of(e) != *k);
        if env.len() == before {
            return Err(invalid(format!(
                "cannot remove env var {k}: the container does not set it"
            )));
        }
    }
    for e in &ext.env_add {
        let Some((k, _)) = e.split_once('=') else {
            return Err(invalid(format!(
                "invalid env var {e:?} in EnvAdd: want KEY=VALUE"
            )));
        };
        if k.is_empty() || k.chars().any(char::is_whitespace) {
            return Err(invalid(format!(
                "invalid env var {e:?} in EnvAdd: the name is empty or has spaces"
            )));
        }
        match env.iter_mut().find(|x| name_of(x) == k) {
            Some(x) => *x = e.clone(),
            None => env.push(e.clone()),
        }
    }
    if cfg.env.is_some() || !env.is_empty() {
        cfg.env = Some(env);
    }
    Ok(())
}

fn edit_labels(cfg: &mut ContainerConfig, ext: &UpdateExtension) -> Result<()> {
    if ext.labels_rm.is_empty() && ext.labels_add.is_empty() {
        return Ok(());
    }
    let mut labels = cfg.labels.clone().unwrap_or_default();
    for k in &ext.labels_rm {
        if labels.remove(k).is_none() {
            return Err(invalid(format!(
                "cannot remove label {k:?}: the container does not have it"
            )));
        }
    }
    for (k, v) in &ext.labels_add {
        if k.is_empty() {
            return Err(invalid(
                "invalid label in LabelsAdd: the key is empty".into(),
            ));
        }
        labels.insert(k.clone(), v.clone());
    }
    cfg.labels = Some(labels);
    Ok(())
}

/// `80`, `80/tcp`, `53/udp` → (port, proto) and the canonical key `80/tcp`.
fn port_key(p: &str, field: &str) -> Result<(u16, Proto, String)> {
    let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let bad = || {
        invalid(format!(
            "invalid container port {p:?} in {field}: want PORT[/tcp|/udp] with PORT 1-65535"
        ))
    };
    let n: u16 = port.parse().map_err(|_| bad())?;
    let pr: Proto = proto.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    Ok((n, pr, format!("{n}/{pr}")))
}

fn host_ip(s: &str, field: &str) -> Result<Option<IpAddr>> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| invalid(format!("invalid host IP {s:?} in {field}")))
}

fn host_port(s: &str, field: &str) -> Result<Option<u16>> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<u16>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(invalid(format!(
            "invalid host port {s:?} in {field}: want 1-65535 (empty picks a free port)"
        ))),
    }
}

/// Ports: edit `PortBindings` (and `ExposedPorts` for new ones, as `-p` does) and say which
/// mappings change live.
fn edit_ports(
    r: &Record,
    hc: &mut HostConfig,
    cfg: &mut ContainerConfig,
    ext: &UpdateExtension,
) -> Result<(Vec<PortRequest>, Vec<PortMapping>)> {
    if ext.publish_add.is_empty() && ext.publish_rm.is_empty() {
        return Ok((vec![], vec![]));
    }
    let mode = super::start_plan::network_mode(r);
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        return Err(invalid(format!(
            "cannot publish or unpublish ports of container {}: it uses network mode {mode}",
            r.id
        )));
    }
    let mut pb = hc.port_bindings.clone().unwrap_or_default();
    let mut live_rm = Vec::new();
    for c in &ext.publish_rm {
        let (n, pr, key) = port_key(&c.container_port, "PublishRm")?;
        let ip = host_ip(&c.host_ip, "PublishRm")?;
        let hp = host_port(&c.host_port, "PublishRm")?;
        // What is published now for this port (the actual host ports, also of `-p 80`).
        let live: Vec<PortMapping> = r
            .ports
            .iter()
            .filter(|m| m.container_port == n && m.proto == pr)
            .filter(|m| hp.is_none_or(|h| m.host_port == h))
            .filter(|m| ip.is_none_or(|i| m.host_ip == i))
            .copied()
            .collect();
        let binds = pb.get(&key).cloned().flatten().unwrap_or_default();
        let matches = |b: &PortBinding| {
            let bip = b.host_ip.clone().unwrap_or_default();
            let bport = b.host_port.clone().unwrap_or_default();
            let ip_ok = ip.is_none_or(|i| bip.parse::<IpAddr>().ok() == Some(i));
            let port_ok = match hp {
                None => true,
                Some(h) => {
                    bport.split('-').next() == Some(h.to_string().as_str())
                        || (bport.is_empty() && !live.is_empty())
                }
            };
            ip_ok && port_ok
        };
        let keep: Vec<PortBinding> = binds.iter().filter(|b| !matches(b)).cloned().collect();
        if keep.len() == binds.len() {
            let at = hp.map(|h| format!(" on host port {h}")).unwrap_or_default();
            return Err(invalid(format!(
                "cannot unpublish {key}{at}: the container does not publish it"
            )));
        }
        if keep.is_empty() {
            pb.remove(&key);
        } else {
            pb.insert(key, Some(keep));
        }
        live_rm.extend(live);
    }
    let mut live_add = Vec::new();
    for c in &ext.publish_add {
        let (n, pr, key) = port_key(&c.container_port, "PublishAdd")?;
        let ip = host_ip(&c.host_ip, "PublishAdd")?;
        let hp = host_port(&c.host_port, "PublishAdd")?;
        let req = PortRequest {
            host_ip: ip,
            host_port: hp.unwrap_or(0),
            container_port: n,
            proto: pr,
        };
        let m = req.mapping();
        // The ports already bound (no host IP counts as 0.0.0.0 for the clash check).
        let all: Vec<PortMapping> = super::plan::port_mappings(&Record {
            host_config: HostConfig {
                port_bindings: Some(pb.clone()),
                ..Default::default()
            },
            ..Default::default()
        })?
        .into_iter()
        .map(|r| PortMapping {
            host_ip: r.host_ip.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            host_port: r.host_port,
            container_port: r.container_port,
            proto: r.proto,
        })
        .collect();
        if let Some(o) = all
            .into_iter()
            .chain(live_add.iter().map(PortRequest::mapping))
            .find(|o| berth_network::ports_clash(o, &m))
        {
            return Err(invalid(format!(
                "cannot publish {key} on host port {}: the container already publishes {}/{} there",
                m.host_port, o.container_port, o.proto
            )));
        }
        pb.entry(key.clone())
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(c.host_ip.clone()),
                host_port: Some(hp.map(|h| h.to_string()).unwrap_or_default()),
            });
        let mut exposed = cfg.exposed_ports.clone().unwrap_or_default();
        if !exposed.contains(&key) {
            exposed.push(key);
            cfg.exposed_ports = Some(exposed);
        }
        live_add.push(req);
    }
    hc.port_bindings = Some(pb);
    Ok((live_add, live_rm))
}

/// Mounts: remove by destination, then add `-v`/`--mount` forms; the kept mounts keep their
/// volumes (anonymous ones by the name they got at create).
fn edit_mounts(
    r: &Record,
    hc: &mut HostConfig,
    ext: &UpdateExtension,
) -> Result<(Vec<PlannedMount>, Vec<String>)> {
    let mut planned = r.planned_mounts.clone();
    if ext.mounts_rm.is_empty() && ext.binds_add.is_empty() && ext.mounts_add.is_empty() {
        return Ok((planned, vec![]));
    }
    let clean = |d: &str| {
        let t = d.trim_end_matches('/');
        if t.is_empty() { "/" } else { t }.to_string()
    };
    for d in &ext.mounts_rm {
        let d = clean(d);
        let before = planned.len();
        planned.retain(|p| p.destination != d);
        if planned.len() == before {
            return Err(invalid(format!(
                "cannot remove the mount at {d}: the container has no mount there"
            )));
        }
        if let Some(b) = hc.binds.as_mut() {
            b.retain(|s| parse_bind(s).map(|p| p.destination != d).unwrap_or(true));
        }
        if let Some(m) = hc.mounts.as_mut() {
            m.retain(|m| m.target.as_deref().map(clean) != Some(d.clone()));
        }
        if let Some(t) = hc.tmpfs.as_mut() {
            t.retain(|k, _| clean(k) != d);
        }
    }
    let mut added = Vec::new();
    for b in &ext.binds_add {
        added.push(parse_bind(b)?);
        hc.binds.get_or_insert_with(Vec::new).push(b.clone());
    }
    for m in &ext.mounts_add {
        let m: stored::Mount = m.clone().into();
        added.push(parse_mount(&m)?);
        hc.mounts.get_or_insert_with(Vec::new).push(m);
    }
    let mut sources = Vec::new();
    for p in added {
        if let Some(e) = ENGINE_PATHS
            .iter()
            .find(|e| p.destination == **e || p.destination.starts_with(&format!("{e}/")))
        {
            return Err(invalid(format!(
                "cannot mount over {}: the container needs the engine's {e}",
                p.destination
            )));
        }
        if planned.iter().any(|o| o.destination == p.destination) {
            return Err(invalid(format!(
                "Duplicate mount point: {} (remove the mount there first)",
                p.destination
            )));
        }
        if let MountKind::Bind { source, .. } = &p.kind {
            sources.push(source.clone());
        }
        planned.push(p);
    }
    Ok((planned, sources))
}

/// Networks the container is configured on (its endpoints config; the network mode's first).
fn connected_networks(r: &Record) -> Vec<String> {
    let mut out = Vec::new();
    let mode = super::start_plan::network_mode(r);
    if !(mode == "host" || mode == "none" || mode.starts_with("container:")) {
        out.push(mode);
    }
    let mut extra: Vec<String> = r
        .networking
        .as_ref()
        .and_then(|n| n.endpoints_config.as_ref())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    extra.sort();
    for n in extra {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

fn edit_networks(r: &Record, ext: &UpdateExtension) -> Result<(Vec<String>, Vec<String>)> {
    let now = connected_networks(r);
    for n in &ext.networks_add {
        if now.contains(n) {
            return Err(invalid(format!(
                "cannot connect to network {n}: the container is already on it"
            )));
        }
    }
    for n in &ext.networks_rm {
        if !now.contains(n) {
            return Err(invalid(format!(
                "cannot disconnect from network {n}: the container is not on it"
            )));
        }
        if ext.networks_add.contains(n) {
            return Err(invalid(format!(
                "network {n} is both in NetworksAdd and NetworksRm"
            )));
        }
    }
    Ok((ext.networks_add.clone(), ext.networks_rm.clone()))
}

/// The top-level fields of `before` and `after` (as inspect shows them) that differ.
fn diff<T: serde::Serialize>(section: &str, before: &T, after: &T) -> Vec<UpdateChange> {
    let obj = |v: &T| match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (b, a) = (obj(before), obj(after));
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| UpdateChange {
            field: format!("{section}.{k}"),
            before: b.get(k).cloned().unwrap_or(Value::Null),
            after: a.get(k).cloned().unwrap_or(Value::Null),
        })
        .collect()
}

#[cfg(test)]
#[path = "update_plan_tests.rs"]
mod tests;
