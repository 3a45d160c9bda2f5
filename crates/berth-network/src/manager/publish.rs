//! Published ports: reserving host ports and (un)publishing DNAT mappings, all or nothing.
//! Ports are reserved under the state lock; the nft table and state file follow in `sync`.

use std::net::IpAddr;

use super::NetworkManager;
use crate::error::{Error, Result};
use crate::model::{PortMapping, Publication};
use crate::ports;

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
    /// Publish ports of the container at `container_ip`. All or nothing: a host port in use by
    /// another mapping or process is a Conflict and leaves no rule and no reservation behind.
    pub async fn publish(
        &self,
        container_ip: IpAddr,
        mappings: Vec<PortMapping>,
    ) -> Result<Vec<PortMapping>> {
        if !self.opts.firewall && !mappings.is_empty() {
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
            let mut new_res = vec![];
            let mut actual = vec![];
            let mut added = vec![];
            for m in &mappings {
                let (a, k, r) = ports::reserve(m, container_ip, &pending)?; // dropping new_res releases ports
                let p = Publication {
                    container_id: ep.container_id.clone(),
                    container_ip,
                    mapping: a,
                };
                pending.push(p.clone());
                added.push(p);
                new_res.push((k, r));
                actual.push(a);
            }
            // Held from here: a concurrent publish sees these ports taken.
            g.state.ports.extend(added.iter().cloned());
            g.reservations.extend(new_res);
            (actual, added)
        };
        let applied = match self.sync(false).await {
            Ok(()) => self.forward_from_host(&added).await,
            Err(e) => Err(e),
        };
        if let Err(e) = applied {
            {
                let mut g = self.inner.lock().await;
                g.state.ports.retain(|p| !added.contains(p));
                let handles = g.drop_ports(&added);
                self.unforward(handles);
            }
            let _ = self.sync(false).await;
            return Err(e);
        }
        for w in self.firewall_warnings(&actual).await {
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

    /// Remove every published port forwarding to `container_ip`.
    pub async fn unpublish(&self, container_ip: IpAddr) -> Result<()> {
        {
            let mut g = self.inner.lock().await;
            let (gone, keep): (Vec<Publication>, Vec<Publication>) = g
                .state
                .ports
                .drain(..)
                .partition(|p| p.container_ip == container_ip);
            g.state.ports = keep;
            let handles = g.drop_ports(&gone);
            self.unforward(handles);
        }
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
