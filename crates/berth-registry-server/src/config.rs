//! `berth registry serve --config FILE`: the same settings as the flags, in YAML, keys
//! spelled as the flags (`tls-cert`, `token-policy`, …). Flags given on the command line win
//! over the file; unknown keys are refused naming them; relative paths in the file are taken
//! from the file's directory.
//!
//! ```yaml
//! addr: 127.0.0.1:5000
//! root: /var/lib/berth-registry
//! delete: true
//! htpasswd: htpasswd
//! token-policy: policy.yaml
//! ```

use std::path::Path;

use serde::Deserialize;

/// Every setting of `registry serve`; `None`: not given here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServeConfig {
    pub addr: Option<String>,
    pub root: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub htpasswd: Option<String>,
    pub insecure: Option<bool>,
    pub delete: Option<bool>,
    pub proxy: Option<String>,
    pub proxy_username: Option<String>,
    pub token_policy: Option<String>,
    pub token_key: Option<String>,
    pub token_ttl: Option<u64>,
    pub token_service: Option<String>,
    pub token_realm: Option<String>,
}

impl ServeConfig {
    /// Parse a config file's text; relative paths are resolved against `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<ServeConfig, String> {
        let mut c: ServeConfig = if text.trim().is_empty() {
            ServeConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| e.to_string())?
        };
        for p in [
            &mut c.root,
            &mut c.tls_cert,
            &mut c.tls_key,
            &mut c.htpasswd,
            &mut c.token_policy,
            &mut c.token_key,
        ]
        .into_iter()
        .flatten()
        {
            if Path::new(p.as_str()).is_relative() {
                *p = dir.join(&*p).to_string_lossy().into_owned();
            }
        }
        Ok(c)
    }

    /// `self` (the flags) over `file`: what a flag gives wins.
    pub fn over(self, file: ServeConfig) -> ServeConfig {
        ServeConfig {
            addr: self.addr.or(file.addr),
            root: self.root.or(file.root),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            htpasswd: self.htpasswd.or(file.htpasswd),
            insecure: self.insecure.or(file.insecure),
            delete: self.delete.or(file.delete),
            proxy: self.proxy.or(file.proxy),
            proxy_username: self.proxy_username.or(file.proxy_username),
            token_policy: self.token_policy.or(file.token_policy),
            token_key: self.token_key.or(file.token_key),
            token_ttl: self.token_ttl.or(file.token_ttl),
            token_service: self.token_service.or(file.token_service),
            token_realm: self.token_realm.or(file.token_realm),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_and_paths_follow_the_file() {
        let f = ServeConfig::parse(
            "addr: 0.0.0.0:5000\nroot: data\ndelete: true\ntoken-policy: /etc/p.yaml\ntoken-ttl: 60\n",
            Path::new("/srv/reg"),
        )
        .unwrap();
        assert_eq!(f.root.as_deref(), Some("/srv/reg/data"));
        assert_eq!(f.token_policy.as_deref(), Some("/etc/p.yaml"));
        let flags = ServeConfig {
            addr: Some("127.0.0.1:6000".into()),
            ..ServeConfig::default()
        };
        let c = flags.over(f);
        assert_eq!(c.addr.as_deref(), Some("127.0.0.1:6000"));
        assert_eq!((c.delete, c.token_ttl), (Some(true), Some(60)));
        assert_eq!(
            ServeConfig::parse("", Path::new("/")).unwrap(),
            ServeConfig::default()
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = ServeConfig::parse("addr: x\nstorage: /x\n", Path::new("/")).unwrap_err();
        assert!(e.contains("storage"), "{e}");
        let e = ServeConfig::parse("delete: maybe\n", Path::new("/")).unwrap_err();
        assert!(e.contains("delete") || e.contains("bool"), "{e}");
    }
}
