//! Host-port bookkeeping for published ports: conflict checks against existing mappings (pure)
//! and socket reservations that keep other host processes from taking a published port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

use crate::error::{Error, Result};
use crate::model::{PortMapping, Proto, Publication};

/// A bound socket holding a host port for as long as the mapping exists. Traffic to the port
/// is translated before it could reach the socket; the socket only stops others binding it.
#[derive(Debug)]
pub enum Reservation {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// Key of a reservation.
pub type ResKey = (Proto, IpAddr, u16);

/// The host address a mapping binds: unspecified host IPs bind the container's family.
pub fn bind_ip(m: &PortMapping, container_ip: IpAddr) -> IpAddr {
    if m.host_ip.is_unspecified() {
        match container_ip {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    } else {
        m.host_ip
    }
}

/// The reservation key of a publication.
pub fn key(p: &Publication) -> ResKey {
    (
        p.mapping.proto,
        bind_ip(&p.mapping, p.container_ip),
        p.mapping.host_port,
    )
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

/// Check `m` against existing publications, then bind its host port (picking a free one when
/// `host_port` is 0). Returns the mapping with its actual port and the reservation.
pub fn reserve(
    m: &PortMapping,
    container_ip: IpAddr,
    existing: &[Publication],
) -> Result<(PortMapping, ResKey, Reservation)> {
    if m.container_port == 0 {
        return Err(Error::invalid("container port", 0, "must be 1-65535"));
    }
    if m.host_ip.is_ipv4() != container_ip.is_ipv4() && !m.host_ip.is_unspecified() {
        return Err(Error::invalid(
            "host ip",
            m.host_ip,
            format!("cannot forward to container address {container_ip} of the other family"),
        ));
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
    let ip = bind_ip(m, container_ip);
    let addr = SocketAddr::new(ip, m.host_port);
    let res = match m.proto {
        Proto::Tcp => TcpListener::bind(addr).map(Reservation::Tcp),
        Proto::Udp => UdpSocket::bind(addr).map(Reservation::Udp),
    }
    .map_err(|e| in_use(m, m.host_port, format!(" ({e})")))?;
    let port = match &res {
        Reservation::Tcp(l) => l.local_addr(),
        Reservation::Udp(u) => u.local_addr(),
    }
    .map_err(Error::io("reading address of", format!("{addr}")))?
    .port();
    let actual = PortMapping {
        host_port: port,
        ..*m
    };
    Ok((actual, (m.proto, ip, port), res))
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
}
