//! `ADD <url>` downloads: an HTTP(S) GET streamed into a file under a directory the caller
//! owns, hashed while it streams; the file name (the URL path's last segment), the mtime
//! (`Last-Modified`) and the content digest come back as a [`Download`], whose file is removed
//! when it drops. Pure helpers ([`file_name_of`], [`parse_http_date`], [`parse_checksum`]) are
//! separate from the network part ([`Fetcher`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use berth_http::{ClientOptions, Connector, Request, StatusCode, Transport};

use berth_oci::Digest;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::context::{EntryKind, Source, SourceEntry};
use crate::error::{BuildError, ErrorKind, Result};

/// The name BuildKit gives a download whose URL path has no usable last segment.
pub const UNNAMED: &str = "__unnamed__";

/// A downloaded file, removed from disk when this value drops.
#[derive(Debug, PartialEq, Eq)]
pub struct Download {
    pub url: String,
    /// Where the bytes are on the host (inside the directory given to [`Fetcher::download`]).
    pub path: PathBuf,
    /// The name the file gets inside a directory destination.
    pub name: String,
    pub digest: Digest,
    pub size: u64,
    /// `Last-Modified` as seconds since the epoch, when the server sent a valid one.
    pub modified: Option<i64>,
}

impl Drop for Download {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove download");
            }
        }
    }
}

impl Download {
    /// The download as a COPY source: one root-owned file, mode 0600 as Docker gives it,
    /// with the server's `Last-Modified` as mtime.
    pub fn source(&self) -> Source {
        Source {
            name: self.name.clone(),
            entries: vec![SourceEntry {
                host: self.path.clone(),
                rel: String::new(),
                kind: EntryKind::File,
                mode: 0o600,
                uid: 0,
                gid: 0,
                size: self.size,
                link_id: None,
                mtime: self.modified,
            }],
            url: Some(self.url.clone()),
        }
    }
}

/// Whether an ADD source is an HTTP(S) URL (downloaded) rather than a context path.
pub fn is_http_url(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// Whether an ADD source is a git repository URL (not supported).
pub fn is_git_url(s: &str) -> bool {
    s.starts_with("git@") || s.starts_with("git://") || s.ends_with(".git")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The file name a download gets in a directory destination: the last segment of the URL's
/// path (percent-decoded, trailing slashes ignored), else [`UNNAMED`] as BuildKit does.
pub fn file_name_of(url: &str) -> String {
    let Ok(u) = url::Url::parse(url) else {
        return UNNAMED.into();
    };
    let path = percent_decode(u.path());
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    match name {
        "" | "." | ".." => UNNAMED.into(),
        n => n.to_string(),
    }
}

/// An HTTP date (`Tue, 15 Nov 1994 08:12:31 GMT`) as seconds since the epoch.
pub fn parse_http_date(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.timestamp())
}

/// `--checksum=sha256:<hex>` as a digest; other algorithms and malformed values are errors.
pub fn parse_checksum(s: &str) -> Result<Digest> {
    s.parse::<Digest>().map_err(|e| {
        BuildError::Request(format!(
            "invalid --checksum={s}: {e}; give the sha256 of the file as sha256:<64 hex>"
        ))
    })
}

/// Verify a download against `--checksum`; the error names the URL and both digests.
pub fn verify(download: &Download, want: &Digest) -> Result<()> {
    if download.digest == *want {
        return Ok(());
    }
    Err(BuildError::backend(
        ErrorKind::Invalid,
        format!(
            "ADD {}: checksum mismatch: --checksum expects {want} but the download is {}; nothing was added",
            download.url, download.digest
        ),
    ))
}

fn unique_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("dl-{}-{t}-{n}", std::process::id())
}

fn status_kind(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        404 | 410 => ErrorKind::NotFound,
        400..=499 => ErrorKind::Invalid,
        _ => ErrorKind::Unavailable,
    }
}

/// Downloads ADD sources over HTTP(S) (one connection pool per build backend).
#[derive(Clone)]
pub struct Fetcher {
    client: Arc<dyn Transport>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher over `connector`'s client with certificate checks on (the connector trusts
    /// the webpki roots and the system's CA store).
    pub fn new(connector: &dyn Connector) -> Result<Fetcher> {
        let client = connector
            .client(&ClientOptions {
                connect_timeout: Some(std::time::Duration::from_secs(30)),
                ..ClientOptions::default()
            })
            .map_err(|e| {
                BuildError::backend(ErrorKind::Internal, format!("http client for ADD: {e}"))
            })?;
        Ok(Fetcher { client })
    }

    /// GET `url` into a new file under `dir`. Every error names the URL; a non-2xx answer
    /// names its HTTP status. A partial file is removed.
    pub async fn download(&self, url: &str, dir: &Path) -> Result<Download> {
        let fail = |kind: ErrorKind, why: String| {
            BuildError::backend(kind, format!("ADD {url}: download failed: {why}"))
        };
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            fail(
                ErrorKind::Internal,
                format!("create {}: {e}", dir.display()),
            )
        })?;
        let mut resp = self.client.send(Request::get(url)).await.map_err(|e| {
            fail(
                if e.is_invalid_request() {
                    ErrorKind::Invalid
                } else {
                    ErrorKind::Unavailable
                },
                e.detail,
            )
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(fail(
                status_kind(status),
                format!("the server answered HTTP status {status}; check the URL"),
            ));
        }
        let modified = resp
            .headers()
            .get(berth_http::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        let path = dir.join(unique_name());
        let mut dl = Download {
            url: url.to_string(),
            path,
            name: file_name_of(url),
            digest: Digest::of(b""),
            size: 0,
            modified,
        };
        // From here on `dl` removes the file if anything fails.
        let mut f = tokio::fs::File::create(&dl.path)
            .await
            .map_err(|e| fail(ErrorKind::Internal, format!("create download file: {e}")))?;
        let mut h = Sha256::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| fail(ErrorKind::Unavailable, format!("reading the body: {e}")))?
        {
            h.update(&chunk);
            dl.size += chunk.len() as u64;
            f.write_all(&chunk)
                .await
                .map_err(|e| fail(ErrorKind::Internal, format!("write download file: {e}")))?;
        }
        f.flush()
            .await
            .map_err(|e| fail(ErrorKind::Internal, format!("write download file: {e}")))?;
        dl.digest = Digest::from_hex(&hex::encode(h.finalize()))
            .map_err(|e| fail(ErrorKind::Internal, e.to_string()))?;
        tracing::debug!(url, digest = %dl.digest, size = dl.size, "downloaded ADD source");
        Ok(dl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_url_path() {
        assert_eq!(file_name_of("http://h/a/b/app.tar.gz"), "app.tar.gz");
        assert_eq!(file_name_of("https://h/a/dir/"), "dir");
        assert_eq!(
            file_name_of("http://h/x/my%20file.txt?v=1#frag"),
            "my file.txt"
        );
        assert_eq!(file_name_of("http://h/"), UNNAMED);
        assert_eq!(file_name_of("http://h"), UNNAMED);
        assert_eq!(file_name_of("http://h/a/%2e%2e"), UNNAMED);
        assert_eq!(file_name_of("http://h/a/50%"), "50%");
    }

    #[test]
    fn http_dates_and_checksums() {
        assert_eq!(
            parse_http_date("Tue, 15 Nov 1994 08:12:31 GMT"),
            Some(784887151)
        );
        assert_eq!(parse_http_date("yesterday"), None);
        let d = Digest::of(b"x");
        assert_eq!(parse_checksum(&d.to_string()).unwrap(), d);
        let e = parse_checksum("md5:abc").unwrap_err().to_string();
        assert!(e.contains("--checksum=md5:abc"), "{e}");
        assert!(is_http_url("HTTPS://x/y") && !is_http_url("file.txt"));
        assert!(is_git_url("git@github.com:a/b.git") && !is_git_url("http://x/y"));
    }
}
