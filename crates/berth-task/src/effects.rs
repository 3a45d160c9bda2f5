//! The side effects a start performs, as a trait: the daemon's real implementations and the
//! recording double (`recording`) answer the same calls.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_runtime::{ExitInfo, NetworkMode, ShimConfig, ShimStarted};

/// What attaching the network gave the container.
#[derive(Debug, Clone, Default)]
pub struct Attached<N> {
    /// How the spec joins a network namespace.
    pub mode: NetworkMode,
    /// A namespace made for this start (removed by [`Effects::detach_network`]).
    pub netns: Option<PathBuf>,
    /// resolv.conf for the container.
    pub resolv: String,
    /// The container's addresses, for its /etc/hosts.
    pub ips: Vec<IpAddr>,
    /// The caller's own result (a container's endpoints and published ports).
    pub extra: N,
}

/// A layer a start mounted besides its rootfs ([`Effects::mount_layer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedLayer {
    /// What [`Effects::unmount_layer`] releases it by.
    pub id: String,
    /// Where it is mounted.
    pub path: PathBuf,
}

/// The side effects of a start. Each call either succeeds or undoes its own partial work
/// before it fails, so the task undoes only completed steps.
#[async_trait::async_trait]
pub trait Effects: Send + Sync + 'static {
    /// A handle on a running shim.
    type Shim: Clone + Send + Sync + 'static;
    /// What [`Effects::attach_network`] hands back beyond [`Attached`]'s common fields.
    type Net: Send + Sync + 'static;
    /// The caller's error (it names the thing and says what to do).
    type Error: Send + 'static;
    /// What names a layer to mount besides the rootfs (a build step's `--mount=from` stage);
    /// `Infallible` for callers that mount none.
    type Layer: Send + Sync + 'static;

    /// Mount the rootfs of `id`: its path.
    async fn mount_rootfs(&self, id: &str) -> Result<PathBuf, Self::Error>;
    async fn unmount_rootfs(&self, id: &str);
    /// Mount a fresh writable layer over `layer` for the start to bind from. A mount
    /// abandoned in flight releases what it made itself (the task has no id to undo).
    async fn mount_layer(&self, layer: &Self::Layer) -> Result<MountedLayer, Self::Error>;
    /// Release what [`Effects::mount_layer`] made (best effort, logged).
    async fn unmount_layer(&self, layer: &MountedLayer);
    /// Give `id` its network (a namespace, endpoints, ports, resolv.conf).
    async fn attach_network(&self, id: &str) -> Result<Attached<Self::Net>, Self::Error>;
    /// Take back what [`Effects::attach_network`] gave (best effort, logged).
    async fn detach_network(&self, id: &str, netns: Option<&Path>);
    async fn write_file(&self, path: &Path, text: &str, what: &str) -> Result<(), Self::Error>;
    async fn remove_file(&self, path: &Path);
    /// A handle on the shim that may run in `dir` (before it is spawned, so an abandoned
    /// spawn can still be reaped).
    fn shim_at(&self, dir: &Path) -> Self::Shim;
    /// Spawn the shim: the container exists (not yet started) when this returns Ok.
    async fn spawn_shim(
        &self,
        dir: &Path,
        cfg: &ShimConfig,
    ) -> Result<(Self::Shim, ShimStarted), berth_runtime::Error>;
    async fn start_shim(&self, shim: &Self::Shim) -> Result<(), berth_runtime::Error>;
    /// Kill the container and wait until its shim has cleaned up (best effort, logged).
    async fn reap_shim(&self, shim: &Self::Shim);
    /// How far the start has come ("rootfs mounted"), for timing logs.
    fn phase(&self, _what: &str) {}
}

/// Kill the shim's container with SIGKILL and wait for its exit, at most `limit` when given
/// (the real implementations' [`Effects::reap_shim`]); the exit when it came.
pub async fn reap(shim: &berth_runtime::Shim, limit: Option<Duration>) -> Option<ExitInfo> {
    let _ = shim.kill(libc::SIGKILL).await;
    match limit {
        Some(d) => match tokio::time::timeout(d, shim.wait()).await {
            Ok(Ok(x)) => Some(x),
            _ => None,
        },
        None => shim.wait().await.ok(),
    }
}
