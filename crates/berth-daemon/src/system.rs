//! The engine's [`SystemService`]: version, info (host facts read from /proc and uname,
//! container counts), disk usage (images, containers with their rw sizes, volumes, build
//! cache) and the event subscription.

use crate::containers::Status;
use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use berth_api_types::models::{
    EventMessage, IndexInfo, PluginsInfo, RegistryServiceConfig, SwarmInfo, SystemInfo,
    SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum, SystemVersion, SystemVersionPlatform,
};
use berth_api_types::{
    ApiResult, BuildCacheItem, CheckReport, ContainerListOptions, ContainerService,
    ContainerSummaryView, DiskUsage, EventStream, SystemService,
};
use berth_oci::{Digest, Platform};

use crate::engine::Engine;
use crate::images::plan;

/// `uname -r` and the hostname.
fn uname() -> (String, String) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    (release.trim().to_string(), host.trim().to_string())
}

/// PRETTY_NAME from /etc/os-release.
fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// The host's memory in bytes (0 when /proc/meminfo cannot be read).
pub(crate) fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// cgroup v2 only when the unified hierarchy is mounted at /sys/fs/cgroup itself.
fn cgroup_version() -> SystemInfoCgroupVersionEnum {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        SystemInfoCgroupVersionEnum::_2
    } else {
        SystemInfoCgroupVersionEnum::_1
    }
}

/// `RegistryConfig.IndexConfigs`: docker.io (official, with mirrors) and each insecure registry.
fn index_configs(file: &crate::config::FileConfig) -> HashMap<String, IndexInfo> {
    let mut m = HashMap::new();
    m.insert(
        "docker.io".to_string(),
        IndexInfo {
            name: Some("docker.io".into()),
            mirrors: Some(file.registry_mirrors.hub()),
            secure: Some(true),
            official: Some(true),
        },
    );
    for r in &file.insecure_registries {
        m.insert(
            r.clone(),
            IndexInfo {
                name: Some(r.clone()),
                mirrors: Some(vec![]),
                secure: Some(false),
                official: Some(false),
            },
        );
    }
    m
}

/// Containers per image ID (`ImageID` of each container summary).
fn image_users(containers: &[ContainerSummaryView]) -> HashMap<String, i64> {
    let mut m = HashMap::new();
    for c in containers {
        *m.entry(c.image_id.clone()).or_insert(0) += 1;
    }
    m
}

/// `/info`'s SecurityOptions, as dockerd names them (`name=rootless` when the daemon runs in
/// an ordinary user's namespace, `name=userns` under `--userns-remap`).
fn security_options(rootless: bool, remapped: bool) -> Vec<String> {
    let mut o = vec!["name=seccomp,profile=builtin".to_string()];
    if rootless {
        o.push("name=rootless".into());
    }
    if remapped {
        o.push("name=userns".into());
    }
    o
}

/// `(total, running, paused, stopped)` for `/info`.
fn container_counts(states: impl Iterator<Item = Status>) -> (i64, i64, i64, i64) {
    let (mut total, mut running, mut paused) = (0, 0, 0);
    for s in states {
        total += 1;
        match s {
            Status::Running | Status::Restarting => running += 1,
            Status::Paused => paused += 1,
            _ => {}
        }
    }
    (total, running, paused, total - running - paused)
}

/// The builder's cache as `/system/df` `BuildCache` items: one per step-cache entry
/// (`<root>/build-cache/<key>.json`, type `regular`) and per cache mount
/// (`<root>/build-cache-mounts/<id>`, type `exec.cachemount`); none is in use between builds,
/// so all of it is reclaimable by `docker builder prune`.
pub fn build_cache_usage(root: &Path) -> Vec<BuildCacheItem> {
    let mut out = Vec::new();
    for (sub, typ) in [
        ("build-cache", "regular"),
        ("build-cache-mounts", "exec.cachemount"),
    ] {
        let Ok(rd) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let Some(id) = path.file_stem().and_then(|n| n.to_str()) else {
                continue;
            };
            let time = |t: std::io::Result<std::time::SystemTime>| {
                t.ok()
                    .map(chrono::DateTime::<chrono::Utc>::from)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            };
            let md = e.metadata().ok();
            out.push(BuildCacheItem {
                id: id.to_string(),
                parents: None,
                typ: typ.to_string(),
                description: if typ == "regular" {
                    "build step"
                } else {
                    "cache mount"
                }
                .to_string(),
                in_use: false,
                shared: false,
                size: crate::volumes::du(&path),
                created_at: md
                    .as_ref()
                    .and_then(|m| time(m.created().or_else(|_| m.modified()))),
                last_used_at: md.as_ref().and_then(|m| time(m.accessed())),
                usage_count: 1,
            });
        }
    }
    out
}

#[async_trait]
impl SystemService for Engine {
    async fn check(&self, repair: bool) -> ApiResult<CheckReport> {
        self.system_check(repair).await
    }

    async fn version(&self) -> ApiResult<SystemVersion> {
        let (kernel, _) = uname();
        Ok(SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: "berth".into(),
            }),
            version: Some(berth_api_types::version::ENGINE_VERSION.into()),
            git_commit: Some("berth".into()),
            go_version: Some("n/a (rust)".into()),
            os: Some("linux".into()),
            arch: Some(Platform::host().architecture),
            kernel_version: Some(kernel),
            experimental: Some(false),
            build_time: None,
            ..Default::default()
        })
    }

    async fn info(&self) -> ApiResult<SystemInfo> {
        let images = self.blocking(|s| s.images()).await?;
        let (kernel, host) = uname();
        let inner = &self.inner;
        let (total, running, paused, stopped) = container_counts(
            inner
                .containers
                .all()
                .iter()
                .map(|c| c.snapshot().state.status),
        );
        Ok(SystemInfo {
            id: Some(inner.id.clone()),
            containers: Some(total),
            containers_running: Some(running),
            containers_paused: Some(paused),
            containers_stopped: Some(stopped),
            images: Some(images.len() as i64),
            driver: Some(
                inner
                    .raw_store
                    .as_ref()
                    .map_or("overlay2", |s| s.driver().name())
                    .into(),
            ),
            driver_status: Some(vec![
                vec!["Backing Filesystem".into(), "extfs".into()],
                vec!["Supports d_type".into(), "true".into()],
            ]),
            docker_root_dir: Some(inner.cfg.root.display().to_string()),
            plugins: Some(PluginsInfo {
                volume: Some(vec!["local".into()]),
                network: Some(vec!["bridge".into(), "host".into(), "null".into()]),
                authorization: None,
                log: Some(vec!["json-file".into(), "local".into()]),
            }),
            memory_limit: Some(true),
            swap_limit: Some(berth_runtime::cgroups::swap_limit(
                std::path::Path::new(berth_runtime::cgroups::CGROUP_ROOT),
                &std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            )),
            cpu_cfs_period: Some(true),
            cpu_cfs_quota: Some(true),
            cpu_shares: Some(true),
            cpu_set: Some(true),
            pids_limit: Some(true),
            ipv4_forwarding: Some(true),
            debug: Some(inner.cfg.debug),
            nfd: Some(
                std::fs::read_dir("/proc/self/fd")
                    .map(|d| d.count() as i64)
                    .unwrap_or(0),
            ),
            n_goroutines: Some(0),
            system_time: Some(
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            ),
            logging_driver: Some(
                inner
                    .file
                    .log_driver
                    .clone()
                    .unwrap_or_else(|| "json-file".into()),
            ),
            cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
            cgroup_version: Some(cgroup_version()),
            n_events_listener: Some(0),
            kernel_version: Some(kernel),
            operating_system: Some(os_name()),
            os_type: Some("linux".into()),
            architecture: Some(std::env::consts::ARCH.into()),
            ncpu: Some(
                std::thread::available_parallelism()
                    .map(|n| n.get() as i64)
                    .unwrap_or(1),
            ),
            mem_total: Some(mem_total()),
            index_server_address: Some("https://index.docker.io/v1/".into()),
            registry_config: Some(RegistryServiceConfig {
                insecure_registry_cidrs: Some(vec!["127.0.0.0/8".into(), "::1/128".into()]),
                mirrors: Some(inner.file.registry_mirrors.hub()),
                index_configs: Some(index_configs(&inner.file)),
            }),
            name: Some(host),
            labels: Some(inner.file.labels.clone()),
            experimental_build: Some(false),
            server_version: Some(berth_api_types::version::ENGINE_VERSION.into()),
            default_runtime: Some("berth".into()),
            swarm: Some(SwarmInfo {
                local_node_state: Some(berth_api_types::models::LocalNodeState::INACTIVE),
                node_id: Some(String::new()),
                node_addr: Some(String::new()),
                control_available: Some(false),
                ..Default::default()
            }),
            live_restore_enabled: Some(true),
            security_options: Some(security_options(
                inner.cfg.rootless,
                inner.cfg.remap.is_some(),
            )),
            warnings: Some(vec![]),
            ..Default::default()
        })
    }

    async fn disk_usage(&self) -> ApiResult<DiskUsage> {
        let (images, usage) = self.blocking(|s| Ok((s.images()?, s.usage()?))).await?;
        let shared: HashMap<Digest, u64> = usage.shared.into_iter().collect();
        let containers = ContainerService::list(
            self,
            ContainerListOptions {
                all: true,
                size: true,
                ..Default::default()
            },
        )
        .await?;
        let users = image_users(&containers);
        let build_cache = berth_api_types::ImageService::build_cache(self)
            .await
            .unwrap_or_default();
        Ok(DiskUsage {
            layers_size: usage.layers_size as i64,
            images: images
                .iter()
                .map(|i| {
                    let n = users.get(&i.id.to_string()).copied().unwrap_or(0);
                    plan::summary(i, Some(shared.get(&i.id).copied().unwrap_or(0)), n)
                })
                .collect(),
            containers,
            volumes: self.volume_usage().await?,
            build_cache,
        })
    }

    fn subscribe_events(&self) -> (Vec<EventMessage>, EventStream) {
        self.events().subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_counts_and_image_users() {
        let states = [
            Status::Running,
            Status::Exited,
            Status::Paused,
            Status::Created,
            Status::Restarting,
        ];
        assert_eq!(container_counts(states.into_iter()), (5, 2, 1, 2));
        let c = |id: &str| ContainerSummaryView {
            image_id: id.into(),
            ..Default::default()
        };
        let cs = vec![c("sha256:a"), c("sha256:a"), c("sha256:b")];
        let u = image_users(&cs);
        assert_eq!((u["sha256:a"], u["sha256:b"]), (2, 1));
    }

    #[test]
    fn build_cache_entries_and_mounts_are_listed_with_sizes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("build-cache")).unwrap();
        std::fs::write(d.path().join("build-cache/k1.json"), b"{}").unwrap();
        std::fs::create_dir_all(d.path().join("build-cache-mounts/m1")).unwrap();
        std::fs::write(d.path().join("build-cache-mounts/m1/f"), vec![1u8; 8192]).unwrap();
        let items = build_cache_usage(d.path());
        let ids: Vec<(&str, &str)> = items
            .iter()
            .map(|i| (i.id.as_str(), i.typ.as_str()))
            .collect();
        assert_eq!(ids, [("k1", "regular"), ("m1", "exec.cachemount")]);
        assert!(items[1].size >= 8192);
        assert!(items[0].created_at.as_deref().unwrap().ends_with('Z'));
        assert!(build_cache_usage(&d.path().join("none")).is_empty());
    }

    #[test]
    fn insecure_registries_and_mirrors_show_in_index_configs() {
        let file = crate::config::FileConfig {
            insecure_registries: vec!["127.0.0.1:5000".into()],
            registry_mirrors: vec!["https://mirror.example".to_string()].into(),
            ..Default::default()
        };
        let m = index_configs(&file);
        assert_eq!(m["127.0.0.1:5000"].secure, Some(false));
        assert_eq!(m["docker.io"].official, Some(true));
        assert_eq!(
            m["docker.io"].mirrors.as_deref(),
            Some(&["https://mirror.example".to_string()][..])
        );
    }
}
