//! `.dockerignore`: reading pattern files and Docker's patternmatcher semantics (`*`, `?`,
//! `[...]`, `**`, `!` exceptions with last-match-wins, parent directories excluding contents).

use crate::error::{Error, Result};

/// Read a `.dockerignore` file the way Docker does: drop a UTF-8 BOM, `#` comment lines and
/// blank lines, trim whitespace, clean each path and strip one leading `/` (keeping `!`).
pub fn read_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut p = String::new();
        if !pattern.is_empty() {
            p = clean_path(pattern);
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
        }
        out.push(if invert { format!("!{p}") } else { p });
    }
    out
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run of non-`/`.
    Star,
    /// `?`: one non-`/`.
    One,
    /// `**` not at the end: `(.*/)?`.
    AnyDirs,
    /// `**` at the end: `.*`.
    AnyTail,
    /// `[...]`, kept as text and matched like a regexp class.
    Class(Vec<char>),
}

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// `!pattern`: re-includes what earlier patterns excluded.
    pub exclusion: bool,
    /// The cleaned pattern text without `!`.
    pub cleaned: String,
    match_type: MatchType,
    toks: Vec<Tok>,
}

impl Pattern {
    /// Compile one pattern (`!` prefix allowed).
    pub fn new(pattern: &str) -> Result<Pattern> {
        let bad = |m: &str| Error::IgnorePattern {
            pattern: pattern.to_string(),
            message: m.to_string(),
        };
        let mut p = clean_path(pattern.trim());
        let exclusion = p.starts_with('!');
        if exclusion {
            if p.len() == 1 {
                return Err(bad("illegal exclusion pattern \"!\""));
            }
            p.remove(0);
        }
        // `.dockerignore` paths are relative to the context root.
        if p.len() > 1 && p.starts_with('/') {
            p.remove(0);
        }
        let chars: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut mt = MatchType::Exact;
        let mut i = 0;
        let mut n = 0;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            match ch {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i == chars.len() {
                        if mt == MatchType::Exact {
                            mt = MatchType::Prefix;
                        } else {
                            toks.push(Tok::AnyTail);
                            mt = MatchType::Regexp;
                        }
                    } else {
                        toks.push(Tok::AnyDirs);
                        mt = MatchType::Regexp;
                    }
                    if n == 0 {
                        mt = MatchType::Suffix;
                    }
                }
                '*' => {
                    toks.push(Tok::Star);
                    mt = MatchType::Regexp;
                }
                '?' => {
                    toks.push(Tok::One);
                    mt = MatchType::Regexp;
                }
                '\\' => toks.push(Tok::Lit(
                    chars.get(i).copied().inspect(|_| i += 1).unwrap_or('\\'),
                )),
                '[' => {
                    let end = class_end(&chars, i)
                        .ok_or_else(|| bad("syntax error in pattern: unclosed '['"))?;
                    toks.push(Tok::Class(chars[i..end].to_vec()));
                    i = end + 1;
                    mt = MatchType::Regexp;
                }
                ']' => return Err(bad("syntax error in pattern: unexpected ']'")),
                c => toks.push(Tok::Lit(c)),
            }
            n += 1;
        }
        Ok(Pattern {
            exclusion,
            cleaned: p,
            match_type: mt,
            toks,
        })
    }

    /// Whether this pattern matches `path` itself (no parent logic).
    pub fn matches(&self, path: &str) -> bool {
        let p = &self.cleaned;
        match self.match_type {
            MatchType::Exact => path == p,
            MatchType::Prefix => path.starts_with(&p[..p.len() - 2]),
            MatchType::Suffix
                if self
                    .toks
                    .iter()
                    .all(|t| matches!(t, Tok::Lit(_) | Tok::AnyDirs)) =>
            {
                let suffix = &p[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/') == Some(path)
            }
            _ => {
                let s: Vec<char> = path.chars().collect();
                tok_match(&self.toks, &s)
            }
        }
    }
}

fn class_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start;
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            ']' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn class_match(class: &[char], c: char) -> bool {
    let (negate, body) = match class.split_first() {
        Some(('^', rest)) => (true, rest),
        _ => (false, class),
    };
    let mut i = 0;
    let mut hit = false;
    while i < body.len() {
        let mut lo = body[i];
        if lo == '\\' && i + 1 < body.len() {
            i += 1;
            lo = body[i];
        }
        i += 1;
        if body.get(i) == Some(&'-') && i + 1 < body.len() {
            let hi = body[i + 1];
            i += 2;
            hit |= lo <= c && c <= hi;
        } else {
            hit |= lo == c;
        }
    }
    hit != negate
}

fn tok_match(toks: &[Tok], s: &[char]) -> bool {
    match toks.first() {
        None => s.is_empty(),
        Some(Tok::Lit(c)) => s.first() == Some(c) && tok_match(&toks[1..], &s[1..]),
        Some(Tok::One) => s.first().is_some_and(|&c| c != '/') && tok_match(&toks[1..], &s[1..]),
        Some(Tok::Class(cl)) => {
            s.first().is_some_and(|&c| class_match(cl, c)) && tok_match(&toks[1..], &s[1..])
        }
        Some(Tok::Star) => {
            let max = s.iter().position(|&c| c == '/').unwrap_or(s.len());
            (0..=max).any(|i| tok_match(&toks[1..], &s[i..]))
        }
        Some(Tok::AnyTail) => true,
        Some(Tok::AnyDirs) => {
            tok_match(&toks[1..], s)
                || s.iter()
                    .enumerate()
                    .filter(|(_, &c)| c == '/')
                    .any(|(i, _)| tok_match(&toks[1..], &s[i + 1..]))
        }
    }
}

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Compile patterns (already read with [`read_patterns`] or given directly); empty ones
    /// are skipped.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Matcher> {
        let patterns = patterns
            .iter()
            .map(|p| p.as_ref().trim())
            .filter(|p| !p.is_empty())
            .map(Pattern::new)
            .collect::<Result<_>>()?;
        Ok(Matcher { patterns })
    }

    /// Read and compile `.dockerignore` text.
    pub fn from_dockerignore(text: &str) -> Result<Matcher> {
        Matcher::new(&read_patterns(text))
    }

    /// The compiled patterns in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// True when some pattern starts with `!`.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded from the build
    /// context: the last pattern matching the path or one of its parent directories wins.
    pub fn is_excluded(&self, path: &str) -> bool {
        let file = clean_path(path.trim_start_matches('/'));
        let parent_dirs: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(&file);
            if !hit {
                hit = (1..=parent_dirs.len()).any(|i| pattern.matches(&parent_dirs[..i].join("/")));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// For an excluded directory: must it still be walked because an exception (`!`) could
    /// re-include something inside it? Conservative: true when unsure.
    pub fn must_walk(&self, dir: &str) -> bool {
        let dir = clean_path(dir.trim_start_matches('/'));
        let dir_parts: Vec<&str> = dir.split('/').collect();
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            if format!("{}/", p.cleaned).starts_with(&format!("{dir}/")) {
                return true;
            }
            let pat_parts: Vec<&str> = p.cleaned.split('/').collect();
            for (k, d) in dir_parts.iter().enumerate() {
                let Some(pp) = pat_parts.get(k) else {
                    return true;
                };
                if pp.contains("**") {
                    return true;
                }
                match Pattern::new(pp) {
                    Ok(cp) if cp.matches(d) => {}
                    Ok(_) => return false,
                    Err(_) => return true,
                }
            }
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str]) -> Matcher {
        Matcher::new(patterns).unwrap()
    }

    #[test]
    fn docker_documented_examples() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["*/temp*"], "somedir/temporary.txt", true),
            (&["*/temp*"], "somedir/temp", true),
            (&["*/temp*"], "temp", false),
            (&["*/temp*"], "a/b/temp", false),
            (&["*/*/temp*"], "somedir/subdir/temporary.txt", true),
            (&["*/*/temp*"], "somedir/temporary.txt", false),
            (&["temp?"], "tempa", true),
            (&["temp?"], "temp", false),
            (&["temp?"], "tempab", false),
            (&["**/*.go"], "main.go", true),
            (&["**/*.go"], "a/b/c.go", true),
            (&["**/*.go"], "a/b/c.rs", false),
            (&["*.md", "!README.md"], "README.md", false),
            (&["*.md", "!README.md"], "CHANGES.md", true),
            (
                &["*.md", "!README*.md", "README-secret.md"],
                "README-secret.md",
                true,
            ),
            (
                &["*.md", "!README*.md", "README-secret.md"],
                "README-x.md",
                false,
            ),
            (
                &["*.md", "README-secret.md", "!README*.md"],
                "README-secret.md",
                false,
            ),
            (&["node_modules"], "node_modules/x/y.js", true),
            (&["node_modules"], "src/node_modules", false),
            (&["/foo"], "foo", true),
            (&["./foo/../bar"], "bar/baz", true),
            (&["**"], "anything/at/all", true),
            (&["dir/**"], "dir/a/b", true),
            (&["dir/**"], "dir", false),
            (&["**/file"], "file", true),
            (&["**/file"], "a/b/file", true),
            (&["**/file"], "a/file2", false),
            (&["[a-c]x"], "bx", true),
            (&["[a-c]x"], "dx", false),
            (&["[^a-c]x"], "dx", true),
            (&["a\\*b"], "a*b", false),
            (&["*"], "x/y", true),
            (&["docs", "!docs/keep.md"], "docs/keep.md", false),
            (&["docs", "!docs/keep.md"], "docs/other.md", true),
        ];
        for (patterns, path, want) in cases {
            assert_eq!(
                m(patterns).is_excluded(path),
                *want,
                "patterns {patterns:?} path {path:?}"
            );
        }
    }

    #[test]
    fn reading_the_file() {
        let text =
            "\u{feff}# comment\n\n  /abs/path/  \n!  ./keep//me\nsub/../x\n #not-a-comment\n";
        assert_eq!(
            read_patterns(text),
            ["abs/path", "!keep/me", "x", "#not-a-comment"]
        );
        let matcher = Matcher::from_dockerignore(text).unwrap();
        assert!(matcher.is_excluded("abs/path/file"));
        assert!(matcher.has_exclusions());
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert!(Matcher::new(&["!"]).is_err());
        assert!(Matcher::new(&["[abc"]).is_err());
    }

    #[test]
    fn walking_excluded_dirs_for_exceptions() {
        let matcher = m(&["docs", "vendor", "!docs/keep.md", "!**/LICENSE", "cache"]);
        assert!(matcher.must_walk("docs"));
        assert!(
            matcher.must_walk("vendor/lib"),
            "**/LICENSE may re-include inside vendor"
        );
        let plain = m(&["docs", "vendor", "!docs/keep.md"]);
        assert!(!plain.must_walk("vendor"));
        assert!(plain.must_walk("docs"));
        assert!(!m(&["docs"]).must_walk("docs"));
        assert!(m(&["a", "!a/*/c"]).must_walk("a/b"));
        assert!(!m(&["a", "!a/x*/c"]).must_walk("a/b"));
    }

    #[test]
    fn clean_path_like_go() {
        for (i, o) in [
            ("", "."),
            ("a//b/", "a/b"),
            ("./a/./b", "a/b"),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("a/../..", ".."),
        ] {
            assert_eq!(clean_path(i), o, "{i}");
        }
    }
}
