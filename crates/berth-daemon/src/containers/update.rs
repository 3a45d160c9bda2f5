//! Applying an update plan (`update_plan.rs`): checks that need the host (bind sources,
//! networks) before anything changes, then a config-only change, a live change (cgroup limits,
//! DNAT rules; same process) or a managed recreate (stop with the stop signal and timeout,
//! new config and mounts, start; the old config started again if the new one fails), then
//! network connect/disconnect as `docker network` does them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use berth_api_types::models::{NetworkConnectRequest, NetworkDisconnectRequest};
use berth_api_types::{
    ContainerUpdateRequest, ContainerUpdateResult, NetworkService, UpdateAction,
};
use berth_network::{PortMapping, PortRequest};
use berth_runtime::Shim;

use super::stored::{ContainerConfig, EndpointSettings, HostConfig, Mirror};
use super::update_plan::{plan_update, UpdatePlan};
use super::{lock, Ctr, Status};
use crate::engine::Engine;
use crate::error::{DaemonError, Result};
use crate::volumes::mounts::PlannedMount;

/// The parts of a record an update replaces (and a failed recreate puts back). Kept in the
/// record while a recreate runs (`Record::updating`), so a daemon that dies half-way puts the
/// container back as it was at its next start ([`Engine::recover_updates`]).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    config: ContainerConfig,
    host_config: HostConfig,
    planned_mounts: Vec<PlannedMount>,
}

impl Engine {
    /// `POST /containers/{id}/update`, Docker's fields and berth's.
    #[tracing::instrument(skip_all, fields(container_id = %c.id()))]
    pub(crate) async fn ctr_update(
        &self,
        c: &Arc<Ctr>,
        req: ContainerUpdateRequest,
    ) -> Result<ContainerUpdateResult> {
        let _one = c.update.try_lock().map_err(|_| {
            DaemonError::Conflict(format!(
                "container {} is being updated by another request: retry when it finishes",
                c.id()
            ))
        })?;
        let r = c.snapshot();
        if matches!(r.state.status, Status::Removing | Status::Dead) {
            return Err(DaemonError::Conflict(format!(
                "container {} is marked for removal and cannot be updated",
                r.id
            )));
        }
        let plan = plan_update(&r, &req.body, &req.ext)?;
        self.update_preflight(&plan).await?;
        let mut warnings = vec![];
        if !req.ext.publish_add.is_empty() {
            let mut next = r.clone();
            next.host_config = plan.host_config.clone();
            warnings = self.published_port_warnings(&next).await;
        }
        let result = ContainerUpdateResult {
            warnings,
            action: plan.action,
            restart: plan.restart(),
            changes: plan.changes.clone(),
            dry_run: req.dry_run,
        };
        if req.dry_run || plan.action == UpdateAction::None {
            return Ok(result);
        }
        let nets = self.update_networks(c, &plan).await?;
        let applied = match plan.action {
            UpdateAction::Recreate => self.update_recreate(c, &plan).await,
            UpdateAction::Live => self.update_live(c, &plan).await,
            _ => self.update_config(c, &plan).await,
        };
        if let Err(e) = applied {
            self.undo_networks(c, nets).await;
            return Err(e);
        }
        self.ctr_event("update", &c.snapshot(), HashMap::new());
        Ok(result)
    }

    /// What the plan needs from the host, checked before anything changes.
    async fn update_preflight(&self, plan: &UpdatePlan) -> Result<()> {
        for s in &plan.bind_sources {
            if !Path::new(s).exists() {
                return Err(DaemonError::Invalid(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {s}"
                )));
            }
        }
        if !plan.networks_add.is_empty() {
            let net = self.network().await?;
            for n in &plan.networks_add {
                net.inspect(n).await.map_err(DaemonError::from)?;
            }
        }
        Ok(())
    }

    /// Record the new config (a stopped container, or labels/restart policy only); mounts are
    /// re-acquired now so a missing volume fails the update, not the next start.
    async fn update_config(&self, c: &Arc<Ctr>, plan: &UpdatePlan) -> Result<()> {
        let _op = c.op.lock().await;
        if plan.mounts_changed {
            let old = c.snapshot().planned_mounts;
            if let Err(e) = self.swap_mounts(c, plan.planned_mounts.clone()).await {
                self.restore_mounts(c, old, vec![]).await;
                return Err(e);
            }
        }
        self.set_shape(c, &shape_of(plan));
        Ok(())
    }

    /// Limits and ports of a running container: the process is not touched. All or nothing.
    async fn update_live(&self, c: &Arc<Ctr>, plan: &UpdatePlan) -> Result<()> {
        let _op = c.op.lock().await;
        let r = c.snapshot();
        if !r.running() {
            drop(_op);
            return self.update_config(c, plan).await;
        }
        let shim = Shim::new(self.inner.containers.ctr_dir(&r.id));
        if plan.limits_changed {
            shim.update(super::plan::resources_of(&plan.host_config))
                .await
                .map_err(|e| DaemonError::runtime(format!("update {}", r.id), e))?;
        }
        let ports = if plan.ports_add.is_empty() && plan.ports_rm.is_empty() {
            Ok(r.ports.clone())
        } else {
            self.swap_ports(&r, &plan.ports_rm, &plan.ports_add).await
        };
        let ports = match ports {
            Ok(p) => p,
            Err(e) => {
                if plan.limits_changed {
                    let _ = shim.update(super::plan::resources_of(&r.host_config)).await;
                }
                return Err(e);
            }
        };
        lock(&c.rec).ports = ports;
        self.set_shape(c, &shape_of(plan));
        Ok(())
    }

    /// Take `rm` off and publish `add` for the running `r`; on failure the removed ports are
    /// published again. Returns the container's published ports afterwards.
    async fn swap_ports(
        &self,
        r: &super::Record,
        rm: &[PortMapping],
        add: &[PortRequest],
    ) -> Result<Vec<PortMapping>> {
        let net = self.network().await?;
        let ip: IpAddr = r.endpoints.first().map(|e| e.ip).ok_or_else(|| {
            DaemonError::Conflict(format!(
                "container {} has no network endpoint to publish ports on",
                r.id
            ))
        })?;
        if !rm.is_empty() {
            net.unpublish_mappings(ip, rm)
                .await
                .map_err(DaemonError::from)?;
        }
        let published = match net.publish(ip, add.to_vec()).await {
            Ok(p) => p,
            Err(source) => {
                if !rm.is_empty() {
                    if let Err(e) = net.publish(ip, rm.to_vec()).await {
                        tracing::warn!(container_id = %r.id, error = %e, "cannot publish removed ports again");
                    }
                }
                return Err(DaemonError::PortPublish {
                    endpoint: r.name.clone(),
                    id: r.id.clone(),
                    source: Box::new(source),
                });
            }
        };
        let mut ports: Vec<PortMapping> = r
            .ports
            .iter()
            .filter(|p| !rm.contains(p))
            .copied()
            .collect();
        ports.extend(published);
        Ok(ports)
    }

    /// A managed recreate: same record, rw layer, logs and restart count; the process stops
    /// (stop signal, stop timeout) and starts with the new config. If that start fails, the
    /// old config is put back and started, and the update fails.
    async fn update_recreate(&self, c: &Arc<Ctr>, plan: &UpdatePlan) -> Result<()> {
        let r = c.snapshot();
        let old = Shape {
            config: r.config.clone(),
            host_config: r.host_config.clone(),
            planned_mounts: r.planned_mounts.clone(),
        };
        let restarts = r.restart_count;
        lock(&c.rec).updating = Some(old.clone());
        self.inner.containers.save(c);
        let res = self.recreate_journalled(c, plan, &r, old, restarts).await;
        lock(&c.rec).updating = None;
        self.inner.containers.save(c);
        res
    }

    async fn recreate_journalled(
        &self,
        c: &Arc<Ctr>,
        plan: &UpdatePlan,
        r: &super::Record,
        old: Shape,
        restarts: i64,
    ) -> Result<()> {
        self.ctr_stop(c, None, None).await?;
        let mut created = vec![];
        let started = match self.reshape(c, &shape_of(plan), plan.mounts_changed).await {
            Ok(new) => {
                created = new;
                self.ctr_start(c).await.map(|_| ())
            }
            Err(e) => Err(e),
        };
        {
            let mut g = lock(&c.rec);
            g.restart_count = restarts;
            if let Some(h) = g.health.as_mut() {
                super::health::carry_log(r.health.as_ref(), h);
            }
        }
        let Err(e) = started else {
            self.inner.containers.save(c);
            return Ok(());
        };
        tracing::warn!(container_id = %r.id, error = %e, "update: new config failed, restoring the old one");
        if plan.mounts_changed {
            self.restore_mounts(c, old.planned_mounts.clone(), created)
                .await;
        }
        self.set_shape(c, &old);
        let back = self.ctr_start(c).await;
        lock(&c.rec).restart_count = restarts;
        self.inner.containers.save(c);
        match back {
            Ok(_) => Err(DaemonError::Invalid(format!(
                "cannot update container {}: it did not start with the new config ({e}); it runs again with its previous config",
                r.id
            ))),
            Err(e2) => Err(DaemonError::Conflict(format!(
                "cannot update container {}: it did not start with the new config ({e}), nor again with its previous config ({e2})",
                r.id
            ))),
        }
    }

    /// Put a new shape on a stopped container (mounts first: they can fail); the volumes
    /// it created.
    async fn reshape(&self, c: &Arc<Ctr>, s: &Shape, mounts_changed: bool) -> Result<Vec<String>> {
        let mut created = vec![];
        if mounts_changed {
            created = self.swap_mounts(c, s.planned_mounts.clone()).await?;
        }
        self.set_shape(c, s);
        Ok(created)
    }

    fn set_shape(&self, c: &Arc<Ctr>, s: &Shape) {
        {
            let mut g = lock(&c.rec);
            g.config = s.config.clone();
            g.host_config = s.host_config.clone();
        }
        self.inner.containers.save(c);
    }

    /// Replace the container's volume references and mounts by `planned`'s. A volume the
    /// update creates is seeded from the image at the next start (`Record::seed_volumes`).
    async fn swap_mounts(&self, c: &Arc<Ctr>, planned: Vec<PlannedMount>) -> Result<Vec<String>> {
        let id = c.id();
        self.release_mounts(&id, false).await;
        let applied = self.apply_planned_mounts(&id, planned).await?;
        let mut g = lock(&c.rec);
        g.planned_mounts = applied.iter().map(|m| m.planned.clone()).collect();
        g.mount_specs = applied.iter().map(|m| m.spec.clone()).collect();
        g.mount_points = applied.iter().map(|m| m.point.clone()).collect();
        // Volumes this update created fill from the image at the next start (as at create).
        g.seed_volumes = applied
            .iter()
            .filter(|m| m.new_volume)
            .filter_map(|m| m.point.name.clone())
            .collect();
        Ok(g.seed_volumes.clone())
    }

    /// Re-acquire the mounts a container had (their volumes exist: they were in use) and
    /// remove the volumes the failed update `created`.
    async fn restore_mounts(&self, c: &Arc<Ctr>, planned: Vec<PlannedMount>, created: Vec<String>) {
        if let Err(e) = self.swap_mounts(c, planned).await {
            tracing::error!(container_id = %c.id(), error = %e, "cannot restore mounts");
        }
        self.remove_unused_volumes(created).await;
    }

    /// At daemon start, after recovery: a recreate the daemon's death cut short. A container
    /// that runs has the config its process was started with (the old one until the new is
    /// saved before its start); one that does not is put back as it was and started, as it
    /// was running when the update began.
    pub(crate) async fn recover_updates(&self) {
        for c in self.inner.containers.all() {
            let Some(old) = lock(&c.rec).updating.take() else {
                continue;
            };
            let r = c.snapshot();
            tracing::warn!(container_id = %r.id, running = r.running(), "an update was cut short by the daemon's end");
            if r.running() {
                lock(&c.rec).manually_stopped = false;
                self.inner.containers.save(&c);
                continue;
            }
            if old.planned_mounts != r.planned_mounts {
                self.restore_mounts(&c, old.planned_mounts.clone(), vec![])
                    .await;
            }
            self.set_shape(&c, &old);
            if let Err(e) = self.ctr_start(&c).await {
                tracing::warn!(container_id = %r.id, error = %e, "cannot start the container again after a cut update");
            }
        }
    }

    /// Networks first, through the same path as `docker network connect/disconnect` (their
    /// events included). A failure undoes the steps already taken, so the update fails with
    /// the container's networks as they were; the steps taken are returned so a later
    /// failure can undo them too ([`Engine::undo_networks`]).
    async fn update_networks(&self, c: &Arc<Ctr>, plan: &UpdatePlan) -> Result<Vec<NetStep>> {
        let r = c.snapshot();
        let mut done = Vec::new();
        for n in &plan.networks_rm {
            let settings = r
                .networking
                .as_ref()
                .and_then(|x| x.endpoints_config.as_ref())
                .and_then(|m| m.get(n))
                .cloned();
            let req = NetworkDisconnectRequest {
                container: r.id.clone(),
                force: None,
            };
            if let Err(e) = self.network_disconnect(n, req).await {
                self.undo_networks(c, done).await;
                return Err(e.into());
            }
            done.push(NetStep::Disconnected(n.clone(), settings.map(Box::new)));
        }
        for n in &plan.networks_add {
            let req = NetworkConnectRequest {
                container: r.id.clone(),
                endpoint_config: None,
            };
            if let Err(e) = self.network_connect(n, req).await {
                self.undo_networks(c, done).await;
                return Err(e.into());
            }
            done.push(NetStep::Connected(n.clone()));
        }
        Ok(done)
    }

    /// Undo network steps of an update that failed, newest first (best effort: logged).
    async fn undo_networks(&self, c: &Arc<Ctr>, done: Vec<NetStep>) {
        let id = c.id();
        for step in done.into_iter().rev() {
            let res = match step {
                NetStep::Connected(n) => {
                    let req = NetworkDisconnectRequest {
                        container: id.clone(),
                        force: None,
                    };
                    self.network_disconnect(&n, req).await
                }
                NetStep::Disconnected(n, settings) => {
                    let req = NetworkConnectRequest {
                        container: id.clone(),
                        endpoint_config: settings.map(|s| (*s).mirror()),
                    };
                    self.network_connect(&n, req).await
                }
            };
            if let Err(e) = res {
                tracing::warn!(container_id = %id, error = %e.message, "cannot undo a network change of a failed update");
            }
        }
    }
}

/// A network change an update made (and undoes if a later step fails).
enum NetStep {
    Connected(String),
    /// With the endpoint settings it had, to connect it as before.
    Disconnected(String, Option<Box<EndpointSettings>>),
}

fn shape_of(plan: &UpdatePlan) -> Shape {
    Shape {
        config: plan.config.clone(),
        host_config: plan.host_config.clone(),
        planned_mounts: plan.planned_mounts.clone(),
    }
}
