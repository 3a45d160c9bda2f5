//! Line-level Dockerfile parser: directives, comments, continuations, heredocs → [`Node`]s,
//! mirroring BuildKit's `parser.Parse` (including its `Dump` format used by the golden tests).

use crate::error::{Error, Result};
use crate::shell::{Lexer, NoEnv};

/// Parser directives found at the top of the Dockerfile (`# syntax=`, `# escape=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=` frontend image; recorded, not acted upon.
    pub syntax: Option<String>,
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# check=` lint configuration; recorded, ignored.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A heredoc attached to a RUN/COPY/ADD line (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word with quotes removed (`EOF`).
    pub name: String,
    /// The raw body: every line between the instruction and the terminator, newlines included.
    pub content: String,
    /// `<<-`: leading tabs are stripped from body lines and the terminator.
    pub chomp: bool,
    /// False when the terminator was quoted: the body must not be variable-expanded.
    pub expand: bool,
    /// File descriptor prefix (`3<<EOF`), 0 when absent.
    pub fd: u32,
}

impl Heredoc {
    /// The body as it should be used: with leading tabs removed per line when `chomp` is set.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

impl Heredoc {
    /// The body with `$VAR`s expanded (quotes and escapes kept as written), as BuildKit does
    /// for COPY/ADD heredocs whose terminator was not quoted; the plain [`Heredoc::body`] when
    /// `expand` is false.
    pub fn expanded_body(
        &self,
        env: &impl crate::shell::EnvGetter,
        escape: char,
    ) -> Result<String> {
        if !self.expand {
            return Ok(self.body());
        }
        let lexer = Lexer {
            raw_quotes: true,
            raw_escapes: true,
            ..Lexer::new(escape)
        };
        lexer.process_word(&self.body(), env)
    }
}

/// One parsed instruction line, before typing: BuildKit's AST `Node`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Instruction name, lowercased (`run`).
    pub cmd: String,
    /// The instruction name as written (`RUN`, `Run`).
    pub cmd_original: String,
    /// The logical line after joining continuations.
    pub original: String,
    /// Leading `--flag[=value]` words, as written.
    pub flags: Vec<String>,
    /// Arguments after flags (for ENV/LABEL: key, value, key, value ...).
    pub args: Vec<String>,
    /// True when the arguments came from a JSON array (exec form).
    pub json: bool,
    /// The trigger of an ONBUILD line.
    pub sub: Option<Box<Node>>,
    /// Heredocs whose bodies follow this line.
    pub heredocs: Vec<Heredoc>,
    /// 1-based first line.
    pub start_line: usize,
    /// 1-based last line (continuations and heredoc bodies included).
    pub end_line: usize,
}

impl Node {
    /// BuildKit's `Node.Dump()` text for this node, e.g. `(copy ["--from=a"] "x" "/y")`.
    pub fn dump(&self) -> String {
        format!("({})", self.dump_inner())
    }

    fn dump_inner(&self) -> String {
        let mut s = self.cmd.clone();
        if !self.flags.is_empty() {
            let quoted: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", quoted.join(" ")));
        }
        for a in &self.args {
            s.push(' ');
            s.push_str(&go_quote(a));
        }
        if let Some(sub) = &self.sub {
            s.push(' ');
            s.push_str(&sub.dump());
        }
        s.trim().to_string()
    }
}

/// The result of the line-level parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    pub directives: Directives,
    pub nodes: Vec<Node>,
    /// Non-fatal findings (e.g. empty continuation lines), as `(line, message)`.
    pub warnings: Vec<(usize, String)>,
}

impl Ast {
    /// The whole dump, one line per instruction, as in BuildKit's `result` files.
    pub fn dump(&self) -> String {
        self.nodes.iter().map(|n| n.dump() + "\n").collect()
    }
}

struct DirectiveParser {
    done: bool,
    seen: Vec<String>,
}

impl DirectiveParser {
    fn line(&mut self, d: &mut Directives, token: &str, line: usize) -> Result<()> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = match_directive(token) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            // An unknown directive is a plain comment and ends the directive block.
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(Error::syntax(
                line,
                format!("only one {key} parser directive can be used"),
            ));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                if value != "`" && value != "\\" {
                    return Err(Error::syntax(
                        line,
                        format!("invalid escape token '{value}' does not match ` or \\"),
                    ));
                }
                d.escape = value.chars().next().unwrap_or('\\');
            }
            "syntax" => d.syntax = Some(value.to_string()),
            _ => d.check = Some(value.to_string()),
        }
        Ok(())
    }
}

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn match_directive(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix('#')?.trim_start();
    let key_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, after) = rest.split_at(key_len);
    let value = after.trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some((key, value))
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    trim_newline(s).trim_start().starts_with('#')
}

/// Strip a trailing escape (plus spaces/tabs) if present; returns (line, is_end_of_line).
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(body) = t.strip_suffix(escape) {
        if !body.ends_with(escape) {
            return (body, false);
        }
    }
    (line, true)
}

/// BuildKit's `reWhitespace` (`[\t\v\f\r ]+`).
pub(crate) fn is_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Split on runs of [`is_ws`], at most `n` pieces (`None` = unlimited), like Go's `Regexp.Split`.
pub(crate) fn split_ws(s: &str, n: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        if n.is_some_and(|n| out.len() + 1 >= n) {
            break;
        }
        let Some(start) = rest.find(is_ws) else { break };
        let end = rest[start..]
            .find(|c| !is_ws(c))
            .map_or(rest.len(), |e| start + e);
        out.push(rest[..start].to_string());
        rest = &rest[end..];
    }
    out.push(rest.to_string());
    out
}

/// Parse Dockerfile text into directives and nodes.
pub fn parse_ast(text: &str) -> Result<Ast> {
    // As moby: only a file of no bytes is "empty"; blank lines or comments alone are a file
    // with no instructions (the parser's error below).
    if text.is_empty() {
        return Err(Error::Empty {
            name: "Dockerfile".into(),
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut directives = Directives::default();
    let mut dp = DirectiveParser {
        done: false,
        seen: Vec::new(),
    };
    let mut lines = text.split_inclusive('\n');
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut current = 0usize;
    while let Some(raw) = lines.next() {
        let token = trim_newline(raw).trim_start();
        dp.line(&mut directives, token, current + 1)?;
        let token = if is_comment(token) { "" } else { token };
        current += 1;
        let start = current;
        let escape = directives.escape;
        let (first, mut eol) = trim_continuation(token, escape);
        if eol && first.is_empty() {
            continue;
        }
        let mut buf = first.to_string();
        let mut empty_continuation = false;
        while !eol {
            let Some(raw) = lines.next() else { break };
            let t = trim_newline(raw);
            dp.line(&mut directives, t, current + 1)?;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            if t.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (c, e) = trim_continuation(t, escape);
            buf.push_str(c);
            eol = e;
        }
        if empty_continuation {
            warnings.push((start, "empty continuation line".to_string()));
        }
        let mut node = node_from_line(&buf, escape, start)?;
        if matches!(node.cmd.as_str(), "run" | "copy" | "add") && !node.json && buf.contains("<<") {
            for mut doc in heredocs_from_line(&buf).map_err(|e| Error::syntax(start, e))? {
                let mut terminated = false;
                for raw in lines.by_ref() {
                    current += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(raw);
                }
                if !terminated {
                    return Err(Error::UnterminatedHeredoc {
                        line: start,
                        name: doc.name,
                    });
                }
                node.heredocs.push(doc);
            }
        }
        node.end_line = current;
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(Error::NoInstructions { line: current });
    }
    Ok(Ast {
        directives,
        nodes,
        warnings,
    })
}

fn node_from_line(line: &str, escape: char, start: usize) -> Result<Node> {
    let trimmed = line.trim();
    let mut parts = split_ws(trimmed, Some(2)).into_iter();
    let cmd_original = parts.next().unwrap_or_default();
    let (flags, rest) = match parts.next() {
        Some(rest) => extract_flags(&rest),
        None => (Vec::new(), String::new()),
    };
    let rest = rest.trim();
    let cmd = cmd_original.to_lowercase();
    let mut node = Node {
        cmd: cmd.clone(),
        cmd_original,
        original: line.to_string(),
        flags,
        args: Vec::new(),
        json: false,
        sub: None,
        heredocs: Vec::new(),
        start_line: start,
        end_line: start,
    };
    let err = |m: String| Error::syntax(start, m);
    match cmd.as_str() {
        "add" | "copy" | "volume" => match parse_json(rest) {
            Json::Array(a) => (node.args, node.json) = (a, true),
            Json::NotStrings => return Err(err(NOT_STRINGS.into())),
            Json::Invalid => node.args = whitespace_delimited(rest),
        },
        "cmd" | "entrypoint" | "run" | "shell" => (node.args, node.json) = maybe_json(rest, start)?,
        "arg" => node.args = parse_words(rest, escape),
        "env" | "label" => node.args = parse_name_val(rest, &cmd.to_uppercase(), escape, start)?,
        "expose" | "from" => node.args = whitespace_delimited(rest),
        "healthcheck" => {
            let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if sep > 0 {
                let (typ, cmdline) = rest.split_at(sep);
                let (args, json) = maybe_json(cmdline.trim_start(), start)?;
                node.args = std::iter::once(typ.to_string()).chain(args).collect();
                node.json = json;
            }
        }
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            if !rest.is_empty() {
                node.args = vec![rest.to_string()];
            }
        }
        "onbuild" => {
            if !rest.is_empty() {
                node.sub = Some(Box::new(node_from_line(rest, escape, start)?));
            }
        }
        _ => node.args = vec![String::new()],
    }
    Ok(node)
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

enum Json {
    Array(Vec<String>),
    NotStrings,
    Invalid,
}

fn parse_json(rest: &str) -> Json {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Json::Invalid;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Err(_) => Json::Invalid,
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map_or(Json::NotStrings, Json::Array),
    }
}

fn maybe_json(rest: &str, line: usize) -> Result<(Vec<String>, bool)> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest) {
        Json::Array(a) => Ok((a, true)),
        Json::NotStrings => Err(Error::syntax(line, NOT_STRINGS)),
        Json::Invalid => Ok((vec![rest.to_string()], false)),
    }
}

fn whitespace_delimited(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_ws(rest, None)
}

/// BuildKit's `extractBuilderFlags`: leading `--x` words (quotes and `\` handled), then the rest.
fn extract_flags(line: &str) -> (Vec<String>, String) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let ch = chars.get(i).map_or('\0', |c| c.1);
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            if ch != '-' || chars.get(i + 1).map(|c| c.1) != Some('-') {
                return (words, line[chars[i].0..].to_string());
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (words, line[chars[i].0..].to_string());
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
            } else if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            } else if ch == '\\' {
                if i + 1 < chars.len() {
                    i += 1;
                    word.push(chars[i].1);
                }
            } else {
                word.push(ch);
            }
        } else if ch == quote {
            phase = Phase::Word;
        } else if ch == '\\' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
            } else {
                i += 1;
                word.push(chars[i].1);
            }
        } else {
            word.push(ch);
        }
        i += 1;
    }
    (words, String::new())
}

/// BuildKit's `parseWords`: split on whitespace, keeping quotes and escapes in the words.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut in_word, mut in_quote, mut blank_ok) = (false, false, false);
    let mut quote = '\0';
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let mut ch = chars.get(i).copied().unwrap_or('\0');
        if !in_word && !in_quote {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            in_word = true;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if in_word && ch.is_whitespace() {
            in_word = false;
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            blank_ok = false;
            i += 1;
            continue;
        }
        // Inside single quotes the escape character is literal.
        let escapes = !in_quote || quote != '\'';
        if in_word && (ch == '\'' || ch == '"') {
            quote = ch;
            blank_ok = true;
            (in_word, in_quote) = (false, true);
        } else if in_quote && ch == quote {
            (in_word, in_quote) = (true, false);
        }
        if ch == escape && escapes {
            if i + 1 == chars.len() {
                (in_word, in_quote) = (true, false);
                i += 1;
                continue;
            }
            word.push(ch);
            i += 1;
            ch = chars[i];
        }
        word.push(ch);
        i += 1;
    }
    words
}

fn parse_name_val(rest: &str, key: &str, escape: char, line: usize) -> Result<Vec<String>> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let parts = split_ws(rest, Some(2));
        if parts.len() < 2 {
            return Err(Error::syntax(
                line,
                format!("{key} must have two arguments: {key} name=value or {key} name value"),
            ));
        }
        return Ok(parts);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(Error::syntax(
                line,
                format!("syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            ));
        };
        out.push(k.to_string());
        out.push(v.to_string());
    }
    Ok(out)
}

fn heredocs_from_line(line: &str) -> std::result::Result<Vec<Heredoc>, String> {
    let lexer = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        ..Lexer::new('\\')
    };
    let words = lexer.process_words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(d) = parse_heredoc(&w)? {
            docs.push(d);
        }
    }
    Ok(docs)
}

/// Parse one word as a heredoc opener (`^(\d*)<<(-?)([^<]*)$`); `Ok(None)` when it is not one.
pub fn parse_heredoc(word: &str) -> std::result::Result<Option<Heredoc>, String> {
    let digits = word.chars().take_while(char::is_ascii_digit).count();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = word[..digits].parse().unwrap_or(0);
    let mut lexer = Lexer {
        skip_unset_env: true,
        ..Lexer::new('\\')
    };
    let words = lexer
        .process_words(rest, &NoEnv)
        .map_err(|e| e.to_string())?;
    if words.len() != 1 {
        return Ok(None);
    }
    lexer.raw_quotes = true;
    let raw = lexer
        .process_words(rest, &NoEnv)
        .map_err(|e| e.to_string())?;
    if raw.len() != 1 {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Ok(Some(Heredoc {
        name: words[0].clone(),
        content: String::new(),
        chomp,
        expand: quotes(&words[0]) == quotes(&raw[0]),
        fd,
    }))
}

/// Go's `strconv.Quote` (printability approximated with Rust's char classes).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || u == 0xad
        || (0x200b..=0x200f).contains(&u)
        || (0x202a..=0x202e).contains(&u)
        || (0x2060..=0x206f).contains(&u)
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe000..=0xf8ff).contains(&u)
        || (0xf0000..).contains(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredocs_are_collected_with_lines() {
        let ast = parse_ast(
            "FROM a\nRUN <<EOF cat <<-'END' > /x\necho $HOME\nEOF\n\tkeep\n\tEND\nRUN true\n",
        )
        .unwrap();
        let run = &ast.nodes[1];
        assert_eq!(run.heredocs.len(), 2);
        assert_eq!(run.heredocs[0].name, "EOF");
        assert_eq!(run.heredocs[0].content, "echo $HOME\n");
        assert!(run.heredocs[0].expand);
        assert_eq!(run.heredocs[1].name, "END");
        assert!(run.heredocs[1].chomp && !run.heredocs[1].expand);
        assert_eq!(run.heredocs[1].body(), "keep\n");
        assert_eq!((run.start_line, run.end_line), (2, 6));
        assert_eq!(ast.nodes[2].start_line, 7);
    }

    #[test]
    fn unterminated_heredoc_names_line() {
        let e = parse_ast("FROM a\n\nCOPY <<EOF /dst\nhello\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("dockerfile parse error line 3: unterminated heredoc"),
            "{e}"
        );
        assert!(matches!(e, Error::UnterminatedHeredoc { line: 3, ref name } if name == "EOF"));
    }

    #[test]
    fn directives_only_at_top() {
        let ast = parse_ast("# syntax=docker/dockerfile:1\n# check=skip=all\n# escape=`\nFROM a\n")
            .unwrap();
        assert_eq!(ast.directives.escape, '`');
        assert_eq!(
            ast.directives.syntax.as_deref(),
            Some("docker/dockerfile:1")
        );
        let ast = parse_ast("FROM a\n# escape=`\nRUN a \\\n b\n").unwrap();
        assert_eq!(ast.directives.escape, '\\');
        assert!(parse_ast("# escape=x\nFROM a").is_err());
        let ast = parse_ast("# foo=bar\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(
            ast.directives.escape, '\\',
            "unknown directive ends the block"
        );
        assert!(parse_ast("# escape=`\n# escape=\\\nFROM a").is_err());
    }

    #[test]
    fn go_quote_matches_go() {
        assert_eq!(
            go_quote("a\"b\\c\u{0}\u{7f}é\u{200b}"),
            "\"a\\\"b\\\\c\\x00\\x7fé\\u200b\""
        );
    }
}
