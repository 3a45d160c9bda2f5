//! Basic authentication against an htpasswd file of bcrypt hashes (`htpasswd -B`), as
//! distribution's `htpasswd` auth: every request, `/v2/` included, needs a known user and
//! password; a failure is 401 with `WWW-Authenticate: Basic` and the spec's `UNAUTHORIZED`.
//! Verified credentials are remembered (bcrypt is slow by design and clients send the header
//! on every request).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// Why an htpasswd file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("htpasswd line {line}: {why}")]
pub struct HtpasswdError {
    pub line: usize,
    pub why: String,
}

/// Users and their bcrypt hashes.
#[derive(Debug, Default)]
pub struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Htpasswd {
    /// Parse `user:hash` lines (blank lines and `#` comments skipped); only bcrypt hashes.
    pub fn parse(text: &str) -> Result<Htpasswd, HtpasswdError> {
        let mut users = HashMap::new();
        for (i, l) in text.lines().enumerate() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let err = |why: &str| HtpasswdError {
                line: i + 1,
                why: why.to_string(),
            };
            let (user, hash) = l.split_once(':').ok_or_else(|| err("expected user:hash"))?;
            if !(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$")) {
                return Err(err(
                    "only bcrypt hashes are accepted (make them with htpasswd -B)",
                ));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::default(),
        })
    }

    /// Whether an `Authorization` header value names a known user with the right password.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        self.user(authorization).is_some()
    }

    /// The user a `Basic` `Authorization` header value proves to be, if it does.
    pub fn user(&self, authorization: Option<&str>) -> Option<String> {
        let encoded = authorization?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, pass) = text.split_once(':')?;
        let hash = self.users.get(user)?;
        let key: [u8; 32] = Sha256::digest(format!("{user}\0{pass}\0{hash}").as_bytes()).into();
        if self.verified.lock().expect("verified lock").contains(&key) {
            return Some(user.to_string());
        }
        if !bcrypt::verify(pass, hash).unwrap_or(false) {
            return None;
        }
        self.verified.lock().expect("verified lock").insert(key);
        Some(user.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_users_and_bad_headers() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let h = Htpasswd::parse(&format!("# users\n\nalice:{hash}\n")).unwrap();
        let basic = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert_eq!(
            h.user(Some(&basic("alice", "s3cret"))).as_deref(),
            Some("alice")
        );
        assert!(
            h.allows(Some(&basic("alice", "s3cret"))),
            "the remembered answer"
        );
        assert!(!h.allows(Some(&basic("alice", "wrong"))));
        assert!(!h.allows(Some(&basic("bob", "s3cret"))));
        assert!(!h.allows(Some("Bearer x")));
        assert!(!h.allows(Some("Basic !!!")));
        assert!(!h.allows(None));
        let e = Htpasswd::parse("bob:{SHA}abc\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(Htpasswd::parse("nocolon\n").is_err());
    }
}
