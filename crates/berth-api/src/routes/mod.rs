//! The router: every Engine API route berth serves, with and without the `/v1.NN` prefix, and
//! small helpers shared by the per-resource route modules.

pub(crate) mod build;
mod buildkit;
mod commit;
mod compat;
mod containers;
mod hijack;
mod images;
mod json_body;
mod networks;
mod plugins;
mod query;
mod registry;
mod system;
mod volumes;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use futures::{Stream, StreamExt, TryStreamExt};
use tower::Layer;
use tower_http::trace::TraceLayer;

use crate::service::{ByteStream, Services};
use crate::version::version_middleware;

/// `DELETE /images/<name>` for an image named like a fixed image route.
macro_rules! delete_image {
    ($name:literal) => {
        |State(s): State<Services>, query::Q(q): query::Q<images::RemoveQuery>| async move {
            images::remove(&s, $name, q).await
        }
    };
}

/// Build the full service: version negotiation runs *before* routing (it strips `/v1.NN`), so
/// the routed API sits behind a router whose only job is that middleware.
pub fn app(services: Services) -> Router {
    app_with(services, Router::new())
}

/// [`app`] with `extra` routes served beside the Engine API's, behind the same version
/// negotiation (the binary adds berth extensions owned by other crates, e.g. the dashboard's
/// `/berth/ui/login`, to the listeners that should have them).
pub fn app_with(services: Services, extra: Router) -> Router {
    let kit = berth_buildkit::BuildKit::new(services.images.clone());
    let (k1, k2) = (kit.clone(), kit);
    let router = Router::new()
        .route(
            "/grpc",
            post(move |req: Request| buildkit::grpc(k1.clone(), req)),
        )
        .route(
            "/session",
            post(move |req: Request| buildkit::session(k2.clone(), req)),
        )
        .route("/build", axum::routing::post(build::build))
        .route("/build/prune", axum::routing::post(build::prune))
        .route("/commit", axum::routing::post(commit::commit))
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(system::events))
        .route("/system/df", get(system::df))
        .route("/plugins", get(plugins::list))
        .route("/plugins/privileges", get(plugins::install))
        .route("/plugins/pull", post(plugins::install))
        .route("/plugins/create", post(plugins::install))
        .route("/plugins/{name}", delete(plugins::named))
        .route("/plugins/{name}/json", get(plugins::named))
        .route("/plugins/{name}/set", post(plugins::set))
        .route("/plugins/{name}/enable", post(plugins::named))
        .route("/plugins/{name}/disable", post(plugins::named))
        .route("/plugins/{name}/push", post(plugins::named))
        .route("/plugins/{name}/upgrade", post(plugins::install))
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
            // HEAD after GET: `get` would also answer HEAD otherwise.
            get(volumes::archive_get)
                .head(volumes::archive_head)
                .put(volumes::archive_put),
        )
        .route("/containers/{id}/changes", get(volumes::changes))
        .route("/containers/{id}/export", get(volumes::export))
        .route("/networks", get(networks::list))
        // moby registers the list under `/networks/` too (its one trailing-slash route).
        .route("/networks/", get(networks::list))
        .route("/networks/create", axum::routing::post(networks::create))
        .route("/networks/prune", axum::routing::post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/swarm", axum::routing::any(networks::not_swarm))
        .route("/swarm/{*rest}", axum::routing::any(networks::not_swarm))
        .route("/auth", axum::routing::post(registry::auth))
        .route("/distribution/{*rest}", get(registry::distribution))
        .route(
            "/images/json",
            get(images::list).delete(delete_image!("json")),
        )
        .route(
            "/images/get",
            get(images::save_many).delete(delete_image!("get")),
        )
        .route(
            "/images/load",
            post(images::load).delete(delete_image!("load")),
        )
        .route(
            "/images/create",
            post(images::create).delete(delete_image!("create")),
        )
        .route(
            "/images/prune",
            post(images::prune).delete(delete_image!("prune")),
        )
        .route(
            "/images/search",
            get(images::search).delete(delete_image!("search")),
        )
        .route(
            "/images/{*rest}",
            get(images::get_named)
                .post(images::post_named)
                .delete(images::delete),
        )
        .route("/containers/json", get(containers::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}", delete(containers::remove))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/stats", get(containers::stats))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/attach/ws", get(hijack::attach_ws_route))
        .route("/containers/{id}/exec", post(containers::exec_create))
        // A legacy link: `DELETE /containers/{parent}/{alias}?link=1`.
        .route("/containers/{id}/{alias}", delete(containers::remove_link))
        .route("/exec/{id}/json", get(containers::exec_inspect))
        .route("/exec/{id}/start", post(containers::exec_start))
        .route("/exec/{id}/resize", post(containers::exec_resize))
        // berth's extension: an exec session over a websocket (browsers cannot hijack HTTP).
        .route("/berth/exec/{id}/ws", get(hijack::exec_ws_route))
        .fallback(not_found)
        // dockerd's MethodNotAllowedHandler is its not-found handler: 404, not 405.
        .method_not_allowed_fallback(not_found)
        .with_state(services)
        .merge(extra);
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

/// moby's text for a path no route matches (`pageNotFoundError`): the path is not repeated.
pub(crate) const PAGE_NOT_FOUND: &str = "page not found";

/// gorilla/mux without StrictSlash, as dockerd: a path no route matches (`/containers/json/`
/// included) and a wrong method on a known path are 404 "page not found".
async fn not_found() -> Response {
    crate::HttpError::from(crate::ApiError::not_found(PAGE_NOT_FOUND)).into_response()
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
