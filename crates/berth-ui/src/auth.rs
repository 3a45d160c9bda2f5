//! Who is logged in: one-time login tokens (minted for `berth ui` over the daemon's socket,
//! used once, short-lived) exchanged for session ids (the cookie). Both are 32 random bytes;
//! only their SHA-256 is kept, so a lookup's timing says nothing about a secret's bytes.
//! Sessions (hashes and expiry times only) are kept in a file when given one (the daemon's
//! runtime dir), so an open dashboard stays logged in across a daemon restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a login token may wait for its browser.
pub const TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a session lasts after its login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// At most this many tokens wait at once (older ones are dropped first).
const MAX_TOKENS: usize = 64;

type Key = [u8; 32];
/// Seconds since the epoch (wall clock: session expiries outlive the process).
type Time = u64;

fn now() -> Time {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

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
    tokens: HashMap<Key, Time>,
    /// session hash → when it expires
    sessions: HashMap<Key, Time>,
}

/// The token and session table.
pub struct Auth {
    state: Mutex<State>,
    token_ttl: Duration,
    session_ttl: Duration,
    /// Where sessions are kept across restarts (none: memory only).
    store: Option<PathBuf>,
}

impl Default for Auth {
    fn default() -> Self {
        Auth::new(TOKEN_TTL, SESSION_TTL)
    }
}

fn to_hex(k: &Key) -> String {
    k.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Key> {
    let mut k = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(k)
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
    pub fn new(token_ttl: Duration, session_ttl: Duration) -> Auth {
        Auth {
            state: Mutex::new(State::default()),
            token_ttl,
            session_ttl,
            store: None,
        }
    }

    /// Keep sessions in `file` (0600; read now, rewritten at each login and logout). A file
    /// that cannot be read or parsed is ignored: its sessions log in again.
    pub fn persisted(mut self, file: PathBuf) -> Auth {
        if let Ok(b) = std::fs::read(&file) {
            match serde_json::from_slice::<HashMap<String, Time>>(&b) {
                Ok(m) => {
                    let t = now();
                    let mut s = self.lock();
                    s.sessions = m
                        .iter()
                        .filter(|(_, exp)| **exp > t)
                        .filter_map(|(k, exp)| Some((from_hex(k)?, *exp)))
                        .collect();
                }
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "ignoring the dashboard's session file")
                }
            }
        }
        self.store = Some(file);
        self
    }

    /// Write the session table to the store, if any (under the lock, so writes keep order).
    fn save(&self, s: &State) {
        let Some(file) = &self.store else {
            return;
        };
        let m: HashMap<String, Time> = s.sessions.iter().map(|(k, e)| (to_hex(k), *e)).collect();
        let bytes = serde_json::to_vec(&m).unwrap_or_default();
        let opts = berth_rootfs::atomic::Options {
            durable: false,
            ..Default::default()
        };
        if let Err(e) = berth_rootfs::atomic::write_atomic_with(file, &bytes, opts) {
            tracing::warn!(file = %file.display(), error = %e, "cannot keep the dashboard's sessions");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new one-time login token.
    pub fn mint_token(&self) -> String {
        self.mint_token_at(now())
    }

    fn mint_token_at(&self, now: Time) -> String {
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
        s.tokens.insert(key(&t), now + self.token_ttl.as_secs());
        t
    }

    /// Use `token` up and open a session: its id (the cookie's value).
    pub fn exchange(&self, token: &str) -> Result<String, LoginError> {
        self.exchange_at(token, now())
    }

    fn exchange_at(&self, token: &str, now: Time) -> Result<String, LoginError> {
        let mut s = self.lock();
        // Removed whatever happens next: a token is tried once.
        let exp = s.tokens.remove(&key(token)).ok_or(LoginError::Unknown)?;
        if exp <= now {
            return Err(LoginError::Expired);
        }
        let id = secret();
        s.sessions.retain(|_, e| *e > now);
        s.sessions
            .insert(key(&id), now + self.session_ttl.as_secs());
        self.save(&s);
        Ok(id)
    }

    /// Is `session` a live session?
    pub fn check(&self, session: &str) -> bool {
        self.check_at(session, now())
    }

    fn check_at(&self, session: &str, now: Time) -> bool {
        let mut s = self.lock();
        let k = key(session);
        match s.sessions.get(&k) {
            Some(exp) if *exp > now => true,
            Some(_) => {
                s.sessions.remove(&k);
                false
            }
            None => false,
        }
    }

    /// End `session` (logout).
    pub fn end(&self, session: &str) {
        let mut s = self.lock();
        s.sessions.remove(&key(session));
        self.save(&s);
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
        let t0 = 1_000_000;
        let t = a.mint_token_at(t0);
        assert_eq!(a.exchange_at(&t, t0 + 11), Err(LoginError::Expired));
        // An expired token is gone, too.
        assert_eq!(a.exchange_at(&t, t0 + 1), Err(LoginError::Unknown));
        let t = a.mint_token_at(t0);
        let s = a.exchange_at(&t, t0).unwrap();
        assert!(a.check_at(&s, t0 + 99));
        assert!(!a.check_at(&s, t0 + 100));
    }

    #[test]
    fn waiting_tokens_are_bounded() {
        let a = Auth::default();
        let t0 = 1_000_000;
        let first = a.mint_token_at(t0);
        for i in 1..=MAX_TOKENS as u64 {
            a.mint_token_at(t0 + i);
        }
        assert!(a.lock().tokens.len() <= MAX_TOKENS);
        assert_eq!(a.exchange_at(&first, t0), Err(LoginError::Unknown));
    }

    #[test]
    fn sessions_outlive_the_process_in_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ui-sessions.json");
        let a = Auth::default().persisted(file.clone());
        let (s1, s2) = (
            a.exchange(&a.mint_token()).unwrap(),
            a.exchange(&a.mint_token()).unwrap(),
        );
        a.end(&s2);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&s1),
            "the file holds a session id, not its hash"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A new process: the live session still works, the ended one does not.
        let b = Auth::default().persisted(file.clone());
        assert!(b.check(&s1));
        assert!(!b.check(&s2));
        // A damaged file is ignored.
        std::fs::write(&file, "{").unwrap();
        assert!(!Auth::default().persisted(file).check(&s1));
    }
}
