//! Table tests of the network-mode conflicts: each refused combination with dockerd's
//! message, and its neighbours (the same option on a mode that allows it) that must pass.

use std::collections::HashMap;

use super::super::stored::{HostConfig, PortBinding};
use berth_api_types::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, NetworkingConfig,
};
use berth_api_types::ErrorKind;

use super::*;

fn hc(mode: &str) -> HostConfig {
    HostConfig {
        network_mode: Some(mode.into()),
        ..Default::default()
    }
}

fn body() -> ContainerCreateBody {
    ContainerCreateBody::default()
}

#[test]
fn shared_namespace_modes_refuse_what_they_cannot_honour() {
    let some = |s: &str| Some(vec![s.to_string()]);
    let hostname = ContainerCreateBody {
        hostname: Some("h".into()),
        ..body()
    };
    let exposed = ContainerCreateBody {
        exposed_ports: some("80/tcp"),
        ..body()
    };
    let published = HostConfig {
        port_bindings: Some(HashMap::from([(
            "80/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some("8080".into()),
            }]),
        )])),
        ..hc("container:web")
    };
    let cases: Vec<(ContainerCreateBody, HostConfig, &str, Option<&str>)> = vec![
        (body(), hc("container:web"), "", None),
        (
            body(),
            hc("container:"),
            "",
            Some("Invalid network mode: invalid container format container:<name|id>"),
        ),
        (
            hostname.clone(),
            hc("container:web"),
            "",
            Some(CONFLICT_HOSTNAME),
        ),
        (hostname.clone(), hc("host"), "", None),
        (hostname.clone(), hc("bridge"), "", None),
        (
            body(),
            HostConfig {
                links: some("db:db"),
                ..hc("container:web")
            },
            "",
            Some(CONFLICT_CONTAINER_LINKS),
        ),
        (
            body(),
            HostConfig {
                links: some("db:db"),
                ..hc("host")
            },
            "",
            Some(CONFLICT_HOST_LINKS),
        ),
        (
            body(),
            HostConfig {
                links: some("db:db"),
                ..hc("bridge")
            },
            "",
            None,
        ),
        (
            body(),
            HostConfig {
                dns: some("1.1.1.1"),
                ..hc("container:web")
            },
            "",
            Some(CONFLICT_DNS),
        ),
        (
            body(),
            HostConfig {
                dns: some("1.1.1.1"),
                ..hc("host")
            },
            "",
            None,
        ),
        (
            body(),
            HostConfig {
                extra_hosts: some("a:1.2.3.4"),
                ..hc("container:web")
            },
            "",
            Some(CONFLICT_HOSTS),
        ),
        (
            body(),
            hc("container:web"),
            "02:42:ac:11:00:0a",
            Some(CONFLICT_MAC),
        ),
        (body(), hc("host"), "02:42:ac:11:00:0a", Some(CONFLICT_MAC)),
        (body(), hc("bridge"), "02:42:ac:11:00:0a", None),
        (body(), published.clone(), "", Some(CONFLICT_PUBLISH)),
        (
            body(),
            HostConfig {
                publish_all_ports: Some(true),
                ..hc("container:web")
            },
            "",
            Some(CONFLICT_PUBLISH),
        ),
        (
            body(),
            HostConfig {
                port_bindings: Some(HashMap::new()),
                ..hc("container:web")
            },
            "",
            None,
        ),
        (
            exposed.clone(),
            hc("container:web"),
            "",
            Some(CONFLICT_EXPOSE),
        ),
        (exposed, hc("host"), "", None),
        (
            hostname.clone(),
            HostConfig {
                uts_mode: Some("host".into()),
                ..hc("bridge")
            },
            "",
            Some(CONFLICT_UTS_HOSTNAME),
        ),
        (
            body(),
            HostConfig {
                uts_mode: Some("host".into()),
                ..hc("bridge")
            },
            "",
            None,
        ),
        (
            hostname.clone(),
            HostConfig {
                uts_mode: Some("container:infra".into()),
                ..hc("bridge")
            },
            "",
            Some(CONFLICT_UTS_HOSTNAME),
        ),
        (
            body(),
            HostConfig {
                uts_mode: Some("container:infra".into()),
                ..hc("container:infra")
            },
            "",
            None,
        ),
    ];
    for (c, h, mac, want) in cases {
        let got = net_mode(&c, &h, mac).err();
        assert_eq!(got.as_deref(), want, "{c:?} {h:?} mac {mac:?}");
    }
}

fn ep(ip: Option<&str>, aliases: &[&str]) -> EndpointSettings {
    EndpointSettings {
        ipam_config: ip.map(|ip| EndpointIpamConfig {
            ipv4_address: Some(ip.into()),
            ..Default::default()
        }),
        aliases: Some(aliases.iter().map(|a| a.to_string()).collect()),
        ..Default::default()
    }
}

#[test]
fn aliases_and_static_addresses_need_a_user_defined_network() {
    for net in ["bridge", "host", "none", "default", "container:web"] {
        assert_eq!(
            endpoint(net, &ep(Some("172.17.0.9"), &[])).err().as_deref(),
            Some(UNSUPPORTED_IP),
            "{net}"
        );
        assert_eq!(
            endpoint(net, &ep(None, &["a"])).err().as_deref(),
            Some(UNSUPPORTED_ALIAS),
            "{net}"
        );
        assert_eq!(endpoint(net, &ep(Some(""), &[])), Ok(()), "{net}");
    }
    assert_eq!(endpoint("mynet", &ep(Some("10.0.0.9"), &["a"])), Ok(()));
    let nc = NetworkingConfig {
        endpoints_config: Some(HashMap::from([
            ("mynet".to_string(), ep(None, &["a"])),
            ("bridge".to_string(), ep(None, &["b"])),
        ])),
    };
    assert_eq!(
        endpoints(Some(&nc)).err().as_deref(),
        Some(UNSUPPORTED_ALIAS)
    );
    assert_eq!(endpoints(None), Ok(()));
    assert!(wants_static_ip(Some(&ep(Some("10.0.0.9"), &[]))));
    assert!(!wants_static_ip(Some(&ep(Some(""), &[]))));
    assert!(!wants_static_ip(None));
    assert_eq!(mode_mac("host", None), "");
    let nc = NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            "host".to_string(),
            EndpointSettings {
                mac_address: Some("02:42:ac:11:00:0a".into()),
                ..Default::default()
            },
        )])),
    };
    assert_eq!(mode_mac("host", Some(&nc)), "02:42:ac:11:00:0a");
    assert_eq!(mode_mac("bridge", Some(&nc)), "");
}

#[test]
fn joined_namespaces_must_exist() {
    let exists = |c: &str| c == "web";
    let with = |net: &str, ipc: &str, pid: &str| HostConfig {
        network_mode: Some(net.into()),
        ipc_mode: Some(ipc.into()),
        pid_mode: Some(pid.into()),
        ..Default::default()
    };
    let own = Some("me");
    assert!(shared_namespaces(
        &with("container:web", "container:web", "container:web"),
        own,
        exists
    )
    .is_ok());
    assert!(shared_namespaces(&with("bridge", "private", "host"), own, exists).is_ok());
    let e = shared_namespaces(&with("container:me", "", ""), Some("/me"), exists).unwrap_err();
    assert_eq!(
        (e.kind(), e.to_string().as_str()),
        (ErrorKind::Invalid, "cannot join own network")
    );
    let cases = [
        (with("container:gone", "", ""), "No such container: gone"),
        (
            with("bridge", "container:gone", ""),
            "can't join IPC of container gone: No such container: gone",
        ),
        (
            with("bridge", "shareable", "container:gone"),
            "cannot join PID of a non running container: gone: No such container: gone",
        ),
        (
            HostConfig {
                uts_mode: Some("container:gone".into()),
                ..with("container:web", "container:web", "")
            },
            "can't join UTS of container gone: No such container: gone",
        ),
    ];
    for (h, want) in cases {
        let e = shared_namespaces(&h, own, exists).unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (ErrorKind::Invalid, want)
        );
    }
}

#[test]
fn connect_refuses_shared_and_private_namespaces() {
    let cases = [
        (
            "container:web",
            "bridge",
            "mynet",
            Some(CONFLICT_SHARED_NETWORK),
        ),
        ("bridge", "host", "host", Some(CONFLICT_HOST_NETWORK)),
        ("host", "bridge", "mynet", Some(CONFLICT_SHARED_NETWORK)),
        ("bridge", "null", "none", Some(CONFLICT_NO_NETWORK)),
        ("none", "bridge", "mynet", Some(CONFLICT_NO_NETWORK)),
        ("bridge", "bridge", "mynet", None),
        ("mynet", "bridge", "bridge", None),
    ];
    for (mode, driver, name, want) in cases {
        assert_eq!(
            connect(mode, driver, name).err().as_deref(),
            want,
            "{mode} → {name}"
        );
    }
}

#[test]
fn static_addresses_need_a_configured_subnet() {
    let with_ip = ep(Some("10.0.0.9"), &[]);
    assert_eq!(
        static_ip(true, Some(&with_ip)).err().as_deref(),
        Some(UNSUPPORTED_IP_NO_SUBNET)
    );
    assert_eq!(static_ip(false, Some(&with_ip)), Ok(()));
    assert_eq!(static_ip(true, Some(&ep(None, &["a"]))), Ok(()));
    let v6_only = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv6_address: Some("fd00::9".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(static_ip(true, Some(&v6_only)), Ok(()));
    // The create request marks the networks whose subnet berth picks, and only those.
    let req = |subnet: Option<&str>| berth_api_types::models::NetworkCreateRequest {
        name: "n".into(),
        ipam: subnet.map(|s| berth_api_types::models::Ipam {
            config: Some(vec![berth_api_types::models::IpamConfig {
                subnet: Some(s.into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let auto = crate::networks::network_config(&req(None)).unwrap();
    assert!(auto.options.contains_key(OPT_AUTO_SUBNET));
    let given = crate::networks::network_config(&req(Some("10.9.0.0/24"))).unwrap();
    assert!(!given.options.contains_key(OPT_AUTO_SUBNET));
    // Connect: shared namespaces first, then endpoint settings, then the subnet.
    let e = check_connect("container:web", "bridge", "bridge", true, Some(&with_ip)).unwrap_err();
    assert_eq!(
        (e.kind(), e.to_string().as_str()),
        (ErrorKind::Invalid, CONFLICT_SHARED_NETWORK)
    );
    let e = check_connect("bridge", "bridge", "bridge", false, Some(&with_ip)).unwrap_err();
    assert_eq!(e.to_string(), UNSUPPORTED_IP);
    let e = check_connect("bridge", "bridge", "mynet", true, Some(&with_ip)).unwrap_err();
    assert_eq!(e.to_string(), UNSUPPORTED_IP_NO_SUBNET);
    assert!(check_connect("bridge", "bridge", "mynet", false, Some(&with_ip)).is_ok());
    assert!(check_connect("bridge", "bridge", "mynet", true, None).is_ok());
    let e = check_disconnect("host", "host", true).unwrap_err();
    assert_eq!(e.to_string(), CONFLICT_HOST_NETWORK);
    assert!(check_disconnect("host", "host", false).is_ok());
    assert!(check_disconnect("bridge", "bridge", true).is_ok());
}

#[test]
fn published_ports_on_the_host_network_are_a_warning() {
    let ports = |mode: &str| HostConfig {
        port_bindings: Some(HashMap::from([("80/tcp".to_string(), None)])),
        ..hc(mode)
    };
    assert_eq!(
        warnings(&ports("host")),
        ["Published ports are discarded when using host network mode"]
    );
    assert!(warnings(&ports("bridge")).is_empty());
    assert!(warnings(&hc("host")).is_empty());
}
