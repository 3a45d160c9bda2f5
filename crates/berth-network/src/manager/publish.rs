//! Published ports: reserving host ports and (un)publishing DNAT mappings and proxies, all or
//! nothing. Ports are reserved under the state lock; the nft table and state file follow in
//! `sync`; proxies start once every port of a publish is held.

use std::net::IpAddr;

use super::NetworkManager;
use crate::error::{Error, Result};
use crate::model::{PortMapping, PortRequest, Publication};
use crate::ports::{self, Mechanism, ResKey, Reservation};

/// Forwards published ports from outside the daemon's network namespace into it: a rootless
/// daemon's user-mode network stack binds the host port and delivers connections to the
/// container's address. Implemented by the daemon over berth-rootless's slirp4netns API.
pub trait HostForward: Send + Sync + std::fmt::Debug {
    /// Forward `m`'s host address and port to `container_ip` and `m.container_port`; the
    /// returned handle goes to [`HostForward::remove`].
    fn add(&self, m: &PortMapping, container_ip: IpAddr) -> Result<u64>;
    /// Stop forwarding `handle`.
    fn remove(&self, handle: u64);
}

impl NetworkManager {
    /// Publish ports of the container at `container_ip` (its endpoint's IPv4 address). A
    /// request without a host address becomes one mapping per family the container has
    /// ([`ports::expand`]). All or nothing: a host port in use by another mapping or process
    /// is a Conflict and leaves no rule, proxy or reservation behind.
    pub async fn publish<R: Into<PortRequest>>(
        &self,
        container_ip: IpAddr,
        requests: impl IntoIterator<Item = R>,
    ) -> Result<Vec<PortMapping>> {
        let requests: Vec<PortRequest> = requests.into_iter().map(Into::into).collect();
        if !self.opts.firewall && !requests.is_empty() {
            return Err(Error::FirewallDisabled);
        }
        let (actual, added) = {
            let mut g = self.inner.lock().await;
            let ep = g
                .state
                .endpoints
                .iter()
                .find(|e| e.ip == container_ip || e.ipv6 == Some(container_ip))
                .cloned()
                .ok_or_else(|| {
                    Error::invalid(
                        "container ip",
                        container_ip,
                        "no connected container has this address",
                    )
                })?;
            let mut pending: Vec<Publication> = g.state.ports.clone();
            let mut new_res: Vec<(ResKey, Reservation)> = vec![];
            let mut actual = vec![];
            let mut added = vec![];
            for req in &requests {
                // Both families of one request share the port picked for the first.
                let mut port = req.host_port;
                for (m, to) in ports::expand(req, ep.ip, ep.ipv6) {
                    let m = PortMapping {
                        host_port: port,
                        ..m
                    };
                    // Dropping new_res (bare sockets) releases the ports at once.
                    let (a, k, r) = ports::reserve(&m, &pending)?;
                    port = a.host_port;
                    let p = Publication {
                        container_id: ep.container_id.clone(),
                        container_ip: to,
                        mapping: a,
                    };
                    pending.push(p.clone());
                    added.push(p);
                    new_res.push((k, r));
                    actual.push(a);
                }
            }
            let mut started = Vec::with_capacity(new_res.len());
            let mut failed = None;
            for ((k, r), p) in new_res.into_iter().zip(&added) {
                if !ports::proxied(k.1) {
                    started.push((k, r));
                    continue;
                }
                match r.serve(ports::target(p)) {
                    Ok(r) => started.push((k, r)),
                    Err(e) => {
                        failed = Some(ports::proxy_failed(&k)(e));
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                drop(g);
                ports::release_all(started.into_iter().map(|(_, r)| r)).await;
                return Err(e);
            }
            // Held from here: a concurrent publish sees these ports taken.
            g.state.ports.extend(added.iter().cloned());
            g.reservations.extend(started);
            (actual, added)
        };
        let applied = match self.sync(false).await {
            Ok(()) => self.forward_from_host(&added).await,
            Err(e) => Err(e),
        };
        if let Err(e) = applied {
            let res = {
                let mut g = self.inner.lock().await;
                g.state.ports.retain(|p| !added.contains(p));
                let (res, handles) = g.take_ports(&added);
                self.unforward(handles);
                res
            };
            ports::release_all(res).await;
            let _ = self.sync(false).await;
            return Err(e);
        }
        // Proxied ports are delivered to the host: its input rules do apply to them.
        let translated: Vec<PortMapping> = added
            .iter()
            .filter(|p| ports::mechanism(p.mapping.host_ip, p.container_ip) == Mechanism::Dnat)
            .map(|p| p.mapping)
            .collect();
        for w in self.firewall_warnings(&translated).await {
            tracing::warn!(container_ip = %container_ip, "{w}");
        }
        Ok(actual)
    }

    /// Warnings for host input-hook filters (drop policy, drop/reject rules on these host ports)
    /// that the given published ports bypass, because DNAT forwards them instead of delivering
    /// them to the input hook. The daemon should surface these (e.g. in the API's `Warnings`).
    /// `publish` also logs them.
    pub async fn firewall_warnings(&self, mappings: &[PortMapping]) -> Vec<String> {
        match crate::nft::ruleset_json().await {
            Ok(rs) => crate::hostfw::bypassed_input_filters(&rs, &self.opts.nft_table, mappings),
            Err(e) => vec![format!(
                "could not read the host firewall to check published ports: {e}"
            )],
        }
    }

    /// Whether berth writes firewall rules (false: `--iptables=false`, nothing can be
    /// published).
    pub fn firewall(&self) -> bool {
        self.opts.firewall
    }

    /// Remove every published port forwarding to `container_ip` or to the other address of
    /// its endpoint (IPv6 ports forward to the IPv6 one); proxies are stopped and their ports
    /// free when this returns.
    pub async fn unpublish(&self, container_ip: IpAddr) -> Result<()> {
        self.unpublish_where(container_ip, |_| true).await
    }

    /// Remove these published ports (as `publish` returned them) of the container at
    /// `container_ip`, leaving its others in place: a live port change.
    pub async fn unpublish_mappings(
        &self,
        container_ip: IpAddr,
        mappings: &[PortMapping],
    ) -> Result<()> {
        self.unpublish_where(container_ip, |p| mappings.contains(&p.mapping))
            .await
    }

    /// Remove the published ports `which` selects among those forwarding to either address of
    /// the endpoint at `container_ip`.
    async fn unpublish_where(
        &self,
        container_ip: IpAddr,
        which: impl Fn(&Publication) -> bool,
    ) -> Result<()> {
        let res = {
            let mut g = self.inner.lock().await;
            let ep = g
                .state
                .endpoints
                .iter()
                .find(|e| e.ip == container_ip || e.ipv6 == Some(container_ip));
            let ips: Vec<IpAddr> = match ep {
                Some(e) => std::iter::once(e.ip).chain(e.ipv6).collect(),
                None => vec![container_ip],
            };
            let (gone, keep): (Vec<Publication>, Vec<Publication>) = g
                .state
                .ports
                .drain(..)
                .partition(|p| ips.contains(&p.container_ip) && which(p));
            g.state.ports = keep;
            let (res, handles) = g.take_ports(&gone);
            self.unforward(handles);
            res
        };
        ports::release_all(res).await;
        self.sync(false).await
    }

    /// Forward `added` ports from the host (a rootless daemon's namespace), all or none.
    async fn forward_from_host(&self, added: &[Publication]) -> Result<()> {
        let Some(hf) = &self.opts.host_forward else {
            return Ok(());
        };
        let mut done = Vec::new();
        for p in added {
            match hf.add(&p.mapping, p.container_ip) {
                Ok(h) => done.push((ports::key(p), h)),
                Err(e) => {
                    self.unforward(done.into_iter().map(|(_, h)| h).collect());
                    return Err(e);
                }
            }
        }
        self.inner.lock().await.forwards.extend(done);
        Ok(())
    }

    /// Remove host forwards by handle (best effort: a gone forwarder has none left).
    pub(super) fn unforward(&self, handles: Vec<u64>) {
        if let Some(hf) = &self.opts.host_forward {
            handles.into_iter().for_each(|h| hf.remove(h));
        }
    }

    /// Published ports of a container.
    pub async fn published(&self, container_id: &str) -> Vec<Publication> {
        let g = self.inner.lock().await;
        g.state
            .ports
            .iter()
            .filter(|p| p.container_id == container_id)
            .cloned()
            .collect()
    }
}
