//! Volume routes (`/volumes`, `/volumes/create`, `/volumes/prune`, `/volumes/{name}`) and the
//! container filesystem routes (`/containers/{id}/archive|changes|export`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bollard_stubs::models::VolumePruneResponse;
use serde::Deserialize;

use super::body_stream;
use super::query::{flag, FiltersQuery, Q};
use crate::service::Services;
use crate::version::ApiVersion;
use crate::volume_service::{
    ExtractOptions, PathStat, VolumeCreateBody, VolumeFilter, PRUNE_FILTERS,
};
use crate::{ApiError, ApiResult, HttpResult, VolumeList};

pub(super) async fn create(
    State(s): State<Services>,
    body: axum::body::Bytes,
) -> HttpResult<Response> {
    let req: VolumeCreateBody = super::json_body::decode(&body)?;
    let v = s.volumes.create(req).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub(super) async fn list(State(s): State<Services>, Q(q): Q<FiltersQuery>) -> HttpResult<Response> {
    let f = VolumeFilter::compile(&q.parse()?)?;
    let mut out = Vec::new();
    for mut v in s.volumes.list().await? {
        if f.matches(&v) {
            // RefCount was only for `dangling`; Docker's list has no UsageData.
            v.usage_data = None;
            out.push(v);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(VolumeList {
        volumes: out,
        warnings: None,
    })
    .into_response())
}

pub(super) async fn inspect(
    State(s): State<Services>,
    Path(name): Path<String>,
) -> HttpResult<Response> {
    Ok(Json(s.volumes.inspect(&name).await?).into_response())
}

/// `DELETE /volumes/{name}`.
#[derive(Deserialize)]
pub(super) struct RemoveQuery {
    #[serde(default, deserialize_with = "flag")]
    force: bool,
}

pub(super) async fn remove(
    State(s): State<Services>,
    Path(name): Path<String>,
    Q(q): Q<RemoveQuery>,
) -> HttpResult<Response> {
    s.volumes.remove(&name, q.force).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /volumes/prune`: anonymous volumes only unless `all=true` (API ≥ 1.42, as docker
/// 23+); older clients get the old behaviour of pruning named volumes too.
pub(super) async fn prune(
    State(s): State<Services>,
    Extension(ver): Extension<ApiVersion>,
    Q(q): Q<FiltersQuery>,
) -> HttpResult<Response> {
    let f = q.parse()?;
    f.validate(PRUNE_FILTERS)?;
    let all = f.bool_value("all")?.unwrap_or(false) || ver.before("1.42");
    let r = s.volumes.prune(&f, all).await?;
    // Both counts are sent even when nothing was pruned.
    Ok(Json(VolumePruneResponse {
        volumes_deleted: Some(r.volumes_deleted.unwrap_or_default()),
        space_reclaimed: Some(r.space_reclaimed.unwrap_or(0)),
    })
    .into_response())
}

/// Standard base64 (the stat header); tiny, so no dependency.
fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn stat_header(st: &PathStat) -> (HeaderName, HeaderValue) {
    let json = serde_json::to_vec(st).unwrap_or_default();
    let v = HeaderValue::from_str(&base64(&json)).unwrap_or(HeaderValue::from_static(""));
    (HeaderName::from_static("x-docker-container-path-stat"), v)
}

/// `/containers/{id}/archive`: the container path and, for PUT, how to extract.
#[derive(Deserialize)]
pub(super) struct ArchiveQuery {
    #[serde(default)]
    path: String,
    #[serde(default, rename = "noOverwriteDirNonDir", deserialize_with = "flag")]
    no_overwrite_dir_non_dir: bool,
    #[serde(default, rename = "copyUIDGID", deserialize_with = "flag")]
    copy_uid_gid: bool,
}

impl ArchiveQuery {
    fn path(&self) -> ApiResult<String> {
        match self.path.as_str() {
            "" => Err(ApiError::invalid(
                "path query parameter is required: ?path=<container path>",
            )),
            p => Ok(p.to_string()),
        }
    }
}

/// `HEAD /containers/{id}/archive`: the path's stat, in a header.
pub(super) async fn archive_head(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<ArchiveQuery>,
) -> HttpResult<Response> {
    let st = s.container_fs.stat_path(&id, &q.path()?).await?;
    let (k, v) = stat_header(&st);
    Ok(([(k, v)], StatusCode::OK).into_response())
}

/// `GET /containers/{id}/archive`: the path as a tar stream, its stat in a header.
pub(super) async fn archive_get(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<ArchiveQuery>,
) -> HttpResult<Response> {
    let (st, body) = s.container_fs.get_archive(&id, &q.path()?).await?;
    let (k, v) = stat_header(&st);
    Ok((
        [
            (k, v),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-tar"),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// `PUT /containers/{id}/archive`: extract the tar body at the path.
pub(super) async fn archive_put(
    State(s): State<Services>,
    Path(id): Path<String>,
    Q(q): Q<ArchiveQuery>,
    body: Body,
) -> HttpResult<Response> {
    let opts = ExtractOptions {
        path: q.path()?,
        no_overwrite_dir_non_dir: q.no_overwrite_dir_non_dir,
        copy_uid_gid: q.copy_uid_gid,
    };
    s.container_fs
        .put_archive(&id, opts, body_stream(body))
        .await?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn changes(
    State(s): State<Services>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    Ok(Json(s.container_fs.changes(&id).await?).into_response())
}

pub(super) async fn export(
    State(s): State<Services>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    let body = s.container_fs.export(&id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
