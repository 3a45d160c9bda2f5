//! Variable interpolation as the Compose Specification defines it (compose-go's `template`):
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`,
//! `${VAR:+replacement}`, `${VAR+replacement}`, `$$` for a literal `$`; defaults and
//! replacements may themselves hold variables.

use std::collections::BTreeMap;

/// Where variables come from: the process environment, then `.env` / `--env-file`.
pub type Env = BTreeMap<String, String>;

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${VAR:?msg}` / `${VAR?msg}` with the variable unset (or empty, for `:?`).
    #[error("required variable {name} is missing a value: {message}")]
    Required { name: String, message: String },
    /// `${` without a closing brace, or a name that is not one.
    #[error(
        "invalid interpolation format for {text:?}; you may need to escape any $ with another $"
    )]
    Invalid { text: String },
}

/// The result of interpolating one string: the text and the variables that were not set
/// (Compose warns "The \"X\" variable is not set. Defaulting to a blank string.").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interpolated {
    pub text: String,
    pub unset: Vec<String>,
}

/// Interpolate `s` with `env`.
pub fn interpolate(s: &str, env: &Env) -> Result<Interpolated, InterpolateError> {
    let mut out = Interpolated::default();
    let chars: Vec<char> = s.chars().collect();
    let end = expand(&chars, 0, env, &mut out, false).map_err(|e| match e {
        InterpolateError::Invalid { .. } => InterpolateError::Invalid {
            text: s.to_string(),
        },
        other => other,
    })?;
    debug_assert_eq!(end, chars.len());
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Expand from `i` until the end (or, with `in_braces`, until the `}` closing the current
/// `${…}` default/replacement, which is consumed). Returns the index after what was read.
fn expand(
    c: &[char],
    mut i: usize,
    env: &Env,
    out: &mut Interpolated,
    in_braces: bool,
) -> Result<usize, InterpolateError> {
    let invalid = || InterpolateError::Invalid {
        text: String::new(),
    };
    // Nested `{`…`}` pairs inside a default are literal text and must balance.
    let mut depth = 0usize;
    while i < c.len() {
        match c[i] {
            '}' if in_braces && depth == 0 => return Ok(i + 1),
            '}' if in_braces => {
                depth -= 1;
                out.text.push('}');
                i += 1;
            }
            '{' if in_braces => {
                depth += 1;
                out.text.push('{');
                i += 1;
            }
            '$' => {
                let next = c.get(i + 1).copied();
                match next {
                    Some('$') => {
                        out.text.push('$');
                        i += 2;
                    }
                    Some('{') => i = braced(c, i + 2, env, out)?,
                    Some(n) if is_name_start(n) => {
                        let start = i + 1;
                        let mut j = start;
                        while j < c.len() && is_name_char(c[j]) {
                            j += 1;
                        }
                        let name: String = c[start..j].iter().collect();
                        lookup(&name, env, out);
                        i = j;
                    }
                    // A lone `$` (end of text, or before a character that cannot start a
                    // name) is kept, as compose-go keeps it.
                    _ => {
                        out.text.push('$');
                        i += 1;
                    }
                }
            }
            ch => {
                out.text.push(ch);
                i += 1;
            }
        }
    }
    if in_braces {
        return Err(invalid());
    }
    Ok(i)
}

fn lookup(name: &str, env: &Env, out: &mut Interpolated) {
    match env.get(name) {
        Some(v) => out.text.push_str(v),
        None => {
            if !out.unset.iter().any(|u| u == name) {
                out.unset.push(name.to_string());
            }
        }
    }
}

/// After `${`: a name, then `}` or an operator and its word.
fn braced(
    c: &[char],
    mut i: usize,
    env: &Env,
    out: &mut Interpolated,
) -> Result<usize, InterpolateError> {
    let invalid = || InterpolateError::Invalid {
        text: String::new(),
    };
    let start = i;
    if i >= c.len() || !is_name_start(c[i]) {
        return Err(invalid());
    }
    while i < c.len() && is_name_char(c[i]) {
        i += 1;
    }
    let name: String = c[start..i].iter().collect();
    let value = env.get(&name);
    let Some(&op) = c.get(i) else {
        return Err(invalid());
    };
    if op == '}' {
        lookup(&name, env, out);
        return Ok(i + 1);
    }
    let (colon, op) = if op == ':' {
        (true, c.get(i + 1).copied().ok_or_else(invalid)?)
    } else {
        (false, op)
    };
    i += if colon { 2 } else { 1 };
    // "set" for the colon forms means set and not empty.
    let set = match value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    // The word after the operator, expanded on its own.
    let mut word = Interpolated::default();
    let after = expand(c, i, env, &mut word, true)?;
    match op {
        '-' => {
            if set {
                out.text
                    .push_str(value.map(String::as_str).unwrap_or_default());
            } else {
                out.text.push_str(&word.text);
                merge_unset(out, word.unset);
            }
        }
        '?' => {
            if set {
                out.text
                    .push_str(value.map(String::as_str).unwrap_or_default());
            } else {
                return Err(InterpolateError::Required {
                    name,
                    message: word.text,
                });
            }
        }
        '+' => {
            if set {
                out.text.push_str(&word.text);
                merge_unset(out, word.unset);
            }
        }
        _ => return Err(invalid()),
    }
    Ok(after)
}

fn merge_unset(out: &mut Interpolated, unset: Vec<String>) {
    for u in unset {
        if !out.unset.contains(&u) {
            out.unset.push(u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        [("A", "a"), ("E", ""), ("N", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn i(s: &str) -> String {
        interpolate(s, &env()).unwrap().text
    }

    #[test]
    fn the_specification_forms() {
        assert_eq!(i("$A ${A} x$A-y"), "a a xa-y");
        assert_eq!(i("${U:-def} ${E:-def} ${E-def} ${U-def}"), "def def  def");
        assert_eq!(i("${A:+rep} ${E:+rep}|${E+rep} ${U+rep}"), "rep |rep ");
        assert_eq!(i("$$A $${A} cost: 5$"), "$A ${A} cost: 5$");
        assert_eq!(i("${U:-${A}-${N}}"), "a-1");
        assert_eq!(i("${U:-{x}}"), "{x}");
        assert_eq!(i("${U:-a b:c}"), "a b:c");
        assert_eq!(i("100%$ $1 $-"), "100%$ $1 $-");
    }

    #[test]
    fn unset_variables_are_reported_and_blank() {
        let r = interpolate("x${U}y$V${U}", &env()).unwrap();
        assert_eq!(r.text, "xy");
        assert_eq!(r.unset, vec!["U".to_string(), "V".to_string()]);
        // A default hides the variable but not one inside the default.
        let r = interpolate("${U:-${W}}", &env()).unwrap();
        assert_eq!(r.unset, vec!["W".to_string()]);
    }

    #[test]
    fn required_variables_and_bad_templates() {
        assert_eq!(
            interpolate("${U:?set U first}", &env())
                .unwrap_err()
                .to_string(),
            "required variable U is missing a value: set U first"
        );
        assert!(interpolate("${E:?empty}", &env()).is_err());
        assert_eq!(i("${E?empty}"), "");
        for bad in ["${", "${A", "${A:-x", "${1}", "${ A}", "${A!x}"] {
            let e = interpolate(bad, &env()).unwrap_err();
            assert!(
                matches!(&e, InterpolateError::Invalid { text } if text == bad),
                "{bad}: {e:?}"
            );
        }
    }
}
