//! Typed Dockerfile instructions built from parser [`Node`]s, their flags, and per-instruction
//! variable expansion (which instructions expand which arguments, as Docker does).

use std::time::Duration;

use crate::error::{Error, Result};
pub use crate::mount::{parse_mount, Mount, MountType};
use crate::parser::{Heredoc, Node};
use crate::shell::{EnvGetter, Lexer};

/// One instruction with its source location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub kind: InstructionKind,
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line (continuations, heredoc bodies).
    pub end_line: usize,
    /// The logical source line (continuations joined), for messages and cache keys.
    pub original: String,
}

/// Exec form (`["a","b"]`) or shell form (`a b`) of RUN/CMD/ENTRYPOINT/HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    /// Run through the stage's SHELL (default `/bin/sh -c`). Not variable-expanded by Docker.
    Shell(String),
}

/// `KEY=value` of ENV and LABEL; values keep quotes until expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// For heredoc RUNs (`RUN <<EOF`) this is the shell line holding the `<<EOF` words.
    pub command: Command,
    pub heredocs: Vec<Heredoc>,
    /// `--mount=...` specs, in order.
    pub mounts: Vec<Mount>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// `--security=sandbox|insecure`.
    pub security: Option<String>,
}

impl Run {
    /// For `RUN <<EOF` (the whole command is one heredoc), the heredoc that is the script to
    /// run; `None` when heredocs (if any) are files fed to a regular command line.
    pub fn heredoc_script(&self) -> Option<&Heredoc> {
        let Command::Shell(line) = &self.command else {
            return None;
        };
        let [doc] = self.heredocs.as_slice() else {
            return None;
        };
        let word = line.trim();
        let opener = word
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .strip_prefix("<<")?;
        let opener = opener.strip_prefix('-').unwrap_or(opener);
        let name = opener.trim_matches(|c| c == '"' || c == '\'');
        (name == doc.name && !word.contains(char::is_whitespace)).then_some(doc)
    }
}

/// Arguments of COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// Sources as written; `<<NAME` refers to the heredoc named NAME.
    pub sources: Vec<String>,
    pub dest: String,
    pub heredocs: Vec<Heredoc>,
    /// COPY only: `--from=<stage name|stage index|image>`.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
    /// ADD only.
    pub keep_git_dir: Option<bool>,
    /// ADD only: `--checksum=sha256:...`.
    pub checksum: Option<String>,
    /// Sources/dest came from a JSON array.
    pub json: bool,
}

impl CopyArgs {
    /// The heredoc a source like `<<EOF` refers to, if any.
    pub fn heredoc_for(&self, source: &str) -> Option<&Heredoc> {
        let doc = crate::parser::parse_heredoc(source).ok().flatten()?;
        self.heredocs.iter().find(|h| h.name == doc.name)
    }
}

/// HEALTHCHECK options (unset values inherit the base image's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckOptions {
    pub test: Command,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

/// HEALTHCHECK NONE or HEALTHCHECK [opts] CMD ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Check(HealthcheckOptions),
}

/// Every Dockerfile instruction, typed. String fields are unexpanded; see [`InstructionKind::expand`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    From {
        image: String,
        /// Stage name, lowercased.
        name: Option<String>,
        platform: Option<String>,
    },
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    Label(Vec<KeyValue>),
    Maintainer(String),
    Expose(Vec<String>),
    Env(Vec<KeyValue>),
    Add(CopyArgs),
    Copy(CopyArgs),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Arg(Vec<ArgDecl>),
    /// The trigger expression, e.g. `RUN make` (stored in the image config, not expanded).
    Onbuild(String),
    StopSignal(String),
    Healthcheck(Healthcheck),
}

/// Every instruction name Docker knows, uppercase.
pub const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

struct Flags {
    line: usize,
    cmd: String,
    values: Vec<(String, Option<String>)>,
}

impl Flags {
    fn new(node: &Node, allowed: &[&str]) -> Result<Flags> {
        let mut values = Vec::new();
        for f in &node.flags {
            let body = f.strip_prefix("--").unwrap_or(f);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (body.to_string(), None),
            };
            if !allowed.contains(&name.as_str()) {
                return Err(Error::syntax(
                    node.start_line,
                    format!("unknown flag: {name} for {}", node.cmd.to_uppercase()),
                ));
            }
            values.push((name, value));
        }
        Ok(Flags {
            line: node.start_line,
            cmd: node.cmd.to_uppercase(),
            values,
        })
    }

    fn string(&self, name: &str) -> Result<Option<String>> {
        match self.values.iter().rev().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, Some(v))) => Ok(Some(v.clone())),
            Some((_, None)) => Err(Error::syntax(
                self.line,
                format!("missing a value on flag: --{name} for {}", self.cmd),
            )),
        }
    }

    fn strings(&self, name: &str) -> Result<Vec<String>> {
        self.values
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| {
                v.clone().ok_or_else(|| {
                    Error::syntax(self.line, format!("missing a value on flag: --{name}"))
                })
            })
            .collect()
    }

    fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.values.iter().rev().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, None)) => Ok(Some(true)),
            Some((_, Some(v))) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(Error::syntax(
                    self.line,
                    format!("expecting boolean value for flag --{name}, not: {v}"),
                )),
            },
        }
    }

    fn duration(&self, name: &str) -> Result<Option<Duration>> {
        let Some(v) = self.string(name)? else {
            return Ok(None);
        };
        let d = parse_go_duration(&v).ok_or_else(|| {
            Error::syntax(
                self.line,
                format!("invalid duration {v:?} for --{name}: use e.g. 30s, 1m30s"),
            )
        })?;
        if !d.is_zero() && d < Duration::from_millis(1) {
            return Err(Error::syntax(
                self.line,
                format!("--{name} {v:?} cannot be less than 1ms"),
            ));
        }
        Ok(Some(d))
    }
}

/// Go's `time.ParseDuration` for non-negative values (`300ms`, `1h2m3.5s`, `0`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += num * nanos;
    }
    Some(Duration::from_nanos(total.round() as u64))
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn suggest(name: &str) -> Option<String> {
    let upper = name.to_uppercase();
    INSTRUCTIONS
        .iter()
        .map(|i| (levenshtein(&upper, i), *i))
        .filter(|&(d, _)| d <= 2 && d < upper.len())
        .min()
        .map(|(_, i)| i.to_string())
}

fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn command(node: &Node) -> Command {
    if node.json {
        Command::Exec(node.args.clone())
    } else {
        Command::Shell(node.args.first().cloned().unwrap_or_default())
    }
}

fn pairs(node: &Node) -> Vec<KeyValue> {
    node.args
        .chunks(2)
        .map(|c| KeyValue {
            key: c[0].clone(),
            value: c.get(1).cloned().unwrap_or_default(),
        })
        .collect()
}

impl Instruction {
    /// Type a parser node, validating arguments and flags.
    pub fn from_node(node: &Node) -> Result<Instruction> {
        Ok(Instruction {
            kind: InstructionKind::from_node(node)?,
            line: node.start_line,
            end_line: node.end_line,
            original: node.original.clone(),
        })
    }
}

/// Parse one instruction line on its own, e.g. an ONBUILD trigger from a base image's config
/// (`RUN make`). Line numbers are 1.
pub fn parse_instruction(line: &str, escape: char) -> Result<Instruction> {
    let directive = if escape == '`' { "# escape=`\n" } else { "" };
    let ast = crate::parser::parse_ast(&format!("{directive}{line}"))?;
    let [node] = ast.nodes.as_slice() else {
        return Err(Error::syntax(
            1,
            format!("expected one instruction in {line:?}"),
        ));
    };
    let mut ins = Instruction::from_node(node)?;
    let offset = usize::from(!directive.is_empty());
    ins.line -= offset;
    ins.end_line -= offset;
    Ok(ins)
}

impl InstructionKind {
    /// Type a parser node, validating arguments and flags.
    pub fn from_node(node: &Node) -> Result<InstructionKind> {
        let line = node.start_line;
        let upper = node.cmd.to_uppercase();
        let err = |m: String| Error::syntax(line, m);
        let need_args = |n: usize| -> Result<()> {
            if node.args.len() < n {
                let what = if n == 1 {
                    "at least one argument".into()
                } else {
                    format!("at least {n} arguments")
                };
                return Err(err(format!("{upper} requires {what}")));
            }
            Ok(())
        };
        let exactly_one = || -> Result<String> {
            match node.args.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(err(format!("{upper} requires exactly one argument"))),
            }
        };
        let no_flags = || Flags::new(node, &[]).map(|_| ());
        Ok(match node.cmd.as_str() {
            "from" => {
                let flags = Flags::new(node, &["platform"])?;
                let name = match node.args.as_slice() {
                    [_] => None,
                    [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                        let name = name.to_lowercase();
                        if !is_valid_stage_name(&name) {
                            return Err(err(format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols")));
                        }
                        Some(name)
                    }
                    _ => {
                        return Err(err(
                            "FROM requires either one or three arguments: FROM <image> [AS <name>]"
                                .into(),
                        ))
                    }
                };
                InstructionKind::From {
                    image: node.args[0].clone(),
                    name,
                    platform: flags.string("platform")?,
                }
            }
            "run" => {
                let flags = Flags::new(node, &["mount", "network", "security"])?;
                // `RUN []` parses (dockerd runs the image's own command for it).
                if node.args.is_empty() && node.heredocs.is_empty() && !node.json {
                    return Err(err("RUN requires at least one argument".into()));
                }
                let mounts = flags
                    .strings("mount")?
                    .iter()
                    .map(|m| parse_mount(m).map_err(&err))
                    .collect::<Result<_>>()?;
                InstructionKind::Run(Run {
                    command: command(node),
                    heredocs: node.heredocs.clone(),
                    mounts,
                    network: flags.string("network")?,
                    security: flags.string("security")?,
                })
            }
            "cmd" | "entrypoint" => {
                no_flags()?;
                if node.cmd == "cmd" {
                    InstructionKind::Cmd(command(node))
                } else {
                    InstructionKind::Entrypoint(command(node))
                }
            }
            "shell" => {
                no_flags()?;
                if !node.json {
                    return Err(err("SHELL requires the arguments to be in JSON form: SHELL [\"executable\", \"param\"]".into()));
                }
                need_args(1)?;
                InstructionKind::Shell(node.args.clone())
            }
            "label" | "env" => {
                no_flags()?;
                need_args(1)?;
                let kvs = pairs(node);
                if kvs.iter().any(|kv| kv.key.is_empty()) {
                    return Err(err(format!("{upper} names can not be blank")));
                }
                if node.cmd == "env" {
                    InstructionKind::Env(kvs)
                } else {
                    InstructionKind::Label(kvs)
                }
            }
            "maintainer" => {
                no_flags()?;
                InstructionKind::Maintainer(exactly_one()?)
            }
            "expose" => {
                no_flags()?;
                need_args(1)?;
                InstructionKind::Expose(node.args.clone())
            }
            "add" | "copy" => {
                let is_add = node.cmd == "add";
                let allowed: &[&str] = if is_add {
                    &[
                        "chown",
                        "chmod",
                        "link",
                        "keep-git-dir",
                        "checksum",
                        "exclude",
                        "parents",
                    ]
                } else {
                    &["from", "chown", "chmod", "link", "parents", "exclude"]
                };
                let flags = Flags::new(node, allowed)?;
                if node.args.len() < 2 {
                    return Err(err(format!("{upper} requires at least two arguments, but only {} was provided. Destination could not be determined", node.args.len())));
                }
                let (dest, sources) = node.args.split_last().expect("two args checked");
                let args = CopyArgs {
                    sources: sources.to_vec(),
                    dest: dest.clone(),
                    heredocs: node.heredocs.clone(),
                    from: flags.string("from")?,
                    chown: flags.string("chown")?,
                    chmod: flags.string("chmod")?,
                    link: flags.bool("link")?.unwrap_or(false),
                    parents: flags.bool("parents")?.unwrap_or(false),
                    excludes: flags.strings("exclude")?,
                    keep_git_dir: flags.bool("keep-git-dir")?,
                    checksum: flags.string("checksum")?,
                    json: node.json,
                };
                if is_add {
                    InstructionKind::Add(args)
                } else {
                    InstructionKind::Copy(args)
                }
            }
            "volume" => {
                no_flags()?;
                need_args(1)?;
                if node.args.iter().any(|v| v.trim().is_empty()) {
                    return Err(err("VOLUME specified can not be an empty string".into()));
                }
                InstructionKind::Volume(node.args.clone())
            }
            "user" => {
                no_flags()?;
                InstructionKind::User(exactly_one()?)
            }
            "workdir" => {
                no_flags()?;
                InstructionKind::Workdir(exactly_one()?)
            }
            "stopsignal" => {
                no_flags()?;
                InstructionKind::StopSignal(exactly_one()?)
            }
            "arg" => {
                no_flags()?;
                need_args(1)?;
                let mut decls = Vec::new();
                for a in &node.args {
                    let (name, default) = match a.split_once('=') {
                        Some((n, v)) => (n.to_string(), Some(v.to_string())),
                        None => (a.clone(), None),
                    };
                    if name.is_empty() {
                        return Err(err("ARG names can not be blank".into()));
                    }
                    decls.push(ArgDecl { name, default });
                }
                InstructionKind::Arg(decls)
            }
            "onbuild" => {
                no_flags()?;
                let Some(sub) = &node.sub else {
                    return Err(err("ONBUILD requires at least one argument".into()));
                };
                match sub.cmd.as_str() {
                    "onbuild" => {
                        return Err(err(
                            "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
                        ))
                    }
                    "from" | "maintainer" => {
                        return Err(err(format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            sub.cmd.to_uppercase()
                        )))
                    }
                    _ => {}
                }
                InstructionKind::from_node(sub)?;
                InstructionKind::Onbuild(sub.original.trim().to_string())
            }
            "healthcheck" => healthcheck(node)?,
            _ => {
                return Err(Error::UnknownInstruction {
                    line,
                    name: node.cmd_original.clone(),
                    suggestion: suggest(&node.cmd),
                })
            }
        })
    }

    /// The instruction's name, uppercase (`COPY`).
    pub fn name(&self) -> &'static str {
        match self {
            InstructionKind::From { .. } => "FROM",
            InstructionKind::Run(_) => "RUN",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Shell(_) => "SHELL",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::Maintainer(_) => "MAINTAINER",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Add(_) => "ADD",
            InstructionKind::Copy(_) => "COPY",
            InstructionKind::Volume(_) => "VOLUME",
            InstructionKind::User(_) => "USER",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::Arg(_) => "ARG",
            InstructionKind::Onbuild(_) => "ONBUILD",
            InstructionKind::StopSignal(_) => "STOPSIGNAL",
            InstructionKind::Healthcheck(_) => "HEALTHCHECK",
        }
    }

    /// Expand variables the way Docker does for this instruction: ADD, COPY (sources, dest,
    /// --from/--chown/--chmod/--exclude), ENV, LABEL (keys and values), EXPOSE (split into
    /// words), FROM (image, --platform; pass the meta ARGs), STOPSIGNAL, USER, VOLUME, WORKDIR,
    /// ARG (names, defaults), RUN --mount options. RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK
    /// commands, MAINTAINER and ONBUILD are returned unchanged.
    pub fn expand(&self, env: &impl EnvGetter, escape: char) -> Result<InstructionKind> {
        let lx = Lexer::new(escape);
        let w = |s: &String| lx.process_word(s, env);
        let ow = |s: &Option<String>| s.as_ref().map(&w).transpose();
        let kvs = |v: &Vec<KeyValue>| {
            v.iter()
                .map(|kv| {
                    Ok(KeyValue {
                        key: w(&kv.key)?,
                        value: w(&kv.value)?,
                    })
                })
                .collect::<Result<Vec<_>>>()
        };
        Ok(match self {
            InstructionKind::From {
                image,
                name,
                platform,
            } => InstructionKind::From {
                image: w(image)?,
                name: name.clone(),
                platform: ow(platform)?,
            },
            InstructionKind::Env(v) => InstructionKind::Env(kvs(v)?),
            InstructionKind::Label(v) => InstructionKind::Label(kvs(v)?),
            InstructionKind::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(lx.process_words(p, env)?);
                }
                InstructionKind::Expose(out)
            }
            InstructionKind::Add(c) | InstructionKind::Copy(c) => {
                let c = CopyArgs {
                    sources: c.sources.iter().map(&w).collect::<Result<_>>()?,
                    dest: w(&c.dest)?,
                    from: ow(&c.from)?,
                    chown: ow(&c.chown)?,
                    chmod: ow(&c.chmod)?,
                    excludes: c.excludes.iter().map(&w).collect::<Result<_>>()?,
                    checksum: ow(&c.checksum)?,
                    ..c.clone()
                };
                if matches!(self, InstructionKind::Add(_)) {
                    InstructionKind::Add(c)
                } else {
                    InstructionKind::Copy(c)
                }
            }
            InstructionKind::Volume(v) => {
                let v: Vec<String> = v.iter().map(&w).collect::<Result<_>>()?;
                InstructionKind::Volume(v)
            }
            InstructionKind::User(s) => InstructionKind::User(w(s)?),
            InstructionKind::Workdir(s) => InstructionKind::Workdir(w(s)?),
            InstructionKind::StopSignal(s) => InstructionKind::StopSignal(w(s)?),
            InstructionKind::Arg(decls) => InstructionKind::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: w(&d.name)?,
                            default: ow(&d.default)?,
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            InstructionKind::Run(r) => {
                let mounts = r
                    .mounts
                    .iter()
                    .map(|m| {
                        Ok(Mount {
                            target: ow(&m.target)?,
                            source: ow(&m.source)?,
                            from: ow(&m.from)?,
                            id: ow(&m.id)?,
                            env: ow(&m.env)?,
                            ..m.clone()
                        })
                    })
                    .collect::<Result<_>>()?;
                InstructionKind::Run(Run {
                    mounts,
                    ..r.clone()
                })
            }
            other => other.clone(),
        })
    }
}

fn healthcheck(node: &Node) -> Result<InstructionKind> {
    let line = node.start_line;
    let err = |m: &str| Error::syntax(line, m.to_string());
    let Some(typ) = node.args.first() else {
        return Err(err("missing command after HEALTHCHECK: use HEALTHCHECK NONE or HEALTHCHECK [options] CMD command"));
    };
    match typ.to_uppercase().as_str() {
        "NONE" => {
            if node.args.len() > 1 {
                return Err(err("HEALTHCHECK NONE takes no arguments"));
            }
            Flags::new(node, &[])?;
            Ok(InstructionKind::Healthcheck(Healthcheck::None))
        }
        "CMD" => {
            let flags = Flags::new(
                node,
                &[
                    "interval",
                    "timeout",
                    "start-period",
                    "start-interval",
                    "retries",
                ],
            )?;
            let rest = &node.args[1..];
            if rest.is_empty() {
                return Err(err("missing command after HEALTHCHECK CMD"));
            }
            let test = if node.json {
                Command::Exec(rest.to_vec())
            } else {
                Command::Shell(rest[0].clone())
            };
            let retries = match flags.string("retries")? {
                None => None,
                Some(r) => Some(
                    r.parse::<i64>()
                        .map_err(|_| err(&format!("invalid --retries {r:?}: want a number")))?,
                ),
            };
            if retries.is_some_and(|r| r < 0) {
                return Err(err("--retries cannot be negative"));
            }
            Ok(InstructionKind::Healthcheck(Healthcheck::Check(
                HealthcheckOptions {
                    test,
                    interval: flags.duration("interval")?,
                    timeout: flags.duration("timeout")?,
                    start_period: flags.duration("start-period")?,
                    start_interval: flags.duration("start-interval")?,
                    retries: retries.map(|r| r.min(u32::MAX as i64) as u32),
                },
            )))
        }
        other => Err(err(&format!(
            "unknown type {other:?} in HEALTHCHECK (try CMD)"
        ))),
    }
}
