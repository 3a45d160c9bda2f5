//! Pure derivations from the stored state: the nft plan, DNS records, bridge addresses.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::dns::Records;
use crate::model::{Ipam, Network};
use crate::ports::{mechanism, Mechanism};
use crate::rules::{BridgeRules, Dnat, RulesetPlan};
use crate::state::State;

pub(super) fn subnets(n: &Network) -> Vec<IpNet> {
    n.ipam
        .iter()
        .flat_map(|i| std::iter::once(i.subnet).chain(i.subnet6))
        .collect()
}

/// The nft plan for a state: every bridge network and every publication DNAT serves (the
/// others are proxied, see [`crate::ports::Mechanism`]).
pub(super) fn plan(table: &str, st: &State) -> RulesetPlan {
    RulesetPlan {
        table: table.to_string(),
        bridges: st
            .networks
            .iter()
            .filter_map(|n| {
                Some(BridgeRules {
                    device: n.bridge.clone()?,
                    subnets: subnets(n),
                    internal: n.internal,
                })
            })
            .collect(),
        dnat: st
            .ports
            .iter()
            .filter(|p| mechanism(p.mapping.host_ip, p.container_ip) == Mechanism::Dnat)
            .map(|p| Dnat {
                host_ip: Some(p.mapping.host_ip),
                host_port: p.mapping.host_port,
                proto: p.mapping.proto,
                container_ip: p.container_ip,
                container_port: p.mapping.container_port,
            })
            .collect(),
    }
}

/// DNS records of one network: container names, aliases and short ids.
pub(super) fn records_for(st: &State, network_id: &str) -> Records {
    let mut r = Records::new();
    for e in st.endpoints.iter().filter(|e| e.network_id == network_id) {
        let short = &e.container_id[..e.container_id.len().min(12)];
        let names = std::iter::once(e.name.as_str())
            .chain(e.aliases.iter().map(String::as_str))
            .chain(std::iter::once(short));
        // Each name also qualified by the network's (`db.backend`), as libnetwork's resolver
        // answers for `<name>.<network>`.
        let net = e.network.trim_end_matches('.').to_ascii_lowercase();
        for n in names.filter(|n| !n.is_empty()) {
            let n = n.trim_end_matches('.').to_ascii_lowercase();
            let qualified = format!("{n}.{net}");
            for key in [n, qualified] {
                let ips = r.entry(key).or_default();
                ips.push(e.ip);
                ips.extend(e.ipv6);
            }
        }
    }
    // Legacy endpoint links: an alias only the linking container resolves.
    for e in st.endpoints.iter().filter(|e| e.network_id == network_id) {
        for (target, alias) in &e.links {
            let ips: Vec<IpAddr> = st
                .endpoints
                .iter()
                .filter(|t| t.network_id == network_id && t.name.trim_start_matches('/') == target)
                .flat_map(|t| std::iter::once(t.ip).chain(t.ipv6))
                .collect();
            if ips.is_empty() {
                continue;
            }
            let alias = alias.trim_end_matches('.').to_ascii_lowercase();
            for client in std::iter::once(e.ip).chain(e.ipv6) {
                r.insert(crate::dns::client_key(client, &alias), ips.clone());
            }
        }
    }
    r
}

pub(super) fn bridge_addrs(ipam: &Ipam) -> Vec<(IpAddr, u8)> {
    let mut v = vec![(ipam.gateway, ipam.subnet.prefix_len())];
    if let (Some(g), Some(s)) = (ipam.gateway6, ipam.subnet6) {
        v.push((g, s.prefix_len()));
    }
    v
}
