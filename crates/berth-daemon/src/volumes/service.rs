//! berth-api-types' `VolumeService` over the engine's [`VolumeStore`], volume events, and the
//! volume part of `/system/df`.

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use berth_api_types::filters::Filters;
use berth_api_types::models::{EventMessageTypeEnum, VolumePruneResponse, VolumeUsageData};
use berth_api_types::volume_service::prune_selects;
use berth_api_types::{ApiResult, VolumeCreateBody, VolumeInfo, VolumeService};

use crate::engine::Engine;
use crate::error::{DaemonError, Result};
use crate::volumes::{CreateVolume, VolumeRecord, VolumeStore};

/// Open `<root>/volumes`. A failure stops the daemon: serving on without the volume store (or
/// with a temporary one) would lose every named volume's data from the user's view.
/// Under `--userns-remap` (`ids` not the identity) new volumes belong to the containers' root.
pub(crate) fn open_volumes(root: &Path, ids: &berth_rootfs::IdMapping) -> Result<VolumeStore> {
    let dir = root.join("volumes");
    let open = || {
        let s = VolumeStore::open(&dir)?;
        match ids.is_identity() {
            true => Ok(s),
            false => s.owned_by(ids.root()),
        }
    };
    open().map_err(|e| DaemonError::VolumeStoreOpen {
        dir: dir.clone(),
        source: Box::new(e),
    })
}

/// Render a record as Docker's volume JSON.
pub(crate) fn render(
    store: &VolumeStore,
    v: &VolumeRecord,
    usage: Option<VolumeUsageData>,
) -> VolumeInfo {
    VolumeInfo {
        name: v.name.clone(),
        driver: v.driver.clone(),
        mountpoint: store.mountpoint(&v.name).to_string_lossy().into_owned(),
        created_at: v.created_at.clone(),
        labels: v.labels.clone().into_iter().collect(),
        scope: "local".into(),
        options: v.options.clone().into_iter().collect(),
        usage_data: usage,
    }
}

impl Engine {
    /// The volume store (the containers code acquires/releases through it).
    pub fn volumes(&self) -> &std::sync::Arc<VolumeStore> {
        &self.inner.volumes
    }

    /// Containers, at create: plan the mounts of `hc` (`Binds`, `Mounts`, `Tmpfs`) plus the
    /// image's `VOLUME`s and `--volumes-from`, create/acquire the volumes for `container_id`.
    /// Store the result's `planned` with the container; `spec`s go to the runtime and `point`s
    /// to inspect's `Mounts`.
    pub async fn create_mounts(
        &self,
        container_id: &str,
        hc: &crate::containers::stored::HostConfig,
        image_volumes: &[String],
        volumes_from: &[crate::volumes::mounts::VolumesFrom],
    ) -> Result<Vec<crate::volumes::mounts::AppliedMount>> {
        let plan = crate::volumes::mounts::plan_mounts(
            &hc.binds.clone().unwrap_or_default(),
            &hc.mounts.clone().unwrap_or_default(),
            &hc.tmpfs.clone().unwrap_or_default(),
            image_volumes,
            volumes_from,
        )?;
        self.apply_planned_mounts(container_id, plan).await
    }

    /// Apply a mount plan for `container_id` (create and `update`'s mount changes): volumes
    /// created or acquired, `volume create` events for new ones.
    pub async fn apply_planned_mounts(
        &self,
        container_id: &str,
        plan: Vec<crate::volumes::mounts::PlannedMount>,
    ) -> Result<Vec<crate::volumes::mounts::AppliedMount>> {
        let id = container_id.to_string();
        let applied = self
            .vol_blocking(move |s| crate::volumes::mounts::apply_mounts(s, &id, &plan))
            .await?;
        for m in &applied {
            if let (true, Some(n)) = (m.new_volume, m.point.name.as_deref()) {
                self.volume_event("create", n, "local");
            }
        }
        Ok(applied)
    }

    /// Containers, at first start: seed empty volumes from the merged rootfs.
    pub async fn seed_mounts(
        &self,
        rootfs: &Path,
        mounts: Vec<crate::volumes::mounts::AppliedMount>,
    ) -> Result<()> {
        let rootfs = rootfs.to_path_buf();
        self.vol_blocking(move |s| crate::volumes::mounts::seed_volumes(s, &rootfs, &mounts))
            .await
    }

    /// Containers, at rm: drop the container's references; with `remove_anonymous`
    /// (`rm -v`, `run --rm`) also remove the anonymous volumes nobody else uses.
    pub async fn release_mounts(&self, container_id: &str, remove_anonymous: bool) {
        let store = self.inner.volumes.clone();
        // Releasing may unmount a driver-option volume: a syscall for the blocking pool.
        let id = container_id.to_string();
        let released = self
            .vol_blocking(move |s| Ok(s.release(&id)))
            .await
            .unwrap_or_default();
        if !remove_anonymous {
            return;
        }
        let anonymous = released
            .into_iter()
            .filter(|n| store.get(n).map(|v| v.anonymous()).unwrap_or(false))
            .collect();
        self.remove_unused_volumes(anonymous).await;
    }

    /// Remove these volumes where no container uses them (`rm -v`; an update that failed
    /// takes back the volumes it created).
    pub(crate) async fn remove_unused_volumes(&self, names: Vec<String>) {
        let store = self.inner.volumes.clone();
        for name in names {
            if store.in_use(&name).is_empty() {
                let n = name.clone();
                match self.vol_blocking(move |s| s.remove(&n, true)).await {
                    Ok(()) => self.volume_event("destroy", &name, "local"),
                    Err(e) => tracing::warn!(volume = %name, error = %e, "cannot remove volume"),
                }
            }
        }
    }

    fn volume_event(&self, action: &str, name: &str, driver: &str) {
        let attrs: HashMap<String, String> = [("driver".to_string(), driver.to_string())].into();
        self.inner
            .events
            .emit(EventMessageTypeEnum::VOLUME, action, name, attrs);
    }

    /// dockerd's `mount` (at start) and `unmount` (at exit) volume events, one per volume the
    /// container mounts, naming the container and (for `mount`) where and how.
    pub(crate) fn volume_mount_events(&self, action: &str, r: &crate::containers::Record) {
        for m in &r.mount_points {
            if m.typ.as_deref() != Some("volume") {
                continue;
            }
            let Some(name) = m.name.as_deref() else {
                continue;
            };
            let mut attrs: HashMap<String, String> = [
                (
                    "driver".to_string(),
                    m.driver.clone().unwrap_or_else(|| "local".into()),
                ),
                ("container".to_string(), r.id.clone()),
            ]
            .into();
            if action == "mount" {
                attrs.insert(
                    "destination".into(),
                    m.destination.clone().unwrap_or_default(),
                );
                attrs.insert("read/write".into(), m.rw.unwrap_or(true).to_string());
                attrs.insert(
                    "propagation".into(),
                    m.propagation.clone().unwrap_or_default(),
                );
            }
            self.inner
                .events
                .emit(EventMessageTypeEnum::VOLUME, action, name, attrs);
        }
    }

    /// `Volumes` of `/system/df`, with sizes and reference counts.
    pub(crate) async fn volume_usage(&self) -> Result<Vec<VolumeInfo>> {
        let store = self.inner.volumes.clone();
        let out = tokio::task::spawn_blocking(move || {
            store
                .list()
                .iter()
                .map(|(v, users)| {
                    let usage = VolumeUsageData {
                        size: store.size(&v.name) as i64,
                        ref_count: users.len() as i64,
                    };
                    render(&store, v, Some(usage))
                })
                .collect()
        })
        .await?;
        Ok(out)
    }

    async fn vol_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&VolumeStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.inner.volumes.clone();
        tokio::task::spawn_blocking(move || f(&store)).await?
    }
}

#[async_trait]
impl VolumeService for Engine {
    async fn create(&self, req: VolumeCreateBody) -> ApiResult<VolumeInfo> {
        let c = CreateVolume {
            name: Some(req.name).filter(|n| !n.is_empty()),
            driver: Some(req.driver).filter(|d| !d.is_empty()),
            labels: req.labels.unwrap_or_default().into_iter().collect(),
            options: req.driver_opts.unwrap_or_default().into_iter().collect(),
        };
        let (v, created) = self.vol_blocking(move |s| s.create(c)).await?;
        if created {
            self.volume_event("create", &v.name, &v.driver);
        }
        Ok(render(&self.inner.volumes, &v, None))
    }

    async fn list(&self) -> ApiResult<Vec<VolumeInfo>> {
        let s = &self.inner.volumes;
        Ok(s.list()
            .iter()
            .map(|(v, users)| {
                let usage = VolumeUsageData {
                    size: -1,
                    ref_count: users.len() as i64,
                };
                render(s, v, Some(usage))
            })
            .collect())
    }

    async fn inspect(&self, name: &str) -> ApiResult<VolumeInfo> {
        let v = self.inner.volumes.get(name)?;
        Ok(render(&self.inner.volumes, &v, None))
    }

    async fn remove(&self, name: &str, force: bool) -> ApiResult<()> {
        let n = name.to_string();
        let existed = self.inner.volumes.get(name).ok();
        self.vol_blocking(move |s| s.remove(&n, force)).await?;
        if let Some(v) = existed {
            self.volume_event("destroy", &v.name, &v.driver);
        }
        Ok(())
    }

    async fn prune(&self, filters: &Filters, all: bool) -> ApiResult<VolumePruneResponse> {
        let f = filters.clone();
        let (gone, freed) = self
            .vol_blocking(move |s| {
                s.prune(|v| {
                    let labels: HashMap<String, String> = v.labels.clone().into_iter().collect();
                    prune_selects(&f, all, &labels)
                })
            })
            .await?;
        for n in &gone {
            self.volume_event("destroy", n, "local");
        }
        self.volume_event("prune", "", "local");
        Ok(VolumePruneResponse {
            volumes_deleted: Some(gone),
            space_reclaimed: Some(freed as i64),
        })
    }
}
