//! Detach keys: Docker's `ctrl-p,ctrl-q` notation and the stdin filter that watches for the
//! sequence (moby's escape proxy: a partial match is held back until it fails or completes).

/// The daemon's default detach sequence.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// `ctrl-p,ctrl-q` → bytes (moby's `term.ToBytes`): `ctrl-a`..`ctrl-z`, `ctrl-@`, `ctrl-[`,
/// `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_`, or one plain character per element.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("Invalid detach keys ({s}) provided");
    let mut out = vec![];
    for k in s.split(',') {
        let k = k.trim();
        let lower = k.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            if c.len() != 1 {
                return Err(bad());
            }
            out.push(match c.as_bytes()[0] {
                b @ b'a'..=b'z' => b - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(bad()),
            });
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}

/// Watches a stdin byte stream for the detach sequence.
#[derive(Debug, Default)]
pub struct EscapeProxy {
    keys: Vec<u8>,
    /// Bytes of a partial match, not yet forwarded.
    held: Vec<u8>,
}

/// What to do with one chunk of client input.
#[derive(Debug, PartialEq, Eq)]
pub struct Filtered {
    /// Bytes to forward to the process.
    pub forward: Vec<u8>,
    /// The full sequence was read: detach after forwarding.
    pub detach: bool,
}

impl EscapeProxy {
    /// An empty sequence never detaches.
    pub fn new(keys: Vec<u8>) -> EscapeProxy {
        EscapeProxy {
            keys,
            held: Vec::new(),
        }
    }

    pub fn feed(&mut self, data: &[u8]) -> Filtered {
        let mut forward = Vec::with_capacity(data.len());
        if self.keys.is_empty() {
            forward.extend_from_slice(data);
            return Filtered {
                forward,
                detach: false,
            };
        }
        for &b in data {
            if b == self.keys[self.held.len()] {
                self.held.push(b);
                if self.held.len() == self.keys.len() {
                    self.held.clear();
                    return Filtered {
                        forward,
                        detach: true,
                    };
                }
                continue;
            }
            // Mismatch: what was held goes through; this byte may start a new match.
            forward.append(&mut self.held);
            if b == self.keys[0] {
                self.held.push(b);
            } else {
                forward.push(b);
            }
        }
        Filtered {
            forward,
            detach: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_notation() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-P").unwrap(), vec![16]);
        assert_eq!(
            parse_detach_keys("a,ctrl-@,ctrl-_").unwrap(),
            vec![b'a', 0, 31]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
        assert!(parse_detach_keys("").is_err());
    }

    #[test]
    fn holds_partial_matches_across_reads() {
        let mut p = EscapeProxy::new(vec![16, 17]);
        let r = p.feed(b"ab\x10");
        assert_eq!(r.forward, b"ab");
        assert!(!r.detach);
        let r = p.feed(b"\x11rest");
        assert_eq!(r.forward, b"");
        assert!(r.detach);
        // A failed partial match is forwarded whole.
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(b"\x10").forward, b"");
        assert_eq!(p.feed(b"x").forward, b"\x10x");
        // A repeated first key restarts the match.
        let r = p.feed(b"\x10\x10\x11");
        assert_eq!(r.forward, b"\x10");
        assert!(r.detach);
        // No keys: everything passes.
        let mut p = EscapeProxy::new(vec![]);
        assert_eq!(p.feed(b"\x10\x11").forward, b"\x10\x11");
    }
}
