//! berth-api: the Docker Engine API (axum) over narrow service traits. Routes parse requests,
//! call a [`Services`] bundle and render Docker's JSON; errors carry an [`ErrorKind`] that only
//! [`error`] turns into an HTTP status.

pub mod container_types;
pub mod containers;
pub mod error;
pub mod filters;
pub mod network_service;
mod routes;
pub mod service;
pub mod version;
pub mod volume_service;

pub use container_types::{
    ContainerCreateRequest, ContainerInspect, ContainerStats, ContainerSummaryView,
    ContainerWaitResult, ExecCreateRequest, ExecInspect,
};
pub use containers::{
    AttachOptions, ContainerListOptions, ContainerService, HijackIo, Hijacked, LogsOptions,
    LogsStream, NoContainers, StatsStream, StreamSession,
};
pub use error::{status_of, ApiError, ApiResult, ErrorKind};
pub use filters::Filters;
pub use network_service::{NetworkCreated, NetworkService, NetworkView, NoNetworks};
pub use routes::app;
pub use routes::build::BuildOptions;
pub use service::{
    drain, AuthRequest, BuildCacheItem, ByteStream, CheckFinding, CheckReport, DiskUsage,
    ErrorDetail, EventStream, GraphDriver, ImageInspect, ImageListOptions, ImageMetadata,
    ImageService, ImportOptions, JsonAux, JsonMessage, JsonStream, ProgressDetail, PullOptions,
    PushOptions, Services, SystemService,
};
pub use version::{API_VERSION, MIN_API_VERSION};
pub use volume_service::{
    ContainerFsService, ExtractOptions, NoContainerFs, NoVolumes, PathStat, VolumeCreateBody,
    VolumeInfo, VolumeService,
};

/// Re-exported so implementors use the exact pinned models.
pub use bollard_stubs::models;
