//! Docker's json-file log driver: a writer with size rotation and a reader with tail/since.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest log message before Docker splits a line (partial messages).
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    pub path: PathBuf,
    /// Rotate when the file would exceed this many bytes; 0 = never.
    pub max_size: u64,
    /// Files kept including the live one (>= 1).
    pub max_file: u32,
}

impl LogConfig {
    /// Rotation on by default (unlike Docker): 10 MiB × 3 files.
    pub fn with_defaults(path: PathBuf) -> LogConfig {
        LogConfig {
            path,
            max_size: 10 << 20,
            max_file: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Writes one container's output; splits on newlines, keeps partial lines per stream.
pub struct LogWriter {
    cfg: LogConfig,
    file: File,
    size: u64,
    partial: [Vec<u8>; 2],
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

impl LogWriter {
    pub fn open(cfg: LogConfig) -> Result<LogWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&cfg.path)
            .map_err(|e| Error::io("open log file", &cfg.path, e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            cfg,
            file,
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Append output of `stream` (1 stdout, 2 stderr).
    pub fn write(&mut self, stream: u8, data: &[u8]) -> Result<()> {
        let idx = usize::from(stream == 2);
        self.partial[idx].extend_from_slice(data);
        loop {
            let buf = &self.partial[idx];
            let cut = match buf.iter().position(|&b| b == b'\n') {
                Some(p) if p < MAX_LINE => p + 1,
                _ if buf.len() >= MAX_LINE => MAX_LINE,
                _ => break,
            };
            let line: Vec<u8> = self.partial[idx].drain(..cut).collect();
            self.emit(stream, &line)?;
        }
        Ok(())
    }

    /// Flush partial lines (at container exit).
    pub fn flush(&mut self) -> Result<()> {
        for (idx, stream) in [(0, 1u8), (1, 2u8)] {
            if !self.partial[idx].is_empty() {
                let line = std::mem::take(&mut self.partial[idx]);
                self.emit(stream, &line)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, stream: u8, line: &[u8]) -> Result<()> {
        let entry = LogEntry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: if stream == 2 { "stderr" } else { "stdout" }.into(),
            time: now(),
        };
        let mut bytes = serde_json::to_vec(&entry).expect("log entry serializes");
        bytes.push(b'\n');
        if self.cfg.max_size > 0
            && self.size > 0
            && self.size + bytes.len() as u64 > self.cfg.max_size
        {
            self.rotate()?;
        }
        self.file
            .write_all(&bytes)
            .map_err(|e| Error::io("write log file", &self.cfg.path, e))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        let p = &self.cfg.path;
        let max = self.cfg.max_file.max(1);
        // Lines are about to be dropped for good: leave a mark `logs` can tell the reader by.
        if max == 1 || rotated(p, max - 1).exists() {
            let _ = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(rotated_away_marker(p));
        }
        if max == 1 {
            self.file
                .set_len(0)
                .map_err(|e| Error::io("truncate log file", p, e))?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(rotated(p, max - 1));
        for i in (1..max - 1).rev() {
            let _ = std::fs::rename(rotated(p, i), rotated(p, i + 1));
        }
        std::fs::rename(p, rotated(p, 1)).map_err(|e| Error::io("rotate log file", p, e))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(p)
            .map_err(|e| Error::io("open log file", p, e))?;
        self.size = 0;
        Ok(())
    }
}

/// The file whose presence says that rotation has dropped some of `log`'s oldest lines.
pub fn rotated_away_marker(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(".rotated-away");
    PathBuf::from(s)
}

fn rotated(p: &Path, i: u32) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Keep only the last N entries.
    pub tail: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub stdout: bool,
    pub stderr: bool,
}

/// Read all entries (oldest rotated file first) that match `opts`.
pub fn read_logs(path: &Path, opts: &ReadOptions) -> Result<Vec<LogEntry>> {
    let mut files = Vec::new();
    for i in (1..100).rev() {
        let r = rotated(path, i);
        if r.exists() {
            files.push(r);
        }
    }
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    for f in files {
        let Ok(file) = File::open(&f) else { continue };
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| Error::io("read log file", &f, e))?;
            let Ok(e) = serde_json::from_str::<LogEntry>(&line) else {
                continue;
            };
            if (e.stream == "stdout" && !opts.stdout) || (e.stream == "stderr" && !opts.stderr) {
                continue;
            }
            if opts.since.is_some() || opts.until.is_some() {
                let Ok(t) = DateTime::parse_from_rfc3339(&e.time) else {
                    continue;
                };
                let t = t.with_timezone(&Utc);
                if opts.since.is_some_and(|s| t < s) || opts.until.is_some_and(|u| t > u) {
                    continue;
                }
            }
            out.push(e);
        }
    }
    if let Some(n) = opts.tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok(out)
}

/// Follows a live json-file log across rotations (`docker logs -f`): each [`Follower::poll`]
/// returns the entries appended since the previous call. The caller decides when to poll
/// (e.g. on a timer, or until the container's wait resolves).
pub struct Follower {
    path: PathBuf,
    ino: u64,
    offset: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Start at the current end of the log (pair with [`read_logs`] for history).
    pub fn from_end(path: &Path) -> Follower {
        use std::os::unix::fs::MetadataExt;
        let (ino, offset) = std::fs::metadata(path)
            .map(|m| (m.ino(), m.len()))
            .unwrap_or((0, 0));
        Follower {
            path: path.to_path_buf(),
            ino,
            offset,
            partial: Vec::new(),
        }
    }

    pub fn poll(&mut self) -> Result<Vec<LogEntry>> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        let cur = std::fs::metadata(&self.path).map(|m| m.ino()).unwrap_or(0);
        if cur != self.ino {
            // Rotated: finish the old file (now `.1`) if it is the one we were reading.
            let old = rotated(&self.path, 1);
            if std::fs::metadata(&old).map(|m| m.ino()).ok() == Some(self.ino) {
                self.read_from(&old, &mut out)?;
            }
            self.ino = cur;
            self.offset = 0;
            self.partial.clear();
        }
        let path = self.path.clone();
        self.read_from(&path, &mut out)?;
        Ok(out)
    }

    fn read_from(&mut self, p: &Path, out: &mut Vec<LogEntry>) -> Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = File::open(p) else {
            return Ok(());
        };
        f.seek(SeekFrom::Start(self.offset))
            .map_err(|e| Error::io("read log file", p, e))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| Error::io("read log file", p, e))?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            if let Ok(e) = serde_json::from_slice::<LogEntry>(&line) {
                out.push(e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_appears_only_once_rotation_drops_lines() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c.log");
        let mut w = LogWriter::open(LogConfig {
            path: path.clone(),
            max_size: 300,
            max_file: 3,
        })
        .unwrap();
        let marker = rotated_away_marker(&path);
        let mut i = 0;
        // Fill the live file and both rotated slots: nothing dropped yet.
        while !rotated(&path, 2).exists() {
            w.write(1, format!("line {i}\n").as_bytes()).unwrap();
            i += 1;
            assert!(!marker.exists(), "marked before any line was dropped ({i})");
        }
        // The next rotation drops `.2`'s lines.
        for _ in 0..40 {
            w.write(1, format!("line {i}\n").as_bytes()).unwrap();
            i += 1;
        }
        assert!(marker.exists());
        assert!(!read_logs(
            &path,
            &ReadOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            }
        )
        .unwrap()
        .iter()
        .any(|e| e.log == "line 0\n"));
    }

    #[test]
    fn follower_survives_rotation() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c.log");
        let mut w = LogWriter::open(LogConfig {
            path: path.clone(),
            max_size: 300,
            max_file: 2,
        })
        .unwrap();
        w.write(1, b"before\n").unwrap();
        let mut f = Follower::from_end(&path);
        assert!(f.poll().unwrap().is_empty());
        let mut seen = Vec::new();
        for i in 0..10 {
            w.write(1, format!("msg {i}\n").as_bytes()).unwrap();
            if i % 3 == 0 {
                seen.extend(f.poll().unwrap());
            }
        }
        seen.extend(f.poll().unwrap());
        let got: Vec<String> = seen.into_iter().map(|e| e.log).collect();
        let want: Vec<String> = (0..10).map(|i| format!("msg {i}\n")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn split_rotate_and_read() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c.log");
        let mut w = LogWriter::open(LogConfig {
            path: path.clone(),
            max_size: 1000,
            max_file: 3,
        })
        .unwrap();
        w.write(1, b"hel").unwrap();
        w.write(2, b"err\n").unwrap();
        w.write(1, b"lo\nworld").unwrap();
        w.flush().unwrap();
        let all = ReadOptions {
            stdout: true,
            stderr: true,
            ..ReadOptions::default()
        };
        let e = read_logs(&path, &all).unwrap();
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("stderr", "err\n"),
                ("stdout", "hello\n"),
                ("stdout", "world")
            ]
        );
        for i in 0..200 {
            w.write(1, format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(path.with_extension("log.1").exists() && path.with_extension("log.2").exists());
        assert!(!path.with_extension("log.3").exists());
        for p in [path.clone(), path.with_extension("log.1")] {
            assert!(std::fs::metadata(p).unwrap().len() <= 1000);
        }
        let tail = read_logs(
            &path,
            &ReadOptions {
                tail: Some(2),
                stdout: true,
                ..ReadOptions::default()
            },
        )
        .unwrap();
        assert_eq!(tail[0].log, "line 198\n");
        assert_eq!(tail[1].log, "line 199\n");
        let long = vec![b'x'; MAX_LINE + 10];
        w.write(2, &long).unwrap();
        w.flush().unwrap();
        let e = read_logs(
            &path,
            &ReadOptions {
                tail: Some(2),
                stderr: true,
                ..ReadOptions::default()
            },
        )
        .unwrap();
        assert_eq!(e[0].log.len(), MAX_LINE);
        assert_eq!(e[1].log.len(), 10);
    }
}
