//! The container (and exec) service the `/containers` and `/exec` routes call, plus the
//! types for hijacked (HTTP-upgraded) attach and exec sessions.

use std::pin::Pin;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

use bollard_stubs::models::{
    ContainerCreateResponse, ContainerPruneResponse, ContainerTopResponse,
};

use crate::container_types::{
    ContainerCreateRequest, ContainerInspect, ContainerStats, ContainerSummaryView,
    ContainerWaitResult, ExecCreateRequest, ExecInspect,
};
use crate::container_update::{ContainerUpdateRequest, ContainerUpdateResult};
use crate::error::{ApiError, ApiResult};
use crate::filters::Filters;
use crate::service::ByteStream;

/// The client connection after `101 UPGRADED` (or a pipe feeding a plain response body).
pub trait HijackIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> HijackIo for T {}

/// A boxed hijacked connection.
pub type Hijacked = Pin<Box<dyn HijackIo>>;

/// An attach or exec session, prepared (and validated) before the upgrade answer is sent.
pub struct StreamSession {
    /// Raw stream (tty) or multiplexed frames.
    pub tty: bool,
    /// Pumps the session over the connection until it ends.
    pub run: Box<dyn FnOnce(Hijacked) -> BoxFuture<'static, ()> + Send>,
}

/// `POST /containers/{id}/attach` query.
#[derive(Clone, Debug, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub stream: bool,
    pub logs: bool,
    pub detach_keys: Option<String>,
}

/// `GET /containers/{id}/logs` query.
#[derive(Clone, Debug, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix seconds (fractional), 0 = none.
    pub since: f64,
    pub until: f64,
    pub timestamps: bool,
    /// None = all.
    pub tail: Option<usize>,
    /// Start each line with the container's log attributes (`docker logs --details`).
    pub details: bool,
}

/// `GET /containers/json` query.
#[derive(Clone, Debug, Default)]
pub struct ContainerListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub size: bool,
    pub filters: Filters,
}

/// Frames of `GET /containers/{id}/stats`.
pub type StatsStream = Pin<Box<dyn futures::Stream<Item = ContainerStats> + Send>>;

/// Logs: whether the container has a tty (raw output) and the framed byte stream.
pub struct LogsStream {
    pub tty: bool,
    pub body: ByteStream,
    /// Rotation has dropped older lines of this log (`X-Berth-Log-Rotated` on the answer).
    pub rotated_away: bool,
}

fn ni<T>(what: &str) -> ApiResult<T> {
    Err(ApiError::not_implemented(format!(
        "{what} is not implemented in this engine"
    )))
}

/// Containers and execs. Every method has a default "not implemented" body so fakes only
/// implement what they test.
#[async_trait]
pub trait ContainerService: Send + Sync + 'static {
    /// Body is Docker's `ContainerCreateBody` (+ the legacy container-wide `MacAddress`).
    async fn create(
        &self,
        name: Option<String>,
        platform: Option<String>,
        body: ContainerCreateRequest,
    ) -> ApiResult<ContainerCreateResponse> {
        let _ = (name, platform, body);
        ni("creating containers")
    }
    /// Ok(false): already running (304).
    async fn start(&self, id: &str) -> ApiResult<bool> {
        let _ = id;
        ni("starting containers")
    }
    /// Ok(false): already stopped (304).
    async fn stop(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> ApiResult<bool> {
        let _ = (id, signal, timeout);
        ni("stopping containers")
    }
    async fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> ApiResult<()> {
        let _ = (id, signal, timeout);
        ni("restarting containers")
    }
    async fn kill(&self, id: &str, signal: Option<String>) -> ApiResult<()> {
        let _ = (id, signal);
        ni("killing containers")
    }
    /// Registers the waiter before returning (so the route can send headers at once); the
    /// future yields Docker's `{"StatusCode","Error"}`.
    async fn wait(
        &self,
        id: &str,
        condition: &str,
    ) -> ApiResult<BoxFuture<'static, ContainerWaitResult>> {
        let _ = (id, condition);
        ni("waiting for containers")
    }
    async fn remove(&self, id: &str, force: bool, volumes: bool, link: bool) -> ApiResult<()> {
        let _ = (id, force, volumes, link);
        ni("removing containers")
    }
    async fn inspect(&self, id: &str, size: bool) -> ApiResult<ContainerInspect> {
        let _ = (id, size);
        ni("inspecting containers")
    }
    async fn list(&self, opts: ContainerListOptions) -> ApiResult<Vec<ContainerSummaryView>> {
        let _ = opts;
        ni("listing containers")
    }
    async fn logs(&self, id: &str, opts: LogsOptions) -> ApiResult<LogsStream> {
        let _ = (id, opts);
        ni("container logs")
    }
    async fn attach(&self, id: &str, opts: AttachOptions) -> ApiResult<StreamSession> {
        let _ = (id, opts);
        ni("attaching to containers")
    }
    async fn resize(&self, id: &str, height: u16, width: u16) -> ApiResult<()> {
        let _ = (id, height, width);
        ni("resizing containers")
    }
    async fn pause(&self, id: &str) -> ApiResult<()> {
        let _ = id;
        ni("pausing containers")
    }
    async fn unpause(&self, id: &str) -> ApiResult<()> {
        let _ = id;
        ni("unpausing containers")
    }
    async fn rename(&self, id: &str, new_name: &str) -> ApiResult<()> {
        let _ = (id, new_name);
        ni("renaming containers")
    }
    /// Docker's `ContainerUpdateBody` plus berth's extension; returns `{"Warnings":[]}` and
    /// what was (or, on a dry run, would be) done.
    async fn update(
        &self,
        id: &str,
        body: ContainerUpdateRequest,
    ) -> ApiResult<ContainerUpdateResult> {
        let _ = (id, body);
        ni("updating containers")
    }
    async fn top(&self, id: &str, ps_args: &str) -> ApiResult<ContainerTopResponse> {
        let _ = (id, ps_args);
        ni("listing container processes")
    }
    async fn stats(&self, id: &str, stream: bool) -> ApiResult<StatsStream> {
        let _ = (id, stream);
        ni("container stats")
    }
    async fn prune(&self, filters: Filters) -> ApiResult<ContainerPruneResponse> {
        let _ = filters;
        ni("pruning containers")
    }
    /// Body is Docker's `ExecConfig`; returns the exec ID.
    async fn exec_create(&self, id: &str, body: ExecCreateRequest) -> ApiResult<String> {
        let _ = (id, body);
        ni("exec")
    }
    /// None when detached (the exec runs in the background).
    async fn exec_start(
        &self,
        exec_id: &str,
        detach: bool,
        tty: bool,
    ) -> ApiResult<Option<StreamSession>> {
        let _ = (exec_id, detach, tty);
        ni("exec")
    }
    async fn exec_inspect(&self, exec_id: &str) -> ApiResult<ExecInspect> {
        let _ = exec_id;
        ni("exec")
    }
    async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> ApiResult<()> {
        let _ = (exec_id, height, width);
        ni("exec")
    }
}

/// A container service that serves nothing (tests of other resources).
pub struct NoContainers;

impl ContainerService for NoContainers {}
