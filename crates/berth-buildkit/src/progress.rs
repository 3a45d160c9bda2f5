//! A build's progress as BuildKit's `Status` stream: berth's builder reports in Docker's
//! classic JSON messages (`Step 2/5 : RUN make`, ` ---> Using cache`, RUN output, ` ---> id`);
//! this turns them into vertices (one per step, CACHED, started/completed), their logs, and
//! the error on the step that failed — what buildx and compose draw. Progress kept for a late
//! `Status` call: a log that replays from the start.

use std::sync::Mutex;

use berth_api_types::{JsonAux, JsonMessage};
use tokio::sync::Notify;

use crate::proto::control::{StatusResponse, Timestamp, Vertex, VertexLog};

/// Turns one build's JSON messages into status updates.
pub struct Translator {
    prefix: String,
    next: usize,
    current: Option<Vertex>,
    /// The built image's ID, once announced.
    pub image_id: Option<String>,
    /// The build's error, once announced.
    pub error: Option<String>,
}

fn update(v: &Vertex) -> StatusResponse {
    StatusResponse {
        vertexes: vec![v.clone()],
        ..Default::default()
    }
}

impl Translator {
    /// Vertex digests are `<prefix>:<n>`, unique within a build.
    pub fn new(prefix: &str) -> Self {
        Translator {
            prefix: prefix.to_string(),
            next: 0,
            current: None,
            image_id: None,
            error: None,
        }
    }

    /// A vertex that starts now (the previous one, if still open, completes).
    pub fn start(&mut self, name: String) -> Vec<StatusResponse> {
        let mut out = self.complete();
        self.next += 1;
        let v = Vertex {
            digest: format!("{}:{}", self.prefix, self.next),
            name,
            started: Some(Timestamp::now()),
            ..Default::default()
        };
        out.push(update(&v));
        self.current = Some(v);
        out
    }

    /// The open vertex completes.
    pub fn complete(&mut self) -> Vec<StatusResponse> {
        match self.current.take() {
            Some(mut v) => {
                v.completed = Some(Timestamp::now());
                vec![update(&v)]
            }
            None => vec![],
        }
    }

    fn log(&mut self, stream: i64, text: &str) -> Vec<StatusResponse> {
        let mut out = vec![];
        if self.current.is_none() {
            out.extend(self.start("[internal] build output".into()));
        }
        let Some(v) = &self.current else {
            return out;
        };
        out.push(StatusResponse {
            logs: vec![VertexLog {
                vertex: v.digest.clone(),
                timestamp: Some(Timestamp::now()),
                stream,
                msg: text.as_bytes().to_vec(),
            }],
            ..Default::default()
        });
        out
    }

    /// The updates one JSON message makes.
    pub fn message(&mut self, m: &JsonMessage) -> Vec<StatusResponse> {
        if let Some(JsonAux::Built { id }) = &m.aux {
            self.image_id = Some(id.clone());
        }
        if let Some(e) = m
            .error
            .as_ref()
            .or(m.error_detail.as_ref().map(|d| &d.message))
        {
            self.error = Some(e.clone());
            return match self.current.take() {
                Some(mut v) => {
                    v.error = e.clone();
                    v.completed = Some(Timestamp::now());
                    vec![update(&v)]
                }
                None => vec![],
            };
        }
        if let Some(s) = &m.status {
            if m.progress_detail.is_some() {
                return vec![];
            }
            let line = match &m.id {
                Some(id) => format!("{id}: {s}\n"),
                None => format!("{s}\n"),
            };
            return self.log(1, &line);
        }
        let Some(text) = &m.stream else {
            return vec![];
        };
        if let Some(rest) = text.strip_prefix("Step ") {
            if let Some((count, instr)) = rest.split_once(" : ") {
                return self.start(format!("[{count}] {}", instr.trim_end()));
            }
        }
        if text == " ---> Using cache\n" {
            if let Some(v) = &mut self.current {
                v.cached = true;
                return vec![update(v)];
            }
            return vec![];
        }
        if let Some(rest) = text.strip_prefix(" ---> ") {
            let rest = rest.trim_end();
            if rest.starts_with("Running in ") {
                return vec![];
            }
            if rest.len() == 12 && rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return self.complete();
            }
        }
        if text.starts_with("Removing intermediate container ")
            || text.starts_with("Successfully built ")
            || text.starts_with("Successfully tagged ")
        {
            return vec![];
        }
        // dockerd's classic builder wraps a RUN's stderr in red.
        if let Some(inner) = text
            .strip_prefix("\x1b[91m")
            .and_then(|t| t.strip_suffix("\x1b[0m"))
        {
            return self.log(2, inner);
        }
        self.log(1, text)
    }
}

/// The status updates of one build, kept so a `Status` call made at any time sees them all.
#[derive(Default)]
pub struct Log {
    state: Mutex<(Vec<StatusResponse>, bool)>,
    changed: Notify,
}

impl Log {
    pub fn push(&self, updates: Vec<StatusResponse>) {
        if updates.is_empty() {
            return;
        }
        if let Ok(mut s) = self.state.lock() {
            s.0.extend(updates);
        }
        self.changed.notify_waiters();
    }

    /// No more updates will come.
    pub fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.1 = true;
        }
        self.changed.notify_waiters();
    }

    /// Updates from index `from`, waiting for some; empty once closed and read to the end.
    pub async fn read_from(&self, from: usize) -> Vec<StatusResponse> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let Ok(s) = self.state.lock() else {
                    return vec![];
                };
                if s.0.len() > from {
                    return s.0[from..].to_vec();
                }
                if s.1 {
                    return vec![];
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(u: &[StatusResponse]) -> Vec<(String, bool, bool, bool)> {
        u.iter()
            .flat_map(|r| r.vertexes.iter())
            .map(|v| {
                (
                    v.name.clone(),
                    v.cached,
                    v.completed.is_some(),
                    !v.error.is_empty(),
                )
            })
            .collect()
    }

    #[test]
    fn classic_messages_become_vertices_logs_and_cached() {
        let mut t = Translator::new("b1");
        let mut all = vec![];
        for m in [
            JsonMessage::stream("Step 1/3 : FROM busybox\n"),
            JsonMessage::stream(" ---> 0123456789ab\n"),
            JsonMessage::stream("Step 2/3 : RUN echo hi\n"),
            JsonMessage::stream(" ---> Using cache\n"),
            JsonMessage::stream(" ---> abcdefabcdef\n"),
            JsonMessage::stream("Step 3/3 : RUN echo out; echo err >&2\n"),
            JsonMessage::stream(" ---> Running in 0123456789ab\n"),
            JsonMessage::stream("out\n"),
            JsonMessage::stream("\x1b[91merr\n\x1b[0m"),
            JsonMessage::stream("Removing intermediate container 0123456789ab\n"),
            JsonMessage::stream(" ---> fedcbafedcba\n"),
            JsonMessage {
                aux: Some(JsonAux::Built {
                    id: "sha256:abc".into(),
                }),
                ..Default::default()
            },
            JsonMessage::stream("Successfully built fedcbafedcba\n"),
        ] {
            all.extend(t.message(&m));
        }
        let v = names(&all);
        assert_eq!(
            v,
            [
                ("[1/3] FROM busybox".into(), false, false, false),
                ("[1/3] FROM busybox".into(), false, true, false),
                ("[2/3] RUN echo hi".into(), false, false, false),
                ("[2/3] RUN echo hi".into(), true, false, false),
                ("[2/3] RUN echo hi".into(), true, true, false),
                (
                    "[3/3] RUN echo out; echo err >&2".into(),
                    false,
                    false,
                    false
                ),
                (
                    "[3/3] RUN echo out; echo err >&2".into(),
                    false,
                    true,
                    false
                ),
            ]
        );
        let logs: Vec<_> = all
            .iter()
            .flat_map(|r| r.logs.iter())
            .map(|l| (l.vertex.as_str(), l.stream, l.msg.as_slice()))
            .collect();
        assert_eq!(
            logs,
            [("b1:3", 1, &b"out\n"[..]), ("b1:3", 2, &b"err\n"[..])]
        );
        assert_eq!(t.image_id.as_deref(), Some("sha256:abc"));
    }

    #[test]
    fn an_error_lands_on_the_step_that_failed() {
        let mut t = Translator::new("b");
        t.message(&JsonMessage::stream("Step 1/1 : RUN false\n"));
        let u = t.message(&JsonMessage::error(
            "The command '/bin/sh -c false' returned a non-zero code: 1",
        ));
        assert_eq!(names(&u), [("[1/1] RUN false".into(), false, true, true)]);
        assert!(t.error.as_deref().unwrap().contains("non-zero code: 1"));
    }

    #[tokio::test]
    async fn a_late_reader_sees_everything_then_the_end() {
        let log = std::sync::Arc::new(Log::default());
        log.push(Translator::new("x").start("one".into()));
        let l2 = log.clone();
        let reader = tokio::spawn(async move {
            let mut n = 0;
            loop {
                let u = l2.read_from(n).await;
                if u.is_empty() {
                    return n;
                }
                n += u.len();
            }
        });
        tokio::task::yield_now().await;
        log.push(Translator::new("x").start("two".into()));
        log.close();
        assert_eq!(reader.await.unwrap(), 2);
    }
}
