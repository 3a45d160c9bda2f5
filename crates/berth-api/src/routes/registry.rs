//! Registry routes: pull (`POST /images/create?fromImage=`), push (`POST /images/{name}/push`),
//! login (`POST /auth`) and `GET /distribution/{name}/json`; `X-Registry-Auth` is passed through
//! to the service untouched.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{json_lines, QueryPairs};
use crate::service::{AuthRequest, PullOptions, PushOptions, Services};
use crate::{ApiError, HttpResult};

/// The raw `X-Registry-Auth` header, when present and not empty.
pub(super) fn registry_auth(h: &HeaderMap) -> Option<String> {
    h.get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

pub(super) async fn pull(
    s: &Services,
    from: &str,
    q: &QueryPairs,
    auth: Option<String>,
) -> HttpResult<Response> {
    let opts = PullOptions {
        from_image: from.to_string(),
        tag: q.get("tag").unwrap_or("").to_string(),
        platform: q.get("platform").unwrap_or("").to_string(),
        registry_auth: auth,
    };
    Ok(json_lines(s.images.pull(opts).await?))
}

pub(super) async fn push(
    s: &Services,
    name: &str,
    q: &QueryPairs,
    auth: Option<String>,
) -> HttpResult<Response> {
    let opts = PushOptions {
        name: name.to_string(),
        tag: q.get("tag").unwrap_or("").to_string(),
        registry_auth: auth,
    };
    Ok(json_lines(s.images.push(opts).await?))
}

/// `POST /auth`: `{"Status":"Login Succeeded","IdentityToken":""}`.
pub(super) async fn auth(State(s): State<Services>, body: Bytes) -> HttpResult<Response> {
    let req: AuthRequest = if body.is_empty() {
        AuthRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid auth configuration: {e}")))?
    };
    let status = s.images.login(req).await?;
    Ok(Json(serde_json::json!({ "Status": status, "IdentityToken": "" })).into_response())
}

/// `GET /distribution/{name}/json` (names contain `/`, so the path is a catch-all).
pub(super) async fn distribution(
    State(s): State<Services>,
    Path(rest): Path<String>,
    req: Request,
) -> HttpResult<Response> {
    let Some(name) = rest.strip_suffix("/json").filter(|n| !n.is_empty()) else {
        return Err(ApiError::not_found(super::PAGE_NOT_FOUND).into());
    };
    let auth = registry_auth(req.headers());
    Ok(Json(s.images.distribution(name, auth).await?).into_response())
}
