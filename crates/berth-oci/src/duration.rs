//! Go's `time.Duration.String()`: how Docker prints a duration ("50ms", "1.5s", "1m30s",
//! "2h0m0s") wherever its Go code formats one with `%s`/`%v` (health check timeouts, image
//! config health durations in texts).

use std::time::Duration;

const SEC: u128 = 1_000_000_000;

/// `v / div` with its fraction, trailing zeros dropped: Go's `fmtFrac` + `fmtInt`.
fn with_fraction(v: u128, div: u128) -> String {
    let (int, frac) = (v / div, v % div);
    if frac == 0 {
        return int.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// `d` as Go's `time.Duration.String()` prints it.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < SEC {
        let (unit, div) = match ns {
            0..=999 => ("ns", 1),
            1_000..=999_999 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{}{unit}", with_fraction(ns, div));
    }
    let (h, rest) = (ns / (3600 * SEC), ns % (3600 * SEC));
    let (m, s) = (rest / (60 * SEC), rest % (60 * SEC));
    let secs = format!("{}s", with_fraction(s, SEC));
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::go_duration;
    use std::time::Duration;

    #[test]
    fn prints_as_go_does() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(1_100), "1.1µs"),
            (Duration::from_millis(50), "50ms"),
            (Duration::from_micros(2_500), "2.5ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_nanos(1_000_000_001), "1.000000001s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(7200), "2h0m0s"),
            (Duration::from_millis(3_723_500), "1h2m3.5s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(*d), *want, "{d:?}");
        }
    }
}
