//! Host-port bookkeeping for published ports: which addresses a request becomes and how each
//! reaches the container (pure), conflict checks against existing mappings (pure), and socket
//! reservations that keep other host processes from taking a published port — on IPv6 host
//! addresses a [`Proxy`] serving what DNAT cannot.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Socket, Type};

use crate::error::{Error, Result};
use crate::model::{PortMapping, PortRequest, Proto, Publication};
use crate::proxy::{self, Proxy};

/// Holds a host port for as long as the mapping exists. A bare socket (IPv4) only stops others
/// binding the port: DNAT translates the traffic before it could reach it. On IPv6 the port is
/// held by a proxy, which serves the connections DNAT does not see (`::1`) or all of them
/// ([`Mechanism::Proxy`]).
#[derive(Debug)]
pub enum Reservation {
    Tcp(TcpListener),
    Udp(UdpSocket),
    Proxy(Proxy),
}

impl Reservation {
    /// Serve the held port through the userland proxy to `target`.
    pub fn serve(self, target: SocketAddr) -> std::io::Result<Reservation> {
        Ok(Reservation::Proxy(match self {
            Reservation::Tcp(l) => Proxy::tcp(l, target)?,
            Reservation::Udp(u) => Proxy::udp(u, target, proxy::UDP_IDLE)?,
            p @ Reservation::Proxy(_) => return Ok(p),
        }))
    }

    /// Give the port back; returns once it is free (a proxy's socket closed).
    pub async fn release(self) {
        if let Reservation::Proxy(p) = self {
            p.stop().await;
        }
    }
}

/// Release reservations taken out of the manager's map (outside its lock).
pub async fn release_all(res: impl IntoIterator<Item = Reservation>) {
    for r in res {
        r.release().await;
    }
}

/// Key of a reservation.
pub type ResKey = (Proto, IpAddr, u16);

/// How a published port reaches its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// Translated by a rule in berth's nft table.
    Dnat,
    /// Only the userland proxy: the IPv6 loopback (IPv6 has no `route_localnet`, a packet to
    /// `::1` cannot be translated out of `lo`), or an IPv6 host address of a container with
    /// no IPv6 address (a translation cannot change the family).
    Proxy,
}

/// The mechanism of a mapping on `host_ip` forwarding to `container_ip` (which
/// [`expand`] picks in the host address' family when the container has one).
pub fn mechanism(host_ip: IpAddr, container_ip: IpAddr) -> Mechanism {
    match host_ip {
        IpAddr::V6(h) if h.is_loopback() || container_ip.is_ipv4() => Mechanism::Proxy,
        _ => Mechanism::Dnat,
    }
}

/// Whether the host port of a mapping on `host_ip` is held by a proxy: every IPv6 one. With
/// DNAT it answers connections to `[::1]` for a port published on `::` (translated packets
/// never reach it).
pub fn proxied(host_ip: IpAddr) -> bool {
    host_ip.is_ipv6()
}

/// Where the proxy of a publication connects.
pub fn target(p: &Publication) -> SocketAddr {
    SocketAddr::new(p.container_ip, p.mapping.container_port)
}

/// The mappings a request becomes for a container at `ip4` (and `ip6` on an IPv6 network),
/// each with the container address it forwards to, as Docker: no host address means every
/// IPv4 address and, when the container has IPv6, every IPv6 one; an IPv6 host address
/// forwards to the container's IPv6 address, or its IPv4 one when it has none (proxied).
pub fn expand(req: &PortRequest, ip4: IpAddr, ip6: Option<IpAddr>) -> Vec<(PortMapping, IpAddr)> {
    let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    match req.host_ip {
        None => std::iter::once((req.on(any4), ip4))
            .chain(ip6.map(|v6| (req.on(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), v6)))
            .collect(),
        Some(h @ IpAddr::V4(_)) => vec![(req.on(h), ip4)],
        Some(h @ IpAddr::V6(_)) => vec![(req.on(h), ip6.unwrap_or(ip4))],
    }
}

/// The reservation key of a publication.
pub fn key(p: &Publication) -> ResKey {
    (p.mapping.proto, p.mapping.host_ip, p.mapping.host_port)
}

/// Whether two mappings would claim the same host port.
pub fn clashes(a: &PortMapping, b: &PortMapping) -> bool {
    a.proto == b.proto
        && a.host_port == b.host_port
        && a.host_port != 0
        && (a.host_ip == b.host_ip
            || (a.host_ip.is_unspecified() && a.host_ip.is_ipv4() == b.host_ip.is_ipv4())
            || (b.host_ip.is_unspecified() && a.host_ip.is_ipv4() == b.host_ip.is_ipv4()))
}

fn in_use(m: &PortMapping, port: u16, detail: String) -> Error {
    Error::PortInUse {
        proto: m.proto.to_string(),
        host_ip: m.host_ip,
        port,
        detail,
    }
}

/// Bind `addr` as std's `bind` does (SO_REUSEADDR for TCP), IPv6 sockets IPv6-only so that
/// `0.0.0.0:P` and `[::]:P` are two reservations, one per family.
fn bind(addr: SocketAddr, proto: Proto) -> std::io::Result<Reservation> {
    let ty = match proto {
        Proto::Tcp => Type::STREAM,
        Proto::Udp => Type::DGRAM,
    };
    let s = Socket::new(Domain::for_address(addr), ty, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if proto == Proto::Tcp {
        s.set_reuse_address(true)?;
    }
    s.bind(&addr.into())?;
    Ok(match proto {
        Proto::Tcp => {
            s.listen(1024)?;
            Reservation::Tcp(s.into())
        }
        Proto::Udp => Reservation::Udp(s.into()),
    })
}

/// Check `m` against existing publications, then bind its host port (picking a free one when
/// `host_port` is 0). Returns the mapping with its actual port and the reservation, a bare
/// socket: [`Reservation::serve`] turns it into a proxy once the whole publish holds.
pub fn reserve(
    m: &PortMapping,
    existing: &[Publication],
) -> Result<(PortMapping, ResKey, Reservation)> {
    if m.container_port == 0 {
        return Err(Error::invalid("container port", 0, "must be 1-65535"));
    }
    if let Some(p) = existing.iter().find(|p| clashes(&p.mapping, m)) {
        return Err(in_use(
            m,
            m.host_port,
            format!(
                " by container {}",
                &p.container_id[..p.container_id.len().min(12)]
            ),
        ));
    }
    let addr = SocketAddr::new(m.host_ip, m.host_port);
    let res = bind(addr, m.proto).map_err(|e| in_use(m, m.host_port, format!(" ({e})")))?;
    let port = match &res {
        Reservation::Tcp(l) => l.local_addr(),
        Reservation::Udp(u) => u.local_addr(),
        Reservation::Proxy(p) => Ok(p.local_addr()),
    }
    .map_err(Error::io("reading address of", format!("{addr}")))?
    .port();
    let actual = PortMapping {
        host_port: port,
        ..*m
    };
    Ok((actual, (m.proto, m.host_ip, port), res))
}

/// The error of a proxy that could not start on the reservation `k`.
pub fn proxy_failed(k: &ResKey) -> impl FnOnce(std::io::Error) -> Error {
    let (proto, ip, port) = *k;
    Error::io(
        "starting the port proxy for",
        format!("{}/{proto}", SocketAddr::new(ip, port)),
    )
}

/// Re-take the port of a stored publication (daemon start), proxied where it is on IPv6.
pub fn restore(p: &Publication) -> Result<(ResKey, Reservation)> {
    let (_, k, r) = reserve(&p.mapping, &[])?;
    let r = if proxied(p.mapping.host_ip) {
        r.serve(target(p)).map_err(proxy_failed(&k))?
    } else {
        r
    };
    Ok((k, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(ip: &str, port: u16, proto: Proto) -> PortMapping {
        PortMapping {
            host_ip: ip.parse().unwrap(),
            host_port: port,
            container_port: 80,
            proto,
        }
    }

    #[test]
    fn clash_rules() {
        assert!(clashes(
            &pm("0.0.0.0", 80, Proto::Tcp),
            &pm("127.0.0.1", 80, Proto::Tcp)
        ));
        assert!(!clashes(
            &pm("0.0.0.0", 80, Proto::Tcp),
            &pm("0.0.0.0", 80, Proto::Udp)
        ));
        assert!(!clashes(
            &pm("127.0.0.1", 80, Proto::Tcp),
            &pm("127.0.0.2", 80, Proto::Tcp)
        ));
        assert!(!clashes(
            &pm("0.0.0.0", 80, Proto::Tcp),
            &pm("::", 80, Proto::Tcp)
        ));
    }

    fn req(host: Option<&str>) -> PortRequest {
        PortRequest {
            host_ip: host.map(|h| h.parse().unwrap()),
            host_port: 8080,
            container_port: 80,
            proto: Proto::Tcp,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// (host address, container address, mechanism) for each mapping a request becomes.
    fn routes(host: Option<&str>, v6: Option<&str>) -> Vec<(String, String, Mechanism)> {
        expand(&req(host), ip("10.0.0.2"), v6.map(ip))
            .into_iter()
            .map(|(m, to)| {
                assert_eq!((m.host_port, m.container_port), (8080, 80));
                (
                    m.host_ip.to_string(),
                    to.to_string(),
                    mechanism(m.host_ip, to),
                )
            })
            .collect()
    }

    #[test]
    fn which_address_and_mechanism_each_mapping_gets() {
        use Mechanism::*;
        let r = |h: &str, c: &str, m| (h.to_string(), c.to_string(), m);
        // No host address: IPv4 only, or both families on an IPv6 network.
        assert_eq!(routes(None, None), [r("0.0.0.0", "10.0.0.2", Dnat)]);
        assert_eq!(
            routes(None, Some("fd00::2")),
            [r("0.0.0.0", "10.0.0.2", Dnat), r("::", "fd00::2", Dnat)]
        );
        // One family asked for: that one only.
        assert_eq!(
            routes(Some("0.0.0.0"), Some("fd00::2")),
            [r("0.0.0.0", "10.0.0.2", Dnat)]
        );
        assert_eq!(
            routes(Some("::"), Some("fd00::2")),
            [r("::", "fd00::2", Dnat)]
        );
        assert_eq!(
            routes(Some("fd00::9"), Some("fd00::2")),
            [r("fd00::9", "fd00::2", Dnat)]
        );
        // IPv6 loopback is never translated; a container without IPv6 is proxied to.
        assert_eq!(
            routes(Some("::1"), Some("fd00::2")),
            [r("::1", "fd00::2", Proxy)]
        );
        assert_eq!(routes(Some("::1"), None), [r("::1", "10.0.0.2", Proxy)]);
        assert_eq!(routes(Some("::"), None), [r("::", "10.0.0.2", Proxy)]);
        assert_eq!(
            routes(Some("127.0.0.1"), None),
            [r("127.0.0.1", "10.0.0.2", Dnat)]
        );
        // Every IPv6 host port is held by a proxy, no IPv4 one.
        assert!(proxied(ip("::")) && proxied(ip("::1")) && !proxied(ip("0.0.0.0")));
    }

    #[test]
    fn v4_and_v6_reservations_of_one_port_coexist_and_clash_within_a_family() {
        let (a, _, r4) = reserve(&pm("127.0.0.1", 0, Proto::Tcp), &[]).unwrap();
        // [::] is IPv6-only: the same port on both families is two reservations.
        let (_, k6, _r6) = reserve(&pm("::", a.host_port, Proto::Tcp), &[]).unwrap();
        assert_eq!(k6, (Proto::Tcp, ip("::"), a.host_port));
        let held = Publication {
            container_id: "c0ffee".into(),
            container_ip: ip("fd00::2"),
            mapping: pm("::", a.host_port, Proto::Tcp),
        };
        let err = reserve(&pm("::1", a.host_port, Proto::Tcp), &[held]).unwrap_err();
        assert!(err.to_string().contains("c0ffee"), "{err}");
        drop(r4);
    }
}
