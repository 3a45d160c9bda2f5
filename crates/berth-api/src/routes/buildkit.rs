//! `POST /grpc` and `POST /session`: the two connections a BuildKit client (buildx, Compose v2)
//! hijacks, as dockerd serves them — `101 Switching Protocols` to `h2c`, then the upgraded
//! connection goes to berth-buildkit: on `/grpc` berth serves BuildKit's gRPC services, on
//! `/session` the client serves its files and berth calls them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_buildkit::BuildKit;
use hyper_util::rt::TokioIo;

use crate::{ApiError, HttpResult};

fn wants_h2c(h: &HeaderMap, route: &str) -> Result<(), ApiError> {
    match h.get(header::UPGRADE).and_then(|v| v.to_str().ok()) {
        Some(p) if p.eq_ignore_ascii_case("h2c") => Ok(()),
        Some(p) => Err(ApiError::invalid(format!(
            "protocol {p} not supported on {route}: BuildKit's connections upgrade to h2c"
        ))),
        None => Err(ApiError::invalid(format!(
            "no upgrade proto in request: {route} is BuildKit's, reached with Upgrade: h2c"
        ))),
    }
}

fn switching() -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "h2c")
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `POST /grpc`: BuildKit's Control and gateway services over HTTP/2 on the hijacked connection.
pub(super) async fn grpc(kit: Arc<BuildKit>, mut req: Request) -> HttpResult<Response> {
    wants_h2c(req.headers(), "/grpc")?;
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on.await {
            Ok(up) => {
                if let Err(e) = berth_buildkit::serve_grpc(kit, TokioIo::new(up)).await {
                    tracing::debug!(error = %e, "buildkit grpc connection ended");
                }
            }
            Err(e) => tracing::warn!(error = %e, "buildkit grpc upgrade failed"),
        }
    });
    Ok(switching())
}

/// `POST /session`: a client's BuildKit session (file sync, auth, secrets), berth the HTTP/2
/// client on the hijacked connection.
pub(super) async fn session(kit: Arc<BuildKit>, mut req: Request) -> HttpResult<Response> {
    wants_h2c(req.headers(), "/session")?;
    if req
        .headers()
        .get(berth_buildkit::session::HEADER_UUID)
        .is_none_or(|v| v.is_empty())
    {
        return Err(ApiError::invalid(format!(
            "a BuildKit session needs the {} header",
            berth_buildkit::session::HEADER_UUID
        ))
        .into());
    }
    let headers = req.headers().clone();
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on.await {
            Ok(up) => {
                if let Err(e) = kit.sessions.clone().serve(TokioIo::new(up), headers).await {
                    tracing::debug!(error = %e, "buildkit session ended");
                }
            }
            Err(e) => tracing::warn!(error = %e, "buildkit session upgrade failed"),
        }
    });
    Ok(switching())
}
