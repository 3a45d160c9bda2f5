//! The side effects a build needs, as a trait ([`BuildBackend`]) with plain-data requests;
//! the daemon implements it over berth-store and berth-runtime, tests may wrap or fake it.

use std::path::PathBuf;
use std::sync::Arc;

use berth_oci::{Descriptor, Digest, ImageConfig};
use serde::{Deserialize, Serialize};

use crate::context::Source;
use crate::error::{BuildError, ErrorKind, Result};
use crate::fetch::Download;

/// What a step produces: an image config plus its layers. Cached by step key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub config: ImageConfig,
    pub layers: Vec<Descriptor>,
    /// A registered image with exactly this filesystem (None: empty, `FROM scratch`).
    pub rootfs: Option<Digest>,
}

impl State {
    /// The image ID this state would have (digest of its config).
    pub fn id(&self) -> Digest {
        Digest::of(&self.config.to_vec())
    }
}

/// A new layer made by a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

/// Progress of a build, in order. The API turns these into Docker's JSON messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `Step 2/5 : RUN make`
    Step {
        index: usize,
        total: usize,
        text: String,
    },
    /// The step's result came from the cache.
    Cached,
    /// A RUN container started.
    Running { container: String },
    /// A RUN container is gone (dockerd: `Removing intermediate container <id>`).
    Removed { container: String },
    /// Output of a RUN (stream 1 stdout, 2 stderr).
    Output { stream: u8, data: Vec<u8> },
    /// The step finished with this state ID.
    StepDone { id: Digest },
    /// Something the user should know that does not fail the build.
    Warning(String),
}

/// Where progress goes.
pub type Sink = Arc<dyn Fn(Event) + Send + Sync>;

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The engine's default for builds.
    #[default]
    Default,
    None,
    Host,
}

impl Network {
    pub fn parse(s: &str) -> Option<Network> {
        match s {
            "" | "default" | "bridge" => Some(Network::Default),
            "none" => Some(Network::None),
            "host" => Some(Network::Host),
            _ => None,
        }
    }
}

/// Where a `RUN --mount` comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum MountSource {
    /// A persistent cache dir keyed by `id` (default: the target).
    Cache {
        id: String,
    },
    Tmpfs {
        size: Option<u64>,
    },
    /// `source` inside the build context (from = None) or another stage/image's rootfs.
    Bind {
        from: Option<Box<State>>,
        source: String,
    },
    /// A socket reaching the SSH agent the client forwards under `id` (`RUN
    /// --mount=type=ssh`); the backend serves it.
    Ssh {
        id: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A build secret as a read-only file (`RUN --mount=type=secret`).
    Secret {
        data: SecretValue,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

/// A build secret's bytes: never printed (`Debug` says only how long it is), never part of
/// a cache key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValue(pub Vec<u8>);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<secret, {} bytes>", self.0.len())
    }
}

/// One `RUN --mount`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMount {
    pub source: MountSource,
    pub target: String,
    pub readonly: bool,
}

/// A RUN step to execute.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// `USER` in effect (empty: root).
    pub user: String,
    /// Absolute working dir.
    pub workdir: String,
    pub network: Network,
    pub mounts: Vec<RunMount>,
    /// The build context directory (for bind mounts without `from`).
    pub context: PathBuf,
}

/// What a RUN did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    pub exit_code: i32,
    /// The changes (None when the filesystem did not change or the command failed).
    pub layer: Option<Layer>,
}

/// Where COPY/ADD reads from.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyFrom {
    /// Already collected from the build context (`.dockerignore` applied).
    Context(Vec<Source>),
    /// Paths inside another stage's or an image's filesystem (collected by the backend).
    State {
        state: Box<State>,
        sources: Vec<String>,
    },
    /// Heredoc files: `(name, content)`.
    Inline(Vec<(String, Vec<u8>)>),
}

/// A COPY/ADD step to execute.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyRequest {
    pub from: CopyFrom,
    /// Absolute destination (WORKDIR applied); a trailing `/` means "a directory".
    pub dest: String,
    /// `--chown` as written (resolved against the image's passwd/group).
    pub chown: Option<String>,
    /// `--chmod` as octal bits.
    pub chmod: Option<u32>,
    /// ADD: local tar archives are extracted (downloads never are, see `Source::url`).
    pub extract_archives: bool,
    pub excludes: Vec<String>,
}

/// The side effects of a build. Every method may block for long; implementations move blocking
/// work off the async executor themselves.
#[async_trait::async_trait]
pub trait BuildBackend: Send + Sync + 'static {
    /// Find (or, with `pull`, fetch) an image: its state with `rootfs` set.
    async fn resolve_image(&self, name: &str, pull: bool) -> Result<State>;
    /// Run a command on top of `parent`, streaming output to `sink`.
    async fn run(&self, parent: &State, req: RunRequest, sink: Sink) -> Result<RunResult>;
    /// Copy files onto `parent`; None when nothing changed.
    async fn copy(&self, parent: &State, req: CopyRequest) -> Result<Option<Layer>>;
    /// Create directory `path` (WORKDIR) owned by `user`; None when it existed.
    async fn mkdir(&self, parent: &State, path: String, user: String) -> Result<Option<Layer>>;
    /// Make `state`'s filesystem usable as a parent (register it as an image); its ID.
    async fn register(&self, state: &State) -> Result<Digest>;
    /// Store the final image and point `tags` at it; its ID.
    async fn commit(&self, state: &State, tags: &[String]) -> Result<Digest>;
    /// A cached step result, if present and still usable.
    async fn cache_get(&self, key: &str) -> Result<Option<State>>;
    async fn cache_put(&self, key: &str, state: &State) -> Result<()>;
    /// `ADD <url>`: download `url` into the backend's scratch space (the file goes away when
    /// the [`Download`] drops). Called for every build that reaches the step, since the cache
    /// key is the content's digest. The default refuses: a backend without network access.
    async fn fetch(&self, url: &str) -> Result<Download> {
        Err(BuildError::backend(
            ErrorKind::Unavailable,
            format!("ADD {url}: this build backend cannot download URLs; use COPY with a file from the context"),
        ))
    }
}
