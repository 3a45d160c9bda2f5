//! The narrow service traits the routes call (implemented by berth-daemon's engine, and by
//! fakes in tests), plus the request/response types bollard-stubs does not model well.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bollard_stubs::models::{
    EventMessage, ImageConfig, ImageDeleteResponseItem, ImageHistoryResponseItem,
    ImageInspectRootFs, ImagePruneResponse, ImageSummary, SystemInfo, SystemVersion,
};
use bytes::Bytes;
use futures::Stream;
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::filters::Filters;

/// A streamed request or response body (tar archives).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Read a request body to its end, dropping it: an error answered while a client is still
/// uploading (a build context) reaches it as a broken pipe instead of the error.
pub async fn drain(mut body: ByteStream) {
    use futures::StreamExt;
    while let Some(chunk) = body.next().await {
        if chunk.is_err() {
            break;
        }
    }
}
/// A stream of Docker JSON messages (pull, push, build).
pub type JsonStream = Pin<Box<dyn Stream<Item = JsonMessage> + Send>>;

/// One line of Docker's JSON message streams (moby's `jsonmessage.JSONMessage`): only the
/// fields set are sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<JsonAux>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JsonMessage {
    /// `{"stream": text}` (build output).
    pub fn stream(text: impl Into<String>) -> Self {
        Self {
            stream: Some(text.into()),
            ..Default::default()
        }
    }

    /// `{"id": id, "status": status}` (`id` left out when None).
    pub fn status(id: Option<&str>, status: impl Into<String>) -> Self {
        Self {
            id: id.map(str::to_string),
            status: Some(status.into()),
            ..Default::default()
        }
    }

    /// Docker's in-stream error: `{"errorDetail": {"message": m}, "error": m}`.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            error_detail: Some(ErrorDetail {
                code: None,
                message: message.clone(),
            }),
            error: Some(message),
            ..Default::default()
        }
    }
}

/// `progressDetail` of a progress line (`{}` when there is nothing to count).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// `errorDetail` of an in-stream error (a failed RUN carries its exit code).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ErrorDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    pub message: String,
}

/// `aux` of a JSON message: the pushed tag's digest, or the built image's ID.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum JsonAux {
    Pushed {
        #[serde(rename = "Tag")]
        tag: String,
        #[serde(rename = "Digest")]
        digest: String,
        #[serde(rename = "Size")]
        size: u64,
    },
    Built {
        #[serde(rename = "ID")]
        id: String,
    },
}
/// A live stream of engine events.
pub type EventStream = Pin<Box<dyn Stream<Item = EventMessage> + Send>>;

/// `GET /images/json` options the service must honour (filters are applied by the route).
#[derive(Clone, Debug, Default)]
pub struct ImageListOptions {
    pub all: bool,
    pub digests: bool,
    pub shared_size: bool,
}

/// `POST /images/create?fromSrc=…` (docker import).
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Repository to tag the result with (`repo` query), may be empty.
    pub repo: String,
    pub tag: String,
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=b`, ...) applied to the config.
    pub changes: Vec<String>,
    /// Commit message, stored as the history comment.
    pub message: String,
    pub platform: String,
}

/// `POST /commit` (docker commit).
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    /// Container ID, ID prefix or name.
    pub container: String,
    /// Repository to tag the new image with, may be empty (no tag).
    pub repo: String,
    pub tag: String,
    /// Commit message (the history entry's comment).
    pub comment: String,
    pub author: String,
    /// Freeze a running container while its changes are read (Docker's default: true).
    pub pause: bool,
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=b`, ...) applied to the config.
    pub changes: Vec<String>,
    /// The request body (Docker's container `Config`), None when absent or empty.
    pub config: Option<bollard_stubs::models::ContainerConfig>,
}

/// `POST /images/create?fromImage=…` (docker pull).
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    pub from_image: String,
    pub tag: String,
    pub platform: String,
    /// The raw `X-Registry-Auth` header (base64 JSON), if sent.
    pub registry_auth: Option<String>,
}

/// `GET /images/search?term=&limit=&filters=` (docker search).
#[derive(Clone, Debug, Default)]
pub struct SearchOptions {
    /// `name`, or `host[:port]/name` to search that registry instead of Docker Hub.
    pub term: String,
    /// None: the registry's default (25).
    pub limit: Option<i64>,
    /// `is-official`, `is-automated`, `stars` (validated by the service).
    pub filters: crate::Filters,
    /// The raw `X-Registry-Auth` header (base64 JSON), if sent.
    pub registry_auth: Option<String>,
}

/// `POST /images/{name}/push?tag=` (docker push).
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    pub name: String,
    /// Empty: every tag of the repository.
    pub tag: String,
    pub registry_auth: Option<String>,
}

/// `POST /auth` body (Docker's AuthConfig).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct AuthRequest {
    pub username: String,
    pub password: String,
    pub auth: String,
    pub email: String,
    pub serveraddress: String,
    pub identitytoken: String,
    pub registrytoken: String,
}

/// `GET /images/{name}/json`. Own type because bollard's `Created` changes type with features.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parent: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// RFC 3339 with nanoseconds, as Docker prints it.
    pub created: String,
    /// The container the image was committed from (moby's V1 `container`), `""` when none
    /// (printed even then, as dockerd 20.10 does, so `{{.Container}}` formats).
    pub container: String,
    /// The config of that container, zero-valued when the image has none (dockerd 20.10's
    /// shape; kept at every API version, see the image inspect route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_config: Option<crate::legacy_config::LegacyContainerConfig>,
    pub docker_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    pub config: ImageConfig,
    pub architecture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    pub os: String,
    pub size: i64,
    /// Equal to `size`; API < 1.44 only (set by the route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<i64>,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: ImageInspectRootFs,
    pub metadata: ImageMetadata,
}

/// `GraphDriver` of an image inspect.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub name: String,
    pub data: std::collections::BTreeMap<String, String>,
}

/// `Metadata` of an image inspect.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    /// RFC 3339 time of the last tag operation, or Go's zero time.
    pub last_tag_time: String,
}

/// Disk usage as the engine knows it; the route renders both the legacy (`LayersSize`,
/// `Images`, ...) and the 1.52+ (`ImagesUsage`, ...) shapes from it.
#[derive(Clone, Debug, Default)]
pub struct DiskUsage {
    pub layers_size: i64,
    /// Images with `SharedSize` and `Containers` filled in.
    pub images: Vec<ImageSummary>,
    /// Container summaries with `SizeRw`.
    pub containers: Vec<crate::container_types::ContainerSummaryView>,
    /// Volumes with `UsageData` (size and reference count).
    pub volumes: Vec<crate::volume_service::VolumeInfo>,
    pub build_cache: Vec<BuildCacheItem>,
}

/// One `BuildCache` item of `/system/df`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BuildCacheItem {
    #[serde(rename = "ID")]
    pub id: String,
    pub parents: Option<Vec<String>>,
    #[serde(rename = "Type")]
    pub typ: String,
    pub description: String,
    pub in_use: bool,
    pub shared: bool,
    pub size: u64,
    /// RFC 3339; `null` when the file system cannot say.
    pub created_at: Option<String>,
    pub last_used_at: Option<String>,
    pub usage_count: i64,
}

/// `POST /berth/system/check` answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckReport {
    pub findings: Vec<CheckFinding>,
    /// Nothing found, or everything found was repaired.
    pub clean: bool,
}

/// One thing a crash or failed operation left behind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckFinding {
    /// `process`, `mount`, `blob`, `snapshot`, ...
    pub kind: String,
    pub what: String,
    #[serde(rename = "Where")]
    pub place: String,
    pub repaired: bool,
    /// Why the repair failed (`null` when it did not or was not tried).
    pub error: Option<String>,
}

/// Images: list, inspect, history, tag, remove, prune, load, save, import, pull.
#[async_trait]
pub trait ImageService: Send + Sync + 'static {
    /// Every image (filters are applied by the caller).
    async fn list(&self, opts: ImageListOptions) -> ApiResult<Vec<ImageSummary>>;
    async fn inspect(&self, name: &str) -> ApiResult<ImageInspect>;
    async fn history(&self, name: &str) -> ApiResult<Vec<ImageHistoryResponseItem>>;
    /// Tag image `name` as `repo[:tag]` (tag defaults to `latest`).
    async fn tag(&self, name: &str, repo: &str, tag: &str) -> ApiResult<()>;
    async fn remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> ApiResult<Vec<ImageDeleteResponseItem>>;
    /// Remove dangling (or, with `dangling=false`, all unused) images; filters validated here.
    async fn prune(&self, filters: &Filters) -> ApiResult<ImagePruneResponse>;
    /// Load a `docker save`/OCI archive; returns the lines to report
    /// (`Loaded image: busybox:latest`, or `Loaded image ID: sha256:…` for untagged ones).
    async fn load(&self, body: ByteStream, quiet: bool) -> ApiResult<Vec<String>>;
    /// Export images (names already validated to exist before streaming starts).
    async fn save(&self, names: Vec<String>) -> ApiResult<ByteStream>;
    /// Import a root filesystem tarball; returns the new image ID.
    async fn import(&self, body: ByteStream, opts: ImportOptions) -> ApiResult<String>;
    /// `POST /commit`: a container's changes as a new image (tagged `repo:tag` when a repo is
    /// given); returns the image ID (`sha256:…`).
    async fn commit(&self, opts: CommitOptions) -> ApiResult<String> {
        Err(ApiError::not_implemented(format!(
            "committing container {} is not implemented in this engine",
            opts.container
        )))
    }
    /// Pull from a registry. Fails before streaming when the image can't be resolved (as
    /// dockerd does); later failures arrive in-stream as `{"errorDetail":…,"error":…}`.
    async fn pull(&self, opts: PullOptions) -> ApiResult<JsonStream> {
        Err(ApiError::not_implemented(format!(
            "pulling {} is not implemented yet in berth: load the image with `docker load` instead",
            opts.from_image
        )))
    }
    /// `POST /build`: build from a context tar; Docker's classic JSON messages in-stream.
    async fn build(
        &self,
        body: ByteStream,
        opts: crate::build::BuildOptions,
    ) -> ApiResult<JsonStream> {
        let _ = (body, opts);
        Err(ApiError::not_implemented(
            "building images is not available in this engine",
        ))
    }
    /// A directory private to builds where a front end may keep state between them (what
    /// BuildKit's file sync last brought, so rebuilds fetch only what changed); None: keep
    /// nothing. The builder's prune empties it.
    fn build_state_dir(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// An image's filesystem (its layers applied in order) as one tar stream, as `docker
    /// export` gives a container's (BuildKit's `tar` and `local` exporters).
    async fn export_rootfs(&self, name: &str) -> ApiResult<ByteStream> {
        Err(ApiError::not_implemented(format!(
            "exporting the filesystem of image {name} is not available in this engine"
        )))
    }
    /// `POST /build/prune`: drop the builder's step cache and cache mounts; returns the ids of
    /// the entries removed and the bytes freed.
    async fn build_prune(&self) -> ApiResult<(Vec<String>, u64)> {
        Ok((Vec::new(), 0))
    }
    /// The builder's cache entries (`/system/df`'s `BuildCache`, BuildKit's `DiskUsage`).
    async fn build_cache(&self) -> ApiResult<Vec<BuildCacheItem>> {
        Ok(Vec::new())
    }
    /// Push to a registry; progress and errors in-stream, final `aux` `{Tag,Digest,Size}`.
    async fn push(&self, opts: PushOptions) -> ApiResult<JsonStream> {
        Err(ApiError::not_implemented(format!(
            "pushing {} is not implemented in this engine",
            opts.name
        )))
    }
    /// `POST /auth`: check credentials against a registry; returns Docker's status line.
    async fn login(&self, req: AuthRequest) -> ApiResult<String> {
        Err(ApiError::not_implemented(format!(
            "login to {} is not implemented in this engine",
            req.serveraddress
        )))
    }
    /// `GET /images/search`: the repositories a registry's search finds for a term, filtered.
    async fn search(
        &self,
        opts: SearchOptions,
    ) -> ApiResult<Vec<bollard_stubs::models::ImageSearchResponseItem>> {
        Err(ApiError::not_implemented(format!(
            "searching for {} is not implemented in this engine",
            opts.term
        )))
    }
    /// `GET /distribution/{name}/json`: the registry's descriptor (and platforms) of `name`.
    async fn distribution(
        &self,
        name: &str,
        registry_auth: Option<String>,
    ) -> ApiResult<bollard_stubs::models::DistributionInspect> {
        let _ = registry_auth;
        Err(ApiError::not_implemented(format!(
            "distribution inspect of {name} is not implemented in this engine"
        )))
    }
}

/// Version, info, disk usage and events.
#[async_trait]
pub trait SystemService: Send + Sync + 'static {
    /// Engine version; the route fills `ApiVersion`/`MinAPIVersion`.
    async fn version(&self) -> ApiResult<SystemVersion>;
    async fn info(&self) -> ApiResult<SystemInfo>;
    async fn disk_usage(&self) -> ApiResult<DiskUsage>;
    /// Recent events (the engine keeps a bounded backlog for `since`) and the live stream
    /// that continues exactly after them.
    fn subscribe_events(&self) -> (Vec<EventMessage>, EventStream);
    /// berth extension, `POST /berth/system/check[?repair=1]`: what a crash or a failed
    /// operation left behind (`{"Findings": [{Kind, What, Where, Repaired, Error}], "Clean"}`),
    /// repaired with `repair`.
    async fn check(&self, repair: bool) -> ApiResult<CheckReport> {
        let _ = repair;
        Err(ApiError::not_implemented("this engine has no system check"))
    }
}

/// The set of services the router serves.
#[derive(Clone)]
pub struct Services {
    pub images: Arc<dyn ImageService>,
    pub system: Arc<dyn SystemService>,
    pub volumes: Arc<dyn crate::volume_service::VolumeService>,
    pub container_fs: Arc<dyn crate::volume_service::ContainerFsService>,
    pub containers: Arc<dyn crate::containers::ContainerService>,
    pub networks: Arc<dyn crate::network_service::NetworkService>,
}
