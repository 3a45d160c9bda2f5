//! berth-api-types' `ContainerService` over the engine: lookups, then the lifecycle/io methods.

use super::Status;
use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use berth_api_types::filters::LabelFilter;
use berth_api_types::models::{
    ContainerCreateResponse, ContainerPruneResponse, ContainerTopResponse,
};
use berth_api_types::{
    ApiResult, AttachOptions, ContainerCreateRequest, ContainerInspect, ContainerListOptions,
    ContainerService, ContainerSummaryView, ContainerUpdateRequest, ContainerUpdateResult,
    ContainerWaitResult, ExecCreateRequest, ExecInspect, Filters, LogsOptions, LogsStream,
    StatsStream, StreamSession,
};
use berth_runtime::Shim;
use futures::future::BoxFuture;

use super::{lock, render};
use crate::engine::Engine;
use crate::error::DaemonError;

#[async_trait]
impl ContainerService for Engine {
    async fn create(
        &self,
        name: Option<String>,
        platform: Option<String>,
        body: ContainerCreateRequest,
    ) -> ApiResult<ContainerCreateResponse> {
        self.check_create_platform(body.body.image.as_deref(), platform.as_deref())
            .await?;
        Ok(self.ctr_create(name, body).await?)
    }

    async fn start(&self, id: &str) -> ApiResult<bool> {
        let c = self.inner.containers.get(id)?;
        Ok(self.ctr_start(&c).await?)
    }

    async fn stop(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> ApiResult<bool> {
        if let Some(s) = &signal {
            super::plan::parse_signal(s)?;
        }
        let c = self.inner.containers.get(id)?;
        Ok(self.ctr_stop(&c, signal, timeout).await?)
    }

    async fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> ApiResult<()> {
        let c = self.inner.containers.get(id)?;
        self.ctr_stop(&c, signal, timeout).await?;
        self.ctr_start(&c).await?;
        self.ctr_event("restart", &c.snapshot(), HashMap::new());
        Ok(())
    }

    async fn kill(&self, id: &str, signal: Option<String>) -> ApiResult<()> {
        let c = self.inner.containers.get(id)?;
        Ok(self.ctr_kill(&c, signal).await?)
    }

    async fn wait(
        &self,
        id: &str,
        condition: &str,
    ) -> ApiResult<BoxFuture<'static, ContainerWaitResult>> {
        let c = self.inner.containers.get(id)?;
        Ok(self.ctr_wait(&c, condition)?)
    }

    async fn remove(&self, id: &str, force: bool, volumes: bool, link: bool) -> ApiResult<()> {
        if link {
            return Ok(self.ctr_remove_link(id)?);
        }
        let c = self.inner.containers.get(id)?;
        // Not under an update's feet: its recreate would start (or re-acquire the volumes of)
        // a removed container.
        let _no_update = c.update.try_lock().map_err(|_| {
            DaemonError::Conflict(format!(
                "container {} is being updated: remove it when the update finishes",
                c.id()
            ))
        })?;
        Ok(self.ctr_remove(&c, force, volumes).await?)
    }

    async fn inspect(&self, id: &str, size: bool) -> ApiResult<ContainerInspect> {
        let c = self.inner.containers.get(id)?;
        let r = c.snapshot();
        let mut v = render::inspect(&self.inner.containers, &r);
        let driver = r
            .host_config
            .log_config
            .as_ref()
            .and_then(|c| c.typ.as_deref())
            .unwrap_or("json-file");
        if matches!(driver, "" | "json-file" | "local") {
            let lc = self.log_config(&r);
            v.log_rotation = Some(berth_api_types::LogRotation {
                max_size: lc.max_size,
                max_file: lc.max_file,
            });
        }
        let execs: Vec<String> = lock(&self.inner.containers.execs)
            .values()
            .map(|e| lock(e).clone())
            .filter(|e| e.container_id == r.id && e.running)
            .map(|e| e.id)
            .collect();
        if !execs.is_empty() {
            v.exec_ids = Some(execs);
        }
        if size {
            v.size_rw = Some(self.rw_size(&r.id).await);
        }
        Ok(v)
    }

    async fn list(&self, opts: ContainerListOptions) -> ApiResult<Vec<ContainerSummaryView>> {
        let mut all: Vec<super::Record> = self
            .inner
            .containers
            .all()
            .iter()
            .map(|c| c.snapshot())
            .collect();
        all.sort_by(|a, b| b.created.cmp(&a.created));
        let ancestry = match opts.filters.get("ancestor") {
            v if v.is_empty() => None,
            v => {
                let names: Vec<String> = v.into_iter().map(str::to_string).collect();
                let store = self.inner.store.clone();
                Some(
                    tokio::task::spawn_blocking(move || ancestry(store.as_ref(), &names))
                        .await
                        .map_err(|e| DaemonError::failed("ancestor filter", e))?,
                )
            }
        };
        let filter = super::list_filter::ContainerFilter::compile(&opts.filters, &all, ancestry)?;
        let mut out = vec![];
        let explicit_all = opts.all || opts.limit.is_some() || !opts.filters.0.is_empty();
        for r in &all {
            if !explicit_all && !r.running() {
                continue;
            }
            if !filter.matches(r) {
                continue;
            }
            if !opts.all && !filter.has_status && !r.running() && opts.limit.is_none() {
                continue;
            }
            let mut v = render::summary(r);
            render::add_link_names(&mut v, r, &all);
            if opts.size {
                v.size_rw = Some(self.rw_size(&r.id).await);
            }
            out.push(v);
            if opts.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    async fn logs(&self, id: &str, opts: LogsOptions) -> ApiResult<LogsStream> {
        let c = self.inner.containers.get(id)?;
        Ok(self.ctr_logs(&c, opts)?)
    }

    async fn attach(&self, id: &str, opts: AttachOptions) -> ApiResult<StreamSession> {
        let c = self.inner.containers.get(id)?;
        if c.snapshot().state.status == Status::Paused {
            return Err(DaemonError::AttachPaused(id.to_string()).into());
        }
        Ok(self.ctr_attach(&c, opts).await?)
    }

    async fn resize(&self, id: &str, height: u16, width: u16) -> ApiResult<()> {
        let c = self.inner.containers.get(id)?;
        let r = c.snapshot();
        if !r.running() {
            return Err(DaemonError::ContainerNotRunning(r.id.clone()).into());
        }
        // No terminal to size: dockerd (containerd's shim) ignores it and answers 200.
        if r.config.tty.unwrap_or(false) {
            Shim::new(self.inner.containers.ctr_dir(&r.id))
                .resize(height, width, None)
                .await
                .map_err(|e| DaemonError::runtime(format!("resize {}", r.id), e))?;
        }
        let attrs = HashMap::from([
            ("height".to_string(), height.to_string()),
            ("width".to_string(), width.to_string()),
        ]);
        self.ctr_event("resize", &r, attrs);
        Ok(())
    }

    async fn pause(&self, id: &str) -> ApiResult<()> {
        let c = self.inner.containers.get(id)?;
        let r = c.snapshot();
        if r.state.status == Status::Paused {
            return Err(DaemonError::ContainerAlreadyPaused(r.id.clone()).into());
        }
        if r.state.status != Status::Running {
            return Err(DaemonError::ContainerNotRunning(r.id.clone()).into());
        }
        // Pausing freezes the container's cgroup, which a rootless daemon on v1 has not.
        if berth_rootless::cgroup::private_tree_active(std::path::Path::new("/sys/fs/cgroup")) {
            return Err(DaemonError::Unavailable(
                "pause needs the container's freezer cgroup; a rootless daemon on a cgroup v1 \
                 host runs containers without cgroups (run the rootful daemon to pause)"
                    .into(),
            )
            .into());
        }
        Shim::new(self.inner.containers.ctr_dir(&r.id))
            .pause()
            .await
            .map_err(|e| DaemonError::runtime(format!("pause {}", r.id), e))?;
        lock(&c.rec).state.status = Status::Paused;
        self.inner.containers.save(&c);
        self.ctr_event("pause", &r, HashMap::new());
        Ok(())
    }

    async fn unpause(&self, id: &str) -> ApiResult<()> {
        let c = self.inner.containers.get(id)?;
        let r = c.snapshot();
        if r.state.status != Status::Paused {
            // moby answers a plain error here (500), not a conflict.
            return Err(DaemonError::Internal(format!("Container {} is not paused", r.id)).into());
        }
        Shim::new(self.inner.containers.ctr_dir(&r.id))
            .resume()
            .await
            .map_err(|e| DaemonError::runtime(format!("unpause {}", r.id), e))?;
        lock(&c.rec).state.status = Status::Running;
        self.inner.containers.save(&c);
        self.ctr_event("unpause", &r, HashMap::new());
        Ok(())
    }

    async fn rename(&self, id: &str, new_name: &str) -> ApiResult<()> {
        let new = new_name.trim_start_matches('/');
        if new.is_empty() {
            return Err(
                DaemonError::Invalid("Neither old nor new names may be empty".into()).into(),
            );
        }
        // dockerd's order: the container, then its own name, then the name's syntax and use.
        let c = self.inner.containers.get(id)?;
        if c.snapshot().name == new {
            return Err(DaemonError::Invalid(
                "Renaming a container with the same name as its current name".into(),
            )
            .into());
        }
        if !super::names::valid_name(new) {
            return Err(DaemonError::Invalid(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            ))
            .into());
        }
        let old = {
            let m = lock(&self.inner.containers.map);
            if let Some(o) = m.values().find(|o| lock(&o.rec).name == new) {
                return Err(DaemonError::NameInUse {
                    name: new.to_string(),
                    id: o.id(),
                }
                .into());
            }
            let mut g = lock(&c.rec);
            std::mem::replace(&mut g.name, new.to_string())
        };
        self.inner.containers.save(&c);
        let mut attrs = HashMap::new();
        attrs.insert("oldName".to_string(), format!("/{old}"));
        self.ctr_event("rename", &c.snapshot(), attrs);
        Ok(())
    }

    async fn update(
        &self,
        id: &str,
        req: ContainerUpdateRequest,
    ) -> ApiResult<ContainerUpdateResult> {
        let c = self.inner.containers.get(id)?;
        Ok(self.ctr_update(&c, req).await?)
    }

    async fn top(&self, id: &str, ps_args: &str) -> ApiResult<ContainerTopResponse> {
        let c = self.inner.containers.get(id)?;
        let top = self.ctr_top(&c, ps_args).await?;
        self.ctr_event("top", &c.snapshot(), HashMap::new());
        Ok(top)
    }

    async fn stats(&self, id: &str, stream: bool) -> ApiResult<StatsStream> {
        let c = self.inner.containers.get(id)?;
        let first = super::stats::stats_of(&c.snapshot(), None);
        if !stream {
            // One sample, as dockerd's `one-shot=true`: no previous CPU reading. (`stream=false`
            // alone takes the streaming path's first frame: two samples, so CPU% is real.)
            return Ok(Box::pin(futures::stream::iter(vec![first])));
        }
        // The first reading only primes `precpu_stats`; stop after a frame once not running.
        let s = futures::stream::unfold((c, first, false), |(c, prev, sent)| async move {
            if !c.snapshot().running() && sent {
                return None;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let cur = super::stats::stats_of(&c.snapshot(), Some(&prev));
            Some((cur.clone(), (c, cur, true)))
        });
        Ok(Box::pin(s))
    }

    async fn prune(&self, filters: Filters) -> ApiResult<ContainerPruneResponse> {
        filters.validate(&["until", "label", "label!"])?;
        // Parsed once; `label!` excludes a container its values all match (moby's
        // `matchLabels`).
        let keep = LabelFilter::new(&filters, "label");
        let not = LabelFilter::new(&filters, "label!");
        let until = filters.get("until").first().and_then(|u| parse_until(u));
        let mut deleted = vec![];
        let mut reclaimed = 0u64;
        for c in self.inner.containers.all() {
            let r = c.snapshot();
            if r.running() || r.state.status == Status::Removing {
                continue;
            }
            let labels = r.config.labels.clone().unwrap_or_default();
            if !keep.matches(&labels) || (!not.is_empty() && not.matches(&labels)) {
                continue;
            }
            if let Some(cut) = until {
                let created = chrono::DateTime::parse_from_rfc3339(&r.created)
                    .map(|d| d.timestamp())
                    .unwrap_or(0);
                if created >= cut {
                    continue;
                }
            }
            reclaimed += self.rw_size(&r.id).await.max(0) as u64;
            if self.ctr_remove(&c, false, false).await.is_ok() {
                deleted.push(r.id);
            }
        }
        self.inner.events.emit(
            berth_api_types::models::EventMessageTypeEnum::CONTAINER,
            "prune",
            "",
            HashMap::from([("reclaimed".to_string(), reclaimed.to_string())]),
        );
        Ok(ContainerPruneResponse {
            containers_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed as i64),
        })
    }

    async fn exec_create(&self, id: &str, body: ExecCreateRequest) -> ApiResult<String> {
        let c = self.inner.containers.get(id)?;
        Ok(Engine::exec_create(self, &c, id, body).await?)
    }

    async fn exec_start(
        &self,
        exec_id: &str,
        detach: bool,
        tty: bool,
    ) -> ApiResult<Option<StreamSession>> {
        Ok(Engine::exec_start(self, exec_id, detach, tty).await?)
    }

    async fn exec_inspect(&self, exec_id: &str) -> ApiResult<ExecInspect> {
        Ok(Engine::exec_inspect(self, exec_id)?)
    }

    async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> ApiResult<()> {
        Ok(Engine::exec_resize(self, exec_id, height, width).await?)
    }
}

fn parse_until(u: &str) -> Option<i64> {
    if let Ok(n) = u.parse::<f64>() {
        return Some(n as i64);
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(u) {
        return Some(d.timestamp());
    }
    let (n, unit) = u.split_at(u.len().checked_sub(1)?);
    let n: i64 = n.parse().ok()?;
    let mul = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    Some(chrono::Utc::now().timestamp() - n * mul)
}

impl Engine {
    /// Bytes in the container's upper dir.
    pub(crate) async fn rw_size(&self, id: &str) -> i64 {
        let Some(store) = self.inner.raw_store.clone() else {
            return 0;
        };
        let id = id.to_string();
        tokio::task::spawn_blocking(move || {
            let Ok(l) = store.rw_layer(&id) else { return 0 };
            fn walk(p: &std::path::Path) -> i64 {
                let mut n = 0;
                if let Ok(rd) = std::fs::read_dir(p) {
                    for e in rd.flatten() {
                        if let Ok(m) = e.metadata() {
                            if m.is_dir() {
                                n += walk(&e.path());
                            } else {
                                n += m.len() as i64;
                            }
                        }
                    }
                }
                n
            }
            walk(&l.upper)
        })
        .await
        .unwrap_or(0)
    }
}

/// What `ancestor=` values select: each named image and every image built on it, by ID.
/// A name that resolves to no image selects nothing.
fn ancestry(
    store: &dyn crate::images::store::ImageStore,
    names: &[String],
) -> std::collections::HashSet<String> {
    let roots = names
        .iter()
        .filter_map(|n| store.image(n).ok())
        .map(|i| i.id)
        .collect();
    let images = store.images().unwrap_or_default();
    crate::images::plan::with_descendants(&images, roots)
        .iter()
        .map(ToString::to_string)
        .collect()
}
