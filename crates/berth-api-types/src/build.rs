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
}

/// A build secret's bytes: `Debug` shows only their length, so options can be logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(pub Vec<u8>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<secret, {} bytes>", self.0.len())
    }
}
