//! Published ports of a rootless daemon: its network namespace is its own, so a host port is
//! bound by slirp4netns (berth-rootless), which delivers connections straight to the container's
//! address in the namespace. Ports the host keeps for root are refused with the sysctl to change.

use std::net::IpAddr;
use std::path::PathBuf;

use berth_network::{Error, PortMapping};

/// berth-network's [`berth_network::HostForward`] over slirp4netns's API socket.
#[derive(Debug)]
pub(crate) struct SlirpForward {
    /// slirp4netns's API socket; None when it did not start (then nothing can be published).
    pub api: Option<PathBuf>,
    /// The host's `net.ipv4.ip_unprivileged_port_start`.
    pub port_start: u16,
}

/// Why `m` cannot be forwarded from the host by an ordinary user, if it cannot (pure).
pub(crate) fn refuse(m: &PortMapping, container_ip: IpAddr, port_start: u16) -> Option<Error> {
    if m.host_port < port_start {
        let p = m.host_port;
        return Some(Error::Invalid {
            what: "host port",
            value: p.to_string(),
            reason: format!(
                "a rootless daemon cannot bind host ports below {port_start} (the host's \
                 net.ipv4.ip_unprivileged_port_start): publish a port from {port_start} up, or \
                 as root allow it with `sysctl net.ipv4.ip_unprivileged_port_start={p}`"
            ),
        });
    }
    if !container_ip.is_ipv4() || !m.host_ip.is_ipv4() {
        return Some(Error::Invalid {
            what: "published port",
            value: format!("{}:{}", m.host_ip, m.host_port),
            reason: "a rootless daemon forwards IPv4 ports only".into(),
        });
    }
    None
}

impl berth_network::HostForward for SlirpForward {
    fn add(&self, m: &PortMapping, container_ip: IpAddr) -> berth_network::Result<u64> {
        if let Some(e) = refuse(m, container_ip, self.port_start) {
            return Err(e);
        }
        let Some(api) = &self.api else {
            return Err(Error::Invalid {
                what: "published port",
                value: format!("{}:{}", m.host_ip, m.host_port),
                reason: "this rootless daemon has no user-mode network (slirp4netns did not \
                         start: the daemon's first lines say why), so no port reaches the host"
                    .into(),
            });
        };
        let proto = m.proto.to_string();
        berth_rootless::slirp::add_hostfwd(
            api,
            &proto,
            m.host_ip,
            m.host_port,
            container_ip,
            m.container_port,
        )
        .map_err(|detail| Error::PortInUse {
            proto,
            host_ip: m.host_ip,
            port: m.host_port,
            detail: format!(" on the host (slirp4netns: {detail})"),
        })
    }

    fn remove(&self, handle: u64) {
        let Some(api) = &self.api else { return };
        if let Err(e) = berth_rootless::slirp::remove_hostfwd(api, handle) {
            tracing::warn!(handle, "remove a published port's host forward: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_network::Proto;

    fn pm(host: &str, port: u16) -> PortMapping {
        PortMapping {
            host_ip: host.parse().unwrap(),
            host_port: port,
            container_port: 80,
            proto: Proto::Tcp,
        }
    }

    #[test]
    fn low_ports_and_ipv6_are_refused_with_what_to_do() {
        let ip: IpAddr = "172.30.0.2".parse().unwrap();
        let e = refuse(&pm("127.0.0.1", 80), ip, 1024).unwrap().to_string();
        assert!(e.contains("below 1024"), "{e}");
        assert!(
            e.contains("sysctl net.ipv4.ip_unprivileged_port_start=80"),
            "{e}"
        );
        assert!(refuse(&pm("127.0.0.1", 80), ip, 80).is_none());
        assert!(refuse(&pm("0.0.0.0", 8080), ip, 1024).is_none());
        assert!(refuse(&pm("::1", 8080), ip, 1024).is_some());
    }
}
