//! Network routes: `/networks`, `/networks/create`, `/networks/prune`, `/networks/{id}` and
//! `/networks/{id}/connect|disconnect`.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bollard_stubs::models::NetworkPruneResponse;
use serde::de::DeserializeOwned;

use super::QueryPairs;
use crate::network_service::{NetworkFilter, NETWORK_PRUNE_FILTERS};
use crate::service::Services;
use crate::{ApiError, ApiResult, HttpResult};

fn body<T: DeserializeOwned>(b: &[u8]) -> ApiResult<T> {
    super::json_body::decode(b)
}

pub(super) async fn create(
    State(s): State<Services>,
    b: axum::body::Bytes,
) -> HttpResult<Response> {
    let req: bollard_stubs::models::NetworkCreateRequest = body(&b)?;
    let r = s.networks.network_create(req).await?;
    Ok((StatusCode::CREATED, Json(r)).into_response())
}

pub(super) async fn list(State(s): State<Services>, req: Request) -> HttpResult<Response> {
    let q = QueryPairs::from_uri(req.uri())?;
    let f = NetworkFilter::compile(&q.filters()?)?;
    let mut out = Vec::new();
    for n in s.networks.network_list().await? {
        if f.matches(&n) {
            out.push(n);
        }
    }
    Ok(Json(out).into_response())
}

pub(super) async fn inspect(
    State(s): State<Services>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    Ok(Json(s.networks.network_inspect(&id).await?).into_response())
}

pub(super) async fn remove(
    State(s): State<Services>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    s.networks.network_remove(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn prune(State(s): State<Services>, req: Request) -> HttpResult<Response> {
    let q = QueryPairs::from_uri(req.uri())?;
    let f = q.filters()?;
    f.validate(NETWORK_PRUNE_FILTERS)?;
    let names = s.networks.network_prune(&f).await?;
    Ok(Json(NetworkPruneResponse {
        networks_deleted: Some(names),
    })
    .into_response())
}

/// `POST /networks/{id}/connect`.
pub(super) async fn connect(
    State(s): State<Services>,
    Path(id): Path<String>,
    b: axum::body::Bytes,
) -> HttpResult<Response> {
    s.networks.network_connect(&id, body(&b)?).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /networks/{id}/disconnect`.
pub(super) async fn disconnect(
    State(s): State<Services>,
    Path(id): Path<String>,
    b: axum::body::Bytes,
) -> HttpResult<Response> {
    s.networks.network_disconnect(&id, body(&b)?).await?;
    Ok(StatusCode::OK.into_response())
}

/// `/swarm*`: berth is never a swarm node; Docker answers a non-swarm node's requests with
/// 503 (clients such as docker-py's `leave_swarm(force=True)` rely on that).
pub(super) async fn not_swarm(req: Request) -> HttpResult<Response> {
    let msg = if req.uri().path().ends_with("/leave") {
        "This node is not part of a swarm"
    } else {
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
    };
    Err(ApiError::unavailable(msg).into())
}
