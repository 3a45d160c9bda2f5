//! `POST /containers/create`: merge the image config into the request as Docker does,
//! validate limits, names, health checks, init, links and MAC addresses, create the rw layer
//! and the record.

use super::Status;
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{DaemonError, Result};
use berth_api_types::models::{ContainerCreateBody, EventMessageTypeEnum};
use berth_oci::ImageRuntimeConfig;

use super::names::{generate_name, valid_name};
use super::stored::{ContainerConfig, HealthConfig, HostConfig, NetworkingConfig};
use super::{lock, new_id, now_rfc3339, Ctr, CtrState, Record, ZERO_TIME};
use crate::engine::Engine;

/// Docker's minimum memory limit.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

pub(super) use berth_api_types::container_types::DEFAULT_SHM_SIZE;

pub use crate::error::with_latest;

fn env_key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

/// Merge the image's runtime config under the request's, Docker's rules: an explicit
/// entrypoint drops the image's Cmd; env is merged by key; the rest fall back to the image.
pub fn merge_config(req: &mut ContainerConfig, img: &ImageRuntimeConfig) {
    let user_ep = req.entrypoint.clone();
    match user_ep {
        Some(ep) => {
            let ep: Vec<String> = if ep.len() == 1 && ep[0].is_empty() {
                Vec::new()
            } else {
                ep
            };
            req.entrypoint = Some(ep);
        }
        None => {
            req.entrypoint = img.entrypoint.clone();
            if req.cmd.as_ref().is_none_or(|c| c.is_empty()) {
                req.cmd = img.cmd.clone();
            }
        }
    }
    let mut env: Vec<String> = img.env.clone().unwrap_or_default();
    for e in req.env.clone().unwrap_or_default() {
        let k = env_key(&e).to_string();
        env.retain(|x| env_key(x) != k);
        env.push(e);
    }
    if !env.iter().any(|e| env_key(e) == "PATH") {
        env.insert(0, format!("PATH={}", berth_runtime::spec::DEFAULT_PATH));
    }
    req.env = Some(env);
    if req.working_dir.as_deref().unwrap_or("").is_empty() {
        req.working_dir = img.working_dir.clone().filter(|w| !w.is_empty());
    }
    if req.user.as_deref().unwrap_or("").is_empty() {
        req.user = img.user.clone().filter(|u| !u.is_empty());
    }
    let mut ports: Vec<String> = img
        .exposed_ports
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for p in req.exposed_ports.clone().unwrap_or_default() {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    req.exposed_ports = (!ports.is_empty()).then_some(ports);
    let mut vols: Vec<String> = img
        .volumes
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for v in req.volumes.clone().unwrap_or_default() {
        if !vols.contains(&v) {
            vols.push(v);
        }
    }
    req.volumes = (!vols.is_empty()).then_some(vols);
    let mut labels: HashMap<String, String> = img
        .labels
        .clone()
        .map(|l| l.into_iter().collect())
        .unwrap_or_default();
    labels.extend(req.labels.clone().unwrap_or_default());
    req.labels = Some(labels);
    if req.stop_signal.as_deref().unwrap_or("").is_empty() {
        req.stop_signal = img.stop_signal.clone();
    }
    if req.healthcheck.is_none() {
        req.healthcheck = img
            .healthcheck
            .as_ref()
            .map(|h| crate::images::plan::health_config(h).into());
    }
    if req.on_build.is_none() {
        req.on_build = img.on_build.clone();
    }
}

/// Validate the host config the way dockerd does (before anything is created).
pub fn validate_host_config(h: &HostConfig) -> Result<()> {
    super::validate::check_host_config(h)?;
    let mem = h.memory.unwrap_or(0);
    if mem != 0 && mem < MIN_MEMORY {
        return Err(DaemonError::invalid("Minimum memory limit allowed is 6MB"));
    }
    if mem < 0 {
        return Err(DaemonError::invalid(
            "invalid memory limit: must not be negative",
        ));
    }
    let swap = h.memory_swap.unwrap_or(0);
    if mem > 0 && swap > 0 && swap < mem {
        return Err(DaemonError::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if h.nano_cpus.unwrap_or(0) > 0 && h.cpu_quota.unwrap_or(0) > 0 {
        return Err(DaemonError::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1);
    if h.nano_cpus.unwrap_or(0) > ncpu * 1_000_000_000 {
        return Err(DaemonError::Invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if h.nano_cpus.unwrap_or(0) < 0 {
        return Err(DaemonError::invalid(
            "invalid CPU value: must not be negative",
        ));
    }
    if let Some(rp) = &h.restart_policy {
        use super::stored::RestartPolicyNameEnum as R;
        let name = rp.name.unwrap_or(R::EMPTY);
        if h.auto_remove.unwrap_or(false) && !matches!(name, R::EMPTY | R::NO) {
            return Err(DaemonError::invalid(
                "can't create 'AutoRemove' container with restart policy",
            ));
        }
        if rp.maximum_retry_count.unwrap_or(0) != 0 && name != R::ON_FAILURE {
            return Err(DaemonError::invalid(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'",
            ));
        }
        if rp.maximum_retry_count.unwrap_or(0) < 0 {
            return Err(DaemonError::invalid(
                "invalid restart policy: maximum retry count cannot be negative",
            ));
        }
    }
    if let Some(lc) = &h.log_config {
        let t = lc.typ.as_deref().unwrap_or("");
        if !matches!(t, "" | "json-file" | "none" | "local") {
            return Err(DaemonError::Invalid(format!(
                "logger: no log driver named '{t}' is registered"
            )));
        }
    }
    Ok(())
}

/// Docker's warning when the container-wide `MacAddress` is used.
const MAC_DEPRECATED: &str = "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.";

fn check_mac(mac: &str) -> Result<()> {
    berth_network::ipam::parse_mac(mac)
        .map(|_| ())
        .map_err(|_| DaemonError::Invalid(format!("invalid MAC address {mac}")))
}

/// Move the container-wide `MacAddress` (the create field of APIs before 1.44, still sent by
/// docker-py) to the endpoint of the container's network `mode`, as moby's
/// `handleMACAddressBC`; checks every endpoint MAC. Returns Docker's deprecation warning.
pub fn migrate_mac(
    mac: &str,
    mode: &str,
    networking: &mut Option<NetworkingConfig>,
) -> Result<Option<String>> {
    for es in networking
        .iter()
        .flat_map(|n| n.endpoints_config.iter())
        .flat_map(|m| m.values())
    {
        if let Some(m) = es.mac_address.as_deref().filter(|m| !m.is_empty()) {
            check_mac(m)?;
        }
    }
    if mac.is_empty() {
        return Ok(None);
    }
    check_mac(mac)?;
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        // Nothing to put it on; dockerd (API >= 1.44) only warns.
        return Ok(Some(MAC_DEPRECATED.into()));
    }
    let eps = networking
        .get_or_insert_with(Default::default)
        .endpoints_config
        .get_or_insert_with(HashMap::new);
    if !eps.is_empty() && !eps.contains_key(mode) {
        return Err(DaemonError::invalid("unable to migrate container-wide MAC address to a specific network: if a container-wide MAC address is supplied, HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks"));
    }
    let ep = eps.entry(mode.to_string()).or_default();
    match ep.mac_address.as_deref().unwrap_or("") {
        "" => ep.mac_address = Some(mac.to_string()),
        m if m.eq_ignore_ascii_case(mac) => {}
        _ => {
            return Err(DaemonError::invalid("the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty"));
        }
    }
    Ok(Some(MAC_DEPRECATED.into()))
}

impl Engine {
    /// The init binary a container with host config `hc` runs (None without `--init`).
    pub(crate) fn init_path_for(&self, hc: &HostConfig) -> Result<Option<std::path::PathBuf>> {
        let f = &self.inner.file;
        super::plan::init_binary(
            hc.init,
            f.init.unwrap_or(false),
            f.init_path.as_deref(),
            |p| p.is_file(),
        )
    }

    /// Init binary and link env/hosts for a container starting on network `mode`.
    pub(crate) fn start_extras(&self, r: &Record, mode: &str) -> Result<super::plan::StartExtras> {
        let links = self.link_plan(r, mode)?;
        let joined = self.joined_namespaces(r)?;
        let shm = self.shared_shm(r)?;
        crate::volumes::mounts::check_subpaths(&r.planned_mounts, &r.mount_specs)?;
        Ok(super::plan::StartExtras {
            env: links.env,
            hosts: links.hosts,
            init: self.init_path_for(&r.host_config)?,
            ipc_ns: joined.ipc,
            pid_ns: joined.pid,
            uts_ns: joined.uts,
            shm,
        })
    }

    /// Host input-hook filters that the container's published ports will bypass (DNAT skips
    /// the input hook, as with Docker): said in the create response, which both CLIs print,
    /// rather than only in the daemon's log.
    pub(super) async fn published_port_warnings(&self, r: &Record) -> Vec<String> {
        let Ok(maps) = super::plan::port_mappings(r) else {
            return vec![];
        };
        if maps.is_empty() {
            return vec![];
        }
        match self.network().await {
            Ok(net) => {
                // `[::1]` is proxied, delivered to the host's input hook: nothing bypassed.
                let maps: Vec<_> = maps
                    .iter()
                    .filter(|m| !m.host_ip.is_some_and(|h| h.is_ipv6() && h.is_loopback()))
                    .map(|m| m.mapping())
                    .collect();
                net.firewall_warnings(&maps).await
            }
            Err(_) => vec![],
        }
    }

    pub(crate) async fn ctr_create(
        &self,
        name: Option<String>,
        req: berth_api_types::ContainerCreateRequest,
    ) -> Result<berth_api_types::models::ContainerCreateResponse> {
        let top_mac = req.mac_address;
        let body: ContainerCreateBody = req.body;
        let image = body.image.clone().unwrap_or_default();
        if image.is_empty() {
            return Err(DaemonError::invalid(
                "no image specified: pass an image name",
            ));
        }
        if let Some(n) = &name {
            let n = n.trim_start_matches('/');
            if !valid_name(n) {
                return Err(DaemonError::Invalid(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        let mut host_config: HostConfig =
            body.host_config.clone().map(Into::into).unwrap_or_default();
        if host_config.runtime.as_deref().unwrap_or("").is_empty() {
            host_config.runtime = Some("runc".into());
        }
        // dockerd: no PIDs limit at create when it is 0 or negative (all mean "unlimited").
        host_config.pids_limit = host_config.pids_limit.filter(|p| *p > 0);
        if host_config.shm_size.unwrap_or(0) == 0 {
            // dockerd records its default (64 MiB) at create; inspect shows it.
            host_config.shm_size = Some(DEFAULT_SHM_SIZE);
        }
        if matches!(
            host_config.network_mode.as_deref(),
            None | Some("") | Some("default")
        ) {
            host_config.network_mode = Some("bridge".into());
        }
        if host_config.ipc_mode.as_deref().unwrap_or("").is_empty() {
            // dockerd's default IPC mode (old clients asked for "shareable", see berth-api).
            host_config.ipc_mode = Some("private".into());
        }
        validate_host_config(&host_config)?;
        super::ns_join::check_modes(
            host_config.ipc_mode.as_deref(),
            host_config.pid_mode.as_deref(),
            host_config.uts_mode.as_deref(),
        )
        .map_err(DaemonError::invalid)?;
        super::validate::check_create_body(&body)?;
        super::validate_net::check_create(&body, &host_config, &top_mac, name.as_deref(), |c| {
            self.inner.containers.get(c).is_ok()
        })?;
        self.check_static_ips(body.networking_config.as_ref())
            .await?;
        if let Some(h) = &body.healthcheck {
            super::health::validate(&HealthConfig::from(h.clone()))
                .map_err(DaemonError::invalid)?;
        }
        self.init_path_for(&host_config)?;
        let mode = host_config.network_mode.clone().unwrap_or_default();
        let links = self.resolve_links(&host_config.links.clone().unwrap_or_default(), &mode)?;
        host_config.links = (!links.is_empty()).then_some(links);
        let lc = host_config.log_config.get_or_insert_with(Default::default);
        if lc.typ.as_deref().unwrap_or("").is_empty() {
            lc.typ = Some("json-file".into());
        }
        if lc.config.is_none() {
            lc.config = Some(Default::default());
        }
        // The CLI keys the endpoint of the default network as "default": it is "bridge".
        let mut networking: Option<NetworkingConfig> =
            body.networking_config.clone().map(Into::into);
        if let Some(eps) = networking
            .as_mut()
            .and_then(|n| n.endpoints_config.as_mut())
        {
            if let Some(e) = eps.remove("default") {
                eps.insert(
                    host_config
                        .network_mode
                        .clone()
                        .unwrap_or_else(|| "bridge".into()),
                    e,
                );
            }
        }
        let mut warnings: Vec<String> = Vec::new();
        warnings.extend(migrate_mac(&top_mac, &mode, &mut networking)?);
        warnings.extend(super::security::validate(&host_config)?);
        warnings.extend(super::validate_net::warnings(&host_config));
        let publishes = host_config.publish_all_ports.unwrap_or(false)
            || host_config.port_bindings.as_ref().is_some_and(|p| {
                p.values()
                    .any(|b| b.as_ref().is_some_and(|v| !v.is_empty()))
            });
        if publishes && !self.network().await?.firewall() {
            // Refused now rather than failing at start.
            return Err(DaemonError::Network(Box::new(
                berth_network::Error::FirewallDisabled,
            )));
        }
        super::security::record_system_paths(&mut host_config);
        let img_name = image.clone();
        let stored = self
            .blocking(move |s| s.image(&img_name))
            .await
            .map_err(|e| {
                if e.kind() == berth_api_types::ErrorKind::NotFound {
                    DaemonError::NoSuchImage(image.clone())
                } else {
                    e
                }
            })?;
        let mut config = ContainerConfig {
            hostname: body.hostname.clone(),
            domainname: body.domainname.clone(),
            user: body.user.clone(),
            attach_stdin: body.attach_stdin,
            attach_stdout: body.attach_stdout,
            attach_stderr: body.attach_stderr,
            exposed_ports: body.exposed_ports.clone(),
            tty: body.tty,
            open_stdin: body.open_stdin,
            stdin_once: body.stdin_once,
            env: body.env.clone(),
            cmd: body.cmd.clone(),
            healthcheck: body.healthcheck.clone().map(Into::into),
            args_escaped: body.args_escaped,
            image: Some(image.clone()),
            volumes: body.volumes.clone(),
            working_dir: body.working_dir.clone(),
            entrypoint: body.entrypoint.clone(),
            network_disabled: body.network_disabled,
            on_build: None,
            labels: body.labels.clone(),
            stop_signal: body.stop_signal.clone(),
            stop_timeout: body.stop_timeout,
            shell: body.shell.clone(),
        };
        merge_config(&mut config, &stored.config.config);
        let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        argv.extend(config.cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(DaemonError::invalid("no command specified"));
        }
        if let Some(s) = &config.stop_signal {
            if !s.is_empty() {
                super::plan::parse_signal(s)?;
            }
        }
        let id = new_id();
        if config.hostname.as_deref().unwrap_or("").is_empty() {
            // A `--uts container:<x>` joiner's kernel hostname is its donor's (`--hostname`
            // with it was refused above); others get their id's, as with Docker.
            let donor = self.uts_donor_hostname(host_config.uts_mode.as_deref());
            config.hostname = Some(donor.unwrap_or_else(|| id[..12].to_string()));
        }
        let cs = &self.inner.containers;
        let rec = Record {
            id: id.clone(),
            name: String::new(),
            created: now_rfc3339(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            image: image.clone(),
            image_id: stored.id.to_string(),
            config,
            host_config,
            networking,
            state: CtrState {
                status: Status::Created,
                started_at: ZERO_TIME.into(),
                finished_at: ZERO_TIME.into(),
                ..Default::default()
            },
            ..Default::default()
        };
        // Reserve the name and insert under one lock.
        let ctr = {
            let mut m = lock(&cs.map);
            let taken = |n: &str| m.values().any(|c| lock(&c.rec).name == n);
            let name = match &name {
                Some(n) => {
                    let n = n.trim_start_matches('/').to_string();
                    if let Some(other) = m.values().find(|c| lock(&c.rec).name == n) {
                        return Err(DaemonError::NameInUse {
                            name: n,
                            id: other.id(),
                        });
                    }
                    n
                }
                None => generate_name(taken),
            };
            let mut rec = rec;
            rec.name = name;
            let c = Ctr::new(rec);
            m.insert(id.clone(), c.clone());
            c
        };
        // Config.Volumes: the image's VOLUMEs merged with the request's (`-v /data`,
        // docker-py `volumes=[..]`), each an anonymous volume unless a user mount covers it.
        let image_volumes: Vec<String> = ctr.snapshot().config.volumes.unwrap_or_default();
        let mut from = Vec::new();
        for spec in ctr.snapshot().host_config.volumes_from.unwrap_or_default() {
            let name = spec.split(':').next().unwrap_or("");
            // A missing source is the request's fault: 400 as dockerd (a 404 from create
            // makes the docker CLI pull the image).
            let other = cs
                .get(name)
                .inspect_err(|_| {
                    lock(&cs.map).remove(&id);
                })
                .map_err(DaemonError::invalid)?;
            from.push(crate::volumes::mounts::VolumesFrom {
                spec: spec.clone(),
                mounts: other.snapshot().planned_mounts,
            });
        }
        let hc = ctr.snapshot().host_config;
        let applied = match self.create_mounts(&id, &hc, &image_volumes, &from).await {
            Ok(a) => a,
            Err(e) => {
                self.release_mounts(&id, true).await;
                lock(&cs.map).remove(&id);
                return Err(e);
            }
        };
        {
            let mut g = lock(&ctr.rec);
            g.planned_mounts = applied.iter().map(|m| m.planned.clone()).collect();
            g.mount_specs = applied.iter().map(|m| m.spec.clone()).collect();
            g.mount_points = applied.iter().map(|m| m.point.clone()).collect();
        }
        if let Err(e) = self.ctr_create_fs(&ctr, &stored.id).await {
            self.release_mounts(&id, true).await;
            lock(&cs.map).remove(&id);
            let _ = std::fs::remove_dir_all(cs.ctr_dir(&id));
            return Err(e);
        }
        let r = ctr.snapshot();
        warnings.extend(self.published_port_warnings(&r).await);
        self.ctr_event("create", &r, HashMap::new());
        Ok(berth_api_types::models::ContainerCreateResponse { id, warnings })
    }

    async fn ctr_create_fs(&self, ctr: &Arc<Ctr>, image_id: &berth_oci::Digest) -> Result<()> {
        let id = ctr.id();
        let store = self.inner.raw_store.clone().ok_or_else(|| {
            DaemonError::Unavailable("this engine has no layer store for containers".into())
        })?;
        let img = image_id.clone();
        let id2 = id.clone();
        // An auto-removed container's layer row skips the fsync (one of the three on
        // `run --rm`'s create): lost in a power cut, the layer's directory goes at the next
        // open and the container is removed when recovery finds its shim gone.
        let durable = !ctr.snapshot().host_config.auto_remove.unwrap_or(false);
        tokio::task::spawn_blocking(move || -> Result<()> {
            let what = || format!("create rw layer for {id2}");
            store
                .create_rw_layer_with(&id2, Some(&img), durable)
                .map_err(|e| DaemonError::failed(what(), e))?;
            // Engine-made mount points go below the upper dir, out of diff/commit.
            crate::containers::init_layer::set_up(&store, &id2).map_err(|e| {
                let _ = store.remove_rw_layer(&id2);
                DaemonError::failed(what(), e)
            })
        })
        .await??;
        let cs = &self.inner.containers;
        let rec = ctr.snapshot();
        if let Err(e) = cs.persist(&rec) {
            let store = self.inner.raw_store.clone();
            let id2 = id.clone();
            let _ =
                tokio::task::spawn_blocking(move || store.map(|s| s.remove_rw_layer(&id2))).await;
            return Err(DaemonError::io(format!("persist container {id}"), e));
        }
        Ok(())
    }

    /// Emit a container event with Docker's attributes (name, image, labels, extras).
    pub(crate) fn ctr_event(&self, action: &str, r: &Record, extra: HashMap<String, String>) {
        let mut attrs: HashMap<String, String> = r.config.labels.clone().unwrap_or_default();
        attrs.insert("name".into(), r.name.clone());
        attrs.insert("image".into(), r.image.clone());
        attrs.extend(extra);
        self.inner
            .events
            .emit(EventMessageTypeEnum::CONTAINER, action, &r.id, attrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_follows_docker_rules() {
        let img = ImageRuntimeConfig {
            entrypoint: Some(vec!["/ep".into()]),
            cmd: Some(vec!["img-cmd".into()]),
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            working_dir: Some("/w".into()),
            ..Default::default()
        };
        let mut c = ContainerConfig {
            env: Some(vec!["A=2".into(), "B=3".into()]),
            ..Default::default()
        };
        merge_config(&mut c, &img);
        assert_eq!(c.entrypoint.as_deref(), Some(&["/ep".to_string()][..]));
        assert_eq!(c.cmd.as_deref(), Some(&["img-cmd".to_string()][..]));
        assert_eq!(c.env.unwrap(), vec!["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(c.working_dir.as_deref(), Some("/w"));
        // An explicit entrypoint drops the image's cmd; [""] clears it.
        let mut c = ContainerConfig {
            entrypoint: Some(vec!["".into()]),
            cmd: None,
            ..Default::default()
        };
        merge_config(&mut c, &img);
        assert_eq!(c.entrypoint.as_deref(), Some(&[][..]));
        assert_eq!(c.cmd, None);
        assert_eq!(with_latest("busybox"), "busybox:latest");
        assert_eq!(with_latest("localhost:5000/a"), "localhost:5000/a:latest");
        assert_eq!(with_latest("a:1"), "a:1");
    }

    #[test]
    fn limits_validated_like_dockerd() {
        let h = HostConfig {
            memory: Some(1024 * 1024),
            ..Default::default()
        };
        assert!(validate_host_config(&h)
            .unwrap_err()
            .to_string()
            .contains("Minimum memory limit allowed is 6MB"));
        let h = HostConfig {
            memory: Some(MIN_MEMORY),
            ..Default::default()
        };
        assert!(validate_host_config(&h).is_ok());
    }

    #[test]
    fn container_wide_mac_moves_to_the_endpoint() {
        let mut n = None;
        let w = migrate_mac("02:42:ac:11:00:0a", "bridge", &mut n).unwrap();
        assert!(w.unwrap().contains("deprecated"));
        let eps = n.as_ref().unwrap().endpoints_config.as_ref().unwrap();
        assert_eq!(
            eps["bridge"].mac_address.as_deref(),
            Some("02:42:ac:11:00:0a")
        );
        // Same address again is fine; a different one conflicts.
        assert!(migrate_mac("02:42:AC:11:00:0A", "bridge", &mut n).is_ok());
        assert!(migrate_mac("02:42:ac:11:00:0b", "bridge", &mut n).is_err());
        // Endpoints for another network only: no way to place it.
        assert!(migrate_mac("02:42:ac:11:00:0a", "other", &mut n).is_err());
        assert!(migrate_mac("zz", "bridge", &mut None).is_err());
        assert_eq!(migrate_mac("", "bridge", &mut None).unwrap(), None);
        let mut n = None;
        assert!(migrate_mac("02:42:ac:11:00:0a", "none", &mut n)
            .unwrap()
            .is_some());
        assert!(n.is_none());
    }
}
