//! Reading a container's json-file log (rotated files included) as rendered frames, once or
//! following the live file until the container's run ends.

use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_api_types::LogsOptions;

use super::mux;

#[derive(serde::Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// How lines are framed for the reader: raw for a tty, multiplexed otherwise; with `--details`
/// each line starts with the container's log attributes (moby's `k=v,k=v `).
#[derive(Clone, Debug, Default)]
pub(crate) struct Shape {
    pub tty: bool,
    pub details: Option<String>,
}

/// moby's log attributes of a container (`ExtraAttributes`): the labels named by the
/// `labels` log option or matching `labels-regex`, the env variables named by `env` or
/// matching `env-regex`; rendered as `attrsByteSlice` does (sorted, query-escaped `k=v`,
/// comma-joined).
pub(crate) fn details_prefix(
    log_opts: &std::collections::HashMap<String, String>,
    labels: &std::collections::HashMap<String, String>,
    env: &[String],
) -> String {
    let mut extra = std::collections::BTreeMap::new();
    let names = |k: &str| -> Vec<String> {
        log_opts
            .get(k)
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    };
    let regex = |k: &str| log_opts.get(k).and_then(|r| regex::Regex::new(r).ok());
    for l in names("labels") {
        if let Some(v) = labels.get(&l) {
            extra.insert(l, v.clone());
        }
    }
    if let Some(re) = regex("labels-regex") {
        for (k, v) in labels {
            if re.is_match(k) {
                extra.insert(k.clone(), v.clone());
            }
        }
    }
    let env: std::collections::HashMap<&str, &str> =
        env.iter().filter_map(|e| e.split_once('=')).collect();
    for l in names("env") {
        if let Some(v) = env.get(l.as_str()) {
            extra.insert(l, v.to_string());
        }
    }
    if let Some(re) = regex("env-regex") {
        for (k, v) in &env {
            if re.is_match(k) {
                extra.insert(k.to_string(), v.to_string());
            }
        }
    }
    let esc = |s: &str| {
        let mut o = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    o.push(b as char)
                }
                b' ' => o.push('+'),
                _ => o.push_str(&format!("%{b:02X}")),
            }
        }
        o
    };
    extra
        .iter()
        .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn rotated(p: &Path, i: u32) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

fn render(e: &Entry, opts: &LogsOptions, shape: &Shape) -> Option<Vec<u8>> {
    let st = if e.stream == "stderr" { 2 } else { 1 };
    if (st == 1 && !opts.stdout) || (st == 2 && !opts.stderr) {
        return None;
    }
    if opts.since > 0.0 || opts.until > 0.0 {
        let t = chrono::DateTime::parse_from_rfc3339(&e.time).ok()?;
        let secs = t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9;
        if (opts.since > 0.0 && secs < opts.since) || (opts.until > 0.0 && secs > opts.until) {
            return None;
        }
    }
    let mut line = Vec::new();
    if opts.timestamps {
        line.extend_from_slice(e.time.as_bytes());
        line.push(b' ');
    }
    if let Some(attrs) = &shape.details {
        line.extend_from_slice(attrs.as_bytes());
        line.push(b' ');
    }
    line.extend_from_slice(e.log.as_bytes());
    Some(if shape.tty { line } else { mux(st, &line) })
}

/// Send what the log holds — rotated files and the live one, or with `--tail N` only the
/// last N lines shown, read from the end — to `send` as rendered frames (stops when it
/// returns false); returns a [`Tail`] at the live file's last complete line. Files are
/// opened before they are read, and the live one first, so a rotation meanwhile neither
/// hides a file nor shows one twice. Memory stays bounded by N, not by the log's size.
fn read_all(
    path: &Path,
    opts: &LogsOptions,
    shape: &Shape,
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Tail {
    use std::os::unix::fs::MetadataExt;
    let ino = |f: &std::fs::File| f.metadata().map(|m| m.ino()).unwrap_or(0);
    let live = std::fs::File::open(path).ok();
    let live_ino = live.as_ref().map(ino);
    let mut older: Vec<std::fs::File> = (1..100)
        .map_while(|i| std::fs::File::open(rotated(path, i)).ok())
        .collect();
    // Rotated since we opened the live file: it and the newer ones come later via the tail.
    if let Some(k) = older.iter().position(|f| Some(ino(f)) == live_ino) {
        older.drain(..=k);
    }
    let mut tail = Tail {
        path: path.to_path_buf(),
        file: None,
        off: 0,
    };
    if let Some(n) = opts.tail {
        // Newest first: the live file, then .1, .2, … until N lines are shown.
        let mut picked: Vec<Vec<u8>> = Vec::new();
        let mut take = |line: &[u8]| {
            if picked.len() >= n {
                return false;
            }
            if let Some(b) = render_line(line, opts, shape) {
                picked.push(b);
            }
            picked.len() < n
        };
        if let Some(f) = live {
            tail.off = lines_backward(&f, &mut take).unwrap_or(0);
            tail.file = Some(f);
        }
        // `take` answers false once N are picked: each older file then stops at once.
        for f in &older {
            if lines_backward(f, &mut take).is_err() {
                break;
            }
        }
        for b in picked.into_iter().rev() {
            if !send(b) {
                break;
            }
        }
        return tail;
    }
    for f in older.iter().rev() {
        read_lines_to(std::io::BufReader::new(f), opts, shape, send);
    }
    if let Some(f) = live {
        tail.off = read_lines_to(std::io::BufReader::new(&f), opts, shape, send);
        tail.file = Some(f);
    }
    tail
}

/// The complete lines of `f` (each with its `\n`; a partial last line is left out), newest
/// first, to `each` until it returns false; returns the offset just past the last complete
/// line. Reads 64 KiB at a time from the end, so the cost is that of the lines taken.
fn lines_backward(f: &std::fs::File, each: &mut dyn FnMut(&[u8]) -> bool) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    const CHUNK: u64 = 64 << 10;
    let mut pos = f.metadata()?.len();
    // The start of a line whose end was read already (its `\n` included).
    let mut carry: Vec<u8> = Vec::new();
    let mut complete_end: Option<u64> = None;
    while pos > 0 {
        let start = pos.saturating_sub(CHUNK);
        let mut buf = vec![0u8; (pos - start) as usize];
        f.read_exact_at(&mut buf, start)?;
        buf.extend_from_slice(&carry);
        carry.clear();
        pos = start;
        let mut end = buf.len();
        if complete_end.is_none() {
            match buf.iter().rposition(|&b| b == b'\n') {
                // All of it is the partial last line.
                None => continue,
                Some(i) => {
                    complete_end = Some(start + i as u64 + 1);
                    end = i + 1;
                }
            }
        }
        loop {
            match buf[..end - 1].iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    if !each(&buf[i + 1..end]) {
                        return Ok(complete_end.unwrap_or(0));
                    }
                    end = i + 1;
                }
                None => {
                    carry = buf[..end].to_vec();
                    break;
                }
            }
        }
    }
    if !carry.is_empty() {
        each(&carry);
    }
    Ok(complete_end.unwrap_or(0))
}

/// One log line (a json-file entry) rendered as the reader asked; None when it is filtered
/// out or not an entry.
fn render_line(line: &[u8], opts: &LogsOptions, shape: &Shape) -> Option<Vec<u8>> {
    let e: Entry = serde_json::from_slice(line).ok()?;
    render(&e, opts, shape)
}

/// Follows the live log file across rotations: the file it has open is read to its end
/// before the new one at `path` is taken up, so no line is skipped.
struct Tail {
    path: PathBuf,
    file: Option<std::fs::File>,
    off: u64,
}

impl Tail {
    /// New complete lines since the last call.
    fn read(&mut self, opts: &LogsOptions, shape: &Shape) -> Vec<Vec<u8>> {
        use std::os::unix::fs::MetadataExt;
        let mut out = vec![];
        loop {
            if self.file.is_none() {
                self.file = std::fs::File::open(&self.path).ok();
                self.off = 0;
            }
            let Some(f) = self.file.as_mut() else {
                return out;
            };
            let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
            let moved = std::fs::metadata(&self.path).map(|m| m.ino()).ok() != Some(ino);
            // A file truncated in place (max-file 1) starts over.
            if f.metadata().map(|m| m.len()).unwrap_or(0) < self.off {
                self.off = 0;
            }
            if f.seek(std::io::SeekFrom::Start(self.off)).is_err() {
                return out;
            }
            self.off += read_lines(std::io::BufReader::new(&*f), opts, shape, &mut out);
            if !moved {
                return out;
            }
            // Renamed away before this read: it was complete. Files rotated after it (a fast
            // writer can fill more than one between two reads) come next, then the live one.
            self.file = None;
            let newer: Vec<PathBuf> = (1..100)
                .map(|i| rotated(&self.path, i))
                .take_while(|p| p.exists())
                .take_while(|p| std::fs::metadata(p).map(|m| m.ino()).ok() != Some(ino))
                .collect();
            for p in newer.iter().rev() {
                if let Ok(f) = std::fs::File::open(p) {
                    read_lines(std::io::BufReader::new(&f), opts, shape, &mut out);
                }
            }
        }
    }
}

/// Render the complete lines `r` yields into `out`; returns the bytes they took (a trailing
/// partial line is left for the next read).
fn read_lines(r: impl BufRead, opts: &LogsOptions, shape: &Shape, out: &mut Vec<Vec<u8>>) -> u64 {
    read_lines_to(r, opts, shape, &mut |b| {
        out.push(b);
        true
    })
}

/// Render the complete lines `r` yields to `send` (until it returns false); returns the bytes
/// they took (a trailing partial line is left for the next read).
fn read_lines_to(
    mut r: impl BufRead,
    opts: &LogsOptions,
    shape: &Shape,
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) -> u64 {
    let mut pos = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(n) if n > 0 && line.ends_with(b"\n") => {
                pos += n as u64;
                if let Some(b) = render_line(&line, opts, shape) {
                    if !send(b) {
                        return pos;
                    }
                }
            }
            _ => return pos,
        }
    }
}

/// How many bytes of rendered frames go out together.
const BATCH: usize = 64 << 10;

/// Read a container's log (rendered frames) into a channel: everything there is, then, with
/// `follow`, new lines until the container's current run ends or the reader goes away.
pub(super) fn spawn_log_reader(
    path: PathBuf,
    opts: LogsOptions,
    shape: Shape,
    follow: bool,
    mut life: tokio::sync::watch::Receiver<crate::containers::Life>,
) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        let start = *life.borrow();
        let (p2, o2, s2, tx2) = (path, opts.clone(), shape.clone(), tx.clone());
        // Frames go out as they are read, a batch at a time (a million short lines are not a
        // million body chunks); the channel bounds what waits in memory.
        let Ok(mut tail) = tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let tail = read_all(&p2, &o2, &s2, &mut |b| {
                batch.extend_from_slice(&b);
                batch.len() < BATCH
                    || tx2
                        .blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                        .is_ok()
            });
            if !batch.is_empty() {
                let _ = tx2.blocking_send(batch);
            }
            tail
        })
        .await
        else {
            return;
        };
        if tx.is_closed() {
            return;
        }
        if !follow {
            return;
        }
        loop {
            let done = {
                let l = *life.borrow();
                l.exits > start.exits || l.removed
            };
            let (o2, s2) = (opts.clone(), shape.clone());
            let Ok((more, t)) = tokio::task::spawn_blocking(move || {
                let more = tail.read(&o2, &s2);
                (more, tail)
            })
            .await
            else {
                return;
            };
            tail = t;
            let busy = !more.is_empty();
            if busy && tx.send(more.concat()).await.is_err() {
                return;
            }
            if done {
                return;
            }
            if busy {
                // More may be waiting: read again at once (a fast writer rotates quickly).
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = life.changed() => {}
                _ = tx.closed() => return,
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize, pad: usize) -> String {
        let line = format!("line {i} {}\n", "x".repeat(pad));
        format!(
            "{}\n",
            serde_json::json!({"log": line, "stream": if i.is_multiple_of(3) { "stderr" } else { "stdout" }, "time": "2026-01-01T00:00:00Z"})
        )
    }

    fn opts(tail: Option<usize>) -> LogsOptions {
        LogsOptions {
            stdout: true,
            stderr: true,
            tail,
            ..Default::default()
        }
    }

    fn shown(path: &Path, o: &LogsOptions) -> (Vec<String>, u64) {
        let shape = Shape {
            tty: true,
            details: None,
        };
        let mut out = vec![];
        let t = read_all(path, o, &shape, &mut |b| {
            out.push(String::from_utf8(b).unwrap());
            true
        });
        (out, t.off)
    }

    #[test]
    fn backward_lines_match_forward_ones_across_chunks_and_skip_a_partial_end() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        // Lines longer than a chunk, short ones, and a partial last line.
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&format!("{}\n", "y".repeat((i * 997) % 70_000)));
        }
        let complete = text.len() as u64;
        text.push_str("partial, no newline");
        std::fs::write(&p, &text).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let mut back = vec![];
        let end = lines_backward(&f, &mut |l| {
            back.push(l.to_vec());
            true
        })
        .unwrap();
        assert_eq!(end, complete);
        back.reverse();
        let fwd: Vec<Vec<u8>> = text.as_bytes()[..complete as usize]
            .split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(back, fwd);
        // Stopping early reads no further; an empty file has no lines.
        let mut n = 0;
        lines_backward(&f, &mut |_| {
            n += 1;
            n < 3
        })
        .unwrap();
        assert_eq!(n, 3);
        std::fs::write(&p, "").unwrap();
        let f = std::fs::File::open(&p).unwrap();
        assert_eq!(lines_backward(&f, &mut |_| panic!("no line")).unwrap(), 0);
    }

    #[test]
    fn tail_reads_the_last_lines_across_rotated_files_and_filters_first() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        // Oldest in .2, then .1, then the live file (ending with a partial line).
        let lines: Vec<String> = (0..90).map(|i| entry(i, i * 40)).collect();
        std::fs::write(rotated(&p, 2), lines[..30].concat()).unwrap();
        std::fs::write(rotated(&p, 1), lines[30..60].concat()).unwrap();
        let live = lines[60..].concat();
        std::fs::write(&p, format!("{live}{{\"log\":\"half")).unwrap();

        let (all, off) = shown(&p, &opts(None));
        assert_eq!(all.len(), 90);
        assert_eq!(off, live.len() as u64);
        for n in [0, 1, 10, 30, 31, 75, 90, 500] {
            let (t, off) = shown(&p, &opts(Some(n)));
            assert_eq!(t, all[all.len().saturating_sub(n)..], "tail {n}");
            assert_eq!(off, live.len() as u64, "tail {n}");
        }
        // stderr only: the last 5 stderr lines, not stderr among the last 5 lines.
        let mut o = opts(Some(5));
        o.stdout = false;
        let (t, _) = shown(&p, &o);
        let want: Vec<String> = (0..90)
            .filter(|i: &usize| i.is_multiple_of(3))
            .map(|i| format!("line {i} {}\n", "x".repeat(i * 40)))
            .collect();
        assert_eq!(t, want[want.len() - 5..]);
    }
}
