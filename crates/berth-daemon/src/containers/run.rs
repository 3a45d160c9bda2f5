//! Container lifecycle: start (rw mount, network, /etc files, spec, shim), the exit monitor
//! (cleanup, restart policies, auto-remove), stop/kill/wait/remove, and recovery on daemon start.

use super::Status;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use berth_runtime::{LogConfig, Shim};
use berth_task::{StartError, Task};

use super::plan::{after_exit, parse_size, AfterExit};
use super::task::{CtrEffects, CtrPrepare, StartFailure};

use super::{lock, now_rfc3339, Ctr, Record};
use crate::engine::Engine;
use crate::error::{DaemonError, Result};

impl Engine {
    /// Start a created or exited container. Ok(false) when already running.
    pub(crate) async fn ctr_start(&self, ctr: &Arc<Ctr>) -> Result<bool> {
        let op = ctr.op.lock().await;
        let r = ctr.snapshot();
        if r.state.status == Status::Paused {
            return Err(DaemonError::Conflict(
                "cannot start a paused container, try unpause instead".into(),
            ));
        }
        if r.running() {
            return Ok(false);
        }
        if r.state.status == Status::Removing || r.state.status == Status::Dead {
            return Err(DaemonError::Conflict(format!(
                "container {} is marked for removal and cannot be started",
                r.id
            )));
        }
        self.ctr_start_locked(ctr, &r, op).await
    }

    /// The restart policy's start after the back-off: only while the container still waits in
    /// `restarting` (a stop, kill or rm meanwhile wins, under the same operation lock); the
    /// status stays `restarting` until it runs, as dockerd shows it.
    pub(crate) async fn ctr_start_restarting(&self, ctr: &Arc<Ctr>) -> Result<bool> {
        let op = ctr.op.lock().await;
        let r = ctr.snapshot();
        if r.state.status != Status::Restarting || r.manually_stopped {
            return Ok(false);
        }
        self.ctr_start_locked(ctr, &r, op).await
    }

    /// Start `ctr` (snapshot `r`) holding its operation lock `op`; a failure is recorded.
    async fn ctr_start_locked(
        &self,
        ctr: &Arc<Ctr>,
        r: &Record,
        op: tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<bool> {
        match self.ctr_start_inner(ctr, r).await {
            Ok(()) => Ok(true),
            Err((e, code)) => {
                {
                    let mut g = lock(&ctr.rec);
                    g.state.error = e.to_string();
                    g.state.exit_code = code;
                    g.state.status = if g.state.status == Status::Created {
                        Status::Created
                    } else {
                        Status::Exited
                    };
                    g.endpoints.clear();
                    g.ports.clear();
                    g.netns = None;
                }
                self.inner.containers.save(ctr);
                // Attaches waiting for this start end now.
                lock(&ctr.attach_waiters).clear();
                let mut attrs = HashMap::new();
                attrs.insert("exitCode".to_string(), code.to_string());
                self.ctr_event("die", &ctr.snapshot(), attrs);
                ctr.life.send_modify(|l| {
                    l.exits += 1;
                    l.exit_code = code;
                });
                if r.host_config.auto_remove.unwrap_or(false) {
                    drop(op);
                    let _ = self.ctr_remove(ctr, true, true).await;
                }
                Err(e)
            }
        }
    }

    pub(super) async fn unmount_rw(&self, id: &str) {
        let shm = self.inner.containers.shm_dir(id);
        let _ = tokio::task::spawn_blocking(move || super::shm::release(&shm)).await;
        if let Some(store) = self.inner.raw_store.clone() {
            let id = id.to_string();
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = store.unmount_rw_layer(&id) {
                    tracing::warn!(container_id = %id, error = %e, "unmount rw layer");
                }
            })
            .await;
        }
    }

    /// Drop the container's endpoints, ports and netns.
    pub(super) async fn ctr_release(&self, id: &str, netns: Option<&PathBuf>) {
        if let Some(net) = self.network_if_open() {
            for ep in net.endpoints(id).await {
                let _ = net.unpublish(ep.ip).await;
                if let Err(e) = net.disconnect(id, &ep.network).await {
                    tracing::warn!(container_id = %id, error = %e, "disconnect");
                }
            }
            if netns.is_some() {
                let _ = net.remove_netns(id).await;
            }
        } else if let Some(ns) = netns {
            // A `--network none` sandbox, made without the network manager.
            if let Err(e) = berth_network::netlink::remove_netns(ns) {
                tracing::warn!(container_id = %id, error = %e, "remove netns");
            }
        }
    }

    /// Start through berth-task: rootfs, network, plan, /etc files, shim, attach hand-off,
    /// start; the task unwinds what it did when a step fails. Then record the running state.
    async fn ctr_start_inner(&self, ctr: &Arc<Ctr>, r: &Record) -> Result<(), StartFailure> {
        let id = r.id.clone();
        let t0 = std::time::Instant::now();
        let ms = |what: &str| phase(&id, t0, "start", what);
        // Start the cgroup-migration grace period now, while the shim starts (see
        // `prewarm_migration`): 15-20 ms off `run --rm` here.
        tokio::task::spawn_blocking(|| {
            berth_runtime::cgroups::prewarm_migration(std::path::Path::new(
                berth_runtime::cgroups::CGROUP_ROOT,
            ))
        });
        let fx = Arc::new(CtrEffects {
            eng: self.clone(),
            record: r.clone(),
            exe: shim_exe(),
            t0,
        });
        let mut task = Task::new(fx, id.clone());
        let mut prep = CtrPrepare {
            eng: self,
            ctr,
            record: r,
        };
        let running = berth_task::start(&mut task, &mut prep)
            .await
            .map_err(|e| start_failure(&id, e))?;
        task.keep();
        {
            let mut g = lock(&ctr.rec);
            g.state.status = Status::Running;
            g.state.pid = running.started.container_pid;
            g.state.shim_pid = running.started.shim_pid;
            g.state.error.clear();
            g.state.exit_code = 0;
            g.state.oom_killed = false;
            g.state.started_at = now_rfc3339();
            g.endpoints = running.net.extra.endpoints;
            g.ports = running.net.extra.published;
            g.netns = running.net.netns;
            g.manually_stopped = false;
        }
        // An auto-removed container's "running" record skips the two fsyncs (`run --rm`'s
        // start path): only a power cut could lose it, which ends the container anyway, and
        // then the durable record from its create is what comes back, as after a crash
        // between create and start.
        let durable = !r.host_config.auto_remove.unwrap_or(false);
        self.inner.containers.save_with(ctr, durable);
        ctr.life.send_modify(|l| l.starts += 1);
        let rec = ctr.snapshot();
        self.volume_mount_events("mount", &rec);
        self.ctr_event("start", &rec, HashMap::new());
        self.spawn_monitor(ctr.clone(), running.shim);
        self.spawn_health(ctr.clone());
        self.update_link_parents(&rec);
        ms("recorded");
        Ok(())
    }

    pub(super) fn log_config(&self, r: &Record) -> LogConfig {
        let mut lc = LogConfig::with_defaults(self.inner.containers.log_path(&r.id));
        let mut opts: HashMap<String, String> = self
            .inner
            .file
            .log_opts
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(c) = &r.host_config.log_config {
            opts.extend(c.config.clone().unwrap_or_default());
        }
        if let Some(s) = opts.get("max-size").and_then(|s| parse_size(s)) {
            lc.max_size = s;
        }
        if let Some(n) = opts.get("max-file").and_then(|s| s.parse().ok()) {
            lc.max_file = n;
        }
        lc
    }

    pub(crate) fn spawn_monitor(&self, ctr: Arc<Ctr>, shim: Shim) {
        let eng = self.clone();
        tokio::spawn(async move {
            let exit = shim.wait().await;
            eng.on_exit(ctr, exit).await;
        });
    }

    pub(super) async fn on_exit(
        &self,
        ctr: Arc<Ctr>,
        exit: berth_runtime::Result<berth_runtime::ExitInfo>,
    ) {
        let id = ctr.id();
        let t0 = std::time::Instant::now();
        let ms = |what: &str| phase(&id, t0, "exit", what);
        let (code, oom, finished, err) = match exit {
            Ok(x) => (
                x.exit_code as i64,
                x.oom_killed,
                x.finished_at,
                if x.shim_died {
                    "shim died".to_string()
                } else {
                    String::new()
                },
            ),
            Err(e) => (
                137,
                false,
                now_rfc3339(),
                format!("lost the container's shim: {e}"),
            ),
        };
        let netns = lock(&ctr.rec).netns.clone();
        self.ctr_release(&id, netns.as_ref()).await;
        ms("network released");
        self.unmount_rw(&id).await;
        self.volume_mount_events("unmount", &ctr.snapshot());
        ms("rootfs unmounted");
        let (rec, next) = {
            let mut g = lock(&ctr.rec);
            g.state.status = Status::Exited;
            g.state.exit_code = code;
            g.state.oom_killed = oom;
            g.state.finished_at = finished;
            g.state.pid = 0;
            g.state.shim_pid = 0;
            g.state.error = err;
            g.netns = None;
            g.endpoints.clear();
            g.ports.clear();
            let next = after_exit(&g, code);
            if let AfterExit::Restart { .. } = next {
                // `restarting` from the exit on, never a transient `exited` a poller could
                // take for the end (moby's TestUpdateRestartPolicy saw one).
                g.restart_count += 1;
                g.state.status = Status::Restarting;
            }
            (g.clone(), next)
        };
        let auto_remove = next == AfterExit::Remove;
        // A container about to be removed skips persisting "exited" (two fsyncs on the `--rm`
        // exit path): if the daemon dies before the removal, recovery finds its shim gone,
        // reads exit.json and removes it then.
        if !auto_remove {
            self.inner.containers.save(&ctr);
        }
        ms("exit recorded");
        if oom {
            self.ctr_event("oom", &rec, HashMap::new());
        }
        let mut attrs = HashMap::new();
        attrs.insert("exitCode".to_string(), code.to_string());
        self.ctr_event("die", &rec, attrs);
        ctr.life.send_modify(|l| {
            l.exits += 1;
            l.exit_code = code;
        });
        if let AfterExit::Restart { delay } = next {
            let eng = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Err(e) = eng.ctr_start_restarting(&ctr).await {
                    tracing::warn!(container_id = %ctr.id(), error = %e, "restart failed");
                }
            });
            return;
        }
        if auto_remove {
            if let Err(e) = self.ctr_remove(&ctr, true, true).await {
                tracing::warn!(container_id = %id, error = %e, "auto-remove failed");
                self.inner.containers.save(&ctr);
            }
            ms("auto-removed");
        }
    }
}

/// The API error and exit code of a start that failed in the task layer: the runtime's
/// 126/127 when the command cannot run (dockerd's "OCI runtime create failed" words), else 128.
fn start_failure(id: &str, e: StartError<StartFailure>) -> StartFailure {
    match e {
        StartError::Effect(f) => f,
        StartError::Spawn(e) => {
            let code = match &e {
                berth_runtime::Error::Exec { exit_code, .. } => *exit_code as i64,
                _ => 128,
            };
            let kind = match e.kind() {
                berth_runtime::ErrorKind::Invalid => berth_api_types::ErrorKind::Invalid,
                _ => berth_api_types::ErrorKind::Internal,
            };
            let msg = format!(
                "failed to create task for container: OCI runtime create failed: {e}: unknown"
            );
            (DaemonError::OciRuntime { kind, message: msg }, code)
        }
        StartError::Start(e) => (
            DaemonError::runtime(format!("start container {id}"), e),
            128,
        ),
    }
}

/// Log how far (ms since `t0`) an operation on a container has come, at debug level: the
/// start/exit/remove timings `BERTH_LOG=berth_daemon=debug` shows.
pub(super) fn phase(id: &str, t0: std::time::Instant, op: &str, what: &str) {
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    tracing::debug!(container_id = %id, ms, "{op}: {what}");
}

/// The binary whose `shim` subcommand runs containers: `BERTH_SHIM_EXE`, else ourselves.
pub fn shim_exe() -> PathBuf {
    // /proc/self/exe keeps working after the binary on disk is replaced (upgrades).
    std::env::var_os("BERTH_SHIM_EXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/self/exe"))
}

#[cfg(test)]
mod tests {
    use berth_api_types::ErrorKind;

    use super::*;

    /// The CLI's exit codes come from these: 126/127 when the command cannot run (400, so
    /// `docker run` exits with the code), 128 otherwise, in dockerd's words.
    #[test]
    fn start_failures_keep_dockers_codes_and_words() {
        let exec = berth_runtime::Error::Exec {
            message: "exec: \"nope\": executable file not found in $PATH".into(),
            exit_code: 127,
        };
        let (e, code) = start_failure("c1", StartError::Spawn(exec));
        assert_eq!(code, 127);
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert_eq!(
            e.to_string(),
            "failed to create task for container: OCI runtime create failed: exec: \"nope\": executable file not found in $PATH: unknown"
        );
        let (e, code) = start_failure(
            "c1",
            StartError::Spawn(berth_runtime::Error::Shim("cgroup busy".into())),
        );
        assert_eq!((code, e.kind()), (128, ErrorKind::Internal));
        assert!(
            e.to_string()
                .contains("OCI runtime create failed: cgroup busy"),
            "{e}"
        );
        let (e, code) = start_failure(
            "c1",
            StartError::Start(berth_runtime::Error::Shim("gone".into())),
        );
        assert_eq!((code, e.kind()), (128, ErrorKind::Internal));
        assert_eq!(e.to_string(), "start container c1: gone");
        // A step's own failure passes through untouched.
        let own = (
            DaemonError::Conflict("cannot join network of a non running container: c2".into()),
            128,
        );
        let (e, code) = start_failure("c1", StartError::Effect(own));
        assert_eq!((code, e.kind()), (128, ErrorKind::Conflict));
    }
}
