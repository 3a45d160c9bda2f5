//! Docker-style progress events (`{"id","status","progressDetail":{current,total}}`) and the
//! sink pull/push report them to.

use std::sync::Arc;

use tokio::sync::mpsc;

/// Bytes between two "Downloading"/"Pushing" events of one blob.
pub(crate) const PROGRESS_STEP: u64 = 512 * 1024;

/// Byte counts of a blob transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ProgressDetail {
    pub current: u64,
    pub total: u64,
}

/// One progress line, shaped as the Engine API's JSON stream entries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Short digest of the blob (12 hex chars), or the tag for image-level lines; absent for
    /// lines like `Digest: sha256:…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: String,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
}

impl Progress {
    pub fn new(id: Option<&str>, status: impl Into<String>) -> Progress {
        Progress {
            id: id.map(str::to_string),
            status: status.into(),
            progress_detail: None,
        }
    }

    pub fn with_detail(mut self, current: u64, total: u64) -> Progress {
        self.progress_detail = Some(ProgressDetail { current, total });
        self
    }
}

/// Where progress goes: nowhere, a callback, or a channel.
#[derive(Clone, Default)]
pub struct ProgressSink(Option<Arc<dyn Fn(Progress) + Send + Sync>>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressSink(on)"
        } else {
            "ProgressSink(off)"
        })
    }
}

impl ProgressSink {
    /// Discard progress.
    pub fn none() -> ProgressSink {
        ProgressSink(None)
    }

    pub fn callback(f: impl Fn(Progress) + Send + Sync + 'static) -> ProgressSink {
        ProgressSink(Some(Arc::new(f)))
    }

    /// A sink feeding an unbounded channel (events are small and few per blob).
    pub fn channel() -> (ProgressSink, mpsc::UnboundedReceiver<Progress>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            ProgressSink::callback(move |p| {
                let _ = tx.send(p);
            }),
            rx,
        )
    }

    pub(crate) fn emit(&self, p: Progress) {
        if let Some(f) = &self.0 {
            f(p);
        }
    }

    pub(crate) fn status(&self, id: Option<&str>, status: impl Into<String>) {
        if self.0.is_some() {
            self.emit(Progress::new(id, status));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_json_shape() {
        let p = Progress::new(Some("abc123abc123"), "Downloading").with_detail(5, 10);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"id":"abc123abc123","status":"Downloading","progressDetail":{"current":5,"total":10}}"#
        );
        let (sink, mut rx) = ProgressSink::channel();
        sink.status(None, "Digest: x");
        assert_eq!(rx.try_recv().unwrap().status, "Digest: x");
    }
}
