//! Decoder for Docker's multiplexed attach/logs stream: frames `[stream,0,0,0,len32be]` + payload.

use bytes::{Buf, Bytes, BytesMut};

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdin,
    Stdout,
    Stderr,
    /// Docker uses stream 3 for "system error" messages at the end of an exec/attach.
    System,
}

/// Incremental decoder: feed arbitrary chunks, get whole frames back.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: BytesMut,
}

/// Errors of a malformed stream.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFrame(pub u8);

impl Demuxer {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append `data` and return every complete frame now available.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<(StreamKind, Bytes)>, BadFrame> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while self.buf.len() >= 8 {
            let kind = match self.buf[0] {
                0 => StreamKind::Stdin,
                1 => StreamKind::Stdout,
                2 => StreamKind::Stderr,
                3 => StreamKind::System,
                b => return Err(BadFrame(b)),
            };
            let len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                break;
            }
            self.buf.advance(8);
            out.push((kind, self.buf.split_to(len).freeze()));
        }
        Ok(out)
    }

    /// Bytes of an incomplete trailing frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Encode one frame (used by tests and by anything that re-multiplexes).
pub fn encode(kind: StreamKind, payload: &[u8]) -> Vec<u8> {
    let b = match kind {
        StreamKind::Stdin => 0,
        StreamKind::Stdout => 1,
        StreamKind::Stderr => 2,
        StreamKind::System => 3,
    };
    let mut v = vec![b, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_across_chunks() {
        let mut wire = encode(StreamKind::Stdout, b"hello\n");
        wire.extend(encode(StreamKind::Stderr, b"oops"));
        wire.extend(encode(StreamKind::Stdout, b""));
        // feed one byte at a time
        let mut d = Demuxer::new();
        let mut got = Vec::new();
        for b in &wire {
            got.extend(d.push(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(
            got,
            vec![
                (StreamKind::Stdout, Bytes::from_static(b"hello\n")),
                (StreamKind::Stderr, Bytes::from_static(b"oops")),
                (StreamKind::Stdout, Bytes::new()),
            ]
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn rejects_unknown_stream() {
        let mut d = Demuxer::new();
        assert_eq!(d.push(&[9, 0, 0, 0, 0, 0, 0, 1, b'x']), Err(BadFrame(9)));
    }
}
