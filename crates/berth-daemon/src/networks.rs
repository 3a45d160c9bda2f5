//! Networks in the engine: the network service's state ([`NetworkState`], which owns
//! berth-network's manager), berth-api-types' `NetworkService` over it (create, list, inspect,
//! remove, prune, hot-plug connect/disconnect of containers) and the hook that connects a
//! starting container to the extra networks its config names; the manager's options (default
//! bridge, its subnet, the nft table) from flags, daemon.json and env.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use berth_api_types::container_types::{EndpointIpam, EndpointMap};
use berth_api_types::models::{
    EventMessageTypeEnum, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use berth_api_types::network_service::{
    prune_labels_match, ConfigFrom, NetworkContainer, NetworkIpam, NetworkIpamConfig, NetworkView,
};
use berth_api_types::{ApiResult, ErrorKind, Filters, NetworkCreated, NetworkService};

use crate::error::{DaemonError, Result};
use berth_network::{Endpoint, EndpointConfig, NetworkConfig, NetworkInfo, NetworkManager};

use crate::containers::stored::EndpointSettings;
use crate::containers::validate_net::{check_connect, check_disconnect, OPT_AUTO_SUBNET};
use crate::containers::{lock, Ctr, Record};
use crate::engine::Engine;

/// The network service's state: berth-network's manager, opened on first use (opening makes
/// the default bridge and berth's nft table, which a daemon that never networks should not).
#[derive(Default)]
pub(crate) struct NetworkState {
    manager: tokio::sync::OnceCell<Arc<NetworkManager>>,
}

/// `10.10.0.1/24` (Docker's `bip`: the bridge address and prefix) → the subnet `10.10.0.0/24`.
fn bip_subnet(bip: &str) -> Result<String> {
    let bad = || {
        DaemonError::Invalid(format!(
            "invalid bip {bip:?}: expected an IPv4 address with prefix like 10.10.0.1/24"
        ))
    };
    let (ip, prefix) = bip.split_once('/').ok_or_else(bad)?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix: u32 = prefix.parse().map_err(|_| bad())?;
    if !(1..=30).contains(&prefix) {
        return Err(bad());
    }
    let mask = u32::MAX << (32 - prefix);
    Ok(format!(
        "{}/{prefix}",
        std::net::Ipv4Addr::from(u32::from(ip) & mask)
    ))
}

/// berth-network's manager options: for each of the default bridge, its subnet and the nft
/// table the first of the daemon's flags, daemon.json, then the environment `env`
/// (`BERTH_DEFAULT_BRIDGE`, `BERTH_DEFAULT_BRIDGE_SUBNET`, `BERTH_NFT_TABLE`), else berth's
/// defaults. A bridge named `none` means no default bridge, as in Docker.
pub(crate) fn manager_options(
    run_dir: std::path::PathBuf,
    flags: &crate::config::NetworkOptions,
    file: &crate::config::NetworkOptions,
    env: impl Fn(&str) -> Option<String>,
) -> Result<berth_network::ManagerOptions> {
    let mut opts = berth_network::ManagerOptions::new(run_dir);
    let pick = |a: &Option<String>, b: &Option<String>, var: &str| {
        a.clone()
            .or_else(|| b.clone())
            .or_else(|| env(var))
            .filter(|s| !s.is_empty())
    };
    if let Some(b) = pick(&flags.bridge, &file.bridge, "BERTH_DEFAULT_BRIDGE") {
        opts.default_bridge = (b != "none").then_some(b);
    }
    let subnet = match flags.bip.as_ref().or(file.bip.as_ref()) {
        Some(bip) => Some(bip_subnet(bip)?),
        None => env("BERTH_DEFAULT_BRIDGE_SUBNET").filter(|s| !s.is_empty()),
    };
    if let Some(n) = subnet {
        let net = n
            .parse()
            .map_err(|e| DaemonError::Invalid(format!("default bridge subnet {n:?}: {e}")))?;
        opts.default_bridge_candidates = vec![net];
    }
    if let Some(t) = pick(&flags.nft_table, &file.nft_table, "BERTH_NFT_TABLE") {
        opts.nft_table = t;
    }
    opts.firewall = flags.iptables.or(file.iptables).unwrap_or(true);
    Ok(opts)
}

/// A rootless daemon's host forwarder for published ports (refusing them all when its
/// slirp4netns did not start).
fn rootless_forward(
    cfg: &crate::config::DaemonConfig,
) -> Option<Arc<dyn berth_network::HostForward>> {
    let api = cfg.exec_root.join(berth_rootless::slirp::API_SOCKET);
    cfg.rootless.then(|| {
        Arc::new(crate::rootless_ports::SlirpForward {
            api: api.exists().then_some(api),
            port_start: berth_rootless::spawn::unprivileged_port_start(),
        }) as Arc<dyn berth_network::HostForward>
    })
}

/// Where the daemon's network namespace reaches the host's loopback resolvers: through
/// slirp4netns's DNS for a rootless daemon; None when its namespace is the host's.
fn loopback_resolver(cfg: &crate::config::DaemonConfig) -> Option<std::net::IpAddr> {
    cfg.rootless.then_some(berth_rootless::slirp::DNS)
}

/// The host's resolv.conf as the daemon's namespace can use it (`--network host` containers):
/// a rootless daemon's loopback resolvers read as slirp4netns's DNS.
pub(crate) fn host_resolv_conf(cfg: &crate::config::DaemonConfig) -> String {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    match loopback_resolver(cfg) {
        Some(via) => berth_network::files::loopback_resolvers_via(&text, via),
        None => text,
    }
}

/// Network options berth keeps for IPAM settings it records but does not act on.
const OPT_IPAM_PREFIX: &str = "berth.ipam.";
const OPT_IP_RANGE: &str = "berth.ipam.iprange";
const OPT_AUX: &str = "berth.ipam.aux.";
/// IPAM driver options as given (`--ipam-opt`), echoed by inspect.
const OPT_IPAM_OPT: &str = "berth.ipam.opt.";
/// The driver option that asks for IPv6 as `EnableIPv6` does.
const OPT_ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";

fn rfc3339(secs: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs as i64, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Docker's network inspect JSON for `info`.
pub(crate) fn network_json(info: &NetworkInfo) -> NetworkView {
    let n = &info.network;
    let mut config = vec![];
    if let Some(i) = &n.ipam {
        let aux: BTreeMap<String, String> = n
            .options
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(OPT_AUX)?.to_string(), v.clone())))
            .collect();
        config.push(NetworkIpamConfig {
            subnet: i.subnet.to_string(),
            gateway: i.gateway.to_string(),
            ip_range: n.options.get(OPT_IP_RANGE).cloned(),
            auxiliary_addresses: (!aux.is_empty()).then_some(aux),
        });
        if let (Some(s), Some(g)) = (i.subnet6, i.gateway6) {
            config.push(NetworkIpamConfig {
                subnet: s.to_string(),
                gateway: g.to_string(),
                ..Default::default()
            });
        }
    }
    let containers = info
        .endpoints
        .iter()
        .map(|e| {
            let c = NetworkContainer {
                name: e.name.trim_start_matches('/').to_string(),
                endpoint_id: e.veth_host.clone(),
                mac_address: e.mac.clone(),
                ipv4_address: format!("{}/{}", e.ip, e.prefix),
                ipv6_address: match (e.ipv6, e.prefix6) {
                    (Some(ip), Some(p)) => format!("{ip}/{p}"),
                    _ => String::new(),
                },
            };
            (e.container_id.clone(), c)
        })
        .collect();
    let mut options = n.options.clone();
    let ipam_options: BTreeMap<String, String> = options
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(OPT_IPAM_OPT)?.to_string(), v.clone())))
        .collect();
    options.retain(|k, _| !k.starts_with(OPT_IPAM_PREFIX));
    if let (Some(b), true) = (&n.bridge, n.is_default_bridge()) {
        options.insert("com.docker.network.bridge.name".to_string(), b.clone());
    }
    NetworkView {
        name: n.name.clone(),
        id: n.id.clone(),
        created: rfc3339(n.created),
        scope: "local".into(),
        driver: n.driver.clone(),
        enable_ipv4: n.ipam.is_some() || n.driver == "bridge",
        enable_ipv6: n.ipam.as_ref().is_some_and(|i| i.subnet6.is_some()),
        ipam: NetworkIpam {
            driver: "default".into(),
            options: (!ipam_options.is_empty()).then_some(ipam_options),
            config,
        },
        internal: n.internal,
        attachable: false,
        ingress: false,
        config_from: ConfigFrom::default(),
        config_only: false,
        containers,
        options,
        labels: n.labels.clone(),
    }
}

/// `IPAMConfig`, `Links` and `DriverOpts` of a container's endpoint on `network`, as the
/// container's stored `EndpointsConfig` asked for them (container inspect echoes them).
pub(crate) fn endpoint_settings(r: &Record, network: &str) -> EndpointAsked {
    let es = r
        .networking
        .as_ref()
        .and_then(|n| n.endpoints_config.as_ref())
        .and_then(|m| m.get(network));
    let Some(es) = es else {
        return (None, None, None);
    };
    let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let ipam = es.ipam_config.as_ref().map(|i| EndpointIpam {
        ipv4_address: given(&i.ipv4_address),
        ipv6_address: given(&i.ipv6_address),
        link_local_ips: i.link_local_ips.clone().filter(|v| !v.is_empty()),
    });
    (ipam, es.links.clone(), es.driver_opts.clone())
}

/// What a stored endpoint config asked for: `IPAMConfig`, `Links`, `DriverOpts`.
pub(crate) type EndpointAsked = (
    Option<EndpointIpam>,
    Option<Vec<String>>,
    Option<HashMap<String, String>>,
);

/// A container that is not running shows the networks its stored `EndpointsConfig` names
/// (set by create or by `network connect` while stopped), with what they asked for.
pub(crate) fn add_configured_networks(r: &Record, m: &mut EndpointMap) {
    let Some(eps) = r
        .networking
        .as_ref()
        .and_then(|n| n.endpoints_config.as_ref())
    else {
        return;
    };
    for (name, es) in eps {
        let (ipam, links, opts) = endpoint_settings(r, name);
        let entry = m.entry(name.clone()).or_default();
        entry.ipam_config = ipam;
        entry.links = links;
        entry.driver_opts = opts;
        entry.aliases = es.aliases.clone();
        entry.mac_address = es.mac_address.clone().unwrap_or_default();
    }
}

/// The create request as berth-network's config (first IPv4 and first IPv6 IPAM entry).
pub(crate) fn network_config(req: &NetworkCreateRequest) -> Result<NetworkConfig> {
    if req.name.trim().is_empty() {
        return Err(DaemonError::invalid("network name must not be empty"));
    }
    let driver = req.driver.clone().unwrap_or_default();
    let driver = if driver.is_empty() {
        "bridge".to_string()
    } else {
        driver
    };
    if driver != "bridge" {
        return Err(DaemonError::NotFound(format!(
            "plugin \"{driver}\" not found: berth supports the bridge driver"
        )));
    }
    let mut cfg = NetworkConfig {
        name: req.name.clone(),
        driver,
        internal: req.internal.unwrap_or(false),
        labels: req.labels.clone().unwrap_or_default().into_iter().collect(),
        options: req
            .options
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        ..Default::default()
    };
    for c in req
        .ipam
        .as_ref()
        .and_then(|i| i.config.clone())
        .unwrap_or_default()
    {
        let Some(subnet) = c.subnet.filter(|s| !s.is_empty()) else {
            if c.gateway.is_some() {
                return Err(DaemonError::invalid(
                    "invalid pool request: gateway given without a subnet",
                ));
            }
            continue;
        };
        if subnet.contains(':') {
            if cfg.ipv6_subnet.is_none() {
                cfg.ipv6_subnet = Some(subnet);
                cfg.ipv6_gateway = c.gateway;
            }
        } else if cfg.subnet.is_none() {
            cfg.subnet = Some(subnet);
            cfg.gateway = c.gateway;
            // Echoed by inspect; berth allocates from the whole subnet.
            if let Some(r) = c.ip_range.filter(|r| !r.is_empty()) {
                cfg.options.insert(OPT_IP_RANGE.into(), r);
            }
            for (k, v) in c.auxiliary_addresses.unwrap_or_default() {
                cfg.options.insert(format!("{OPT_AUX}{k}"), v);
            }
        }
    }
    if cfg.subnet.is_none() {
        cfg.options.insert(OPT_AUTO_SUBNET.into(), "true".into());
    }
    for (k, v) in req
        .ipam
        .as_ref()
        .and_then(|i| i.options.clone())
        .unwrap_or_default()
    {
        cfg.options.insert(format!("{OPT_IPAM_OPT}{k}"), v);
    }
    // The driver option `com.docker.network.enable_ipv6` is the same request as EnableIPv6
    // (Compose and older tools set it); a value that is not a boolean is refused.
    let opt_ipv6 = match req.options.as_ref().and_then(|o| o.get(OPT_ENABLE_IPV6)) {
        None => false,
        Some(v) => crate::go_parse::parse_bool(v).ok_or_else(|| {
            DaemonError::Invalid(format!(
                "invalid value for {OPT_ENABLE_IPV6}: {v:?} is not a boolean"
            ))
        })?,
    };
    if cfg.ipv6_subnet.is_some() && req.enable_ipv6 != Some(true) && !opt_ipv6 {
        return Err(DaemonError::invalid(
            "an IPv6 subnet was given but IPv6 is not enabled: pass --ipv6",
        ));
    }
    // Asked for IPv6 but given no prefix: refused rather than created IPv4-only.
    if cfg.ipv6_subnet.is_none() && (req.enable_ipv6 == Some(true) || opt_ipv6) {
        return Err(DaemonError::invalid(
            "IPv6 is enabled but no IPv6 subnet was given, and berth has no default IPv6 pool: \
             pass --subnet with an IPv6 prefix (e.g. fd00:1::/64)",
        ));
    }
    Ok(cfg)
}

/// The legacy links of an endpoint config (`name:alias`) as berth-network's
/// `(container name, alias)`; unparsable entries are left out.
pub(crate) fn endpoint_links(es: Option<&EndpointSettings>) -> Vec<(String, String)> {
    es.and_then(|e| e.links.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|l| crate::containers::parse_link(l).ok())
        .collect()
}

/// Aliases, links and static address an endpoint config asks for.
pub(crate) fn endpoint_config(r: &Record, es: Option<&EndpointSettings>) -> Result<EndpointConfig> {
    let mut aliases: Vec<String> = es.and_then(|e| e.aliases.clone()).unwrap_or_default();
    let hostname = r.config.hostname.clone().unwrap_or_default();
    if !hostname.is_empty() && !aliases.contains(&hostname) {
        aliases.push(hostname);
    }
    let ipam = es.and_then(|e| e.ipam_config.as_ref());
    let parse = |s: Option<&String>| -> Result<Option<IpAddr>> {
        match s.filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| DaemonError::Invalid(format!("invalid IP address {s:?}"))),
        }
    };
    Ok(EndpointConfig {
        container_id: r.id.clone(),
        name: r.name.clone(),
        aliases,
        ip: parse(ipam.and_then(|i| i.ipv4_address.as_ref()))?,
        ipv6: parse(ipam.and_then(|i| i.ipv6_address.as_ref()))?,
        mac: es
            .and_then(|e| e.mac_address.clone())
            .filter(|m| !m.is_empty()),
        links: endpoint_links(es),
    })
}

impl Engine {
    /// The network manager, opened on first use.
    pub(crate) async fn network(&self) -> Result<Arc<NetworkManager>> {
        let root = self.inner.cfg.root.join("network");
        let run = self.inner.cfg.exec_root.clone();
        self.inner
            .networks
            .manager
            .get_or_try_init(|| async move {
                let mut opts = manager_options(
                    run,
                    &self.inner.cfg.network,
                    &self.inner.file.network(),
                    |k| std::env::var(k).ok(),
                )?;
                opts.host_forward = rootless_forward(&self.inner.cfg);
                opts.loopback_resolver = loopback_resolver(&self.inner.cfg);
                NetworkManager::open(&root, opts)
                    .await
                    .map(Arc::new)
                    .map_err(|e| DaemonError::failed("open networks", e))
            })
            .await
            .cloned()
    }

    /// The network manager if it was opened already: teardown paths use it without opening
    /// networking only to find nothing to undo.
    pub(crate) fn network_if_open(&self) -> Option<Arc<NetworkManager>> {
        self.inner.networks.manager.get().cloned()
    }

    async fn net(&self) -> Result<Arc<NetworkManager>> {
        self.network().await
    }

    /// Connect a starting container (netns `ns`, already on `primary`) to every other network
    /// named in its `NetworkingConfig.EndpointsConfig`, as `docker network connect` on a
    /// stopped container asks. Returns the new endpoints; the caller's unwind disconnects them.
    pub(crate) async fn connect_extra_networks(
        &self,
        r: &Record,
        ns: &Path,
        primary: &str,
    ) -> Result<Vec<Endpoint>> {
        let Some(eps) = r
            .networking
            .as_ref()
            .and_then(|n| n.endpoints_config.as_ref())
        else {
            return Ok(vec![]);
        };
        let net = self.net().await?;
        let primary_id = net.inspect(primary).await.map(|i| i.network.id).ok();
        let mut names: Vec<&String> = eps.keys().collect();
        names.sort();
        let mut out = vec![];
        for name in names {
            let info = net.inspect(name).await.map_err(DaemonError::from)?;
            if Some(&info.network.id) == primary_id.as_ref() || info.network.ipam.is_none() {
                continue;
            }
            let cfg = endpoint_config(r, eps.get(name))?;
            out.push(
                net.connect(ns, name, cfg)
                    .await
                    .map_err(DaemonError::from)?,
            );
        }
        Ok(out)
    }

    fn remember_endpoint(ctr: &Ctr, network: &str, es: Option<EndpointSettings>) {
        let mut g = lock(&ctr.rec);
        let nc = g.networking.get_or_insert_with(Default::default);
        nc.endpoints_config
            .get_or_insert_with(HashMap::new)
            .insert(network.to_string(), es.unwrap_or_default());
    }

    fn forget_endpoint(ctr: &Ctr, network: &str) -> bool {
        let mut g = lock(&ctr.rec);
        g.networking
            .as_mut()
            .and_then(|n| n.endpoints_config.as_mut())
            .is_some_and(|m| m.remove(network).is_some())
    }

    fn network_event(&self, action: &str, id: &str, name: &str, container: Option<&str>) {
        let mut attrs = HashMap::new();
        attrs.insert("name".to_string(), name.to_string());
        attrs.insert("type".to_string(), "bridge".to_string());
        if let Some(c) = container {
            attrs.insert("container".to_string(), c.to_string());
        }
        self.inner
            .events
            .emit(EventMessageTypeEnum::NETWORK, action, id, attrs);
    }
}

#[async_trait]
impl NetworkService for Engine {
    #[tracing::instrument(skip_all, fields(network = %req.name))]
    async fn network_create(&self, req: NetworkCreateRequest) -> ApiResult<NetworkCreated> {
        let cfg = network_config(&req)?;
        let net = self.net().await?;
        let n = net.create_network(cfg).await.map_err(DaemonError::from)?;
        self.network_event("create", &n.id, &n.name, None);
        Ok(NetworkCreated {
            id: n.id,
            warning: String::new(),
        })
    }

    async fn network_list(&self) -> ApiResult<Vec<NetworkView>> {
        let net = self.net().await?;
        let mut out = vec![];
        for n in net.list().await {
            if let Ok(info) = net.inspect(&n.id).await {
                out.push(network_json(&info));
            }
        }
        Ok(out)
    }

    async fn network_inspect(&self, id: &str) -> ApiResult<NetworkView> {
        let net = self.net().await?;
        Ok(network_json(
            &net.inspect(id).await.map_err(DaemonError::from)?,
        ))
    }

    async fn network_remove(&self, id: &str) -> ApiResult<()> {
        let net = self.net().await?;
        let info = net.inspect(id).await.map_err(DaemonError::from)?;
        let n = &info.network;
        if n.predefined {
            return Err(DaemonError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            ))
            .into());
        }
        match net.remove_network(&n.id).await {
            Err(berth_network::Error::NetworkInUse { .. }) => Err(DaemonError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            ))
            .into()),
            Err(e) => Err(DaemonError::from(e).into()),
            Ok(()) => {
                self.network_event("destroy", &n.id, &n.name, None);
                Ok(())
            }
        }
    }

    #[tracing::instrument(skip_all, fields(network = %id, container_id = %req.container))]
    async fn network_connect(&self, id: &str, req: NetworkConnectRequest) -> ApiResult<()> {
        let net = self.net().await?;
        let info = net.inspect(id).await.map_err(DaemonError::from)?;
        let n = info.network;
        let ctr = self.inner.containers.get(&req.container)?;
        let _op = ctr.op.lock().await;
        let r = ctr.snapshot();
        check_connect(
            r.host_config.network_mode.as_deref().unwrap_or(""),
            &n.driver,
            &n.name,
            n.options.contains_key(OPT_AUTO_SUBNET),
            req.endpoint_config.as_ref(),
        )?;
        if n.ipam.is_none() {
            return Err(DaemonError::Forbidden(format!(
                "container cannot be disconnected from host network or connected to {} network",
                n.name
            ))
            .into());
        }
        let mode = r.host_config.network_mode.clone().unwrap_or_default();
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(DaemonError::Invalid(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (network mode {mode})"
            )).into());
        }
        if info.endpoints.iter().any(|e| e.container_id == r.id)
            || (!r.running()
                && r.networking
                    .as_ref()
                    .and_then(|x| x.endpoints_config.as_ref())
                    .is_some_and(|m| m.contains_key(&n.name) || m.contains_key(&n.id)))
        {
            return Err(DaemonError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                r.name, n.name
            ))
            .into());
        }
        let es: Option<EndpointSettings> = req.endpoint_config.clone().map(Into::into);
        if r.running() {
            let Some(ns) = r.netns.clone() else {
                return Err(DaemonError::Conflict(format!(
                    "container {} has no network namespace of its own",
                    r.id
                ))
                .into());
            };
            let cfg = endpoint_config(&r, es.as_ref())?;
            let ep = net
                .connect(&ns, &n.name, cfg)
                .await
                .map_err(DaemonError::from)?;
            lock(&ctr.rec).endpoints.push(ep);
        } else {
            // Validate the address now, as Docker does, rather than at start.
            endpoint_config(&r, es.as_ref())?;
        }
        Self::remember_endpoint(&ctr, &n.name, es);
        self.inner.containers.save(&ctr);
        self.network_event("connect", &n.id, &n.name, Some(&r.id));
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(network = %id, container_id = %req.container))]
    async fn network_disconnect(&self, id: &str, req: NetworkDisconnectRequest) -> ApiResult<()> {
        let net = self.net().await?;
        let info = net.inspect(id).await.map_err(DaemonError::from)?;
        let n = info.network;
        let ctr = match self.inner.containers.get(&req.container) {
            Ok(c) => c,
            Err(e) if req.force == Some(true) && e.kind() == ErrorKind::NotFound => {
                // Force: drop a stale endpoint of a container that no longer exists.
                return Ok(net
                    .disconnect(&req.container, &n.id)
                    .await
                    .map_err(DaemonError::from)?);
            }
            Err(e) => return Err(e.into()),
        };
        let _op = ctr.op.lock().await;
        let r = ctr.snapshot();
        check_disconnect(
            r.host_config.network_mode.as_deref().unwrap_or(""),
            &n.driver,
            r.running(),
        )?;
        let live = info.endpoints.iter().any(|e| e.container_id == r.id);
        let stored = Self::forget_endpoint(&ctr, &n.name) | Self::forget_endpoint(&ctr, &n.id);
        if live {
            net.disconnect(&r.id, &n.id)
                .await
                .map_err(DaemonError::from)?;
            let mut g = lock(&ctr.rec);
            g.endpoints.retain(|e| e.network_id != n.id);
        } else if !stored {
            let mode = r.host_config.network_mode.clone().unwrap_or_default();
            let default_mode = mode.is_empty() || mode == "default";
            if !(mode == n.name || (default_mode && n.is_default_bridge())) {
                return Err(DaemonError::Forbidden(format!(
                    "container {} is not connected to network {}",
                    r.id, n.name
                ))
                .into());
            }
        }
        self.inner.containers.save(&ctr);
        self.network_event("disconnect", &n.id, &n.name, Some(&r.id));
        Ok(())
    }

    async fn network_prune(&self, filters: &Filters) -> ApiResult<Vec<String>> {
        let net = self.net().await?;
        let until = match filters.get("until").first() {
            Some(u) => Some(parse_until(u)?),
            None => None,
        };
        let mut deleted = vec![];
        for n in net.list().await {
            if n.predefined {
                continue;
            }
            let labels: HashMap<String, String> = n.labels.clone().into_iter().collect();
            if !prune_labels_match(filters, &labels) || until.is_some_and(|u| n.created >= u) {
                continue;
            }
            let Ok(info) = net.inspect(&n.id).await else {
                continue;
            };
            if !info.endpoints.is_empty() {
                continue;
            }
            match net.remove_network(&n.id).await {
                Ok(()) => {
                    self.network_event("destroy", &n.id, &n.name, None);
                    deleted.push(n.name);
                }
                Err(e) => tracing::warn!(network = %n.name, error = %e, "prune network"),
            }
        }
        Ok(deleted)
    }
}

/// `until` as Docker takes it: unix seconds, RFC 3339, or a duration like `24h` before now.
fn parse_until(s: &str) -> Result<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Ok(n) = s.parse::<f64>() {
        return Ok(n as u64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp().max(0) as u64);
    }
    let (num, unit) = s.split_at(s.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let n: u64 = num
        .parse()
        .map_err(|_| DaemonError::InvalidFilter(format!("until={s}")))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(DaemonError::InvalidFilter(format!("until={s}"))),
    };
    Ok(now.saturating_sub(n * mult))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api_types::models::{Ipam, IpamConfig};

    fn req(name: &str, subnets: &[(&str, Option<&str>)]) -> NetworkCreateRequest {
        NetworkCreateRequest {
            name: name.into(),
            ipam: Some(Ipam {
                config: Some(
                    subnets
                        .iter()
                        .map(|(s, g)| IpamConfig {
                            subnet: Some(s.to_string()),
                            gateway: g.map(str::to_string),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn create_request_to_config() {
        let c = network_config(&req("n1", &[("10.9.0.0/24", Some("10.9.0.254"))])).unwrap();
        assert_eq!(c.driver, "bridge");
        assert_eq!(c.subnet.as_deref(), Some("10.9.0.0/24"));
        assert_eq!(c.gateway.as_deref(), Some("10.9.0.254"));
        let e = network_config(&req("n1", &[("fd00::/64", None)])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        let mut r6 = req("n1", &[("fd00::/64", None), ("10.9.0.0/24", None)]);
        r6.enable_ipv6 = Some(true);
        let c = network_config(&r6).unwrap();
        assert_eq!(c.ipv6_subnet.as_deref(), Some("fd00::/64"));
        assert_eq!(c.subnet.as_deref(), Some("10.9.0.0/24"));
        let mut bad = req("n1", &[]);
        bad.driver = Some("overlay".into());
        assert_eq!(
            network_config(&bad).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert!(network_config(&req(" ", &[])).is_err());
    }

    #[test]
    fn manager_options_precedence() {
        use crate::config::NetworkOptions;
        let run = std::path::PathBuf::from("/run/x");
        let none = NetworkOptions::default();
        let env = |k: &str| match k {
            "BERTH_DEFAULT_BRIDGE" => Some("envbr".to_string()),
            "BERTH_DEFAULT_BRIDGE_SUBNET" => Some("10.9.0.0/24".to_string()),
            "BERTH_NFT_TABLE" => Some("envtab".to_string()),
            _ => None,
        };
        let o = manager_options(run.clone(), &none, &none, |_| None).unwrap();
        assert_eq!(o.default_bridge.as_deref(), Some("berth0"));
        assert_eq!(o.nft_table, "berth");
        let o = manager_options(run.clone(), &none, &none, env).unwrap();
        assert_eq!(o.default_bridge.as_deref(), Some("envbr"));
        assert_eq!(o.default_bridge_candidates[0].to_string(), "10.9.0.0/24");
        assert_eq!(o.nft_table, "envtab");
        let file = NetworkOptions {
            bridge: Some("filebr".into()),
            bip: Some("10.20.30.1/24".into()),
            nft_table: None,
            iptables: Some(false),
        };
        let o = manager_options(run.clone(), &none, &file, env).unwrap();
        assert_eq!(o.default_bridge.as_deref(), Some("filebr"));
        assert!(!o.firewall, "daemon.json iptables:false");
        assert_eq!(o.default_bridge_candidates[0].to_string(), "10.20.30.0/24");
        assert_eq!(o.nft_table, "envtab");
        let flags = NetworkOptions {
            bridge: Some("none".into()),
            bip: None,
            nft_table: Some("flagtab".into()),
            iptables: Some(true),
        };
        let o = manager_options(run.clone(), &flags, &file, env).unwrap();
        assert_eq!(o.default_bridge, None);
        assert!(o.firewall, "the flag wins");
        assert_eq!(o.nft_table, "flagtab");
        let bad = NetworkOptions {
            bip: Some("10.0.0.1".into()),
            ..Default::default()
        };
        assert!(manager_options(run, &bad, &none, |_| None)
            .unwrap_err()
            .to_string()
            .contains("invalid bip"));
    }

    #[test]
    fn until_forms() {
        assert_eq!(parse_until("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_until("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        assert!(parse_until("5h").unwrap() > 0);
        assert!(parse_until("5 weeks").is_err());
    }
}
