//! Connecting containers to networks and disconnecting them. The address is allocated and
//! held under the state lock, the veth is set up without it, and the endpoint is committed —
//! or the address given back. A container being connected or released on a network is
//! refused a second connect or disconnect there until that finishes.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use super::{derive::bridge_addrs, random_u64, Held, NetworkManager, Phase};
use crate::error::{Error, Result};
use crate::ipam;
use crate::model::{Endpoint, EndpointConfig, Ipam, Network, Publication};
use crate::netlink;
use crate::ports;

/// What the apply step of a connect sets up: addresses picked under the lock.
struct Plumbing<'a> {
    container_id: &'a str,
    netns: &'a Path,
    net: &'a Network,
    bridge: &'a str,
    ipam: &'a Ipam,
    ip: IpAddr,
    ipv6: Option<IpAddr>,
    mac: [u8; 6],
}

fn busy(container: &str, net: &Network) -> Error {
    Error::EndpointBusy {
        container: container.into(),
        network: net.name.clone(),
    }
}

impl NetworkManager {
    /// Attach the namespace at `netns` to `network`: veth pair, address, default route (unless
    /// the network is internal), DNS name.
    #[tracing::instrument(skip_all, fields(container_id = %cfg.container_id, network))]
    pub async fn connect(
        &self,
        netns: &Path,
        network: &str,
        cfg: EndpointConfig,
    ) -> Result<Endpoint> {
        // allocate
        let (net, bridge, ip_cfg, ip, ipv6, mac, prev_last) = {
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
            if g.held_phase(&cfg.container_id, &net.id).is_some() {
                return Err(busy(&cfg.container_id, &net));
            }
            let used = g.used_ips(&net.id);
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
            let prev_last = g.state.last_ip.insert(net.id.clone(), ip);
            g.held.push(Held {
                container_id: cfg.container_id.clone(),
                network_id: net.id.clone(),
                ips: std::iter::once(ip).chain(ipv6).collect(),
                veth: None,
                phase: Phase::Connecting,
            });
            (net, bridge, ip_cfg, ip, ipv6, mac, prev_last)
        };
        // Give the allocation back: the address, and the cursor if nothing moved it since.
        let (ctr, net_id) = (cfg.container_id.as_str(), net.id.as_str());
        let give_back = |endpoint_too: bool| async move {
            let mut g = self.inner.lock().await;
            g.unhold(ctr, net_id);
            if endpoint_too {
                g.state
                    .endpoints
                    .retain(|e| !(e.network_id == net_id && e.container_id == ctr));
                Self::refresh_dns(&g, net_id);
            }
            if g.state.last_ip.get(net_id) == Some(&ip) {
                match prev_last {
                    Some(l) => g.state.last_ip.insert(net_id.to_string(), l),
                    None => g.state.last_ip.remove(net_id),
                };
            }
        };
        // apply
        self.hook("connect").await;
        let plumbed = self
            .plumb(Plumbing {
                container_id: &cfg.container_id,
                netns,
                net: &net,
                bridge: &bridge,
                ipam: &ip_cfg,
                ip,
                ipv6,
                mac,
            })
            .await;
        let (host, ifname) = match plumbed {
            Ok(x) => x,
            Err(e) => {
                give_back(false).await;
                return Err(e);
            }
        };
        // commit
        let ep = Endpoint {
            container_id: cfg.container_id.clone(),
            network_id: net.id.clone(),
            network: net.name.clone(),
            name: cfg.name.clone(),
            aliases: cfg.aliases.clone(),
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
            links: cfg.links.clone(),
        };
        {
            let mut g = self.inner.lock().await;
            g.unhold(&cfg.container_id, &net.id);
            g.state.endpoints.push(ep.clone());
            Self::refresh_dns(&g, &net.id);
        }
        if let Err(e) = self.sync(false).await {
            give_back(true).await;
            let _ = netlink::delete_link(&self.nl, &host).await;
            return Err(e);
        }
        tracing::info!(%ip, veth = %host, "connected");
        Ok(ep)
    }

    /// The apply step of a connect: a veth pair on the bridge, its peer configured inside the
    /// namespace. Returns the host end's and the container interface's names; leaves nothing
    /// behind on failure.
    async fn plumb(&self, p: Plumbing<'_>) -> Result<(String, String)> {
        let bidx = netlink::ensure_bridge(&self.nl, p.bridge, &bridge_addrs(p.ipam)).await?;
        let (host, peer) = loop {
            let tag = format!("{:08x}", random_u64() as u32);
            let (h, p) = (format!("vb{tag}"), format!("vp{tag}"));
            if netlink::link_index(&self.nl, &h).await?.is_none()
                && netlink::link_index(&self.nl, &p).await?.is_none()
            {
                break (h, p);
            }
        };
        // Named before it exists, so `veths` never misses a veth on the bridge.
        if let Some(h) = self
            .inner
            .lock()
            .await
            .held
            .iter_mut()
            .find(|h| h.container_id == p.container_id && h.network_id == p.net.id)
        {
            h.veth = Some(host.clone());
        }
        netlink::create_veth(&self.nl, &host, &peer, bidx, p.netns).await?;
        self.hook("veth").await;
        let mut addrs = vec![(p.ip, p.ipam.subnet.prefix_len())];
        let mut gws = vec![];
        if !p.net.internal {
            gws.push(p.ipam.gateway);
        }
        if let (Some(v6), Some(s6)) = (p.ipv6, p.ipam.subnet6) {
            addrs.push((v6, s6.prefix_len()));
            if !p.net.internal {
                gws.extend(p.ipam.gateway6);
            }
        }
        let mac = p.mac;
        let peer2 = peer.clone();
        match netlink::in_netns(p.netns, move |h| async move {
            netlink::configure_container_if(&h, &peer2, mac, &addrs, &gws).await
        })
        .await
        {
            Ok(ifname) => Ok((host, ifname)),
            Err(e) => {
                let _ = netlink::delete_link(&self.nl, &host).await;
                Err(e)
            }
        }
    }

    /// Detach a container from a network: its veth, DNS names and published ports on that
    /// address go away and the address is released (once the veth is gone).
    pub async fn disconnect(&self, container_id: &str, network: &str) -> Result<()> {
        let (net, ep, released) = {
            let mut g = self.inner.lock().await;
            let net = g.state.get(network)?.clone();
            let Some(pos) = g
                .state
                .endpoints
                .iter()
                .position(|e| e.network_id == net.id && e.container_id == container_id)
            else {
                if g.held_phase(container_id, &net.id).is_some() {
                    return Err(busy(container_id, &net));
                }
                return Err(Error::EndpointNotFound {
                    container: container_id.into(),
                    network: net.name.clone(),
                });
            };
            let ep = g.state.endpoints.remove(pos);
            let gone: Vec<Publication> = g
                .state
                .ports
                .iter()
                .filter(|p| p.container_ip == ep.ip || Some(p.container_ip) == ep.ipv6)
                .cloned()
                .collect();
            g.state.ports.retain(|p| !gone.contains(p));
            let (released, handles) = g.take_ports(&gone);
            self.unforward(handles);
            g.held.push(Held {
                container_id: container_id.into(),
                network_id: net.id.clone(),
                ips: std::iter::once(ep.ip).chain(ep.ipv6).collect(),
                veth: Some(ep.veth_host.clone()),
                phase: Phase::Releasing,
            });
            Self::refresh_dns(&g, &net.id);
            (net, ep, released)
        };
        ports::release_all(released).await;
        let synced = self.sync(false).await;
        self.hook("disconnect").await;
        let deleted = netlink::delete_link(&self.nl, &ep.veth_host).await;
        self.inner.lock().await.unhold(container_id, &net.id);
        synced.and(deleted)
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
}
