//! The built-in token issuer, shaped as distribution's token auth: a 401 names a realm
//! (`<scheme>://<host>/auth/token`), a service and the scope the request needs; the realm
//! answers `{"token","access_token","expires_in","issued_at"}` for Basic credentials (or none:
//! anonymous) with the scopes the [`Policy`] grants; the server then accepts
//! `Authorization: Bearer <token>` whose signature, expiry, audience and `access` cover the
//! route's action. Tokens are JWTs signed with HMAC-SHA256 under a key the server holds
//! (random at start, or read from a key file so tokens outlive a restart).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::policy::Policy;

/// The `iss` of every token this server signs.
pub const ISSUER: &str = "berth-registry";

/// One grant, as distribution's `access` claim: `{"type","name","actions"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Access {
    /// Parse a scope (`repository:team/app:pull,push`, `registry:catalog:*`): the type up to
    /// the first `:`, the actions after the last one, the name between.
    pub fn parse_scope(scope: &str) -> Option<Access> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        // A resource class (`repository(plugin)`) is accepted and ignored.
        let kind = kind.split('(').next().unwrap_or(kind);
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        Some(Access {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(String::from)
                .collect(),
        })
    }

    /// The scope string a challenge names.
    pub fn scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// What a token says (registered claims plus distribution's `access`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user, empty for anonymous.
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<Access>,
}

impl Claims {
    /// Whether the token grants `action` on `kind:name`.
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|a| {
            a.kind == kind && a.name == name && a.actions.iter().any(|x| x == action || x == "*")
        })
    }
}

/// Why a bearer token was refused (the `error_description` of the challenge).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token signature invalid")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token issued for another service or issuer")]
    Audience,
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |x: u8| k.map(|b| b ^ x);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Clock skew tolerated on `nbf`.
const LEEWAY: u64 = 60;

/// The issuer's settings: signing key, service name, lifetime, policy.
pub struct TokenAuth {
    key: Vec<u8>,
    /// The `service` of challenges and the `aud` of tokens.
    pub service: String,
    pub ttl: Duration,
    pub policy: Policy,
    /// The realm to announce; `None`: `<scheme>://<Host>/auth/token` of the request.
    pub realm: Option<String>,
}

impl std::fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuth")
            .field("service", &self.service)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Shortest signing key accepted from a key file.
pub const MIN_KEY: usize = 32;

impl TokenAuth {
    /// An issuer signing with `key` (at least [`MIN_KEY`] bytes), or a random key when `None`.
    pub fn new(
        key: Option<Vec<u8>>,
        service: String,
        ttl: Duration,
        policy: Policy,
        realm: Option<String>,
    ) -> Result<TokenAuth, String> {
        let key = match key {
            Some(k) if k.len() < MIN_KEY => {
                return Err(format!(
                    "the signing key has {} bytes, at least {MIN_KEY} are needed",
                    k.len()
                ))
            }
            Some(k) => k,
            None => {
                let mut k = vec![0u8; 32];
                rand::Rng::fill(&mut rand::thread_rng(), &mut k[..]);
                k
            }
        };
        Ok(TokenAuth {
            key,
            service,
            ttl,
            policy,
            realm,
        })
    }

    /// Sign `claims` as a compact JWT.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = b64(&serde_json::to_vec(claims).expect("claims serialise"));
        let signed = format!("{header}.{payload}");
        let mac = hmac_sha256(&self.key, signed.as_bytes());
        format!("{signed}.{}", b64(&mac))
    }

    /// Check a token's signature, algorithm, issuer, audience and lifetime.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let dec = |x: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(x)
                .map_err(|_| TokenError::Malformed)
        };
        let header: serde_json::Value =
            serde_json::from_slice(&dec(h)?).map_err(|_| TokenError::Malformed)?;
        // Only the algorithm this server signs with: never `none`, never another one.
        if header["alg"] != "HS256" {
            return Err(TokenError::Signature);
        }
        let want = hmac_sha256(&self.key, format!("{h}.{p}").as_bytes());
        let got = dec(s)?;
        let same = got.len() == want.len()
            && got
                .iter()
                .zip(want.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(TokenError::Signature);
        }
        let claims: Claims = serde_json::from_slice(&dec(p)?).map_err(|_| TokenError::Malformed)?;
        if claims.iss != ISSUER || claims.aud != self.service {
            return Err(TokenError::Audience);
        }
        let t = now();
        if claims.exp <= t {
            return Err(TokenError::Expired);
        }
        if claims.nbf > t + LEEWAY {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }

    /// A token for `user` (None: anonymous) holding what the policy grants of `requested`.
    pub fn issue(&self, user: Option<&str>, requested: &[Access]) -> (String, Claims) {
        let access = requested
            .iter()
            .filter_map(|r| {
                let actions = self.policy.grant(user, &r.kind, &r.name, &r.actions);
                (!actions.is_empty()).then(|| Access {
                    kind: r.kind.clone(),
                    name: r.name.clone(),
                    actions,
                })
            })
            .collect();
        let t = now();
        let mut jti = [0u8; 12];
        rand::Rng::fill(&mut rand::thread_rng(), &mut jti);
        let claims = Claims {
            iss: ISSUER.to_string(),
            sub: user.unwrap_or_default().to_string(),
            aud: self.service.clone(),
            exp: t + self.ttl.as_secs().max(1),
            nbf: t,
            iat: t,
            jti: hex::encode(jti),
            access,
        };
        (self.sign(&claims), claims)
    }

    /// The `WWW-Authenticate` value asking for `needed` (None: any valid token, as `/v2/`).
    pub fn challenge(
        &self,
        request_realm: &str,
        needed: Option<&Access>,
        error: Option<&str>,
    ) -> String {
        let realm = self.realm.as_deref().unwrap_or(request_realm);
        let mut c = format!("Bearer realm=\"{realm}\",service=\"{}\"", self.service);
        if let Some(a) = needed {
            c.push_str(&format!(",scope=\"{}\"", a.scope()));
        }
        if let Some(e) = error {
            c.push_str(&format!(",error=\"{e}\""));
        }
        c
    }
}

/// RFC 3339 UTC time of a Unix timestamp (the token answer's `issued_at`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(ttl: u64) -> TokenAuth {
        let policy = Policy::parse("users:\n  alice:\n    \"team/*\": [pull, push]\n").unwrap();
        TokenAuth::new(
            Some(vec![7u8; 32]),
            "reg".into(),
            Duration::from_secs(ttl),
            policy,
            None,
        )
        .unwrap()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn scopes_parse_like_distribution() {
        assert_eq!(
            Access::parse_scope("repository:team/app:pull,push"),
            Some(Access {
                kind: "repository".into(),
                name: "team/app".into(),
                actions: vec!["pull".into(), "push".into()]
            })
        );
        let a = Access::parse_scope("repository(plugin):host:5000/x:pull").unwrap();
        assert_eq!(
            (a.kind.as_str(), a.name.as_str()),
            ("repository", "host:5000/x")
        );
        assert_eq!(
            Access::parse_scope("registry:catalog:*").unwrap().scope(),
            "registry:catalog:*"
        );
        assert_eq!(Access::parse_scope("repository:x"), None);
        assert_eq!(Access::parse_scope(":x:pull"), None);
    }

    #[test]
    fn tokens_carry_what_the_policy_grants_and_nothing_forged_passes() {
        let iss = issuer(300);
        let want = [
            Access::parse_scope("repository:team/app:pull,push,delete").unwrap(),
            Access::parse_scope("repository:other/app:pull").unwrap(),
        ];
        let (tok, claims) = iss.issue(Some("alice"), &want);
        assert_eq!(
            claims.access,
            vec![Access::parse_scope("repository:team/app:pull,push").unwrap()]
        );
        let back = iss.verify(&tok).unwrap();
        assert_eq!(back, claims);
        assert!(back.allows("repository", "team/app", "push"));
        assert!(!back.allows("repository", "team/app", "delete"));
        assert!(!back.allows("repository", "other/app", "pull"));
        // Anonymous gets nothing from this policy.
        assert!(iss.issue(None, &want).1.access.is_empty());

        // A payload changed after signing.
        let parts: Vec<&str> = tok.split('.').collect();
        let mut forged = claims.clone();
        forged.access[0].actions.push("delete".into());
        let p = b64(&serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            iss.verify(&format!("{}.{p}.{}", parts[0], parts[2])),
            Err(TokenError::Signature)
        );
        // Signed with another key.
        let other = TokenAuth::new(
            Some(vec![8u8; 32]),
            "reg".into(),
            Duration::from_secs(300),
            Policy::default(),
            None,
        )
        .unwrap();
        assert_eq!(iss.verify(&other.sign(&claims)), Err(TokenError::Signature));
        // alg none.
        let none = format!("{}.{p}.", b64(br#"{"alg":"none"}"#));
        assert_eq!(iss.verify(&none), Err(TokenError::Signature));
        // Another audience, expired, garbage.
        let mut aud = claims.clone();
        aud.aud = "elsewhere".into();
        assert_eq!(iss.verify(&iss.sign(&aud)), Err(TokenError::Audience));
        let mut old = claims.clone();
        old.exp = now() - 1;
        assert_eq!(iss.verify(&iss.sign(&old)), Err(TokenError::Expired));
        let mut early = claims;
        early.nbf = now() + 3600;
        assert_eq!(iss.verify(&iss.sign(&early)), Err(TokenError::NotYetValid));
        assert_eq!(iss.verify("a.b"), Err(TokenError::Malformed));
        assert!(TokenAuth::new(
            Some(vec![1; 8]),
            "x".into(),
            Duration::from_secs(1),
            Policy::default(),
            None
        )
        .is_err());
    }

    #[test]
    fn challenges_and_times() {
        let iss = issuer(300);
        let a = Access::parse_scope("repository:team/app:push").unwrap();
        assert_eq!(
            iss.challenge(
                "http://h:5000/auth/token",
                Some(&a),
                Some("insufficient_scope")
            ),
            r#"Bearer realm="http://h:5000/auth/token",service="reg",scope="repository:team/app:push",error="insufficient_scope""#
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_601_600 + 3661), "2026-12-07T01:01:01Z");
    }
}
