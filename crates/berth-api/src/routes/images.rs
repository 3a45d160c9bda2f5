//! Image routes. The fixed ones (`json`, `get`, `load`, `create`, `prune`, `search`) are routes of their
//! own; image names may contain `/` and `:`, so `/images/{*rest}` is split here at its last
//! segment (`json`, `history`, `get`, `tag`, `push`).

use axum::body::Body;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_oci::Reference;

use serde::{Deserialize, Serialize};

use super::query::{flag, FiltersQuery, Q};
use super::{body_stream, json_lines, QueryPairs, PAGE_NOT_FOUND};
use crate::filters::filter_images;
use crate::service::{ImageListOptions, ImportOptions, SearchOptions, Services};
use crate::version::ApiVersion;
use crate::{ApiError, ApiResult, Filters, HttpResult, ImageInspect};

/// `GET /images/json`.
#[derive(Deserialize)]
pub(super) struct ListQuery {
    #[serde(default, deserialize_with = "flag")]
    all: bool,
    #[serde(default, deserialize_with = "flag")]
    digests: bool,
    #[serde(default, rename = "shared-size", deserialize_with = "flag")]
    shared_size: bool,
    #[serde(default)]
    filters: String,
}

/// A listed image as API version `ver` shows it: `VirtualSize` (= `Size`) before 1.44, as
/// moby's `getImagesJSON` (bollard's current model has no such field).
#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    image: crate::models::ImageSummary,
    #[serde(rename = "VirtualSize", skip_serializing_if = "Option::is_none")]
    virtual_size: Option<i64>,
}

pub(super) async fn list(
    State(s): State<Services>,
    Extension(ver): Extension<ApiVersion>,
    Q(q): Q<ListQuery>,
) -> HttpResult<Response> {
    let filters = Filters::parse(&q.filters)?;
    let opts = ImageListOptions {
        all: q.all,
        digests: q.digests,
        shared_size: q.shared_size,
    };
    let mut images = filter_images(s.images.list(opts).await?, &filters)?;
    if !q.shared_size {
        for i in &mut images {
            i.shared_size = -1;
        }
    }
    images.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let old = ver.before("1.44");
    let listed: Vec<Listed> = images
        .into_iter()
        .map(|image| Listed {
            virtual_size: old.then_some(image.size),
            image,
        })
        .collect();
    Ok(Json(listed).into_response())
}

/// `GET /images/get?names=a&names=b` (repeated, so read as pairs).
pub(super) async fn save_many(State(s): State<Services>, uri: Uri) -> HttpResult<Response> {
    Ok(save(&s, QueryPairs::from_uri(&uri)?.all("names")).await?)
}

/// `POST /images/load`.
#[derive(Deserialize)]
pub(super) struct LoadQuery {
    #[serde(default, deserialize_with = "flag")]
    quiet: bool,
}

pub(super) async fn load(
    State(s): State<Services>,
    Q(q): Q<LoadQuery>,
    body: Body,
) -> HttpResult<Response> {
    // As moby: a load that fails answers 200 with the error in the JSON stream
    // (docker-py raises ImageLoadError from it, the docker CLI prints it, exit 1).
    let msgs: Vec<serde_json::Value> = match s.images.load(body_stream(body), q.quiet).await {
        Ok(lines) => lines
            .into_iter()
            .map(|l| serde_json::json!({ "stream": format!("{l}\n") }))
            .collect(),
        Err(e) => vec![serde_json::json!({
            "errorDetail": { "message": e.message },
            "error": e.message,
        })],
    };
    Ok(json_lines(futures::stream::iter(msgs)))
}

/// `POST /images/create`: pull (`fromImage`) or import (`fromSrc=-`); `changes` repeats, so
/// the query is read as pairs.
pub(super) async fn create(State(s): State<Services>, req: Request) -> HttpResult<Response> {
    let q = QueryPairs::from_uri(req.uri())?;
    if let Some(from) = q.get("fromImage") {
        let auth = super::registry::registry_auth(req.headers());
        return super::registry::pull(&s, from, &q, auth).await;
    }
    Ok(import(&s, q, req.into_body()).await?)
}

pub(super) async fn prune(
    State(s): State<Services>,
    Q(q): Q<FiltersQuery>,
) -> HttpResult<Response> {
    let f = q.parse()?;
    Ok(Json(s.images.prune(&f).await?).into_response())
}

/// `GET /images/search?term=&limit=&filters=`.
#[derive(Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    term: String,
    #[serde(default)]
    limit: String,
    #[serde(default)]
    filters: String,
}

pub(super) async fn search(
    State(s): State<Services>,
    headers: axum::http::HeaderMap,
    Q(q): Q<SearchQuery>,
) -> HttpResult<Response> {
    // As moby: a limit that is not a number is refused with strconv's text.
    let limit = match q.limit.trim() {
        "" => None,
        l => Some(l.parse::<i64>().map_err(|_| {
            ApiError::invalid(format!("strconv.Atoi: parsing {l:?}: invalid syntax"))
        })?),
    };
    let opts = SearchOptions {
        term: q.term,
        limit,
        filters: Filters::parse(&q.filters)?,
        registry_auth: super::registry::registry_auth(&headers),
    };
    Ok(Json(s.images.search(opts).await?).into_response())
}

/// `GET /images/{name}/json|history|get`: names hold slashes, so one catch-all split at its
/// last segment.
pub(super) async fn get_named(
    State(s): State<Services>,
    Extension(ver): Extension<ApiVersion>,
    Path(rest): Path<String>,
) -> HttpResult<Response> {
    let (name, op) = split_op(&rest)?;
    match op {
        "json" => Ok(Json(inspect_for(s.images.inspect(name).await?, ver)).into_response()),
        "history" => Ok(Json(s.images.history(name).await?).into_response()),
        "get" => Ok(save(&s, vec![name.to_string()]).await?),
        _ => Err(ApiError::not_found(PAGE_NOT_FOUND).into()),
    }
}

/// An image inspect as API version `ver` shows it: `VirtualSize` before 1.44, as moby's
/// `getImagesByName`. Unlike dockerd ≥ 25, the legacy `Container`/`ContainerConfig` stay at
/// every version (as the legacy event fields do): docker-compose 1.29 negotiates the server's
/// newest version and reads `ContainerConfig` on every recreate, so dropping it at 1.45
/// crashes compose mid-recreate with the old container stopped and renamed. Extra fields harm
/// no client.
fn inspect_for(mut img: ImageInspect, ver: ApiVersion) -> ImageInspect {
    if ver.before("1.44") {
        img.virtual_size = Some(img.size);
    }
    img
}

/// `POST /images/{name}/tag?repo=&tag=`.
#[derive(Deserialize)]
pub(super) struct TagQuery {
    #[serde(default)]
    repo: String,
    #[serde(default)]
    tag: String,
}

/// `POST /images/{name}/tag|push`.
pub(super) async fn post_named(
    State(s): State<Services>,
    Path(rest): Path<String>,
    req: Request,
) -> HttpResult<Response> {
    let (name, op) = split_op(&rest)?;
    let pairs = QueryPairs::from_uri(req.uri())?;
    match op {
        "tag" => {
            let q: TagQuery = super::query::parse(&pairs)?;
            validate_tag_target(&q.repo, &q.tag)?;
            s.images.tag(name, &q.repo, &q.tag).await?;
            Ok(StatusCode::CREATED.into_response())
        }
        "push" => {
            let auth = super::registry::registry_auth(req.headers());
            super::registry::push(&s, name, &pairs, auth).await
        }
        _ => Err(ApiError::not_found(PAGE_NOT_FOUND).into()),
    }
}

/// `DELETE /images/{name}`.
#[derive(Deserialize)]
pub(super) struct RemoveQuery {
    #[serde(default, deserialize_with = "flag")]
    force: bool,
    #[serde(default, deserialize_with = "flag")]
    noprune: bool,
}

pub(super) async fn delete(
    State(s): State<Services>,
    Path(name): Path<String>,
    Q(q): Q<RemoveQuery>,
) -> HttpResult<Response> {
    remove(&s, &name, q).await
}

/// `DELETE` of an image whose name is also a fixed route (`json`, `get`, `load`, `create`,
/// `prune`).
pub(super) async fn remove(s: &Services, name: &str, q: RemoveQuery) -> HttpResult<Response> {
    let items = s.images.remove(name, q.force, q.noprune).await?;
    Ok(Json(items).into_response())
}

/// `busybox:latest/json` → (`busybox:latest`, `json`).
fn split_op(rest: &str) -> ApiResult<(&str, &str)> {
    match rest.rsplit_once('/') {
        Some((name, op)) if !name.is_empty() => Ok((name, op)),
        _ => Err(ApiError::not_found(PAGE_NOT_FOUND)),
    }
}

/// Docker's checks on `POST /images/{name}/tag?repo=&tag=`.
pub(super) fn validate_tag_target(repo: &str, tag: &str) -> ApiResult<()> {
    if repo.is_empty() {
        return Err(ApiError::invalid(
            "repository name must have at least one component",
        ));
    }
    let r = Reference::parse(repo).map_err(|e| ApiError::invalid(e.to_string()))?;
    if r.digest.is_some() {
        return Err(ApiError::invalid(
            "refusing to create a tag with a digest reference",
        ));
    }
    if !tag.is_empty() {
        if r.tag.is_some() {
            return Err(ApiError::invalid(format!(
                "invalid reference format: {repo}:{tag}"
            )));
        }
        if !berth_oci::reference::is_valid_tag(tag) {
            return Err(ApiError::invalid(format!("invalid tag format: {tag:?}")));
        }
    }
    Ok(())
}

async fn save(s: &Services, names: Vec<String>) -> ApiResult<Response> {
    if names.is_empty() {
        return Err(ApiError::invalid(
            "no images named: pass one or more `names`",
        ));
    }
    let stream = s.images.save(names).await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn import(s: &Services, q: QueryPairs, body: Body) -> ApiResult<Response> {
    if let Some(src) = q.get("fromSrc") {
        if src != "-" {
            return Err(ApiError::not_implemented(
                "importing from a URL is not supported: stream the archive with fromSrc=-",
            ));
        }
        let opts = ImportOptions {
            repo: q.get("repo").unwrap_or("").to_string(),
            tag: q.get("tag").unwrap_or("").to_string(),
            changes: q.all("changes"),
            message: q.get("message").unwrap_or("").to_string(),
            platform: q.get("platform").unwrap_or("").to_string(),
        };
        if !opts.repo.is_empty() {
            validate_tag_target(&opts.repo, &opts.tag)?;
        }
        let id = s.images.import(body_stream(body), opts).await?;
        return Ok(json_lines(futures::stream::iter(vec![
            serde_json::json!({ "status": id }),
        ])));
    }
    Err(ApiError::invalid(
        "POST /images/create needs fromImage or fromSrc",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_targets() {
        assert!(validate_tag_target("busybox", "v1").is_ok());
        assert!(validate_tag_target("example.com:5000/a/b", "").is_ok());
        assert!(validate_tag_target("", "x").is_err());
        assert!(validate_tag_target("Busy", "x").is_err());
        assert!(validate_tag_target("busybox", "bad tag").is_err());
        assert!(validate_tag_target(&format!("b@sha256:{}", "a".repeat(64)), "").is_err());
    }

    #[test]
    fn ops_split_on_last_slash() {
        assert_eq!(split_op("a/b/c:1/json").unwrap(), ("a/b/c:1", "json"));
        assert!(split_op("json").is_err());
    }
}
