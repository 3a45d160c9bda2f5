//! Shell-word lexing and variable expansion with BuildKit's `ProcessWord`/`ProcessWords` semantics.
//!
//! Supported: `$var`, `${var}`, `${var:-x}`, `${var-x}`, `${var:+x}`, `${var+x}`, `${var:?msg}`,
//! `${var?msg}`, `${var#pat}`, `${var##pat}`, `${var%pat}`, `${var%%pat}`, `${var/pat/repl}`,
//! `${var//pat/repl}`, single and double quotes, and the escape character (`\` or `` ` ``).

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};

/// Something variables can be looked up in. Implemented for maps, `(key, value)` lists (last
/// entry wins, like a container's environment) and `KEY=value` string lists.
pub trait EnvGetter {
    /// The value of `name`, or `None` when it is unset (set-but-empty is `Some("")`).
    fn get_env(&self, name: &str) -> Option<&str>;
}

impl EnvGetter for HashMap<String, String> {
    fn get_env(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl EnvGetter for BTreeMap<String, String> {
    fn get_env(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl EnvGetter for [(String, String)] {
    fn get_env(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl EnvGetter for Vec<(String, String)> {
    fn get_env(&self, name: &str) -> Option<&str> {
        self.as_slice().get_env(name)
    }
}

impl EnvGetter for [String] {
    fn get_env(&self, name: &str) -> Option<&str> {
        self.iter().rev().find_map(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if kv == name => Some(""),
            _ => None,
        })
    }
}

impl EnvGetter for Vec<String> {
    fn get_env(&self, name: &str) -> Option<&str> {
        self.as_slice().get_env(name)
    }
}

impl<T: EnvGetter + ?Sized> EnvGetter for &T {
    fn get_env(&self, name: &str) -> Option<&str> {
        (**self).get_env(name)
    }
}

/// Two environments stacked: names are looked up in `.0` first, then `.1`. Use
/// `Layered(&stage_env, &stage_args)` so ENV overrides an ARG of the same name, as in Docker.
#[derive(Debug, Clone, Copy)]
pub struct Layered<A, B>(pub A, pub B);

impl<A: EnvGetter, B: EnvGetter> EnvGetter for Layered<A, B> {
    fn get_env(&self, name: &str) -> Option<&str> {
        self.0.get_env(name).or_else(|| self.1.get_env(name))
    }
}

/// An environment with no variables.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl EnvGetter for NoEnv {
    fn get_env(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Expand one word (quotes removed, variables substituted, whitespace kept) — BuildKit's
/// `ProcessWord`. Used for ENV/LABEL/ARG values, COPY/ADD paths, WORKDIR, USER, ...
pub fn expand_word(word: &str, env: &impl EnvGetter, escape: char) -> Result<String> {
    Lexer::new(escape).process_word(word, env)
}

/// Expand and split into words on unquoted whitespace — BuildKit's `ProcessWords`. Used for
/// EXPOSE and wherever one argument may expand to several.
pub fn expand_words(word: &str, env: &impl EnvGetter, escape: char) -> Result<Vec<String>> {
    Lexer::new(escape).process_words(word, env)
}

/// The configurable lexer behind [`expand_word`] and [`expand_words`].
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    /// The escape character, `\` by default or `` ` `` via the `# escape=` directive.
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written instead of expanding them to "".
    pub skip_unset_env: bool,
}

impl Lexer {
    /// A lexer with Docker's defaults for the given escape character.
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
        }
    }

    /// Expand `word` as one word.
    pub fn process_word(&self, word: &str, env: &impl EnvGetter) -> Result<String> {
        self.process(word, env).map(|(w, _)| w)
    }

    /// Expand `word` and split it into words.
    pub fn process_words(&self, word: &str, env: &impl EnvGetter) -> Result<Vec<String>> {
        self.process(word, env).map(|(_, ws)| ws)
    }

    fn process(&self, word: &str, env: &impl EnvGetter) -> Result<(String, Vec<String>)> {
        let mut sw = ShellWord {
            chars: word.chars().collect(),
            pos: 0,
            lexer: *self,
            env,
        };
        sw.process_stop_on(None).map_err(|message| Error::Expand {
            word: word.to_string(),
            message,
        })
    }
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

type LexResult<T> = std::result::Result<T, String>;

struct ShellWord<'a, E: EnvGetter + ?Sized> {
    chars: Vec<char>,
    pos: usize,
    lexer: Lexer,
    env: &'a E,
}

impl<E: EnvGetter + ?Sized> ShellWord<'_, E> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn process_stop_on(&mut self, stop: Option<char>) -> LexResult<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '\'' | '"' | '$' => {
                    let tmp = match ch {
                        '\'' => self.process_single_quote()?,
                        '"' => self.process_double_quote()?,
                        _ => self.process_dollar()?,
                    };
                    result.push_str(&tmp);
                    if ch == '$' {
                        words.add_string(&tmp);
                    } else {
                        words.add_raw_string(&tmp);
                    }
                }
                _ => {
                    self.next();
                    if ch == self.lexer.escape {
                        if self.lexer.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        match self.next() {
                            None => break,
                            Some(esc) => {
                                words.add_raw_char(esc);
                                result.push(esc);
                            }
                        }
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> LexResult<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> LexResult<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(mut ch) => {
                    self.next();
                    if ch == self.lexer.escape {
                        if self.lexer.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lexer.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env.get_env(name).map(str::to_string)
    }

    fn process_dollar(&mut self) -> LexResult<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.process_name();
        let ch = self.next();
        let value = self.lookup(&name);
        let skip = self.lexer.skip_unset_env && value.is_none();
        match ch {
            Some('}') => Ok(match value {
                Some(v) => v,
                None if skip => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(op @ ('?' | '-' | '+')) => {
                let word = self.word_until_brace()?;
                if skip {
                    return Ok(format!("${{{name}{op}{word}}}"));
                }
                match (op, value) {
                    ('?', None) => Err(unset_message(&name, &word)),
                    ('-', None) => Ok(word),
                    ('+', Some(_)) => Ok(word),
                    ('+', None) => Ok(String::new()),
                    (_, Some(v)) => Ok(v),
                    _ => unreachable!("operators are matched above"),
                }
            }
            Some(':') => {
                let modifier = self.next();
                let word = self.word_until_brace()?;
                if skip {
                    let m: String = modifier.into_iter().collect();
                    return Ok(format!("${{{name}:{m}{word}}}"));
                }
                let value = value.unwrap_or_default();
                match modifier {
                    Some('+') => Ok(if value.is_empty() {
                        String::new()
                    } else {
                        word
                    }),
                    Some('-') => Ok(if value.is_empty() { word } else { value }),
                    Some('?') if value.is_empty() => Err(unset_message(&name, &word)),
                    Some('?') => Ok(value),
                    Some(m) => Err(format!("unsupported modifier ({m}) in substitution")),
                    None => Err("syntax error: missing '}'".into()),
                }
            }
            Some(op @ ('#' | '%')) => {
                let longest = self.peek() == Some(op);
                if longest {
                    self.next();
                }
                let pattern = self.word_until_brace()?;
                if skip {
                    let ops = if longest {
                        format!("{op}{op}")
                    } else {
                        op.to_string()
                    };
                    return Ok(format!("${{{name}{ops}{pattern}}}"));
                }
                let value = value.unwrap_or_default();
                Ok(trim_pattern(&value, &pattern, op == '#', longest))
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let (pattern, _) = self.process_stop_on(Some('/')).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '/' in ${}".to_string()
                    } else {
                        e
                    }
                })?;
                let replacement = self.word_until_brace()?;
                if skip {
                    let ops = if all { "//" } else { "/" };
                    return Ok(format!("${{{name}{ops}{pattern}/{replacement}}}"));
                }
                let value = value.unwrap_or_default();
                Ok(replace_pattern(&value, &pattern, &replacement, all))
            }
            Some(c) => Err(format!("unsupported modifier ({c}) in substitution")),
            None => Err("syntax error: missing '}'".into()),
        }
    }

    fn word_until_brace(&mut self) -> LexResult<String> {
        match self.process_stop_on(Some('}')) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err("syntax error: missing '}'".into()),
            Err(e) => Err(e),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }
}

fn unset_message(name: &str, word: &str) -> String {
    if word.is_empty() {
        format!("{name}: is not allowed to be unset")
    } else {
        format!("{name}: {word}")
    }
}

/// Remove the shortest/longest prefix (`#`) or suffix (`%`) of `value` matching glob `pattern`.
fn trim_pattern(value: &str, pattern: &str, prefix: bool, longest: bool) -> String {
    let v: Vec<char> = value.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let n = v.len();
    let mut cuts: Vec<usize> = (0..=n).collect();
    if longest {
        cuts.reverse();
    }
    for len in cuts {
        let (part, rest) = if prefix {
            (&v[..len], &v[len..])
        } else {
            (&v[n - len..], &v[..n - len])
        };
        if glob_match(&p, part) {
            return rest.iter().collect();
        }
    }
    value.to_string()
}

/// Replace the first (or every) longest match of glob `pattern` in `value`.
fn replace_pattern(value: &str, pattern: &str, replacement: &str, all: bool) -> String {
    let v: Vec<char> = value.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    if p.is_empty() {
        return value.to_string();
    }
    let mut out = String::new();
    let mut i = 0;
    let mut replaced = false;
    while i < v.len() {
        if !replaced || all {
            if let Some(len) = (1..=v.len() - i)
                .rev()
                .find(|&l| glob_match(&p, &v[i..i + l]))
            {
                out.push_str(replacement);
                i += len;
                replaced = true;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

/// Shell glob match of the whole of `s`: `*`, `?`, `[...]` (with `!`/`^` negation), `\x`.
pub(crate) fn glob_match(p: &[char], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') => (0..=s.len()).any(|i| glob_match(&p[1..], &s[i..])),
        Some('?') => !s.is_empty() && glob_match(&p[1..], &s[1..]),
        Some('[') => match (parse_class(p), s.first()) {
            (Some((matches, used)), Some(&c)) => matches(c) && glob_match(&p[used..], &s[1..]),
            (Some(_), None) => false,
            (None, _) => s.first() == Some(&'[') && glob_match(&p[1..], &s[1..]),
        },
        Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && glob_match(&p[2..], &s[1..]),
        Some(&c) => s.first() == Some(&c) && glob_match(&p[1..], &s[1..]),
    }
}

type ClassMatcher = Box<dyn Fn(char) -> bool>;

/// Parse `[...]` at the start of `p`; returns a matcher and the number of pattern chars used.
fn parse_class(p: &[char]) -> Option<(ClassMatcher, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(1), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == ']' && !first {
            break;
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            c
        };
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&c| c != ']') {
            let mut hi = p[i + 1];
            i += 2;
            if hi == '\\' {
                hi = *p.get(i)?;
                i += 1;
            }
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
    let matcher = move |c: char| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != negate;
    Some((Box::new(matcher), i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin".into()),
            ("FILE".into(), "archive.tar.gz".into()),
            ("EMPTY".into(), String::new()),
        ]
    }

    #[test]
    fn operators_without_colon_distinguish_unset_from_empty() {
        let e = env();
        assert_eq!(expand_word("${EMPTY-x}", &e, '\\').unwrap(), "");
        assert_eq!(expand_word("${NOPE-x}", &e, '\\').unwrap(), "x");
        assert_eq!(expand_word("${EMPTY+x}", &e, '\\').unwrap(), "x");
        assert_eq!(expand_word("${NOPE+x}", &e, '\\').unwrap(), "");
        assert_eq!(expand_word("${EMPTY:-x}", &e, '\\').unwrap(), "x");
        let err = expand_word("${NOPE:?must be set}", &e, '\\').unwrap_err();
        assert!(err.to_string().contains("NOPE: must be set"), "{err}");
    }

    #[test]
    fn pattern_removal_and_substitution() {
        let e = env();
        let x = |w: &str| expand_word(w, &e, '\\').unwrap();
        assert_eq!(x("${FILE#*.}"), "tar.gz");
        assert_eq!(x("${FILE##*.}"), "gz");
        assert_eq!(x("${FILE%.*}"), "archive.tar");
        assert_eq!(x("${FILE%%.*}"), "archive");
        assert_eq!(x("${PATH/bin/sbin}"), "/usr/local/sbin:/usr/bin");
        assert_eq!(x("${PATH//bin/sbin}"), "/usr/local/sbin:/usr/sbin");
        assert_eq!(x("${FILE%.[gt]z}"), "archive.tar");
    }

    #[test]
    fn backtick_escape_and_skip_unset() {
        let e = env();
        assert_eq!(expand_word("a`$FILE", &e, '`').unwrap(), "a$FILE");
        let lx = Lexer {
            skip_unset_env: true,
            ..Lexer::new('\\')
        };
        assert_eq!(
            lx.process_word("$NOPE ${NOPE:-x} $FILE", &e).unwrap(),
            "$NOPE ${NOPE:-x} archive.tar.gz"
        );
    }
}
