//! The HTTP client port: the few things the registry client and `ADD <url>` need from an HTTP
//! client — send one request, stream its answer, build a client per TLS policy — as types and
//! two traits, so the engine links no HTTP stack. The binary injects an adapter
//! (`berth-http-reqwest`); tests can inject a double.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};

pub use bytes::Bytes;
pub use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

/// One HTTP request: the whole body is in memory (registry manifests and blob chunks are sent
/// as one buffer each).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body: None,
        }
    }

    pub fn get(url: impl Into<String>) -> Request {
        Request::new(Method::GET, url)
    }

    /// Replace the headers with `headers`.
    pub fn headers(mut self, headers: HeaderMap) -> Request {
        self.headers = headers;
        self
    }

    /// Set one header (replacing an earlier value of the same name).
    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> Request {
        self.headers.insert(name, value);
        self
    }

    pub fn body(mut self, body: Bytes) -> Request {
        self.body = Some(body);
        self
    }

    /// A `application/x-www-form-urlencoded` POST body of `pairs`.
    pub fn form(self, pairs: &[(&str, &str)]) -> Request {
        let body = form_urlencoded(pairs);
        self.header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        )
        .body(Bytes::from(body))
    }
}

/// `k=v&k2=v2` with `application/x-www-form-urlencoded` escaping (space as `+`), as HTML forms
/// and Go's `url.Values.Encode` write it.
pub fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str, out: &mut String) {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(k, &mut out);
        out.push('=');
        enc(v, &mut out);
    }
    out
}

/// The body of an answer, read as it arrives.
pub type BodyStream = BoxStream<'static, Result<Bytes, Error>>;

/// An HTTP answer whose body has not been read yet.
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    content_length: Option<u64>,
    body: BodyStream,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

impl Response {
    pub fn new(
        status: StatusCode,
        headers: HeaderMap,
        content_length: Option<u64>,
        body: BodyStream,
    ) -> Response {
        Response {
            status,
            headers,
            content_length,
            body,
        }
    }

    /// An answer with the whole body at hand (test doubles, cached answers).
    pub fn full(status: StatusCode, headers: HeaderMap, body: impl Into<Bytes>) -> Response {
        let body: Bytes = body.into();
        let len = body.len() as u64;
        Response::new(
            status,
            headers,
            Some(len),
            futures::stream::once(async move { Ok(body) }).boxed(),
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The `Content-Length` the server announced, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    pub fn bytes_stream(self) -> BodyStream {
        self.body
    }

    /// The next piece of the body; None at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        self.body.next().await.transpose()
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Bytes, Error> {
        let mut out = Vec::new();
        while let Some(c) = self.chunk().await? {
            out.extend_from_slice(&c);
        }
        Ok(Bytes::from(out))
    }
}

/// What went wrong with an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request could not be formed (a malformed URL, a header that is not valid).
    InvalidRequest,
    /// Connecting, the TLS handshake or reading took longer than the client allows.
    Timeout,
    /// Anything else on the way: refused connection, reset, DNS, TLS, a broken body.
    Transport,
}

/// A failed exchange; `detail` is the whole cause chain, already joined with ": ".
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct Error {
    pub kind: ErrorKind,
    pub detail: String,
}

impl Error {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Error {
        Error {
            kind,
            detail: detail.into(),
        }
    }

    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    pub fn is_invalid_request(&self) -> bool {
        self.kind == ErrorKind::InvalidRequest
    }
}

/// A PEM file's contents with the path it came from (for errors that name it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pem {
    pub path: PathBuf,
    pub pem: Vec<u8>,
}

/// How a client talks to one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Check the server's certificate (false: `insecure-registries`).
    pub verify_tls: bool,
    /// Extra CA bundles trusted besides the webpki and system roots (certs.d `*.crt`).
    pub extra_roots: Vec<Pem>,
    /// A client certificate followed by its key, both PEM (certs.d `*.cert` + `*.key`).
    pub identity: Option<Pem>,
    pub connect_timeout: Option<Duration>,
    /// Longest wait between two reads of an answer.
    pub read_timeout: Option<Duration>,
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            verify_tls: true,
            extra_roots: Vec::new(),
            identity: None,
            connect_timeout: None,
            read_timeout: None,
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A client could not be built from its options.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// A certificate or key file that does not parse.
    #[error("{}: {detail}", path.display())]
    Certificate { path: PathBuf, detail: String },
    #[error("building the HTTP client: {0}")]
    Other(String),
}

/// A client for one host and TLS policy; it keeps its connections between requests.
pub trait Transport: Send + Sync {
    fn send(&self, req: Request) -> BoxFuture<'static, Result<Response, Error>>;
}

/// Builds [`Transport`]s. The engine holds one and asks it for a client per host policy.
pub trait Connector: Send + Sync {
    fn client(&self, opts: &ClientOptions) -> Result<Arc<dyn Transport>, ConnectError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_escape_as_go_url_values_encode() {
        assert_eq!(
            form_urlencoded(&[
                ("grant_type", "refresh_token"),
                ("scope", "repository:a/b:pull,push x"),
                ("k", "é&="),
            ]),
            "grant_type=refresh_token&scope=repository%3Aa%2Fb%3Apull%2Cpush+x&k=%C3%A9%26%3D"
        );
        assert_eq!(form_urlencoded(&[]), "");
    }

    #[test]
    fn a_streamed_body_reads_whole_and_by_chunk() {
        let parts = vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))];
        let r = Response::new(
            StatusCode::OK,
            HeaderMap::new(),
            None,
            futures::stream::iter(parts.clone()).boxed(),
        );
        assert_eq!(futures::executor::block_on(r.bytes()).unwrap(), "abcd");
        let mut r = Response::new(
            StatusCode::OK,
            HeaderMap::new(),
            None,
            futures::stream::iter(parts).boxed(),
        );
        let first = futures::executor::block_on(r.chunk()).unwrap();
        assert_eq!(first.as_deref(), Some(&b"ab"[..]));
        let broken = Response::new(
            StatusCode::OK,
            HeaderMap::new(),
            None,
            futures::stream::iter(vec![
                Ok(Bytes::from_static(b"x")),
                Err(Error::new(ErrorKind::Transport, "connection reset")),
            ])
            .boxed(),
        );
        let e = futures::executor::block_on(broken.bytes()).unwrap_err();
        assert_eq!(e.to_string(), "connection reset");
        assert!(!e.is_timeout());
    }
}
