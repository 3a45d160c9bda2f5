//! System routes: `/_ping`, `/version`, `/info`, `/events`, `/system/df`, and berth's
//! `/berth/system/check`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bollard_stubs::models::{EventMessage, SystemVersionComponents};
use futures::StreamExt;

use serde::Deserialize;

use super::json_lines;
use super::query::{flag, non_empty, Q};
use crate::filters::Filters;
use crate::service::Services;
use crate::version::{ApiVersion, API_VERSION, MIN_API_VERSION};
use crate::{ApiError, HttpResult};

fn ping_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    // BuildKit (`/grpc` + `/session`, berth-buildkit) is the builder modern clients use; the
    // classic `/build` stays for the docker CLI without buildx, docker-py and compose 1.29.
    h.insert("Builder-Version", HeaderValue::from_static("2"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h
}

pub(super) async fn ping() -> Response {
    let mut h = ping_headers();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    (h, "OK").into_response()
}

pub(super) async fn ping_head() -> Response {
    let mut h = ping_headers();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    h.into_response()
}

pub(super) async fn version(State(s): State<Services>) -> HttpResult<Response> {
    let mut v = s.system.version().await?;
    v.api_version = Some(API_VERSION.to_string());
    v.min_api_version = Some(MIN_API_VERSION.to_string());
    v.os.get_or_insert_with(|| "linux".into());
    let mut details = std::collections::HashMap::new();
    details.insert("ApiVersion".to_string(), API_VERSION.to_string());
    details.insert("MinAPIVersion".to_string(), MIN_API_VERSION.to_string());
    for (k, val) in [
        ("GitCommit", &v.git_commit),
        ("GoVersion", &v.go_version),
        ("Os", &v.os),
        ("Arch", &v.arch),
        ("KernelVersion", &v.kernel_version),
        ("BuildTime", &v.build_time),
    ] {
        if let Some(val) = val {
            details.insert(k.to_string(), val.clone());
        }
    }
    details.insert(
        "Experimental".into(),
        v.experimental.unwrap_or(false).to_string(),
    );
    let engine = SystemVersionComponents {
        name: "Engine".into(),
        version: v.version.clone().unwrap_or_default(),
        details: Some(details),
    };
    let mut comps = v.components.take().unwrap_or_default();
    comps.retain(|c| c.name != "Engine");
    comps.insert(0, engine);
    v.components = Some(comps);
    Ok(Json(v).into_response())
}

pub(super) async fn info(
    State(s): State<Services>,
    Extension(ver): Extension<ApiVersion>,
) -> HttpResult<Response> {
    let info = s.system.info().await?;
    if !ver.before("1.39") {
        return Ok(Json(info).into_response());
    }
    let mut v = serde_json::to_value(info).map_err(|e| ApiError::internal(e.to_string()))?;
    super::compat::info(ver, &mut v);
    Ok(Json(v).into_response())
}

/// `POST /berth/system/check[?repair=1]` (a berth extension; Docker has no such endpoint).
pub(super) async fn check(State(s): State<Services>, Q(q): Q<CheckQuery>) -> HttpResult<Response> {
    Ok(Json(s.system.check(q.repair).await?).into_response())
}

/// `POST /berth/system/check`.
#[derive(Deserialize)]
pub(super) struct CheckQuery {
    #[serde(default, deserialize_with = "flag")]
    repair: bool,
}

/// `GET /system/df`.
#[derive(Deserialize)]
pub(super) struct DfQuery {
    #[serde(default, deserialize_with = "flag")]
    verbose: bool,
}

/// `GET /system/df`: [`crate::SystemDf`] (the usage summaries and, at every version, the
/// legacy fields).
pub(super) async fn df(
    State(s): State<Services>,
    Q(DfQuery { verbose }): Q<DfQuery>,
) -> HttpResult<Response> {
    let du = s.system.disk_usage().await?;
    Ok(Json(crate::SystemDf::new(du, verbose)).into_response())
}

/// Parse Docker's `since`/`until` (`<secs>` or `<secs>.<nanos>`) into nanoseconds.
pub fn parse_timestamp(s: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "invalid timestamp {s:?}: expected seconds[.nanoseconds]"
        ))
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        let f = format!("{frac:0<9}");
        f[..9].parse().map_err(|_| bad())?
    };
    Ok(secs * 1_000_000_000 + nanos)
}

/// A reference without its tag or digest (moby's `stripTag`; `localhost:5000/app:v1` →
/// `localhost:5000/app`).
fn strip_tag(r: &str) -> &str {
    let r = r.split('@').next().unwrap_or(r);
    match r.rfind(':') {
        Some(i) if !r[i..].contains('/') => &r[..i],
        _ => r,
    }
}

/// Does an event pass Docker's event filters?
pub fn event_matches(f: &Filters, e: &EventMessage) -> bool {
    let typ = e.typ.as_ref().map(|t| t.to_string()).unwrap_or_default();
    let action = e.action.clone().unwrap_or_default();
    let id = e
        .actor
        .as_ref()
        .and_then(|a| a.id.clone())
        .unwrap_or_default();
    let attrs = e
        .actor
        .as_ref()
        .and_then(|a| a.attributes.clone())
        .unwrap_or_default();
    let any = |key: &str, cands: &[&str]| {
        let vals = f.get(key);
        vals.is_empty()
            || vals
                .iter()
                .any(|v| cands.iter().any(|c| !c.is_empty() && c == v))
    };
    let name = attrs.get("name").map(String::as_str).unwrap_or("");
    let image_attr = attrs.get("image").map(String::as_str).unwrap_or("");
    let base_action = action.split(':').next().unwrap_or("");
    // moby's matchImage: the reference as given and without its tag or digest, so
    // `image=app` sees events of `app:v2` too.
    let sid = if id.starts_with("sha256:") {
        id.as_str()
    } else {
        strip_tag(&id)
    };
    let (sname, simage) = (strip_tag(name), strip_tag(image_attr));
    any("type", &[&typ])
        && any("event", &[&action, base_action])
        && (typ != "image" || any("image", &[&id, name, sid, sname]))
        && (typ != "container" || any("image", &[image_attr, simage]))
        && (!f.contains("image") || typ == "image" || typ == "container")
        && (!f.contains("container") || (typ == "container" && any("container", &[&id, name])))
        && f.labels_match("label", &attrs)
}

/// An event as JSON with dockerd's deprecated `status`/`id`/`from` fields on container and
/// image events (`from` on container events only), at every API version: compose 1.29 and
/// older clients read them, and extra fields harm nobody.
fn render_event(e: &EventMessage) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    let typ = v
        .get("Type")
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_string();
    if typ == "container" || typ == "image" {
        if let Some(m) = v.as_object_mut() {
            if let Some(a) = &e.action {
                m.insert("status".into(), a.clone().into());
            }
            if let Some(id) = e.actor.as_ref().and_then(|a| a.id.clone()) {
                m.insert("id".into(), id.into());
            }
            if let Some(img) = e
                .actor
                .as_ref()
                .and_then(|a| a.attributes.as_ref())
                .and_then(|a| a.get("image"))
                .filter(|_| typ == "container")
            {
                m.insert("from".into(), img.clone().into());
            }
        }
    }
    v
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// `GET /events`.
#[derive(Deserialize)]
pub(super) struct EventsQuery {
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    filters: String,
}

/// `GET /events`: backlog since `since`, then live events until `until` (if given).
pub(super) async fn events(
    State(s): State<Services>,
    Q(q): Q<EventsQuery>,
) -> HttpResult<Response> {
    let filters = Filters::parse(&q.filters)?;
    filters.validate(&[
        "config",
        "container",
        "daemon",
        "event",
        "image",
        "label",
        "network",
        "node",
        "plugin",
        "scope",
        "secret",
        "service",
        "type",
        "volume",
    ])?;
    let since = non_empty(&q.since)
        .as_deref()
        .map(parse_timestamp)
        .transpose()?;
    let until = non_empty(&q.until)
        .as_deref()
        .map(parse_timestamp)
        .transpose()?;
    if let (Some(a), Some(b)) = (since, until) {
        if a > b {
            return Err(ApiError::invalid("`since` time must be before `until` time").into());
        }
    }
    let (backlog, live) = s.system.subscribe_events();
    let in_window = move |e: &EventMessage| {
        let t = e.time_nano.unwrap_or(0);
        since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
    };
    let f2 = filters.clone();
    let past: Vec<serde_json::Value> = if since.is_some() {
        backlog
            .iter()
            .filter(|e| in_window(e) && event_matches(&filters, e))
            .map(render_event)
            .collect()
    } else {
        Vec::new()
    };
    let past = futures::stream::iter(past);
    // Live events stop at `until`; a deadline already past ends the stream after the backlog.
    let remaining = until.map(|u| Duration::from_nanos((u - now_nanos()).max(0) as u64));
    let live = live
        .filter(move |e| {
            let ok = in_window(e) && event_matches(&f2, e);
            async move { ok }
        })
        .map(move |e| render_event(&e));
    let live = match remaining {
        Some(d) => live.take_until(Box::pin(tokio::time::sleep(d))).boxed(),
        None => live.boxed(),
    };
    Ok(json_lines(past.chain(live)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{EventActor, EventMessageTypeEnum};

    fn ev(typ: EventMessageTypeEnum, action: &str, id: &str, name: &str) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some(id.into()),
                attributes: Some([("name".to_string(), name.to_string())].into()),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn events_keep_the_deprecated_fields_on_containers_and_images() {
        let mut c = ev(EventMessageTypeEnum::CONTAINER, "start", "abc", "web");
        if let Some(a) = c.actor.as_mut().and_then(|a| a.attributes.as_mut()) {
            a.insert("image".into(), "busybox".into());
        }
        let v = render_event(&c);
        assert_eq!(
            (&v["status"], &v["id"], &v["from"]),
            (&"start".into(), &"abc".into(), &"busybox".into())
        );
        let v = render_event(&ev(EventMessageTypeEnum::IMAGE, "tag", "sha256:1", "x"));
        assert_eq!(
            (&v["status"], &v["id"]),
            (&"tag".into(), &"sha256:1".into())
        );
        assert!(v.get("from").is_none());
        // dockerd sets them on container and image events only.
        let v = render_event(&ev(EventMessageTypeEnum::NETWORK, "create", "n1", "x"));
        assert!(v.get("status").is_none() && v.get("id").is_none(), "{v}");
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("12").unwrap(), 12_000_000_000);
        assert_eq!(parse_timestamp("12.5").unwrap(), 12_500_000_000);
        assert!(parse_timestamp("x").is_err());
    }

    #[test]
    fn event_filters() {
        let e = ev(
            EventMessageTypeEnum::IMAGE,
            "tag",
            "sha256:ab",
            "busybox:latest",
        );
        let f = |j: &str| Filters::parse(j).unwrap();
        assert!(event_matches(&f("{}"), &e));
        assert!(event_matches(&f(r#"{"type":["image"]}"#), &e));
        assert!(!event_matches(&f(r#"{"type":["container"]}"#), &e));
        assert!(event_matches(&f(r#"{"event":["tag","untag"]}"#), &e));
        assert!(!event_matches(&f(r#"{"event":["delete"]}"#), &e));
        assert!(event_matches(&f(r#"{"image":["busybox:latest"]}"#), &e));
        // By name without the tag, as moby (before: no match).
        assert!(event_matches(&f(r#"{"image":["busybox"]}"#), &e));
        assert!(!event_matches(&f(r#"{"image":["busy"]}"#), &e));
        assert!(!event_matches(&f(r#"{"container":["x"]}"#), &e));
        assert_eq!(strip_tag("localhost:5000/app:v1"), "localhost:5000/app");
        assert_eq!(strip_tag("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(strip_tag("app@sha256:ab"), "app");
    }
}
