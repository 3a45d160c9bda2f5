//! Stored mounts: `HostConfig.Mounts` (`--mount`) as asked for, and the mount points
//! planned at create that inspect lists as `Mounts`.

use std::collections::HashMap;

use berth_api_types::models as api;

stored_struct! {
    /// One `--mount`.
    pub struct Mount <=> api::Mount {
        "Target" target: String,
        "Source" source: String,
        "Type" typ: MountType,
        "ReadOnly" read_only: bool,
        "Consistency" consistency: String,
        "BindOptions" bind_options: MountBindOptions,
        "VolumeOptions" volume_options: MountVolumeOptions,
        "ImageOptions" image_options: MountImageOptions,
        "TmpfsOptions" tmpfs_options: MountTmpfsOptions,
    }
}

stored_enum! {
    /// What a `--mount` mounts.
    pub enum MountType <=> api::MountType {
        "bind" BIND,
        "cluster" CLUSTER,
        "image" IMAGE,
        "npipe" NPIPE,
        "tmpfs" TMPFS,
        "volume" VOLUME,
    }
}

stored_struct! {
    /// `bind-propagation`, `bind-nonrecursive`…
    pub struct MountBindOptions <=> api::MountBindOptions {
        "Propagation" propagation: MountBindOptionsPropagationEnum,
        "NonRecursive" non_recursive: bool,
        "CreateMountpoint" create_mountpoint: bool,
        "ReadOnlyNonRecursive" read_only_non_recursive: bool,
        "ReadOnlyForceRecursive" read_only_force_recursive: bool,
    }
}

stored_enum! {
    /// A bind mount's propagation.
    pub enum MountBindOptionsPropagationEnum <=> api::MountBindOptionsPropagationEnum {
        "" EMPTY,
        "private" PRIVATE,
        "rprivate" RPRIVATE,
        "shared" SHARED,
        "rshared" RSHARED,
        "slave" SLAVE,
        "rslave" RSLAVE,
    }
}

stored_struct! {
    /// `volume-nocopy`, `volume-label`, `volume-driver`, `volume-opt`, `volume-subpath`.
    pub struct MountVolumeOptions <=> api::MountVolumeOptions {
        "NoCopy" no_copy: bool,
        "Labels" labels: HashMap<String, String>,
        "DriverConfig" driver_config: MountVolumeOptionsDriverConfig,
        "Subpath" subpath: String,
    }
}

stored_struct! {
    /// The driver that creates a `--mount` volume, with its options.
    pub struct MountVolumeOptionsDriverConfig <=> api::MountVolumeOptionsDriverConfig {
        "Name" name: String,
        "Options" options: HashMap<String, String>,
    }
}

stored_struct! {
    /// `image-subpath`.
    pub struct MountImageOptions <=> api::MountImageOptions {
        "Subpath" subpath: String,
    }
}

stored_struct! {
    /// `tmpfs-size`, `tmpfs-mode`, options.
    pub struct MountTmpfsOptions <=> api::MountTmpfsOptions {
        "SizeBytes" size_bytes: i64,
        "Mode" mode: i64,
        "Options" options: Vec<Vec<String>>,
    }
}

stored_struct! {
    /// One entry of inspect's `Mounts`, as planned at create.
    pub struct MountPoint <=> api::MountPoint {
        "Type" typ: String,
        "Name" name: String,
        "Source" source: String,
        "Destination" destination: String,
        "Driver" driver: String,
        "Mode" mode: String,
        "RW" rw: bool,
        "Propagation" propagation: String,
    }
}
