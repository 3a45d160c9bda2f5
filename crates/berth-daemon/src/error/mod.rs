//! The daemon's one error vocabulary: every failure of the engine as a typed [`DaemonError`]
//! that names the thing, with dockerd's text (v20.10, `daemon/errors.go` and friends) and its
//! coarse [`ErrorKind`], which the API turns into an HTTP status. Lower crates' errors are
//! kept as `#[source]`s; [`From<DaemonError> for ApiError`] is the one conversion to the API.

mod lower;

pub use berth_api_types::ErrorKind;

/// Every failure of the engine.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    // ---- 404: the named thing does not exist ----
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// moby's `ErrImageDoesNotExist`: a name without tag or digest is shown with `:latest`.
    #[error("No such image: {}", with_latest(.0))]
    NoSuchImage(String),
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    /// moby's libnetwork `ErrNoSuchNetwork` as the API shows it.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// moby's volume service: `get NAME: no such volume`.
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// Another named thing (a path in a container, a build stage); the message names it.
    #[error("{0}")]
    NotFound(String),

    // ---- 409: the request conflicts with the thing's state ----
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("Container {0} is not running")]
    ContainerNotRunning(String),
    /// A paused container refuses `then` ("exec", "stopping or killing", …).
    #[error("Container {id} is paused, unpause the container before {then}")]
    ContainerPaused { id: String, then: &'static str },
    /// moby's ContainerAttach: the container as the request named it, lowercase.
    #[error("container {0} is paused, unpause the container before attach")]
    AttachPaused(String),
    #[error("Container {0} is already paused")]
    ContainerAlreadyPaused(String),
    #[error("Container {0} is restarting, wait until the container is running")]
    ContainerRestarting(String),
    /// moby's `daemon/delete.go`: `state` is "running" or "paused".
    #[error(
        "You cannot remove a {state} container {id}. {}",
        remove_procedure(state)
    )]
    RemoveRunning { id: String, state: &'static str },
    /// moby's volume `OpErr`: the users are container IDs, Go-printed as `[a, b]`.
    #[error("remove {name}: volume is in use - [{}]", users.join(", "))]
    VolumeInUse { name: String, users: Vec<String> },
    #[error("removal of container {0} is already in progress")]
    RemovalInProgress(String),
    #[error("{0}")]
    Conflict(String),

    // ---- 400: the request is malformed or impossible ----
    /// moby's filters `invalidFilter`: the text names the filter (and its value).
    #[error("Invalid filter '{0}'")]
    InvalidFilter(String),
    #[error("{0}")]
    Invalid(String),

    // ---- other kinds ----
    /// Refused by policy (a predefined network, a read-only path). HTTP 403.
    #[error("{0}")]
    Forbidden(String),
    /// Docker has it, berth does not (yet). HTTP 501.
    #[error("{0}")]
    NotImplemented(String),
    /// A part of the engine this daemon was started without. HTTP 503.
    #[error("{0}")]
    Unavailable(String),
    /// moby answers a plain (unclassified) error: HTTP 500 with this text.
    #[error("{0}")]
    Internal(String),

    // ---- failures of the crates the engine composes, kept as sources ----
    /// A failure of the image store (its own kind: a missing layer, a busy image, …).
    #[error(transparent)]
    Store(Box<berth_store::StoreError>),
    /// A pulled image could not be unpacked into the store.
    #[error("unpacking {image}: {source}")]
    Unpack {
        image: String,
        #[source]
        source: Box<berth_store::StoreError>,
    },
    /// A confined filesystem operation failed (a read-only mount stays a 403).
    #[error(transparent)]
    Rootfs(Box<berth_rootfs::RootfsError>),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A step of the engine failed on a lower crate's error; `what` names the step and the
    /// thing ("mount rootfs of ID", "create netns"). HTTP 500, as moby's plain errors.
    #[error("{what}: {source}")]
    Failed {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The volume store's directory cannot be opened: the daemon does not start.
    #[error("cannot open the volume store {}: {source}; check that the directory is readable and writable by root", dir.display())]
    VolumeStoreOpen {
        dir: std::path::PathBuf,
        #[source]
        source: Box<DaemonError>,
    },
    /// The runtime (shim) failed doing `what` ("kill ID", "pause ID").
    #[error("{what}: {source}")]
    Runtime {
        what: String,
        #[source]
        source: Box<berth_runtime::Error>,
    },
    /// moby's text when a container's ports cannot be published at start; a taken host port
    /// is a conflict.
    #[error(
        "driver failed programming external connectivity on endpoint {endpoint} ({id}): {source}"
    )]
    PortPublish {
        endpoint: String,
        id: String,
        #[source]
        source: Box<berth_network::Error>,
    },
    /// berth-network's failure (not-found and name-taken become moby's texts, see `lower`).
    #[error(transparent)]
    Network(Box<berth_network::Error>),
    #[error(transparent)]
    Registry(Box<berth_registry::RegistryError>),
    /// The registry refused the credentials of `docker login` (moby's text). HTTP 401.
    #[error("login attempt to {registry} failed: {source}")]
    LoginFailed {
        registry: String,
        #[source]
        source: Box<berth_registry::RegistryError>,
    },
    #[error(transparent)]
    Build(Box<berth_build::BuildError>),
    /// The OCI runtime could not create or exec a process (moby passes containerd's text on);
    /// a command not found or not executable is the request's fault (`kind` Invalid).
    #[error("{message}")]
    OciRuntime { kind: ErrorKind, message: String },
    #[error("background task failed: {0}")]
    Task(String),
    /// An error some service of this engine already answered (kept as it was).
    #[error(transparent)]
    Api(#[from] berth_api_types::ApiError),
}

/// `busybox` → `busybox:latest` (what Docker prints in "No such image").
pub fn with_latest(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// moby's advice after "You cannot remove a … container".
fn remove_procedure(state: &str) -> &'static str {
    if state == "paused" {
        "Unpause and then stop the container before attempting removal or force remove"
    } else {
        "Stop the container before attempting removal or force remove"
    }
}

impl DaemonError {
    pub fn kind(&self) -> ErrorKind {
        use DaemonError as D;
        match self {
            D::NoSuchContainer(_)
            | D::NoSuchImage(_)
            | D::NoSuchExec(_)
            | D::NoSuchNetwork(_)
            | D::NoSuchVolume(_)
            | D::NotFound(_) => ErrorKind::NotFound,
            D::NameInUse { .. }
            | D::ContainerNotRunning(_)
            | D::ContainerPaused { .. }
            | D::ContainerAlreadyPaused(_)
            | D::AttachPaused(_)
            | D::ContainerRestarting(_)
            | D::RemoveRunning { .. }
            | D::RemovalInProgress(_)
            | D::VolumeInUse { .. }
            | D::Conflict(_) => ErrorKind::Conflict,
            D::InvalidFilter(_) | D::Invalid(_) => ErrorKind::Invalid,
            D::Forbidden(_) => ErrorKind::Forbidden,
            D::NotImplemented(_) => ErrorKind::NotImplemented,
            D::Unavailable(_) => ErrorKind::Unavailable,
            D::OciRuntime { kind, .. } => *kind,
            D::Store(e) | D::Unpack { source: e, .. } => e.kind(),
            D::Rootfs(e) => e.kind(),
            D::Runtime { source, .. } => source.kind(),
            D::Network(e) => e.kind(),
            D::PortPublish { source, .. } => match source.kind() {
                ErrorKind::Conflict => ErrorKind::Conflict,
                _ => ErrorKind::Internal,
            },
            D::Registry(e) => e.kind(),
            D::LoginFailed { .. } => ErrorKind::Unauthorized,
            // Outside a build's stream (a commit's `--change`), a failed step is the
            // request's fault, as dockerd answers.
            D::Build(e) => match e.kind() {
                ErrorKind::Failed => ErrorKind::Invalid,
                k => k,
            },
            D::Api(e) => e.kind,
            D::Internal(_)
            | D::Io { .. }
            | D::Failed { .. }
            | D::VolumeStoreOpen { .. }
            | D::Task(_) => ErrorKind::Internal,
        }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> DaemonError {
        DaemonError::Io {
            what: what.into(),
            source,
        }
    }

    /// `what` failed on a lower crate's error, kept as the source.
    pub fn failed(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> DaemonError {
        DaemonError::Failed {
            what: what.into(),
            source: source.into(),
        }
    }

    /// The runtime failed doing `what`.
    pub fn runtime(what: impl Into<String>, source: berth_runtime::Error) -> DaemonError {
        DaemonError::Runtime {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// Shorthand for [`DaemonError::Invalid`] from any text (a parser's error).
    pub fn invalid(m: impl std::fmt::Display) -> DaemonError {
        DaemonError::Invalid(m.to_string())
    }
}

/// The one conversion to the API's error: the variant's kind and its text.
impl From<DaemonError> for berth_api_types::ApiError {
    fn from(e: DaemonError) -> Self {
        match e {
            DaemonError::Api(e) => e,
            e => berth_api_types::ApiError::new(e.kind(), with_unmapped_hint(e.to_string())),
        }
    }
}

/// An error naming an owner this rootless daemon's user namespace cannot map (a layer's
/// files, `COPY --chown`, `-u`) gets what to do: add subordinate ids, or use an id in range.
pub(crate) fn with_unmapped_hint(text: String) -> String {
    if !text.contains(berth_rootfs::UNMAPPED) {
        return text;
    }
    let hint = berth_rootless::spawn::single_id_hint().or_else(|| {
        matches!(berth_rootless::stage(), berth_rootless::Stage::Inner { .. }).then(|| {
            let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
            mapped_range_hint(&map, &std::env::var("USER").unwrap_or_default())
        })
    });
    match hint {
        Some(h) => format!("{text}; {h}"),
        None => text,
    }
}

/// The ids a ranged rootless daemon maps, from its `/proc/self/uid_map` (pure): those from 0
/// up without a gap. Fewer than 1 + 65536 (a short subordinate range) also says how to add one.
pub(crate) fn mapped_range_hint(uid_map: &str, user: &str) -> String {
    let mut ranges: Vec<(u64, u64)> = uid_map
        .lines()
        .filter_map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3).then(|| (f[0], f[2]))
        })
        .collect();
    ranges.sort();
    let mut next = 0u64;
    for (inside, len) in ranges {
        if inside == next {
            next = inside + len;
        }
    }
    let mut hint = format!(
        "this rootless daemon maps container ids 0-{} only (root is your user, the others \
         your subordinate ids)",
        next.saturating_sub(1)
    );
    if next < 1 + u64::from(berth_rootless::plan::SUBORDINATE_IDS) {
        let user = berth_rootless::User {
            name: user.to_string(),
            uid: 0,
            gid: 0,
        };
        hint.push_str(&format!(
            "; give your user {} subordinate ids with `{}` and restart it",
            berth_rootless::plan::SUBORDINATE_IDS,
            berth_rootless::plan::usermod_hint(&user)
        ));
    }
    hint
}

pub type Result<T, E = DaemonError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
