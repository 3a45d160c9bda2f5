//! berth-network: bridges, veths, IPAM, nftables NAT and port publishing, embedded DNS.
//!
//! Pure planning lives in [`ipam`], [`rules`], [`files`] and the DNS message code in [`dns`];
//! the thin apply layers are [`netlink`] and [`nft`], and `proxy` is the userland proxy for
//! published ports DNAT cannot serve (IPv6 loopback); [`NetworkManager`] composes them with
//! persistent state.

pub mod dns;
pub mod error;
pub mod files;
pub mod hostfw;
pub mod ipam;
mod manager;
pub mod model;
pub mod netlink;
pub mod nft;
mod ports;
mod proxy;
pub mod rules;
mod state;

pub use error::{Error, ErrorKind, Result};
pub use manager::{ApplyHook, HostForward, ManagerOptions, NetworkManager};
pub use model::*;
pub use ports::clashes as ports_clash;
