//! Splitter for the daemon's JSON message streams (pull, push, load, build, events):
//! concatenated JSON values, usually newline separated.

use serde::{Deserialize, Serialize};

/// One progress/status message as dockerd emits it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct JsonMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(
        default,
        rename = "progressDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(
        default,
        rename = "errorDetail",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

/// Byte progress of one layer.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct ProgressDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// Error carried in a stream.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
}

impl JsonMessage {
    /// The error text, if this message reports a failure.
    pub fn error_text(&self) -> Option<String> {
        self.error_detail
            .as_ref()
            .and_then(|d| d.message.clone())
            .or_else(|| self.error.clone())
    }
}

/// Incremental splitter of concatenated JSON values.
#[derive(Debug, Default)]
pub struct JsonSplitter {
    buf: Vec<u8>,
}

impl JsonSplitter {
    /// A fresh splitter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append data, return every complete JSON value (invalid values are skipped with a trace).
    pub fn push(&mut self, data: &[u8]) -> Vec<serde_json::Value> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut consumed = 0;
        {
            let mut it =
                serde_json::Deserializer::from_slice(&self.buf).into_iter::<serde_json::Value>();
            loop {
                match it.next() {
                    Some(Ok(v)) => {
                        consumed = it.byte_offset();
                        out.push(v);
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => {
                        tracing::debug!("skipping undecodable stream data: {e}");
                        // drop up to the next newline after the current position
                        let rest = &self.buf[consumed..];
                        match rest.iter().position(|b| *b == b'\n') {
                            Some(p) => consumed += p + 1,
                            None => consumed = self.buf.len(),
                        }
                        break;
                    }
                    None => break,
                }
            }
        }
        self.buf.drain(..consumed);
        if !out.is_empty() || consumed > 0 {
            // continue if more complete values remain after a skip
            if consumed > 0 && !self.buf.is_empty() && out.is_empty() {
                return self.push(&[]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_partial_values() {
        let mut s = JsonSplitter::new();
        assert!(s.push(b"{\"status\":\"Pulling").is_empty());
        let v = s.push(b"\"}\r\n{\"a\":1}\n{\"b\"");
        assert_eq!(v.len(), 2);
        let m: JsonMessage = serde_json::from_value(v[0].clone()).unwrap();
        assert_eq!(m.status.as_deref(), Some("Pulling"));
        assert_eq!(s.push(b":2}").len(), 1);
    }

    #[test]
    fn error_detail_wins() {
        let m: JsonMessage =
            serde_json::from_str(r#"{"errorDetail":{"message":"manifest unknown"},"error":"x"}"#)
                .unwrap();
        assert_eq!(m.error_text().as_deref(), Some("manifest unknown"));
    }
}
