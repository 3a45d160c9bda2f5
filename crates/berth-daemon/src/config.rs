//! Daemon configuration: command-line level settings ([`DaemonConfig`]) and the optional
//! `daemon.json` file ([`FileConfig`], Docker's key names).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the daemon keeps state and listens.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Persistent state (images, containers): default `/var/lib/berth`.
    pub root: PathBuf,
    /// API socket: default `/run/berth/berth.sock`.
    pub socket: PathBuf,
    /// Runtime state (pid file, shim sockets): default `/run/berth`.
    pub exec_root: PathBuf,
    /// Serve on the unix `socket` (false when only `-H tcp://…` was given).
    pub listen_unix: bool,
    /// Optional TCP address (`127.0.0.1:2375`). Without [`DaemonConfig::tls`] a non-loopback
    /// address is refused unless `insecure_tcp` is set.
    pub tcp: Option<std::net::SocketAddr>,
    /// TLS for the TCP listener (`--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey`).
    pub tls: Option<TlsConfig>,
    /// `--insecure-tcp`: serve a non-loopback TCP address without client certificates.
    pub insecure_tcp: bool,
    /// `--group`: the group given access to the unix socket (none: root only); wins over
    /// daemon.json's `group`.
    pub group: Option<String>,
    pub debug: bool,
    /// `daemon.json`; default `/etc/berth/daemon.json` (a missing default file is fine).
    pub config_file: Option<PathBuf>,
    /// Default bridge and nft table from the command line (`--bridge`, `--bip`, `--nft-table`);
    /// they win over daemon.json.
    pub network: NetworkOptions,
    /// `--pidfile`: where the pid file goes (default `<exec root>/berth.pid`).
    pub pid_file: Option<PathBuf>,
    /// `--ui`: where the dashboard is served (`ip:port`); wins over daemon.json's `ui`.
    pub ui: Option<String>,
    /// Rootless mode: the daemon is root of a user namespace an ordinary user made
    /// (berth-rootless); `/info` says so and what needs real root is refused.
    pub rootless: bool,
    /// `--storage-driver` (`overlay2`, `fuse-overlayfs`); wins over daemon.json's
    /// `storage-driver`. Neither: overlay2, or fuse-overlayfs where a rootless daemon's user
    /// namespace cannot mount overlayfs.
    pub storage_driver: Option<String>,
    /// `--userns-remap` as given (`default`, `USER[:GROUP]`); wins over daemon.json's.
    pub userns_remap: Option<String>,
    /// The resolved remap (set at start by [`crate::server::apply_userns_remap`]): containers'
    /// ids map onto it and `root` is then `<root>/<uid>.<gid>`.
    pub remap: Option<berth_rootless::remap_host::Remap>,
}

pub use berth_api_types::TlsConfig;

/// Where the default bridge network and berth's nft table live. Unset fields fall back to
/// daemon.json, then to the `BERTH_DEFAULT_BRIDGE`, `BERTH_DEFAULT_BRIDGE_SUBNET` and
/// `BERTH_NFT_TABLE` environment (kept for test scripts), then to berth's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkOptions {
    /// Device name of the default bridge (`none`: no default bridge), Docker's `--bridge`.
    pub bridge: Option<String>,
    /// The default bridge's address and prefix (`10.10.0.1/24`), Docker's `--bip`.
    pub bip: Option<String>,
    /// Name of berth's nftables table.
    pub nft_table: Option<String>,
    /// dockerd's `--iptables`: `Some(false)` writes no firewall rules at all.
    pub iptables: Option<bool>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            root: PathBuf::from("/var/lib/berth"),
            socket: PathBuf::from("/run/berth/berth.sock"),
            exec_root: PathBuf::from("/run/berth"),
            listen_unix: true,
            tcp: None,
            tls: None,
            insecure_tcp: false,
            group: None,
            debug: false,
            config_file: Some(PathBuf::from(DEFAULT_CONFIG_FILE)),
            network: NetworkOptions::default(),
            pid_file: None,
            ui: None,
            rootless: false,
            storage_driver: None,
            userns_remap: None,
            remap: None,
        }
    }
}

pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

/// Refuse an unknown `--storage-driver` name before anything starts (one line).
pub fn check_storage_driver(name: &str) -> Result<(), berth_store::driver::DriverError> {
    berth_store::driver::DriverRequest::parse(name).map(|_| ())
}

impl DaemonConfig {
    /// A config with every path under `dir` (tests, rootless experiments).
    pub fn under(dir: &Path) -> DaemonConfig {
        DaemonConfig {
            root: dir.join("root"),
            socket: dir.join("run/berth.sock"),
            exec_root: dir.join("run"),
            listen_unix: true,
            tcp: None,
            tls: None,
            insecure_tcp: false,
            group: None,
            debug: false,
            config_file: None,
            network: NetworkOptions::default(),
            pid_file: None,
            ui: None,
            rootless: false,
            storage_driver: None,
            userns_remap: None,
            remap: None,
        }
    }

    pub fn pid_file(&self) -> PathBuf {
        self.pid_file
            .clone()
            .unwrap_or_else(|| self.exec_root.join("berth.pid"))
    }

    /// The socket's group: `--group`, else daemon.json's `group`; an empty name means none.
    pub fn socket_group(&self, file: &FileConfig) -> Option<String> {
        self.group
            .clone()
            .or_else(|| file.group.clone())
            .filter(|g| !g.is_empty())
    }

    /// The `--userns-remap` value: the flag, else daemon.json's; empty means none.
    pub fn userns_remap_arg(&self, file: &FileConfig) -> Option<String> {
        self.userns_remap
            .clone()
            .or_else(|| file.userns_remap.clone())
            .filter(|a| !a.trim().is_empty())
    }

    /// The container-to-host id mapping (identity without `--userns-remap`).
    pub fn ids(&self) -> berth_rootless::IdMapping {
        self.remap
            .as_ref()
            .map(|r| r.ids.clone())
            .unwrap_or_default()
    }

    /// The dashboard's address: `--ui`, else daemon.json's `ui`; an empty string means none.
    pub fn ui_addr(&self, file: &FileConfig) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let Some(a) = self.ui.clone().or_else(|| file.ui.clone()) else {
            return Ok(None);
        };
        if a.is_empty() {
            return Ok(None);
        }
        a.parse()
            .map(Some)
            .map_err(|_| ConfigError::UiAddr { addr: a })
    }

    /// Read `daemon.json` if configured. The default path may be absent; an explicit one may not.
    pub fn load_file(&self) -> Result<FileConfig, ConfigError> {
        let Some(p) = &self.config_file else {
            return Ok(FileConfig::default());
        };
        match std::fs::read(p) {
            Ok(b) => FileConfig::parse(&b).map_err(|source| ConfigError::Parse {
                path: p.clone(),
                source,
            }),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && p == Path::new(DEFAULT_CONFIG_FILE) =>
            {
                Ok(FileConfig::default())
            }
            Err(source) => Err(ConfigError::Read {
                path: p.clone(),
                source,
            }),
        }
    }
}

/// A `daemon.json` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read daemon config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid dashboard address {addr:?} (--ui or daemon.json \"ui\"): give ip:port, such as 127.0.0.1:8080")]
    UiAddr { addr: String },
    #[error("invalid daemon config {path}: {source} (fix the JSON or remove the file)")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A ulimit as `daemon.json` spells it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// The `daemon.json` keys berth understands (unknown keys are rejected, as dockerd does).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Docker's list (Docker Hub mirrors) or a map registry → mirrors (see the README).
    #[serde(default)]
    pub registry_mirrors: crate::registry::RegistryMirrors,
    #[serde(default)]
    pub log_driver: Option<String>,
    #[serde(default)]
    pub log_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub default_ulimits: BTreeMap<String, Ulimit>,
    #[serde(default)]
    pub debug: Option<bool>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub data_root: Option<PathBuf>,
    /// Run every container with an init (`docker run --init` by default), as dockerd's `init`.
    #[serde(default)]
    pub init: Option<bool>,
    /// The init binary bind-mounted at /sbin/docker-init (default: the host's static tini).
    #[serde(default)]
    pub init_path: Option<PathBuf>,
    /// Default bridge device (`none` for no default bridge), as dockerd's `bridge`.
    #[serde(default)]
    pub bridge: Option<String>,
    /// Default bridge address/prefix, as dockerd's `bip`.
    #[serde(default)]
    pub bip: Option<String>,
    /// berth's nftables table.
    #[serde(default)]
    pub nft_table: Option<String>,
    /// The group given access to the API socket, as dockerd's `group` (default: none).
    #[serde(default)]
    pub group: Option<String>,
    /// dockerd's `iptables`: `false` writes no firewall rules (no NAT, no published ports).
    #[serde(default)]
    pub iptables: Option<bool>,
    /// A libtrust key file (dockerd's `deprecated-key-path`) whose key ID becomes the engine
    /// ID, so a host keeps the ID its dockerd had.
    #[serde(default)]
    pub deprecated_key_path: Option<PathBuf>,
    /// dockerd's `live-restore`: berth always keeps containers running across daemon
    /// restarts, so only `true` is accepted.
    #[serde(default)]
    pub live_restore: Option<bool>,
    /// Where the dashboard is served (`ip:port`), as `--ui` (a berth key).
    #[serde(default)]
    pub ui: Option<String>,
    /// dockerd's `storage-driver` (see [`DaemonConfig::storage_driver`]).
    #[serde(default)]
    pub storage_driver: Option<String>,
    /// dockerd's `userns-remap`: `default` or `USER[:GROUP]` (`--userns-remap` wins).
    #[serde(default)]
    pub userns_remap: Option<String>,
}

impl FileConfig {
    /// The network settings daemon.json gives.
    pub fn network(&self) -> NetworkOptions {
        NetworkOptions {
            bridge: self.bridge.clone(),
            bip: self.bip.clone(),
            nft_table: self.nft_table.clone(),
            iptables: self.iptables,
        }
    }
}

impl FileConfig {
    pub fn parse(b: &[u8]) -> Result<FileConfig, serde_json::Error> {
        let f: FileConfig = serde_json::from_slice(b)?;
        if f.live_restore == Some(false) {
            return Err(serde::de::Error::custom(
                "\"live-restore\": false is not supported: berth always keeps containers \
                 running across daemon restarts; remove the key",
            ));
        }
        if let Some(name) = &f.storage_driver {
            check_storage_driver(name)
                .map_err(|e| serde::de::Error::custom(format!("\"storage-driver\": {e}")))?;
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_address_from_flag_or_file() {
        let file = FileConfig::parse(br#"{"ui":"127.0.0.1:9000"}"#).unwrap();
        let mut cfg = DaemonConfig::default();
        assert_eq!(
            cfg.ui_addr(&file).unwrap(),
            Some("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(cfg.ui_addr(&FileConfig::default()).unwrap(), None);
        cfg.ui = Some("[::1]:8080".into());
        assert_eq!(
            cfg.ui_addr(&file).unwrap(),
            Some("[::1]:8080".parse().unwrap())
        );
        cfg.ui = Some(String::new());
        assert_eq!(
            cfg.ui_addr(&file).unwrap(),
            None,
            "an empty --ui turns it off"
        );
        cfg.ui = Some("localhost:8080".into());
        let e = cfg.ui_addr(&file).unwrap_err().to_string();
        assert!(
            e.contains("\"localhost:8080\"") && e.contains("ip:port"),
            "{e}"
        );
    }

    #[test]
    fn parses_docker_daemon_json() {
        let f = FileConfig::parse(
            br#"{"insecure-registries":["127.0.0.1:5000"],"registry-mirrors":["https://m.example"],
                "log-opts":{"max-size":"10m"},"default-ulimits":{"nofile":{"Name":"nofile","Soft":1024,"Hard":2048}}}"#,
        )
        .unwrap();
        assert_eq!(f.insecure_registries, vec!["127.0.0.1:5000"]);
        assert_eq!(f.log_opts["max-size"], "10m");
        assert_eq!(f.default_ulimits["nofile"].hard, 2048);
        assert!(FileConfig::parse(br#"{"bogus":1}"#).is_err());
        // The storage driver by dockerd's key; an unknown one refused when the file is read.
        let f = FileConfig::parse(br#"{"storage-driver":"fuse-overlayfs"}"#).unwrap();
        assert_eq!(f.storage_driver.as_deref(), Some("fuse-overlayfs"));
        let e = FileConfig::parse(br#"{"storage-driver":"vfs"}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("\"storage-driver\": unknown storage driver \"vfs\""),
            "{e}"
        );
        // dockerd's keys berth acts on; live-restore off is refused, not ignored.
        let f = FileConfig::parse(
            br#"{"iptables":false,"live-restore":true,"deprecated-key-path":"/k.json"}"#,
        )
        .unwrap();
        assert_eq!(f.network().iptables, Some(false));
        assert_eq!(f.deprecated_key_path.as_deref(), Some(Path::new("/k.json")));
        let e = FileConfig::parse(br#"{"live-restore":false}"#).unwrap_err();
        assert!(e.to_string().contains("live-restore"), "{e}");
    }

    #[test]
    fn userns_remap_from_flag_or_daemon_json() {
        let file = FileConfig::parse(br#"{"userns-remap":"default"}"#).unwrap();
        let mut cfg = DaemonConfig::default();
        assert_eq!(cfg.userns_remap_arg(&file).as_deref(), Some("default"));
        assert_eq!(cfg.userns_remap_arg(&FileConfig::default()), None);
        cfg.userns_remap = Some("alice:staff".into());
        assert_eq!(cfg.userns_remap_arg(&file).as_deref(), Some("alice:staff"));
        cfg.userns_remap = Some(String::new());
        assert_eq!(
            cfg.userns_remap_arg(&file),
            None,
            "an empty flag turns it off"
        );
        assert!(cfg.ids().is_identity(), "identity until resolved at start");
    }

    #[test]
    fn missing_default_file_is_fine_but_explicit_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = DaemonConfig::under(dir.path());
        assert_eq!(c.load_file().unwrap(), FileConfig::default());
        c.config_file = Some(dir.path().join("nope.json"));
        assert!(c.load_file().is_err());
        std::fs::write(dir.path().join("d.json"), br#"{"debug":true}"#).unwrap();
        c.config_file = Some(dir.path().join("d.json"));
        assert_eq!(c.load_file().unwrap().debug, Some(true));
    }
}
