//! Daemon address parsing: `unix:///path`, `tcp://host:port`, or a bare socket path.

use std::path::PathBuf;

use crate::Error;

/// The default daemon socket.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A unix socket path.
    Unix(PathBuf),
    /// A `host:port` TCP address (plain HTTP).
    Tcp(String),
}

impl Default for Host {
    fn default() -> Self {
        Host::Unix(PathBuf::from(DEFAULT_SOCKET))
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

impl Host {
    /// Parse `unix:///run/x.sock`, `tcp://127.0.0.1:2375`, `/abs/path.sock`.
    pub fn parse(s: &str) -> Result<Host, Error> {
        let bad = |why: &str| Error::InvalidHost {
            host: s.to_string(),
            why: why.to_string(),
        };
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Ok(Host::default());
            }
            if !p.starts_with('/') {
                return Err(bad("unix socket path must be absolute"));
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
        {
            let a = a.trim_end_matches('/');
            if a.is_empty() {
                return Err(bad("missing address"));
            }
            let a = if a
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                a.to_string()
            } else {
                format!("{a}:2375")
            };
            return Ok(Host::Tcp(a));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        Err(bad("unknown scheme"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(
            Host::parse("unix:///tmp/a.sock").unwrap(),
            Host::Unix("/tmp/a.sock".into())
        );
        assert_eq!(
            Host::parse("/x.sock").unwrap(),
            Host::Unix("/x.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2375").unwrap(),
            Host::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            Host::parse("tcp://localhost").unwrap(),
            Host::Tcp("localhost:2375".into())
        );
        assert!(Host::parse("ssh://x").is_err());
        assert!(Host::parse("unix://rel").is_err());
        assert_eq!(Host::default().to_string(), "unix:///run/berth/berth.sock");
    }
}
