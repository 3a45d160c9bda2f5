//! API version negotiation: the `/v1.NN` path prefix, Docker's too-old/too-new errors, and the
//! `Api-Version`/`Ostype`/`Server` headers on every response.

use std::cmp::Ordering;

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

pub use berth_api_types::version::{API_VERSION, ENGINE_VERSION, MIN_API_VERSION};

/// A parsed `major.minor` API version, ordered numerically (1.9 < 1.24).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }

    /// The version the server speaks when a request names none.
    pub fn current() -> ApiVersion {
        ApiVersion::parse(API_VERSION).expect("valid constant")
    }

    /// True when this request version is below `other` (e.g. `v.before("1.52")`).
    pub fn before(&self, other: &str) -> bool {
        ApiVersion::parse(other)
            .map(|o| self.cmp(&o) == Ordering::Less)
            .unwrap_or(false)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Split `/v1.47/images/json` into (`1.47`, `/images/json`). None when there is no prefix.
pub fn split_version_prefix(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let slash = rest.find('/')?;
    let (ver, tail) = rest.split_at(slash);
    ApiVersion::parse(ver)?;
    Some((ver, tail))
}

/// Check a requested version against our range; Docker's exact messages.
pub fn check_version(requested: &str) -> Result<ApiVersion, ApiError> {
    let v = ApiVersion::parse(requested)
        .ok_or_else(|| ApiError::invalid(format!("invalid API version {requested:?}")))?;
    let min = ApiVersion::parse(MIN_API_VERSION).expect("valid constant");
    if v < min {
        return Err(ApiError::invalid(format!(
            "client version {requested} is too old. Minimum supported API version is \
             {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    if v > ApiVersion::current() {
        return Err(ApiError::invalid(format!(
            "client version {requested} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    Ok(v)
}

/// Middleware wrapped *around* the router: strips the version prefix before routing, rejects
/// unsupported versions, records the [`ApiVersion`] as a request extension, and sets headers.
pub async fn version_middleware(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut version = ApiVersion::current();
    if let Some((ver, tail)) = split_version_prefix(&path) {
        match check_version(ver) {
            Ok(v) => version = v,
            Err(e) => return with_headers(crate::HttpError::from(e).into_response()),
        }
        let pq = match req.uri().query() {
            Some(q) => format!("{tail}?{q}"),
            None => tail.to_string(),
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(version);
    with_headers(next.run(req).await)
}

fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    if let Ok(v) = HeaderValue::from_str(&format!("Berth/{ENGINE_VERSION} (linux)")) {
        h.insert("Server", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(ApiVersion::parse("1.9").unwrap() < ApiVersion::parse("1.24").unwrap());
        assert!(ApiVersion::parse("1.50").unwrap().before("1.52"));
        assert!(!ApiVersion::parse("1.53").unwrap().before("1.52"));
    }

    #[test]
    fn prefix_is_split() {
        assert_eq!(
            split_version_prefix("/v1.47/images/json"),
            Some(("1.47", "/images/json"))
        );
        assert_eq!(split_version_prefix("/images/json"), None);
        assert_eq!(split_version_prefix("/volumes"), None);
    }

    #[test]
    fn too_new_and_too_old_use_docker_wording() {
        let e = check_version("1.99").unwrap_err();
        assert_eq!(
            e.message,
            "client version 1.99 is too new. Maximum supported API version is 1.53"
        );
        let e = check_version("1.11").unwrap_err();
        assert!(e.message.starts_with("client version 1.11 is too old."));
        assert!(check_version("1.12").is_ok());
        assert!(check_version("1.50").is_ok());
    }
}
