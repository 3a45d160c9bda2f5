//! Who is logged in: one-time login tokens (minted for `berth ui` over the daemon's socket,
//! used once, short-lived) exchanged for session ids (the cookie). Both are 32 random bytes;
//! only their SHA-256 is kept, so a lookup's timing says nothing about a secret's bytes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a login token may wait for its browser.
pub const TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a session lasts after its last request.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);
/// At most this many tokens wait at once (older ones are dropped first).
const MAX_TOKENS: usize = 64;

type Key = [u8; 32];

/// Why a login token was refused (all answered 401; the text tells the user what to do).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("this login token is unknown or was already used: run `berth ui` for a new link")]
    Unknown,
    #[error("this login token has expired: run `berth ui` for a new link")]
    Expired,
}

#[derive(Default)]
struct State {
    /// token hash → when it expires
    tokens: HashMap<Key, Instant>,
    /// session hash → when it expires (pushed forward by each request)
    sessions: HashMap<Key, Instant>,
}

/// The token and session table.
pub struct Auth {
    state: Mutex<State>,
    token_ttl: Duration,
    session_idle: Duration,
}

impl Default for Auth {
    fn default() -> Self {
        Auth::new(TOKEN_TTL, SESSION_IDLE)
    }
}

fn secret() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn key(s: &str) -> Key {
    Sha256::digest(s.as_bytes()).into()
}

impl Auth {
    pub fn new(token_ttl: Duration, session_idle: Duration) -> Auth {
        Auth {
            state: Mutex::new(State::default()),
            token_ttl,
            session_idle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new one-time login token.
    pub fn mint_token(&self) -> String {
        self.mint_token_at(Instant::now())
    }

    fn mint_token_at(&self, now: Instant) -> String {
        let t = secret();
        let mut s = self.lock();
        s.tokens.retain(|_, exp| *exp > now);
        while s.tokens.len() >= MAX_TOKENS {
            let oldest = s.tokens.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k);
            match oldest {
                Some(k) => s.tokens.remove(&k),
                None => break,
            };
        }
        s.tokens.insert(key(&t), now + self.token_ttl);
        t
    }

    /// Use `token` up and open a session: its id (the cookie's value).
    pub fn exchange(&self, token: &str) -> Result<String, LoginError> {
        self.exchange_at(token, Instant::now())
    }

    fn exchange_at(&self, token: &str, now: Instant) -> Result<String, LoginError> {
        let mut s = self.lock();
        // Removed whatever happens next: a token is tried once.
        let exp = s.tokens.remove(&key(token)).ok_or(LoginError::Unknown)?;
        if exp <= now {
            return Err(LoginError::Expired);
        }
        let id = secret();
        s.sessions.retain(|_, e| *e > now);
        s.sessions.insert(key(&id), now + self.session_idle);
        Ok(id)
    }

    /// Is `session` a live session? A live one is extended.
    pub fn check(&self, session: &str) -> bool {
        self.check_at(session, Instant::now())
    }

    fn check_at(&self, session: &str, now: Instant) -> bool {
        let mut s = self.lock();
        let k = key(session);
        match s.sessions.get_mut(&k) {
            Some(exp) if *exp > now => {
                *exp = now + self.session_idle;
                true
            }
            Some(_) => {
                s.sessions.remove(&k);
                false
            }
            None => false,
        }
    }

    /// End `session` (logout).
    pub fn end(&self, session: &str) {
        self.lock().sessions.remove(&key(session));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_logs_in_once() {
        let a = Auth::default();
        let t = a.mint_token();
        assert_eq!(t.len(), 64);
        let s = a.exchange(&t).unwrap();
        assert!(a.check(&s));
        assert_eq!(a.exchange(&t), Err(LoginError::Unknown));
        assert_eq!(a.exchange("nope"), Err(LoginError::Unknown));
        assert!(!a.check(&t), "a token is not a session");
        a.end(&s);
        assert!(!a.check(&s));
    }

    #[test]
    fn tokens_and_sessions_expire() {
        let a = Auth::new(Duration::from_secs(10), Duration::from_secs(100));
        let t0 = Instant::now();
        let t = a.mint_token_at(t0);
        assert_eq!(
            a.exchange_at(&t, t0 + Duration::from_secs(11)),
            Err(LoginError::Expired)
        );
        // An expired token is gone, too.
        assert_eq!(
            a.exchange_at(&t, t0 + Duration::from_secs(1)),
            Err(LoginError::Unknown)
        );
        let t = a.mint_token_at(t0);
        let s = a.exchange_at(&t, t0).unwrap();
        // Each request pushes the idle limit forward.
        assert!(a.check_at(&s, t0 + Duration::from_secs(90)));
        assert!(a.check_at(&s, t0 + Duration::from_secs(180)));
        assert!(!a.check_at(&s, t0 + Duration::from_secs(281)));
    }

    #[test]
    fn waiting_tokens_are_bounded() {
        let a = Auth::default();
        let t0 = Instant::now();
        let first = a.mint_token_at(t0);
        for i in 1..=MAX_TOKENS as u64 {
            a.mint_token_at(t0 + Duration::from_millis(i));
        }
        assert!(a.lock().tokens.len() <= MAX_TOKENS);
        assert_eq!(a.exchange_at(&first, t0), Err(LoginError::Unknown));
    }
}
