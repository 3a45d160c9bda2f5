//! Container lifecycle: start (rw mount, network, /etc files, spec, shim), the exit monitor
//! (cleanup, restart policies, auto-remove), stop/kill/wait/remove, and recovery on daemon start.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_api_types::models::RestartPolicyNameEnum as R;
use berth_api_types::{ApiError, ApiResult};
use berth_network::EndpointConfig;
use berth_runtime::{ContainerSpec, LogConfig, MountSpec, NetworkMode, Shim};

use super::plan::{ns_mode, parse_size, port_mappings, resources_of};

use super::{lock, now_rfc3339, Ctr, Record};
use crate::engine::Engine;

/// What start created, for unwinding on failure.
#[derive(Default)]
struct Undo {
    mounted: bool,
    netns: Option<PathBuf>,
    shim: Option<Shim>,
}

impl Engine {
    pub(crate) async fn network(&self) -> ApiResult<Arc<berth_network::NetworkManager>> {
        let cs = &self.inner.containers;
        let root = self.inner.cfg.root.join("network");
        let run = self.inner.cfg.exec_root.clone();
        cs.net
            .get_or_try_init(|| async move {
                let opts = crate::networks::manager_options(
                    run,
                    &self.inner.cfg.network,
                    &self.inner.file.network(),
                    |k| std::env::var(k).ok(),
                )?;
                berth_network::NetworkManager::open(&root, opts)
                    .await
                    .map(Arc::new)
                    .map_err(|e| ApiError::internal(format!("open networks: {e}")))
            })
            .await
            .cloned()
    }

    /// Start a created or exited container. Ok(false) when already running.
    pub(crate) async fn ctr_start(&self, ctr: &Arc<Ctr>) -> ApiResult<bool> {
        let _op = ctr.op.lock().await;
        let r = ctr.snapshot();
        if r.state.status == "paused" {
            return Err(ApiError::conflict(
                "cannot start a paused container, try unpause instead",
            ));
        }
        if r.running() {
            return Ok(false);
        }
        if r.state.status == "removing" || r.state.status == "dead" {
            return Err(ApiError::conflict(format!(
                "container {} is marked for removal and cannot be started",
                r.id
            )));
        }
        let mut undo = Undo::default();
        match self.ctr_start_inner(ctr, &r, &mut undo).await {
            Ok(()) => Ok(true),
            Err((e, code)) => {
                self.ctr_unwind(&r.id, undo).await;
                {
                    let mut g = lock(&ctr.rec);
                    g.state.error = e.to_string();
                    g.state.exit_code = code;
                    g.state.status = if g.state.status == "created" {
                        "created"
                    } else {
                        "exited"
                    }
                    .into();
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
                    drop(_op);
                    let _ = self.ctr_remove(ctr, true, true).await;
                }
                Err(e)
            }
        }
    }

    async fn ctr_unwind(&self, id: &str, undo: Undo) {
        if let Some(s) = undo.shim {
            let _ = s.kill(libc::SIGKILL).await;
            let _ = s.wait().await;
        }
        self.ctr_release(id, undo.netns.as_ref()).await;
        if undo.mounted {
            self.unmount_rw(id).await;
        }
    }

    async fn unmount_rw(&self, id: &str) {
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
        if let Some(net) = self.inner.containers.net.get() {
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

    async fn ctr_start_inner(
        &self,
        ctr: &Arc<Ctr>,
        r: &Record,
        undo: &mut Undo,
    ) -> Result<(), (ApiError, i64)> {
        let id = r.id.clone();
        let t0 = std::time::Instant::now();
        let ms = |what: &str| phase(&id, t0, "start", what);
        let cs = &self.inner.containers;
        let dir = cs.ctr_dir(&id);
        // Start the cgroup-migration grace period now, while the shim starts (see
        // `prewarm_migration`): 15-20 ms off `run --rm` here.
        tokio::task::spawn_blocking(|| {
            berth_runtime::cgroups::prewarm_migration(std::path::Path::new(
                berth_runtime::cgroups::CGROUP_ROOT,
            ))
        });
        let err128 = |e: ApiError| (e, 128i64);
        let store = self
            .inner
            .raw_store
            .clone()
            .ok_or_else(|| err128(ApiError::unavailable("no layer store")))?;
        let id2 = id.clone();
        let volatile = r.host_config.auto_remove.unwrap_or(false);
        let rootfs = tokio::task::spawn_blocking(move || {
            // An auto-removed container's writes are thrown away at exit: no sync on unmount.
            if volatile {
                store.mount_rw_layer_volatile(&id2)
            } else {
                store.mount_rw_layer(&id2)
            }
        })
        .await
        .map_err(|e| err128(ApiError::internal(e.to_string())))?
        .map_err(|e| err128(ApiError::internal(format!("mount rootfs of {id}: {e}"))))?;
        undo.mounted = true;
        ms("rootfs mounted");
        let hc = &r.host_config;
        // Network.
        let mode = hc.network_mode.clone().unwrap_or_default();
        let mode = if mode.is_empty() || mode == "default" {
            "bridge".to_string()
        } else {
            mode
        };
        let hostname = r.config.hostname.clone().unwrap_or_default();
        let mut ips: Vec<IpAddr> = Vec::new();
        let mut endpoints = Vec::new();
        let mut published = Vec::new();
        let (netmode, resolv) = match mode.as_str() {
            "host" => (
                NetworkMode::Host,
                std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            ),
            "none" => {
                // Docker's "none" sandbox: a namespace of the container's own with only the
                // loopback interface, up (a bare unshared netns leaves lo down). Made without
                // the network manager: `none` needs no bridge or firewall.
                let ns = self.inner.cfg.exec_root.join("netns").join(&id);
                berth_network::netlink::create_netns(&ns)
                    .await
                    .map_err(|e| err128(ApiError::internal(format!("create netns: {e}"))))?;
                undo.netns = Some(ns.clone());
                (NetworkMode::Path(ns), String::new())
            }
            m if m.starts_with("container:") => {
                let other = cs.get(&m["container:".len()..]).map_err(err128)?;
                let o = other.snapshot();
                if !o.running() {
                    return Err(err128(ApiError::conflict(format!(
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
                (NetworkMode::Path(p), resolv)
            }
            net_name => {
                let net = self.network().await.map_err(err128)?;
                let ns = net
                    .create_netns(&id)
                    .await
                    .map_err(|e| err128(ApiError::internal(format!("create netns: {e}"))))?;
                undo.netns = Some(ns.clone());
                let mut aliases = vec![];
                let mut static_ip = None;
                let mut mac = None;
                let mut links = vec![];
                if let Some(nc) = &r.networking {
                    if let Some(eps) = &nc.endpoints_config {
                        if let Some(es) = eps.get(net_name) {
                            links = crate::networks::endpoint_links(Some(es));
                            aliases.extend(es.aliases.clone().unwrap_or_default());
                            mac = es.mac_address.clone().filter(|m| !m.is_empty());
                            static_ip = es
                                .ipam_config
                                .as_ref()
                                .and_then(|i| i.ipv4_address.clone())
                                .and_then(|s| s.parse().ok());
                        }
                    }
                }
                if !hostname.is_empty() {
                    aliases.push(hostname.clone());
                }
                let ep = net
                    .connect(
                        &ns,
                        net_name,
                        EndpointConfig {
                            container_id: id.clone(),
                            name: r.name.clone(),
                            aliases,
                            ip: static_ip,
                            mac,
                            links,
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(|e| err128(ApiError::new(e.kind(), e.to_string())))?;
                ips.push(ep.ip);
                let maps = port_mappings(r).map_err(err128)?;
                if !maps.is_empty() {
                    published = net.publish(ep.ip, maps).await.map_err(|e| {
                        err128(ApiError::new(
                            if e.kind() == berth_network::ErrorKind::Conflict {
                                berth_api_types::ErrorKind::Conflict
                            } else {
                                berth_api_types::ErrorKind::Internal
                            },
                            format!("driver failed programming external connectivity on endpoint {} ({id}): {e}", r.name),
                        ))
                    })?;
                }
                let ov = berth_network::files::DnsOverrides {
                    servers: hc
                        .dns
                        .clone()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|s| s.parse().ok())
                        .collect(),
                    search: hc.dns_search.clone().unwrap_or_default(),
                    options: hc.dns_options.clone().unwrap_or_default(),
                };
                let resolv = net.resolv_conf(net_name, &ov).await.unwrap_or_default();
                endpoints.push(ep);
                let extra = self
                    .connect_extra_networks(r, &ns, net_name)
                    .await
                    .map_err(err128)?;
                ips.extend(extra.iter().map(|e| e.ip));
                endpoints.extend(extra);
                (NetworkMode::Path(ns), resolv)
            }
        };
        ms("network ready");
        // /etc files.
        let extras = self.start_extras(r, &mode).map_err(err128)?;
        let extra: Vec<(String, IpAddr)> = hc
            .extra_hosts
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|h| {
                let (n, ip) = h.split_once(':').or_else(|| h.split_once('='))?;
                Some((n.to_string(), ip.parse().ok()?))
            })
            .collect();
        let extra = [extras.hosts.clone(), extra].concat();
        let hosts = if mode == "host" {
            std::fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            berth_network::files::hosts_file(&berth_network::files::HostsInput {
                hostname: &hostname,
                domainname: r.config.domainname.as_deref().unwrap_or(""),
                ips: &ips,
                extra_hosts: &extra,
                ipv6: false,
            })
        };
        let write = |n: &str, t: &str| {
            std::fs::write(dir.join(n), t)
                .map_err(|e| err128(ApiError::internal(format!("write {n} of {id}: {e}"))))
        };
        write("hostname", &format!("{hostname}\n"))?;
        write("hosts", &hosts)?;
        write("resolv.conf", &resolv)?;
        let mut mounts = vec![];
        for f in ["hostname", "hosts", "resolv.conf"] {
            mounts.push(MountSpec {
                destination: format!("/etc/{f}"),
                kind: "bind".into(),
                source: dir.join(f).display().to_string(),
                options: vec!["rbind".into(), "rprivate".into()],
            });
        }
        mounts.extend(r.mount_specs.iter().cloned());
        if !r.seeded && !r.mount_specs.is_empty() {
            let applied: Vec<crate::volumes_mounts::AppliedMount> = r
                .planned_mounts
                .iter()
                .zip(r.mount_specs.iter())
                .zip(r.mount_points.iter())
                .map(|((p, s), pt)| crate::volumes_mounts::AppliedMount {
                    planned: p.clone(),
                    spec: s.clone(),
                    point: pt.clone(),
                    new_volume: false,
                })
                .collect();
            self.seed_mounts(&rootfs, applied).await.map_err(err128)?;
            lock(&ctr.rec).seeded = true;
        }
        ms("etc files written");
        // User.
        let uspec = r.config.user.clone().unwrap_or_default();
        let groups = hc.group_add.clone().unwrap_or_default();
        let rootfs2 = rootfs.clone();
        let user = tokio::task::spawn_blocking(move || {
            berth_runtime::user::resolve_in_rootfs(&rootfs2, &uspec, &groups)
        })
        .await
        .map_err(|e| err128(ApiError::internal(e.to_string())))?
        .map_err(|e| err128(ApiError::invalid(e.to_string())))?;
        let (rootfs2, wd) = (rootfs.clone(), r.config.working_dir.clone());
        tokio::task::spawn_blocking(move || {
            super::workdir::ensure(&rootfs2, wd.as_deref().unwrap_or(""))
        })
        .await
        .map_err(|e| err128(ApiError::internal(e.to_string())))?
        .map_err(err128)?;
        let mut args = vec![r.path.clone()];
        args.extend(r.args.clone());
        let sec = super::security::confinement(hc).map_err(err128)?;
        let spec = ContainerSpec {
            id: id.clone(),
            rootfs: rootfs.clone(),
            args,
            env: extras.env_with(&r.config.env.clone().unwrap_or_default()),
            cwd: r.config.working_dir.clone().unwrap_or_default(),
            user,
            tty: r.config.tty.unwrap_or(false),
            open_stdin: r.config.open_stdin.unwrap_or(false),
            hostname: hostname.clone(),
            domainname: r.config.domainname.clone().unwrap_or_default(),
            readonly_rootfs: hc.readonly_rootfs.unwrap_or(false),
            mounts,
            cap_add: hc.cap_add.clone().unwrap_or_default(),
            cap_drop: hc.cap_drop.clone().unwrap_or_default(),
            privileged: hc.privileged.unwrap_or(false),
            no_new_privileges: sec.opts.no_new_privileges,
            seccomp: sec.opts.seccomp,
            masked_paths: sec.masked_paths,
            readonly_paths: sec.readonly_paths,
            resources: resources_of(hc),
            ulimits: hc
                .ulimits
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|u| berth_runtime::Ulimit {
                    name: u.name.unwrap_or_default(),
                    soft: u.soft.unwrap_or(0).max(0) as u64,
                    hard: u.hard.unwrap_or(0).max(0) as u64,
                })
                .collect(),
            oom_score_adj: hc.oom_score_adj.map(|v| v as i32),
            sysctls: hc.sysctls.clone().unwrap_or_default().into_iter().collect(),
            network: netmode,
            ipc: ns_mode(&hc.ipc_mode),
            pid: ns_mode(&hc.pid_mode),
            uts: ns_mode(&hc.uts_mode),
            init: extras.init.clone(),
            stop_signal: r.config.stop_signal.clone(),
            cgroup_parent: hc.cgroup_parent.clone().filter(|c| !c.is_empty()),
            labels: r
                .config
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            shm_size: hc.shm_size.filter(|s| *s > 0).map(|s| s as u64),
            auto_remove: hc.auto_remove.unwrap_or(false),
            devices: sec.devices,
            device_rules: sec.device_rules,
            apparmor_profile: sec.opts.apparmor_profile,
        };
        let log = self.log_config(r);
        let cfg = berth_runtime::ShimConfig {
            spec,
            state_root: self.inner.cfg.exec_root.join("runtime"),
            log,
            start_on_request: true,
        };
        ms("spec planned");
        let exe = shim_exe();
        let (shim, started) = match Shim::spawn(&exe, &dir, &cfg).await {
            Ok(x) => x,
            Err(e) => {
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
                return Err((ApiError::new(kind, msg), code));
            }
        };
        undo.shim = Some(shim.clone());
        ms("shim created the container");
        // Hand the shim to attaches waiting for this start; they attach, then we start.
        let waiters: Vec<_> = std::mem::take(&mut *lock(&ctr.attach_waiters));
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
        ms("attaches ready");
        shim.start()
            .await
            .map_err(|e| err128(ApiError::internal(format!("start container {id}: {e}"))))?;
        ms("container started");
        {
            let mut g = lock(&ctr.rec);
            g.state.status = "running".into();
            g.state.pid = started.container_pid;
            g.state.shim_pid = started.shim_pid;
            g.state.error.clear();
            g.state.exit_code = 0;
            g.state.oom_killed = false;
            g.state.started_at = now_rfc3339();
            g.endpoints = endpoints;
            g.ports = published;
            g.netns = undo.netns.clone();
            g.manually_stopped = false;
        }
        cs.save(ctr);
        ctr.life.send_modify(|l| l.starts += 1);
        let rec = ctr.snapshot();
        self.ctr_event("start", &rec, HashMap::new());
        self.spawn_monitor(ctr.clone(), shim);
        self.spawn_health(ctr.clone());
        self.update_link_parents(&rec);
        ms("recorded");
        Ok(())
    }

    fn log_config(&self, r: &Record) -> LogConfig {
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
        ms("rootfs unmounted");
        let rec = {
            let mut g = lock(&ctr.rec);
            g.state.status = "exited".into();
            g.state.exit_code = code;
            g.state.oom_killed = oom;
            g.state.finished_at = finished;
            g.state.pid = 0;
            g.state.shim_pid = 0;
            g.state.error = err;
            g.netns = None;
            g.endpoints.clear();
            g.ports.clear();
            g.clone()
        };
        // Restart policy (never together with auto-remove: create refuses that pair).
        let policy = rec.host_config.restart_policy.clone().unwrap_or_default();
        let name = policy.name.unwrap_or(R::EMPTY);
        let max = policy.maximum_retry_count.unwrap_or(0);
        let restart = !rec.manually_stopped
            && match name {
                R::ALWAYS | R::UNLESS_STOPPED => true,
                R::ON_FAILURE => code != 0 && (max == 0 || rec.restart_count < max),
                _ => false,
            };
        let auto_remove = !restart && rec.host_config.auto_remove.unwrap_or(false);
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
        if restart {
            let n = rec.restart_count;
            {
                let mut g = lock(&ctr.rec);
                g.restart_count += 1;
                g.state.status = "restarting".into();
            }
            self.inner.containers.save(&ctr);
            let delay = Duration::from_millis(100u64 << n.clamp(0, 9));
            let eng = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let still = {
                    let g = lock(&ctr.rec);
                    g.state.status == "restarting" && !g.manually_stopped
                };
                if still {
                    lock(&ctr.rec).state.status = "exited".into();
                    if let Err(e) = eng.ctr_start(&ctr).await {
                        tracing::warn!(container_id = %ctr.id(), error = %e, "restart failed");
                    }
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
