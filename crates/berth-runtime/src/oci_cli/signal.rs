//! Signal names and numbers as runc's `kill` takes them: `KILL`, `SIGKILL`, `kill`, `9`.

use nix::sys::signal::Signal;

/// Parse a signal the way runc does (name with or without `SIG`, any case, or a number).
pub fn parse(s: &str) -> Result<Signal, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("unknown signal {s:?}"));
    }
    let up = t.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| format!("unknown signal {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL"), Ok(Signal::SIGKILL));
        assert_eq!(parse("sigterm"), Ok(Signal::SIGTERM));
        assert_eq!(parse("SIGUSR1"), Ok(Signal::SIGUSR1));
        assert_eq!(parse("9"), Ok(Signal::SIGKILL));
        assert_eq!(parse("15"), Ok(Signal::SIGTERM));
        assert!(parse("SIGNOPE").unwrap_err().contains("unknown signal"));
        assert!(parse("0").is_err());
        assert!(parse("99").is_err());
    }
}
