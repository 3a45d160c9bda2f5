//! HTTP/1.1 over a unix or tcp stream: one connection per request (like short-lived CLI
//! calls), JSON helpers, streamed bodies, and hijacked (upgraded) attach/exec connections.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::{Error, Host, Result};

/// Highest API version this client speaks; lower versions are negotiated down via `/_ping`.
pub const MAX_API_VERSION: &str = "1.47";
/// Lowest API version this client speaks (the docker CLI's floor too): an older daemon is
/// refused in one line rather than sent requests it would misread.
pub const MIN_API_VERSION: &str = "1.24";

/// A request body.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// What `/_ping` reports.
#[derive(Debug, Clone, Default)]
pub struct Ping {
    pub api_version: Option<String>,
    pub os_type: Option<String>,
    pub builder_version: Option<String>,
}

/// Engine API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    host: Host,
    version: Option<String>,
    tls: Option<Tls>,
}

/// The TLS connector of a `tcp://` client.
#[derive(Clone)]
struct Tls(tokio_rustls::TlsConnector);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// An upgraded connection: raw duplex stream after `101 Switching Protocols`.
pub struct Hijacked {
    /// Reads the container's output (multiplexed unless the container has a TTY).
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
    /// Writes to the container's stdin; `shutdown()` half-closes the socket.
    pub writer: Box<dyn AsyncWrite + Send + Unpin>,
}

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Ssh(crate::ssh::SshStream),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Ssh(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Ssh(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_flush(cx),
            Conn::Tcp(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
            Conn::Ssh(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Ssh(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A body of bytes.
pub fn bytes(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A JSON body.
pub fn json<T: Serialize + ?Sized>(v: &T) -> Body {
    bytes(serde_json::to_vec(v).expect("request bodies always serialise"))
}

/// A body streamed from a reader (tar archives for load/build/import/cp).
pub fn reader(r: impl AsyncRead + Send + Sync + 'static) -> Body {
    // 256 KiB chunks: the 4 KiB default makes a 200 MiB upload 51,200 HTTP chunks.
    let s = tokio_util::io::ReaderStream::with_capacity(r, 256 << 10);
    let s = futures::StreamExt::map(s, |r| r.map(Frame::data));
    BodyExt::boxed(StreamBody::new(s))
}

/// A streamed response body.
pub struct ResponseStream {
    inner: Incoming,
    headers: hyper::HeaderMap,
}

impl ResponseStream {
    /// The response's headers.
    pub fn headers(&self) -> &hyper::HeaderMap {
        &self.headers
    }

    /// The next data chunk, or None at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.inner.frame().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(Error::Io {
                        what: "reading response".into(),
                        source: std::io::Error::other(e),
                    })
                }
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        return Ok(Some(d));
                    }
                }
            }
        }
    }

    /// Read the whole rest of the body.
    pub async fn collect(self) -> Result<Bytes> {
        self.inner
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| Error::Io {
                what: "reading response".into(),
                source: std::io::Error::other(e),
            })
    }
}

impl Client {
    /// A client for `host`; call [`Client::negotiate`] before versioned calls.
    pub fn new(host: Host) -> Self {
        Client {
            host,
            version: None,
            tls: None,
        }
    }

    /// Speak TLS to a `tcp://` host (ignored for unix sockets); default files come from
    /// `cert_dir` (see [`crate::tls::cert_dir`]).
    pub fn with_tls(
        mut self,
        opts: &crate::TlsOptions,
        cert_dir: &std::path::Path,
    ) -> Result<Self> {
        if let Host::Tcp(a) = &self.host {
            crate::tls::server_name(a)?;
            self.tls = Some(Tls(opts.connector(cert_dir)?));
        }
        Ok(self)
    }

    /// The daemon address.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The negotiated API version, if any.
    pub fn api_version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Pin an API version (used as path prefix `/vX.Y`).
    pub fn set_api_version(&mut self, v: Option<String>) {
        self.version = v;
    }

    async fn connect(&self) -> Result<(Conn, Option<crate::ssh::SshExit>)> {
        if let Host::Ssh(t) = &self.host {
            let (s, exit) = crate::ssh::spawn(t)?;
            return Ok((Conn::Ssh(s), Some(exit)));
        }
        self.connect_socket().await.map(|c| (c, None))
    }

    async fn connect_socket(&self) -> Result<Conn> {
        let err = |source| Error::Connect {
            host: self.host.to_string(),
            source,
        };
        match &self.host {
            Host::Unix(p) => UnixStream::connect(p).await.map(Conn::Unix).map_err(err),
            Host::Tcp(a) => {
                let s = TcpStream::connect(a).await.map_err(err)?;
                match &self.tls {
                    None => Ok(Conn::Tcp(s)),
                    Some(Tls(c)) => {
                        let name = crate::tls::server_name(a)?;
                        let s = c.connect(name, s).await.map_err(err)?;
                        Ok(Conn::Tls(Box::new(s)))
                    }
                }
            }
            Host::Ssh(_) => unreachable!("ssh hosts are dialed by connect()"),
        }
    }

    fn url(&self, path: &str) -> String {
        match &self.version {
            Some(v) if path != "/_ping" => format!("/v{v}{path}"),
            _ => path.to_string(),
        }
    }

    /// Send one request and return the raw response (any status).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let (conn, ssh_exit) = self.connect().await?;
        match self.exchange(conn, method, path, body, headers).await {
            Err(e @ Error::Http { .. }) => match (ssh_exit, &self.host) {
                // ssh or the remote dial-stdio ended: say why rather than "connection closed"
                (Some(exit), Host::Ssh(t)) => Err(exit.reason(t).await),
                _ => Err(e),
            },
            r => r,
        }
    }

    async fn exchange(
        &self,
        conn: Conn,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let http_err = |source| Error::Http {
            method: method.to_string(),
            path: path.to_string(),
            source,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
            .await
            .map_err(http_err)?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!("connection closed: {e}");
            }
        });
        let host = match &self.host {
            Host::Tcp(a) => a.clone(),
            Host::Unix(_) | Host::Ssh(_) => "berth".to_string(),
        };
        let mut req = Request::builder()
            .method(method.clone())
            .uri(self.url(path))
            .header("Host", host)
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body).map_err(|e| Error::Io {
            what: format!("building request {path}"),
            source: std::io::Error::other(e),
        })?;
        tracing::debug!(%method, path, "request");
        sender.send_request(req).await.map_err(http_err)
    }

    /// Send a request; statuses >= 400 become [`Error::Api`] carrying the daemon's message.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let resp = self.raw(method, path, body, headers).await?;
        let status = resp.status().as_u16();
        if status < 400 {
            return Ok(resp);
        }
        let body = ResponseStream {
            inner: resp.into_body(),
            headers: Default::default(),
        }
        .collect()
        .await
        .unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        Err(Error::Api { status, message })
    }

    /// A request whose body is read as a stream.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<ResponseStream> {
        let resp = self.request(method, path, body, headers).await?;
        let (parts, inner) = resp.into_parts();
        Ok(ResponseStream {
            inner,
            headers: parts.headers,
        })
    }

    /// A request whose whole body is returned.
    pub async fn send(&self, method: Method, path: &str, body: Body) -> Result<Bytes> {
        let ct = [("Content-Type", "application/json")];
        self.stream(method, path, body, &ct).await?.collect().await
    }

    /// GET and decode JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let b = self.send(Method::GET, path, empty()).await?;
        decode(path, &b)
    }

    /// POST an optional JSON body and decode the JSON answer.
    pub async fn post_json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let b = self
            .send(Method::POST, path, body.map(json).unwrap_or_else(empty))
            .await?;
        decode(path, &b)
    }

    /// POST an optional JSON body, ignore the answer's body.
    pub async fn post<B: Serialize + ?Sized>(&self, path: &str, body: Option<&B>) -> Result<()> {
        self.send(Method::POST, path, body.map(json).unwrap_or_else(empty))
            .await
            .map(drop)
    }

    /// DELETE and return the body.
    pub async fn delete(&self, path: &str) -> Result<Bytes> {
        self.send(Method::DELETE, path, empty()).await
    }

    /// Whether the object at `path` exists: GET answered, or 404.
    pub async fn exists(&self, path: &str) -> Result<bool> {
        match self.send(Method::GET, path, empty()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// DELETE where an object already gone is no error: whether it was there.
    pub async fn delete_if_exists(&self, path: &str) -> Result<bool> {
        match self.delete(path).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// GET /_ping (unversioned).
    pub async fn ping(&self) -> Result<Ping> {
        let resp = self.request(Method::GET, "/_ping", empty(), &[]).await?;
        let h = |k: &str| {
            resp.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        Ok(Ping {
            api_version: h("API-Version"),
            os_type: h("OSType"),
            builder_version: h("Builder-Version"),
        })
    }

    /// Ping and pick `min(server, MAX_API_VERSION)` as the path prefix.
    pub async fn negotiate(&mut self) -> Result<Ping> {
        let p = self.ping().await?;
        if let Some(v) = p
            .api_version
            .as_deref()
            .filter(|v| version_lt(v, MIN_API_VERSION))
        {
            return Err(Error::ApiVersion {
                host: self.host.to_string(),
                version: v.to_string(),
            });
        }
        self.version = Some(match &p.api_version {
            Some(v) if version_lt(v, MAX_API_VERSION) => v.clone(),
            Some(_) => MAX_API_VERSION.to_string(),
            None => "1.24".to_string(),
        });
        Ok(p)
    }

    /// Connect and relay `input` to the daemon and the daemon to `output`, as
    /// `system dial-stdio` does for ssh clients; see [`relay`].
    pub async fn dial_stdio(
        &self,
        input: impl AsyncRead + Unpin,
        output: impl AsyncWrite + Unpin,
    ) -> Result<()> {
        let (conn, _exit) = self.connect().await?;
        relay(conn, input, output)
            .await
            .map_err(|source| Error::Io {
                what: format!("relaying stdio to {}", self.host),
                source,
            })
    }

    /// POST with `Connection: Upgrade, Upgrade: tcp` and take over the raw connection.
    pub async fn hijack<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<Hijacked> {
        let headers = [
            ("Connection", "Upgrade"),
            ("Upgrade", "tcp"),
            ("Content-Type", "application/json"),
        ];
        let resp = self
            .request(
                Method::POST,
                path,
                body.map(json).unwrap_or_else(empty),
                &headers,
            )
            .await?;
        let status = resp.status().as_u16();
        if status != 101 {
            return Err(Error::NoUpgrade {
                path: path.to_string(),
                status,
            });
        }
        let up = hyper::upgrade::on(resp).await.map_err(|e| Error::Http {
            method: "POST".into(),
            path: path.to_string(),
            source: e,
        })?;
        let parts = up.downcast::<TokioIo<Conn>>().map_err(|_| Error::Io {
            what: format!("taking over the connection of {path}"),
            source: std::io::Error::other("unexpected upgraded io type"),
        })?;
        let pending = std::io::Cursor::new(parts.read_buf);
        let (reader, writer): (
            Box<dyn AsyncRead + Send + Unpin>,
            Box<dyn AsyncWrite + Send + Unpin>,
        ) = match parts.io.into_inner() {
            Conn::Unix(s) => {
                let (r, w) = s.into_split();
                (Box::new(pending.chain(r)), Box::new(w))
            }
            Conn::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(pending.chain(r)), Box::new(w))
            }
            Conn::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (Box::new(pending.chain(r)), Box::new(w))
            }
            Conn::Ssh(s) => {
                let (r, w) = s.into_split();
                (Box::new(pending.chain(r)), Box::new(w))
            }
        };
        Ok(Hijacked { reader, writer })
    }
}

/// Copy `input` into `conn` and `conn` into `output`. When `input` ends the connection's write
/// side is shut down (the daemon sees EOF, e.g. a hijacked stdin closing) while its answer is
/// still copied; done when the connection's read side ends.
pub async fn relay(
    conn: impl AsyncRead + AsyncWrite,
    mut input: impl AsyncRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let (mut r, mut w) = tokio::io::split(conn);
    let up = async {
        tokio::io::copy(&mut input, &mut w).await?;
        w.shutdown().await
    };
    let down = async {
        tokio::io::copy(&mut r, &mut output).await?;
        output.flush().await
    };
    tokio::pin!(up, down);
    tokio::select! {
        d = &mut down => d,
        u = &mut up => {
            u?;
            down.await
        }
    }
}

fn decode<T: DeserializeOwned>(path: &str, b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|source| Error::Decode {
        path: path.to_string(),
        source,
    })
}

/// Compare dotted API versions numerically: is `a < b`?
pub fn version_lt(a: &str, b: &str) -> bool {
    let p = |s: &str| -> Vec<u64> { s.split('.').map(|x| x.parse().unwrap_or(0)).collect() };
    p(a) < p(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_lt("1.9", "1.41"));
        assert!(version_lt("1.41", "1.47"));
        assert!(!version_lt("1.53", "1.47"));
    }

    #[tokio::test]
    async fn relay_half_closes_and_keeps_reading() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        // The far end reads to EOF (only reached if relay half-closed), then answers.
        let far = tokio::spawn(async move {
            let mut got = Vec::new();
            theirs.read_to_end(&mut got).await.unwrap();
            theirs.write_all(b"got: ").await.unwrap();
            theirs.write_all(&got).await.unwrap();
        });
        let mut out = Vec::new();
        relay(ours, &b"ping"[..], &mut out).await.unwrap();
        far.await.unwrap();
        assert_eq!(out, b"got: ping");
    }

    #[tokio::test]
    async fn a_daemon_below_the_api_floor_is_refused_in_one_line() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("old.sock");
        let l = tokio::net::UnixListener::bind(&sock).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nApi-Version: 1.12\r\nContent-Length: 2\r\n\r\nOK")
                .await;
        });
        let mut c = Client::new(Host::Unix(sock));
        let e = c.negotiate().await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Invalid);
        let msg = e.to_string();
        assert!(
            msg.contains("old.sock") && msg.contains("API 1.12") && msg.contains("1.24"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[tokio::test]
    async fn connect_error_names_host() {
        let dir = tempfile::tempdir().unwrap();
        let c = Client::new(Host::Unix(dir.path().join("nope.sock")));
        let e = c.ping().await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Unavailable);
        assert!(e.to_string().contains("nope.sock"), "{e}");
    }
}
