//! Container lifecycle: start (rw mount, network, /etc files, spec, shim), the exit monitor
//! (cleanup, restart policies, auto-remove), stop/kill/wait/remove, and recovery on daemon start.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_api::models::RestartPolicyNameEnum as R;
use berth_api::{ApiError, ApiResult};
use berth_network::{EndpointConfig, PortMapping, Proto};
use berth_runtime::{ContainerSpec, LogConfig, MountSpec, NetworkMode, NsMode, Resources, Shim};

use super::{lock, now_rfc3339, Ctr, Record};
use crate::engine::Engine;

/// Parse `SIGTERM`, `TERM`, `15`.
pub fn parse_signal(s: &str) -> ApiResult<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => {
            if let Some(off) = name
                .strip_prefix("RTMIN+")
                .and_then(|n| n.parse::<i32>().ok())
            {
                return Ok(libc::SIGRTMIN() + off);
            }
            return Err(ApiError::invalid(format!("Invalid signal: {s}")));
        }
    };
    Ok(n)
}

fn not_running(id: &str) -> ApiError {
    ApiError::conflict(format!("Container {id} is not running"))
}

/// Docker-style port spec key `80/tcp` → (port, proto).
fn parse_port_key(k: &str) -> Option<(u16, Proto)> {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    Some((p.parse().ok()?, proto.parse().ok()?))
}

/// The port mappings a container asks for (`-p`, `-P`).
pub fn port_mappings(r: &Record) -> ApiResult<Vec<PortMapping>> {
    let mut out = Vec::new();
    let pb = r.host_config.port_bindings.clone().unwrap_or_default();
    for (k, binds) in &pb {
        let (cport, proto) = parse_port_key(k)
            .ok_or_else(|| ApiError::invalid(format!("invalid port specification: {k:?}")))?;
        for b in binds.clone().unwrap_or_default() {
            let hip = b.host_ip.unwrap_or_default();
            let host_ip: IpAddr = if hip.is_empty() {
                IpAddr::from([0, 0, 0, 0])
            } else {
                hip.parse()
                    .map_err(|_| ApiError::invalid(format!("invalid host IP {hip:?}")))?
            };
            let hp = b.host_port.unwrap_or_default();
            let host_port: u16 = if hp.is_empty() {
                0
            } else {
                hp.split('-')
                    .next()
                    .unwrap_or("0")
                    .parse()
                    .map_err(|_| ApiError::invalid(format!("invalid host port {hp:?}")))?
            };
            out.push(PortMapping {
                host_ip,
                host_port,
                container_port: cport,
                proto,
            });
        }
    }
    if r.host_config.publish_all_ports.unwrap_or(false) {
        for k in r.config.exposed_ports.clone().unwrap_or_default() {
            if pb.contains_key(&k) {
                continue;
            }
            if let Some((cport, proto)) = parse_port_key(&k) {
                out.push(PortMapping {
                    host_ip: IpAddr::from([0, 0, 0, 0]),
                    host_port: 0,
                    container_port: cport,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

/// Parse a memory size like `64m` from log options.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mul) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        'b' => (&s[..s.len() - 1], 1),
        _ => (&s[..], 1),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

/// Resources from a host config (Docker's units).
pub fn resources_of(h: &berth_api::models::HostConfig) -> Resources {
    let nano = h.nano_cpus.unwrap_or(0);
    let (quota, period) = if nano > 0 {
        (nano * 100_000 / 1_000_000_000, 100_000u64)
    } else {
        (h.cpu_quota.unwrap_or(0), h.cpu_period.unwrap_or(0) as u64)
    };
    Resources {
        memory: h.memory.unwrap_or(0),
        memory_swap: h.memory_swap.unwrap_or(0),
        memory_reservation: h.memory_reservation.unwrap_or(0),
        cpu_shares: h.cpu_shares.unwrap_or(0).max(0) as u64,
        cpu_quota: quota,
        cpu_period: period,
        cpuset_cpus: h.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: h.cpuset_mems.clone().unwrap_or_default(),
        pids_limit: h.pids_limit.unwrap_or(0).max(0),
        blkio_weight: h.blkio_weight.unwrap_or(0),
    }
}

fn ns_mode(v: &Option<String>) -> NsMode {
    if v.as_deref() == Some("host") {
        NsMode::Host
    } else {
        NsMode::Private
    }
}

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
                let mut opts = berth_network::ManagerOptions::new(run);
                if let Ok(b) = std::env::var("BERTH_DEFAULT_BRIDGE") {
                    opts.default_bridge = Some(b);
                }
                if let Ok(n) = std::env::var("BERTH_DEFAULT_BRIDGE_SUBNET") {
                    let net = n.parse().map_err(|e| {
                        ApiError::invalid(format!("BERTH_DEFAULT_BRIDGE_SUBNET {n:?}: {e}"))
                    })?;
                    opts.default_bridge_candidates = vec![net];
                }
                if let Ok(t) = std::env::var("BERTH_NFT_TABLE") {
                    opts.nft_table = t;
                }
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
    async fn ctr_release(&self, id: &str, netns: Option<&PathBuf>) {
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
        }
    }

    async fn ctr_start_inner(
        &self,
        ctr: &Arc<Ctr>,
        r: &Record,
        undo: &mut Undo,
    ) -> Result<(), (ApiError, i64)> {
        let id = r.id.clone();
        let cs = &self.inner.containers;
        let dir = cs.ctr_dir(&id);
        let err128 = |e: ApiError| (e, 128i64);
        let store = self
            .inner
            .raw_store
            .clone()
            .ok_or_else(|| err128(ApiError::unavailable("no layer store")))?;
        let id2 = id.clone();
        let rootfs = tokio::task::spawn_blocking(move || store.mount_rw_layer(&id2))
            .await
            .map_err(|e| err128(ApiError::internal(e.to_string())))?
            .map_err(|e| err128(ApiError::internal(format!("mount rootfs of {id}: {e}"))))?;
        undo.mounted = true;
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
            "none" => (NetworkMode::None, String::new()),
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
                if let Some(nc) = &r.networking {
                    if let Some(eps) = &nc.endpoints_config {
                        if let Some(es) = eps.get(net_name) {
                            aliases.extend(es.aliases.clone().unwrap_or_default());
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
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(|e| {
                        let kind = match e.kind() {
                            berth_network::ErrorKind::NotFound => berth_api::ErrorKind::NotFound,
                            berth_network::ErrorKind::Conflict => berth_api::ErrorKind::Conflict,
                            berth_network::ErrorKind::Invalid => berth_api::ErrorKind::Invalid,
                            _ => berth_api::ErrorKind::Internal,
                        };
                        err128(ApiError::new(kind, e.to_string()))
                    })?;
                ips.push(ep.ip);
                let maps = port_mappings(r).map_err(err128)?;
                if !maps.is_empty() {
                    published = net.publish(ep.ip, maps).await.map_err(|e| {
                        err128(ApiError::new(
                            if e.kind() == berth_network::ErrorKind::Conflict {
                                berth_api::ErrorKind::Conflict
                            } else {
                                berth_api::ErrorKind::Internal
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
                (NetworkMode::Path(ns), resolv)
            }
        };
        // /etc files.
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
        let mut args = vec![r.path.clone()];
        args.extend(r.args.clone());
        let mut seccomp = berth_runtime::SeccompMode::Default;
        let mut nnp = false;
        for s in hc.security_opt.clone().unwrap_or_default() {
            match s.as_str() {
                "seccomp=unconfined" | "seccomp:unconfined" => {
                    seccomp = berth_runtime::SeccompMode::Unconfined
                }
                "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                    nnp = true
                }
                _ => {}
            }
        }
        let spec = ContainerSpec {
            id: id.clone(),
            rootfs: rootfs.clone(),
            args,
            env: r.config.env.clone().unwrap_or_default(),
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
            no_new_privileges: nnp,
            seccomp,
            masked_paths: hc.masked_paths.clone(),
            readonly_paths: hc.readonly_paths.clone(),
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
            init: None,
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
        };
        let log = self.log_config(r);
        let cfg = berth_runtime::ShimConfig {
            spec,
            state_root: self.inner.cfg.exec_root.join("runtime"),
            log,
            start_on_request: true,
        };
        let exe = shim_exe();
        let (shim, started) = match Shim::spawn(&exe, &dir, &cfg).await {
            Ok(x) => x,
            Err(e) => {
                let code = match &e {
                    berth_runtime::Error::Exec { exit_code, .. } => *exit_code as i64,
                    _ => 128,
                };
                let kind = match e.kind() {
                    berth_runtime::ErrorKind::Invalid => berth_api::ErrorKind::Invalid,
                    _ => berth_api::ErrorKind::Internal,
                };
                let msg = format!(
                    "failed to create task for container: OCI runtime create failed: {e}: unknown"
                );
                return Err((ApiError::new(kind, msg), code));
            }
        };
        undo.shim = Some(shim.clone());
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
        shim.start()
            .await
            .map_err(|e| err128(ApiError::internal(format!("start container {id}: {e}"))))?;
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

    async fn on_exit(&self, ctr: Arc<Ctr>, exit: berth_runtime::Result<berth_runtime::ExitInfo>) {
        let id = ctr.id();
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
        self.unmount_rw(&id).await;
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
        self.inner.containers.save(&ctr);
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
        // Restart policy.
        let policy = rec.host_config.restart_policy.clone().unwrap_or_default();
        let name = policy.name.unwrap_or(R::EMPTY);
        let max = policy.maximum_retry_count.unwrap_or(0);
        let restart = !rec.manually_stopped
            && match name {
                R::ALWAYS | R::UNLESS_STOPPED => true,
                R::ON_FAILURE => code != 0 && (max == 0 || rec.restart_count < max),
                _ => false,
            };
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
        if rec.host_config.auto_remove.unwrap_or(false) {
            if let Err(e) = self.ctr_remove(&ctr, true, true).await {
                tracing::warn!(container_id = %id, error = %e, "auto-remove failed");
            }
        }
    }

    /// Send a signal (validated) to a running container.
    pub(crate) async fn ctr_kill(&self, ctr: &Arc<Ctr>, signal: Option<String>) -> ApiResult<()> {
        let sig = match signal.as_deref() {
            None | Some("") => libc::SIGKILL,
            Some(s) => parse_signal(s)?,
        };
        let r = ctr.snapshot();
        if !r.running() || r.state.status == "restarting" {
            if r.state.status == "restarting" {
                lock(&ctr.rec).manually_stopped = true;
                return Ok(());
            }
            return Err(not_running(&r.id));
        }
        if sig == libc::SIGKILL {
            lock(&ctr.rec).manually_stopped = true;
        }
        let shim = Shim::new(self.inner.containers.ctr_dir(&r.id));
        shim.kill(sig)
            .await
            .map_err(|e| ApiError::internal(format!("kill {}: {e}", r.id)))?;
        let mut attrs = HashMap::new();
        attrs.insert("signal".to_string(), sig.to_string());
        self.ctr_event("kill", &r, attrs);
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
    ) -> ApiResult<bool> {
        let r = ctr.snapshot();
        if r.state.status == "restarting" {
            lock(&ctr.rec).manually_stopped = true;
            lock(&ctr.rec).state.status = "exited".into();
            self.inner.containers.save(ctr);
            return Ok(true);
        }
        if !r.running() {
            return Ok(false);
        }
        lock(&ctr.rec).manually_stopped = true;
        self.inner.containers.save(ctr);
        if r.state.status == "paused" {
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
    ) -> ApiResult<()> {
        let r = ctr.snapshot();
        if r.state.status == "removing" {
            return Err(ApiError::conflict(format!(
                "removal of container {} is already in progress",
                r.id
            )));
        }
        if r.running() {
            if !force {
                let what = if r.state.status == "paused" {
                    "paused"
                } else {
                    "running"
                };
                return Err(ApiError::conflict(format!(
                    "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                    r.name
                )));
            }
            lock(&ctr.rec).manually_stopped = true;
            let from = ctr.life.borrow().exits;
            if r.state.status == "paused" {
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
        lock(&ctr.rec).state.status = "removing".into();
        let id = r.id.clone();
        if let Some(store) = self.inner.raw_store.clone() {
            let id2 = id.clone();
            let res = tokio::task::spawn_blocking(move || store.remove_rw_layer(&id2)).await;
            if let Ok(Err(e)) = res {
                if !matches!(e, berth_store::StoreError::RwLayerNotFound(_)) {
                    tracing::warn!(container_id = %id, error = %e, "remove rw layer");
                }
            }
        }
        let dir = self.inner.containers.ctr_dir(&id);
        berth_runtime::cgroups::remove_dirs(
            std::path::Path::new(berth_runtime::cgroups::CGROUP_ROOT),
            &format!("/berth/{id}"),
        );
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %dir.display(), error = %e, "remove container dir");
            }
        }
        self.release_mounts(&id, volumes).await;
        lock(&self.inner.containers.map).remove(&id);
        lock(&self.inner.containers.execs).retain(|_, e| lock(e).container_id != id);
        self.ctr_event("destroy", &r, HashMap::new());
        ctr.life.send_modify(|l| l.removed = true);
        Ok(())
    }

    /// Register a waiter now; the future resolves per `condition`.
    pub(crate) fn ctr_wait(
        &self,
        ctr: &Arc<Ctr>,
        condition: &str,
    ) -> ApiResult<futures::future::BoxFuture<'static, serde_json::Value>> {
        let mut rx = ctr.life.subscribe();
        let cur = *rx.borrow();
        let r = ctr.snapshot();
        let result = |code: i64| serde_json::json!({ "StatusCode": code, "Error": null });
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
            other => Err(ApiError::invalid(format!(
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
        let had_net = cs.all().iter().any(|c| lock(&c.rec).netns.is_some());
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
                            "paused"
                        } else {
                            "running"
                        }
                        .into();
                    }
                    active.push(berth_network::ActiveEndpoint {
                        container_id: r.id.clone(),
                    });
                    self.spawn_monitor(ctr.clone(), shim);
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

/// The binary whose `shim` subcommand runs containers: `BERTH_SHIM_EXE`, else ourselves.
pub fn shim_exe() -> PathBuf {
    // /proc/self/exe keeps working after the binary on disk is replaced (upgrades).
    std::env::var_os("BERTH_SHIM_EXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/self/exe"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_sizes() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("kill").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("512"), Some(512));
    }

    #[test]
    fn ports_from_bindings_and_publish_all() {
        let mut r = Record::default();
        let mut pb = std::collections::HashMap::new();
        pb.insert(
            "80/tcp".to_string(),
            Some(vec![berth_api::models::PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some("8080".into()),
            }]),
        );
        r.host_config.port_bindings = Some(pb);
        r.host_config.publish_all_ports = Some(true);
        r.config.exposed_ports = Some(vec!["80/tcp".into(), "53/udp".into()]);
        let m = port_mappings(&r).unwrap();
        assert_eq!(m.len(), 2);
        assert!(m
            .iter()
            .any(|p| p.host_port == 8080 && p.container_port == 80));
        assert!(m.iter().any(|p| p.host_port == 0 && p.proto == Proto::Udp));
    }
}
