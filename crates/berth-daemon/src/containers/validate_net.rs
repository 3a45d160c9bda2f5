//! Network settings a create (or `network connect`) must refuse, with dockerd's messages
//! (moby `runconfig.validateNetMode`/`validateNetContainerMode`, `validateNetworkingConfig`,
//! `getNetworkedContainer`, `getIpcContainer`, `getPidContainer`): options that a shared
//! network namespace (`container:<id>`, `host`) cannot honour, per-network aliases and static
//! addresses on the predefined networks, and namespaces of containers that do not exist. The
//! checks are pure; which containers exist comes in as a lookup.

use crate::error::DaemonError;
use berth_api_types::models::{ContainerCreateBody, EndpointSettings, NetworkingConfig};

use super::stored::HostConfig;
use crate::engine::Engine;

/// The network option marking a network whose subnet berth picked (hidden from inspect with
/// the other `berth.ipam.` options); absent on older networks, which keep accepting `--ip`.
pub const OPT_AUTO_SUBNET: &str = "berth.ipam.auto-subnet";

/// `--hostname` with `--network container:<id>`.
pub const CONFLICT_HOSTNAME: &str = "conflicting options: hostname and the network mode";
/// `--link` with `--network container:<id>`.
pub const CONFLICT_CONTAINER_LINKS: &str = "conflicting options: container type network can't be used with links. This would result in undefined behavior";
/// `--link` with `--network host`.
pub const CONFLICT_HOST_LINKS: &str = "conflicting options: host type networking can't be used with links. This would result in undefined behavior";
/// `--dns` with `--network container:<id>`.
pub const CONFLICT_DNS: &str = "conflicting options: dns and the network mode";
/// `--add-host` with `--network container:<id>`.
pub const CONFLICT_HOSTS: &str =
    "conflicting options: custom host-to-IP mapping and the network mode";
/// `--mac-address` with `--network container:<id>` or `host`.
pub const CONFLICT_MAC: &str = "conflicting options: mac-address and the network mode";
/// `-p`/`-P` with `--network container:<id>`.
pub const CONFLICT_PUBLISH: &str =
    "conflicting options: port publishing and the container type network mode";
/// `--expose` with `--network container:<id>`.
pub const CONFLICT_EXPOSE: &str =
    "conflicting options: port exposing and the container type network mode";
/// `--hostname` with `--uts host` or `--uts container:<x>`.
pub const CONFLICT_UTS_HOSTNAME: &str = "conflicting options: hostname and the UTS mode";
/// `--ip`/`--ip6` on bridge, host or none.
pub const UNSUPPORTED_IP: &str =
    "user specified IP address is supported on user defined networks only";
/// `--ip`/`--ip6` on a network whose subnet berth picked.
pub const UNSUPPORTED_IP_NO_SUBNET: &str = "user specified IP address is supported only when connecting to networks with user configured subnets";
/// `--network-alias` on bridge, host or none.
pub const UNSUPPORTED_ALIAS: &str =
    "network-scoped alias is supported only for containers in user defined networks";
/// `network connect` of a container sharing another's (or the host's) network namespace.
pub const CONFLICT_SHARED_NETWORK: &str = "container sharing network namespace with another container or host cannot be connected to any other network";
/// `network connect` to (or `disconnect` of a host-mode container from) the host network.
pub const CONFLICT_HOST_NETWORK: &str =
    "container cannot be disconnected from host network or connected to host network";
/// `network connect` that would put a container on `none` and another network.
pub const CONFLICT_NO_NETWORK: &str = "container cannot be connected to multiple networks with one of the networks in private (none) mode";

/// The container a `container:<name|id>` mode names (None for other modes).
fn container_of(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

/// Docker's `NetworkMode.IsUserDefined`: not bridge, host, none, default or `container:`.
pub fn is_user_defined(network: &str) -> bool {
    !matches!(network, "" | "default" | "bridge" | "host" | "none")
        && container_of(network).is_none()
}

fn non_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// Every network check of a create, in dockerd's order: mode conflicts (400), endpoint
/// settings, then the containers whose namespaces it joins (`exists` looks them up); all 400.
pub fn check_create(
    c: &ContainerCreateBody,
    h: &HostConfig,
    top_mac: &str,
    own_name: Option<&str>,
    exists: impl Fn(&str) -> bool,
) -> Result<(), DaemonError> {
    let mode = h.network_mode.as_deref().unwrap_or("");
    let networking = c.networking_config.as_ref();
    let mac = if top_mac.is_empty() {
        mode_mac(mode, networking)
    } else {
        top_mac
    };
    net_mode(c, h, mac).map_err(DaemonError::invalid)?;
    endpoints(networking).map_err(DaemonError::invalid)?;
    shared_namespaces(h, own_name, exists)
}

/// The network-mode conflicts of a create, in dockerd's order. `mac` is the container-wide
/// MAC address (API < 1.44) or, for newer clients, the one given for the mode's endpoint.
pub fn net_mode(c: &ContainerCreateBody, h: &HostConfig, mac: &str) -> Result<(), String> {
    let mode = h.network_mode.as_deref().unwrap_or("");
    let hostname = !c.hostname.as_deref().unwrap_or("").is_empty();
    if let Some(other) = container_of(mode) {
        if other.is_empty() {
            return Err(
                "Invalid network mode: invalid container format container:<name|id>".into(),
            );
        }
        let published = h.port_bindings.as_ref().is_some_and(|p| !p.is_empty())
            || h.publish_all_ports.unwrap_or(false);
        let checks = [
            (hostname, CONFLICT_HOSTNAME),
            (non_empty(&h.links), CONFLICT_CONTAINER_LINKS),
            (non_empty(&h.dns), CONFLICT_DNS),
            (non_empty(&h.extra_hosts), CONFLICT_HOSTS),
            (!mac.is_empty(), CONFLICT_MAC),
            (published, CONFLICT_PUBLISH),
            (non_empty(&c.exposed_ports), CONFLICT_EXPOSE),
        ];
        if let Some((_, m)) = checks.iter().find(|(bad, _)| *bad) {
            return Err(m.to_string());
        }
    }
    if mode == "host" && !mac.is_empty() {
        return Err(CONFLICT_MAC.into());
    }
    let uts = h.uts_mode.as_deref().unwrap_or("");
    if (uts == "host" || container_of(uts).is_some()) && hostname {
        return Err(CONFLICT_UTS_HOSTNAME.into());
    }
    if mode == "host" && non_empty(&h.links) {
        return Err(CONFLICT_HOST_LINKS.into());
    }
    Ok(())
}

/// dockerd's create warnings about network settings it will not apply.
pub fn warnings(h: &HostConfig) -> Vec<String> {
    let published = h.port_bindings.as_ref().is_some_and(|p| !p.is_empty());
    if h.network_mode.as_deref() == Some("host") && published {
        return vec!["Published ports are discarded when using host network mode".into()];
    }
    vec![]
}

/// The MAC address a create asks for on its network mode's own endpoint.
pub fn mode_mac<'a>(mode: &str, networking: Option<&'a NetworkingConfig>) -> &'a str {
    networking
        .and_then(|n| n.endpoints_config.as_ref())
        .and_then(|m| m.get(mode))
        .and_then(|e| e.mac_address.as_deref())
        .unwrap_or("")
}

/// Aliases and static addresses only work on user-defined networks (`network` as named in
/// the request: bridge, host, none and `container:` modes are not).
pub fn endpoint(network: &str, es: &EndpointSettings) -> Result<(), String> {
    if is_user_defined(network) {
        return Ok(());
    }
    let given = |v: Option<&String>| v.is_some_and(|s| !s.is_empty());
    let ipam = es.ipam_config.as_ref();
    if given(ipam.and_then(|i| i.ipv4_address.as_ref()))
        || given(ipam.and_then(|i| i.ipv6_address.as_ref()))
    {
        return Err(UNSUPPORTED_IP.into());
    }
    if non_empty(&es.aliases) {
        return Err(UNSUPPORTED_ALIAS.into());
    }
    Ok(())
}

/// [`endpoint`] for every endpoint of a create's networking config.
pub fn endpoints(networking: Option<&NetworkingConfig>) -> Result<(), String> {
    let mut eps: Vec<_> = networking
        .and_then(|n| n.endpoints_config.as_ref())
        .into_iter()
        .flatten()
        .collect();
    eps.sort_by(|a, b| a.0.cmp(b.0));
    eps.into_iter()
        .try_for_each(|(name, es)| endpoint(name, es))
}

/// Whether `es` asks for a static address (`--ip`, `--ip6`).
pub fn wants_static_ip(es: Option<&EndpointSettings>) -> bool {
    let ipam = es.and_then(|e| e.ipam_config.as_ref());
    [
        ipam.and_then(|i| i.ipv4_address.as_deref()),
        ipam.and_then(|i| i.ipv6_address.as_deref()),
    ]
    .iter()
    .any(|a| a.is_some_and(|a| !a.is_empty()))
}

/// The network, IPC, PID and UTS namespaces a create joins (`container:<name|id>`) must belong
/// to other, existing containers: dockerd's texts ("cannot join own network", "No such
/// container"), refused at create so nothing is left behind. A 400, not dockerd's 404 at
/// start: the docker CLI reads a 404 from create as a missing image and pulls. `own_name`
/// is the name the create asks for.
pub fn shared_namespaces(
    h: &HostConfig,
    own_name: Option<&str>,
    exists: impl Fn(&str) -> bool,
) -> Result<(), DaemonError> {
    let own = own_name.map(|n| n.trim_start_matches('/'));
    if let Some(c) = h.network_mode.as_deref().and_then(container_of) {
        if Some(c.trim_start_matches('/')) == own {
            return Err(DaemonError::invalid("cannot join own network"));
        }
    }
    let no_such = |c: &str| format!("No such container: {c}");
    let modes = [
        (h.network_mode.as_deref(), ""),
        (h.ipc_mode.as_deref(), "can't join IPC of container "),
        (
            h.pid_mode.as_deref(),
            "cannot join PID of a non running container: ",
        ),
        (h.uts_mode.as_deref(), "can't join UTS of container "),
    ];
    for (mode, prefix) in modes {
        let Some(c) = mode.and_then(container_of).filter(|c| !c.is_empty()) else {
            continue;
        };
        if !exists(c) {
            let m = if prefix.is_empty() {
                no_such(c)
            } else {
                format!("{prefix}{c}: {}", no_such(c))
            };
            return Err(DaemonError::invalid(m));
        }
    }
    Ok(())
}

/// What `network connect` must refuse, before anything is attached: the container's own
/// network `mode` and the target network's driver (`bridge`, `host` or `null`) and name.
pub fn connect(mode: &str, driver: &str, name: &str) -> Result<(), String> {
    if container_of(mode).is_some() {
        return Err(CONFLICT_SHARED_NETWORK.into());
    }
    if mode != "host" && driver == "host" {
        return Err(CONFLICT_HOST_NETWORK.into());
    }
    if mode == "host" || driver == "host" {
        return Err(CONFLICT_SHARED_NETWORK.into());
    }
    if mode == "none" || name == "none" {
        return Err(CONFLICT_NO_NETWORK.into());
    }
    Ok(())
}

/// A static IPv4 address needs a subnet the user chose (`auto_subnet`: berth picked the
/// IPv4 subnet; an IPv6 subnet is always the user's).
pub fn static_ip(auto_subnet: bool, es: Option<&EndpointSettings>) -> Result<(), String> {
    let v4 = es
        .and_then(|e| e.ipam_config.as_ref())
        .and_then(|i| i.ipv4_address.as_deref());
    if auto_subnet && v4.is_some_and(|a| !a.is_empty()) {
        return Err(UNSUPPORTED_IP_NO_SUBNET.into());
    }
    Ok(())
}

/// What `network connect` must refuse, in dockerd's order: a shared namespace, the endpoint
/// settings ([`endpoint`], [`static_ip`]), then the namespaces [`connect`] cannot mix.
pub fn check_connect(
    mode: &str,
    driver: &str,
    name: &str,
    auto_subnet: bool,
    es: Option<&EndpointSettings>,
) -> Result<(), DaemonError> {
    let checks = || {
        if container_of(mode).is_some() {
            return Err(CONFLICT_SHARED_NETWORK.to_string());
        }
        es.map_or(Ok(()), |es| endpoint(name, es))?;
        static_ip(auto_subnet, es)?;
        connect(mode, driver, name)
    };
    checks().map_err(DaemonError::invalid)
}

/// A running container on the host's network namespace cannot leave it.
pub fn check_disconnect(mode: &str, driver: &str, running: bool) -> Result<(), DaemonError> {
    if running && mode == "host" && driver == "host" {
        return Err(DaemonError::invalid(CONFLICT_HOST_NETWORK));
    }
    Ok(())
}

impl Engine {
    /// [`static_ip`] for each user network a create asks a static address on (networks that
    /// do not exist are left to start, which names them).
    pub(crate) async fn check_static_ips(
        &self,
        nc: Option<&NetworkingConfig>,
    ) -> crate::error::Result<()> {
        let mut eps: Vec<_> = nc
            .and_then(|n| n.endpoints_config.as_ref())
            .into_iter()
            .flatten()
            .filter(|(name, es)| is_user_defined(name) && wants_static_ip(Some(es)))
            .collect();
        if eps.is_empty() {
            return Ok(());
        }
        eps.sort_by(|a, b| a.0.cmp(b.0));
        let net = self.network().await?;
        for (name, es) in eps {
            if let Ok(info) = net.inspect(name).await {
                let auto = info.network.options.contains_key(OPT_AUTO_SUBNET);
                static_ip(auto, Some(es)).map_err(DaemonError::invalid)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "validate_net_tests.rs"]
mod tests;
