//! Daemon address parsing: `unix:///path`, `tcp://host:port`, `ssh://[user@]host[:port]`, or a
//! bare socket path.

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
    /// A machine reached with `ssh`, whose `berth system dial-stdio` relays to its daemon.
    Ssh(SshTarget),
}

/// Where `ssh` goes: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl std::fmt::Display for SshTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

impl SshTarget {
    /// Parse the part after `ssh://`; like docker, no path, query or password.
    fn parse(s: &str) -> Result<SshTarget, &'static str> {
        let s = s.strip_suffix('/').unwrap_or(s);
        if s.contains(['/', '?', '#']) {
            return Err("ssh hosts take no path, query or fragment");
        }
        let (user, rest) = match s.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, s),
        };
        if let Some(u) = user {
            if u.is_empty() || u.contains(':') {
                return Err("ssh user must be non-empty and carry no password");
            }
        }
        let (host, port) = match rest.strip_prefix('[') {
            Some(r) => {
                let (h, tail) = r.split_once(']').ok_or("unclosed [ in ssh host")?;
                match tail.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None if tail.is_empty() => (h, None),
                    None => return Err("junk after ] in ssh host"),
                }
            }
            None => match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            },
        };
        if host.is_empty() || host.starts_with('-') {
            return Err("missing or invalid ssh host name");
        }
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or("ssh port must be a number from 1 to 65535")?,
            ),
        };
        Ok(SshTarget {
            user: user.map(String::from),
            host: host.to_string(),
            port,
        })
    }
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
            Host::Ssh(t) => write!(f, "ssh://{t}"),
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
        if let Some(t) = s.strip_prefix("ssh://") {
            return SshTarget::parse(t).map(Host::Ssh).map_err(bad);
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
        let t = |u: Option<&str>, h: &str, p| {
            Host::Ssh(SshTarget {
                user: u.map(String::from),
                host: h.into(),
                port: p,
            })
        };
        assert_eq!(Host::parse("ssh://x").unwrap(), t(None, "x", None));
        assert_eq!(
            Host::parse("ssh://me@10.0.0.1:2222").unwrap(),
            t(Some("me"), "10.0.0.1", Some(2222))
        );
        assert_eq!(
            Host::parse("ssh://[::1]:22/").unwrap(),
            t(None, "::1", Some(22))
        );
        assert_eq!(
            Host::parse("ssh://me@h:22").unwrap().to_string(),
            "ssh://me@h:22"
        );
        for bad in [
            "ssh://",
            "ssh://h/path",
            "ssh://u:pw@h",
            "ssh://h:0",
            "ssh://h:x",
            "ssh://-oProxyCommand=x",
            "ssh://@h",
        ] {
            assert!(Host::parse(bad).is_err(), "{bad}");
        }
        assert!(Host::parse("unix://rel").is_err());
        assert_eq!(Host::default().to_string(), "unix:///run/berth/berth.sock");
    }
}
