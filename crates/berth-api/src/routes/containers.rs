//! Container and exec handlers, one per route with typed `Path`/`Query` extractors; attach
//! and exec start hand their session to [`super::hijack`].

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;

use serde::Deserialize;

use super::compat;
use super::hijack::{hijack, MUX, RAW};
use super::json_lines;
use super::query::{flag, non_empty, present, FiltersQuery, Q};
use crate::containers::{AttachOptions, ContainerListOptions, LogsOptions};
use crate::service::Services;
use crate::version::ApiVersion;
use crate::{ApiError, ApiResult, ErrorKind, Filters, HttpResult};

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

async fn json_body(body: Body) -> ApiResult<serde_json::Value> {
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .map_err(|e| ApiError::invalid(format!("cannot read request body: {e}")))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    super::json_body::decode(&bytes)
}

/// A body dockerd requires (exec create and start): empty is its "got EOF" 400.
async fn required_json_body(body: Body) -> ApiResult<serde_json::Value> {
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .map_err(|e| ApiError::invalid(format!("cannot read request body: {e}")))?;
    super::json_body::decode(&bytes)
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
    Extension(ver): Extension<ApiVersion>,
) -> HttpResult<Response> {
    let c = s.containers.inspect(&id, q.size).await?;
    if !ver.before("1.20") {
        return Ok(Json(c).into_response());
    }
    let mut v = serde_json::to_value(c).map_err(|e| ApiError::internal(e.to_string()))?;
    super::compat::inspect(ver, &mut v);
    Ok(Json(v).into_response())
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
    #[serde(default, deserialize_with = "flag")]
    details: bool,
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
        details: q.details,
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::invalid("you must choose at least one stream").into());
    }
    let l = s.containers.logs(&id, opts).await?;
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, if l.tty { RAW } else { MUX })],
        Body::from_stream(l.body),
    )
        .into_response();
    if l.rotated_away {
        // A berth extension (docker's clients ignore it): `berth logs` says so on stderr.
        r.headers_mut().insert(
            "x-berth-log-rotated",
            header::HeaderValue::from_static("true"),
        );
    }
    Ok(r)
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
        compat::create_body(v, &mut body);
    }
    let body = crate::container_types::ContainerCreateRequest::from_json(body)?;
    let r = s
        .containers
        .create(non_empty(&q.name), non_empty(&q.platform), body)
        .await?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}

pub(super) async fn prune(
    State(s): State<Services>,
    Q(q): Q<FiltersQuery>,
) -> HttpResult<Response> {
    Ok(Json(s.containers.prune(q.parse()?).await?).into_response())
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
    Extension(ver): Extension<ApiVersion>,
) -> HttpResult<Response> {
    match s.containers.kill(&id, non_empty(&q.signal)).await {
        Err(e) if e.kind == ErrorKind::Conflict && compat::kill_of_stopped_is_ok(ver) => {}
        r => r?,
    }
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

/// `POST /containers/{id}/update`: `dryRun` is berth's (plan and answer, change nothing).
#[derive(Deserialize)]
pub(super) struct UpdateQuery {
    #[serde(default, rename = "dryRun", deserialize_with = "flag")]
    dry_run: bool,
}

pub(super) async fn update(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<UpdateQuery>,
    req: Request,
) -> HttpResult<Response> {
    let ver = req
        .extensions()
        .get::<crate::version::ApiVersion>()
        .copied();
    let mut body = json_body(req.into_body()).await?;
    // As dockerd's router: a client before API 1.40 cannot update the PIDs limit.
    if ver.is_some_and(|v| v.before("1.40")) {
        if let Some(o) = body.as_object_mut() {
            o.remove("PidsLimit");
        }
    }
    let req = berth_api_types::ContainerUpdateRequest::from_json(body, q.dry_run)?;
    Ok(Json(s.containers.update(&id, req).await?).into_response())
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
    let body =
        crate::container_types::ExecCreateRequest::from_json(required_json_body(body).await?)?;
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
    let v = required_json_body(body).await?;
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
    pub(super) fn options(self) -> AttachOptions {
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
