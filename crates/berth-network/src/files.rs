//! Pure text of the /etc/hosts and /etc/resolv.conf files berth writes for containers, as
//! Docker writes them.

use std::net::IpAddr;

/// Inputs for a container's /etc/hosts.
#[derive(Debug, Clone, Default)]
pub struct HostsInput<'a> {
    pub hostname: &'a str,
    /// Optional domain name: adds `hostname.domain` before the hostname.
    pub domainname: &'a str,
    /// The container's own addresses (first network first).
    pub ips: &'a [IpAddr],
    /// `--add-host name:ip` entries, in order.
    pub extra_hosts: &'a [(String, IpAddr)],
    /// Whether the container has IPv6 (adds the ip6-* loopback names, as Docker does).
    pub ipv6: bool,
}

/// The /etc/hosts Docker writes: loopback entries, extra hosts, then the container's own
/// address(es) with its hostname.
pub fn hosts_file(h: &HostsInput<'_>) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n");
    if h.ipv6 {
        out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
        out.push_str("fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n");
        out.push_str("ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
    }
    for (name, ip) in h.extra_hosts {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    // libnetwork: the FQDN (hostname, or hostname.domainname) and, when it has a dot, its
    // first label too, so `--hostname web.example.com` answers to `web` as well.
    let fqdn = if h.domainname.is_empty() {
        h.hostname.to_string()
    } else {
        format!("{}.{}", h.hostname, h.domainname)
    };
    let names = match fqdn.split_once('.') {
        Some((short, _)) => format!("{fqdn} {short}"),
        None => fqdn.clone(),
    };
    if !h.hostname.is_empty() {
        for ip in h.ips {
            out.push_str(&format!("{ip}\t{names}\n"));
        }
    }
    out
}

/// Where a container's name resolution goes.
#[derive(Debug, Clone)]
pub enum ResolvMode {
    /// Default bridge (and the like): the host's resolv.conf with loopback nameservers removed;
    /// 8.8.8.8/8.8.4.4 (plus Google's IPv6 servers when `ipv6`) when none remain — like Docker.
    HostCopy { ipv6: bool },
    /// User-defined network: the embedded DNS server at this address; search/options kept from
    /// the host, `ndots:0` added like Docker.
    Embedded(IpAddr),
    /// The host's network (`--network host`): the host's nameservers as they are, loopback
    /// ones included (they answer there); only `--dns*` overrides change anything.
    Host,
}

/// `--dns`, `--dns-search`, `--dns-option` overrides; empty fields keep the computed values.
#[derive(Debug, Clone, Default)]
pub struct DnsOverrides {
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// Nameservers from resolv.conf text, in order.
pub fn parse_nameservers(host: &str) -> Vec<IpAddr> {
    host.lines()
        .filter_map(|l| line_nameserver(l)?.ok())
        .collect()
}

/// The address of a `nameserver` line (a scope id such as `%eth0` dropped); None for any
/// other line.
fn line_nameserver(line: &str) -> Option<Result<IpAddr, std::net::AddrParseError>> {
    let mut it = line.split_whitespace();
    (it.next() == Some("nameserver"))
        .then(|| it.next())
        .flatten()
        .map(|s| s.split('%').next().unwrap_or(s).parse())
}

fn directive(host: &str, key: &str) -> Vec<String> {
    host.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(key)).then(|| it.map(str::to_string).collect::<Vec<_>>())
        })
        .next_back()
        .unwrap_or_default()
}

/// The host's resolv.conf as seen from a namespace whose only way to the host's loopback
/// resolvers (systemd-resolved's 127.0.0.53, a local dnsmasq) is `via`: slirp4netns's DNS
/// forwarder 10.0.2.3 for a rootless daemon, as rootlesskit and podman use. Each loopback
/// `nameserver` line becomes `via` (once, where the first stood); a file naming no nameserver
/// (libc then asks 127.0.0.1) gets `via`; every other line is kept as it is.
pub fn loopback_resolvers_via(host: &str, via: IpAddr) -> String {
    let mut out = String::new();
    let (mut named, mut substituted) = (false, false);
    for line in host.lines() {
        match line_nameserver(line) {
            Some(Ok(ip)) if ip.is_loopback() => {
                named = true;
                if !substituted {
                    out.push_str(&format!("nameserver {via}\n"));
                    substituted = true;
                }
            }
            Some(_) => {
                named = true;
                out.push_str(line);
                out.push('\n');
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if !named {
        out.push_str(&format!("nameserver {via}\n"));
    }
    out
}

/// The /etc/resolv.conf for a container, from the host's resolv.conf text.
pub fn resolv_conf(host: &str, mode: &ResolvMode, ov: &DnsOverrides) -> String {
    let search = if ov.search.is_empty() {
        directive(host, "search")
    } else {
        ov.search.clone()
    };
    let mut options = if ov.options.is_empty() {
        directive(host, "options")
    } else {
        ov.options.clone()
    };
    let servers: Vec<IpAddr> = if !ov.servers.is_empty() {
        ov.servers.clone()
    } else {
        match mode {
            ResolvMode::Embedded(ip) => vec![*ip],
            ResolvMode::Host => parse_nameservers(host),
            ResolvMode::HostCopy { ipv6 } => {
                let s: Vec<IpAddr> = parse_nameservers(host)
                    .into_iter()
                    .filter(|ip| !ip.is_loopback())
                    .filter(|ip| *ipv6 || ip.is_ipv4())
                    .collect();
                if s.is_empty() {
                    let mut d: Vec<IpAddr> = vec![[8, 8, 8, 8].into(), [8, 8, 4, 4].into()];
                    if *ipv6 {
                        d.push("2001:4860:4860::8888".parse().expect("literal"));
                        d.push("2001:4860:4860::8844".parse().expect("literal"));
                    }
                    d
                } else {
                    s
                }
            }
        }
    };
    if matches!(mode, ResolvMode::Embedded(_))
        && ov.servers.is_empty()
        && !options.iter().any(|o| o.starts_with("ndots:"))
    {
        options.push("ndots:0".into());
    }
    let mut out = String::from("# Generated by berth.\n");
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch corp.example\noptions edns0 trust-ad\n";

    #[test]
    fn host_network_keeps_the_hosts_servers_unless_overridden() {
        let ov = DnsOverrides::default();
        let t = resolv_conf(HOST, &ResolvMode::Host, &ov);
        assert!(
            t.contains("nameserver 127.0.0.53\nnameserver 10.0.0.2\n"),
            "{t}"
        );
        let ov = DnsOverrides {
            servers: vec!["1.2.3.4".parse().unwrap()],
            ..Default::default()
        };
        let t = resolv_conf(HOST, &ResolvMode::Host, &ov);
        assert_eq!(
            t,
            "# Generated by berth.\nnameserver 1.2.3.4\nsearch corp.example\noptions edns0 trust-ad\n"
        );
    }

    #[test]
    fn an_fqdn_hostname_also_answers_to_its_first_label() {
        let ips = ["172.17.0.2".parse().unwrap()];
        let t = hosts_file(&HostsInput {
            hostname: "web.example.com",
            ips: &ips,
            ..Default::default()
        });
        assert!(t.ends_with("172.17.0.2\tweb.example.com web\n"), "{t}");
        let t = hosts_file(&HostsInput {
            hostname: "web",
            domainname: "example.com",
            ips: &ips,
            ..Default::default()
        });
        assert!(t.ends_with("172.17.0.2\tweb.example.com web\n"), "{t}");
    }

    #[test]
    fn hosts_like_docker() {
        let ips = ["172.17.0.2".parse().unwrap()];
        let extra = [("db".to_string(), "10.1.1.1".parse().unwrap())];
        let t = hosts_file(&HostsInput {
            hostname: "abc123",
            ips: &ips,
            extra_hosts: &extra,
            ipv6: true,
            ..Default::default()
        });
        assert_eq!(
            t,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n10.1.1.1\tdb\n172.17.0.2\tabc123\n"
        );
    }

    #[test]
    fn default_bridge_filters_loopback_nameservers() {
        let t = resolv_conf(
            HOST,
            &ResolvMode::HostCopy { ipv6: false },
            &DnsOverrides::default(),
        );
        assert_eq!(
            t,
            "# Generated by berth.\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0 trust-ad\n"
        );
        let only_local = "nameserver 127.0.0.53\n";
        let t = resolv_conf(
            only_local,
            &ResolvMode::HostCopy { ipv6: false },
            &DnsOverrides::default(),
        );
        assert_eq!(
            t,
            "# Generated by berth.\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }

    #[test]
    fn loopback_resolvers_are_reached_through_slirp_in_a_rootless_namespace() {
        let slirp: IpAddr = "10.0.2.3".parse().unwrap();
        // systemd-resolved's stub (and a second loopback one) → slirp's forwarder, once,
        // where the first stood; the rest of the file untouched.
        let t = loopback_resolvers_via(
            "# resolved\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nsearch corp.example\noptions edns0 trust-ad\n",
            slirp,
        );
        assert_eq!(
            t,
            "# resolved\nnameserver 10.0.2.3\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0 trust-ad\n"
        );
        // Reachable resolvers stay as they are.
        let remote = "nameserver 10.255.255.53\nnameserver fe80::1%eth0\n";
        assert_eq!(loopback_resolvers_via(remote, slirp), remote);
        // No nameserver at all means 127.0.0.1 to libc: slirp's too.
        assert_eq!(
            loopback_resolvers_via("search x\n", slirp),
            "search x\nnameserver 10.0.2.3\n"
        );
        // The default network then copies slirp's forwarder instead of Google's servers, and
        // the embedded DNS forwards to it.
        let t = resolv_conf(
            &loopback_resolvers_via("nameserver 127.0.0.53\n", slirp),
            &ResolvMode::HostCopy { ipv6: false },
            &DnsOverrides::default(),
        );
        assert_eq!(t, "# Generated by berth.\nnameserver 10.0.2.3\n");
        assert_eq!(
            crate::dns::upstreams_from_resolv_conf(&loopback_resolvers_via(
                "nameserver 127.0.0.53\n",
                slirp
            )),
            ["10.0.2.3:53".parse().unwrap()]
        );
    }

    #[test]
    fn user_network_points_at_embedded_dns() {
        let t = resolv_conf(
            HOST,
            &ResolvMode::Embedded("172.18.0.1".parse().unwrap()),
            &DnsOverrides::default(),
        );
        assert_eq!(
            t,
            "# Generated by berth.\nnameserver 172.18.0.1\nsearch corp.example\noptions edns0 trust-ad ndots:0\n"
        );
        let ov = DnsOverrides {
            servers: vec!["1.1.1.1".parse().unwrap()],
            ..Default::default()
        };
        assert!(resolv_conf(
            HOST,
            &ResolvMode::Embedded("172.18.0.1".parse().unwrap()),
            &ov
        )
        .contains("nameserver 1.1.1.1\n"));
    }
}
