//! Exec and attach fidelity against a real berth daemon (the `berth` binary, built by
//! `cargo build -p berth-cli`) and real busybox containers, over raw HTTP on the daemon's
//! socket: stream framing, detach keys, failed execs, attach with logs.

use crate::common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::cli::Daemon;

/// Raw API calls this file makes on the shared harness's daemon.
trait Api {
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value);
    fn exec_create(&self, ctr: &str, body: serde_json::Value) -> String;
    fn exec_inspect(&self, id: &str) -> serde_json::Value;
    fn exec_start(&self, id: &str, tty: bool) -> Conn;
}

impl Api for Daemon {
    /// A plain JSON call; returns (status, body).
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let mut c = Conn::open(self, method, path, body, false);
        let raw = c.read_to_end();
        let body = if c
            .head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(&raw)
        } else {
            raw
        };
        let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (c.status, v)
    }

    fn exec_create(&self, ctr: &str, body: serde_json::Value) -> String {
        let (st, v) = self.call(
            "POST",
            &format!("/containers/{ctr}/exec"),
            Some(&body.to_string()),
        );
        assert_eq!(st, 201, "exec create: {v}");
        v["Id"].as_str().unwrap().to_string()
    }

    fn exec_inspect(&self, id: &str) -> serde_json::Value {
        let (st, v) = self.call("GET", &format!("/exec/{id}/json"), None);
        assert_eq!(st, 200, "exec inspect: {v}");
        v
    }

    /// `POST /exec/{id}/start` with an upgrade; the hijacked connection.
    fn exec_start(&self, id: &str, tty: bool) -> Conn {
        let body = serde_json::json!({"Detach": false, "Tty": tty}).to_string();
        let c = Conn::open(
            self,
            "POST",
            &format!("/exec/{id}/start"),
            Some(&body),
            true,
        );
        assert_eq!(c.status, 101, "exec start: {}", c.head);
        c
    }
}

/// One HTTP request on its own connection; after the head, the raw (maybe hijacked) stream.
struct Conn {
    s: UnixStream,
    status: u16,
    head: String,
    /// Bytes read past the head.
    buf: Vec<u8>,
}

impl Conn {
    fn open(d: &Daemon, method: &str, path: &str, body: Option<&str>, upgrade: bool) -> Conn {
        let conn = if upgrade {
            "Connection: Upgrade\r\nUpgrade: tcp\r\n"
        } else {
            "Connection: close\r\n"
        };
        Conn::open_with(d, method, path, body, conn)
    }

    /// A websocket handshake (`GET`, RFC 6455 headers).
    fn websocket(d: &Daemon, path: &str) -> Conn {
        let h = "Connection: Upgrade\r\nUpgrade: websocket\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        Conn::open_with(d, "GET", path, None, h)
    }

    /// One websocket message from the server (unmasked): (opcode, payload).
    fn ws_message(&mut self) -> (u8, Vec<u8>) {
        let h = self.take(2);
        let len = match h[1] & 0x7f {
            126 => u16::from_be_bytes(self.take(2).try_into().unwrap()) as usize,
            127 => u64::from_be_bytes(self.take(8).try_into().unwrap()) as usize,
            n => n as usize,
        };
        (h[0] & 0x0f, self.take(len))
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let mut chunk = [0u8; 4096];
        while self.buf.len() < n {
            let k = self.s.read(&mut chunk).unwrap();
            assert!(k > 0, "connection closed mid-message");
            self.buf.extend_from_slice(&chunk[..k]);
        }
        self.buf.drain(..n).collect()
    }

    fn open_with(d: &Daemon, method: &str, path: &str, body: Option<&str>, conn: &str) -> Conn {
        let mut s = UnixStream::connect(d.sock()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let body = body.unwrap_or("");
        let req = format!(
            "{method} /v1.45{path} HTTP/1.1\r\nHost: berth\r\n{conn}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed before the response head");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let rest = buf[end + 4..].to_vec();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Conn {
            s,
            status,
            head,
            buf: rest,
        }
    }

    fn read_to_end(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        self.s.read_to_end(&mut out).unwrap();
        out
    }

    /// Read until `pred` holds for what was read so far (or EOF); returns it all.
    fn read_until(&mut self, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut chunk = [0u8; 4096];
        while !pred(&self.buf) {
            match self.s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}; so far {:?}", String::from_utf8_lossy(&self.buf)),
            }
        }
        self.buf.clone()
    }

    fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }
}

fn dechunk(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = b[i..].windows(2).position(|w| w == b"\r\n") {
        let n =
            usize::from_str_radix(String::from_utf8_lossy(&b[i..i + p]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        let start = i + p + 2;
        out.extend_from_slice(&b[start..(start + n).min(b.len())]);
        i = start + n + 2;
        if i >= b.len() {
            break;
        }
    }
    out
}

/// The complete frames at the front of a multiplexed stream read so far.
fn frames_prefix(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if b.len() < 8 + n {
            break;
        }
        out.push((b[0], b[8..8 + n].to_vec()));
        b = &b[8 + n..];
    }
    out
}

/// Split a multiplexed stream into (stream id, payload) frames; panics on a bad header.
fn frames(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        assert!(b.len() >= 8, "truncated frame header: {b:?}");
        assert!(
            b[0] <= 2 && b[1..4] == [0, 0, 0],
            "not a multiplexed frame header: {:?}",
            String::from_utf8_lossy(b)
        );
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        assert!(b.len() >= 8 + n, "truncated frame");
        out.push((b[0], b[8..8 + n].to_vec()));
        b = &b[8 + n..];
    }
    out
}

fn stdout_of(frames: &[(u8, Vec<u8>)]) -> String {
    let v: Vec<u8> = frames
        .iter()
        .filter(|(s, _)| *s == 1)
        .flat_map(|(_, p)| p.clone())
        .collect();
    String::from_utf8_lossy(&v).into_owned()
}

fn wait_exec_done(d: &Daemon, id: &str) -> serde_json::Value {
    for _ in 0..400 {
        let v = d.exec_inspect(id);
        if v["Running"] == false && !v["ExitCode"].is_null() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("exec {id} did not finish: {}", d.exec_inspect(id));
}

fn sleeper(d: &Daemon, name: &str) -> String {
    d.ok(&["run", "-d", "-i", "--name", name, "busybox", "cat"])
}

#[test]
fn exec_framing_follows_the_start_requests_tty() {
    let Some(d) = Daemon::start("exec_framing_follows_the_start_requests_tty") else {
        return;
    };
    let c = sleeper(&d, "framing");
    // Created with a tty, started without: multiplexed frames (moby: `if !execStartCheck.Tty`).
    let id = d.exec_create(
        &c,
        serde_json::json!({"Cmd": ["printf", "yay"], "Tty": true, "AttachStdout": true}),
    );
    let mut s = d.exec_start(&id, false);
    assert!(
        s.head.contains("application/vnd.docker.multiplexed-stream"),
        "{}",
        s.head
    );
    let f = frames(&s.read_to_end());
    assert_eq!(f, vec![(1, b"yay".to_vec())]);
    // Created without a tty, started with one: raw bytes, stderr included.
    let id = d.exec_create(
        &c,
        serde_json::json!({"Cmd": ["sh", "-c", "echo out; echo err >&2"], "AttachStdout": true, "AttachStderr": true}),
    );
    let mut s = d.exec_start(&id, true);
    assert!(
        s.head.contains("application/vnd.docker.raw-stream"),
        "{}",
        s.head
    );
    let out = String::from_utf8(s.read_to_end()).unwrap();
    assert!(out.contains("out\n") && out.contains("err\n"), "{out:?}");
    assert_eq!(wait_exec_done(&d, &id)["ExitCode"], 0);
    // Only the streams the exec attached.
    let id = d.exec_create(
        &c,
        serde_json::json!({"Cmd": ["sh", "-c", "echo out; echo err >&2"], "AttachStderr": true}),
    );
    let mut s = d.exec_start(&id, false);
    assert_eq!(frames(&s.read_to_end()), vec![(2, b"err\n".to_vec())]);
}

#[test]
fn exec_detach_keys_end_the_attach_not_the_process() {
    let Some(d) = Daemon::start("exec_detach_keys_end_the_attach_not_the_process") else {
        return;
    };
    let c = sleeper(&d, "detach");
    let detached = "exec attach failed: error on attach stdin: read escape sequence\r\n";
    // docker-py sends the config file's value as `detachKeys`.
    for (keys, seq) in [
        (Some("ctrl-x"), &b"\x18"[..]),
        (None, &b"\x10\x11"[..]), // the default ctrl-p,ctrl-q
    ] {
        let mut body = serde_json::json!({
            "Cmd": ["cat"], "Tty": true, "AttachStdin": true, "AttachStdout": true,
        });
        if let Some(k) = keys {
            body["detachKeys"] = k.into();
        }
        let id = d.exec_create(&c, body);
        let mut s = d.exec_start(&id, true);
        s.send(b"hello\n");
        s.read_until(|b| String::from_utf8_lossy(b).matches("hello").count() >= 2);
        for b in seq {
            s.send(&[*b]);
        }
        let out = String::from_utf8_lossy(&s.read_to_end()).into_owned();
        assert!(out.ends_with(detached), "{keys:?}: {out:?}");
        let v = d.exec_inspect(&id);
        assert_eq!(v["Running"], true, "cat keeps running after a detach: {v}");
    }
    // An invalid sequence is refused at create.
    let (st, v) = d.call(
        "POST",
        &format!("/containers/{c}/exec"),
        Some(r#"{"Cmd":["cat"],"DetachKeys":"ctrl-1"}"#),
    );
    assert_eq!(st, 400, "{v}");
}

#[test]
fn failed_exec_reports_on_the_stream_and_in_inspect() {
    let Some(d) = Daemon::start("failed_exec_reports_on_the_stream_and_in_inspect") else {
        return;
    };
    let c = sleeper(&d, "failing");
    for (body, code, text) in [
        (
            serde_json::json!({"Cmd": ["nosuchcmd"]}),
            127,
            "exec: \"nosuchcmd\": executable file not found in $PATH",
        ),
        (
            serde_json::json!({"Cmd": ["/etc/passwd"]}),
            126,
            "permission denied",
        ),
        (
            serde_json::json!({"Cmd": ["pwd"], "WorkingDir": "/no/such/dir"}),
            126,
            "chdir to cwd (\"/no/such/dir\") set in config.json failed: no such file or directory",
        ),
    ] {
        let id = d.exec_create(&c, body.clone());
        let mut s = d.exec_start(&id, false);
        let out = stdout_of(&frames(&s.read_to_end()));
        assert!(out.contains(text), "{body}: {out:?}");
        assert_eq!(out.lines().count(), 1, "one line: {out:?}");
        let v = d.exec_inspect(&id);
        assert_eq!(v["Running"], false, "{v}");
        assert_eq!(v["ExitCode"], code, "{body}: {v}");
    }
    // The docker CLI turns those into its exit codes.
    assert_eq!(
        d.docker(&["exec", "failing", "nosuchcmd"]).status.code(),
        Some(127)
    );
    assert_eq!(
        d.docker(&["exec", "failing", "/etc/passwd"]).status.code(),
        Some(126)
    );
    // A paused container refuses the start and leaves the exec startable.
    let id = d.exec_create(&c, serde_json::json!({"Cmd": ["true"]}));
    d.ok(&["pause", "failing"]);
    let (st, v) = d.call(
        "POST",
        &format!("/exec/{id}/start"),
        Some(r#"{"Detach":true}"#),
    );
    d.ok(&["unpause", "failing"]);
    assert_eq!(st, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains("is paused"), "{v}");
    let (st, v) = d.call(
        "POST",
        &format!("/exec/{id}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(wait_exec_done(&d, &id)["ExitCode"], 0);
    // Detached, the failure is the HTTP answer.
    let id = d.exec_create(&c, serde_json::json!({"Cmd": ["nosuchcmd"]}));
    let (st, v) = d.call(
        "POST",
        &format!("/exec/{id}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(st, 400, "{v}");
}

#[test]
fn attach_with_logs_replays_then_streams() {
    let Some(d) = Daemon::start("attach_with_logs_replays_then_streams") else {
        return;
    };
    // logs=1&stream=0 on an exited container: its output, then the end.
    let id = d.ok(&["create", "busybox", "echo", "hello"]);
    d.ok(&["start", &id]);
    assert_eq!(d.ok(&["wait", &id]), "0");
    let mut s = Conn::open(
        &d,
        "POST",
        &format!("/containers/{id}/attach?logs=1&stream=0&stdout=1&stderr=1"),
        None,
        true,
    );
    assert_eq!(s.status, 101, "{}", s.head);
    assert_eq!(frames(&s.read_to_end()), vec![(1, b"hello\n".to_vec())]);
    // logs=1&stream=1 while the container writes fast: every line once, in order.
    let n = 60_000;
    assert_eq!(
        attach_while_writing(&d, n, "", &[]),
        (0..n).collect::<Vec<_>>()
    );
}

#[test]
fn attach_with_logs_follows_the_log_across_rotations() {
    let Some(d) = Daemon::start("attach_with_logs_follows_the_log_across_rotations") else {
        return;
    };
    // ~3500 lines per 256k file: the log rotates about eight times while we follow it.
    let n = 30_000;
    let got = attach_while_writing(
        &d,
        n,
        "[ $((i % 100)) -eq 0 ] && usleep 20000;",
        &["--log-opt", "max-size=256k", "--log-opt", "max-file=4"],
    );
    assert_eq!(got, (0..n).collect::<Vec<_>>());
}

/// Run a container printing 0..n (each line followed by `pace`), attach with logs=1&stream=1
/// once the first lines are in the log, and return the numbers the attach delivered.
fn attach_while_writing(d: &Daemon, n: u64, pace: &str, log_opts: &[&str]) -> Vec<u64> {
    let script = format!(
        "read go; i=0; while [ $i -lt {n} ]; do echo $i; i=$((i+1)); {pace} done; read done"
    );
    let mut args = vec!["run", "-d", "-i"];
    args.extend_from_slice(log_opts);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    let id = d.ok(&args);
    let mut feed = Conn::open(
        d,
        "POST",
        &format!("/containers/{id}/attach?stdin=1&stream=1"),
        None,
        true,
    );
    assert_eq!(feed.status, 101, "{}", feed.head);
    feed.send(b"go\n");
    // Attach while it is writing: wait until part of the output is in the log.
    let mut seen = false;
    for _ in 0..400 {
        let o = d.docker(&["logs", "--tail", "1", &id]);
        if !String::from_utf8_lossy(&o.stdout).trim().is_empty() {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(seen, "no output yet");
    let mut s = Conn::open(
        d,
        "POST",
        &format!("/containers/{id}/attach?logs=1&stream=1&stdout=1&stderr=1"),
        None,
        true,
    );
    assert_eq!(s.status, 101, "{}", s.head);
    let last = format!("\n{}\n", n - 1);
    s.read_until(|b| stdout_of(&frames_prefix(b)).ends_with(&last));
    feed.send(b"done\n");
    let out = stdout_of(&frames(&s.read_to_end()));
    let got: Vec<u64> = out.lines().map(|l| l.parse().unwrap()).collect();
    let gap = got.windows(2).find(|w| w[1] != w[0] + 1);
    assert!(gap.is_none(), "lost or doubled lines, first break {gap:?}");
    got
}

#[test]
fn attach_with_logs_to_a_tty_shows_partial_lines() {
    let Some(d) = Daemon::start("attach_with_logs_to_a_tty_shows_partial_lines") else {
        return;
    };
    let id = d.ok(&[
        "run",
        "-d",
        "-i",
        "-t",
        "busybox",
        "sh",
        "-c",
        "echo before; read x; printf 'ready> '; read y; echo got $y",
    ]);
    // The first line is in the log before we attach.
    let mut seen = false;
    for _ in 0..400 {
        if d.ok(&["logs", &id]).contains("before") {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(seen, "no output yet");
    let mut s = Conn::open(
        &d,
        "POST",
        &format!("/containers/{id}/attach?logs=1&stream=1&stdin=1&stdout=1&stderr=1"),
        None,
        true,
    );
    assert_eq!(s.status, 101, "{}", s.head);
    assert!(s.head.contains("raw-stream"), "{}", s.head);
    s.read_until(|b| String::from_utf8_lossy(b).contains("before"));
    s.send(b"go\r");
    // A prompt without a newline is not in the log yet; it still comes through live.
    let out = s.read_until(|b| String::from_utf8_lossy(b).contains("ready> "));
    assert!(String::from_utf8_lossy(&out).contains("ready> "));
    s.send(b"hi\r");
    let out = String::from_utf8_lossy(&s.read_to_end()).into_owned();
    assert!(out.contains("got hi"), "{out:?}");
}

#[test]
fn websocket_attach_streams_raw_binary_messages() {
    let Some(d) = Daemon::start("websocket_attach_streams_raw_binary_messages") else {
        return;
    };
    // docker-py's test_run_container_reading_socket_ws: attach before start, no tty.
    let line = "hi there and stuff and things, words!";
    let id = d.ok(&["create", "busybox", "printf", line]);
    let mut ws = Conn::websocket(
        &d,
        &format!("/containers/{id}/attach/ws?stdout=1&stream=1&logs=1"),
    );
    assert_eq!(ws.status, 101, "{}", ws.head);
    d.ok(&["start", &id]);
    // Raw payload (no multiplexing header) in a binary message, then a close.
    assert_eq!(ws.ws_message(), (2, line.as_bytes().to_vec()));
    assert_eq!(ws.ws_message().0, 8);
}
