//! A subset of Go's text/template as docker's `--format` uses it: `{{.A.B}}`, `{{.}}`,
//! `{{json .X}}`, `{{join .X ","}}`, `{{index .X "k"}}`, `{{upper}}`/`{{lower}}`/`{{title}}`,
//! `{{len}}`, `{{println}}`, pipes `{{.X | json}}`, `{{range}}`, `{{if}}`/`{{else}}`/`{{end}}`.

use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Vec<Cmd>),
    Range(Vec<Cmd>, Vec<Node>, Vec<Node>),
    If(Vec<Cmd>, Vec<Node>, Vec<Node>),
}

/// One command of a pipeline: function name (or none) and arguments.
#[derive(Debug, Clone, PartialEq)]
struct Cmd {
    func: Option<String>,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Field(Vec<String>),
    Str(String),
    Num(f64),
}

/// Template parse/exec error.
#[derive(Debug, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "template: {}", self.0)
    }
}

impl std::error::Error for TemplateError {}

enum Tok {
    Text(String),
    Action(String),
}

fn lex(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("{{") {
        let mut text = rest[..i].to_string();
        let after = &rest[i + 2..];
        let j = after
            .find("}}")
            .ok_or_else(|| TemplateError("unclosed action".into()))?;
        let mut inner = &after[..j];
        if let Some(s) = inner.strip_prefix('-') {
            text = text.trim_end().to_string();
            inner = s;
        }
        let mut trim_next = false;
        if let Some(s) = inner.strip_suffix('-') {
            trim_next = true;
            inner = s;
        }
        if !text.is_empty() {
            out.push(Tok::Text(text));
        }
        out.push(Tok::Action(inner.trim().to_string()));
        rest = &after[j + 2..];
        if trim_next {
            rest = rest.trim_start();
        }
    }
    if !rest.is_empty() {
        out.push(Tok::Text(rest.to_string()));
    }
    Ok(out)
}

fn split_words(s: &str) -> Result<Vec<String>, TemplateError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '`' => {
                let mut lit = String::from('"');
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == c {
                        closed = true;
                        break;
                    }
                    if d == '\\' && c == '"' {
                        match chars.next() {
                            Some('n') => lit.push('\n'),
                            Some('t') => lit.push('\t'),
                            Some(o) => lit.push(o),
                            None => {}
                        }
                        continue;
                    }
                    lit.push(d);
                }
                if !closed {
                    return Err(TemplateError("unterminated quoted string".into()));
                }
                words.push(lit);
            }
            ' ' | '\t' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            '|' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                words.push("|".into());
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

fn parse_arg(w: &str) -> Result<Arg, TemplateError> {
    if let Some(s) = w.strip_prefix('"') {
        return Ok(Arg::Str(s.to_string()));
    }
    if w == "." {
        return Ok(Arg::Field(vec![]));
    }
    if let Some(p) = w.strip_prefix('.') {
        return Ok(Arg::Field(p.split('.').map(String::from).collect()));
    }
    if let Ok(n) = w.parse::<f64>() {
        return Ok(Arg::Num(n));
    }
    Err(TemplateError(format!("function {w:?} not defined")))
}

fn parse_pipeline(s: &str) -> Result<Vec<Cmd>, TemplateError> {
    let words = split_words(s)?;
    let mut cmds = Vec::new();
    for part in words.split(|w| w == "|") {
        let Some(first) = part.first() else {
            return Err(TemplateError("missing command in pipeline".into()));
        };
        let cmd =
            if first.starts_with('.') || first.starts_with('"') || first.parse::<f64>().is_ok() {
                if part.len() > 1 {
                    return Err(TemplateError(format!(
                        "can't give argument to non-function {first}"
                    )));
                }
                Cmd {
                    func: None,
                    args: vec![parse_arg(first)?],
                }
            } else {
                const FUNCS: &[&str] = &[
                    "json", "join", "index", "upper", "lower", "title", "len", "println", "print",
                    "split", "truncate", "pad",
                ];
                if !FUNCS.contains(&first.as_str()) {
                    return Err(TemplateError(format!("function {first:?} not defined")));
                }
                Cmd {
                    func: Some(first.clone()),
                    args: part[1..]
                        .iter()
                        .map(|w| parse_arg(w))
                        .collect::<Result<_, _>>()?,
                }
            };
        cmds.push(cmd);
    }
    Ok(cmds)
}

fn parse_nodes(
    toks: &mut std::iter::Peekable<std::vec::IntoIter<Tok>>,
    stop_at_end: bool,
) -> Result<(Vec<Node>, Option<String>), TemplateError> {
    let mut nodes = Vec::new();
    while let Some(t) = toks.next() {
        match t {
            Tok::Text(s) => nodes.push(Node::Text(s)),
            Tok::Action(a) if a == "end" || a == "else" => {
                if !stop_at_end {
                    return Err(TemplateError(format!("unexpected {{{{{a}}}}}")));
                }
                return Ok((nodes, Some(a)));
            }
            Tok::Action(a) if a.starts_with("/*") => {}
            Tok::Action(a) => {
                let (kw, rest) = a.split_once(' ').unwrap_or((&a, ""));
                if kw == "range" || kw == "if" {
                    let pipe = parse_pipeline(rest)?;
                    let (body, term) = parse_nodes(toks, true)?;
                    let els = match term.as_deref() {
                        Some("else") => {
                            let (e, t2) = parse_nodes(toks, true)?;
                            if t2.as_deref() != Some("end") {
                                return Err(TemplateError("missing {{end}}".into()));
                            }
                            e
                        }
                        Some(_) => vec![],
                        None => return Err(TemplateError("missing {{end}}".into())),
                    };
                    nodes.push(if kw == "range" {
                        Node::Range(pipe, body, els)
                    } else {
                        Node::If(pipe, body, els)
                    });
                } else {
                    nodes.push(Node::Action(parse_pipeline(&a)?));
                }
            }
        }
    }
    if stop_at_end {
        return Ok((nodes, None));
    }
    Ok((nodes, None))
}

impl Template {
    /// Parse a template. Literal `\t` and `\n` (as typed in a shell) become tab/newline.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let src = src.replace("\\t", "\t").replace("\\n", "\n");
        let mut toks = lex(&src)?.into_iter().peekable();
        let (nodes, _) = parse_nodes(&mut toks, false)?;
        Ok(Template { nodes })
    }

    /// Render against `data`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        exec(&self.nodes, data, &mut out)?;
        Ok(out)
    }

    /// Field names referenced at top level, in order (used to build table headers).
    pub fn fields(&self) -> Vec<String> {
        let mut v = Vec::new();
        for n in &self.nodes {
            if let Node::Action(cmds) = n {
                for c in cmds {
                    for a in &c.args {
                        if let Arg::Field(p) = a {
                            if let Some(f) = p.first() {
                                v.push(f.clone());
                            }
                        }
                    }
                }
            }
        }
        v
    }

    /// The template with each top-level `{{.Field}}` action replaced by `header(Field)` text.
    pub fn header_row(&self, header: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(cmds) => {
                    let name = cmds
                        .iter()
                        .flat_map(|c| c.args.iter())
                        .find_map(|a| match a {
                            Arg::Field(p) if !p.is_empty() => Some(p.join(".")),
                            _ => None,
                        })
                        .unwrap_or_default();
                    out.push_str(&header(&name));
                }
                _ => {}
            }
        }
        out
    }
}

fn lookup<'a>(data: &'a Value, path: &[String]) -> Result<Value, TemplateError> {
    let mut cur: &'a Value = data;
    for p in path {
        match cur {
            Value::Object(m) => match m.get(p) {
                Some(v) => cur = v,
                None => return Ok(Value::Null),
            },
            Value::Null => return Ok(Value::Null),
            _ => {
                return Err(TemplateError(format!(
                    "can't evaluate field {p} in type {}",
                    type_name(cur)
                )))
            }
        }
    }
    Ok(cur.clone())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn eval_arg(a: &Arg, dot: &Value) -> Result<Value, TemplateError> {
    match a {
        Arg::Field(p) => lookup(dot, p),
        Arg::Str(s) => Ok(Value::String(s.clone())),
        Arg::Num(n) => Ok(serde_json::json!(n)),
    }
}

fn eval(cmds: &[Cmd], dot: &Value) -> Result<Value, TemplateError> {
    let mut prev: Option<Value> = None;
    for c in cmds {
        let mut args: Vec<Value> = c
            .args
            .iter()
            .map(|a| eval_arg(a, dot))
            .collect::<Result<_, _>>()?;
        if let Some(p) = prev.take() {
            args.push(p);
        }
        let v = match c.func.as_deref() {
            None => args.into_iter().next().unwrap_or(Value::Null),
            Some(f) => call(f, &args)?,
        };
        prev = Some(v);
    }
    Ok(prev.unwrap_or(Value::Null))
}

fn need(f: &str, args: &[Value], n: usize) -> Result<(), TemplateError> {
    if args.len() != n {
        return Err(TemplateError(format!(
            "wrong number of args for {f}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn call(f: &str, args: &[Value]) -> Result<Value, TemplateError> {
    Ok(match f {
        "json" => {
            need(f, args, 1)?;
            Value::String(serde_json::to_string(&args[0]).unwrap_or_default())
        }
        "join" => {
            need(f, args, 2)?;
            let sep = to_text(&args[1]);
            match &args[0] {
                Value::Array(a) => {
                    Value::String(a.iter().map(to_text).collect::<Vec<_>>().join(&sep))
                }
                Value::Null => Value::String(String::new()),
                o => Value::String(to_text(o)),
            }
        }
        "split" => {
            need(f, args, 2)?;
            let sep = to_text(&args[1]);
            Value::Array(
                to_text(&args[0])
                    .split(sep.as_str())
                    .map(|s| Value::String(s.into()))
                    .collect(),
            )
        }
        "index" => {
            need(f, args, 2)?;
            match (&args[0], &args[1]) {
                (Value::Object(m), k) => m.get(&to_text(k)).cloned().unwrap_or(Value::Null),
                (Value::Array(a), Value::Number(n)) => {
                    let i = n.as_f64().unwrap_or(-1.0);
                    a.get(i as usize)
                        .cloned()
                        .ok_or_else(|| TemplateError(format!("index out of range: {i}")))?
                }
                _ => Value::Null,
            }
        }
        "upper" => Value::String(to_text(args.first().unwrap_or(&Value::Null)).to_uppercase()),
        "lower" => Value::String(to_text(args.first().unwrap_or(&Value::Null)).to_lowercase()),
        "title" => {
            let s = to_text(args.first().unwrap_or(&Value::Null));
            let mut c = s.chars();
            Value::String(match c.next() {
                Some(h) => h.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            })
        }
        "len" => {
            need(f, args, 1)?;
            let n = match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.len(),
                o => return Err(TemplateError(format!("len of {}", type_name(o)))),
            };
            serde_json::json!(n)
        }
        "truncate" => {
            need(f, args, 2)?;
            let n = args[1].as_f64().unwrap_or(0.0) as usize;
            Value::String(to_text(&args[0]).chars().take(n).collect())
        }
        "pad" => {
            need(f, args, 3)?;
            let l = args[1].as_f64().unwrap_or(0.0) as usize;
            let r = args[2].as_f64().unwrap_or(0.0) as usize;
            Value::String(format!(
                "{}{}{}",
                " ".repeat(l),
                to_text(&args[0]),
                " ".repeat(r)
            ))
        }
        "println" => Value::String(args.iter().map(to_text).collect::<Vec<_>>().join(" ") + "\n"),
        "print" => Value::String(args.iter().map(to_text).collect::<Vec<_>>().join("")),
        other => return Err(TemplateError(format!("function {other:?} not defined"))),
    })
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Go's `fmt` rendering of a value: strings raw, arrays `[a b]`, maps `map[k:v]`.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Array(a) => format!("[{}]", a.iter().map(to_text).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", to_text(&m[*k])))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

fn exec(nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), TemplateError> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(cmds) => out.push_str(&to_text(&eval(cmds, dot)?)),
            Node::If(p, body, els) => {
                if truthy(&eval(p, dot)?) {
                    exec(body, dot, out)?
                } else {
                    exec(els, dot, out)?
                }
            }
            Node::Range(p, body, els) => match eval(p, dot)? {
                Value::Array(a) if !a.is_empty() => {
                    for item in &a {
                        exec(body, item, out)?;
                    }
                }
                Value::Object(m) if !m.is_empty() => {
                    let mut keys: Vec<_> = m.keys().collect();
                    keys.sort();
                    for k in keys {
                        exec(body, &m[k], out)?;
                    }
                }
                _ => exec(els, dot, out)?,
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: Value) -> String {
        Template::parse(t).unwrap().render(&v).unwrap()
    }

    #[test]
    fn fields_and_functions() {
        let v = json!({"ID":"abc","State":{"Status":"running","Pid":42},"Tags":["a:1","b:2"],
                        "Labels":{"k":"v"}});
        assert_eq!(r("{{.ID}}", v.clone()), "abc");
        assert_eq!(
            r("{{.State.Status}} {{.State.Pid}}", v.clone()),
            "running 42"
        );
        assert_eq!(r("{{json .Tags}}", v.clone()), r#"["a:1","b:2"]"#);
        assert_eq!(r("{{join .Tags \",\"}}", v.clone()), "a:1,b:2");
        assert_eq!(r("{{index .Labels \"k\"}}", v.clone()), "v");
        assert_eq!(r("{{.Tags}}", v.clone()), "[a:1 b:2]");
        assert_eq!(r("{{.Labels}}", v.clone()), "map[k:v]");
        assert_eq!(r("{{.ID | upper}}", v.clone()), "ABC");
        assert_eq!(r("{{.Missing}}", v.clone()), "<no value>");
        assert_eq!(r("{{.ID}}\\t{{len .Tags}}", v.clone()), "abc\t2");
        assert_eq!(r("{{json .}}", json!({"A":1})), r#"{"A":1}"#);
    }

    #[test]
    fn range_and_if() {
        let v = json!({"Tags":["x","y"],"On":true,"Off":false});
        assert_eq!(r("{{range .Tags}}[{{.}}]{{end}}", v.clone()), "[x][y]");
        assert_eq!(r("{{if .On}}yes{{else}}no{{end}}", v.clone()), "yes");
        assert_eq!(r("{{if .Off}}yes{{else}}no{{end}}", v.clone()), "no");
        assert_eq!(r("a {{- \" b\" -}} c", v), "a bc");
    }

    #[test]
    fn errors() {
        assert!(Template::parse("{{.ID").is_err());
        assert!(Template::parse("{{nosuch .ID}}").is_err());
        assert!(Template::parse("{{if .X}}a").is_err());
        let t = Template::parse("{{.ID.X}}").unwrap();
        assert!(t.render(&json!({"ID":"s"})).is_err());
    }

    #[test]
    fn headers() {
        let t = Template::parse("{{.ID}}\\t{{.Repository}}").unwrap();
        assert_eq!(t.header_row(&|f| f.to_uppercase()), "ID\tREPOSITORY");
        assert_eq!(t.fields(), vec!["ID", "Repository"]);
    }
}
