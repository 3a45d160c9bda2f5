//! Pure IP address management: subnet parsing and validation, overlap checks, gateway choice,
//! free-subnet picking and rolling address allocation. No I/O.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::error::{Error, Result};

/// Parse a CIDR and insist it names a network (host bits zero) large enough for a gateway and a
/// container: IPv4 prefix ≤ 30, IPv6 prefix ≤ 126.
pub fn parse_subnet(s: &str) -> Result<IpNet> {
    let net: IpNet = s.trim().parse().map_err(|e| {
        Error::invalid(
            "subnet",
            s,
            format!("{e}; expected CIDR like 172.20.0.0/16"),
        )
    })?;
    if net.trunc() != net {
        return Err(Error::invalid(
            "subnet",
            s,
            format!("host bits are set; did you mean {}?", net.trunc()),
        ));
    }
    let max = match net {
        IpNet::V4(_) => 30,
        IpNet::V6(_) => 126,
    };
    if net.prefix_len() > max {
        return Err(Error::invalid(
            "subnet",
            s,
            format!("prefix must be /{max} or shorter"),
        ));
    }
    Ok(net)
}

/// True when the two networks share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first host address of the subnet, Docker's default gateway.
pub fn default_gateway(net: &IpNet) -> IpAddr {
    add(net.network(), 1)
}

/// Check that `gw` is a usable host address inside `net`.
pub fn check_gateway(net: &IpNet, gw: IpAddr) -> Result<()> {
    if !net.contains(&gw) || gw == net.network() || (is_v4(net) && gw == net.broadcast()) {
        return Err(Error::invalid(
            "gateway",
            gw,
            format!("must be a host address inside {net}"),
        ));
    }
    Ok(())
}

/// Pick the first candidate that overlaps none of `taken`.
pub fn pick_free_subnet(candidates: &[IpNet], taken: &[IpNet]) -> Option<IpNet> {
    candidates
        .iter()
        .find(|c| !taken.iter().any(|t| overlaps(c, t)))
        .copied()
}

/// The pool user networks get subnets from when none is given: 172.18-29.0.0/16 then
/// 192.168.N.0/24 (172.30/31 are kept for the default bridge).
pub fn default_pool() -> Vec<IpNet> {
    let mut v: Vec<IpNet> = (18..=29)
        .map(|b| IpNet::V4(Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid prefix")))
        .collect();
    v.extend((0..=255).map(|c| {
        IpNet::V4(Ipv4Net::new(Ipv4Addr::new(192, 168, c, 0), 24).expect("valid prefix"))
    }));
    v
}

/// Candidates for the default bridge network, in order of preference.
pub fn default_bridge_candidates() -> Vec<IpNet> {
    [
        "172.30.0.0/16",
        "172.31.0.0/16",
        "10.200.0.0/16",
        "10.201.0.0/16",
    ]
    .iter()
    .map(|s| s.parse().expect("valid literal"))
    .collect()
}

fn is_v4(net: &IpNet) -> bool {
    matches!(net, IpNet::V4(_))
}

fn add(ip: IpAddr, n: u128) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(n as u32))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(n))),
    }
}

fn offset(net: &IpNet, ip: IpAddr) -> u128 {
    match (net.network(), ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => u128::from(u32::from(a).wrapping_sub(u32::from(n))),
        (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a).wrapping_sub(u128::from(n)),
        _ => 0,
    }
}

/// Whether `ip` may be handed to a container in `net` (not network, broadcast or gateway).
pub fn assignable(net: &IpNet, gateway: IpAddr, ip: IpAddr) -> bool {
    net.contains(&ip)
        && ip != net.network()
        && ip != gateway
        && !(is_v4(net) && ip == net.broadcast())
}

/// Most addresses one allocation scans before declaring the pool exhausted (bounds IPv6 work).
const MAX_SCAN: u128 = 1 << 20;

/// Allocate the next free address after `last` (rolling, like Docker, so a released address is
/// not reused at once), skipping the network, broadcast and gateway addresses and `used`.
pub fn allocate(
    net: &IpNet,
    gateway: IpAddr,
    used: &BTreeSet<IpAddr>,
    last: Option<IpAddr>,
) -> Option<IpAddr> {
    let size: u128 = match net {
        IpNet::V4(n) => 1u128 << (32 - n.prefix_len()),
        IpNet::V6(n) => 1u128
            .checked_shl(128 - u32::from(n.prefix_len()))
            .unwrap_or(u128::MAX),
    };
    let start = last
        .filter(|l| net.contains(l))
        .map(|l| offset(net, l) + 1)
        .unwrap_or(1);
    let scan = size.min(MAX_SCAN);
    (0..scan)
        .map(|i| add(net.network(), (start + i) % size))
        .find(|ip| assignable(net, gateway, *ip) && !used.contains(ip))
}

/// A MAC address derived from an IPv4 address the way Docker does: 02:42 followed by the four
/// address bytes. Locally administered, unicast, stable for a given IP.
pub fn mac_for(ip: IpAddr) -> [u8; 6] {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            [0x02, 0x42, o[0], o[1], o[2], o[3]]
        }
        IpAddr::V6(a) => {
            let o = a.octets();
            [0x02, 0x42, o[12], o[13], o[14], o[15]]
        }
    }
}

/// Format a MAC as lowercase colon-separated hex.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || {
        Error::invalid(
            "mac address",
            s,
            "expected six hex bytes like 02:42:ac:11:00:02",
        )
    };
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 {
        return Err(Error::invalid(
            "mac address",
            s,
            "must be unicast (first byte even)",
        ));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn parse_rejects_host_bits_and_tiny_nets() {
        assert!(parse_subnet("10.0.0.1/24").is_err());
        assert!(parse_subnet("10.0.0.0/31").is_err());
        assert!(parse_subnet("nonsense").is_err());
        assert_eq!(parse_subnet("10.0.0.0/24").unwrap(), n("10.0.0.0/24"));
        assert!(parse_subnet("fd00::/64").is_ok());
    }

    #[test]
    fn overlap_is_symmetric() {
        assert!(overlaps(&n("10.0.0.0/8"), &n("10.1.0.0/16")));
        assert!(overlaps(&n("10.1.0.0/16"), &n("10.0.0.0/8")));
        assert!(!overlaps(&n("10.1.0.0/16"), &n("10.2.0.0/16")));
    }

    #[test]
    fn allocation_skips_reserved_and_rolls() {
        let net = n("10.9.0.0/29");
        let gw = default_gateway(&net);
        assert_eq!(gw, "10.9.0.1".parse::<IpAddr>().unwrap());
        let mut used = BTreeSet::new();
        let mut last = None;
        let mut got = vec![];
        while let Some(ip) = allocate(&net, gw, &used, last) {
            used.insert(ip);
            last = Some(ip);
            got.push(ip.to_string());
        }
        assert_eq!(
            got,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
        );
        // release .3; rolling allocation after .6 wraps and finds it
        used.remove(&"10.9.0.3".parse().unwrap());
        assert_eq!(
            allocate(&net, gw, &used, last).unwrap().to_string(),
            "10.9.0.3"
        );
    }

    #[test]
    fn picks_first_non_overlapping() {
        let c = default_bridge_candidates();
        assert_eq!(
            pick_free_subnet(&c, &[n("172.30.5.0/24")]).unwrap(),
            n("172.31.0.0/16")
        );
    }

    #[test]
    fn mac_matches_docker() {
        assert_eq!(
            format_mac(&mac_for("172.17.0.2".parse().unwrap())),
            "02:42:ac:11:00:02"
        );
        assert!(parse_mac("03:00:00:00:00:01").is_err());
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            mac_for("172.17.0.2".parse().unwrap())
        );
    }
}
