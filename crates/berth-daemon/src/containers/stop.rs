//! Stopping and removing containers: kill (signals), stop (StopSignal, timeout, SIGKILL),
//! remove (force, volumes), wait conditions, and recovery of containers on daemon start.

use super::Status;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::stored::RestartPolicyNameEnum as R;
use berth_runtime::Shim;

use super::plan::parse_signal;
use super::run::phase;
use super::{lock, Ctr};
use crate::engine::Engine;
use crate::error::{DaemonError, Result};

/// Whether a kill with `sig` is a manual stop the restart policy must not undo (dockerd's
/// `ExitOnNext`): SIGKILL, the container's StopSignal, or any signal when it has none.
fn stops_for_good(stop_signal: Option<&str>, sig: i32) -> crate::error::Result<bool> {
    Ok(match stop_signal.filter(|s| !s.is_empty()) {
        Some(s) if sig != libc::SIGKILL => parse_signal(s)? == sig,
        _ => true,
    })
}

impl Engine {
    /// Send a signal (validated) to a running container.
    pub(crate) async fn ctr_kill(&self, ctr: &Arc<Ctr>, signal: Option<String>) -> Result<()> {
        let sig = match signal.as_deref() {
            None | Some("") => libc::SIGKILL,
            Some(s) => parse_signal(s)?,
        };
        let r = ctr.snapshot();
        let stops = stops_for_good(r.config.stop_signal.as_deref(), sig)?;
        if !r.running() || r.state.status == Status::Restarting {
            if r.state.status == Status::Restarting {
                if stops {
                    lock(&ctr.rec).manually_stopped = true;
                }
                return Ok(());
            }
            return Err(DaemonError::ContainerNotRunning(r.id));
        }
        if stops {
            lock(&ctr.rec).manually_stopped = true;
        }
        let from = ctr.life.borrow().exits;
        let shim = Shim::new(self.inner.containers.ctr_dir(&r.id));
        shim.kill(sig)
            .await
            .map_err(|e| DaemonError::runtime(format!("kill {}", r.id), e))?;
        let mut attrs = HashMap::new();
        attrs.insert("signal".to_string(), sig.to_string());
        self.ctr_event("kill", &r, attrs);
        if sig == libc::SIGKILL {
            // Like dockerd: a SIGKILL returns once the container is gone.
            if lock(&ctr.rec).running() {
                self.await_exit(ctr, from, Some(Duration::from_secs(10)))
                    .await;
            }
        }
        Ok(())
    }

    /// Wait for the exit counter to move past `from` (None: no deadline).
    async fn await_exit(&self, ctr: &Arc<Ctr>, from: u64, limit: Option<Duration>) -> bool {
        let mut rx = ctr.life.subscribe();
        let fut = rx.wait_for(|l| l.exits > from || l.removed);
        match limit {
            None => fut.await.is_ok(),
            Some(d) => matches!(tokio::time::timeout(d, fut).await, Ok(Ok(_))),
        }
    }

    /// Stop: StopSignal, wait `timeout` seconds, then SIGKILL. Ok(false) if not running.
    pub(crate) async fn ctr_stop(
        &self,
        ctr: &Arc<Ctr>,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<bool> {
        let r = ctr.snapshot();
        if r.state.status == Status::Restarting {
            lock(&ctr.rec).manually_stopped = true;
            lock(&ctr.rec).state.status = Status::Exited;
            self.inner.containers.save(ctr);
            return Ok(true);
        }
        if !r.running() {
            return Ok(false);
        }
        lock(&ctr.rec).manually_stopped = true;
        self.inner.containers.save(ctr);
        if r.state.status == Status::Paused {
            let _ = Shim::new(self.inner.containers.ctr_dir(&r.id))
                .resume()
                .await;
        }
        let sig = signal
            .or_else(|| r.config.stop_signal.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "SIGTERM".into());
        let t = timeout.or(r.config.stop_timeout).unwrap_or(10);
        let from = ctr.life.borrow().exits;
        if self.ctr_kill(ctr, Some(sig)).await.is_ok() {
            let limit = (t >= 0).then(|| Duration::from_secs(t as u64));
            if self.await_exit(ctr, from, limit).await {
                self.ctr_event("stop", &ctr.snapshot(), HashMap::new());
                return Ok(true);
            }
        }
        let _ = self.ctr_kill(ctr, Some("KILL".into())).await;
        self.await_exit(ctr, from, None).await;
        self.ctr_event("stop", &ctr.snapshot(), HashMap::new());
        Ok(true)
    }

    /// Remove (force kills a running container first).
    pub(crate) async fn ctr_remove(
        &self,
        ctr: &Arc<Ctr>,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let r = ctr.snapshot();
        if r.state.status == Status::Removing {
            return Err(DaemonError::RemovalInProgress(r.id));
        }
        if r.running() {
            if !force {
                let state = if r.state.status == Status::Paused {
                    "paused"
                } else {
                    "running"
                };
                return Err(DaemonError::RemoveRunning { id: r.id, state });
            }
            lock(&ctr.rec).manually_stopped = true;
            let from = ctr.life.borrow().exits;
            if r.state.status == Status::Paused {
                let _ = Shim::new(self.inner.containers.ctr_dir(&r.id))
                    .resume()
                    .await;
            }
            if self.ctr_kill(ctr, Some("KILL".into())).await.is_ok() {
                self.await_exit(ctr, from, Some(Duration::from_secs(30)))
                    .await;
            }
        }
        let _op = ctr.op.lock().await;
        lock(&ctr.rec).state.status = Status::Removing;
        // On disk before anything is destroyed (as moby checkpoints Dead first): a crash
        // part-way leaves a record the next start finishes removing, never a "created"
        // container whose rw layer is half gone. An auto-removed container skips the fsync:
        // its record still says running, and recovery removes it when it finds the shim gone.
        if !r.host_config.auto_remove.unwrap_or(false) {
            self.inner.containers.save(ctr);
        }
        let id = r.id.clone();
        let t0 = std::time::Instant::now();
        let ms = |what: &str| phase(&id, t0, "remove", what);
        // Whatever the record says (a start cut short by a crash leaves a "created" container
        // with a shim, processes, netns and mounts): everything that exists for the id goes.
        self.purge(&id, super::reconcile::cgroup_of(&r)).await;
        ms("processes, network and mounts gone");
        // The rw layer goes first and the container dir (its record) last: after a crash in
        // between, the container is still listed and a second `rm` finishes the job.
        if let Some(store) = self.inner.raw_store.clone() {
            let id2 = id.clone();
            let res = tokio::task::spawn_blocking(move || store.remove_rw_layer(&id2)).await;
            if let Ok(Err(e)) = res {
                if !matches!(e, berth_store::StoreError::RwLayerNotFound(_)) {
                    tracing::warn!(container_id = %id, error = %e, "remove rw layer");
                }
            }
        }
        ms("rw layer removed");
        let dir = self.inner.containers.ctr_dir(&id);
        super::shm::release(&self.inner.containers.shm_dir(&id));
        berth_runtime::cgroups::remove_dirs(
            std::path::Path::new(berth_runtime::cgroups::CGROUP_ROOT),
            &format!("/berth/{id}"),
        );
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %dir.display(), error = %e, "remove container dir");
            }
        }
        ms("cgroups and container dir removed");
        self.release_mounts(&id, volumes).await;
        lock(&self.inner.containers.map).remove(&id);
        lock(&self.inner.containers.execs).retain(|_, e| lock(e).container_id != id);
        self.ctr_event("destroy", &r, HashMap::new());
        ctr.life.send_modify(|l| l.removed = true);
        ms("removed");
        Ok(())
    }

    /// Register a waiter now; the future resolves per `condition`.
    pub(crate) fn ctr_wait(
        &self,
        ctr: &Arc<Ctr>,
        condition: &str,
    ) -> Result<futures::future::BoxFuture<'static, berth_api_types::ContainerWaitResult>> {
        let mut rx = ctr.life.subscribe();
        let cur = *rx.borrow();
        let r = ctr.snapshot();
        let result = |code: i64| berth_api_types::ContainerWaitResult {
            status_code: code,
            error: None,
        };
        match condition {
            "" | "not-running" => {
                if !r.running() {
                    let code = r.state.exit_code;
                    return Ok(Box::pin(async move { result(code) }));
                }
                Ok(Box::pin(async move {
                    let l = rx
                        .wait_for(|l| l.exits > cur.exits || l.removed)
                        .await
                        .map(|l| *l);
                    result(l.map(|l| l.exit_code).unwrap_or(cur.exit_code))
                }))
            }
            "next-exit" => Ok(Box::pin(async move {
                let l = rx
                    .wait_for(|l| l.exits > cur.exits || l.removed)
                    .await
                    .map(|l| *l);
                result(l.map(|l| l.exit_code).unwrap_or(cur.exit_code))
            })),
            "removed" => Ok(Box::pin(async move {
                let l = rx.wait_for(|l| l.removed).await.map(|l| *l);
                // The sender is dropped with the container: the last value stands.
                let code = l.map(|l| l.exit_code).unwrap_or(cur.exit_code);
                result(code)
            })),
            other => Err(DaemonError::Invalid(format!(
                "invalid condition: {other:?}: use not-running, next-exit or removed"
            ))),
        }
    }

    /// On daemon start: reconnect to live shims, record exits of finished ones, clean up
    /// after dead ones, rebuild network rules, then apply restart policies.
    pub async fn recover_containers(&self) {
        let cs = &self.inner.containers;
        let mut active = Vec::new();
        let mut to_restart = Vec::new();
        // Endpoints may exist for containers whose record never learnt of them (a start cut
        // short): the network state, not the records, says whether to open networking.
        let had_net = cs.all().iter().any(|c| lock(&c.rec).netns.is_some())
            || self.inner.cfg.root.join("network").exists();
        if had_net {
            // Open networks first so cleanup of dead containers can release endpoints.
            if let Err(e) = self.network().await {
                tracing::warn!(error = %e, "open networks for recovery");
            }
        }
        for ctr in cs.all() {
            let r = ctr.snapshot();
            let policy = r.host_config.restart_policy.clone().unwrap_or_default();
            let name = policy.name.unwrap_or(R::EMPTY);
            if !r.running() {
                continue;
            }
            let dir = cs.ctr_dir(&r.id);
            let shim = Shim::new(&dir);
            match shim.state().await {
                Ok(st) => {
                    tracing::info!(container_id = %r.id, pid = st.pid, "reconnected to running container");
                    {
                        let mut g = lock(&ctr.rec);
                        g.state.pid = st.pid;
                        g.state.shim_pid = st.shim_pid;
                        g.state.status = if st.status == "paused" {
                            Status::Paused
                        } else {
                            Status::Running
                        };
                    }
                    active.push(berth_network::ActiveEndpoint {
                        container_id: r.id.clone(),
                    });
                    self.spawn_monitor(ctr.clone(), shim);
                    self.spawn_health(ctr.clone());
                }
                Err(_) => {
                    // Exit recorded, or the shim died: Shim::wait reads exit.json or cleans up.
                    let exit = shim.wait().await;
                    let died = exit.as_ref().map(|x| x.shim_died).unwrap_or(true);
                    tracing::info!(container_id = %r.id, shim_died = died, "container exited while the daemon was down");
                    if name == R::ALWAYS || (name == R::UNLESS_STOPPED && !r.manually_stopped) {
                        to_restart.push(ctr.clone());
                    }
                    let eng = self.clone();
                    let c2 = ctr.clone();
                    // Runs cleanup + policy (auto-remove) as a normal exit would.
                    lock(&c2.rec).manually_stopped |=
                        !to_restart.iter().any(|x| Arc::ptr_eq(x, &c2));
                    eng.on_exit(c2, exit).await;
                }
            }
        }
        if had_net || !active.is_empty() {
            if let Ok(net) = self.network().await {
                if let Err(e) = net.rebuild_rules(&active).await {
                    tracing::warn!(error = %e, "rebuild network rules");
                }
            }
        }
        self.reconcile_on_start().await;
        self.recover_updates().await;
        for ctr in to_restart {
            lock(&ctr.rec).manually_stopped = false;
            if !ctr.snapshot().running() {
                if let Err(e) = self.ctr_start(&ctr).await {
                    tracing::warn!(container_id = %ctr.id(), error = %e, "restart on daemon start failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stops_for_good;

    #[test]
    fn kill_stops_for_good_like_dockerd() {
        assert!(stops_for_good(None, libc::SIGTERM).unwrap());
        assert!(stops_for_good(Some(""), libc::SIGHUP).unwrap());
        assert!(stops_for_good(Some("TERM"), libc::SIGTERM).unwrap());
        assert!(stops_for_good(Some("SIGUSR1"), libc::SIGUSR1).unwrap());
        assert!(stops_for_good(Some("CONT"), libc::SIGKILL).unwrap());
        assert!(!stops_for_good(Some("CONT"), libc::SIGTERM).unwrap());
    }
}
