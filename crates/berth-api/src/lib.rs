//! berth-api: the Docker Engine API over HTTP. axum routes parse requests, call the
//! [`Services`] bundle of berth-api-types' traits and render Docker's JSON; [`error`] is the one
//! place an [`ErrorKind`] becomes an HTTP status. [`listen`] serves the app: who may connect
//! (unix socket mode and group, TCP only with TLS off loopback) and for how long.

pub mod error;
pub mod listen;
mod routes;
pub mod version;

pub use berth_api_types::{
    build, container_types, containers, drain, filters, models, network_service, service,
    volume_service, ApiError, ApiResult, AttachOptions, AuthRequest, BuildCacheItem, BuildOptions,
    ByteStream, CheckFinding, CheckReport, ContainerCreateRequest, ContainerFsService,
    ContainerInspect, ContainerListOptions, ContainerService, ContainerStats, ContainerSummaryView,
    ContainerWaitResult, DiskUsage, ErrorDetail, ErrorKind, EventStream, ExecCreateRequest,
    ExecInspect, ExtractOptions, Filters, GraphDriver, HijackIo, Hijacked, ImageInspect,
    ImageListOptions, ImageMetadata, ImageService, ImportOptions, JsonAux, JsonMessage, JsonStream,
    LogsOptions, LogsStream, NetworkCreated, NetworkService, NetworkView, NoContainerFs,
    NoContainers, NoNetworks, NoVolumes, PathStat, ProgressDetail, PullOptions, PushOptions,
    SearchOptions, Services, StatsStream, StreamSession, SystemDf, SystemService, VolumeCreateBody,
    VolumeInfo, VolumeList, VolumeService,
};
pub use error::{status_of, HttpError, HttpResult};
pub use routes::{app, app_with};
pub use version::{API_VERSION, MIN_API_VERSION};
