//! Docker's JSON shapes for containers: inspect, the `/containers/json` summary (with
//! filters), and `Up 3 seconds` / `Exited (0) 2 minutes ago` status strings.

use super::Status;
use berth_api_types::container_types::{
    ContainerGraphDriver, ContainerHealth, ContainerInspect, ContainerStateView,
    ContainerSummaryView, EndpointMap, EndpointView, InspectConfig, InspectHostConfig,
    InspectNetworkSettings, SummaryHostConfig, SummaryNetworkSettings, SummaryPort,
};
use berth_api_types::models::{MountPoint, PortBinding, PortMap};

use super::{Containers, Record, ZERO_TIME};

fn secs_since(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| (chrono::Utc::now() - d.with_timezone(&chrono::Utc)).num_seconds())
        .unwrap_or(0)
}

/// Go's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=2699 => format!("{} minutes", s / 60),
        2700..=5399 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 7 * 24 * 3600 * 2 => format!("{} days", s / 86400),
        _ if s < 30 * 24 * 3600 * 3 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
    }
}

pub fn status_text(r: &Record) -> String {
    match r.state.status {
        Status::Running => format!("Up {}", human_duration(secs_since(&r.state.started_at))),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(secs_since(&r.state.started_at))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            human_duration(secs_since(&r.state.finished_at))
        ),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        _ if r.state.finished_at == ZERO_TIME => "Created".into(),
        _ => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            human_duration(secs_since(&r.state.finished_at))
        ),
    }
}

fn ports_of(r: &Record) -> PortMap {
    let mut m = PortMap::new();
    for p in r.config.exposed_ports.clone().unwrap_or_default() {
        m.insert(p, None);
    }
    for p in &r.ports {
        let k = format!("{}/{}", p.container_port, p.proto);
        m.entry(k)
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(p.host_ip.to_string()),
                host_port: Some(p.host_port.to_string()),
            });
    }
    m
}

/// An endpoint entry with nothing attached (Docker's shape for a network not joined yet).
fn empty_endpoint() -> EndpointView {
    EndpointView::default()
}

fn networks_of(r: &Record) -> EndpointMap {
    let mut m = EndpointMap::new();
    for e in &r.endpoints {
        let (ipam, links, opts) = crate::networks::endpoint_settings(r, &e.network);
        m.insert(
            e.network.clone(),
            EndpointView {
                ipam_config: ipam,
                links,
                aliases: Some(e.aliases.clone()),
                mac_address: e.mac.clone(),
                network_id: e.network_id.clone(),
                endpoint_id: e.veth_host.clone(),
                gateway: e.gateway.to_string(),
                ip_address: e.ip.to_string(),
                ip_prefix_len: e.prefix.into(),
                ipv6_gateway: e.gateway6.map(|g| g.to_string()).unwrap_or_default(),
                global_ipv6_address: e.ipv6.map(|g| g.to_string()).unwrap_or_default(),
                global_ipv6_prefix_len: e.prefix6.unwrap_or(0).into(),
                driver_opts: opts,
                dns_names: None,
            },
        );
    }
    if m.is_empty() {
        let mode = r.host_config.network_mode.clone().unwrap_or_default();
        let mode = if mode.is_empty() || mode == "default" {
            "bridge".to_string()
        } else {
            mode
        };
        if !mode.starts_with("container:") {
            m.insert(mode, empty_endpoint());
        }
        crate::networks::add_configured_networks(r, &mut m);
    }
    m
}

/// Inspect's and list's `Mounts`: every mount but `--tmpfs` (`HostConfig.Tmpfs`) ones, which
/// dockerd does not list (a `--mount type=tmpfs` it does).
fn mounts_of(r: &Record) -> Vec<MountPoint> {
    if !r.mount_points.is_empty() {
        let tmpfs = r.host_config.tmpfs.clone().unwrap_or_default();
        let from_tmpfs_flag = |m: &&crate::containers::stored::MountPoint| {
            m.typ.as_deref() == Some("tmpfs")
                && tmpfs.keys().any(|k| {
                    m.destination.as_deref() == Some(&crate::volumes::mounts::clean_dest(k))
                })
        };
        return r
            .mount_points
            .iter()
            .filter(|m| !from_tmpfs_flag(m))
            .cloned()
            .map(Into::into)
            .collect();
    }
    let mut v = vec![];
    for b in r.host_config.binds.clone().unwrap_or_default() {
        let parts: Vec<&str> = b.split(':').collect();
        if parts.len() >= 2 {
            let mode = parts.get(2).copied().unwrap_or("");
            v.push(MountPoint {
                typ: Some("bind".into()),
                source: Some(parts[0].into()),
                destination: Some(parts[1].into()),
                mode: Some(mode.into()),
                rw: Some(!mode.split(',').any(|m| m == "ro")),
                propagation: Some("rprivate".into()),
                ..Default::default()
            });
        }
    }
    v
}

fn health_of(r: &Record) -> Option<ContainerHealth> {
    let h = r.health.as_ref()?;
    match serde_json::from_value(h.clone()) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(container = %r.id, error = %e, "unreadable stored health state");
            None
        }
    }
}

pub fn inspect(cs: &Containers, r: &Record) -> ContainerInspect {
    let dir = cs.ctr_dir(&r.id);
    let st = &r.state;
    let first_ep = r.endpoints.first();
    let mut hc = InspectHostConfig::with_defaults(r.host_config.clone().into());
    if r.host_config.links.is_some() {
        let links = if r.host_config.network_mode.as_deref() == Some("bridge") {
            super::names::render_links(r, |id| cs.get(id).ok().map(|c| c.snapshot().name))
        } else {
            r.host_config.links.clone()
        };
        hc.set_links(links);
    }
    // The paths berth-runtime masks and makes read-only unless privileged.
    if !r.host_config.privileged.unwrap_or(false) {
        let defaults = |d: &[&str]| Some(d.iter().map(|p| p.to_string()).collect());
        let masked = r.host_config.masked_paths.clone();
        let readonly = r.host_config.readonly_paths.clone();
        hc.set_protected_paths(
            masked.or_else(|| defaults(berth_runtime::spec::DEFAULT_MASKED_PATHS)),
            readonly.or_else(|| defaults(berth_runtime::spec::DEFAULT_READONLY_PATHS)),
        );
    }
    let path = |p: std::path::PathBuf| p.display().to_string();
    ContainerInspect {
        id: r.id.clone(),
        created: r.created.clone(),
        path: r.path.clone(),
        args: r.args.clone(),
        state: ContainerStateView {
            status: st.status.as_str().to_string(),
            running: st.status.is_running(),
            paused: st.status == Status::Paused,
            restarting: st.status == Status::Restarting,
            oom_killed: st.oom_killed,
            dead: st.status == Status::Dead,
            pid: st.pid,
            exit_code: st.exit_code,
            error: st.error.clone(),
            started_at: st.started_at.clone(),
            finished_at: st.finished_at.clone(),
            health: health_of(r),
        },
        image: r.image_id.clone(),
        resolv_conf_path: path(dir.join("resolv.conf")),
        hostname_path: path(dir.join("hostname")),
        hosts_path: path(dir.join("hosts")),
        log_path: path(cs.log_path(&r.id)),
        // Filled by the service, which knows the daemon's log defaults.
        log_rotation: None,
        name: format!("/{}", r.name),
        restart_count: r.restart_count,
        driver: "overlay2".into(),
        platform: "linux".into(),
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids: None,
        host_config: hc,
        graph_driver: ContainerGraphDriver {
            name: "overlay2".into(),
            data: None,
        },
        mounts: mounts_of(r),
        config: InspectConfig::with_defaults(r.config.clone().into()),
        network_settings: InspectNetworkSettings {
            bridge: String::new(),
            sandbox_id: r.id.clone(),
            sandbox_key: r
                .netns
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            hairpin_mode: false,
            link_local_ipv6_address: String::new(),
            link_local_ipv6_prefix_len: 0,
            ports: ports_of(r),
            secondary_ip_addresses: None,
            secondary_ipv6_addresses: None,
            endpoint_id: first_ep.map(|e| e.veth_host.clone()).unwrap_or_default(),
            gateway: first_ep.map(|e| e.gateway.to_string()).unwrap_or_default(),
            global_ipv6_address: String::new(),
            global_ipv6_prefix_len: 0,
            ip_address: first_ep.map(|e| e.ip.to_string()).unwrap_or_default(),
            ip_prefix_len: first_ep.map(|e| e.prefix.into()).unwrap_or(0),
            ipv6_gateway: String::new(),
            mac_address: first_ep.map(|e| e.mac.clone()).unwrap_or_default(),
            networks: networks_of(r),
        },
        size_rw: None,
    }
}

pub fn summary(r: &Record) -> ContainerSummaryView {
    let created = chrono::DateTime::parse_from_rfc3339(&r.created)
        .map(|d| d.timestamp())
        .unwrap_or(0);
    let mut cmd = vec![r.path.clone()];
    cmd.extend(r.args.iter().map(|a| {
        if a.contains(' ') {
            format!("\"{a}\"")
        } else {
            a.clone()
        }
    }));
    let mut ports: Vec<SummaryPort> = r
        .ports
        .iter()
        .map(|p| SummaryPort {
            ip: Some(p.host_ip.to_string()),
            private_port: p.container_port,
            public_port: Some(p.host_port),
            typ: p.proto.to_string(),
        })
        .collect();
    for e in r.config.exposed_ports.clone().unwrap_or_default() {
        let (p, proto) = e.split_once('/').unwrap_or((&e, "tcp"));
        let Ok(p) = p.parse::<u16>() else { continue };
        if !r.ports.iter().any(|x| x.container_port == p) {
            ports.push(SummaryPort {
                ip: None,
                private_port: p,
                public_port: None,
                typ: proto.to_string(),
            });
        }
    }
    let mode = r.host_config.network_mode.clone().unwrap_or_default();
    ContainerSummaryView {
        id: r.id.clone(),
        names: vec![format!("/{}", r.name)],
        image: r.image.clone(),
        image_id: r.image_id.clone(),
        command: cmd.join(" "),
        created,
        ports,
        labels: r.config.labels.clone().unwrap_or_default(),
        state: r.state.status.as_str().to_string(),
        status: status_text(r),
        host_config: SummaryHostConfig {
            network_mode: if mode.is_empty() {
                "bridge".to_string()
            } else {
                mode
            },
        },
        network_settings: SummaryNetworkSettings {
            networks: networks_of(r),
        },
        mounts: mounts_of(r),
        size_rw: None,
    }
}

/// Add the legacy link names (`/parent/alias`) other containers gave `r` to a summary's
/// `Names`, after its own name, as dockerd lists them.
pub fn add_link_names(v: &mut ContainerSummaryView, r: &Record, all: &[Record]) {
    let mut names: Vec<String> = all
        .iter()
        .filter(|p| p.host_config.network_mode.as_deref() == Some("bridge"))
        .flat_map(|p| {
            p.host_config
                .links
                .iter()
                .flatten()
                .filter_map(|l| super::names::split_stored(l))
                .filter(|(t, _)| *t == r.id)
                .map(|(_, a)| format!("/{}/{a}", p.name))
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    v.names.extend(names);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_follow_the_own_name() {
        let t = Record {
            id: "t1".into(),
            name: "db".into(),
            ..Default::default()
        };
        let mut p = Record {
            id: "p1".into(),
            name: "web".into(),
            ..Default::default()
        };
        p.host_config.network_mode = Some("bridge".into());
        p.host_config.links = Some(vec![super::super::names::stored_link("t1", "sql")]);
        let mut v = summary(&t);
        add_link_names(&mut v, &t, &[t.clone(), p]);
        assert_eq!(v.names, ["/db", "/web/sql"]);
    }

    #[test]
    fn human_durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(65), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3 * 3600), "3 hours");
    }
}
