//! Authentication vocabulary: `WWW-Authenticate` challenges, credentials, docker `config.json`
//! lookup (`auths`, `credsStore`, `credHelpers`) and token responses.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::config::{DOCKER_HUB, DOCKER_HUB_AUTH_KEY, DOCKER_HUB_HOST};
use crate::error::{RegistryError, Result};

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Username and password (or personal access token).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken` in config.json), exchanged at the token realm.
    IdentityToken(String),
    /// A bearer token to send as is (`registrytoken` in X-Registry-Auth).
    RegistryToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => write!(f, "IdentityToken(***)"),
            Credentials::RegistryToken(_) => write!(f, "RegistryToken(***)"),
        }
    }
}

impl Credentials {
    pub fn basic(username: &str, password: &str) -> Credentials {
        Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    /// Who these credentials are, for keying token caches (never the secret).
    pub(crate) fn principal(&self) -> String {
        match self {
            // The secret's hash too: another password must not reuse a cached token.
            Credentials::Basic { username, password } => {
                let d = berth_oci::Digest::of(format!("{username}:{password}").as_bytes());
                format!("user:{username}:{}", d.short())
            }
            Credentials::IdentityToken(t) | Credentials::RegistryToken(t) => {
                let d = berth_oci::Digest::of(t.as_bytes());
                format!("token:{}", d.short())
            }
        }
    }

    /// `Authorization: Basic …` value, when these are basic credentials.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            Credentials::IdentityToken(_) | Credentials::RegistryToken(_) => None,
        }
    }

    /// Decode the Engine API's `X-Registry-Auth` header (URL-safe or standard base64 of
    /// `{"username","password","auth","identitytoken","registrytoken","serveraddress"}`).
    /// An empty header or `{}` means anonymous (None).
    pub fn from_x_registry_auth(header: &str) -> Result<Option<Credentials>> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct AuthConfig {
            username: String,
            password: String,
            auth: String,
            identitytoken: String,
            registrytoken: String,
        }
        let bad = |detail: String| RegistryError::InvalidInput {
            what: "X-Registry-Auth header",
            detail,
        };
        let h = header.trim();
        if h.is_empty() {
            return Ok(None);
        }
        let raw = decode_base64_any(h).ok_or_else(|| bad("not base64".into()))?;
        let a: AuthConfig = serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))?;
        if !a.registrytoken.is_empty() {
            return Ok(Some(Credentials::RegistryToken(a.registrytoken)));
        }
        if !a.identitytoken.is_empty() {
            return Ok(Some(Credentials::IdentityToken(a.identitytoken)));
        }
        if !a.username.is_empty() || !a.password.is_empty() {
            return Ok(Some(Credentials::Basic {
                username: a.username,
                password: a.password,
            }));
        }
        if !a.auth.is_empty() {
            let up = decode_base64_any(&a.auth).ok_or_else(|| bad("auth is not base64".into()))?;
            let up = String::from_utf8(up).map_err(|_| bad("auth is not UTF-8".into()))?;
            let (u, p) = up
                .split_once(':')
                .ok_or_else(|| bad("auth is not user:password".into()))?;
            return Ok(Some(Credentials::basic(u, p)));
        }
        Ok(None)
    }
}

fn decode_base64_any(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let t = s.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(t)
        .or_else(|_| URL_SAFE.decode(s))
        .or_else(|_| STANDARD.decode(s))
        .ok()
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: String,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the server asked for (used when we have none of our own).
        scope: Option<String>,
        /// `insufficient_scope`, `invalid_token`, …
        error: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` header value (`Bearer realm="…",service="…"` / `Basic realm=…`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| params.get(k).cloned();
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic {
            realm: get("realm").unwrap_or_default(),
        }),
        "bearer" => Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
            error: get("error"),
        }),
        _ => None,
    }
}

/// `k=v, k="quoted \" value"` → map (keys lowercased).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_whitespace() || *c == ',')
        {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_string();
            }
        }
        let key = key.trim().to_ascii_lowercase();
        if !key.is_empty() {
            out.insert(key, value);
        }
        if chars.peek().is_none() {
            return out;
        }
    }
}

/// A token endpoint's answer (`token` or `access_token`, optional `expires_in` seconds).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    pub fn bearer(&self) -> Option<&str> {
        self.token
            .as_deref()
            .filter(|t| !t.is_empty())
            .or(self.access_token.as_deref().filter(|t| !t.is_empty()))
    }
}

/// The keys a registry's credentials may be stored under in `auths`.
fn auth_keys(registry: &str) -> Vec<String> {
    if registry == DOCKER_HUB || registry == DOCKER_HUB_HOST || registry == "index.docker.io" {
        vec![
            DOCKER_HUB_AUTH_KEY.to_string(),
            "index.docker.io".into(),
            "docker.io".into(),
            DOCKER_HUB_HOST.into(),
        ]
    } else {
        vec![registry.to_string()]
    }
}

/// The server URL a credential helper is asked about.
fn helper_server(registry: &str) -> String {
    if registry == DOCKER_HUB || registry == DOCKER_HUB_HOST {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        registry.to_string()
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Look up `registry`'s credentials in the docker config at `path` (missing file → None).
/// `credHelpers[registry]` wins, then `credsStore`, then `auths`. Helpers are run as
/// `docker-credential-<name> get`, found on `helper_path` (or the process PATH).
pub fn lookup_docker_config(
    path: &Path,
    registry: &str,
    helper_path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credentials>> {
    let err = |detail: String| RegistryError::Credentials {
        registry: registry.to_string(),
        detail,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(format!("reading {}: {e}", path.display()))),
    };
    let cfg: DockerConfigFile = serde_json::from_slice(&bytes)
        .map_err(|e| err(format!("parsing {}: {e}", path.display())))?;
    let keys = auth_keys(registry);
    let helper = keys
        .iter()
        .find_map(|k| cfg.cred_helpers.get(k))
        .or(cfg.creds_store.as_ref());
    if let Some(helper) = helper.filter(|h| !h.is_empty()) {
        return run_helper(helper, &helper_server(registry), helper_path).map_err(err);
    }
    let entry = keys.iter().find_map(|k| {
        cfg.auths.get(k).or_else(|| {
            cfg.auths.iter().find_map(|(key, v)| {
                let bare = key
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                let bare = bare.split('/').next().unwrap_or(bare);
                (bare == k).then_some(v)
            })
        })
    });
    let Some(entry) = entry else { return Ok(None) };
    if let Some(t) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::IdentityToken(t.clone())));
    }
    if let Some(a) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .map_err(|e| err(format!("bad base64 in auths.auth: {e}")))?;
        let s = String::from_utf8(raw).map_err(|_| err("auths.auth is not UTF-8".into()))?;
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| err("auths.auth is not user:password".into()))?;
        return Ok(Some(Credentials::basic(u, p)));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Ok(Some(Credentials::basic(u, p))),
        _ => Ok(None),
    }
}

/// Run `docker-credential-<helper> get`, server URL on stdin, JSON on stdout.
fn run_helper(
    helper: &str,
    server: &str,
    path: Option<&std::ffi::OsStr>,
) -> std::result::Result<Option<Credentials>, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Out {
        username: String,
        secret: String,
    }
    let prog = format!("docker-credential-{helper}");
    let mut cmd = Command::new(&prog);
    cmd.arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("running {prog}: {e}; install it or fix credsStore/credHelpers"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| format!("writing to {prog}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {prog}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The helper protocol's "no credentials" answer.
        if stdout.contains("credentials not found in native keychain") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{prog} get failed ({}): {}",
            out.status,
            format!("{stdout} {stderr}").trim()
        ));
    }
    let o: Out =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{prog} printed bad JSON: {e}"))?;
    if o.username == "<token>" {
        Ok(Some(Credentials::IdentityToken(o.secret)))
    } else {
        Ok(Some(Credentials::Basic {
            username: o.username,
            password: o.secret,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
                error: None,
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic {
                realm: "Registry Realm".into()
            })
        );
        assert_eq!(
            parse_challenge(
                r#"bearer realm=http://x/t, error="insufficient_scope",scope="a:b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: None,
                scope: Some("a:b:pull,push".into()),
                error: Some("insufficient_scope".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Bearer realm="a\"b""#).map(|c| match c {
                Challenge::Bearer { realm, .. } => realm,
                _ => String::new(),
            }),
            Some("a\"b".into())
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn x_registry_auth() {
        use base64::engine::general_purpose::URL_SAFE;
        let enc = |j: &str| URL_SAFE.encode(j);
        assert_eq!(Credentials::from_x_registry_auth("").unwrap(), None);
        assert_eq!(Credentials::from_x_registry_auth(&enc("{}")).unwrap(), None);
        assert_eq!(
            Credentials::from_x_registry_auth(&enc(
                r#"{"username":"u","password":"p?>","serveraddress":"r"}"#
            ))
            .unwrap(),
            Some(Credentials::basic("u", "p?>"))
        );
        assert_eq!(
            Credentials::from_x_registry_auth(&enc(r#"{"auth":"YTpi"}"#)).unwrap(),
            Some(Credentials::basic("a", "b"))
        );
        assert_eq!(
            Credentials::from_x_registry_auth(&enc(r#"{"identitytoken":"i"}"#)).unwrap(),
            Some(Credentials::IdentityToken("i".into()))
        );
        assert_eq!(
            Credentials::from_x_registry_auth(&enc(r#"{"registrytoken":"t"}"#)).unwrap(),
            Some(Credentials::RegistryToken("t".into()))
        );
        assert!(Credentials::from_x_registry_auth("!!!").is_err());
    }

    #[test]
    fn docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},
                "http://127.0.0.1:5000/v2/":{"auth":"YTpi"},
                "tok.example":{"identitytoken":"refresh"}}}"#,
        )
        .unwrap();
        assert_eq!(
            lookup_docker_config(&p, "docker.io", None).unwrap(),
            Some(Credentials::basic("user", "pa:ss"))
        );
        assert_eq!(
            lookup_docker_config(&p, "127.0.0.1:5000", None).unwrap(),
            Some(Credentials::basic("a", "b"))
        );
        assert_eq!(
            lookup_docker_config(&p, "tok.example", None).unwrap(),
            Some(Credentials::IdentityToken("refresh".into()))
        );
        assert_eq!(lookup_docker_config(&p, "quay.io", None).unwrap(), None);
        assert_eq!(
            lookup_docker_config(&dir.path().join("nope.json"), "quay.io", None).unwrap(),
            None
        );
    }

    #[test]
    fn docker_config_helpers() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // A real helper executable speaking the docker-credential protocol.
        let helper = dir.path().join("docker-credential-berthtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\nif [ \"$server\" = \"reg.example:5000\" ]; then\n  echo '{\"ServerURL\":\"reg.example:5000\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}'\nelif [ \"$server\" = \"tok.example\" ]; then\n  echo '{\"Username\":\"<token>\",\"Secret\":\"idt\"}'\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = dir.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"credsStore":"berthtest","credHelpers":{"other.example":"missing-helper"},
                "auths":{"reg.example:5000":{"auth":"eDp5"}}}"#,
        )
        .unwrap();
        let path = std::ffi::OsString::from(format!("{}:/usr/bin:/bin", dir.path().display()));
        assert_eq!(
            lookup_docker_config(&cfg, "reg.example:5000", Some(&path)).unwrap(),
            Some(Credentials::basic("alice", "s3cret"))
        );
        assert_eq!(
            lookup_docker_config(&cfg, "tok.example", Some(&path)).unwrap(),
            Some(Credentials::IdentityToken("idt".into()))
        );
        assert_eq!(
            lookup_docker_config(&cfg, "unknown.example", Some(&path)).unwrap(),
            None
        );
        let e = lookup_docker_config(&cfg, "other.example", Some(&path)).unwrap_err();
        assert!(
            e.to_string().contains("docker-credential-missing-helper"),
            "{e}"
        );
    }
}
