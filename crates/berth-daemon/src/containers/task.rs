//! A container's side of berth-task: [`CtrEffects`] (rw layer, network through the engine's
//! network service, files, shim) and [`CtrPrepare`] (links, init, volume seeding, user,
//! workdir, then the pure [`super::start_plan::start_plan`]; attach hand-off before start).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_runtime::{NetworkMode, Shim, ShimConfig, ShimStarted};
use berth_task::{Attached, Effects, MountedLayer, Prepare, StartPlan};

use super::plan::port_mappings;
use super::run::phase;
use super::start_plan::{network_mode, start_plan, Endpoints, StartContext};
use super::{lock, Ctr, Record};
use crate::engine::Engine;
use crate::error::DaemonError;

/// A failed start's error and the exit code it records (128 unless the runtime says 126/127).
pub(super) type StartFailure = (DaemonError, i64);

fn err128(e: impl Into<DaemonError>) -> StartFailure {
    (e.into(), 128)
}

/// The engine's effects for starting one container.
pub(super) struct CtrEffects {
    pub eng: Engine,
    pub record: Record,
    pub exe: PathBuf,
    pub t0: Instant,
}

#[async_trait::async_trait]
impl Effects for CtrEffects {
    type Shim = Shim;
    type Net = Endpoints;
    type Error = StartFailure;
    /// A container mounts no layer besides its rootfs.
    type Layer = std::convert::Infallible;

    async fn mount_rootfs(&self, id: &str) -> Result<PathBuf, StartFailure> {
        let store = self
            .eng
            .inner
            .raw_store
            .clone()
            .ok_or_else(|| err128(DaemonError::Unavailable("no layer store".into())))?;
        let id2 = id.to_string();
        let volatile = self.record.host_config.auto_remove.unwrap_or(false);
        tokio::task::spawn_blocking(move || {
            // An auto-removed container's writes are thrown away at exit: no sync on unmount.
            if volatile {
                store.mount_rw_layer_volatile(&id2)
            } else {
                store.mount_rw_layer(&id2)
            }
        })
        .await
        .map_err(err128)?
        .map_err(|e| err128(DaemonError::failed(format!("mount rootfs of {id}"), e)))
    }

    async fn unmount_rootfs(&self, id: &str) {
        self.eng.unmount_rw(id).await;
    }

    async fn mount_layer(
        &self,
        layer: &std::convert::Infallible,
    ) -> Result<MountedLayer, StartFailure> {
        match *layer {}
    }

    /// Never called: [`Self::mount_layer`] cannot be.
    async fn unmount_layer(&self, _: &MountedLayer) {}

    async fn attach_network(&self, id: &str) -> Result<Attached<Endpoints>, StartFailure> {
        let mut netns = None;
        let r = self.eng.attach_network(&self.record, &mut netns).await;
        if r.is_err() {
            // Undo what the attach did before it failed (endpoints, the namespace).
            self.eng.ctr_release(id, netns.as_ref()).await;
        }
        r
    }

    async fn detach_network(&self, id: &str, netns: Option<&Path>) {
        self.eng
            .ctr_release(id, netns.map(Path::to_path_buf).as_ref())
            .await;
    }

    async fn write_file(&self, path: &Path, text: &str, what: &str) -> Result<(), StartFailure> {
        tokio::fs::write(path, text)
            .await
            .map_err(|e| err128(DaemonError::io(format!("write {what}"), e)))?;
        // Under --userns-remap the container's root owns its /etc files, as with dockerd.
        let ids = self.eng.inner.cfg.ids();
        if !ids.is_identity() {
            let (uid, gid) = ids.root();
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| err128(DaemonError::io(format!("chown {what}"), e)))?;
        }
        Ok(())
    }

    async fn remove_file(&self, path: &Path) {
        let _ = tokio::fs::remove_file(path).await;
    }

    fn shim_at(&self, dir: &Path) -> Shim {
        Shim::new(dir)
    }

    async fn spawn_shim(
        &self,
        dir: &Path,
        cfg: &ShimConfig,
    ) -> Result<(Shim, ShimStarted), berth_runtime::Error> {
        Shim::spawn(&self.exe, dir, cfg).await
    }

    async fn start_shim(&self, shim: &Shim) -> Result<(), berth_runtime::Error> {
        shim.start().await
    }

    async fn reap_shim(&self, shim: &Shim) {
        berth_task::reap(shim, None).await;
    }

    fn phase(&self, what: &str) {
        phase(&self.record.id, self.t0, "start", what);
    }
}

/// The container's planning and attach steps.
pub(super) struct CtrPrepare<'a> {
    pub eng: &'a Engine,
    pub ctr: &'a Arc<Ctr>,
    pub record: &'a Record,
}

#[async_trait::async_trait]
impl Prepare<CtrEffects> for CtrPrepare<'_> {
    async fn plan(
        &mut self,
        rootfs: &Path,
        net: &Attached<Endpoints>,
        _layers: &[MountedLayer],
    ) -> Result<StartPlan, StartFailure> {
        let (eng, r) = (self.eng, self.record);
        let id = &r.id;
        let hc = &r.host_config;
        let mode = network_mode(r);
        let extras = eng.start_extras(r, &mode).map_err(err128)?;
        // A shareable container's own shm is mounted now (released with its rootfs).
        if hc.ipc_mode.as_deref() == Some("shareable") {
            if let Some(dir) = extras.shm.clone() {
                let size = hc
                    .shm_size
                    .filter(|s| *s > 0)
                    .unwrap_or(super::create::DEFAULT_SHM_SIZE) as u64;
                tokio::task::spawn_blocking(move || super::shm::ensure(&dir, size))
                    .await
                    .map_err(err128)?
                    .map_err(|e| err128(DaemonError::io(format!("mount shm of {id}"), e)))?;
            }
        }
        if (!r.seeded || !r.seed_volumes.is_empty()) && !r.mount_specs.is_empty() {
            // The first start seeds every volume; later, only those an update added.
            let wanted = |pt: &super::stored::MountPoint| {
                !r.seeded || pt.name.as_ref().is_some_and(|n| r.seed_volumes.contains(n))
            };
            let applied: Vec<crate::volumes::mounts::AppliedMount> = r
                .planned_mounts
                .iter()
                .zip(r.mount_specs.iter())
                .zip(r.mount_points.iter())
                .filter(|((_, _), pt)| wanted(pt))
                .map(|((p, s), pt)| crate::volumes::mounts::AppliedMount {
                    planned: p.clone(),
                    spec: s.clone(),
                    point: pt.clone(),
                    new_volume: false,
                })
                .collect();
            eng.seed_mounts(rootfs, applied).await.map_err(err128)?;
            let mut g = lock(&self.ctr.rec);
            g.seeded = true;
            g.seed_volumes.clear();
        }
        let uspec = r.config.user.clone().unwrap_or_default();
        let groups = hc.group_add.clone().unwrap_or_default();
        let rootfs2 = rootfs.to_path_buf();
        let user = tokio::task::spawn_blocking(move || {
            berth_runtime::user::resolve_in_rootfs(&rootfs2, &uspec, &groups)
        })
        .await
        .map_err(err128)?
        .map_err(|e| err128(DaemonError::invalid(e)))?;
        let (rootfs2, wd) = (rootfs.to_path_buf(), r.config.working_dir.clone());
        let root = eng.inner.cfg.ids().root();
        tokio::task::spawn_blocking(move || {
            super::workdir::ensure(&rootfs2, wd.as_deref().unwrap_or(""), root)
        })
        .await
        .map_err(err128)?
        .map_err(err128)?;
        let sec = super::security::confinement(hc).map_err(err128)?;
        let ids = eng.inner.cfg.ids();
        if !ids.is_identity() {
            // The remapped root reaches its /etc files (bind sources) through these.
            let dir = eng.inner.containers.ctr_dir(id);
            for d in [dir.parent().unwrap_or(&dir), &dir] {
                berth_rootfs::fsmode::group_traverse(d, ids.root().1).map_err(|e| {
                    err128(DaemonError::io("open the container dir to its root", e))
                })?;
            }
        }
        let cx = StartContext {
            ids,
            dir: eng.inner.containers.ctr_dir(id),
            rootfs: rootfs.to_path_buf(),
            state_root: eng.inner.cfg.exec_root.join("runtime"),
            log: eng.log_config(r),
            host_hosts: (mode == "host")
                .then(|| std::fs::read_to_string("/etc/hosts").unwrap_or_default()),
        };
        Ok(start_plan(r, net, user, &extras, sec, cx))
    }

    async fn created(&mut self, shim: &Shim) -> Result<(), StartFailure> {
        // Hand the shim to attaches waiting for this start; they attach, then we start.
        let waiters: Vec<_> = std::mem::take(&mut *lock(&self.ctr.attach_waiters));
        let mut readies = Vec::new();
        for w in waiters {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if w.send((shim.clone(), tx)).is_ok() {
                readies.push(rx);
            }
        }
        for rx in readies {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
        Ok(())
    }
}

impl Engine {
    /// Give a starting container its network as its record asks (`host`, `none`,
    /// `container:<id>`, or a named network with its extra networks and ports). `netns` is
    /// set as soon as a namespace exists, so a failure can be undone.
    async fn attach_network(
        &self,
        r: &Record,
        netns: &mut Option<PathBuf>,
    ) -> Result<Attached<Endpoints>, StartFailure> {
        let id = r.id.clone();
        let cs = &self.inner.containers;
        let hc = &r.host_config;
        let mode = network_mode(r);
        match mode.as_str() {
            "host" => {
                // The host's file as it is, unless --dns/--dns-search/--dns-option ask for
                // something else (dockerd honours them on the host network too).
                let host = crate::networks::host_resolv_conf(&self.inner.cfg);
                let ov = dns_overrides(hc);
                let resolv =
                    if ov.servers.is_empty() && ov.search.is_empty() && ov.options.is_empty() {
                        host
                    } else {
                        berth_network::files::resolv_conf(
                            &host,
                            &berth_network::files::ResolvMode::Host,
                            &ov,
                        )
                    };
                Ok(Attached {
                    mode: NetworkMode::Host,
                    resolv,
                    ..Default::default()
                })
            }
            "none" => {
                // Docker's "none" sandbox: a namespace of the container's own with only the
                // loopback interface, up (a bare unshared netns leaves lo down). Made without
                // the network manager: `none` needs no bridge or firewall.
                let ns = self.inner.cfg.exec_root.join("netns").join(&id);
                berth_network::netlink::create_netns(&ns)
                    .await
                    .map_err(|e| err128(DaemonError::failed("create netns", e)))?;
                *netns = Some(ns.clone());
                Ok(Attached {
                    mode: NetworkMode::Path(ns.clone()),
                    netns: Some(ns),
                    ..Default::default()
                })
            }
            m if m.starts_with("container:") => {
                let other = cs.get(&m["container:".len()..]).map_err(err128)?;
                let o = other.snapshot();
                if !o.running() {
                    return Err(err128(DaemonError::Conflict(format!(
                        "cannot join network of a non running container: {}",
                        o.id
                    ))));
                }
                let p = o
                    .netns
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(format!("/proc/{}/ns/net", o.state.pid)));
                let resolv = std::fs::read_to_string(cs.ctr_dir(&o.id).join("resolv.conf"))
                    .unwrap_or_default();
                Ok(Attached {
                    mode: NetworkMode::Path(p),
                    resolv,
                    ..Default::default()
                })
            }
            net_name => {
                let net = self.network().await.map_err(err128)?;
                let ns = net
                    .create_netns(&id)
                    .await
                    .map_err(|e| err128(DaemonError::failed("create netns", e)))?;
                *netns = Some(ns.clone());
                // The first network's endpoint as `network connect` builds one: aliases,
                // links, MAC and both static addresses (`--ip`, `--ip6`).
                let es = r
                    .networking
                    .as_ref()
                    .and_then(|nc| nc.endpoints_config.as_ref())
                    .and_then(|eps| eps.get(net_name));
                let cfg = crate::networks::endpoint_config(r, es).map_err(err128)?;
                let ep = net.connect(&ns, net_name, cfg).await.map_err(err128)?;
                let mut ips = vec![ep.ip];
                let mut published = Vec::new();
                let maps = port_mappings(r).map_err(err128)?;
                if !maps.is_empty() {
                    published = net.publish(ep.ip, maps).await.map_err(|source| {
                        err128(DaemonError::PortPublish {
                            endpoint: r.name.clone(),
                            id: id.clone(),
                            source: Box::new(source),
                        })
                    })?;
                }
                let ov = dns_overrides(hc);
                let resolv = net.resolv_conf(net_name, &ov).await.unwrap_or_default();
                let mut endpoints = vec![ep];
                let extra = self
                    .connect_extra_networks(r, &ns, net_name)
                    .await
                    .map_err(err128)?;
                ips.extend(extra.iter().map(|e| e.ip));
                endpoints.extend(extra);
                Ok(Attached {
                    mode: NetworkMode::Path(ns.clone()),
                    netns: Some(ns),
                    resolv,
                    ips,
                    extra: Endpoints {
                        endpoints,
                        published,
                    },
                })
            }
        }
    }
}

/// The container's `--dns`, `--dns-search` and `--dns-option` (empty: keep the computed ones).
fn dns_overrides(hc: &super::stored::HostConfig) -> berth_network::files::DnsOverrides {
    berth_network::files::DnsOverrides {
        servers: hc
            .dns
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect(),
        search: hc.dns_search.clone().unwrap_or_default(),
        options: hc.dns_options.clone().unwrap_or_default(),
    }
}
