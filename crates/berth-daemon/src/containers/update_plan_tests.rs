//! Unit tests of the update plan: what changes, what it takes (config, live, recreate), and
//! the request's errors.

use super::*;
use berth_api_types::models::{Mount as ApiMount, MountType};
use std::collections::HashMap;

fn running() -> Record {
    let mut r = Record {
        id: "c1".into(),
        name: "web".into(),
        ..Default::default()
    };
    r.state.status = Status::Running;
    r.config.env = Some(vec!["PATH=/bin".into(), "A=1".into()]);
    r.config.labels = Some(HashMap::from([("k".to_string(), "v".to_string())]));
    r.host_config.port_bindings = Some(HashMap::from([(
        "80/tcp".to_string(),
        Some(vec![PortBinding {
            host_ip: Some(String::new()),
            host_port: Some("8080".into()),
        }]),
    )]));
    r.ports = vec![PortMapping {
        host_ip: IpAddr::from([0, 0, 0, 0]),
        host_port: 8080,
        container_port: 80,
        proto: Proto::Tcp,
    }];
    r
}

fn pc(cport: &str, hport: &str) -> berth_api_types::PortChange {
    berth_api_types::PortChange {
        container_port: cport.into(),
        host_ip: String::new(),
        host_port: hport.into(),
    }
}

fn ext() -> UpdateExtension {
    UpdateExtension::default()
}

fn plan(r: &Record, e: &UpdateExtension) -> Result<UpdatePlan> {
    plan_update(r, &ContainerUpdateBody::default(), e)
}

fn err(r: &Record, e: &UpdateExtension) -> String {
    plan(r, e).unwrap_err().to_string()
}

#[test]
fn nothing_asked_is_nothing_done() {
    let p = plan(&running(), &ext()).unwrap();
    assert_eq!(p.action, UpdateAction::None);
    assert!(p.changes.is_empty() && !p.restart());
}

#[test]
fn added_port_is_live_and_recorded() {
    let mut e = ext();
    e.publish_add.push(pc("81", ""));
    let p = plan(&running(), &e).unwrap();
    assert_eq!(p.action, UpdateAction::Live);
    assert_eq!(p.ports_add.len(), 1);
    assert_eq!(
        (p.ports_add[0].container_port, p.ports_add[0].host_port),
        (81, 0)
    );
    // No host address: every address of each family the container has, as `-p 81` at start
    // (an IPv4 0.0.0.0 here would leave an IPv6 network's port unpublished on `::`).
    assert_eq!(p.ports_add[0].host_ip, None);
    e.publish_add[0].host_ip = "::1".into();
    let p6 = plan(&running(), &e).unwrap();
    assert_eq!(p6.ports_add[0].host_ip, Some("::1".parse().unwrap()));
    let pb = p.host_config.port_bindings.unwrap();
    assert!(pb.contains_key("80/tcp") && pb.contains_key("81/tcp"));
    assert!(p
        .config
        .exposed_ports
        .unwrap()
        .contains(&"81/tcp".to_string()));
    assert!(p
        .changes
        .iter()
        .any(|c| c.field == "HostConfig.PortBindings"));
}

#[test]
fn removed_port_takes_the_live_mapping() {
    let mut e = ext();
    e.publish_rm.push(pc("80/tcp", ""));
    let p = plan(&running(), &e).unwrap();
    assert_eq!(p.action, UpdateAction::Live);
    assert_eq!(p.ports_rm, running().ports);
    assert!(!p.host_config.port_bindings.unwrap().contains_key("80/tcp"));
}

#[test]
fn ephemeral_binding_is_removed_by_its_actual_port() {
    let mut r = running();
    r.host_config.port_bindings.as_mut().unwrap().insert(
        "80/tcp".into(),
        Some(vec![PortBinding {
            host_ip: None,
            host_port: Some(String::new()),
        }]),
    );
    r.ports[0].host_port = 32768;
    let mut e = ext();
    e.publish_rm.push(pc("80", "32768"));
    let p = plan(&r, &e).unwrap();
    assert_eq!(p.ports_rm.len(), 1);
    e.publish_rm[0].host_port = "9999".into();
    assert!(err(&r, &e).contains("does not publish it"));
}

#[test]
fn port_errors_name_the_field_and_value() {
    let mut e = ext();
    e.publish_add.push(pc("http", ""));
    assert!(err(&running(), &e).contains("invalid container port \"http\" in PublishAdd"));
    e.publish_add[0] = pc("81/sctp", "");
    assert!(err(&running(), &e).contains("PublishAdd"));
    e.publish_add[0] = pc("81", "70000");
    assert!(err(&running(), &e).contains("invalid host port \"70000\""));
    // The same host port twice is refused before the network is asked.
    e.publish_add[0] = pc("81", "8080");
    assert!(err(&running(), &e).contains("already publishes 80/tcp"));
    let mut e = ext();
    e.publish_rm.push(pc("443", ""));
    assert!(err(&running(), &e).contains("cannot unpublish 443/tcp"));
    let mut r = running();
    r.host_config.network_mode = Some("host".into());
    let mut e = ext();
    e.publish_add.push(pc("81", ""));
    assert!(err(&r, &e).contains("network mode host"));
}

#[test]
fn env_change_recreates_a_running_container_only() {
    let mut e = ext();
    e.env_add.push("A=2".into());
    e.env_add.push("B=3".into());
    e.env_rm.push("PATH".into());
    let p = plan(&running(), &e).unwrap();
    assert_eq!(p.config.env.clone().unwrap(), vec!["A=2", "B=3"]);
    assert_eq!(p.action, UpdateAction::Recreate);
    assert!(p.restart());
    let c = p.changes.iter().find(|c| c.field == "Config.Env").unwrap();
    assert_eq!(c.before, serde_json::json!(["PATH=/bin", "A=1"]));
    let mut stopped = running();
    stopped.state.status = Status::Exited;
    assert_eq!(plan(&stopped, &e).unwrap().action, UpdateAction::Config);
}

#[test]
fn env_errors() {
    let mut e = ext();
    e.env_add.push("NOVALUE".into());
    assert!(err(&running(), &e).contains("want KEY=VALUE"));
    let mut e = ext();
    e.env_rm.push("ZZ".into());
    assert!(err(&running(), &e).contains("does not set it"));
}

#[test]
fn recreate_refused_for_rm_paused_and_restarting() {
    let mut e = ext();
    e.env_add.push("B=1".into());
    let mut r = running();
    r.host_config.auto_remove = Some(true);
    assert!(err(&r, &e).contains("--rm"));
    let mut r = running();
    r.state.status = Status::Paused;
    assert!(plan(&r, &e).unwrap_err().kind() == crate::ErrorKind::Conflict);
    r.state.status = Status::Restarting;
    assert!(err(&r, &e).contains("restarting"));
    let mut ports = ext();
    ports.publish_add.push(pc("81", ""));
    assert!(err(&r, &ports).contains("wait until it runs"));
    // Limits and labels of a restarting container are recorded (the restart applies them).
    let mut labels = ext();
    labels.labels_add.insert("a".into(), "b".into());
    assert_eq!(plan(&r, &labels).unwrap().action, UpdateAction::Config);
    let body = ContainerUpdateBody {
        memory: Some(64 << 20),
        ..Default::default()
    };
    assert_eq!(
        plan_update(&r, &body, &ext()).unwrap().action,
        UpdateAction::Config
    );
}

#[test]
fn labels_and_restart_policy_are_config_only() {
    let mut e = ext();
    e.labels_add.insert("new".into(), "1".into());
    e.labels_rm.push("k".into());
    let body = ContainerUpdateBody {
        restart_policy: Some(berth_api_types::models::RestartPolicy {
            name: Some(berth_api_types::models::RestartPolicyNameEnum::ALWAYS),
            maximum_retry_count: None,
        }),
        ..Default::default()
    };
    let p = plan_update(&running(), &body, &e).unwrap();
    assert_eq!(p.action, UpdateAction::Config);
    assert_eq!(p.config.labels.clone().unwrap().len(), 1);
    let fields: Vec<&str> = p.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["Config.Labels", "HostConfig.RestartPolicy"]);
    let mut e = ext();
    e.labels_rm.push("absent".into());
    assert!(err(&running(), &e).contains("does not have it"));
}

#[test]
fn limits_are_live() {
    let body = ContainerUpdateBody {
        memory: Some(64 << 20),
        ..Default::default()
    };
    let p = plan_update(&running(), &body, &ext()).unwrap();
    assert!(p.limits_changed);
    assert_eq!(p.action, UpdateAction::Live);
    let body = ContainerUpdateBody {
        memory: Some(1024),
        ..Default::default()
    };
    assert!(plan_update(&running(), &body, &ext())
        .unwrap_err()
        .to_string()
        .contains("Minimum memory"));
}

#[test]
fn mounts_keep_named_and_anonymous_volumes() {
    let mut r = running();
    r.planned_mounts = vec![parse_bind("anon123:/data").unwrap()];
    r.host_config.binds = Some(vec!["/srv:/srv:ro".into()]);
    r.planned_mounts.push(parse_bind("/srv:/srv:ro").unwrap());
    let mut e = ext();
    e.binds_add.push("vol1:/vol".into());
    e.mounts_add.push(ApiMount {
        target: Some("/etc/x".into()),
        source: Some("/etc".into()),
        typ: Some(MountType::BIND),
        ..Default::default()
    });
    e.mounts_rm.push("/srv/".into());
    let p = plan(&r, &e).unwrap();
    let dests: Vec<&str> = p
        .planned_mounts
        .iter()
        .map(|m| m.destination.as_str())
        .collect();
    assert_eq!(dests, ["/data", "/vol", "/etc/x"]);
    assert_eq!(p.bind_sources, ["/etc"]);
    assert_eq!(p.host_config.binds.clone().unwrap(), ["vol1:/vol"]);
    assert!(p.mounts_changed && p.restart());
}

#[test]
fn mount_errors() {
    let mut e = ext();
    e.mounts_rm.push("/nope".into());
    assert!(err(&running(), &e).contains("no mount there"));
    let mut e = ext();
    e.binds_add.push("v:/proc/x".into());
    assert!(err(&running(), &e).contains("cannot mount over /proc/x"));
    let mut e = ext();
    e.binds_add.push("v:/a".into());
    e.binds_add.push("w:/a".into());
    assert!(err(&running(), &e).contains("Duplicate mount point: /a"));
    let mut e = ext();
    e.binds_add.push("v:relative".into());
    assert!(err(&running(), &e).contains("must be absolute"));
}

#[test]
fn networks_checked_against_the_record() {
    let mut e = ext();
    e.networks_add.push("bridge".into());
    assert!(err(&running(), &e).contains("already on it"));
    let mut e = ext();
    e.networks_rm.push("other".into());
    assert!(err(&running(), &e).contains("not on it"));
    let mut e = ext();
    e.networks_add.push("other".into());
    let p = plan(&running(), &e).unwrap();
    assert_eq!(p.action, UpdateAction::Live);
    let c = p.changes.last().unwrap();
    assert_eq!(c.after, serde_json::json!(["bridge", "other"]));
}
