//! The data types callers exchange with the network manager: network and endpoint configs,
//! records as persisted, and port mappings.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What `docker network create` asks for. Strings are parsed and validated by the manager.
#[derive(Debug, Clone, Default)]
pub struct NetworkConfig {
    pub name: String,
    /// "bridge" (default when empty); "host" and "null" exist only as the predefined networks.
    pub driver: String,
    /// CIDR; picked from the default pool when `None`.
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ipv6_subnet: Option<String>,
    pub ipv6_gateway: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// Driver options; `com.docker.network.bridge.name` names the bridge device.
    pub options: BTreeMap<String, String>,
}

/// Addressing of a bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    pub subnet6: Option<IpNet>,
    pub gateway6: Option<IpAddr>,
}

/// A network as stored and as `inspect` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex characters, like Docker's.
    pub id: String,
    pub name: String,
    /// "bridge", "host" or "null".
    pub driver: String,
    /// Bridge device name (bridge driver only).
    pub bridge: Option<String>,
    pub ipam: Option<Ipam>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Unix seconds.
    pub created: u64,
    /// The predefined "bridge", "host" and "none" networks.
    pub predefined: bool,
}

impl Network {
    /// True for the predefined default bridge, which (like Docker's) gets no name-based DNS.
    pub fn is_default_bridge(&self) -> bool {
        self.predefined && self.driver == "bridge"
    }
    /// True for user-defined bridge networks, which get the embedded DNS server.
    pub fn has_dns(&self) -> bool {
        !self.predefined && self.driver == "bridge"
    }
}

/// What `connect` needs to know about the container joining a network.
#[derive(Debug, Clone, Default)]
pub struct EndpointConfig {
    pub container_id: String,
    /// Container name (resolvable by DNS on user networks).
    pub name: String,
    /// Network-scoped aliases and the container's hostname.
    pub aliases: Vec<String>,
    /// Static IPv4/IPv6 address (must lie in the subnet and be free).
    pub ip: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    /// MAC "aa:bb:..."; derived from the IP when absent.
    pub mac: Option<String>,
    /// Legacy endpoint links `(container name, alias)`: this container alone resolves the
    /// alias to that container on this network (Docker's `EndpointSettings.Links`).
    pub links: Vec<(String, String)>,
}

/// A container's attachment to a network, as returned by `connect` and persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_id: String,
    pub network_id: String,
    pub network: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub ip: IpAddr,
    pub prefix: u8,
    pub gateway: IpAddr,
    pub ipv6: Option<IpAddr>,
    pub prefix6: Option<u8>,
    pub gateway6: Option<IpAddr>,
    pub mac: String,
    /// Host end of the veth pair (on the bridge).
    pub veth_host: String,
    /// Interface name inside the container (eth0, eth1, ...).
    pub ifname: String,
    pub netns: PathBuf,
    /// Legacy endpoint links `(container name, alias)`, see [`EndpointConfig::links`].
    #[serde(default)]
    pub links: Vec<(String, String)>,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

impl FromStr for Proto {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" | "" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(Error::invalid("protocol", s, "expected tcp or udp")),
        }
    }
}

/// One published port. `host_ip` unspecified (0.0.0.0 / ::) means every host address;
/// `host_port` 0 asks the manager to pick a free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// A port to publish as the user asked for it. `host_ip` `None` is Docker's `-p 8080:80`:
/// every host address of each family the container has (IPv4, plus IPv6 on an IPv6 network);
/// `0.0.0.0` or `::` is every address of that one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRequest {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl From<PortMapping> for PortRequest {
    fn from(m: PortMapping) -> Self {
        PortRequest {
            host_ip: Some(m.host_ip),
            host_port: m.host_port,
            container_port: m.container_port,
            proto: m.proto,
        }
    }
}

impl PortRequest {
    /// The mapping on one host address.
    pub fn on(&self, host_ip: IpAddr) -> PortMapping {
        PortMapping {
            host_ip,
            host_port: self.host_port,
            container_port: self.container_port,
            proto: self.proto,
        }
    }

    /// The mapping on the given address, or every IPv4 one when none was given (for checks
    /// that look at ports only, such as the host firewall warnings).
    pub fn mapping(&self) -> PortMapping {
        self.on(self.host_ip.unwrap_or(IpAddr::from([0, 0, 0, 0])))
    }
}

/// A published port bound to the container address it forwards to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    pub container_id: String,
    pub container_ip: IpAddr,
    pub mapping: PortMapping,
}

/// A container the daemon found still running on start, for `rebuild_rules`. The manager
/// keeps each container's endpoints and published ports itself; everything belonging to a
/// container not listed is dropped.
#[derive(Debug, Clone)]
pub struct ActiveEndpoint {
    pub container_id: String,
}

/// A network with its endpoints, as `inspect` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub network: Network,
    pub endpoints: Vec<Endpoint>,
}
