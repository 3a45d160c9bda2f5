//! Command implementations, one module per resource.

pub mod build;
pub mod compose;
pub mod container;
pub mod cp;
pub mod image;
pub mod kube;
pub mod netvol;
pub mod pod;
pub mod registry;
#[cfg(feature = "daemon")]
pub mod registry_serve;
pub mod run;
pub mod stats;
pub mod stream;
pub mod system;
pub mod ui;
pub mod update;

use std::io::Write;

/// Encode an object name for a URL path (keeps `/`, `:` and `@` like docker does).
pub fn path_name(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Query string builder.
#[derive(Default)]
pub struct Query(Vec<String>);

impl Query {
    pub fn new() -> Self {
        Self::default()
    }
    /// Add `k=v` (value URL-encoded).
    pub fn add(mut self, k: &str, v: impl AsRef<str>) -> Self {
        self.0
            .push(format!("{k}={}", crate::opts::urlencode(v.as_ref())));
        self
    }
    /// Add `k=v` when `v` is Some.
    pub fn opt(self, k: &str, v: Option<impl AsRef<str>>) -> Self {
        match v {
            Some(v) => self.add(k, v),
            None => self,
        }
    }
    /// Add `k=1` when `b`.
    pub fn flag(self, k: &str, b: bool) -> Self {
        if b {
            self.add(k, "1")
        } else {
            self
        }
    }
    /// Add an already-encoded value.
    pub fn raw(mut self, k: &str, v: Option<String>) -> Self {
        if let Some(v) = v {
            self.0.push(format!("{k}={v}"));
        }
        self
    }
    /// `path?query`.
    pub fn on(&self, path: &str) -> String {
        if self.0.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", self.0.join("&"))
        }
    }
}

/// Per-object errors collected by multi-object commands → exit 1 with all of them.
pub fn all_ok(errs: Vec<String>) -> anyhow::Result<()> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(crate::exit::Exit::msg(1, errs.join("\n")))
    }
}

/// Print JSON the way `docker inspect` does (4-space indent).
pub fn print_json_indented(v: &serde_json::Value) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser)?;
    buf.push(b'\n');
    std::io::stdout().lock().write_all(&buf)?;
    Ok(())
}

/// Ask "Are you sure you want to continue? [y/N]" unless `force`.
pub fn confirm(warning: &str, force: bool) -> bool {
    if force {
        return true;
    }
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_paths() {
        assert_eq!(
            Query::new()
                .add("fromImage", "a b")
                .flag("q", true)
                .flag("x", false)
                .on("/p"),
            "/p?fromImage=a%20b&q=1"
        );
        assert_eq!(
            path_name("localhost:5000/a b@sha256:1"),
            "localhost:5000/a%20b@sha256:1"
        );
    }
}
