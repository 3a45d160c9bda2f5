//! Hijacked connections: attach and exec sessions over an HTTP upgrade (`101`, raw or
//! multiplexed frames), as a plain streamed body without one, or over a websocket.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hyper_util::rt::TokioIo;

use super::containers::AttachQuery;
use super::query::Q;
#[cfg(test)]
use super::QueryPairs;
use crate::containers::StreamSession;
use crate::service::Services;
use crate::{ApiError, ApiResult, HttpResult};

pub(super) const RAW: &str = "application/vnd.docker.raw-stream";
pub(super) const MUX: &str = "application/vnd.docker.multiplexed-stream";

/// `GET /containers/{id}/attach/ws`.
pub(super) async fn attach_ws_route(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<AttachQuery>,
    req: Request,
) -> HttpResult<Response> {
    Ok(attach_ws(&s.containers, &id, q, req).await?)
}

/// `GET /berth/exec/{id}/ws[?tty=1]` (a berth extension): start a created exec and carry its
/// session over a websocket, as `attach/ws` does for a container; browsers cannot take over
/// an HTTP connection the way `POST /exec/{id}/start` needs.
pub(super) async fn exec_ws_route(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<ExecWsQuery>,
    req: Request,
) -> HttpResult<Response> {
    // The upgrade is checked first: a plain GET must not use up the exec.
    let ws = upgrade(req, "exec").await?;
    let session = s
        .containers
        .exec_start(&id, false, q.tty)
        .await?
        .ok_or_else(|| ApiError::invalid(format!("exec {id} started detached")))?;
    Ok(bridge(ws, session))
}

/// `exec/{id}/ws`'s query.
#[derive(serde::Deserialize)]
pub(super) struct ExecWsQuery {
    #[serde(default, deserialize_with = "super::query::flag")]
    tty: bool,
}

async fn upgrade(req: Request, what: &str) -> ApiResult<axum::extract::ws::WebSocketUpgrade> {
    use axum::extract::FromRequest;
    axum::extract::ws::WebSocketUpgrade::from_request(req, &())
        .await
        .map_err(|e| ApiError::invalid(format!("websocket {what} needs a websocket upgrade: {e}")))
}

/// `GET /containers/{id}/attach/ws`: the attach session over a websocket.
async fn attach_ws(
    c: &std::sync::Arc<dyn crate::containers::ContainerService>,
    id: &str,
    q: AttachQuery,
    req: Request,
) -> ApiResult<Response> {
    let ws = upgrade(req, "attach").await?;
    let session = c.attach(id, q.options()).await?;
    Ok(bridge(ws, session))
}

/// Carry `session` over the websocket. Like dockerd's attach/ws, output goes out raw (not
/// multiplexed) in binary messages; text or binary messages from the client are stdin.
fn bridge(ws: axum::extract::ws::WebSocketUpgrade, session: StreamSession) -> Response {
    use axum::extract::ws::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ws.on_upgrade(move |socket| async move {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let mux = !session.tty;
        let pumping = tokio::spawn((session.run)(Box::pin(ours)));
        let (mut rd, mut wr) = tokio::io::split(theirs);
        let (mut sink, mut stream) = socket.split();
        let out = async move {
            use futures::SinkExt;
            let mut buf = vec![0u8; 32 * 1024];
            let mut frames = Vec::new();
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let payloads = if mux {
                    frames.extend_from_slice(&buf[..n]);
                    demux(&mut frames)
                } else {
                    vec![buf[..n].to_vec()]
                };
                for p in payloads {
                    if sink.send(Message::Binary(p.into())).await.is_err() {
                        return;
                    }
                }
            }
            let _ = sink.send(Message::Close(None)).await;
        };
        let inp = async move {
            while let Some(Ok(m)) = stream.next().await {
                let data = match m {
                    Message::Binary(b) => b.to_vec(),
                    Message::Text(t) => t.as_bytes().to_vec(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                if wr.write_all(&data).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        };
        // The session's end or the client's close ends both directions; the session then
        // stops at its next write.
        tokio::select! {
            _ = out => {}
            _ = inp => {}
        }
        drop(pumping);
    })
}

#[cfg(test)]
fn mux_frame(stream: u8, d: &[u8]) -> Vec<u8> {
    let mut v = vec![stream, 0, 0, 0];
    v.extend_from_slice(&(d.len() as u32).to_be_bytes());
    v.extend_from_slice(d);
    v
}

/// Split complete multiplexed frames off the front of `buf`; their payloads, in order.
fn demux(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() - at >= 8 {
        let len = u32::from_be_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]) as usize;
        if buf.len() - at < 8 + len {
            break;
        }
        out.push(buf[at + 8..at + 8 + len].to_vec());
        at += 8 + len;
    }
    buf.drain(..at);
    out
}

fn wants_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE).is_some()
}

/// Answer `101 UPGRADED` and run the session on the upgraded connection, or (no upgrade asked)
/// stream the session's output as a plain 200 body.
pub(super) fn hijack(mut req: Request, session: StreamSession) -> Response {
    let ctype = if session.tty { RAW } else { MUX };
    if wants_upgrade(req.headers()) {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match on.await {
                Ok(up) => (session.run)(Box::pin(TokioIo::new(up))).await,
                Err(e) => tracing::warn!(error = %e, "hijack upgrade failed"),
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONTENT_TYPE, ctype)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "tcp")
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    // No upgrade: a pipe whose read end is the response body; stdin is empty.
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn((session.run)(Box::pin(ours)));
    let (rd, wr) = tokio::io::split(theirs);
    drop(wr);
    let body = tokio_util::io::ReaderStream::new(rd).map(|r| r.map_err(std::io::Error::other));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, ctype)],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod ws_tests {
    //! The websocket bridge against a fake attach session, over a hand-rolled client.
    use std::io::{Read, Write};
    use std::sync::Arc;

    use async_trait::async_trait;
    use axum::extract::Request;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{attach_ws, mux_frame, QueryPairs};
    use crate::containers::{AttachOptions, ContainerService, StreamSession};
    use crate::ApiResult;

    /// A non-tty session: two frames out, then echoes one stdin line as `pong:<line>`.
    struct Echo;

    #[async_trait]
    impl ContainerService for Echo {
        async fn attach(&self, _id: &str, opts: AttachOptions) -> ApiResult<StreamSession> {
            assert!(opts.stdin && opts.stream);
            Ok(StreamSession {
                tty: false,
                run: Box::new(|mut io| {
                    Box::pin(async move {
                        let mut out = mux_frame(1, b"hello ");
                        out.extend(mux_frame(2, b"world"));
                        io.write_all(&out).await.unwrap();
                        let mut line = Vec::new();
                        let mut b = [0u8; 1];
                        while io.read(&mut b).await.unwrap_or(0) == 1 && b[0] != b'\n' {
                            line.push(b[0]);
                        }
                        let mut reply = b"pong:".to_vec();
                        reply.extend(line);
                        io.write_all(&mux_frame(1, &reply)).await.unwrap();
                        let _ = io.shutdown().await;
                    })
                }),
            })
        }
    }

    /// One server frame: (opcode, payload). Server frames are unmasked.
    fn read_frame(s: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
        let mut h = [0u8; 2];
        s.read_exact(&mut h).unwrap();
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            len = u64::from(u16::from_be_bytes(l));
        } else if len == 127 {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).unwrap();
            len = u64::from_be_bytes(l);
        }
        let mut p = vec![0u8; len as usize];
        s.read_exact(&mut p).unwrap();
        (h[0] & 0x0f, p)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ws_attach_sends_raw_binary_messages_and_takes_stdin() {
        let svc: Arc<dyn ContainerService> = Arc::new(Echo);
        let app = axum::Router::new().route(
            "/containers/{id}/attach/ws",
            axum::routing::get(move |req: Request| async move {
                let q = crate::routes::query::parse(&QueryPairs::from_uri(req.uri())?)?;
                Ok::<_, crate::HttpError>(attach_ws(&svc, "c1", q, req).await?)
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(l, app).await });
        let client = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
                .unwrap();
            write!(
                s,
                "GET /containers/c1/attach/ws?stdin=1&stdout=1&stderr=1&stream=1 HTTP/1.1\r\n\
                 Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).unwrap();
                head.push(b[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            // Output: one binary message per frame, payload only (no multiplexing header).
            assert_eq!(read_frame(&mut s), (2, b"hello ".to_vec()));
            assert_eq!(read_frame(&mut s), (2, b"world".to_vec()));
            // Stdin: a masked binary message from the client.
            let payload = b"ping\n";
            let mask = [1u8, 2, 3, 4];
            let mut f = vec![0x82, 0x80 | payload.len() as u8];
            f.extend_from_slice(&mask);
            f.extend(payload.iter().enumerate().map(|(i, c)| c ^ mask[i % 4]));
            s.write_all(&f).unwrap();
            assert_eq!(read_frame(&mut s), (2, b"pong:ping".to_vec()));
            // The session's end closes the websocket.
            assert_eq!(read_frame(&mut s).0, 8);
        });
        client.await.unwrap();
        server.abort();
    }
}
