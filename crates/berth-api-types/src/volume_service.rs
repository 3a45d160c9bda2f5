//! The volume and container-filesystem service traits (`/volumes/*`, `/containers/{id}/archive`,
//! `/changes`, `/export`), their JSON types, and the pure volume filters.

use std::collections::HashMap;

use async_trait::async_trait;
use bollard_stubs::models::{
    FilesystemChange, VolumePruneResponse, VolumeUsageData, VolumesDiskUsage,
};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::filters::{Filters, LabelFilter};
use crate::service::ByteStream;

/// Label Docker sets on anonymous volumes.
pub const ANONYMOUS_VOLUME_LABEL: &str = "com.docker.volume.anonymous";

/// A volume as Docker renders it (own type: bollard's `CreatedAt` changes type with features).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeInfo {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: String,
    pub labels: HashMap<String, String>,
    pub scope: String,
    pub options: HashMap<String, String>,
    /// Filled by list (RefCount) and by disk usage (Size); `-1` where not computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<VolumeUsageData>,
}

/// `POST /volumes/create` body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeCreateBody {
    pub name: String,
    pub driver: String,
    pub driver_opts: Option<HashMap<String, String>>,
    pub labels: Option<HashMap<String, String>>,
}

/// Volumes: create, list, inspect, remove, prune.
#[async_trait]
pub trait VolumeService: Send + Sync + 'static {
    async fn create(&self, req: VolumeCreateBody) -> ApiResult<VolumeInfo>;
    /// Every volume, with `UsageData.RefCount` (filters are applied by the route).
    async fn list(&self) -> ApiResult<Vec<VolumeInfo>>;
    async fn inspect(&self, name: &str) -> ApiResult<VolumeInfo>;
    async fn remove(&self, name: &str, force: bool) -> ApiResult<()>;
    /// Remove unused volumes [`prune_selects`] accepts (filters already validated).
    async fn prune(&self, filters: &Filters, all: bool) -> ApiResult<VolumePruneResponse>;
}

/// Stat of a path inside a container (`X-Docker-Container-Path-Stat`, base64 JSON).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits (type bits in the high bits, as docker cp expects).
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// `PUT /containers/{id}/archive` options.
#[derive(Clone, Debug, Default)]
pub struct ExtractOptions {
    pub path: String,
    pub no_overwrite_dir_non_dir: bool,
    pub copy_uid_gid: bool,
}

/// Filesystem access to containers: docker cp, diff, export.
#[async_trait]
pub trait ContainerFsService: Send + Sync + 'static {
    async fn stat_path(&self, id: &str, path: &str) -> ApiResult<PathStat>;
    /// A tar of `path` (its stat first, for the header).
    async fn get_archive(&self, id: &str, path: &str) -> ApiResult<(PathStat, ByteStream)>;
    async fn put_archive(&self, id: &str, opts: ExtractOptions, body: ByteStream) -> ApiResult<()>;
    async fn changes(&self, id: &str) -> ApiResult<Vec<FilesystemChange>>;
    async fn export(&self, id: &str) -> ApiResult<ByteStream>;
}

/// Placeholder until the engine knows containers: every call is `No such container`.
pub struct NoContainerFs;

#[async_trait]
impl ContainerFsService for NoContainerFs {
    async fn stat_path(&self, id: &str, _: &str) -> ApiResult<PathStat> {
        Err(no_container(id))
    }
    async fn get_archive(&self, id: &str, _: &str) -> ApiResult<(PathStat, ByteStream)> {
        Err(no_container(id))
    }
    async fn put_archive(&self, id: &str, _: ExtractOptions, _: ByteStream) -> ApiResult<()> {
        Err(no_container(id))
    }
    async fn changes(&self, id: &str) -> ApiResult<Vec<FilesystemChange>> {
        Err(no_container(id))
    }
    async fn export(&self, id: &str) -> ApiResult<ByteStream> {
        Err(no_container(id))
    }
}

/// Placeholder volume service (API tests, engines without volumes): nothing exists.
pub struct NoVolumes;

#[async_trait]
impl VolumeService for NoVolumes {
    async fn create(&self, req: VolumeCreateBody) -> ApiResult<VolumeInfo> {
        Err(ApiError::not_implemented(format!(
            "create {}: volumes are not available in this engine",
            req.name
        )))
    }
    async fn list(&self) -> ApiResult<Vec<VolumeInfo>> {
        Ok(Vec::new())
    }
    async fn inspect(&self, name: &str) -> ApiResult<VolumeInfo> {
        Err(ApiError::not_found(format!("get {name}: no such volume")))
    }
    async fn remove(&self, name: &str, _: bool) -> ApiResult<()> {
        Err(ApiError::not_found(format!("get {name}: no such volume")))
    }
    async fn prune(&self, _: &Filters, _: bool) -> ApiResult<VolumePruneResponse> {
        Ok(VolumePruneResponse::default())
    }
}

fn no_container(id: &str) -> ApiError {
    ApiError::not_found(format!("No such container: {id}"))
}

/// Filter keys `GET /volumes` accepts.
pub const LIST_FILTERS: &[&str] = &["dangling", "driver", "label", "name"];
/// Filter keys `POST /volumes/prune` accepts.
pub const PRUNE_FILTERS: &[&str] = &["label", "label!", "all"];

/// `GET /volumes` filters, checked and parsed once per list (a bad key or `dangling` value is
/// a 400 even when there is no volume to filter).
#[derive(Debug, Default)]
pub struct VolumeFilter {
    dangling: Option<bool>,
    names: Vec<String>,
    drivers: Vec<String>,
    labels: LabelFilter,
}

impl VolumeFilter {
    pub fn compile(f: &Filters) -> ApiResult<VolumeFilter> {
        f.validate(LIST_FILTERS)?;
        let owned = |k: &str| f.get(k).into_iter().map(str::to_string).collect();
        Ok(VolumeFilter {
            dangling: f.bool_value("dangling")?,
            names: owned("name"),
            drivers: owned("driver"),
            labels: LabelFilter::new(f, "label"),
        })
    }

    /// Does `v` pass? (`dangling` reads `UsageData.RefCount`.)
    pub fn matches(&self, v: &VolumeInfo) -> bool {
        let refs = v.usage_data.as_ref().map(|u| u.ref_count).unwrap_or(0);
        self.dangling.is_none_or(|d| d == (refs == 0))
            && (self.names.is_empty() || self.names.iter().any(|n| v.name.contains(n.as_str())))
            && (self.drivers.is_empty() || self.drivers.contains(&v.driver))
            && self.labels.matches(&v.labels)
    }
}

/// Does prune remove this (unused) volume? Named volumes only with `all`; `label` must match
/// and `label!` must not.
pub fn prune_selects(f: &Filters, all: bool, labels: &HashMap<String, String>) -> bool {
    if !all && !labels.contains_key(ANONYMOUS_VOLUME_LABEL) {
        return false;
    }
    let negated = f.get("label!");
    let excluded = negated.iter().any(|l| match l.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(*l),
    });
    !excluded && f.labels_match("label", labels)
}

/// `VolumeUsage` of `/system/df` from the rendered volumes (`UsageData` filled in): active =
/// in use; reclaimable = the size of unused volumes.
pub fn volumes_usage(vols: &[VolumeInfo]) -> VolumesDiskUsage {
    let refs = |v: &VolumeInfo| v.usage_data.as_ref().map_or(0, |u| u.ref_count.max(0));
    let size = |v: &VolumeInfo| v.usage_data.as_ref().map_or(0, |u| u.size.max(0));
    VolumesDiskUsage {
        active_count: Some(vols.iter().filter(|v| refs(v) > 0).count() as i64),
        total_count: Some(vols.len() as i64),
        reclaimable: Some(vols.iter().filter(|v| refs(v) == 0).map(size).sum()),
        total_size: Some(vols.iter().map(size).sum()),
        items: None,
    }
}

/// `GET /volumes`: the volumes and dockerd's `Warnings` (always `null`).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeList {
    pub volumes: Vec<VolumeInfo>,
    pub warnings: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(name: &str, refs: i64, labels: &[(&str, &str)]) -> VolumeInfo {
        VolumeInfo {
            name: name.into(),
            driver: "local".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            usage_data: Some(VolumeUsageData {
                size: -1,
                ref_count: refs,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn list_filters() {
        let f = |j: &str| VolumeFilter::compile(&Filters::parse(j).unwrap()).unwrap();
        let used = vol("web-data", 1, &[("env", "prod")]);
        let free = vol("cache", 0, &[]);
        assert!(f(r#"{"dangling":["true"]}"#).matches(&free));
        assert!(!f(r#"{"dangling":["true"]}"#).matches(&used));
        assert!(f(r#"{"dangling":["false"]}"#).matches(&used));
        assert!(f(r#"{"name":["data"]}"#).matches(&used));
        assert!(!f(r#"{"name":["data"]}"#).matches(&free));
        assert!(f(r#"{"label":["env=prod"]}"#).matches(&used));
        assert!(!f(r#"{"label":["env"]}"#).matches(&free));
        assert!(!f(r#"{"driver":["nfs"]}"#).matches(&free));
        assert!(f(r#"{"driver":["nfs","local"]}"#).matches(&free));
    }

    /// A bad key or value fails when the filter is compiled, before any volume is looked at.
    #[test]
    fn bad_list_filters_fail_when_compiled() {
        for (q, want) in [
            (
                r#"{"dangling":["maybe"]}"#,
                "Invalid filter 'dangling=[maybe]'",
            ),
            (r#"{"bogus":["1"]}"#, "Invalid filter 'bogus'"),
        ] {
            let e = VolumeFilter::compile(&Filters::parse(q).unwrap()).unwrap_err();
            assert_eq!(e.to_string(), want, "{q}");
        }
    }

    #[test]
    fn df_volume_usage() {
        let v = |refs: i64, size: i64| VolumeInfo {
            usage_data: Some(VolumeUsageData {
                size,
                ref_count: refs,
            }),
            ..vol("x", refs, &[])
        };
        let u = volumes_usage(&[v(1, 100), v(0, 40), v(0, 2)]);
        assert_eq!(u.active_count, Some(1));
        assert_eq!(u.total_count, Some(3));
        assert_eq!(u.total_size, Some(142));
        assert_eq!(u.reclaimable, Some(42));
    }

    #[test]
    fn prune_defaults_to_anonymous() {
        let f = |j: &str| Filters::parse(j).unwrap();
        let anon: HashMap<String, String> = [(ANONYMOUS_VOLUME_LABEL.to_string(), String::new())]
            .into_iter()
            .collect();
        let named: HashMap<String, String> = [("keep".to_string(), "1".to_string())]
            .into_iter()
            .collect();
        assert!(prune_selects(&f("{}"), false, &anon));
        assert!(!prune_selects(&f("{}"), false, &named));
        assert!(prune_selects(&f("{}"), true, &named));
        assert!(!prune_selects(&f(r#"{"label!":["keep"]}"#), true, &named));
        assert!(prune_selects(&f(r#"{"label":["keep=1"]}"#), true, &named));
    }
}
