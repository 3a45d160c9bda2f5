//! Go's parsing rules for values dockerd reads with the Go standard library, so berth accepts
//! exactly what dockerd accepts.

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_bool_as_go() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(super::parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(super::parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "yes", "tRUE", "2"] {
            assert_eq!(super::parse_bool(bad), None, "{bad}");
        }
    }
}
