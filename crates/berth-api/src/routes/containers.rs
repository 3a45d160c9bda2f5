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
                .is_none_or(|v| crate::filters::query_bool(Some(v)))
                && !q.flag("one-shot");
            Ok(json_lines(c.stats(id, stream).await?))
        }
        "attach/ws" => Err(ApiError::not_implemented(
            "websocket attach is not supported",
        )),
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
            let body = json_body(req.into_body()).await?;
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
            let body = json_body(req.into_body()).await?;
            Ok(Json(c.update(&id, body).await?).into_response())
        }
        "attach" => {
            let opts = AttachOptions {
                stdin: q.flag("stdin"),
                stdout: q.flag("stdout"),
                stderr: q.flag("stderr"),
                stream: q.flag("stream"),
                logs: q.flag("logs"),
                detach_keys: q.get("detachKeys").map(String::from),
            };
            let session = c.attach(&id, opts).await?;
            Ok(hijack(req, session))
        }
        "exec" => {
            let body = json_body(req.into_body()).await?;
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
