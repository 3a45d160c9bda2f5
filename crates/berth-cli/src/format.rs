//! Rendering of list output: docker's default tables (Go tabwriter layout: minwidth 10,
//! padding 3), `table ...` templates with derived headers, plain templates and `json`.

use std::io::Write;

use serde_json::Value;

use crate::template::{Template, TemplateError};

/// How a list command prints its rows.
pub struct Lister<'a> {
    /// The template used when no --format is given (without the `table ` prefix).
    pub default_table: &'a str,
    /// Header text for a field name, e.g. "ID" → "IMAGE ID".
    pub headers: &'a [(&'a str, &'a str)],
}

impl Lister<'_> {
    fn header(&self, field: &str) -> String {
        self.headers
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, h)| h.to_string())
            .unwrap_or_else(|| split_camel(field).to_uppercase())
    }

    /// Render `rows` according to `format` (None = default table) into a string.
    pub fn render(&self, format: Option<&str>, rows: &[Value]) -> Result<String, TemplateError> {
        let format = format.map(str::trim).filter(|f| !f.is_empty());
        let (table, tpl) = match format {
            None | Some("table") => (true, self.default_table.to_string()),
            Some("json") => (false, "{{json .}}".to_string()),
            Some(f) => match f.strip_prefix("table") {
                Some(rest) if rest.starts_with(char::is_whitespace) => {
                    (true, rest.trim_start().to_string())
                }
                _ => (false, f.to_string()),
            },
        };
        let t = Template::parse(&tpl)?;
        let mut out = String::new();
        if table {
            out.push_str(&t.header_row(&|f| self.header(f)));
            out.push('\n');
        }
        for r in rows {
            out.push_str(&t.render(r)?);
            out.push('\n');
        }
        Ok(if table { tabulate(&out) } else { out })
    }

    /// Render and write to stdout.
    pub fn print(&self, format: Option<&str>, rows: &[Value]) -> anyhow::Result<()> {
        let s = self.render(format, rows)?;
        let mut o = std::io::stdout().lock();
        o.write_all(s.as_bytes())?;
        Ok(())
    }
}

/// Align tab-separated cells like Go's tabwriter.NewWriter(w, 10, 1, 3, ' ', 0): Go's cell
/// width is max(text+3, 10), which is Rust tabwriter's max(text, 7)+3.
pub fn tabulate(s: &str) -> String {
    let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(7).padding(3);
    let _ = tw.write_all(s.as_bytes());
    let _ = tw.flush();
    String::from_utf8(tw.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn split_camel(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase() || chars.get(i + 1).is_some_and(|n| n.is_lowercase()))
        {
            out.push(' ');
        }
        out.push(*c);
    }
    out
}

/// Shorten a `sha256:...` id to docker's 12 characters.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const L: Lister = Lister {
        default_table: "{{.Repository}}\t{{.Tag}}\t{{.ID}}",
        headers: &[("ID", "IMAGE ID")],
    };

    #[test]
    fn default_table_aligns() {
        let rows = vec![json!({"Repository":"busybox","Tag":"latest","ID":"c50ff9579a62"})];
        let s = L.render(None, &rows).unwrap();
        assert_eq!(
            s,
            "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    c50ff9579a62\n"
        );
    }

    #[test]
    fn custom_formats() {
        let rows = vec![json!({"Repository":"a","Tag":"1","ID":"x","CreatedSince":"now"})];
        assert_eq!(L.render(Some("{{.ID}}:{{.Tag}}"), &rows).unwrap(), "x:1\n");
        assert_eq!(
            L.render(Some("table {{.ID}}\\t{{.CreatedSince}}"), &rows)
                .unwrap(),
            "IMAGE ID   CREATED SINCE\nx          now\n"
        );
        assert_eq!(L.render(Some("json"), &rows).unwrap().lines().count(), 1);
        assert!(L
            .render(Some("{{json .}}"), &rows)
            .unwrap()
            .starts_with('{'));
    }

    #[test]
    fn ids() {
        assert_eq!(short_id("sha256:c50ff9579a62aaaa"), "c50ff9579a62");
        assert_eq!(split_camel("CreatedSince"), "Created Since");
        assert_eq!(split_camel("ID"), "ID");
    }
}
