//! What a classic `POST /build` asks for, as the image service receives it.

use std::collections::BTreeMap;

/// Query of `POST /build`, as the docker CLI and docker-py send it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// `t` (repeatable): names to tag the result with.
    pub tags: Vec<String>,
    /// Path of the Dockerfile inside the context (default `Dockerfile`).
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// `q`: print only the image ID.
    pub quiet: bool,
    /// `networkmode`: default network of RUN steps.
    pub network: String,
    pub platform: String,
    /// `extrahosts` (repeatable, `name:ip`): added to RUN steps' /etc/hosts.
    pub extra_hosts: Vec<(String, String)>,
    /// `cachefrom` (a JSON array of image names): None when not given.
    pub cache_from: Option<Vec<String>>,
    /// The Dockerfile itself, when it does not come inside the context (BuildKit's session
    /// sends it apart); `dockerfile` then only names it.
    pub dockerfile_inline: Option<String>,
    /// The `.dockerignore` to apply instead of the context's own (BuildKit's session has
    /// applied it on the client already, and it may be `<Dockerfile>.dockerignore`).
    pub dockerignore_inline: Option<String>,
    /// Build secrets by ID for `RUN --mount=type=secret` (a BuildKit session's).
    pub secrets: BTreeMap<String, SecretBytes>,
    /// Credentials for pulling base images, by registry (`docker.io`, `host:port`), each as an
    /// `X-Registry-Auth` value (a BuildKit session's, shared by the client for this build).
    pub registry_auth: BTreeMap<String, SecretBytes>,
    /// Named build contexts (BuildKit's `context:NAME`, Compose's `additional_contexts`,
    /// `--build-context`): by the name `FROM`/`--from=` use. Never filled from a `/build` query.
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// SSH agents the client forwards, by ID, for `RUN --mount=type=ssh` (a BuildKit
    /// session's). Never filled from a `/build` query.
    pub ssh: BTreeMap<String, SshForward>,
}

/// An SSH agent a build client forwards: each connection a RUN step's process makes to its
/// socket becomes one [`SshAgent::connect`].
#[async_trait::async_trait]
pub trait SshAgent: Send + Sync {
    /// A new connection to the agent (the other end of the returned stream is the agent).
    async fn connect(&self) -> std::io::Result<tokio::io::DuplexStream>;
}

/// A forwarded agent inside plain options: equal only to itself.
#[derive(Clone)]
pub struct SshForward(pub std::sync::Arc<dyn SshAgent>);

impl std::fmt::Debug for SshForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<ssh agent>")
    }
}

impl PartialEq for SshForward {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SshForward {}

/// Where a named build context's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// `docker-image://REF`: an image stands in for the name.
    Image(String),
    /// A directory's files, as a tar stream the image service reads once.
    Tar(StreamSlot),
}

/// A byte stream handed over inside otherwise plain options: whoever `take`s it first reads
/// it. Clones share the one stream; equal only to itself.
#[derive(Clone)]
pub struct StreamSlot(std::sync::Arc<std::sync::Mutex<Option<crate::ByteStream>>>);

impl StreamSlot {
    pub fn new(s: crate::ByteStream) -> StreamSlot {
        StreamSlot(std::sync::Arc::new(std::sync::Mutex::new(Some(s))))
    }
    /// The stream, if nobody took it yet.
    pub fn take(&self) -> Option<crate::ByteStream> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl std::fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<stream>")
    }
}

impl PartialEq for StreamSlot {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for StreamSlot {}

/// A build secret's bytes: `Debug` shows only their length, so options can be logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(pub Vec<u8>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<secret, {} bytes>", self.0.len())
    }
}
