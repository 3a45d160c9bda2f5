//! The HTTP side: one axum handler that parses the path into a [`Route`] and answers as the
//! OCI Distribution Specification v1.1 (and Docker's Registry API V2) says — status codes,
//! `Location`, `Range`, `Docker-Content-Digest`, `OCI-Subject`, `Link` pagination and the
//! spec's JSON error bodies. Store work runs on the blocking pool.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_oci::Digest;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::route::{parse, Reference, Route, RouteError};
use crate::store::{Store, StoreError};

/// Largest manifest accepted (as distribution: 4 MiB).
pub const MAX_MANIFEST: usize = 4 << 20;

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Allow `DELETE` of manifests, tags and blobs.
    pub delete: bool,
    /// The users: Basic auth on every request, or (with `token`) the token realm's logins.
    pub htpasswd: Option<Arc<crate::auth::Htpasswd>>,
    /// Bearer tokens from the built-in issuer (`/auth/token`), checked on every request.
    pub token: Option<Arc<crate::token::TokenAuth>>,
    /// Served over TLS (the scheme of the announced token realm).
    pub https: bool,
    /// Pull-through cache of this upstream (pushes refused).
    pub proxy: Option<crate::proxy::Upstream>,
}

struct App {
    store: Store,
    opts: Options,
    metrics: Metrics,
}

/// Counters `/metrics` shows (Prometheus text format).
#[derive(Default)]
struct Metrics {
    /// Requests by (method, status class).
    requests: std::sync::Mutex<std::collections::BTreeMap<(String, u16), u64>>,
    blobs_pushed: std::sync::atomic::AtomicU64,
    manifests_pushed: std::sync::atomic::AtomicU64,
}

impl Metrics {
    fn render(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let mut out = String::from(
            "# HELP berth_registry_requests_total HTTP requests by method and status.\n# TYPE berth_registry_requests_total counter\n",
        );
        for ((m, st), n) in self.requests.lock().expect("metrics lock").iter() {
            out.push_str(&format!(
                "berth_registry_requests_total{{method=\"{m}\",status=\"{st}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "# HELP berth_registry_blobs_pushed_total Blob uploads completed.\n# TYPE berth_registry_blobs_pushed_total counter\nberth_registry_blobs_pushed_total {}\n",
            self.blobs_pushed.load(Relaxed)
        ));
        out.push_str(&format!(
            "# HELP berth_registry_manifests_pushed_total Manifests stored.\n# TYPE berth_registry_manifests_pushed_total counter\nberth_registry_manifests_pushed_total {}\n",
            self.manifests_pushed.load(Relaxed)
        ));
        out
    }
}

/// The router serving `store`: the distribution API under `/v2/`, `/healthz` and `/metrics`.
pub fn router(store: Store, opts: Options) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .with_state(Arc::new(App {
            store,
            opts,
            metrics: Metrics::default(),
        }))
}

/// A distribution error: its code, HTTP status, message and detail.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: Value::Null,
        }
    }

    fn detail(mut self, d: Value) -> ApiError {
        self.detail = d;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"errors": [{"code": self.code, "message": self.message, "detail": self.detail}]});
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::BlobUnknown => {
                ApiError::new(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", e.to_string())
            }
            StoreError::ManifestUnknown => {
                ApiError::new(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", e.to_string())
            }
            StoreError::UploadUnknown => ApiError::new(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "blob upload unknown to registry",
            ),
            StoreError::DigestMismatch { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", e.to_string())
            }
            StoreError::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::StorageFull =>
            {
                tracing::error!(error = %e, "registry store full");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "UNKNOWN",
                    format!("the registry's storage is full ({e}); the upload was dropped"),
                )
            }
            StoreError::Io { .. } => {
                tracing::error!(error = %e, "registry store");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string())
            }
        }
    }
}

fn route_error(e: RouteError) -> ApiError {
    match e {
        RouteError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "not found"),
        RouteError::NameInvalid(n) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "invalid repository name",
        )
        .detail(json!({"name": n})),
        RouteError::TagInvalid(t) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "TAG_INVALID",
            "manifest tag did not match URI",
        )
        .detail(json!({"tag": t})),
        RouteError::DigestInvalid(d) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
        )
        .detail(json!({"digest": d})),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()))?
        .map_err(ApiError::from)
}

fn unsupported() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "the operation is unsupported (deletes are off: serve with --delete)",
    )
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn handle(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or_default().to_string();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_string());
    let headers = req.headers().clone();
    let body = req.into_body();
    let resp = match &app.opts.token {
        Some(t) if path == "/auth/token" => {
            token_endpoint(&app, t, &method, &raw_query, &headers).await
        }
        Some(t) => match bearer_check(&app, t, &method, &path, q, &headers, &host) {
            Ok(q) => answer(&app, &method, &path, &q, &headers, body).await,
            Err(r) => with_api_version(*r),
        },
        None => answer(&app, &method, &path, &q, &headers, body).await,
    };
    let status = resp.status().as_u16();
    *app.metrics
        .requests
        .lock()
        .expect("metrics lock")
        .entry((method.to_string(), status))
        .or_default() += 1;
    if method != Method::GET || path != "/metrics" {
        // One structured access-log line per request.
        eprintln!(
            "{}",
            json!({
                "msg": "request",
                "method": method.as_str(),
                "path": path,
                "status": status,
                "ms": started.elapsed().as_millis() as u64,
            })
        );
    }
    resp
}

async fn answer(
    app: &Arc<App>,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    match path {
        "/healthz" => return (StatusCode::OK, "ok\n").into_response(),
        "/metrics" => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                app.metrics.render(),
            )
                .into_response()
        }
        _ => {}
    }
    if let (Some(h), None) = (&app.opts.htpasswd, &app.opts.token) {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        if basic_user(h, auth).await.is_none() {
            return with_api_version(basic_challenge("authentication required"));
        }
    }
    let r = dispatch(app, method, path, q, headers, body).await;
    if let Ok(ok) = &r {
        use std::sync::atomic::Ordering::Relaxed;
        if ok.status() == StatusCode::CREATED {
            if path.contains("/manifests/") {
                app.metrics.manifests_pushed.fetch_add(1, Relaxed);
            } else {
                app.metrics.blobs_pushed.fetch_add(1, Relaxed);
            }
        }
    }
    with_api_version(r.unwrap_or_else(IntoResponse::into_response))
}

/// The htpasswd user an `Authorization` value proves (bcrypt runs on the blocking pool).
async fn basic_user(
    h: &Arc<crate::auth::Htpasswd>,
    authorization: Option<String>,
) -> Option<String> {
    let h = h.clone();
    tokio::task::spawn_blocking(move || h.user(authorization.as_deref()))
        .await
        .ok()
        .flatten()
}

/// 401 `UNAUTHORIZED` asking for Basic credentials.
fn basic_challenge(message: &'static str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"berth-registry\""),
    );
    r
}

fn with_api_version(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

/// The access a request needs: `None` for `/v2/` and paths that are no route (any valid
/// token; the route's own error follows).
fn needed_access(path: &str, method: &Method) -> Option<crate::token::Access> {
    let route = parse(path).ok()?;
    let action = match *method {
        Method::GET | Method::HEAD => "pull",
        Method::DELETE => "delete",
        _ => "push",
    };
    let (kind, name, action) = match route {
        Route::Base => return None,
        Route::Catalog => ("registry", "catalog".to_string(), "*"),
        // Every step of an upload writes (a status GET or a cancel included).
        Route::UploadStart { name } | Route::Upload { name, .. } => ("repository", name, "push"),
        Route::Manifest { name, .. }
        | Route::Blob { name, .. }
        | Route::Tags { name }
        | Route::Referrers { name, .. } => ("repository", name, action),
    };
    Some(crate::token::Access {
        kind: kind.to_string(),
        name,
        actions: vec![action.to_string()],
    })
}

/// Token auth of one request: the query to serve it with (a cross-repository mount is
/// dropped, so the blob is uploaded instead, unless the token may pull the source), or the
/// 401 to answer.
fn bearer_check(
    app: &App,
    t: &crate::token::TokenAuth,
    method: &Method,
    path: &str,
    mut q: HashMap<String, String>,
    headers: &HeaderMap,
    host: &str,
) -> Result<HashMap<String, String>, Box<Response>> {
    if path == "/healthz" || path == "/metrics" {
        return Ok(q);
    }
    let needed = needed_access(path, method);
    let realm = format!(
        "{}://{host}/auth/token",
        if app.opts.https { "https" } else { "http" }
    );
    let deny = |status: StatusCode, code: &'static str, msg: String, error: Option<&str>| {
        let mut r = ApiError::new(status, code, msg)
            .detail(match &needed {
                Some(a) => json!([{"Type": a.kind, "Name": a.name, "Action": a.actions[0]}]),
                None => Value::Null,
            })
            .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            hv(&t.challenge(&realm, needed.as_ref(), error)),
        );
        Box::new(r)
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return Err(deny(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required".into(),
            None,
        ));
    };
    let claims = t.verify(token.trim()).map_err(|e| {
        deny(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            format!("authentication required: {e}"),
            Some("invalid_token"),
        )
    })?;
    if let Some(a) = &needed {
        if !claims.allows(&a.kind, &a.name, &a.actions[0]) {
            let who = if claims.sub.is_empty() {
                "anonymous".to_string()
            } else {
                claims.sub.clone()
            };
            return Err(deny(
                StatusCode::UNAUTHORIZED,
                "DENIED",
                format!(
                    "requested access to the resource is denied: {who} may not {} {}",
                    a.actions[0], a.name
                ),
                Some("insufficient_scope"),
            ));
        }
    }
    if let Some(from) = q.get("from") {
        if !claims.allows("repository", from, "pull") {
            q.remove("mount");
        }
    }
    Ok(q)
}

/// `GET /auth/token?service=…&scope=…`: Basic credentials (or none: anonymous) in, a token
/// holding what the policy grants of the scopes out.
async fn token_endpoint(
    app: &Arc<App>,
    t: &Arc<crate::token::TokenAuth>,
    method: &Method,
    raw_query: &str,
    headers: &HeaderMap,
) -> Response {
    if *method != Method::GET {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the token realm answers GET (Basic credentials or none)",
        )
        .into_response();
    }
    let mut scopes = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        match &*k {
            "service" if v != t.service => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "UNSUPPORTED",
                    format!(
                        "unknown service {v:?}: this realm issues tokens for {:?}",
                        t.service
                    ),
                )
                .into_response()
            }
            // One parameter per scope, or several separated by spaces.
            "scope" => scopes.extend(v.split(' ').filter_map(crate::token::Access::parse_scope)),
            _ => {}
        }
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|a| a.starts_with("Basic "))
        .map(String::from);
    let user = match (auth, &app.opts.htpasswd) {
        (None, _) => None,
        (Some(a), Some(h)) => {
            let user = basic_user(h, Some(a)).await;
            if user.is_none() {
                return basic_challenge("incorrect username or password");
            }
            user
        }
        (Some(_), None) => return basic_challenge("this registry has no users: log out"),
    };
    let (token, claims) = t.issue(user.as_deref(), &scopes);
    let body = json!({
        "token": token,
        "access_token": token,
        "expires_in": claims.exp - claims.iat,
        "issued_at": crate::token::rfc3339(claims.iat),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn dispatch(
    app: &Arc<App>,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let route = parse(path).map_err(route_error)?;
    let store = app.store.clone();
    match (route, method.clone()) {
        (Route::Base, Method::GET | Method::HEAD) => Ok((StatusCode::OK, "{}").into_response()),
        (Route::Catalog, Method::GET) => {
            let all = blocking(move || Ok(store.catalog())).await?;
            Ok(paginated(
                all,
                q,
                "/v2/_catalog",
                |page| json!({"repositories": page}),
            ))
        }
        (Route::Tags { name }, Method::GET) => {
            let n = name.clone();
            let (exists, tags) =
                blocking(move || Ok((store.repo_exists(&n), store.tags(&n)))).await?;
            if !exists {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "NAME_UNKNOWN",
                    "repository name not known to registry",
                )
                .detail(json!({"name": name})));
            }
            let base = format!("/v2/{name}/tags/list");
            Ok(paginated(
                tags,
                q,
                &base,
                |page| json!({"name": name, "tags": page}),
            ))
        }
        (Route::Blob { name, digest }, m @ (Method::GET | Method::HEAD)) => {
            if let Some(up) = &app.opts.proxy {
                let (s2, n2, d2) = (store.clone(), name.clone(), digest.clone());
                if blocking(move || Ok(s2.blob_size(&n2, &d2).is_err())).await? {
                    match up.blob(&store, &name, &digest).await {
                        Ok(()) | Err(crate::proxy::ProxyError::NotFound) => {}
                        Err(e) => tracing::warn!(error = %e, "pull-through cache: upstream"),
                    }
                }
            }
            get_blob(store, name, digest, m == Method::HEAD, headers).await
        }
        (Route::UploadStart { .. } | Route::Upload { .. }, _)
        | (Route::Manifest { .. }, Method::PUT | Method::DELETE)
            if app.opts.proxy.is_some() =>
        {
            Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                "this registry is a pull-through cache: push to its upstream",
            ))
        }
        (Route::Blob { name, digest }, Method::DELETE) => {
            if !app.opts.delete {
                return Err(unsupported());
            }
            blocking(move || store.delete_blob(&name, &digest)).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Route::UploadStart { name }, Method::POST) => start_upload(store, name, q, body).await,
        (Route::Upload { name, id }, Method::PATCH) => {
            let (n, i) = (name.clone(), id.clone());
            let size = blocking(move || store.upload_size(&n, &i)).await?;
            if let Some(range) = headers
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
            {
                let start = range
                    .split('-')
                    .next()
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if start != Some(size) {
                    return Err(ApiError::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "BLOB_UPLOAD_INVALID",
                        format!("chunk starts at {range}, the upload holds {size} bytes"),
                    ));
                }
            }
            let size = append_body(&app.store, &name, &id, body).await?;
            Ok(upload_accepted(&name, &id, size))
        }
        (Route::Upload { name, id }, Method::PUT) => {
            let Some(want) = q.get("digest") else {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "DIGEST_INVALID",
                    "the digest query parameter is required",
                ));
            };
            let want: Digest = want
                .parse()
                .map_err(|_| route_error(RouteError::DigestInvalid(want.clone())))?;
            append_body(&app.store, &name, &id, body).await?;
            let (n, w) = (name.clone(), want.clone());
            blocking(move || store.upload_finish(&n, &id, &w)).await?;
            Ok(blob_created(&name, &want))
        }
        (Route::Upload { name, id }, Method::GET) => {
            let (n, i) = (name.clone(), id.clone());
            let size = blocking(move || store.upload_size(&n, &i)).await?;
            let mut r = upload_accepted(&name, &id, size);
            *r.status_mut() = StatusCode::NO_CONTENT;
            Ok(r)
        }
        (Route::Upload { name, id }, Method::DELETE) => {
            blocking(move || store.upload_cancel(&name, &id)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Route::Manifest { name, reference }, m @ (Method::GET | Method::HEAD)) => {
            if let Some(up) = &app.opts.proxy {
                let (s2, n2, r2) = (store.clone(), name.clone(), reference.clone());
                let have = blocking(move || {
                    Ok(match &r2 {
                        Reference::Digest(d) => s2.get_manifest(&n2, d).is_ok(),
                        // A tag is asked upstream each time (it may have moved); the
                        // cached one answers when the upstream cannot.
                        Reference::Tag(_) => false,
                    })
                })
                .await?;
                if !have {
                    match up.manifest(&store, &name, &reference).await {
                        Ok(_) | Err(crate::proxy::ProxyError::NotFound) => {}
                        Err(e) => tracing::warn!(error = %e, "pull-through cache: upstream"),
                    }
                }
            }
            let (digest, bytes, media) = blocking(move || {
                let d = match reference {
                    Reference::Digest(d) => d,
                    Reference::Tag(t) => store.resolve_tag(&name, &t)?,
                };
                let (b, m) = store.get_manifest(&name, &d)?;
                Ok((d, b, m))
            })
            .await?;
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, hv(&media));
            h.insert("Docker-Content-Digest", hv(&digest.to_string()));
            h.insert(header::CONTENT_LENGTH, hv(&bytes.len().to_string()));
            let body = if m == Method::HEAD {
                Body::empty()
            } else {
                Body::from(bytes)
            };
            Ok((StatusCode::OK, h, body).into_response())
        }
        (Route::Manifest { name, reference }, Method::PUT) => {
            put_manifest(store, name, reference, headers, body).await
        }
        (Route::Manifest { name, reference }, Method::DELETE) => {
            if !app.opts.delete {
                return Err(unsupported());
            }
            blocking(move || match reference {
                Reference::Digest(d) => store.delete_manifest(&name, &d),
                Reference::Tag(t) => store.delete_tag(&name, &t),
            })
            .await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Route::Referrers { name, digest }, Method::GET) => referrers(store, name, digest, q).await,
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{method} is not allowed here"),
        )),
    }
}

/// `n`/`last` pagination with a `Link` header to the next page.
fn paginated(
    all: Vec<String>,
    q: &HashMap<String, String>,
    base: &str,
    body: impl Fn(Vec<String>) -> Value,
) -> Response {
    let after: Vec<String> = match q.get("last") {
        Some(last) => all.into_iter().filter(|x| x > last).collect(),
        None => all,
    };
    let n = q.get("n").and_then(|n| n.parse::<usize>().ok());
    let (page, more) = match n {
        Some(n) if after.len() > n => (after[..n].to_vec(), true),
        _ => (after, false),
    };
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if more {
        if let (Some(n), Some(last)) = (n, page.last()) {
            h.insert(
                header::LINK,
                hv(&format!("<{base}?n={n}&last={last}>; rel=\"next\"")),
            );
        }
    }
    (StatusCode::OK, h, body(page).to_string()).into_response()
}

async fn get_blob(
    store: Store,
    name: String,
    digest: Digest,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let d = digest.clone();
    let (file, size) = blocking(move || store.blob_file(&name, &d)).await?;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| {
            let start = a.parse::<u64>().ok()?;
            let end = if b.is_empty() {
                size.checked_sub(1)?
            } else {
                b.parse::<u64>().ok()?.min(size.saturating_sub(1))
            };
            (start <= end && end < size).then_some((start, end))
        });
    let mut h = HeaderMap::new();
    h.insert("Docker-Content-Digest", hv(&digest.to_string()));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let (status, start, len) = match range {
        Some((s, e)) => {
            h.insert(header::CONTENT_RANGE, hv(&format!("bytes {s}-{e}/{size}")));
            (StatusCode::PARTIAL_CONTENT, s, e - s + 1)
        }
        None => (StatusCode::OK, 0, size),
    };
    h.insert(header::CONTENT_LENGTH, hv(&len.to_string()));
    if head {
        return Ok((status, h, Body::empty()).into_response());
    }
    let mut f = tokio::fs::File::from_std(file);
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    f.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 << 10);
    Ok((status, h, Body::from_stream(stream)).into_response())
}

/// Why a body could not be appended to an upload.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body itself broke off.
    #[error("reading the body: {0}")]
    Read(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Bytes gathered before one trip to the blocking pool writes them.
const WRITE_BATCH: usize = 1 << 20;

/// The upload writer while it opens or writes a batch on the blocking pool.
type Pending = tokio::task::JoinHandle<Result<crate::store::UploadWriter, StoreError>>;

/// The writer back once its batch is written.
async fn ready(p: Pending) -> Result<crate::store::UploadWriter, BodyError> {
    Ok(p.await.map_err(|e| BodyError::Read(e.to_string()))??)
}

/// [`ready`]; when the write failed (a full disk), the rest of the body is read and dropped
/// first, so the client gets the answer instead of a broken pipe.
async fn ready_or_drain<S, E>(
    p: Pending,
    stream: &mut S,
) -> Result<crate::store::UploadWriter, BodyError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    let r = ready(p).await;
    if r.is_err() {
        while let Some(Ok(_)) = stream.next().await {}
    }
    r
}

/// Append a body (a stream of chunks) to upload `id` of `name`, hashing as it goes: the file
/// is opened once and written in batches of about [`WRITE_BATCH`] on the blocking pool while
/// the next batch arrives (not one pool trip and open per network chunk, and receiving never
/// waits for the disk but by one batch). The upload's new size.
pub(crate) async fn write_body<S, E>(
    store: &Store,
    name: &str,
    id: &str,
    mut stream: S,
) -> Result<u64, BodyError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let (s, n, i) = (store.clone(), name.to_string(), id.to_string());
    let mut pending: Pending = tokio::task::spawn_blocking(move || s.upload_writer(&n, &i));
    let mut batch: Vec<bytes::Bytes> = Vec::new();
    let mut held = 0;
    loop {
        let failed = match stream.next().await {
            Some(Ok(chunk)) => {
                held += chunk.len();
                batch.push(chunk);
                if held < WRITE_BATCH {
                    continue;
                }
                None
            }
            Some(Err(e)) => Some(BodyError::Read(e.to_string())),
            None => {
                // The end: the last batch, then the size. (What arrived whole before a body
                // broke off is kept the same way: a client may resume from the size.)
                let mut w = ready_or_drain(pending, &mut stream).await?;
                return tokio::task::spawn_blocking(move || {
                    batch.iter().try_for_each(|c| w.write(c))?;
                    Ok::<_, StoreError>(w.finish())
                })
                .await
                .map_err(|e| BodyError::Read(e.to_string()))?
                .map_err(BodyError::from);
            }
        };
        let mut w = ready_or_drain(pending, &mut stream).await?;
        let chunks = std::mem::take(&mut batch);
        held = 0;
        if let Some(e) = failed {
            let _ = tokio::task::spawn_blocking(move || {
                chunks.iter().try_for_each(|c| w.write(c))?;
                Ok::<_, StoreError>(w.finish())
            })
            .await;
            return Err(e);
        }
        pending = tokio::task::spawn_blocking(move || {
            chunks.iter().try_for_each(|c| w.write(c))?;
            w.start_writeback();
            Ok(w)
        });
    }
}

async fn append_body(store: &Store, name: &str, id: &str, body: Body) -> Result<u64, ApiError> {
    write_body(store, name, id, body.into_data_stream())
        .await
        .map_err(|e| match e {
            BodyError::Read(r) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                format!("reading the body: {r}"),
            ),
            BodyError::Store(s) => s.into(),
        })
}

fn upload_accepted(name: &str, id: &str, size: u64) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::LOCATION,
        hv(&format!("/v2/{name}/blobs/uploads/{id}")),
    );
    h.insert(header::RANGE, hv(&format!("0-{}", size.saturating_sub(1))));
    h.insert("Docker-Upload-UUID", hv(id));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    (StatusCode::ACCEPTED, h).into_response()
}

fn blob_created(name: &str, d: &Digest) -> Response {
    let mut h = HeaderMap::new();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/blobs/{d}")));
    h.insert("Docker-Content-Digest", hv(&d.to_string()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    (StatusCode::CREATED, h).into_response()
}

async fn start_upload(
    store: Store,
    name: String,
    q: &HashMap<String, String>,
    body: Body,
) -> Result<Response, ApiError> {
    // Cross-repository mount: link the blob when the source repository has it.
    if let (Some(m), Some(from)) = (q.get("mount"), q.get("from")) {
        if let Ok(d) = m.parse::<Digest>() {
            let (s, n, f, dd) = (store.clone(), name.clone(), from.clone(), d.clone());
            let mounted = blocking(move || {
                if crate::route::name_ok(&f) && s.blob_size(&f, &dd).is_ok() {
                    s.link_blob(&n, &dd)?;
                    Ok(true)
                } else {
                    Ok(false)
                }
            })
            .await?;
            if mounted {
                return Ok(blob_created(&name, &d));
            }
        }
    }
    let (s, n) = (store.clone(), name.clone());
    let id = blocking(move || s.upload_start(&n)).await?;
    // A single-request (monolithic) upload: `POST ?digest=` with the whole blob.
    if let Some(want) = q.get("digest") {
        let want: Digest = want
            .parse()
            .map_err(|_| route_error(RouteError::DigestInvalid(want.clone())))?;
        append_body(&store, &name, &id, body).await?;
        let (s, n, w) = (store.clone(), name.clone(), want.clone());
        blocking(move || s.upload_finish(&n, &id, &w)).await?;
        return Ok(blob_created(&name, &want));
    }
    Ok(upload_accepted(&name, &id, 0))
}

async fn put_manifest(
    store: Store,
    name: String,
    reference: Reference,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let invalid = |why: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            "manifest invalid",
        )
        .detail(json!(why))
    };
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("a manifest may be at most {MAX_MANIFEST} bytes"),
            )
        })?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| v["mediaType"].as_str().map(String::from))
        .ok_or_else(|| invalid("no Content-Type and no mediaType".into()))?;
    let digest = Digest::of(&bytes);
    if let Reference::Digest(d) = &reference {
        if d != &digest {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
            )
            .detail(json!({"expected": d.to_string(), "got": digest.to_string()})));
        }
    }
    // What it references must be in the repository.
    let mut needed: Vec<(Digest, bool)> = Vec::new();
    let desc = |d: &Value| d["digest"].as_str().and_then(|s| s.parse::<Digest>().ok());
    if let Some(list) = v["manifests"].as_array() {
        for m in list {
            needed.push((
                desc(m)
                    .ok_or_else(|| invalid("a manifests entry without a valid digest".into()))?,
                true,
            ));
        }
    } else {
        if v.get("config").is_some() {
            needed.push((
                desc(&v["config"])
                    .ok_or_else(|| invalid("config without a valid digest".into()))?,
                false,
            ));
        }
        for l in v["layers"].as_array().into_iter().flatten() {
            needed.push((
                desc(l).ok_or_else(|| invalid("a layer without a valid digest".into()))?,
                false,
            ));
        }
    }
    let subject = v.get("subject").and_then(desc);
    let tag = match &reference {
        Reference::Tag(t) => Some(t.clone()),
        Reference::Digest(_) => None,
    };
    let n = name.clone();
    let sub = subject.clone();
    let stored = blocking(move || {
        for (d, manifest) in &needed {
            let ok = if *manifest {
                store.get_manifest(&n, d).is_ok()
            } else {
                store.blob_size(&n, d).is_ok()
            };
            if !ok {
                return Ok(Err(d.clone()));
            }
        }
        store
            .put_manifest(&n, tag.as_deref(), &bytes, &media, sub.as_ref())
            .map(Ok)
    })
    .await?;
    let digest = stored.map_err(|missing| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_BLOB_UNKNOWN",
            "blob unknown to registry",
        )
        .detail(json!({"digest": missing.to_string()}))
    })?;
    let mut h = HeaderMap::new();
    h.insert(
        header::LOCATION,
        hv(&format!("/v2/{name}/manifests/{digest}")),
    );
    h.insert("Docker-Content-Digest", hv(&digest.to_string()));
    if let Some(s) = subject {
        h.insert("OCI-Subject", hv(&s.to_string()));
    }
    Ok((StatusCode::CREATED, h).into_response())
}

async fn referrers(
    store: Store,
    name: String,
    subject: Digest,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let filter = q.get("artifactType").cloned();
    let f2 = filter.clone();
    let manifests = blocking(move || {
        let mut out = Vec::new();
        for d in store.referrers(&name, &subject) {
            let (bytes, media) = store.get_manifest(&name, &d)?;
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let artifact = v["artifactType"].as_str().or_else(|| v["config"]["mediaType"].as_str()).unwrap_or_default().to_string();
            if f2.as_deref().is_some_and(|f| f != artifact) {
                continue;
            }
            let mut desc = json!({"mediaType": media, "digest": d.to_string(), "size": bytes.len(), "artifactType": artifact});
            if let Some(a) = v.get("annotations") {
                desc["annotations"] = a.clone();
            }
            out.push(desc);
        }
        Ok(out)
    })
    .await?;
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
    );
    if filter.is_some() {
        h.insert(
            "OCI-Filters-Applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    let body = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    Ok((StatusCode::OK, h, body.to_string()).into_response())
}

#[cfg(test)]
mod token_tests {
    use super::*;
    use crate::token::{Access, TokenAuth};
    use tower::ServiceExt as _;

    fn app(dir: &std::path::Path) -> (axum::Router, Arc<TokenAuth>) {
        let policy = crate::policy::Policy::parse(
            "users:\n  alice:\n    \"team/*\": [pull, push]\n    \"_catalog\": [\"*\"]\n  bob:\n    \"team/*\": [pull]\n",
        )
        .unwrap();
        let t = Arc::new(
            TokenAuth::new(
                None,
                "reg".into(),
                std::time::Duration::from_secs(60),
                policy,
                None,
            )
            .unwrap(),
        );
        let opts = Options {
            delete: true,
            token: Some(t.clone()),
            ..Options::default()
        };
        (router(Store::open(dir).unwrap(), opts), t)
    }

    async fn call(r: &axum::Router, method: &str, uri: &str, token: Option<&str>) -> Response {
        let mut b = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "reg.test:5000");
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        r.clone()
            .oneshot(b.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn challenge(r: &Response) -> String {
        r.headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    fn scopes(s: &[&str]) -> Vec<Access> {
        s.iter().map(|x| Access::parse_scope(x).unwrap()).collect()
    }

    #[tokio::test]
    async fn routes_need_the_action_their_method_implies() {
        let dir = tempfile::tempdir().unwrap();
        let (r, t) = app(dir.path());
        let resp = call(&r, "GET", "/v2/", None).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&resp),
            r#"Bearer realm="http://reg.test:5000/auth/token",service="reg""#
        );
        let (bob, _) = t.issue(
            Some("bob"),
            &scopes(&["repository:team/app:pull,push,delete"]),
        );
        // Pull: authorised (the repository is simply unknown).
        let resp = call(&r, "GET", "/v2/team/app/tags/list", Some(&bob)).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        // Push and delete: not in bob's token; the challenge names what is needed.
        for (m, uri, action) in [
            ("POST", "/v2/team/app/blobs/uploads/", "push"),
            ("PUT", "/v2/team/app/manifests/v1", "push"),
            ("DELETE", "/v2/team/app/manifests/v1", "delete"),
        ] {
            let resp = call(&r, m, uri, Some(&bob)).await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{m} {uri}");
            let c = challenge(&resp);
            assert!(
                c.contains(&format!("scope=\"repository:team/app:{action}\""))
                    && c.contains("error=\"insufficient_scope\""),
                "{c}"
            );
        }
        // Another repository than the token's.
        let resp = call(&r, "GET", "/v2/team/other/tags/list", Some(&bob)).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        // The catalog needs registry:catalog:*.
        let resp = call(&r, "GET", "/v2/_catalog", Some(&bob)).await;
        assert!(challenge(&resp).contains("scope=\"registry:catalog:*\""));
        let (alice, _) = t.issue(Some("alice"), &scopes(&["registry:catalog:*"]));
        assert_eq!(
            call(&r, "GET", "/v2/_catalog", Some(&alice)).await.status(),
            StatusCode::OK
        );
        // Health and metrics stay open.
        assert_eq!(
            call(&r, "GET", "/healthz", None).await.status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn a_mount_needs_pull_on_its_source_and_the_realm_issues_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let (r, t) = app(dir.path());
        let store = Store::open(dir.path()).unwrap();
        let id = store.upload_start("team/src").unwrap();
        store.upload_append("team/src", &id, b"layer").unwrap();
        let d = Digest::of(b"layer");
        store.upload_finish("team/src", &id, &d).unwrap();
        let mount = format!("/v2/team/dst/blobs/uploads/?mount={d}&from=team/src");
        // Without pull on the source: an upload starts instead (202), nothing is linked.
        let (push_only, _) = t.issue(Some("alice"), &scopes(&["repository:team/dst:push"]));
        let resp = call(&r, "POST", &mount, Some(&push_only)).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        assert!(store.blob_size("team/dst", &d).is_err());
        let (both, _) = t.issue(
            Some("alice"),
            &scopes(&["repository:team/dst:push", "repository:team/src:pull"]),
        );
        let resp = call(&r, "POST", &mount, Some(&both)).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(store.blob_size("team/dst", &d).unwrap(), 5);

        // The realm: anonymous gets an empty grant; a foreign service is refused.
        let resp = call(
            &r,
            "GET",
            "/auth/token?service=reg&scope=repository:team/app:pull",
            None,
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["token"], v["access_token"]);
        assert_eq!(v["expires_in"], 60);
        let claims = t.verify(v["token"].as_str().unwrap()).unwrap();
        assert!(claims.access.is_empty() && claims.sub.is_empty());
        let resp = call(&r, "GET", "/auth/token?service=other", None).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
}
