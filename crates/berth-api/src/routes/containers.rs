//! Container and exec handlers, one per route with typed `Path`/`Query` extractors, with HTTP
//! upgrade (hijack) for attach and exec start.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use hyper_util::rt::TokioIo;

use serde::Deserialize;

use super::json_lines;
use super::query::{flag, non_empty, present, Q};
#[cfg(test)]
use super::QueryPairs;
use crate::containers::{AttachOptions, ContainerListOptions, LogsOptions, StreamSession};
use crate::service::Services;
use crate::{ApiError, ApiResult, Filters, HttpResult};

const RAW: &str = "application/vnd.docker.raw-stream";
const MUX: &str = "application/vnd.docker.multiplexed-stream";

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
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

/// `GET /containers/json`.
#[derive(Deserialize)]
pub(super) struct ListQuery {
    #[serde(default, deserialize_with = "flag")]
    all: bool,
    #[serde(default)]
    limit: String,
    #[serde(default, deserialize_with = "flag")]
    size: bool,
    #[serde(default)]
    filters: String,
}

pub(super) async fn list(State(s): State<Services>, Q(q): Q<ListQuery>) -> HttpResult<Response> {
    let opts = ContainerListOptions {
        all: q.all,
        limit: q
            .limit
            .parse::<i64>()
            .ok()
            .and_then(|l| (l > 0).then_some(l as usize)),
        size: q.size,
        filters: Filters::parse(&q.filters)?,
    };
    Ok(Json(s.containers.list(opts).await?).into_response())
}

/// `GET /containers/{id}/json`.
#[derive(Deserialize)]
pub(super) struct InspectQuery {
    #[serde(default, deserialize_with = "flag")]
    size: bool,
}

pub(super) async fn inspect(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<InspectQuery>,
) -> HttpResult<Response> {
    Ok(Json(s.containers.inspect(&id, q.size).await?).into_response())
}

/// `GET /containers/{id}/logs`.
#[derive(Deserialize)]
pub(super) struct LogsQuery {
    #[serde(default, deserialize_with = "flag")]
    follow: bool,
    #[serde(default, deserialize_with = "flag")]
    stdout: bool,
    #[serde(default, deserialize_with = "flag")]
    stderr: bool,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default, deserialize_with = "flag")]
    timestamps: bool,
    #[serde(default)]
    tail: String,
}

pub(super) async fn logs(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<LogsQuery>,
) -> HttpResult<Response> {
    let opts = LogsOptions {
        follow: q.follow,
        stdout: q.stdout,
        stderr: q.stderr,
        since: q.since.parse().unwrap_or(0.0),
        until: q.until.parse().unwrap_or(0.0),
        timestamps: q.timestamps,
        tail: q.tail.parse().ok(),
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::invalid("you must choose at least one stream").into());
    }
    let l = s.containers.logs(&id, opts).await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, if l.tty { RAW } else { MUX })],
        Body::from_stream(l.body),
    )
        .into_response())
}

/// `GET /containers/{id}/top`.
#[derive(Deserialize)]
pub(super) struct TopQuery {
    #[serde(default)]
    ps_args: String,
}

pub(super) async fn top(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<TopQuery>,
) -> HttpResult<Response> {
    Ok(Json(s.containers.top(&id, &q.ps_args).await?).into_response())
}

/// `GET /containers/{id}/stats`: streams unless `stream` is given and false.
#[derive(Deserialize)]
pub(super) struct StatsQuery {
    #[serde(default = "yes", deserialize_with = "flag")]
    stream: bool,
    #[serde(default, rename = "one-shot", deserialize_with = "flag")]
    one_shot: bool,
}

fn yes() -> bool {
    true
}

pub(super) async fn stats(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<StatsQuery>,
) -> HttpResult<Response> {
    let c = &s.containers;
    if !q.stream && !q.one_shot {
        // dockerd primes the CPU reading with one sample and sends the next, so
        // `precpu_stats` is filled and CPU% is not 0: the stream's first frame is that.
        return Ok(json_lines(c.stats(&id, true).await?.take(1)));
    }
    Ok(json_lines(c.stats(&id, q.stream).await?))
}

/// `POST /containers/create`.
#[derive(Deserialize)]
pub(super) struct CreateQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    platform: String,
}

pub(super) async fn create(
    State(s): State<Services>,
    Q(q): Q<CreateQuery>,
    req: Request,
) -> HttpResult<Response> {
    let ver = req
        .extensions()
        .get::<crate::version::ApiVersion>()
        .copied();
    let mut body = json_body(req.into_body()).await?;
    strslice_fields(&mut body);
    if let Some(v) = ver {
        compat_create_body(v, &mut body);
    }
    let r = s
        .containers
        .create(non_empty(&q.name), non_empty(&q.platform), body)
        .await?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}

/// `filters` alone: `POST /containers/prune`.
#[derive(Deserialize)]
pub(super) struct FiltersQuery {
    #[serde(default)]
    filters: String,
}

pub(super) async fn prune(
    State(s): State<Services>,
    Q(q): Q<FiltersQuery>,
) -> HttpResult<Response> {
    Ok(Json(s.containers.prune(Filters::parse(&q.filters)?).await?).into_response())
}

pub(super) async fn start(
    State(s): State<Services>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    Ok(if s.containers.start(&id).await? {
        no_content()
    } else {
        StatusCode::NOT_MODIFIED.into_response()
    })
}

/// `stop`, `restart` and `kill`: a signal and (not for kill) a timeout, `t` or `timeout`.
#[derive(Deserialize)]
pub(super) struct SignalQuery {
    #[serde(default)]
    signal: String,
    #[serde(default, deserialize_with = "present")]
    t: Option<String>,
    #[serde(default, deserialize_with = "present")]
    timeout: Option<String>,
}

impl SignalQuery {
    fn timeout(&self) -> ApiResult<Option<i64>> {
        match self.t.as_deref().or(self.timeout.as_deref()) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::invalid(format!("invalid stop timeout {v:?}: expected seconds"))
            }),
        }
    }
}

pub(super) async fn stop(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<SignalQuery>,
) -> HttpResult<Response> {
    let stopped = s
        .containers
        .stop(&id, non_empty(&q.signal), q.timeout()?)
        .await?;
    Ok(if stopped {
        no_content()
    } else {
        StatusCode::NOT_MODIFIED.into_response()
    })
}

pub(super) async fn restart(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<SignalQuery>,
) -> HttpResult<Response> {
    s.containers
        .restart(&id, non_empty(&q.signal), q.timeout()?)
        .await?;
    Ok(no_content())
}

pub(super) async fn kill(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<SignalQuery>,
) -> HttpResult<Response> {
    s.containers.kill(&id, non_empty(&q.signal)).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/wait`.
#[derive(Deserialize)]
pub(super) struct WaitQuery {
    #[serde(default)]
    condition: String,
}

pub(super) async fn wait(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<WaitQuery>,
) -> HttpResult<Response> {
    let fut = s.containers.wait(&id, &q.condition).await?;
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

pub(super) async fn pause(
    State(s): State<Services>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    s.containers.pause(&id).await?;
    Ok(no_content())
}

pub(super) async fn unpause(
    State(s): State<Services>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    s.containers.unpause(&id).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/resize` and `/exec/{id}/resize`: the tty's height and width.
#[derive(Deserialize)]
pub(super) struct ResizeQuery {
    #[serde(default)]
    h: String,
    #[serde(default)]
    w: String,
}

impl ResizeQuery {
    fn size(&self) -> ApiResult<(u16, u16)> {
        let n = |k: &str, v: &str| match v {
            "" => Ok(0),
            v => v
                .parse()
                .map_err(|_| ApiError::invalid(format!("invalid {k} {v:?}: expected a number"))),
        };
        Ok((n("h", &self.h)?, n("w", &self.w)?))
    }
}

pub(super) async fn resize(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<ResizeQuery>,
) -> HttpResult<Response> {
    let (h, w) = q.size()?;
    s.containers.resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /containers/{id}/rename`.
#[derive(Deserialize)]
pub(super) struct RenameQuery {
    #[serde(default)]
    name: String,
}

pub(super) async fn rename(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<RenameQuery>,
) -> HttpResult<Response> {
    s.containers.rename(&id, &q.name).await?;
    Ok(no_content())
}

pub(super) async fn update(
    State(s): State<Services>,
    Path(id): Path<String>,
    body: Body,
) -> HttpResult<Response> {
    let body = json_body(body).await?;
    Ok(Json(s.containers.update(&id, body).await?).into_response())
}

pub(super) async fn attach(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<AttachQuery>,
    req: Request,
) -> HttpResult<Response> {
    let session = s.containers.attach(&id, q.options()).await?;
    Ok(hijack(req, session))
}

pub(super) async fn exec_create(
    State(s): State<Services>,
    Path(id): Path<String>,
    body: Body,
) -> HttpResult<Response> {
    let body = json_body(body).await?;
    let exec_id = s.containers.exec_create(&id, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "Id": exec_id })),
    )
        .into_response())
}

/// `DELETE /containers/{id}`.
#[derive(Deserialize)]
pub(super) struct RemoveQuery {
    #[serde(default, deserialize_with = "flag")]
    force: bool,
    #[serde(default, deserialize_with = "flag")]
    v: bool,
    #[serde(default, deserialize_with = "flag")]
    link: bool,
}

pub(super) async fn remove(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<RemoveQuery>,
) -> HttpResult<Response> {
    s.containers.remove(&id, q.force, q.v, q.link).await?;
    Ok(no_content())
}

/// `DELETE /containers/{parent}/{alias}?link=1`: remove a legacy link (the only use of a
/// two-segment container path in DELETE).
pub(super) async fn remove_link(
    State(s): State<Services>,
    Path((id, alias)): Path<(String, String)>,
    Q(q): Q<RemoveQuery>,
) -> HttpResult<Response> {
    if !q.link {
        return Err(ApiError::not_found(format!("No such container: {id}/{alias}")).into());
    }
    s.containers
        .remove(&format!("{id}/{alias}"), false, false, true)
        .await?;
    Ok(no_content())
}

pub(super) async fn exec_inspect(
    State(s): State<Services>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    Ok(Json(s.containers.exec_inspect(&id).await?).into_response())
}

pub(super) async fn exec_resize(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<ResizeQuery>,
) -> HttpResult<Response> {
    let (h, w) = q.size()?;
    s.containers.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn exec_start(
    State(s): State<Services>,
    Path(id): Path<String>,
    req: Request,
) -> HttpResult<Response> {
    let (parts, body) = req.into_parts();
    let v = json_body(body).await?;
    let detach = v.get("Detach").and_then(|d| d.as_bool()).unwrap_or(false);
    let tty = v.get("Tty").and_then(|d| d.as_bool()).unwrap_or(false);
    match s.containers.exec_start(&id, detach, tty).await? {
        None => Ok(StatusCode::OK.into_response()),
        Some(session) => Ok(hijack(Request::from_parts(parts, Body::empty()), session)),
    }
}

/// `attach` and `attach/ws`.
#[derive(Deserialize)]
pub(super) struct AttachQuery {
    #[serde(default, deserialize_with = "flag")]
    stdin: bool,
    #[serde(default, deserialize_with = "flag")]
    stdout: bool,
    #[serde(default, deserialize_with = "flag")]
    stderr: bool,
    #[serde(default, deserialize_with = "flag")]
    stream: bool,
    #[serde(default, deserialize_with = "flag")]
    logs: bool,
    #[serde(default, rename = "detachKeys", deserialize_with = "present")]
    detach_keys: Option<String>,
}

impl AttachQuery {
    fn options(self) -> AttachOptions {
        AttachOptions {
            stdin: self.stdin,
            stdout: self.stdout,
            stderr: self.stderr,
            stream: self.stream,
            logs: self.logs,
            detach_keys: self.detach_keys,
        }
    }
}

/// `GET /containers/{id}/attach/ws` for the router (three segments: `/containers/{id}/{op}`
/// does not reach it).
pub(super) async fn attach_ws_route(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<AttachQuery>,
    req: Request,
) -> HttpResult<Response> {
    Ok(attach_ws(&s.containers, &id, q, req).await?)
}

/// `GET /containers/{id}/attach/ws`: the attach session over a websocket. Like dockerd,
/// output goes out raw (not multiplexed) in binary messages; text or binary messages from
/// the client are stdin.
async fn attach_ws(
    c: &std::sync::Arc<dyn crate::containers::ContainerService>,
    id: &str,
    q: AttachQuery,
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
    let session = c.attach(id, q.options()).await?;
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
