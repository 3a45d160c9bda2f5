//! The crate's one error type and the small set of kinds the API maps to HTTP codes.

use std::net::IpAddr;
use std::path::PathBuf;

pub use berth_errors::ErrorKind;

/// Everything that can go wrong while planning or applying container networking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("network {0:?} not found: list networks with `berth network ls`")]
    NetworkNotFound(String),
    #[error("network with name {0:?} already exists: choose another name or remove it first")]
    NetworkExists(String),
    #[error("subnet {subnet} of network {name:?} overlaps {other}: pick a non-overlapping subnet")]
    SubnetOverlap {
        name: String,
        subnet: String,
        other: String,
    },
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("network {name:?} has {count} active endpoint(s): disconnect its containers first")]
    NetworkInUse { name: String, count: usize },
    #[error("network {0:?} is predefined and cannot be removed or connected to this way")]
    Predefined(String),
    #[error("cannot publish ports: the daemon runs without firewall rules (--iptables=false); restart it without that flag to publish ports")]
    FirewallDisabled,
    #[error("no free address left in network {0:?}: use a larger subnet")]
    PoolExhausted(String),
    #[error("no subnet for the default bridge {bridge}: {} all overlap routes of other interfaces; give one with `berth daemon --bip CIDR` or daemon.json \"bip\"", fmt_nets(candidates))]
    NoDefaultSubnet {
        bridge: String,
        candidates: Vec<ipnet::IpNet>,
    },
    #[error("address {ip} is already in use in network {network:?}: pick another address")]
    AddressInUse { network: String, ip: IpAddr },
    #[error("container {container} is already connected to network {network:?}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is being connected to or disconnected from network {network:?}: try again when that finishes")]
    EndpointBusy { container: String, network: String },
    #[error("container {container} is not connected to network {network:?}")]
    EndpointNotFound { container: String, network: String },
    #[error(
        "host port {proto}/{} is already in use{detail}: choose another host port",
        std::net::SocketAddr::new(*host_ip, *port)
    )]
    PortInUse {
        proto: String,
        host_ip: IpAddr,
        port: u16,
        detail: String,
    },
    #[error("netlink {op} failed: {source}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("nft failed applying berth's table {table:?}: {stderr}")]
    Nft { table: String, stderr: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("network state file {path} is corrupt ({source}); move it away to start fresh")]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("network namespace {path}: {op} failed: {source}")]
    Netns {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The kind the API maps to an HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NetworkNotFound(_) | Error::EndpointNotFound { .. } => ErrorKind::NotFound,
            Error::NetworkExists(_)
            | Error::SubnetOverlap { .. }
            | Error::NetworkInUse { .. }
            | Error::AddressInUse { .. }
            | Error::AlreadyConnected { .. }
            | Error::EndpointBusy { .. }
            | Error::PortInUse { .. } => ErrorKind::Conflict,
            Error::Invalid { .. } | Error::Predefined(_) | Error::FirewallDisabled => {
                ErrorKind::Invalid
            }
            Error::PoolExhausted(_) | Error::NoDefaultSubnet { .. } => ErrorKind::Unavailable,
            Error::Netlink { .. }
            | Error::Nft { .. }
            | Error::Io { .. }
            | Error::State { .. }
            | Error::Netns { .. }
            | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(what: &'static str, value: impl ToString, reason: impl ToString) -> Self {
        Error::Invalid {
            what,
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn netlink(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Self {
        let op = op.into();
        move |source| Error::Netlink { op, source }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn fmt_nets(nets: &[ipnet::IpNet]) -> String {
    nets.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
