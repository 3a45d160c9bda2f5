//! Persistent network state (networks, endpoints, published ports, IPAM cursors) as one JSON
//! file written atomically (temp file, fsync, rename, fsync dir).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Endpoint, Network, Publication};

/// Everything that must survive a daemon restart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub networks: Vec<Network>,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<Publication>,
    /// Network id → last address handed out (rolling allocation).
    #[serde(default)]
    pub last_ip: BTreeMap<String, IpAddr>,
}

impl State {
    pub fn file(state_dir: &Path) -> PathBuf {
        state_dir.join("networks.json")
    }

    /// Load the state, or an empty one when the file does not exist yet.
    pub fn load(state_dir: &Path) -> Result<Self> {
        let path = Self::file(state_dir);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::State { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(Error::io("reading", path)(e)),
        }
    }

    /// The file's bytes for this state.
    pub fn to_bytes(&self, state_dir: &Path) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|source| Error::State {
            path: Self::file(state_dir),
            source,
        })
    }

    /// Write `data` (from [`to_bytes`](Self::to_bytes)) as the state file with berth-rootfs's
    /// one crash-safe write (unique temp, fsync, rename, fsync dir): a crash leaves either the
    /// old or the new file. Blocks on fsync: async callers run it on the blocking pool.
    pub fn write(state_dir: &Path, data: &[u8]) -> Result<()> {
        std::fs::create_dir_all(state_dir).map_err(Error::io("creating", state_dir))?;
        let path = Self::file(state_dir);
        berth_rootfs::write_atomic(&path, data).map_err(Error::io("writing", &path))
    }

    pub fn network(&self, name_or_id: &str) -> Option<&Network> {
        self.networks
            .iter()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
            .or_else(|| {
                // unique id prefix, like docker
                let mut m = self
                    .networks
                    .iter()
                    .filter(|n| name_or_id.len() >= 3 && n.id.starts_with(name_or_id));
                match (m.next(), m.next()) {
                    (Some(n), None) => Some(n),
                    _ => None,
                }
            })
    }

    /// Like [`network`](Self::network) but a NotFound error when missing.
    pub fn get(&self, name_or_id: &str) -> Result<&Network> {
        self.network(name_or_id)
            .ok_or_else(|| Error::NetworkNotFound(name_or_id.into()))
    }

    /// Addresses in use on a network (endpoints, both families).
    pub fn used_ips(&self, network_id: &str) -> BTreeSet<IpAddr> {
        self.endpoints
            .iter()
            .filter(|e| e.network_id == network_id)
            .flat_map(|e| std::iter::once(e.ip).chain(e.ipv6))
            .collect()
    }
}
