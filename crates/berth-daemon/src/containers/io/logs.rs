//! Reading a container's json-file log (rotated files included) as rendered frames, once or
//! following the live file until the container's run ends.

use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_api::LogsOptions;

use super::mux;

#[derive(serde::Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

fn rotated(p: &Path, i: u32) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

fn render(e: &Entry, opts: &LogsOptions, tty: bool) -> Option<Vec<u8>> {
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
    line.extend_from_slice(e.log.as_bytes());
    Some(if tty { line } else { mux(st, &line) })
}

/// Read all rotated files and the live one; returns frames and the live file's offset.
fn read_all(path: &Path, opts: &LogsOptions, tty: bool) -> (Vec<Vec<u8>>, u64) {
    let mut files: Vec<PathBuf> = (1..100)
        .rev()
        .map(|i| rotated(path, i))
        .filter(|p| p.exists())
        .collect();
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    let mut off = 0;
    for f in &files {
        let Ok(file) = std::fs::File::open(f) else {
            continue;
        };
        let mut r = std::io::BufReader::new(file);
        let mut pos = 0u64;
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !line.ends_with('\n') {
                        break;
                    }
                    pos += n as u64;
                    if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                        if let Some(b) = render(&e, opts, tty) {
                            out.push(b);
                        }
                    }
                }
            }
        }
        if f == path {
            off = pos;
        }
    }
    if let Some(n) = opts.tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    (out, off)
}

/// New complete lines of the live file after `off` (restarting at 0 after a rotation).
fn read_from(path: &Path, off: &mut u64, opts: &LogsOptions, tty: bool) -> Vec<Vec<u8>> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return vec![];
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len < *off {
        *off = 0;
    }
    if f.seek(std::io::SeekFrom::Start(*off)).is_err() {
        return vec![];
    }
    let mut r = std::io::BufReader::new(f);
    let mut out = vec![];
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !line.ends_with('\n') {
                    break;
                }
                *off += n as u64;
                if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                    if let Some(b) = render(&e, opts, tty) {
                        out.push(b);
                    }
                }
            }
        }
    }
    out
}

/// Read a container's log (rendered frames) into a channel: everything there is, then, with
/// `follow`, new lines until the container's current run ends or the reader goes away.
pub(super) fn spawn_log_reader(
    path: PathBuf,
    opts: LogsOptions,
    tty: bool,
    follow: bool,
    mut life: tokio::sync::watch::Receiver<crate::containers::Life>,
) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        let start = *life.borrow();
        let (p2, o2) = (path.clone(), opts.clone());
        let Ok((first, mut off)) =
            tokio::task::spawn_blocking(move || read_all(&p2, &o2, tty)).await
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
            let (p2, o2) = (path.clone(), opts.clone());
            let Ok((more, o)) = tokio::task::spawn_blocking(move || {
                let mut o = off;
                (read_from(&p2, &mut o, &o2, tty), o)
            })
            .await
            else {
                return;
            };
            off = o;
            for b in more {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            if done {
                return;
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
