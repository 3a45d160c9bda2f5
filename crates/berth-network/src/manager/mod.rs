//! The network manager the daemon drives: persistent networks and address allocations, bridge
//! and veth plumbing, published ports and the embedded DNS servers, each change planned from
//! state and then applied.
//!
//! Every change runs in three steps: allocate under the state lock (the address, name or port
//! is held, so a concurrent change cannot take it), apply without the lock (netlink, nft,
//! fsync), then commit under the lock — or give the allocation back when the apply failed.
//! Reads (`list`, `inspect`, `endpoints`) never wait for netlink or nft work.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
mod endpoints;
mod networks;
mod publish;

use derive::{bridge_addrs, plan, records_for};
pub use publish::HostForward;

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
    /// Where this namespace reaches the host's loopback resolvers: a rootless daemon's
    /// slirp4netns DNS (10.0.2.3); its loopback `nameserver`s are read as that
    /// ([`files::loopback_resolvers_via`]). None: the namespace is the host's.
    pub loopback_resolver: Option<IpAddr>,
    /// Upstreams for the embedded DNS; `None` reads them from `host_resolv_conf`.
    pub dns_upstreams: Option<Vec<SocketAddr>>,
    /// Port of the embedded DNS on each user network's gateway (53).
    pub dns_port: u16,
    /// Set net.ipv4.ip_forward (and IPv6 forwarding) when a non-internal network exists.
    pub enable_ip_forward: bool,
    /// Program berth's nft table (NAT, published ports, isolation). `false` is dockerd's
    /// `--iptables=false`: no firewall rules at all, so no outbound NAT and no published
    /// ports (publishing is refused with a clear error instead of silently not working).
    pub firewall: bool,
    /// Test seam: awaited when an apply step (netlink work) begins, with the step's name.
    #[doc(hidden)]
    pub apply_hook: Option<ApplyHook>,
    /// Forwards published ports from the host into this namespace (a rootless daemon's
    /// user-mode network); None: the daemon's namespace is the host's.
    pub host_forward: Option<Arc<dyn HostForward>>,
}

/// An async callback run at the start of each apply step ("create_network", "connect", "veth"
/// (a connect's veth exists, not yet configured), "disconnect"); tests hold a step in progress
/// with it to observe the manager meanwhile.
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
            loopback_resolver: None,
            dns_upstreams: None,
            dns_port: 53,
            enable_ip_forward: true,
            firewall: true,
            apply_hook: None,
            host_forward: None,
        }
    }
}

struct Inner {
    /// What is committed (and, once `sync` ran, persisted and in force).
    state: State,
    reservations: HashMap<ResKey, Reservation>,
    /// Host forwards of published ports ([`HostForward`] handles).
    forwards: HashMap<ResKey, u64>,
    /// Network id → its records and servers (IPv4 gateway first, then IPv6 gateway).
    dns: HashMap<String, (SharedRecords, Vec<DnsServer>)>,
    /// Endpoints being connected or released: their addresses stay taken meanwhile.
    held: Vec<Held>,
    /// Networks being created or removed: their names, subnets and bridges stay taken.
    held_nets: Vec<Network>,
}

impl Inner {}

/// Where an endpoint that is not (or no longer) in the committed state stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Address allocated; veth being set up.
    Connecting,
    /// Removed from the state; veth being deleted.
    Releasing,
}

/// An endpoint between allocation and commit, or between removal and its veth's deletion.
#[derive(Debug, Clone)]
struct Held {
    container_id: String,
    network_id: String,
    ips: Vec<IpAddr>,
    /// Host end of its veth, set before the veth is created and kept until it is deleted.
    veth: Option<String>,
    phase: Phase,
}

impl Inner {
    /// Addresses taken on a network: committed endpoints and held ones.
    fn used_ips(&self, network_id: &str) -> BTreeSet<IpAddr> {
        let mut used = self.state.used_ips(network_id);
        used.extend(
            self.held
                .iter()
                .filter(|h| h.network_id == network_id)
                .flat_map(|h| h.ips.iter().copied()),
        );
        used
    }

    /// The phase of a held endpoint of `container_id` on `network_id`.
    fn held_phase(&self, container_id: &str, network_id: &str) -> Option<Phase> {
        self.held
            .iter()
            .find(|h| h.container_id == container_id && h.network_id == network_id)
            .map(|h| h.phase)
    }

    /// Take `pubs`' reservations (released outside the lock: proxies stop there) and their
    /// host forwards' handles (a rootless daemon's, to remove).
    fn take_ports(&mut self, pubs: &[Publication]) -> (Vec<Reservation>, Vec<u64>) {
        let mut res = Vec::new();
        let mut handles = Vec::new();
        for p in pubs {
            let k = ports::key(p);
            res.extend(self.reservations.remove(&k));
            handles.extend(self.forwards.remove(&k));
        }
        (res, handles)
    }

    fn unhold(&mut self, container_id: &str, network_id: &str) {
        self.held
            .retain(|h| !(h.container_id == container_id && h.network_id == network_id));
    }
}

/// What the last successful [`NetworkManager::sync`] put in force and on disk.
#[derive(Default)]
struct Written {
    script: Option<String>,
    saved: Option<Vec<u8>>,
}

/// Owns berth's networks. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct NetworkManager {
    state_dir: PathBuf,
    opts: ManagerOptions,
    nl: Handle,
    /// Held only for short, pure sections: never across netlink, nft or file I/O.
    inner: Mutex<Inner>,
    /// Serialises syncs (nft apply and state file writes), apart from the state lock.
    written: Mutex<Written>,
}

/// Run blocking work (fsync, mount calls) on tokio's blocking pool, off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking network task failed: {e}")))?
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

/// Docker accepts nearly any network name (docker-py creates "test 01", Compose projects
/// `_default`); berth keeps names that start with a letter, a digit or `_` (not a space or
/// a `-` a CLI would read as a flag), and refuses control characters and the two that would
/// make a name ambiguous in an API path or a `--network container:x` value.
fn valid_name(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphanumeric() || f == '_')
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
        let dir = state_dir.to_path_buf();
        let mut state = blocking(move || State::load(&dir)).await?;
        let nl = netlink::connect().await?;
        if let Some(dev) = &opts.default_bridge {
            if state.network("bridge").is_none() {
                // The bridge may survive from an earlier daemon (or be shared with another
                // root): its own routes are what we are about to adopt, not a conflict.
                let own = netlink::link_index(&nl, dev).await?;
                let taken: Vec<IpNet> = netlink::route_prefixes(&nl, own)
                    .await?
                    .into_iter()
                    .chain(state.networks.iter().flat_map(derive::subnets))
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
        let bytes = state.to_bytes(state_dir)?;
        let (dir, b) = (state_dir.to_path_buf(), bytes.clone());
        blocking(move || State::write(&dir, &b)).await?;
        let nets = state.networks.clone();
        let mgr = NetworkManager {
            state_dir: state_dir.to_path_buf(),
            opts,
            nl,
            inner: Mutex::new(Inner {
                state,
                reservations: HashMap::new(),
                forwards: HashMap::new(),
                dns: HashMap::new(),
                held: vec![],
                held_nets: vec![],
            }),
            written: Mutex::new(Written {
                script: None,
                saved: Some(bytes),
            }),
        };
        for n in &nets {
            mgr.ensure_bridge(n).await?;
            mgr.start_dns(n).await;
        }
        // After the bridges: a port published on a gateway address binds only once the
        // bridge has that address.
        {
            let mut g = mgr.inner.lock().await;
            let pubs = g.state.ports.clone();
            for p in &pubs {
                // IPv6 ports come back with their proxies.
                match ports::restore(p) {
                    Ok((k, r)) => {
                        g.reservations.insert(k, r);
                    }
                    Err(e) => tracing::warn!(error = %e, "could not re-reserve published port"),
                }
            }
        }
        mgr.sync(true).await?;
        Ok(mgr)
    }

    /// Run the test hook, if any, as the apply step `step` begins.
    async fn hook(&self, step: &'static str) {
        if let Some(h) = &self.opts.apply_hook {
            (h.0)(step).await;
        }
    }

    /// Bring berth's nft table and the state file in line with the in-memory state, without
    /// holding the state lock. Syncs run one at a time and each renders the newest state, so
    /// whatever order callers arrive in, the last one leaves the newest rules and file; a sync
    /// finding its work already done (same script, same bytes) does nothing. `force_rules`
    /// re-applies the table even when the script did not change.
    async fn sync(&self, force_rules: bool) -> Result<()> {
        let mut w = self.written.lock().await;
        let (script, bytes) = {
            let g = self.inner.lock().await;
            (
                rules::render(&plan(&self.opts.nft_table, &g.state)),
                g.state.to_bytes(&self.state_dir)?,
            )
        };
        // With --iptables=false (`firewall` off) the table is never written.
        let changed = force_rules || w.script.as_deref() != Some(script.as_str());
        if self.opts.firewall && changed {
            nft::apply(&self.opts.nft_table, &script).await?;
            w.script = Some(script);
        }
        if w.saved.as_deref() != Some(bytes.as_slice()) {
            let (dir, b) = (self.state_dir.clone(), bytes.clone());
            blocking(move || State::write(&dir, &b)).await?;
            w.saved = Some(bytes);
        }
        Ok(())
    }

    async fn ensure_bridge(&self, n: &Network) -> Result<()> {
        let (Some(dev), Some(ipam)) = (&n.bridge, &n.ipam) else {
            return Ok(());
        };
        netlink::ensure_bridge(&self.nl, dev, &bridge_addrs(ipam)).await?;
        let mut knobs = vec![format!("net/ipv4/conf/{dev}/route_localnet")];
        if self.opts.enable_ip_forward && !n.internal {
            knobs.push("net/ipv4/ip_forward".into());
            if ipam.subnet6.is_some() {
                knobs.push("net/ipv6/conf/all/forwarding".into());
            }
        }
        // Blocking /proc writes, on a pool thread that shares the host netns like the workers.
        blocking(move || {
            for k in &knobs {
                netlink::write_sysctl(k, "1");
            }
            Ok(())
        })
        .await
    }

    /// The host's resolv.conf, read on the blocking pool (empty when unreadable), its
    /// loopback resolvers read as [`ManagerOptions::loopback_resolver`] when set.
    async fn host_resolv_conf(&self) -> String {
        let path = self.opts.host_resolv_conf.clone();
        let text = blocking(move || Ok(std::fs::read_to_string(path).unwrap_or_default()))
            .await
            .unwrap_or_default();
        match self.opts.loopback_resolver {
            Some(via) => files::loopback_resolvers_via(&text, via),
            None => text,
        }
    }

    async fn upstreams(&self) -> Vec<SocketAddr> {
        match &self.opts.dns_upstreams {
            Some(u) => u.clone(),
            None => crate::dns::upstreams_from_resolv_conf(&self.host_resolv_conf().await),
        }
    }

    /// Start the embedded DNS of a user network. Its records are registered first (so
    /// connects meanwhile update them), the servers bound after, outside the lock.
    async fn start_dns(&self, n: &Network) {
        let (true, Some(ipam)) = (n.has_dns(), &n.ipam) else {
            return;
        };
        let records: SharedRecords = {
            let mut g = self.inner.lock().await;
            let records = Arc::new(RwLock::new(records_for(&g.state, &n.id)));
            g.dns.insert(n.id.clone(), (records.clone(), vec![]));
            records
        };
        let upstreams = self.upstreams().await;
        let mut servers = vec![];
        for gw in std::iter::once(ipam.gateway).chain(ipam.gateway6) {
            let bind = SocketAddr::new(gw, self.opts.dns_port);
            match DnsServer::start(bind, records.clone(), upstreams.clone()).await {
                Ok(s) => servers.push(s),
                Err(e) => {
                    tracing::warn!(network = %n.name, %bind, error = %e, "embedded dns not started; containers fall back to the host's resolvers");
                }
            }
        }
        // A network removed meanwhile has no entry: its servers are dropped (stopped) here.
        if let Some((_, s)) = self.inner.lock().await.dns.get_mut(&n.id) {
            *s = servers;
        }
    }

    fn refresh_dns(g: &Inner, network_id: &str) {
        if let Some((rec, _)) = g.dns.get(network_id) {
            *rec.write().unwrap_or_else(|p| p.into_inner()) = records_for(&g.state, network_id);
        }
    }

    /// The nft script berth's table currently should hold (for diagnostics and tests).
    pub async fn planned_rules(&self) -> String {
        let g = self.inner.lock().await;
        rules::render(&plan(&self.opts.nft_table, &g.state))
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

    /// Host veths the manager owns: those of committed endpoints and of connects and
    /// disconnects in progress. A veth on one of berth's bridges is named here from just
    /// before it is created until it is deleted, so a veth seen on a bridge *before* calling
    /// this and missing from the answer belongs to nobody.
    pub async fn veths(&self) -> BTreeSet<String> {
        let g = self.inner.lock().await;
        g.state
            .endpoints
            .iter()
            .map(|e| e.veth_host.clone())
            .chain(g.held.iter().filter_map(|h| h.veth.clone()))
            .collect()
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
        let path = self.netns_path(container_id);
        blocking(move || netlink::remove_netns(&path)).await
    }

    /// On daemon start: forget endpoints and ports of containers not in `active` (their
    /// addresses are released, their veths deleted if still present) and re-create berth's
    /// table from what remains. `berth-user` keeps its rules.
    pub async fn rebuild_rules(&self, active: &[ActiveEndpoint]) -> Result<()> {
        let (dead, released) = {
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
            let (released, handles) = g.take_ports(&gone);
            self.unforward(handles);
            for id in g.dns.keys() {
                Self::refresh_dns(&g, id);
            }
            (dead, released)
        };
        ports::release_all(released).await;
        for e in &dead {
            let _ = netlink::delete_link(&self.nl, &e.veth_host).await;
        }
        self.sync(true).await
    }

    /// The resolv.conf a container on `network` should get (Docker's rules, see [`files`]).
    pub async fn resolv_conf(&self, network: &str, ov: &DnsOverrides) -> Result<String> {
        let (net, dns_up) = {
            let g = self.inner.lock().await;
            let net = g
                .state
                .network(network)
                .ok_or_else(|| Error::NetworkNotFound(network.into()))?
                .clone();
            let gw4 = net.ipam.as_ref().map(|i| i.gateway);
            let dns_up = g
                .dns
                .get(&net.id)
                .is_some_and(|(_, s)| s.iter().any(|s| Some(s.local_addr().ip()) == gw4));
            (net, dns_up)
        };
        let host = self.host_resolv_conf().await;
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
        let mut w = self.written.lock().await;
        let (nets, res) = {
            let mut g = self.inner.lock().await;
            g.dns.clear();
            let res: Vec<Reservation> = g.reservations.drain().map(|(_, r)| r).collect();
            let handles: Vec<u64> = g.forwards.drain().map(|(_, h)| h).collect();
            self.unforward(handles);
            (g.state.networks.clone(), res)
        };
        ports::release_all(res).await;
        for n in nets {
            if let Some(dev) = &n.bridge {
                netlink::delete_link(&self.nl, dev).await?;
            }
        }
        w.script = None;
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
        for ok in ["test 01", "front", "a.b_c-d", "x!", "_x", "__"] {
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
