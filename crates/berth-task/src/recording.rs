//! A recording [`Effects`] double (youki's `syscall/test.rs` pattern): every call is logged,
//! one chosen call fails (or never finishes), so start-failure unwind and cancellation are
//! tested without root, mounts, namespaces or processes.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_runtime::{NetworkMode, ShimConfig, ShimStarted};

use crate::effects::{Attached, Effects, MountedLayer};

/// One call made on the double (`Plan` and `Created` are logged by test [`crate::Prepare`]s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    MountRootfs,
    UnmountRootfs,
    AttachNetwork,
    DetachNetwork(Option<PathBuf>),
    /// A layer mounted by the name the caller gave; unmounted by the id it got back.
    MountLayer(String),
    UnmountLayer(String),
    Plan,
    WriteFile(PathBuf),
    RemoveFile(PathBuf),
    SpawnShim,
    Created,
    StartShim,
    ReapShim(PathBuf),
}

/// The double. `fail` makes that call fail, `hang` makes it never finish.
#[derive(Debug, Default)]
pub struct Recording {
    pub fail: Option<Call>,
    pub hang: Option<Call>,
    calls: Mutex<Vec<Call>>,
}

/// The namespace [`Recording::attach_network`] reports.
pub const NETNS: &str = "/run/test/netns/c1";

impl Recording {
    pub fn failing(call: Call) -> Recording {
        Recording {
            fail: Some(call),
            ..Default::default()
        }
    }

    pub fn hanging(call: Call) -> Recording {
        Recording {
            hang: Some(call),
            ..Default::default()
        }
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Log `call`; Err when it is the one to fail; never returns when it is the one to hang.
    pub async fn record(&self, call: Call) -> Result<(), String> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call.clone());
        if self.hang.as_ref() == Some(&call) {
            std::future::pending::<()>().await;
        }
        if self.fail.as_ref() == Some(&call) {
            return Err(format!("injected failure: {call:?}"));
        }
        Ok(())
    }
}

fn runtime_err(e: String) -> berth_runtime::Error {
    berth_runtime::Error::Shim(e)
}

#[async_trait::async_trait]
impl Effects for Recording {
    /// The shim's directory.
    type Shim = PathBuf;
    type Net = ();
    type Error = String;
    /// A layer's name: mounted as `layer-<name>` at `/layers/<name>`.
    type Layer = String;

    async fn mount_rootfs(&self, id: &str) -> Result<PathBuf, String> {
        self.record(Call::MountRootfs).await?;
        Ok(PathBuf::from(format!("/rw/{id}/merged")))
    }

    async fn unmount_rootfs(&self, _id: &str) {
        let _ = self.record(Call::UnmountRootfs).await;
    }

    async fn mount_layer(&self, name: &String) -> Result<MountedLayer, String> {
        self.record(Call::MountLayer(name.clone())).await?;
        Ok(MountedLayer {
            id: format!("layer-{name}"),
            path: PathBuf::from("/layers").join(name),
        })
    }

    async fn unmount_layer(&self, layer: &MountedLayer) {
        let _ = self.record(Call::UnmountLayer(layer.id.clone())).await;
    }

    async fn attach_network(&self, _id: &str) -> Result<Attached<()>, String> {
        self.record(Call::AttachNetwork).await?;
        Ok(Attached {
            mode: NetworkMode::Path(NETNS.into()),
            netns: Some(NETNS.into()),
            resolv: "nameserver 10.0.0.1\n".into(),
            ips: vec![[10, 0, 0, 2].into()],
            extra: (),
        })
    }

    async fn detach_network(&self, _id: &str, netns: Option<&Path>) {
        let _ = self
            .record(Call::DetachNetwork(netns.map(Path::to_path_buf)))
            .await;
    }

    async fn write_file(&self, path: &Path, _text: &str, _what: &str) -> Result<(), String> {
        self.record(Call::WriteFile(path.to_path_buf())).await
    }

    async fn remove_file(&self, path: &Path) {
        let _ = self.record(Call::RemoveFile(path.to_path_buf())).await;
    }

    fn shim_at(&self, dir: &Path) -> PathBuf {
        dir.to_path_buf()
    }

    async fn spawn_shim(
        &self,
        dir: &Path,
        _cfg: &ShimConfig,
    ) -> Result<(PathBuf, ShimStarted), berth_runtime::Error> {
        self.record(Call::SpawnShim).await.map_err(runtime_err)?;
        Ok((
            dir.to_path_buf(),
            ShimStarted {
                shim_pid: 100,
                container_pid: 101,
            },
        ))
    }

    async fn start_shim(&self, _shim: &PathBuf) -> Result<(), berth_runtime::Error> {
        self.record(Call::StartShim).await.map_err(runtime_err)
    }

    async fn reap_shim(&self, shim: &PathBuf) {
        let _ = self.record(Call::ReapShim(shim.clone())).await;
    }
}
