//! gRPC over hyper's HTTP/2, both ways: the length-prefixed message framing, status codes and
//! trailers for the services berth serves on `/grpc`, and the calls it makes into a client's
//! session on `/session`. Small on purpose: unary and streaming calls, no compression.

use std::convert::Infallible;

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use prost::Message;

/// The body of every gRPC request and response berth sends.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest message berth accepts (BuildKit's own default receive limit is 16 MiB; file sync
/// chunks are 32 KiB).
pub const MAX_MESSAGE: usize = 64 << 20;

/// gRPC status codes (google.golang.org/grpc/codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    pub fn from_i32(c: i32) -> Code {
        use Code::*;
        [
            Ok,
            Cancelled,
            Unknown,
            InvalidArgument,
            DeadlineExceeded,
            NotFound,
            AlreadyExists,
            PermissionDenied,
            ResourceExhausted,
            FailedPrecondition,
            Aborted,
            OutOfRange,
            Unimplemented,
            Internal,
            Unavailable,
            DataLoss,
            Unauthenticated,
        ]
        .get(c as usize)
        .copied()
        .unwrap_or(Unknown)
    }
}

/// A gRPC error: what a failed call answers, as the client prints it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code:?})")]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, m)
    }
    pub fn unimplemented(m: impl Into<String>) -> Self {
        Self::new(Code::Unimplemented, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(Code::Internal, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(Code::NotFound, m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, m)
    }
}

/// `[compressed=0][len u32 BE][message]`.
pub fn frame(msg: &impl Message) -> Bytes {
    let len = msg.encoded_len();
    let mut b = BytesMut::with_capacity(5 + len);
    b.extend_from_slice(&[0]);
    b.extend_from_slice(&(len as u32).to_be_bytes());
    msg.encode(&mut b).expect("BytesMut grows");
    b.freeze()
}

/// Splits a byte stream into gRPC messages.
#[derive(Default)]
pub struct Deframer {
    buf: BytesMut,
}

impl Deframer {
    pub fn push(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// The next whole message, if buffered.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        if self.buf[0] != 0 {
            return Err(Status::unimplemented(
                "compressed gRPC messages are not supported by berth",
            ));
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_MESSAGE {
            return Err(Status::new(
                Code::ResourceExhausted,
                format!("gRPC message of {len} bytes is over berth's limit of {MAX_MESSAGE}"),
            ));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        self.buf.advance(5);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// The messages of an incoming request or response body; the trailers' status ends it.
pub struct Messages {
    body: Incoming,
    de: Deframer,
    done: bool,
}

impl Messages {
    pub fn new(body: Incoming) -> Self {
        Messages {
            body,
            de: Deframer::default(),
            done: false,
        }
    }

    /// The next message decoded as `M`; `None` at a clean end.
    pub async fn next<M: Message + Default>(&mut self) -> Result<Option<M>, Status> {
        loop {
            if let Some(b) = self.de.next_message()? {
                return M::decode(b)
                    .map(Some)
                    .map_err(|e| Status::invalid(format!("malformed gRPC message: {e}")));
            }
            if self.done {
                if !self.de.is_empty() {
                    return Err(Status::invalid("gRPC stream ended inside a message"));
                }
                return Ok(None);
            }
            match self.body.frame().await {
                None => self.done = true,
                Some(Err(e)) => {
                    return Err(Status::new(
                        Code::Unavailable,
                        format!("gRPC stream broke: {e}"),
                    ))
                }
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => self.de.push(&d),
                    Err(f) => {
                        if let Ok(t) = f.into_trailers() {
                            if let Some(s) = status_of(&t) {
                                return Err(s);
                            }
                        }
                    }
                },
            }
        }
    }
}

/// The error a `grpc-status` header (or trailer) carries, if not OK.
pub fn status_of(h: &HeaderMap) -> Option<Status> {
    let code: i32 = h.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    if code == 0 {
        return None;
    }
    let message = h
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    Some(Status::new(Code::from_i32(code), message))
}

/// The gRPC spec's percent-encoding of `grpc-message`: bytes outside `0x20..=0x7e`, and `%`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
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

fn status_headers(h: &mut HeaderMap, s: &Status) {
    h.insert("grpc-status", HeaderValue::from(s.code as i32));
    if let Ok(v) = HeaderValue::from_str(&percent_encode(&s.message)) {
        h.insert("grpc-message", v);
    }
}

fn ok_trailers() -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from_static("0"));
    t
}

fn response(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    r
}

/// A failed call as a trailers-only response (the status in the headers, no body).
pub fn error_response(s: &Status) -> Response<Body> {
    let mut r = response(http_body_util::Empty::new().boxed_unsync());
    status_headers(r.headers_mut(), s);
    r
}

/// A unary call's answer.
pub fn unary<M: Message>(res: Result<M, Status>) -> Response<Body> {
    match res {
        Err(s) => error_response(&s),
        Ok(m) => {
            let frames = futures::stream::iter([
                Ok::<_, Infallible>(Frame::data(frame(&m))),
                Ok(Frame::trailers(ok_trailers())),
            ]);
            response(BodyExt::boxed_unsync(StreamBody::new(frames)))
        }
    }
}

/// A server-streaming call's answer: each item a message, an error ends the stream with its
/// status, the stream's end with OK.
pub fn streaming<M, S>(items: S) -> Response<Body>
where
    M: Message + 'static,
    S: Stream<Item = Result<M, Status>> + Send + 'static,
{
    let body = items
        .map(Some)
        .chain(futures::stream::once(async { None }))
        .scan(false, |ended, item| {
            if *ended {
                return futures::future::ready(None);
            }
            let f = match item {
                Some(Ok(m)) => Frame::data(frame(&m)),
                Some(Err(s)) => {
                    *ended = true;
                    let mut t = HeaderMap::new();
                    status_headers(&mut t, &s);
                    Frame::trailers(t)
                }
                None => {
                    *ended = true;
                    Frame::trailers(ok_trailers())
                }
            };
            futures::future::ready(Some(Ok::<_, Infallible>(f)))
        });
    response(BodyExt::boxed_unsync(StreamBody::new(body)))
}

/// Read a unary request's one message.
pub async fn read_unary<M: Message + Default>(body: Incoming) -> Result<M, Status> {
    Messages::new(body)
        .next()
        .await?
        .ok_or_else(|| Status::invalid("gRPC request carries no message"))
}

/// A gRPC request on `path` (`/package.Service/Method`) with `metadata` headers (a key may
/// repeat) and a streamed body of already-framed messages.
pub fn request<S>(path: &str, metadata: &[(String, String)], frames: S) -> Request<Body>
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let body = frames.map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let mut r = Request::new(BodyExt::boxed_unsync(StreamBody::new(body)));
    *r.method_mut() = hyper::Method::POST;
    *r.uri_mut() = format!("http://buildkit-session{path}")
        .parse()
        .unwrap_or_else(|_| hyper::Uri::from_static("http://buildkit-session/"));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("te", HeaderValue::from_static("trailers"));
    for (k, v) in metadata {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.append(k, v);
        }
    }
    r
}

/// A response's messages, or the error a trailers-only response (or an HTTP failure) carries.
pub fn response_messages(r: Response<Incoming>) -> Result<Messages, Status> {
    if r.status() != StatusCode::OK {
        return Err(Status::new(
            Code::Unavailable,
            format!("gRPC call answered HTTP {}", r.status()),
        ));
    }
    if let Some(s) = status_of(r.headers()) {
        return Err(s);
    }
    Ok(Messages::new(r.into_body()))
}

/// A header's first value.
pub fn metadata<'a>(h: &'a HeaderMap, key: &str) -> Option<&'a str> {
    h.get(key).and_then(|v| v.to_str().ok())
}

/// One unary call on an HTTP/2 connection: `req` framed out, the one answer decoded.
pub async fn call_unary<Q, A>(
    send: &mut hyper::client::conn::http2::SendRequest<Body>,
    path: &str,
    metadata: &[(String, String)],
    req: &Q,
) -> Result<A, Status>
where
    Q: Message,
    A: Message + Default,
{
    let body = futures::stream::iter([frame(req)]);
    send.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let r = send
        .send_request(request(path, metadata, body))
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut m = response_messages(r)?;
    let a = m
        .next::<A>()
        .await?
        .ok_or_else(|| Status::internal(format!("{path} answered no message")))?;
    // The trailers carry the call's status.
    while m.next::<A>().await?.is_some() {}
    Ok(a)
}
