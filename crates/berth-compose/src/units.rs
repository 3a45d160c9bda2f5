//! Values Compose writes in Go's notation: durations as Go's `time.Duration.String()`
//! (`1m30s`, `500ms`), byte sizes as docker's `units.RAMInBytes` reads them (`50M`, `1gb`), and
//! commands split as a POSIX shell would (`echo "a b"` → `["echo", "a b"]`).

/// A Go duration (`90s`, `1h2m`, `1.5s`, `300ms`) in nanoseconds.
pub fn parse_duration(s: &str) -> Option<i128> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    let ns = total.round() as i128;
    Some(if neg { -ns } else { ns })
}

/// Go's `time.Duration.String()`.
pub fn format_duration(ns: i128) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if u < 1_000_000_000 {
        let (div, unit) = if u < 1_000 {
            (1, "ns")
        } else if u < 1_000_000 {
            (1_000, "µs")
        } else {
            (1_000_000, "ms")
        };
        out.push_str(&frac(u, div));
        out.push_str(unit);
        return out;
    }
    let h = u / 3_600_000_000_000;
    let rem = u % 3_600_000_000_000;
    let m = rem / 60_000_000_000;
    let s_ns = rem % 60_000_000_000;
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&frac(s_ns, 1_000_000_000));
    out.push('s');
    out
}

/// `v / div` with the fraction's trailing zeros dropped (`1500, 1000` → `1.5`).
fn frac(v: u128, div: u128) -> String {
    let whole = v / div;
    let rest = v % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{rest:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// docker's `units.RAMInBytes`: a number with an optional binary unit (`k`, `m`, `g`, `t`,
/// `p`, optionally followed by `b` or `ib`, any case).
pub fn ram_in_bytes(s: &str) -> Option<i64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..split].parse().ok()?;
    let unit = t[split..].trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((n * mult) as i64)
}

/// Split a command line as Go's `shellwords` does for Compose: whitespace separates words,
/// single quotes are literal, double quotes allow `\"` and `\\`, a backslash escapes outside
/// quotes. None when a quote is left open.
pub fn split_command(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match it.next()? {
                        '\'' => break,
                        ch => cur.push(ch),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next()? {
                        '"' => break,
                        '\\' => match it.next()? {
                            ch @ ('"' | '\\' | '$' | '`') => cur.push(ch),
                            ch => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                        },
                        ch => cur.push(ch),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = it.next() {
                    cur.push(ch);
                }
            }
            ch => {
                in_word = true;
                cur.push(ch);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        for (input, want) in [
            ("1m", "1m0s"),
            ("90s", "1m30s"),
            ("1m30s", "1m30s"),
            ("30s", "30s"),
            ("1h", "1h0m0s"),
            ("1.5s", "1.5s"),
            ("500ms", "500ms"),
            ("2h3m4s", "2h3m4s"),
            ("0", "0s"),
            ("10us", "10µs"),
        ] {
            assert_eq!(
                format_duration(parse_duration(input).unwrap()),
                want,
                "{input}"
            );
        }
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn sizes_and_commands() {
        assert_eq!(ram_in_bytes("50M"), Some(52428800));
        assert_eq!(ram_in_bytes("1gb"), Some(1 << 30));
        assert_eq!(ram_in_bytes("512KiB"), Some(512 << 10));
        assert_eq!(ram_in_bytes("1000"), Some(1000));
        assert_eq!(ram_in_bytes("1q"), None);
        assert_eq!(
            split_command(r#"echo "hello world" 'x y' a\ b "q\"d""#).unwrap(),
            vec!["echo", "hello world", "x y", "a b", "q\"d"]
        );
        assert_eq!(split_command("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_command("echo ''").unwrap(), vec!["echo", ""]);
        assert_eq!(split_command("echo 'open"), None);
    }
}
