//! Creating and removing bridge networks: the name, subnet and bridge are held under the state
//! lock, the bridge is made or deleted without it, and the change is committed (or given back).

use std::net::IpAddr;

use ipnet::IpNet;

use super::{derive::subnets, new_id, now, valid_name, Inner, NetworkManager, OPT_BRIDGE_NAME};
use crate::error::{Error, Result};
use crate::ipam;
use crate::model::{Ipam, Network, NetworkConfig};
use crate::netlink;

/// The network `cfg` asks for, checked against the networks berth has or is creating and the
/// host's routes (`host`, from netlink, read before the lock); automatic subnets come from
/// `pool`. Pure.
fn plan_network(g: &Inner, cfg: NetworkConfig, host: &[IpNet], pool: &[IpNet]) -> Result<Network> {
    let all = || g.state.networks.iter().chain(&g.held_nets);
    if all().any(|n| n.name == cfg.name) {
        return Err(Error::NetworkExists(cfg.name));
    }
    let ours: Vec<(String, IpNet)> = all()
        .flat_map(|n| subnets(n).into_iter().map(move |s| (n.name.clone(), s)))
        .collect();
    let host: Vec<IpNet> = host
        .iter()
        .filter(|r| !ours.iter().any(|(_, s)| s == *r))
        .copied()
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
            ipam::pick_free_subnet(pool, &taken)
                .ok_or_else(|| Error::PoolExhausted(cfg.name.clone()))?
        }
    };
    let gateway: IpAddr = match &cfg.gateway {
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
    if all().any(|n| n.bridge.as_deref() == Some(&bridge)) {
        return Err(bridge_taken(&bridge));
    }
    Ok(Network {
        id,
        name: cfg.name,
        driver: "bridge".into(),
        bridge: Some(bridge),
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
    })
}

fn bridge_taken(bridge: &str) -> Error {
    Error::invalid(
        "bridge name",
        bridge,
        "a device with that name already exists",
    )
}

impl NetworkManager {
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
        let host = netlink::route_prefixes(&self.nl, None).await?;
        let net = {
            let mut g = self.inner.lock().await;
            let net = plan_network(&g, cfg, &host, &self.opts.pool)?;
            g.held_nets.push(net.clone());
            net
        };
        let bridge = net.bridge.clone().unwrap_or_default();
        self.hook("create_network").await;
        let made = async {
            if netlink::link_index(&self.nl, &bridge).await?.is_some() {
                return Err(bridge_taken(&bridge));
            }
            self.ensure_bridge(&net).await
        }
        .await;
        {
            let mut g = self.inner.lock().await;
            g.held_nets.retain(|n| n.id != net.id);
            if made.is_ok() {
                g.state.networks.push(net.clone());
            }
        }
        made?;
        if let Err(e) = self.sync(false).await {
            self.inner
                .lock()
                .await
                .state
                .networks
                .retain(|n| n.id != net.id);
            let _ = netlink::delete_link(&self.nl, &bridge).await;
            let _ = self.sync(false).await;
            return Err(e);
        }
        self.start_dns(&net).await;
        tracing::info!(bridge = %bridge, subnet = ?net.ipam.as_ref().map(|i| i.subnet), "network created");
        Ok(net)
    }

    /// Remove a user network; refused while containers are connected (or connecting).
    pub async fn remove_network(&self, name_or_id: &str) -> Result<()> {
        let (net, pos, last) = {
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
                .count()
                + g.held.iter().filter(|h| h.network_id == net.id).count();
            if count > 0 {
                return Err(Error::NetworkInUse {
                    name: net.name,
                    count,
                });
            }
            g.dns.remove(&net.id);
            let pos = g.state.networks.iter().position(|n| n.id == net.id);
            g.state.networks.retain(|n| n.id != net.id);
            let last = g.state.last_ip.remove(&net.id);
            g.held_nets.push(net.clone());
            (net, pos, last)
        };
        if let Err(e) = self.sync(false).await {
            {
                let mut g = self.inner.lock().await;
                g.held_nets.retain(|n| n.id != net.id);
                let at = pos.unwrap_or(0).min(g.state.networks.len());
                g.state.networks.insert(at, net.clone());
                if let Some(l) = last {
                    g.state.last_ip.insert(net.id.clone(), l);
                }
            }
            self.start_dns(&net).await;
            return Err(e);
        }
        let deleted = match &net.bridge {
            Some(dev) => netlink::delete_link(&self.nl, dev).await,
            None => Ok(()),
        };
        self.inner.lock().await.held_nets.retain(|n| n.id != net.id);
        deleted
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
}
