//! What a start needs, as data: the files to write before the shim runs and the shim's config.

use std::path::PathBuf;

use berth_runtime::ShimConfig;

/// A file the container's spec bind-mounts (hostname, hosts, resolv.conf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub path: PathBuf,
    pub text: String,
    /// What the file is, for the error when it cannot be written ("hosts of <id>").
    pub what: String,
    /// Remove it when the start is unwound (scratch files of a build step); a container's
    /// files stay in its directory, as inspect and a later start expect.
    pub remove_on_unwind: bool,
}

/// Everything a start applies once the rootfs is mounted and the network attached.
#[derive(Debug, Clone)]
pub struct StartPlan {
    /// Written in order before the shim is spawned.
    pub files: Vec<PlannedFile>,
    /// The shim's directory (its socket, config, logs, exit status).
    pub shim_dir: PathBuf,
    pub config: ShimConfig,
    /// A spawn that failed may still have left a shim or cgroup behind: kill and reap it when
    /// unwinding (build steps, whose scratch dir goes away). A container's failed spawn is
    /// left alone, so its directory keeps no `exit.json` from the reaping.
    pub reap_failed_spawn: bool,
}
