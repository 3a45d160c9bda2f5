//! Container and exec routes: `/containers/{*rest}` and `/exec/{*rest}` dispatched by their
//! last segment, with HTTP upgrade (hijack) for attach and exec start.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use hyper_util::rt::TokioIo;

use super::{json_lines, QueryPairs};
use crate::containers::{AttachOptions, ContainerListOptions, LogsOptions, StreamSession};
use crate::error::{ApiError, ApiResult};
use crate::service::Services;

const RAW: &str = "application/vnd.docker.raw-stream";
const MUX: &str = "application/vnd.docker.multiplexed-stream";

fn split(rest: &str) -> ApiResult<(&str, &str)> {
    rest.rsplit_once('/')
        .filter(|(id, op)| !id.is_empty() && !op.is_empty())
        .ok_or_else(|| ApiError::not_found(format!("page not found: /containers/{rest}")))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn timeout_q(q: &QueryPairs) -> ApiResult<Option<i64>> {
    match q.get("t").or_else(|| q.get("timeout")) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::invalid(format!("invalid stop timeout {v:?}: expected seconds"))
        }),
    }
}

fn size_q(q: &QueryPairs, k: &str) -> ApiResult<u16> {
    match q.get(k) {
        None | Some("") => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::invalid(format!("invalid {k} {v:?}: expected a number"))),
    }
}

/// moby's strslice: `Cmd`, `Entrypoint` and `Shell` may be sent as one JSON string (old
/// clients do), meaning a one-element list.
pub(crate) fn strslice_fields(body: &mut serde_json::Value) {
    for k in ["Cmd", "Entrypoint", "Shell"] {
        if let Some(v) = body.get_mut(k) {
            if let serde_json::Value::String(s) = v {
                *v = serde_json::Value::Array(vec![serde_json::Value::String(std::mem::take(s))]);
            }
        }
    }
}

/// Drop create-body fields a client's API version did not have yet, as dockerd's router does:
/// before 1.44 `Healthcheck.StartInterval`, and endpoint `MacAddress`es unless the old
/// container-wide `MacAddress` is set (the engine moves that one to the endpoint).
pub(crate) fn compat_create_body(v: crate::version::ApiVersion, body: &mut serde_json::Value) {
    if !v.before("1.44") {
        return;
    }
    if let Some(h) = body.get_mut("Healthcheck").and_then(|h| h.as_object_mut()) {
        h.remove("StartInterval");
    }
    let wide = body
        .get("MacAddress")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    if wide.is_empty() {
        if let Some(eps) = body
            .pointer_mut("/NetworkingConfig/EndpointsConfig")
            .and_then(|e| e.as_object_mut())
        {
            for ep in eps.values_mut().filter_map(|e| e.as_object_mut()) {
                ep.remove("MacAddress");
            }
        }
    }
}

async fn json_body(body: Body) -> ApiResult<serde_json::Value> {
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .map_err(|e| ApiError::invalid(format!("cannot read request body: {e}")))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

pub(super) async fn get_one(
    State(s): State<Services>,
    Path(rest): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    get_dispatch(s, rest, req).await
}

pub(super) async fn get_op(
    State(s): State<Services>,
    Path((id, op)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Response> {
    get_dispatch(s, format!("{id}/{op}"), req).await
}

pub(super) async fn post_one(
    State(s): State<Services>,
    Path(rest): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    post_dispatch(s, rest, req).await
}

pub(super) async fn post_op(
    State(s): State<Services>,
    Path((id, op)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Response> {
    post_dispatch(s, format!("{id}/{op}"), req).await
}

async fn get_dispatch(s: Services, rest: String, req: Request) -> ApiResult<Response> {
    let q = QueryPairs::from_uri(req.uri())?;
    let c = &s.containers;
    if rest == "json" {
        let opts = ContainerListOptions {
            all: q.flag("all"),
            limit: q
                .get("limit")
                .and_then(|l| l.parse::<i64>().ok())
                .and_then(|l| (l > 0).then_some(l as usize)),
            size: q.flag("size"),
            filters: q.filters()?,
        };
        return Ok(Json(c.list(opts).await?).into_response());
    }
    let (id, op) = split(&rest)?;
    match op {
        "json" => Ok(Json(c.inspect(id, q.flag("size")).await?).into_response()),
        "logs" => {
            let opts = LogsOptions {
                follow: q.flag("follow"),
                stdout: q.flag("stdout"),
                stderr: q.flag("stderr"),
                since: q.get("since").and_then(|v| v.parse().ok()).unwrap_or(0.0),
                until: q.get("until").and_then(|v| v.parse().ok()).unwrap_or(0.0),
                timestamps: q.flag("timestamps"),
                tail: q.get("tail").and_then(|t| t.parse().ok()),
            };
            if !opts.stdout && !opts.stderr {
                return Err(ApiError::invalid("you must choose at least one stream"));
            }
            let l = c.logs(id, opts).await?;
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, if l.tty { RAW } else { MUX })],
                Body::from_stream(l.body),
            )
                .into_response())
        }
        "top" => Ok(Json(c.top(id, q.get("ps_args").unwrap_or("")).await?).into_response()),
        "stats" => {
            let stream = q
                .get("stream")
                .is_none_or(|v| crate::filters::query_bool(Some(v)));
            if !stream && !q.flag("one-shot") {
                // dockerd primes the CPU reading with one sample and sends the next, so
                // `precpu_stats` is filled and CPU% is not 0: the stream's first frame is that.
                return Ok(json_lines(c.stats(id, true).await?.take(1)));
            }
            Ok(json_lines(c.stats(id, stream).await?))
        }
        _ => Err(ApiError::not_found(format!(
            "page not found: /containers/{rest}"
        ))),
    }
}

async fn post_dispatch(s: Services, rest: String, req: Request) -> ApiResult<Response> {
    let q = QueryPairs::from_uri(req.uri())?;
    let c = s.containers.clone();
    match rest.as_str() {
        "create" => {
            let name = q.get("name").filter(|n| !n.is_empty()).map(String::from);
            let platform = q
                .get("platform")
                .filter(|n| !n.is_empty())
                .map(String::from);
            let ver = req
                .extensions()
                .get::<crate::version::ApiVersion>()
                .copied();
            let mut body = json_body(req.into_body()).await?;
            strslice_fields(&mut body);
            if let Some(v) = ver {
                compat_create_body(v, &mut body);
            }
            let body = crate::container_types::ContainerCreateRequest::from_json(body)?;
            let r = c.create(name, platform, body).await?;
            return Ok((StatusCode::CREATED, Json(r)).into_response());
        }
        "prune" => return Ok(Json(c.prune(q.filters()?).await?).into_response()),
        _ => {}
    }
    let (id, op) = split(&rest)?;
    let id = id.to_string();
    match op {
        "start" => Ok(if c.start(&id).await? {
            no_content()
        } else {
            StatusCode::NOT_MODIFIED.into_response()
        }),
        "stop" => {
            let sig = q.get("signal").filter(|s| !s.is_empty()).map(String::from);
            Ok(if c.stop(&id, sig, timeout_q(&q)?).await? {
                no_content()
            } else {
                StatusCode::NOT_MODIFIED.into_response()
            })
        }
        "restart" => {
            let sig = q.get("signal").filter(|s| !s.is_empty()).map(String::from);
            c.restart(&id, sig, timeout_q(&q)?).await?;
            Ok(no_content())
        }
        "kill" => {
            let sig = q.get("signal").filter(|s| !s.is_empty()).map(String::from);
            c.kill(&id, sig).await?;
            Ok(no_content())
        }
        "wait" => {
            let cond = q.get("condition").unwrap_or("");
            let fut = c.wait(&id, cond).await?;
            let body = futures::stream::once(async move {
                let mut v = serde_json::to_vec(&fut.await).unwrap_or_default();
                v.push(b'\n');
                Ok::<_, std::io::Error>(bytes::Bytes::from(v))
            });
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(body),
            )
                .into_response())
        }
        "pause" => c.pause(&id).await.map(|_| no_content()),
        "unpause" => c.unpause(&id).await.map(|_| no_content()),
        "resize" => {
            c.resize(&id, size_q(&q, "h")?, size_q(&q, "w")?).await?;
            Ok(StatusCode::OK.into_response())
        }
        "rename" => {
            let name = q.get("name").unwrap_or("");
            c.rename(&id, name).await.map(|_| no_content())
        }
        "update" => {
            let body =
                crate::container_types::update_body_from_json(json_body(req.into_body()).await?)?;
            Ok(Json(c.update(&id, body).await?).into_response())
        }
        "attach" => {
            let session = c.attach(&id, attach_opts(&q)).await?;
            Ok(hijack(req, session))
        }
        "exec" => {
            let body = crate::container_types::ExecCreateRequest::from_json(
                json_body(req.into_body()).await?,
            )?;
            let exec_id = c.exec_create(&id, body).await?;
            Ok((
                StatusCode::CREATED,
                Json(serde_json::json!({ "Id": exec_id })),
            )
                .into_response())
        }
        _ => Err(ApiError::not_found(format!(
            "page not found: /containers/{rest}"
        ))),
    }
}

pub(super) async fn delete(
    State(s): State<Services>,
    Path(rest): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let q = QueryPairs::from_uri(req.uri())?;
    if rest.contains('/') {
        return Err(ApiError::not_found(format!(
            "page not found: /containers/{rest}"
        )));
    }
    s.containers
        .remove(&rest, q.flag("force"), q.flag("v"), q.flag("link"))
        .await?;
    Ok(no_content())
}

/// `DELETE /containers/{parent}/{alias}?link=1`: remove a legacy link (the only use of a
/// two-segment container path in DELETE).
pub(super) async fn delete_op(
    State(s): State<Services>,
    Path((id, op)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Response> {
    let q = QueryPairs::from_uri(req.uri())?;
    if !q.flag("link") {
        return Err(ApiError::not_found(format!("No such container: {id}/{op}")));
    }
    s.containers
        .remove(&format!("{id}/{op}"), false, false, true)
        .await?;
    Ok(no_content())
}

pub(super) async fn exec_get(
    State(s): State<Services>,
    Path(rest): Path<String>,
) -> ApiResult<Response> {
    match rest.rsplit_once('/') {
        Some((id, "json")) => Ok(Json(s.containers.exec_inspect(id).await?).into_response()),
        _ => Err(ApiError::not_found(format!("page not found: /exec/{rest}"))),
    }
}

pub(super) async fn exec_post(
    State(s): State<Services>,
    Path(rest): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let q = QueryPairs::from_uri(req.uri())?;
    let Some((id, op)) = rest.rsplit_once('/') else {
        return Err(ApiError::not_found(format!("page not found: /exec/{rest}")));
    };
    let id = id.to_string();
    match op {
        "resize" => {
            s.containers
                .exec_resize(&id, size_q(&q, "h")?, size_q(&q, "w")?)
                .await?;
            Ok(StatusCode::OK.into_response())
        }
        "start" => {
            let (parts, body) = req.into_parts();
            let v = json_body(body).await?;
            let detach = v.get("Detach").and_then(|d| d.as_bool()).unwrap_or(false);
            let tty = v.get("Tty").and_then(|d| d.as_bool()).unwrap_or(false);
            match s.containers.exec_start(&id, detach, tty).await? {
                None => Ok(StatusCode::OK.into_response()),
                Some(session) => Ok(hijack(Request::from_parts(parts, Body::empty()), session)),
            }
        }
        _ => Err(ApiError::not_found(format!("page not found: /exec/{rest}"))),
    }
}

fn attach_opts(q: &QueryPairs) -> AttachOptions {
    AttachOptions {
        stdin: q.flag("stdin"),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        stream: q.flag("stream"),
        logs: q.flag("logs"),
        detach_keys: q.get("detachKeys").map(String::from),
    }
}

/// `GET /containers/{id}/attach/ws` for the router (three segments: `/containers/{id}/{op}`
/// does not reach it).
pub(super) async fn get_attach_ws(
    State(s): State<Services>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let q = QueryPairs::from_uri(req.uri())?;
    attach_ws(&s.containers, &id, &q, req).await
}

/// `GET /containers/{id}/attach/ws`: the attach session over a websocket. Like dockerd,
/// output goes out raw (not multiplexed) in binary messages; text or binary messages from
/// the client are stdin.
async fn attach_ws(
    c: &std::sync::Arc<dyn crate::containers::ContainerService>,
    id: &str,
    q: &QueryPairs,
    req: Request,
) -> ApiResult<Response> {
    use axum::extract::ws::{Message, WebSocketUpgrade};
    use axum::extract::FromRequest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let ws = WebSocketUpgrade::from_request(req, &())
        .await
        .map_err(|e| {
            ApiError::invalid(format!("websocket attach needs a websocket upgrade: {e}"))
        })?;
    let session = c.attach(id, attach_opts(q)).await?;
    Ok(ws.on_upgrade(move |socket| async move {
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
    }))
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
fn hijack(mut req: Request, session: StreamSession) -> Response {
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
    use crate::error::ApiResult;

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
                let q = QueryPairs::from_uri(req.uri())?;
                attach_ws(&svc, "c1", &q, req).await
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
