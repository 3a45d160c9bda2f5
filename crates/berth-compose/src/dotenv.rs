//! `.env` and `env_file` files as Compose reads them: `KEY=VALUE` lines, `export` prefixes,
//! `#` comments, single quotes (literal), double quotes (escapes, interpolation), unquoted
//! values (trailing ` #comment` dropped, interpolation), and a bare `KEY` (taken from the
//! environment when set).

use crate::interpolate::{interpolate, Env};

/// A line that does not parse; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct DotenvError {
    pub line: usize,
    pub why: String,
}

/// Parse `text`. Later lines see earlier ones (and `lookup`) for `${VAR}`; a bare `KEY` line
/// takes its value from `lookup` and is left out when unset.
pub fn parse(text: &str, lookup: &Env) -> Result<Vec<(String, String)>, DotenvError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, raw)) = lines.next() {
        let line_no = n + 1;
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let err = |why: &str| DotenvError {
            line: line_no,
            why: why.to_string(),
        };
        let (key, rest) = match line.find(['=', ':']) {
            Some(i) if line[i..].starts_with('=') => (line[..i].trim_end(), Some(&line[i + 1..])),
            Some(_) => return Err(err("expected KEY=VALUE")),
            None => (line.trim_end(), None),
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(err(&format!(
                "unexpected character in variable name {key:?}"
            )));
        }
        let Some(rest) = rest else {
            if let Some(v) = lookup.get(key) {
                out.push((key.to_string(), v.clone()));
            }
            continue;
        };
        let seen: Env = lookup
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(out.iter().cloned())
            .collect();
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('\'' | '"')) => {
                // A quoted value may span lines until its closing quote.
                let mut body = rest[1..].to_string();
                let close = loop {
                    if let Some(i) = closing_quote(&body, q) {
                        break i;
                    }
                    match lines.next() {
                        Some((_, more)) => {
                            body.push('\n');
                            body.push_str(more);
                        }
                        None => return Err(err(&format!("unterminated quoted value for {key}"))),
                    }
                };
                let inner = &body[..close];
                if q == '\'' {
                    inner.to_string()
                } else {
                    let unescaped = unescape(inner);
                    interpolate(&unescaped, &seen)
                        .map_err(|e| err(&e.to_string()))?
                        .text
                }
            }
            _ => {
                let v = match rest.find(" #") {
                    Some(i) => &rest[..i],
                    None => rest,
                };
                interpolate(v.trim_end(), &seen)
                    .map_err(|e| err(&e.to_string()))?
                    .text
            }
        };
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn closing_quote(s: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if q == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == q && !escaped {
            return Some(i);
        }
        escaped = false;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_compose_reads() {
        let env: Env = [("HOME_DIR".to_string(), "/root".to_string())].into();
        let got = parse(
            "# comment\n\nA=1\nexport B = two words # note\nC='lit $A'\nD=\"esc\\n${A}x\"\nE=$HOME_DIR/x\nHOME_DIR\nMISSING\nM=\"multi\nline\"\nA=2\n",
            &env,
        )
        .unwrap();
        let m: std::collections::BTreeMap<_, _> = got.into_iter().collect();
        assert_eq!(m["A"], "2");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "lit $A");
        assert_eq!(m["D"], "esc\n1x");
        assert_eq!(m["E"], "/root/x");
        assert_eq!(m["HOME_DIR"], "/root");
        assert_eq!(m["M"], "multi\nline");
        assert!(!m.contains_key("MISSING"));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse("A=1\nB C=2\n", &Env::new()).unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("A=\"open\n", &Env::new()).unwrap_err();
        assert_eq!(e.to_string(), "line 1: unterminated quoted value for A");
    }
}
