//! Daemon ↔ shim messages: one JSON request line per connection, one JSON response line,
//! then (for attach and exec) a stream of frames `[stream, 0, 0, 0, len_be32] payload`.

use serde::{Deserialize, Serialize};

use crate::spec::Resources;
use crate::user::User;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// Shim → client: the process exited; payload is the decimal exit code. Last frame.
pub const EXIT: u8 = 3;
/// Client → shim: no more stdin.
pub const STDIN_EOF: u8 = 4;

/// Largest frame payload either side sends.
pub const MAX_FRAME: usize = 32 * 1024;

/// Encode one frame.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Try to split one frame off the front of `buf`: Some((stream, payload)) and drains it.
pub fn take_frame(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    if buf.len() < 8 {
        return None;
    }
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if buf.len() < 8 + len {
        return None;
    }
    let stream = buf[0];
    let payload = buf[8..8 + len].to_vec();
    buf.drain(..8 + len);
    Some((stream, payload))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecConfig {
    pub args: Vec<String>,
    /// Extra environment, `K=V`, on top of the container's.
    #[serde(default)]
    pub env: Vec<String>,
    /// Empty = the container's working directory.
    #[serde(default)]
    pub cwd: String,
    /// None = the container's user.
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub privileged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start a container created with `start_on_request`.
    Start,
    State,
    /// Reply comes when the container has exited.
    Wait,
    Kill {
        signal: i32,
    },
    Pause,
    Resume,
    Update {
        resources: Resources,
    },
    /// Resize the container's pty, or an exec's (`exec_pid`).
    Resize {
        height: u16,
        width: u16,
        #[serde(default)]
        exec_pid: Option<i32>,
    },
    /// Stream output (and take stdin frames) from now on.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Run another process in the container; the connection then streams its stdio and ends
    /// with an EXIT frame.
    Exec(ExecConfig),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateInfo {
    pub id: String,
    pub pid: i32,
    pub shim_pid: i32,
    /// "created", "running" or "paused".
    pub status: String,
    pub started_at: String,
    pub tty: bool,
}

/// Written atomically to `<dir>/exit.json` and sent to waiters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The process's exit code, or 128+signal when killed by a signal.
    pub exit_code: i32,
    pub oom_killed: bool,
    /// RFC3339 with nanoseconds.
    pub finished_at: String,
    /// True when the shim died and the status was reconstructed (exit_code 137).
    #[serde(default)]
    pub shim_died: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok,
    State(StateInfo),
    Exited(ExitInfo),
    ExecStarted { pid: i32 },
    Error { message: String, exit_code: i32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_roundtrip() {
        let mut buf = frame(STDOUT, b"hello");
        buf.extend(frame(EXIT, b"3"));
        buf.extend_from_slice(&[2, 0, 0]);
        assert_eq!(take_frame(&mut buf), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(take_frame(&mut buf), Some((EXIT, b"3".to_vec())));
        assert_eq!(take_frame(&mut buf), None);
        assert_eq!(buf.len(), 3);
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":9}"#).unwrap();
        assert_eq!(r, Request::Kill { signal: 9 });
    }
}
