//! Client configuration and the pure planning of which endpoints (mirrors, then upstream; https,
//! then http for insecure registries) serve a registry.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{RegistryError, Result};

/// The registry name Docker Hub goes by in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's v2 API.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// The key Docker Hub credentials are stored under in a docker config.json.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// How the client talks to registries (from the daemon's configuration).
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries reached over plain HTTP or HTTPS without verification: `host[:port]` or a
    /// CIDR (`10.0.0.0/8`). Loopback (`127.0.0.0/8`, `::1`, `localhost`) is always insecure,
    /// as in Docker.
    pub insecure_registries: Vec<String>,
    /// Treat loopback hosts as insecure (Docker's default, true). Tests turn it off to check
    /// certificate verification against a loopback registry.
    pub loopback_insecure: bool,
    /// Mirrors for ANY registry: registry name (`docker.io`, `quay.io`, `127.0.0.1:5000`) →
    /// mirror URLs `scheme://host[:port][/prefix]`, tried in order before the upstream when
    /// pulling. Requests go to `<mirror>/v2/<repository>/…`.
    pub registry_mirrors: BTreeMap<String, Vec<String>>,
    /// Docker-style `certs.d`: `<dir>/<host[:port]>/*.crt` are extra CAs for that host,
    /// `client.cert` + `client.key` a client certificate.
    pub certs_dir: Option<PathBuf>,
    /// A docker `config.json` to take credentials from when a call brings none.
    pub docker_config: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Longest silence while waiting for response headers or body bytes.
    pub read_timeout: Duration,
    /// Extra attempts after a transient failure (connection, 5xx, 429, timeout, cut body).
    pub retries: u32,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
    /// Blobs larger than this are pushed in chunks (PATCH) of this size; smaller ones in one PUT.
    pub chunk_size: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure_registries: Vec::new(),
            loopback_insecure: true,
            registry_mirrors: BTreeMap::new(),
            certs_dir: None,
            docker_config: None,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            retries: 2,
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            chunk_size: 8 << 20,
        }
    }
}

/// How one candidate base URL is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// `https://host:port[/prefix]`, no trailing slash.
    pub base: String,
    /// Verify the server certificate (false only for insecure registries).
    pub verify_tls: bool,
}

/// One logical endpoint (a mirror or the upstream) with the base URLs to try, in order, when
/// pinging it; the first that answers HTTP is used from then on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]`: key for certs.d, credentials and token caches.
    pub host: String,
    pub candidates: Vec<Candidate>,
    pub mirror: bool,
}

impl RegistryConfig {
    /// Whether `host` (`host[:port]`) may be reached insecurely.
    pub fn is_insecure(&self, host: &str) -> bool {
        let bare = strip_port(host);
        let ip = bare
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if self.loopback_insecure && (bare == "localhost" || ip.is_some_and(|ip| ip.is_loopback()))
        {
            return true;
        }
        self.insecure_registries.iter().any(|entry| {
            if entry == host || entry == bare {
                return true;
            }
            match (ip, parse_cidr(entry)) {
                (Some(ip), Some((net, bits))) => cidr_contains(net, bits, ip),
                _ => false,
            }
        })
    }

    /// The endpoints serving `registry`: its mirrors first (for pulls), then the upstream.
    pub fn endpoints(&self, registry: &str, for_push: bool) -> Result<Vec<Endpoint>> {
        let mut out = Vec::new();
        if !for_push {
            for m in self.registry_mirrors.get(registry).into_iter().flatten() {
                out.push(self.mirror_endpoint(m)?);
            }
        }
        let host = if registry == DOCKER_HUB {
            DOCKER_HUB_HOST.to_string()
        } else {
            registry.to_string()
        };
        let mut candidates = vec![Candidate {
            base: format!("https://{host}"),
            verify_tls: !self.is_insecure(&host),
        }];
        if self.is_insecure(&host) {
            candidates.push(Candidate {
                base: format!("http://{host}"),
                verify_tls: false,
            });
        }
        out.push(Endpoint {
            host,
            candidates,
            mirror: false,
        });
        Ok(out)
    }

    fn mirror_endpoint(&self, url: &str) -> Result<Endpoint> {
        let bad = |detail: &str| RegistryError::InvalidInput {
            what: "registry mirror",
            detail: format!("{url:?}: {detail}; expected scheme://host[:port][/prefix]"),
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(bad("scheme must be http or https"));
        }
        let h = parsed.host_str().ok_or_else(|| bad("no host"))?;
        let host = match parsed.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        };
        let prefix = parsed.path().trim_end_matches('/');
        let prefix = prefix.strip_suffix("/v2").unwrap_or(prefix);
        Ok(Endpoint {
            candidates: vec![Candidate {
                base: format!("{}://{host}{prefix}", parsed.scheme()),
                verify_tls: !self.is_insecure(&host),
            }],
            host,
            mirror: true,
        })
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &h[1..]).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
        let full = (bits / 8) as usize;
        let rem = bits % 8;
        if a[..full] != b[..full] {
            return false;
        }
        rem == 0 || {
            let mask = 0xffu8 << (8 - rem);
            a[full] & mask == b[full] & mask
        }
    }
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => prefix_eq(&n.octets(), &i.octets(), bits),
        (IpAddr::V6(n), IpAddr::V6(i)) => prefix_eq(&n.octets(), &i.octets(), bits),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_matching() {
        let cfg = RegistryConfig {
            insecure_registries: vec!["myreg:5000".into(), "10.1.0.0/16".into(), "plain".into()],
            ..Default::default()
        };
        assert!(cfg.is_insecure("127.0.0.1:5000"));
        assert!(cfg.is_insecure("localhost:1234"));
        assert!(cfg.is_insecure("[::1]:5000"));
        assert!(cfg.is_insecure("myreg:5000"));
        assert!(!cfg.is_insecure("myreg:5001"));
        assert!(cfg.is_insecure("plain:443"));
        assert!(cfg.is_insecure("10.1.200.3:5000"));
        assert!(!cfg.is_insecure("10.2.0.1"));
        assert!(!cfg.is_insecure("quay.io"));
        let strict = RegistryConfig {
            loopback_insecure: false,
            ..cfg
        };
        assert!(!strict.is_insecure("127.0.0.1:5000"));
        assert!(strict.is_insecure("myreg:5000"));
    }

    #[test]
    fn endpoint_plan() {
        let mut cfg = RegistryConfig::default();
        cfg.registry_mirrors.insert(
            "quay.io".into(),
            vec![
                "http://127.0.0.1:5001/".into(),
                "https://m.example/cache/v2".into(),
            ],
        );
        let eps = cfg.endpoints("quay.io", false).unwrap();
        assert_eq!(eps.len(), 3);
        assert!(eps[0].mirror && eps[1].mirror && !eps[2].mirror);
        assert_eq!(eps[0].candidates[0].base, "http://127.0.0.1:5001");
        assert_eq!(eps[1].candidates[0].base, "https://m.example/cache");
        assert!(eps[1].candidates[0].verify_tls);
        assert_eq!(eps[2].candidates.len(), 1);
        // Pushes never go to mirrors.
        assert_eq!(cfg.endpoints("quay.io", true).unwrap().len(), 1);
        // Docker Hub's API host; loopback gets https-without-verify then http.
        assert_eq!(
            cfg.endpoints("docker.io", false).unwrap()[0].host,
            DOCKER_HUB_HOST
        );
        let local = cfg.endpoints("127.0.0.1:5000", false).unwrap();
        assert_eq!(
            local[0].candidates,
            vec![
                Candidate {
                    base: "https://127.0.0.1:5000".into(),
                    verify_tls: false
                },
                Candidate {
                    base: "http://127.0.0.1:5000".into(),
                    verify_tls: false
                }
            ]
        );
        cfg.registry_mirrors
            .insert("x.io".into(), vec!["ftp://nope".into()]);
        assert!(cfg.endpoints("x.io", false).is_err());
    }
}
