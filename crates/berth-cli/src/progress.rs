//! Display of the daemon's JSON message streams (pull, push, load, import, build): progress
//! bars on a terminal, plain `id: status` lines otherwise; `errorDetail` ends with its code as the exit status
//! (1 when it has none).

use std::collections::HashMap;
use std::io::Write;

use berth_client::jsonstream::{JsonMessage, JsonSplitter};
use berth_client::ResponseStream;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::exit::Exit;

/// What a stream left behind.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `aux` payloads (build image IDs, push digests).
    pub aux: Vec<serde_json::Value>,
    /// Every status line, in order.
    pub statuses: Vec<String>,
    /// Every `stream` text, in order.
    pub streams: Vec<String>,
}

/// How to show messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars on a terminal, lines otherwise.
    Auto,
    /// Plain lines always.
    Lines,
    /// Nothing but errors.
    Quiet,
}

/// The classic builder's marker for a reused step, and how berth shows it.
const USING_CACHE: &str = " ---> Using cache\n";
const CACHED: &str = " ---> CACHED\n";

/// Plain-text rendering of one message (docker's non-terminal output; a reused build step
/// reads `CACHED`, so a rebuild shows at a glance which steps did work).
pub fn plain_line(m: &JsonMessage) -> Option<String> {
    if let Some(s) = &m.stream {
        return Some(if s == USING_CACHE {
            CACHED.into()
        } else {
            s.clone()
        });
    }
    let status = m.status.as_deref()?;
    Some(match &m.id {
        Some(id) if !id.is_empty() => format!("{id}: {status}\n"),
        _ => format!("{status}\n"),
    })
}

/// Consume `stream`, displaying it; an error message in the stream becomes exit status 1.
pub async fn show(mut stream: ResponseStream, mode: Mode) -> anyhow::Result<Outcome> {
    let mode = if mode == Mode::Auto && !crate::tty::stdout_is_tty() {
        Mode::Lines
    } else {
        mode
    };
    let multi = MultiProgress::new();
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let style = ProgressStyle::with_template("{prefix}: {msg:<20} {bar:40} {bytes}/{total_bytes}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut split = JsonSplitter::new();
    let mut out = Outcome::default();
    let mut stdout = std::io::stdout();
    while let Some(chunk) = stream.next_chunk().await? {
        for v in split.push(&chunk) {
            let m: JsonMessage = serde_json::from_value(v).unwrap_or_default();
            if let Some(err) = m.error_text() {
                for b in bars.values() {
                    b.abandon();
                }
                // The code dockerd puts in errorDetail (a failed RUN's exit status) is the
                // exit status, as the docker CLI's; 1 when there is none.
                let code = m
                    .error_detail
                    .as_ref()
                    .and_then(|d| d.code)
                    .and_then(|c| i32::try_from(c).ok())
                    .filter(|c| *c != 0)
                    .unwrap_or(1);
                return Err(Exit::msg(code, err));
            }
            if let Some(a) = &m.aux {
                out.aux.push(a.clone());
            }
            if let Some(s) = &m.status {
                out.statuses.push(s.clone());
            }
            if let Some(s) = &m.stream {
                out.streams.push(s.clone());
            }
            match mode {
                Mode::Quiet => {}
                Mode::Lines => {
                    if let Some(l) = plain_line(&m) {
                        let _ = stdout.write_all(l.as_bytes());
                        let _ = stdout.flush();
                    }
                }
                Mode::Auto => match (&m.id, &m.status) {
                    (Some(id), Some(st)) if !id.is_empty() && m.stream.is_none() => {
                        let bar = bars.entry(id.clone()).or_insert_with(|| {
                            let b = multi.add(ProgressBar::new(0));
                            b.set_style(style.clone());
                            b.set_prefix(id.clone());
                            b
                        });
                        bar.set_message(st.clone());
                        if let Some(d) = &m.progress_detail {
                            if let Some(t) = d.total {
                                bar.set_length(t);
                            }
                            if let Some(c) = d.current {
                                bar.set_position(c);
                            }
                        }
                        if st.starts_with("Pull complete")
                            || st.starts_with("Already exists")
                            || st.starts_with("Pushed")
                            || st.starts_with("Layer already exists")
                        {
                            bar.finish();
                        }
                    }
                    _ => {
                        if let Some(l) = plain_line(&m) {
                            let _ = multi.println(l.trim_end_matches('\n'));
                        }
                    }
                },
            }
        }
    }
    for b in bars.values() {
        if !b.is_finished() {
            b.finish();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines() {
        let m: JsonMessage =
            serde_json::from_str(r#"{"id":"abc","status":"Downloading","progress":"[=>]"}"#)
                .unwrap();
        assert_eq!(plain_line(&m).unwrap(), "abc: Downloading\n");
        let m: JsonMessage = serde_json::from_str(r#"{"stream":"Step 1/2\n"}"#).unwrap();
        assert_eq!(plain_line(&m).unwrap(), "Step 1/2\n");
        let m: JsonMessage = serde_json::from_str(r#"{"aux":{"ID":"x"}}"#).unwrap();
        assert_eq!(plain_line(&m), None);
        let m: JsonMessage = serde_json::from_str(r#"{"stream":" ---> Using cache\n"}"#).unwrap();
        assert_eq!(plain_line(&m).unwrap(), " ---> CACHED\n");
    }
}
