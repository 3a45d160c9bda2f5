//! The router: every Engine API route berth serves, with and without the `/v1.NN` prefix, and
//! small helpers shared by the per-resource route modules.

pub(crate) mod build;
mod commit;
mod containers;
mod images;
mod networks;
mod registry;
mod system;
mod volumes;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{Stream, StreamExt, TryStreamExt};
use tower::Layer;
use tower_http::trace::TraceLayer;

use crate::service::{ByteStream, Services};
use crate::version::version_middleware;

/// Build the full service: version negotiation runs *before* routing (it strips `/v1.NN`), so
/// the routed API sits behind a router whose only job is that middleware.
pub fn app(services: Services) -> Router {
    let router = Router::new()
        .route("/build", axum::routing::post(build::build))
        .route("/build/prune", axum::routing::post(build::prune))
        .route("/commit", axum::routing::post(commit::commit))
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(system::events))
        .route("/system/df", get(system::df))
        .route("/plugins", get(system::plugins))
        .route("/plugins/{name}/json", get(system::plugin_inspect))
        .route("/berth/system/check", axum::routing::post(system::check))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", axum::routing::post(volumes::create))
        .route("/volumes/prune", axum::routing::post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route(
            "/containers/{id}/archive",
            get(volumes::archive)
                .head(volumes::archive)
                .put(volumes::archive),
        )
        .route("/containers/{id}/changes", get(volumes::changes))
        .route("/containers/{id}/export", get(volumes::export))
        .route("/networks", get(networks::list))
        .route("/networks/create", axum::routing::post(networks::create))
        .route("/networks/prune", axum::routing::post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/{op}", axum::routing::post(networks::op))
        .route("/swarm", axum::routing::any(networks::not_swarm))
        .route("/swarm/{*rest}", axum::routing::any(networks::not_swarm))
        .route("/auth", axum::routing::post(registry::auth))
        .route("/distribution/{*rest}", get(registry::distribution))
        .route(
            "/images/{*rest}",
            get(images::get_dispatch)
                .post(images::post_dispatch)
                .delete(images::delete),
        )
        .route(
            "/containers/{id}",
            get(containers::get_one)
                .post(containers::post_one)
                .delete(containers::delete),
        )
        .route("/containers/{id}/attach/ws", get(containers::get_attach_ws))
        .route(
            "/containers/{id}/{op}",
            get(containers::get_op)
                .post(containers::post_op)
                .delete(containers::delete_op),
        )
        .route(
            "/exec/{*rest}",
            get(containers::exec_get).post(containers::exec_post),
        )
        .fallback(not_found)
        // dockerd's MethodNotAllowedHandler is its not-found handler: 404, not 405.
        .method_not_allowed_fallback(not_found)
        .with_state(services);
    let router = axum::middleware::from_fn(options_ok).layer(router);
    let versioned = axum::middleware::from_fn(version_middleware).layer(router);
    Router::new()
        .fallback_service(versioned)
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::info_span!("api", method = %req.method(), path = %req.uri().path())
        }))
}

/// dockerd answers `OPTIONS` on any path with an empty 200 (its CORS preflight route).
async fn options_ok(req: Request, next: axum::middleware::Next) -> Response {
    if req.method() == axum::http::Method::OPTIONS {
        return StatusCode::OK.into_response();
    }
    next.run(req).await
}

async fn not_found(req: Request) -> Response {
    crate::ApiError::not_found(format!("page not found: {}", req.uri().path())).into_response()
}

/// Query string as ordered pairs (repeated keys allowed: `names=a&names=b`).
#[derive(Debug, Default)]
pub(crate) struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    pub fn from_uri(uri: &axum::http::Uri) -> Result<QueryPairs, crate::ApiError> {
        let q = uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(q)?;
        Ok(QueryPairs(pairs))
    }
    /// The first value of `k`, as Go's `r.FormValue` (docker-py sends `dockerfile` twice when
    /// the Dockerfile lives outside the context; the first names it).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
    pub fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn flag(&self, k: &str) -> bool {
        crate::filters::query_bool(self.get(k))
    }
    pub fn filters(&self) -> Result<crate::Filters, crate::ApiError> {
        crate::Filters::parse(self.get("filters").unwrap_or(""))
    }
}

fn serde_urlencoded_pairs(q: &str) -> Result<Vec<(String, String)>, crate::ApiError> {
    use axum::extract::Query;
    let uri: axum::http::Uri = format!("/?{q}")
        .parse()
        .map_err(|e| crate::ApiError::invalid(format!("invalid query string: {e}")))?;
    Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|Query(v)| v)
        .map_err(|e| crate::ApiError::invalid(format!("invalid query string: {e}")))
}

/// A request body as a [`ByteStream`].
pub(crate) fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// A `200` response streaming newline-separated JSON objects.
pub(crate) fn json_lines<S, T>(stream: S) -> Response
where
    S: Stream<Item = T> + Send + 'static,
    T: serde::Serialize,
{
    let body = stream.map(|v| {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(bytes::Bytes::from(line))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}
