//! The network manager the daemon drives: persistent networks and address allocations, bridge
//! and veth plumbing, published ports and the embedded DNS servers, each change planned from
//! state and then applied.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use ipnet::IpNet;
use rtnetlink::Handle;
use tokio::sync::Mutex;

use crate::dns::{DnsServer, SharedRecords};
use crate::error::{Error, Result};
use crate::files::{self, DnsOverrides, ResolvMode};
use crate::ipam;
use crate::model::*;
use crate::netlink;
use crate::nft;
use crate::ports::{self, ResKey, Reservation};
use crate::rules;
use crate::state::State;

mod derive;
mod publish;

use derive::{bridge_addrs, plan, records_for, subnets};

/// Bridge-name option Docker uses.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";

/// How the manager is set up; everything that names a host resource is a parameter.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// Runtime dir; named network namespaces go to `<run_dir>/netns/<container id>`.
    pub run_dir: PathBuf,
    /// berth's nft table (`table inet <name>`).
    pub nft_table: String,
    /// Device of the predefined "bridge" network; `None` creates no default bridge.
    pub default_bridge: Option<String>,
    /// Subnets tried in order for the default bridge (first not overlapping a host route).
    pub default_bridge_candidates: Vec<IpNet>,
    /// Pool user networks get subnets from.
    pub pool: Vec<IpNet>,
    /// The host's resolv.conf (source of upstream resolvers and of containers' resolv.conf).
    pub host_resolv_conf: PathBuf,
    /// Upstreams for the embedded DNS; `None` reads them from `host_resolv_conf`.
    pub dns_upstreams: Option<Vec<SocketAddr>>,
    /// Port of the embedded DNS on each user network's gateway (53).
    pub dns_port: u16,
    /// Set net.ipv4.ip_forward (and IPv6 forwarding) when a non-internal network exists.
    pub enable_ip_forward: bool,
    /// Test seam: awaited when an apply step (netlink work) begins, with the step's name.
    #[doc(hidden)]
    pub apply_hook: Option<ApplyHook>,
}

/// An async callback run at the start of each apply step ("create_network", "connect",
/// "disconnect"); tests hold a step in progress with it to observe the manager meanwhile.
#[derive(Clone)]
pub struct ApplyHook(pub Arc<dyn Fn(&'static str) -> BoxFuture<'static, ()> + Send + Sync>);

impl std::fmt::Debug for ApplyHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApplyHook")
    }
}

impl ManagerOptions {
    /// Docker-like defaults: table `berth`, default bridge `berth0` on 172.30.0.0/16.
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        ManagerOptions {
            run_dir: run_dir.into(),
            nft_table: "berth".into(),
            default_bridge: Some("berth0".into()),
            default_bridge_candidates: ipam::default_bridge_candidates(),
            pool: ipam::default_pool(),
            host_resolv_conf: "/etc/resolv.conf".into(),
            dns_upstreams: None,
            dns_port: 53,
            enable_ip_forward: true,
            apply_hook: None,
        }
    }
}

struct Inner {
    state: State,
    reservations: HashMap<ResKey, Reservation>,
    /// Network id → its records and servers (IPv4 gateway first, then IPv6 gateway).
    dns: HashMap<String, (SharedRecords, Vec<DnsServer>)>,
}

/// Owns berth's networks. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct NetworkManager {
    state_dir: PathBuf,
    opts: ManagerOptions,
    nl: Handle,
    inner: Mutex<Inner>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

fn new_id() -> String {
    (0..4).map(|_| format!("{:016x}", random_u64())).collect()
}

/// Docker accepts nearly any network name (docker-py creates "test 01"); berth keeps names that
/// start with a letter or digit, and refuses control characters and the two that would make a
/// name ambiguous in an API path or a `--network container:x` value.
fn valid_name(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphanumeric())
        && name.len() <= 128
        && c.all(|ch| !ch.is_control() && ch != '/' && ch != ':')
}

fn predefined(name: &str, driver: &str, bridge: Option<String>, ipam: Option<Ipam>) -> Network {
    Network {
        id: new_id(),
        name: name.into(),
        driver: driver.into(),
        bridge,
        ipam,
        internal: false,
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        created: now(),
        predefined: true,
    }
}

impl NetworkManager {
    /// Open (or initialise) the state under `state_dir`, make sure the predefined networks and
    /// every known bridge exist, start the embedded DNS servers and apply berth's nft table from
    /// the stored state. Call [`rebuild_rules`](Self::rebuild_rules) next with the containers
    /// that still run.
    pub async fn open(state_dir: &Path, opts: ManagerOptions) -> Result<Self> {
        let mut state = State::load(state_dir)?;
        let nl = netlink::connect().await?;
        if let Some(dev) = &opts.default_bridge {
            if state.network("bridge").is_none() {
                // The bridge may survive from an earlier daemon (or be shared with another
                // root): its own routes are what we are about to adopt, not a conflict.
                let own = netlink::link_index(&nl, dev).await?;
                let taken: Vec<IpNet> = netlink::route_prefixes(&nl, own)
                    .await?
                    .into_iter()
                    .chain(state.networks.iter().flat_map(subnets))
                    .collect();
                let subnet = ipam::pick_free_subnet(&opts.default_bridge_candidates, &taken)
                    .ok_or_else(|| Error::NoDefaultSubnet {
                        bridge: dev.clone(),
                        candidates: opts.default_bridge_candidates.clone(),
                    })?;
                let ipam = Ipam {
                    subnet,
                    gateway: ipam::default_gateway(&subnet),
                    subnet6: None,
                    gateway6: None,
                };
                state.networks.insert(
                    0,
                    predefined("bridge", "bridge", Some(dev.clone()), Some(ipam)),
                );
            }
        }
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if state.network(name).is_none() {
                state.networks.push(predefined(name, driver, None, None));
            }
        }
        state.save(state_dir)?;
        let mgr = NetworkManager {
            state_dir: state_dir.to_path_buf(),
            opts,
            nl,
            inner: Mutex::new(Inner {
                state,
                reservations: HashMap::new(),
                dns: HashMap::new(),
            }),
        };
        {
            let mut g = mgr.inner.lock().await;
            let nets = g.state.networks.clone();
            for n in &nets {
                mgr.ensure_bridge(n).await?;
                mgr.start_dns(&mut g, n).await;
            }
            let pubs = g.state.ports.clone();
            for p in &pubs {
                match ports::reserve(&p.mapping, p.container_ip, &[]) {
                    Ok((_, k, r)) => {
                        g.reservations.insert(k, r);
                    }
                    Err(e) => tracing::warn!(error = %e, "could not re-reserve published port"),
                }
            }
            mgr.apply_rules(&g.state).await?;
        }
        Ok(mgr)
    }

    /// Run the test hook, if any, as the apply step `step` begins.
    async fn hook(&self, step: &'static str) {
        if let Some(h) = &self.opts.apply_hook {
            (h.0)(step).await;
        }
    }

    async fn ensure_bridge(&self, n: &Network) -> Result<()> {
        let (Some(dev), Some(ipam)) = (&n.bridge, &n.ipam) else {
            return Ok(());
        };
        netlink::ensure_bridge(&self.nl, dev, &bridge_addrs(ipam)).await?;
        netlink::write_sysctl(&format!("net/ipv4/conf/{dev}/route_localnet"), "1");
        if self.opts.enable_ip_forward && !n.internal {
            netlink::write_sysctl("net/ipv4/ip_forward", "1");
            if ipam.subnet6.is_some() {
                netlink::write_sysctl("net/ipv6/conf/all/forwarding", "1");
            }
        }
        Ok(())
    }

    fn upstreams(&self) -> Vec<SocketAddr> {
        self.opts.dns_upstreams.clone().unwrap_or_else(|| {
            std::fs::read_to_string(&self.opts.host_resolv_conf)
                .map(|t| crate::dns::upstreams_from_resolv_conf(&t))
                .unwrap_or_default()
        })
    }

    async fn start_dns(&self, g: &mut Inner, n: &Network) {
        let (true, Some(ipam)) = (n.has_dns(), &n.ipam) else {
            return;
        };
        let records: SharedRecords = Arc::new(RwLock::new(records_for(&g.state, &n.id)));
        let mut servers = vec![];
        for gw in std::iter::once(ipam.gateway).chain(ipam.gateway6) {
            let bind = SocketAddr::new(gw, self.opts.dns_port);
            match DnsServer::start(bind, records.clone(), self.upstreams()).await {
                Ok(s) => servers.push(s),
                Err(e) => {
                    tracing::warn!(network = %n.name, %bind, error = %e, "embedded dns not started; containers fall back to the host's resolvers");
                }
            }
        }
        g.dns.insert(n.id.clone(), (records, servers));
    }

    fn refresh_dns(g: &Inner, network_id: &str) {
        if let Some((rec, _)) = g.dns.get(network_id) {
            *rec.write().unwrap_or_else(|p| p.into_inner()) = records_for(&g.state, network_id);
        }
    }

    async fn apply_rules(&self, st: &State) -> Result<()> {
        nft::apply(
            &self.opts.nft_table,
            &rules::render(&plan(&self.opts.nft_table, st)),
        )
        .await
    }

    /// The nft script berth's table currently should hold (for diagnostics and tests).
    pub async fn planned_rules(&self) -> String {
        let g = self.inner.lock().await;
        rules::render(&plan(&self.opts.nft_table, &g.state))
    }

    /// Create a bridge network (its device is created at once).
    #[tracing::instrument(skip_all, fields(network = %cfg.name))]
    pub async fn create_network(&self, cfg: NetworkConfig) -> Result<Network> {
        if !valid_name(&cfg.name) {
            return Err(Error::invalid(
                "network name",
                &cfg.name,
                "start with a letter or digit; no '/', ':' or control characters (at most 128 bytes)",
            ));
        }
        if !matches!(cfg.driver.as_str(), "" | "bridge") {
            return Err(Error::invalid(
                "driver",
                &cfg.driver,
                "only the bridge driver can create networks",
            ));
        }
        let mut g = self.inner.lock().await;
        if g.state.networks.iter().any(|n| n.name == cfg.name) {
            return Err(Error::NetworkExists(cfg.name));
        }
        let ours: Vec<(String, IpNet)> = g
            .state
            .networks
            .iter()
            .flat_map(|n| subnets(n).into_iter().map(move |s| (n.name.clone(), s)))
            .collect();
        let host: Vec<IpNet> = netlink::route_prefixes(&self.nl, None)
            .await?
            .into_iter()
            .filter(|r| !ours.iter().any(|(_, s)| s == r))
            .collect();
        let check = |subnet: &IpNet| -> Result<()> {
            if let Some((n, s)) = ours.iter().find(|(_, s)| ipam::overlaps(s, subnet)) {
                return Err(Error::SubnetOverlap {
                    name: cfg.name.clone(),
                    subnet: subnet.to_string(),
                    other: format!("{s} of network {n:?}"),
                });
            }
            if let Some(r) = host.iter().find(|r| ipam::overlaps(r, subnet)) {
                return Err(Error::SubnetOverlap {
                    name: cfg.name.clone(),
                    subnet: subnet.to_string(),
                    other: format!("host route {r}"),
                });
            }
            Ok(())
        };
        let subnet = match &cfg.subnet {
            Some(s) => {
                let net = ipam::parse_subnet(s)?;
                if !net.network().is_ipv4() {
                    return Err(Error::invalid("subnet", s, "use ipv6_subnet for IPv6"));
                }
                check(&net)?;
                net
            }
            None => {
                let taken: Vec<IpNet> = ours
                    .iter()
                    .map(|(_, s)| *s)
                    .chain(host.iter().copied())
                    .collect();
                ipam::pick_free_subnet(&self.opts.pool, &taken)
                    .ok_or_else(|| Error::PoolExhausted(cfg.name.clone()))?
            }
        };
        let gateway = match &cfg.gateway {
            Some(g) => g.parse().map_err(|e| Error::invalid("gateway", g, e))?,
            None => ipam::default_gateway(&subnet),
        };
        ipam::check_gateway(&subnet, gateway)?;
        let (subnet6, gateway6) = match &cfg.ipv6_subnet {
            Some(s) => {
                let net = ipam::parse_subnet(s)?;
                if net.network().is_ipv4() {
                    return Err(Error::invalid("ipv6 subnet", s, "not an IPv6 CIDR"));
                }
                check(&net)?;
                let gw = match &cfg.ipv6_gateway {
                    Some(g) => g
                        .parse()
                        .map_err(|e| Error::invalid("ipv6 gateway", g, e))?,
                    None => ipam::default_gateway(&net),
                };
                ipam::check_gateway(&net, gw)?;
                (Some(net), Some(gw))
            }
            None => (None, None),
        };
        let id = new_id();
        let bridge = cfg
            .options
            .get(OPT_BRIDGE_NAME)
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ']) {
            return Err(Error::invalid(
                "bridge name",
                &bridge,
                "must be 1-15 characters, no '/' or spaces",
            ));
        }
        if g.state
            .networks
            .iter()
            .any(|n| n.bridge.as_deref() == Some(&bridge))
            || netlink::link_index(&self.nl, &bridge).await?.is_some()
        {
            return Err(Error::invalid(
                "bridge name",
                &bridge,
                "a device with that name already exists",
            ));
        }
        let net = Network {
            id,
            name: cfg.name,
            driver: "bridge".into(),
            bridge: Some(bridge.clone()),
            ipam: Some(Ipam {
                subnet,
                gateway,
                subnet6,
                gateway6,
            }),
            internal: cfg.internal,
            labels: cfg.labels,
            options: cfg.options,
            created: now(),
            predefined: false,
        };
        self.ensure_bridge(&net).await?;
        g.state.networks.push(net.clone());
        let r = async {
            self.apply_rules(&g.state).await?;
            g.state.save(&self.state_dir)
        }
        .await;
        if let Err(e) = r {
            g.state.networks.pop();
            let _ = netlink::delete_link(&self.nl, &bridge).await;
            let _ = self.apply_rules(&g.state).await;
            return Err(e);
        }
        self.start_dns(&mut g, &net).await;
        tracing::info!(bridge = %bridge, %subnet, "network created");
        Ok(net)
    }

    /// Remove a user network; refused while containers are connected.
    pub async fn remove_network(&self, name_or_id: &str) -> Result<()> {
        let mut g = self.inner.lock().await;
        let net = g.state.get(name_or_id)?.clone();
        if net.predefined {
            return Err(Error::Predefined(net.name));
        }
        let count = g
            .state
            .endpoints
            .iter()
            .filter(|e| e.network_id == net.id)
            .count();
        if count > 0 {
            return Err(Error::NetworkInUse {
                name: net.name,
                count,
            });
        }
        g.dns.remove(&net.id);
        g.state.networks.retain(|n| n.id != net.id);
        g.state.last_ip.remove(&net.id);
        self.apply_rules(&g.state).await?;
        g.state.save(&self.state_dir)?;
        if let Some(dev) = &net.bridge {
            netlink::delete_link(&self.nl, dev).await?;
        }
        Ok(())
    }

    /// All networks, predefined first.
    pub async fn list(&self) -> Vec<Network> {
        self.inner.lock().await.state.networks.clone()
    }

    /// One network (by name, id or unique id prefix) with its endpoints.
    pub async fn inspect(&self, name_or_id: &str) -> Result<NetworkInfo> {
        let g = self.inner.lock().await;
        let network = g.state.get(name_or_id)?.clone();
        let endpoints = g
            .state
            .endpoints
            .iter()
            .filter(|e| e.network_id == network.id)
            .cloned()
            .collect();
        Ok(NetworkInfo { network, endpoints })
    }

    /// Remove every user network without endpoints; returns the removed names.
    pub async fn prune(&self) -> Result<Vec<String>> {
        let names: Vec<String> = {
            let g = self.inner.lock().await;
            g.state
                .networks
                .iter()
                .filter(|n| {
                    !n.predefined && !g.state.endpoints.iter().any(|e| e.network_id == n.id)
                })
                .map(|n| n.name.clone())
                .collect()
        };
        for n in &names {
            self.remove_network(n).await?;
        }
        Ok(names)
    }

    /// Path of the named netns of a container.
    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.opts.run_dir.join("netns").join(container_id)
    }

    /// Create the container's named network namespace (loopback up) and return its path.
    pub async fn create_netns(&self, container_id: &str) -> Result<PathBuf> {
        if container_id.is_empty() || container_id.contains('/') || container_id.starts_with('.') {
            return Err(Error::invalid(
                "container id",
                container_id,
                "must be a plain name",
            ));
        }
        let path = self.netns_path(container_id);
        netlink::create_netns(&path).await?;
        Ok(path)
    }

    /// Unmount and delete the container's netns (its veth ends vanish with it).
    pub async fn remove_netns(&self, container_id: &str) -> Result<()> {
        netlink::remove_netns(&self.netns_path(container_id))
    }

    /// Attach the namespace at `netns` to `network`: veth pair, address, default route (unless
    /// the network is internal), DNS name.
    #[tracing::instrument(skip_all, fields(container_id = %cfg.container_id, network))]
    pub async fn connect(
        &self,
        netns: &Path,
        network: &str,
        cfg: EndpointConfig,
    ) -> Result<Endpoint> {
        let mut g = self.inner.lock().await;
        let net = g.state.get(network)?.clone();
        let (Some(bridge), Some(ip_cfg)) = (net.bridge.clone(), net.ipam.clone()) else {
            return Err(Error::Predefined(net.name));
        };
        if g.state
            .endpoints
            .iter()
            .any(|e| e.network_id == net.id && e.container_id == cfg.container_id)
        {
            return Err(Error::AlreadyConnected {
                container: cfg.container_id,
                network: net.name,
            });
        }
        let used = g.state.used_ips(&net.id);
        let pick = |want: Option<IpAddr>,
                    subnet: IpNet,
                    gw: IpAddr,
                    last: Option<IpAddr>|
         -> Result<IpAddr> {
            match want {
                Some(ip) if !ipam::assignable(&subnet, gw, ip) => Err(Error::invalid(
                    "ip address",
                    ip,
                    format!("not a free host address of {subnet}"),
                )),
                Some(ip) if used.contains(&ip) => Err(Error::AddressInUse {
                    network: net.name.clone(),
                    ip,
                }),
                Some(ip) => Ok(ip),
                None => ipam::allocate(&subnet, gw, &used, last)
                    .ok_or_else(|| Error::PoolExhausted(net.name.clone())),
            }
        };
        let ip = pick(
            cfg.ip,
            ip_cfg.subnet,
            ip_cfg.gateway,
            g.state.last_ip.get(&net.id).copied(),
        )?;
        let ipv6 = match (ip_cfg.subnet6, ip_cfg.gateway6) {
            (Some(s), Some(gw)) => Some(pick(cfg.ipv6, s, gw, None)?),
            _ => None,
        };
        let mac = match &cfg.mac {
            Some(m) => ipam::parse_mac(m)?,
            None => ipam::mac_for(ip),
        };
        self.hook("connect").await;
        let bidx = netlink::ensure_bridge(&self.nl, &bridge, &bridge_addrs(&ip_cfg)).await?;
        let (host, peer) = loop {
            let tag = format!("{:08x}", random_u64() as u32);
            let (h, p) = (format!("vb{tag}"), format!("vp{tag}"));
            if netlink::link_index(&self.nl, &h).await?.is_none()
                && netlink::link_index(&self.nl, &p).await?.is_none()
            {
                break (h, p);
            }
        };
        netlink::create_veth(&self.nl, &host, &peer, bidx, netns).await?;
        let mut addrs = vec![(ip, ip_cfg.subnet.prefix_len())];
        let mut gws = vec![];
        if !net.internal {
            gws.push(ip_cfg.gateway);
        }
        if let (Some(v6), Some(s6)) = (ipv6, ip_cfg.subnet6) {
            addrs.push((v6, s6.prefix_len()));
            if !net.internal {
                gws.extend(ip_cfg.gateway6);
            }
        }
        let peer2 = peer.clone();
        let ifname = match netlink::in_netns(netns, move |h| async move {
            netlink::configure_container_if(&h, &peer2, mac, &addrs, &gws).await
        })
        .await
        {
            Ok(n) => n,
            Err(e) => {
                let _ = netlink::delete_link(&self.nl, &host).await;
                return Err(e);
            }
        };
        let ep = Endpoint {
            container_id: cfg.container_id,
            network_id: net.id.clone(),
            network: net.name.clone(),
            name: cfg.name,
            aliases: cfg.aliases,
            ip,
            prefix: ip_cfg.subnet.prefix_len(),
            gateway: ip_cfg.gateway,
            ipv6,
            prefix6: ip_cfg.subnet6.map(|s| s.prefix_len()),
            gateway6: ip_cfg.gateway6,
            mac: ipam::format_mac(&mac),
            veth_host: host.clone(),
            ifname,
            netns: netns.to_path_buf(),
            links: cfg.links,
        };
        g.state.endpoints.push(ep.clone());
        let prev_last = g.state.last_ip.insert(net.id.clone(), ip);
        if let Err(e) = g.state.save(&self.state_dir) {
            g.state.endpoints.pop();
            match prev_last {
                Some(l) => g.state.last_ip.insert(net.id.clone(), l),
                None => g.state.last_ip.remove(&net.id),
            };
            let _ = netlink::delete_link(&self.nl, &host).await;
            return Err(e);
        }
        Self::refresh_dns(&g, &net.id);
        tracing::info!(%ip, veth = %host, "connected");
        Ok(ep)
    }

    /// Detach a container from a network: its veth, DNS names and published ports on that
    /// address go away and the address is released.
    pub async fn disconnect(&self, container_id: &str, network: &str) -> Result<()> {
        let mut g = self.inner.lock().await;
        let net = g.state.get(network)?.clone();
        let pos = g
            .state
            .endpoints
            .iter()
            .position(|e| e.network_id == net.id && e.container_id == container_id)
            .ok_or_else(|| Error::EndpointNotFound {
                container: container_id.into(),
                network: net.name.clone(),
            })?;
        let ep = g.state.endpoints.remove(pos);
        let before = g.state.ports.len();
        let gone: Vec<Publication> = g
            .state
            .ports
            .iter()
            .filter(|p| p.container_ip == ep.ip || Some(p.container_ip) == ep.ipv6)
            .cloned()
            .collect();
        g.state.ports.retain(|p| !gone.contains(p));
        for p in &gone {
            g.reservations.remove(&ports::key(p));
        }
        if g.state.ports.len() != before {
            self.apply_rules(&g.state).await?;
        }
        g.state.save(&self.state_dir)?;
        netlink::delete_link(&self.nl, &ep.veth_host).await?;
        Self::refresh_dns(&g, &net.id);
        Ok(())
    }

    /// Endpoints of one container, in connection order.
    pub async fn endpoints(&self, container_id: &str) -> Vec<Endpoint> {
        let g = self.inner.lock().await;
        g.state
            .endpoints
            .iter()
            .filter(|e| e.container_id == container_id)
            .cloned()
            .collect()
    }

    /// On daemon start: forget endpoints and ports of containers not in `active` (their
    /// addresses are released, their veths deleted if still present) and re-create berth's
    /// table from what remains. `berth-user` keeps its rules.
    pub async fn rebuild_rules(&self, active: &[ActiveEndpoint]) -> Result<()> {
        let mut g = self.inner.lock().await;
        let alive = |id: &str| active.iter().any(|a| a.container_id == id);
        let (dead, live): (Vec<Endpoint>, Vec<Endpoint>) = g
            .state
            .endpoints
            .drain(..)
            .partition(|e| !alive(&e.container_id));
        g.state.endpoints = live;
        let (gone, keep): (Vec<Publication>, Vec<Publication>) = g
            .state
            .ports
            .drain(..)
            .partition(|p| !alive(&p.container_id));
        g.state.ports = keep;
        for p in &gone {
            g.reservations.remove(&ports::key(p));
        }
        for e in &dead {
            let _ = netlink::delete_link(&self.nl, &e.veth_host).await;
        }
        self.apply_rules(&g.state).await?;
        g.state.save(&self.state_dir)?;
        let ids: Vec<String> = g.dns.keys().cloned().collect();
        for id in ids {
            Self::refresh_dns(&g, &id);
        }
        Ok(())
    }

    /// The resolv.conf a container on `network` should get (Docker's rules, see [`files`]).
    pub async fn resolv_conf(&self, network: &str, ov: &DnsOverrides) -> Result<String> {
        let g = self.inner.lock().await;
        let net = g
            .state
            .network(network)
            .ok_or_else(|| Error::NetworkNotFound(network.into()))?;
        let host = std::fs::read_to_string(&self.opts.host_resolv_conf).unwrap_or_default();
        let gw4 = net.ipam.as_ref().map(|i| i.gateway);
        let dns_up = g
            .dns
            .get(&net.id)
            .is_some_and(|(_, s)| s.iter().any(|s| Some(s.local_addr().ip()) == gw4));
        let mode = match (&net.ipam, dns_up) {
            (Some(i), true) => ResolvMode::Embedded(i.gateway),
            (i, _) => ResolvMode::HostCopy {
                ipv6: i.as_ref().is_some_and(|i| i.subnet6.is_some()),
            },
        };
        Ok(files::resolv_conf(&host, &mode, ov))
    }

    /// Remove everything berth created in the host namespace: all bridges and berth's nft table
    /// (including `berth-user`), and stop the DNS servers. State and netns files are kept.
    pub async fn teardown(&self) -> Result<()> {
        let mut g = self.inner.lock().await;
        g.dns.clear();
        g.reservations.clear();
        for n in g.state.networks.clone() {
            if let Some(dev) = &n.bridge {
                netlink::delete_link(&self.nl, dev).await?;
            }
        }
        if nft::table_exists(&self.opts.nft_table).await? {
            nft::apply(
                &self.opts.nft_table,
                &rules::render_delete(&self.opts.nft_table),
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn network_names_as_permissive_as_docker_but_unambiguous() {
        for ok in ["test 01", "front", "a.b_c-d", "x!"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            " lead",
            "-x",
            "a/b",
            "container:x",
            "tab\there",
            &"n".repeat(129),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
