//! Docker's human units (go-units): decimal sizes for display, binary sizes for flags,
//! "2 hours" durations, and duration flag parsing ("1m30s").

use std::time::Duration;

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// Format `v` like C/Go `%.{prec}g`.
pub fn fmt_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    // round to prec significant digits, which may bump the exponent
    let s = format!("{:.*e}", prec.saturating_sub(1), v);
    let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if e < -4 || e >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", e.abs());
    }
    let decimals = (prec as i32 - 1 - e).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// go-units `HumanSizeWithPrecision`: decimal units, e.g. 4_260_000 → "4.26MB" (prec 3).
pub fn human_size_prec(size: f64, prec: usize) -> String {
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < DECIMAL.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", fmt_g(s, prec), DECIMAL[i])
}

/// go-units `HumanSize` (precision 4), used by `system df`, `ps -s`.
pub fn human_size(size: i64) -> String {
    human_size_prec(size as f64, 4)
}

/// go-units `BytesSize`: binary units, e.g. 1536 → "1.5KiB" (used by stats).
pub fn bytes_size(size: f64) -> String {
    const B: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1024.0 && i < B.len() - 1 {
        s /= 1024.0;
        i += 1;
    }
    format!("{}{}", fmt_g(s, 4), B[i])
}

/// go-units `HumanDuration`: "Less than a second", "About a minute", "3 hours", "2 weeks".
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let s = secs.round() as i64;
    let minutes = (secs / 60.0).round() as i64;
    let hours = (secs / 3600.0 + 0.5) as i64;
    if secs < 1.0 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// "2 hours ago" for a unix timestamp relative to `now`.
pub fn ago(created: i64, now: i64) -> String {
    let d = Duration::from_secs((now - created).max(0) as u64);
    format!("{} ago", human_duration(d))
}

/// Seconds since the epoch now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// go-units `RAMInBytes`: "10m" → 10485760; binary multipliers; "invalid size: '10q'".
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let t = s.trim_end_matches(['b', 'B']);
    let t = t.strip_suffix(['i', 'I']).unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let m: i64 = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                't' => 1 << 40,
                'p' => 1 << 50,
                _ => return Err(bad()),
            };
            (t[..t.len() - 1].trim_end(), m)
        }
        _ => (t, 1),
    };
    if num.is_empty()
        || !num.chars().all(|c| c.is_ascii_digit() || c == '.')
        || num.starts_with('.')
    {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    Ok((v * mult as f64) as i64)
}

/// Go `time.ParseDuration` subset: "300ms", "1.5h", "2m30s", "10s"; a bare number is rejected.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += v * mult;
        rest = &rest[u..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size_prec(4_260_000.0, 3), "4.26MB");
        assert_eq!(human_size_prec(1_990_123.0, 3), "1.99MB");
        assert_eq!(human_size_prec(0.0, 3), "0B");
        assert_eq!(human_size_prec(1000.0, 3), "1kB");
        assert_eq!(human_size_prec(123_456.0, 3), "123kB");
        assert_eq!(human_size(74_500_000), "74.5MB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(fmt_g(1234.5, 3), "1.23e+03");
    }

    #[test]
    fn durations_like_docker() {
        let d = |s| human_duration(Duration::from_secs(s));
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(d(1), "1 second");
        assert_eq!(d(45), "45 seconds");
        assert_eq!(d(60), "About a minute");
        assert_eq!(d(600), "10 minutes");
        assert_eq!(d(3600), "About an hour");
        assert_eq!(d(7200), "2 hours");
        assert_eq!(d(3 * 86400), "3 days");
        assert_eq!(d(20 * 86400), "2 weeks");
        assert_eq!(d(90 * 86400), "3 months");
        assert_eq!(d(800 * 86400), "2 years");
        assert_eq!(ago(100, 7300), "2 hours ago");
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(ram_in_bytes("10m"), Ok(10 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("512"), Ok(512));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("10q"), Err("invalid size: '10q'".into()));
        assert!(ram_in_bytes("").is_err());
        assert!(ram_in_bytes("m").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("5x").is_err());
    }
}
