//! The nftables ruleset berth owns, planned as data and rendered as one atomic `nft -f` script.
//!
//! # How berth's rules interact with the host firewall
//!
//! berth writes only to its own table (`table inet berth` by default; the name is a parameter so
//! tests use their own). It never adds, flushes or deletes anything in another table, and never
//! touches iptables. Rendering always re-creates berth's own base chains (`add` + `flush` in one
//! transaction), so an apply is all-or-nothing and a daemon restart starts clean.
//!
//! netfilter runs *every* base chain registered on a hook, in priority order. An `accept` in one
//! chain only ends that chain; a `drop` anywhere is final. berth relies on that:
//!
//! * **berth never accepts on the host's behalf.** Its `forward` chain has policy accept and holds
//!   only *drops* (isolation between berth bridges, internal networks cut off from the outside).
//!   A host rule that drops forwarded traffic — in an nft table of its own or in iptables'
//!   FORWARD chain (ufw, firewalld, a `policy drop`) — therefore still applies to containers and
//!   to published ports. Unlike Docker, berth does not punch holes: on a host whose forward
//!   policy is drop, the admin must allow berth's bridges explicitly.
//! * **Published ports are DNAT.** An inbound packet to a published host port is rewritten in
//!   `prerouting` (priority -100) and then *forwarded* to the container; it never traverses the
//!   host's `input` hook. So a host rule in an **input** chain (e.g. `tcp dport 8080 drop`) does
//!   not see it — this is the same as Docker and podman. To filter published ports, put rules
//!   in berth's **`berth-user`** chain (berth's DOCKER-USER): it is jumped to from a filter
//!   chain at the `forward` hook (priority -10) for traffic forwarded *to* berth's bridges
//!   only, so a rule there never touches the host's own services (its ssh, its DNS). It runs
//!   after the translation: match the port the client used with
//!   `meta l4proto tcp ct original proto-dst 8080` (nft needs the `meta l4proto` before it),
//!   e.g. `nft add rule inet berth berth-user iifname "eth0" meta l4proto tcp ct original
//!   proto-dst 8080 ip saddr != 192.0.2.0/24 drop`. A `drop` there is final; an `accept`
//!   only ends `berth-user` (netfilter runs every base chain on a hook), so it cannot open what
//!   a host table drops: open a published port in the host's own forward chain, e.g.
//!   `oifname "berth0" ct status dnat accept`. berth creates the chain empty and never
//!   flushes it, also not on `rebuild_rules`.
//!   Bypassing is never silent: `NetworkManager::publish` reads the host ruleset and logs (and
//!   `firewall_warnings` returns) every input-hook drop policy or drop/reject rule on the
//!   published host port, naming the chain ([`crate::hostfw`]).
//! * **Loopback.** `127.0.0.1:hostport` reaches the container through DNAT in the `output` hook
//!   plus `route_localnet=1` on berth's bridges and a masquerade of 127.0.0.0/8 sources leaving
//!   through the bridge. Locally generated packets pass neither input nor forward, so only
//!   `output` rules of the host apply to them.
//! * **IPv6.** Ports on IPv6 host addresses of a container with an IPv6 address are DNAT too
//!   (`dnat ip6`, same chains: the table is `inet`). IPv6 has no `route_localnet`, so `::1` is
//!   never translated (`ip6 daddr != ::1` on `::` rules); `[::1]` ports, and IPv6 ports of a
//!   container without IPv6, are served by berth's userland proxy instead (`proxy`), which
//!   also holds every IPv6 host port. A proxied client's packets are delivered to the host
//!   (its input rules apply, as for any local service) and the proxy's connection to the
//!   container is the host's own (output rules apply; berth-user, a forward chain, does not
//!   see it).
//! * **Outbound NAT.** Traffic from a non-internal network's subnet leaving through any other
//!   interface is masqueraded; internal networks get no NAT and no path out.

use std::fmt::Write;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::Proto;

/// Name of the chain admins own inside berth's table (see module docs).
pub const USER_CHAIN: &str = "berth-user";

/// One bridge network's part of the ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRules {
    pub device: String,
    pub subnets: Vec<IpNet>,
    pub internal: bool,
}

/// One DNAT rule for a published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnat {
    /// `None` = every host address of the container address' family.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub proto: Proto,
    pub container_ip: IpAddr,
    pub container_port: u16,
}

/// Everything berth's table holds, as data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RulesetPlan {
    pub table: String,
    pub bridges: Vec<BridgeRules>,
    pub dnat: Vec<Dnat>,
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

fn nfproto(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ipv4"
    } else {
        "ipv6"
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', ""))
}

/// Render the plan as an nft script. Applying it is idempotent and atomic.
pub fn render(plan: &RulesetPlan) -> String {
    let t = format!("inet {}", plan.table);
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "add table {t}");
    let _ = writeln!(w, "add chain {t} {USER_CHAIN}");
    let base = [
        ("localnet_guard", "filter", "prerouting", -150),
        ("user_forward", "filter", "forward", -10),
        ("prerouting", "nat", "prerouting", -100),
        ("output", "nat", "output", -100),
        ("postrouting", "nat", "postrouting", 100),
        ("forward", "filter", "forward", 0),
    ];
    for (name, ty, hook, prio) in base {
        let _ = writeln!(
            w,
            "add chain {t} {name} {{ type {ty} hook {hook} priority {prio}; policy accept; }}"
        );
        let _ = writeln!(w, "flush chain {t} {name}");
    }
    let _ = writeln!(w, "add chain {t} ports");
    let _ = writeln!(w, "flush chain {t} ports");
    // Before 12-07 berth-user was jumped to at prerouting (`user_hook`), where it also saw the
    // host's own traffic; a table written then loses that chain (declared as it was, so the
    // add is a no-op or a create, then emptied and deleted).
    let _ = writeln!(
        w,
        "add chain {t} user_hook {{ type filter hook prerouting priority -110; policy accept; }}"
    );
    let _ = writeln!(w, "flush chain {t} user_hook");
    let _ = writeln!(w, "delete chain {t} user_hook");

    // CVE-2020-8558: bridges have route_localnet (so the host's 127.0.0.1-published ports
    // DNAT into containers), which would also accept a neighbour's packet to 127.0.0.0/8 sent
    // to the host's MAC. Nothing legitimate arrives from outside with such a destination
    // (replies to the host's own DNATed connections are still addressed to the gateway here,
    // before NAT), so drop it before any DNAT or local delivery.
    let _ = writeln!(
        w,
        "add rule {t} localnet_guard iifname != \"lo\" ip daddr 127.0.0.0/8 drop"
    );

    let _ = writeln!(w, "add rule {t} prerouting fib daddr type local jump ports");
    let _ = writeln!(w, "add rule {t} output fib daddr type local jump ports");

    for d in &plan.dnat {
        let fam = family(&d.container_ip);
        let mut m = format!("meta nfproto {}", nfproto(&d.container_ip));
        match d.host_ip.filter(|h| !h.is_unspecified()) {
            Some(h) => {
                let _ = write!(m, " {} daddr {h}", family(&h));
            }
            // `::1` cannot be translated out of `lo` (no route_localnet for IPv6): the
            // port's proxy answers it.
            None if d.container_ip.is_ipv6() => m.push_str(" ip6 daddr != ::1"),
            None => {}
        }
        let target = match d.container_ip {
            IpAddr::V4(a) => format!("{a}:{}", d.container_port),
            IpAddr::V6(a) => format!("[{a}]:{}", d.container_port),
        };
        let _ = writeln!(
            w,
            "add rule {t} ports {m} {} dport {} dnat {fam} to {target}",
            d.proto, d.host_port
        );
    }

    for b in &plan.bridges {
        let dev = quote(&b.device);
        // berth-user sees traffic forwarded to containers, nothing else.
        let _ = writeln!(
            w,
            "add rule {t} user_forward oifname {dev} jump {USER_CHAIN}"
        );
        for net in &b.subnets {
            let fam = family(&net.network());
            if !b.internal {
                let _ = writeln!(
                    w,
                    "add rule {t} postrouting {fam} saddr {net} oifname != {dev} masquerade"
                );
            }
        }
        if b.subnets.iter().any(|n| n.network().is_ipv4()) {
            let _ = writeln!(
                w,
                "add rule {t} postrouting ip saddr 127.0.0.0/8 oifname {dev} masquerade"
            );
        }
        // Hairpin: a container reaching a published port of its own network, itself included.
        // Matched by address, not interface: with br_netfilter loaded a container's own
        // connection is DNATed at the bridge and bridged straight back to its port, where
        // `oifname` is the port, not the bridge; unmasqueraded it would arrive from the
        // container's own address and be dropped as a martian (dockerd's rule is per address
        // too).
        for net in &b.subnets {
            let fam = family(&net.network());
            let _ = writeln!(
                w,
                "add rule {t} postrouting {fam} saddr {net} {fam} daddr {net} ct status dnat masquerade"
            );
        }
        if b.internal {
            let _ = writeln!(
                w,
                "add rule {t} forward iifname {dev} oifname != {dev} drop"
            );
            let _ = writeln!(
                w,
                "add rule {t} forward oifname {dev} iifname != {dev} drop"
            );
        }
    }
    for a in &plan.bridges {
        for b in &plan.bridges {
            if a.device != b.device {
                let _ = writeln!(
                    w,
                    "add rule {t} forward iifname {} oifname {} drop",
                    quote(&a.device),
                    quote(&b.device)
                );
            }
        }
    }
    s
}

/// Script that removes berth's table entirely (including `berth-user`).
pub fn render_delete(table: &str) -> String {
    format!("delete table inet {table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nat_ports_and_isolation() {
        let plan = RulesetPlan {
            table: "bt".into(),
            bridges: vec![
                BridgeRules {
                    device: "br-a".into(),
                    subnets: vec!["10.5.0.0/24".parse().unwrap()],
                    internal: false,
                },
                BridgeRules {
                    device: "br-i".into(),
                    subnets: vec!["10.6.0.0/24".parse().unwrap()],
                    internal: true,
                },
            ],
            dnat: vec![Dnat {
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 8080,
                proto: Proto::Tcp,
                container_ip: "10.5.0.2".parse().unwrap(),
                container_port: 80,
            }],
        };
        let s = render(&plan);
        assert!(s.contains("add rule inet bt ports meta nfproto ipv4 ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 10.5.0.2:80\n"));
        assert!(s.contains(
            "add rule inet bt postrouting ip saddr 10.5.0.0/24 oifname != \"br-a\" masquerade\n"
        ));
        assert!(
            !s.contains("saddr 10.6.0.0/24 oifname !="),
            "internal network must not be NATed"
        );
        assert!(s.contains("add rule inet bt forward iifname \"br-i\" oifname != \"br-i\" drop\n"));
        assert!(s.contains("add rule inet bt forward iifname \"br-a\" oifname \"br-i\" drop\n"));
        // a neighbour's packet to 127.0.0.0/8 never reaches a loopback-published port
        assert!(s.contains(
            "add chain inet bt localnet_guard { type filter hook prerouting priority -150; policy accept; }\n"
        ));
        assert!(s.contains(
            "add rule inet bt localnet_guard iifname != \"lo\" ip daddr 127.0.0.0/8 drop\n"
        ));
        // berth-user is created but never flushed
        assert!(s.contains("add chain inet bt berth-user\n"));
        assert!(!s.contains("flush chain inet bt berth-user"));
        // no accept verdicts: berth never overrides a host drop
        assert!(!s.contains(" accept\n"));
    }

    #[test]
    fn ipv6_dnat_uses_brackets() {
        let plan = RulesetPlan {
            table: "bt".into(),
            bridges: vec![],
            dnat: vec![Dnat {
                host_ip: None,
                host_port: 53,
                proto: Proto::Udp,
                container_ip: "fd00::2".parse().unwrap(),
                container_port: 5353,
            }],
        };
        assert!(render(&plan).contains(
            "meta nfproto ipv6 ip6 daddr != ::1 udp dport 53 dnat ip6 to [fd00::2]:5353\n"
        ));
    }

    #[test]
    fn ipv6_dnat_on_a_host_address_and_beside_ipv4() {
        let dnat = |host: &str, to: &str| Dnat {
            host_ip: Some(host.parse().unwrap()),
            host_port: 8080,
            proto: Proto::Tcp,
            container_ip: to.parse().unwrap(),
            container_port: 80,
        };
        let plan = RulesetPlan {
            table: "bt".into(),
            bridges: vec![BridgeRules {
                device: "br6".into(),
                subnets: vec![
                    "10.7.0.0/24".parse().unwrap(),
                    "fd00:7::/64".parse().unwrap(),
                ],
                internal: false,
            }],
            dnat: vec![
                dnat("0.0.0.0", "10.7.0.2"),
                dnat("::", "fd00:7::2"),
                dnat("fd42::1", "fd00:7::3"),
            ],
        };
        let s = render(&plan);
        let rules: Vec<&str> = s.lines().filter(|l| l.contains(" ports ")).collect();
        assert_eq!(
            rules,
            [
                "add rule inet bt ports meta nfproto ipv4 tcp dport 8080 dnat ip to 10.7.0.2:80",
                "add rule inet bt ports meta nfproto ipv6 ip6 daddr != ::1 tcp dport 8080 dnat ip6 to [fd00:7::2]:80",
                "add rule inet bt ports meta nfproto ipv6 ip6 daddr fd42::1 tcp dport 8080 dnat ip6 to [fd00:7::3]:80",
            ]
        );
        // Both families' ports chains are reached from prerouting and output (inet table),
        // and IPv6 hairpin traffic is masqueraded like IPv4's.
        assert!(s.contains("add rule inet bt prerouting fib daddr type local jump ports\n"));
        assert!(s.contains("add rule inet bt output fib daddr type local jump ports\n"));
        assert!(s.contains(
            "add rule inet bt postrouting ip6 saddr fd00:7::/64 ip6 daddr fd00:7::/64 ct status dnat masquerade\n"
        ));
    }
}
