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

/// Read all rotated files and the live one; returns frames and a [`Tail`] at the live
/// file's end. Files are opened before they are read, and the live one first, so a rotation
/// meanwhile neither hides a file nor shows one twice.
fn read_all(path: &Path, opts: &LogsOptions, shape: &Shape) -> (Vec<Vec<u8>>, Tail) {
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
    let mut out = Vec::new();
    for f in older.iter().rev() {
        read_lines(std::io::BufReader::new(f), opts, shape, &mut out);
    }
    let mut tail = Tail {
        path: path.to_path_buf(),
        file: None,
        off: 0,
    };
    if let Some(f) = live {
        tail.off = read_lines(std::io::BufReader::new(&f), opts, shape, &mut out);
        tail.file = Some(f);
    }
    if let Some(n) = opts.tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    (out, tail)
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
fn read_lines(
    mut r: impl BufRead,
    opts: &LogsOptions,
    shape: &Shape,
    out: &mut Vec<Vec<u8>>,
) -> u64 {
    let mut pos = 0u64;
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(n) if n > 0 && line.ends_with('\n') => {
                pos += n as u64;
                if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                    if let Some(b) = render(&e, opts, shape) {
                        out.push(b);
                    }
                }
            }
            _ => return pos,
        }
    }
}

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
        let (p2, o2, s2) = (path, opts.clone(), shape.clone());
        let Ok((first, mut tail)) =
            tokio::task::spawn_blocking(move || read_all(&p2, &o2, &s2)).await
        else {
            return;
        };
        for b in first {
            if tx.send(b).await.is_err() {
                return;
            }
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
            for b in more {
                if tx.send(b).await.is_err() {
                    return;
                }
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
