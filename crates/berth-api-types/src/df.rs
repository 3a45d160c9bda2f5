//! `GET /system/df`'s body, typed: the 1.52+ usage summaries and the legacy lists, made from
//! the engine's [`DiskUsage`].

use bollard_stubs::models::{
    BuildCacheDiskUsage, ContainersDiskUsage, ImageSummary, ImagesDiskUsage, VolumesDiskUsage,
};
use serde::Serialize;

use crate::container_types::ContainerSummaryView;
use crate::service::{BuildCacheItem, DiskUsage};
use crate::volume_service::{volumes_usage, VolumeInfo};

/// A usage summary of `n` things only counted (every size 0, no `Items`): bollard's summary
/// types share this shape but no trait.
macro_rules! counted {
    ($t:ident, $n:expr) => {
        $t {
            active_count: Some(0),
            total_count: Some($n as i64),
            reclaimable: Some(0),
            total_size: Some(0),
            items: None,
        }
    };
}

/// The body of `GET /system/df`. dockerd 29 drops the legacy fields (`LayersSize`, `Images`,
/// ...) from API 1.52 on; berth sends them at every version, as clients that negotiate the
/// newest version still read them (docker-py 7.2's `df()` test does).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemDf {
    pub image_usage: ImagesDiskUsage,
    pub container_usage: ContainersDiskUsage,
    pub volume_usage: VolumesDiskUsage,
    pub build_cache_usage: BuildCacheDiskUsage,
    pub layers_size: i64,
    pub images: Vec<ImageSummary>,
    pub containers: Vec<ContainerSummaryView>,
    pub volumes: Vec<VolumeInfo>,
    pub build_cache: Vec<BuildCacheItem>,
}

impl SystemDf {
    /// The body for `du`; `verbose` lists the images in `ImageUsage.Items` too. Containers and
    /// the build cache are counted, not measured (their sizes are 0, as before).
    pub fn new(du: DiskUsage, verbose: bool) -> SystemDf {
        let images = &du.images;
        let reclaimable = images
            .iter()
            .filter(|i| i.containers <= 0)
            .map(|i| i.size - i.shared_size.max(0))
            .sum();
        let image_usage = ImagesDiskUsage {
            active_count: Some(images.iter().filter(|i| i.containers > 0).count() as i64),
            total_count: Some(images.len() as i64),
            reclaimable: Some(reclaimable),
            total_size: Some(images.iter().map(|i| i.size).sum()),
            items: verbose.then(|| {
                images
                    .iter()
                    .map(|i| serde_json::to_value(i).unwrap_or_default())
                    .collect()
            }),
        };
        SystemDf {
            image_usage,
            container_usage: counted!(ContainersDiskUsage, du.containers.len()),
            volume_usage: volumes_usage(&du.volumes),
            build_cache_usage: counted!(BuildCacheDiskUsage, du.build_cache.len()),
            layers_size: du.layers_size,
            images: du.images,
            containers: du.containers,
            volumes: du.volumes,
            build_cache: du.build_cache,
        }
    }
}
