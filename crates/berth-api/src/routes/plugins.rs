//! `/plugins/*`: berth runs no managed (v2) plugins. The list is empty, a named plugin is
//! dockerd's 404, bodies are checked first as dockerd checks them, and installing one is
//! refused with a clear 501 instead of a bare "page not found".

use axum::body::Bytes;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::{ApiError, HttpError};

/// dockerd's answer for a plugin that is not installed.
fn not_found(name: &str) -> HttpError {
    ApiError::not_found(format!("plugin {name:?} not found")).into()
}

/// `GET /plugins`: always empty (moby's integration harness lists plugins before every test
/// and fails on a 404).
pub(super) async fn list() -> Response {
    Json(Vec::<serde_json::Value>::new()).into_response()
}

/// `GET /plugins/{name}/json`, `POST /plugins/{name}/enable|disable|push`,
/// `DELETE /plugins/{name}`: no plugin exists.
pub(super) async fn named(Path(name): Path<String>) -> HttpError {
    not_found(&name)
}

/// `POST /plugins/{name}/set`: the body (a JSON list of `key=value`) is decoded first, with
/// Go's texts, as dockerd does; then the plugin is not found.
pub(super) async fn set(Path(name): Path<String>, body: Bytes) -> Result<Response, HttpError> {
    let _: Vec<String> = super::json_body::decode(&body)?;
    Err(not_found(&name))
}

/// `POST /plugins/pull|create|{name}/upgrade`, `GET /plugins/privileges`: berth cannot
/// install plugins.
pub(super) async fn install() -> HttpError {
    ApiError::not_implemented(
        "berth does not run managed plugins: install the feature as a container or use a \
         built-in driver",
    )
    .into()
}
