//! berth-api-types: the Engine API's service boundary without HTTP. The narrow service traits
//! (containers, images, networks, volumes, system), their request and response types, and
//! [`ApiError`] (an [`ErrorKind`] and a message). berth-daemon implements the traits; berth-api's
//! axum routes call them and alone turn errors into HTTP answers.

pub mod build;
pub mod container_types;
pub mod container_update;
pub mod containers;
pub mod df;
pub mod error;
pub mod filters;
pub mod legacy_config;
pub mod network_service;
pub mod service;
pub mod tls;
pub mod version;
pub mod volume_service;

pub use build::{BuildOptions, NamedContext, SecretBytes, SshAgent, SshForward, StreamSlot};
pub use container_types::{
    ContainerCreateRequest, ContainerInspect, ContainerStats, ContainerSummaryView,
    ContainerWaitResult, ExecCreateRequest, ExecInspect, LogRotation,
};
pub use container_update::{
    ContainerUpdateRequest, ContainerUpdateResult, PortChange, UpdateAction, UpdateChange,
    UpdateExtension,
};
pub use containers::{
    AttachOptions, ContainerListOptions, ContainerService, HijackIo, Hijacked, LogsOptions,
    LogsStream, NoContainers, StatsStream, StreamSession,
};
pub use df::SystemDf;
pub use error::{ApiError, ApiResult, ErrorKind};
pub use filters::Filters;
pub use legacy_config::LegacyContainerConfig;
pub use network_service::{NetworkCreated, NetworkService, NetworkView, NoNetworks};
pub use service::{
    drain, AuthRequest, BuildCacheItem, ByteStream, CheckFinding, CheckReport, DiskUsage,
    ErrorDetail, EventStream, GraphDriver, ImageInspect, ImageListOptions, ImageMetadata,
    ImageService, ImportOptions, JsonAux, JsonMessage, JsonStream, ProgressDetail, PullOptions,
    PushOptions, SearchOptions, Services, SystemService,
};
pub use tls::TlsConfig;
pub use version::{API_VERSION, ENGINE_VERSION, MIN_API_VERSION};
pub use volume_service::{
    ContainerFsService, ExtractOptions, NoContainerFs, NoVolumes, PathStat, VolumeCreateBody,
    VolumeInfo, VolumeList, VolumeService,
};

/// Re-exported so implementors use the exact pinned models.
pub use bollard_stubs::models;
