//! Pull, push and login for the engine: the daemon's registry configuration (daemon.json's
//! `insecure-registries` / `registry-mirrors`, certs.d, the daemon user's docker config.json),
//! and the bridge from berth-registry's progress events to Docker's JSON progress stream.

pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api_types::models::DistributionInspect;
use berth_api_types::{
    AuthRequest, JsonAux, JsonMessage, JsonStream, ProgressDetail, PullOptions, PushOptions,
};
use berth_oci::{Digest, Platform, Reference};
use berth_registry::{Client, Credentials, Progress, ProgressSink, RegistryConfig, RegistryError};
use berth_store::Store;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::config::{DaemonConfig, FileConfig};
use crate::engine::Engine;
use crate::error::{DaemonError, Result};
use crate::registry::store::{BlobSources, InspectOnly, StoreBlobs};

/// Where per-registry CA certificates and client certificates live (Docker's certs.d layout).
pub const CERTS_DIR: &str = "/etc/berth/certs.d";

/// `registry-mirrors` in daemon.json: Docker's list (mirrors of Docker Hub) or a map
/// `{"<registry>": ["<mirror url>", …]}` naming mirrors for any registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryMirrors(pub BTreeMap<String, Vec<String>>);

impl RegistryMirrors {
    /// Mirrors of Docker Hub (what `docker info` lists as `Registry Mirrors`).
    pub fn hub(&self) -> Vec<String> {
        self.0.get("docker.io").cloned().unwrap_or_default()
    }
}

impl From<Vec<String>> for RegistryMirrors {
    fn from(v: Vec<String>) -> Self {
        let mut m = BTreeMap::new();
        if !v.is_empty() {
            m.insert("docker.io".to_string(), v);
        }
        RegistryMirrors(m)
    }
}

impl<'de> Deserialize<'de> for RegistryMirrors {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            Map(BTreeMap<String, Vec<String>>),
        }
        Ok(match Form::deserialize(d)? {
            Form::List(v) => v.into(),
            Form::Map(m) => RegistryMirrors(
                m.into_iter()
                    .map(|(k, v)| (normalize_registry(&k), v))
                    .collect(),
            ),
        })
    }
}

/// Docker Hub goes by several names; the client keys mirrors by `docker.io`.
fn normalize_registry(r: &str) -> String {
    match r.trim_end_matches('/') {
        "index.docker.io" | "registry-1.docker.io" | "https://index.docker.io/v1" => {
            "docker.io".into()
        }
        other => other.to_string(),
    }
}

/// The daemon user's docker config.json: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json` (root's home when HOME is unset).
pub fn docker_config_path(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(d) = env("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Path::new(&d).join("config.json");
    }
    let home = env("HOME")
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".docker/config.json")
}

/// The client configuration the daemon runs with (pure: the environment is passed in).
pub fn registry_config(file: &FileConfig, env: &dyn Fn(&str) -> Option<String>) -> RegistryConfig {
    RegistryConfig {
        insecure_registries: file.insecure_registries.clone(),
        registry_mirrors: file.registry_mirrors.0.clone(),
        certs_dir: Some(PathBuf::from(CERTS_DIR)),
        docker_config: Some(docker_config_path(env)),
        ..RegistryConfig::default()
    }
}

/// The engine's registry state: one client for the daemon's lifetime (it caches connections
/// and tokens) and the blob-source table for cross-repository mounts.
pub struct RegistryState {
    pub client: Client,
    pub sources: BlobSources,
}

impl RegistryState {
    pub fn new(
        cfg: &DaemonConfig,
        file: &FileConfig,
        http: std::sync::Arc<dyn berth_http::Connector>,
    ) -> RegistryState {
        let rc = registry_config(file, &|k| std::env::var(k).ok());
        RegistryState {
            client: Client::new(rc, http),
            sources: BlobSources::open(&cfg.root.join("registry")),
        }
    }
}

/// Platforms tried, after the host's, to resolve an index for `GET /distribution`.
const OTHER_PLATFORMS: &[&str] = &[
    "linux/amd64",
    "linux/arm64",
    "linux/arm",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
    "windows/amd64",
];

/// moby's `DistributionInspect` for a resolved pull: the top descriptor (the index when the
/// reference named one) and its platforms (every index entry's, else the config's).
pub fn distribution_inspect(
    p: &berth_registry::PulledImage,
) -> Result<DistributionInspect, Box<dyn std::error::Error + Send + Sync>> {
    use berth_api_types::models::{OciDescriptor, OciPlatform};
    let platform = |p: &Platform| OciPlatform {
        architecture: Some(p.architecture.clone()),
        os: Some(p.os.clone()),
        os_version: p.os_version.clone(),
        os_features: None,
        variant: p.variant.clone(),
    };
    let (descriptor, platforms) = match &p.index {
        Some(bytes) => {
            let idx = berth_oci::Index::from_slice(bytes)?;
            let mt = idx
                .media_type
                .clone()
                .unwrap_or_else(|| berth_oci::media_type::OCI_INDEX.to_string());
            let plats = idx
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref().map(platform))
                .collect();
            (
                OciDescriptor {
                    media_type: Some(mt),
                    digest: Some(p.digest.to_string()),
                    size: Some(bytes.len() as i64),
                    ..Default::default()
                },
                plats,
            )
        }
        None => {
            let cfg: Value = serde_json::from_slice(&p.config)?;
            let text = |k: &str| cfg.get(k).and_then(Value::as_str).map(str::to_string);
            let plat = OciPlatform {
                architecture: text("architecture"),
                os: text("os"),
                os_version: text("os.version"),
                os_features: cfg.get("os.features").and_then(|f| {
                    f.as_array().map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                }),
                variant: text("variant"),
            };
            (
                OciDescriptor {
                    media_type: Some(p.manifest_media_type.clone()),
                    digest: Some(p.manifest_digest.to_string()),
                    size: Some(p.manifest.len() as i64),
                    ..Default::default()
                },
                vec![plat],
            )
        }
    };
    Ok(DistributionInspect {
        descriptor,
        platforms,
    })
}

/// Docker's in-stream error object.
pub fn error_line(message: &str) -> JsonMessage {
    JsonMessage::error(message)
}

fn status(id: Option<&str>, s: impl Into<String>) -> JsonMessage {
    JsonMessage::status(id, s)
}

/// A registry client progress report as a JSON message line.
fn progress_line(p: Progress) -> JsonMessage {
    JsonMessage {
        progress_detail: p.progress_detail.map(|d| ProgressDetail {
            current: Some(d.current),
            total: Some(d.total),
        }),
        ..JsonMessage::status(p.id.as_deref(), p.status)
    }
}

fn credentials(h: &Option<String>) -> Result<Option<Credentials>> {
    match h {
        None => Ok(None),
        Some(h) => Ok(Credentials::from_x_registry_auth(h)?),
    }
}

/// What the background task says to the response.
enum Msg {
    Line(JsonMessage),
    /// A failure; before the first real progress line it becomes the HTTP error itself.
    Fail(DaemonError),
}

/// The progress sink for one pull: Docker's JSON lines, minus the client's "Pull complete" and
/// "Digest:" lines, which the engine emits itself after the layers are unpacked.
fn pull_sink(tx: mpsc::UnboundedSender<Msg>) -> ProgressSink {
    ProgressSink::callback(move |p: Progress| {
        if p.status == "Pull complete" || p.status.starts_with("Digest: ") {
            return;
        }
        let _ = tx.send(Msg::Line(progress_line(p)));
    })
}

/// Wait until the task has either failed (→ an HTTP error, as dockerd does before it writes
/// anything) or produced progress beyond "Pulling from …"; then stream everything.
async fn commit_stream(mut rx: mpsc::UnboundedReceiver<Msg>) -> Result<JsonStream> {
    let mut head = Vec::new();
    loop {
        match rx.recv().await {
            Some(Msg::Fail(e)) => return Err(e),
            Some(Msg::Line(v)) => {
                let s = v.status.as_deref().unwrap_or("");
                let waiting = s.starts_with("Pulling from ") || s.starts_with("The push refers to");
                head.push(v);
                if !waiting {
                    break;
                }
            }
            None => break,
        }
    }
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        let v = match rx.recv().await? {
            Msg::Line(v) => v,
            Msg::Fail(e) => error_line(&e.to_string()),
        };
        Some((v, rx))
    });
    use futures::StreamExt;
    Ok(Box::pin(futures::stream::iter(head).chain(rest)))
}

/// `fromImage` + `tag` → the reference, and whether every tag is wanted (`docker pull -a`
/// sends the repository without a tag).
pub fn pull_reference(from: &str, tag: &str) -> Result<(Reference, bool)> {
    let mut r = Reference::parse(from).map_err(DaemonError::invalid)?;
    if !tag.is_empty() {
        if let Ok(d) = tag.parse::<Digest>() {
            r.digest = Some(d);
        } else if r.tag.is_some() || r.digest.is_some() {
            return Err(DaemonError::Invalid(format!(
                "invalid reference format: {from}:{tag}"
            )));
        } else if berth_oci::reference::is_valid_tag(tag) {
            r.tag = Some(tag.to_string());
        } else {
            return Err(DaemonError::Invalid(format!("invalid tag format: {tag:?}")));
        }
    }
    let all = r.tag.is_none() && r.digest.is_none();
    Ok((r, all))
}

impl Engine {
    fn registry_store(&self, what: &str) -> Result<Arc<Store>> {
        self.store().cloned().ok_or_else(|| {
            DaemonError::NotImplemented(format!("{what} needs the berth-store image store"))
        })
    }

    /// `POST /images/create?fromImage=` (see [`berth_api_types::ImageService::pull`]).
    pub(crate) async fn registry_pull(&self, opts: PullOptions) -> Result<JsonStream> {
        let store = self.registry_store("pulling")?;
        let (reference, all) = pull_reference(&opts.from_image, &opts.tag)?;
        let creds = credentials(&opts.registry_auth)?;
        let platform = match opts.platform.trim() {
            "" => None,
            p => Some(Platform::parse(p).map_err(DaemonError::invalid)?),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let this = self.clone();
        tokio::spawn(async move {
            let popts = berth_registry::PullOptions {
                platform,
                credentials: creds,
                progress: pull_sink(tx.clone()),
            };
            if let Err(e) = this.pull_all(&store, reference, all, &popts, &tx).await {
                let _ = tx.send(Msg::Fail(e));
            }
        });
        commit_stream(rx).await
    }

    async fn pull_all(
        &self,
        store: &Arc<Store>,
        reference: Reference,
        all: bool,
        popts: &berth_registry::PullOptions,
        tx: &mpsc::UnboundedSender<Msg>,
    ) -> Result<()> {
        let client = &self.inner.registry.client;
        let refs = if all {
            let mut tags = client
                .list_tags(&reference, popts.credentials.as_ref())
                .await
                .map_err(DaemonError::from)?;
            tags.sort();
            tags.into_iter()
                .map(|t| {
                    let mut r = reference.clone();
                    r.tag = Some(t);
                    r
                })
                .collect()
        } else {
            vec![reference.clone().with_default_tag()]
        };
        let mut newer = false;
        for r in &refs {
            newer |= self.pull_one(store, r, popts, tx).await?;
        }
        let name = if all {
            reference.familiar_name()
        } else {
            refs[0].familiar()
        };
        let line = if newer {
            format!("Status: Downloaded newer image for {name}")
        } else {
            format!("Status: Image is up to date for {name}")
        };
        let _ = tx.send(Msg::Line(status(None, line)));
        Ok(())
    }

    /// Pull and register one tag or digest; true when the image is new for this reference.
    async fn pull_one(
        &self,
        store: &Arc<Store>,
        r: &Reference,
        popts: &berth_registry::PullOptions,
        tx: &mpsc::UnboundedSender<Msg>,
    ) -> Result<bool> {
        let reg = &self.inner.registry;
        let before = store.resolve(&r.to_string()).ok();
        let target = StoreBlobs::new(store.clone());
        let pulled = match reg.client.pull(r, &target, popts).await {
            Ok(p) => p,
            Err(e) => {
                let n = target.discard_committed(&|_| false);
                let (st, staged) = (store.clone(), target.staged());
                let _ = tokio::task::spawn_blocking(move || st.discard_staged(&staged)).await;
                tracing::info!(image = %r, removed = n, error = %e, "pull failed");
                return Err(e.into());
            }
        };
        let fetched: Vec<Digest> = {
            let got = target.committed();
            pulled
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .filter(|d| got.contains(d))
                .collect()
        };
        for d in &fetched {
            let _ = tx.send(Msg::Line(status(Some(d.short()), "Extracting")));
        }
        let mut tag_ref = r.clone();
        tag_ref.digest = Some(pulled.digest.clone());
        let (manifest, config, index) = (
            pulled.manifest.clone(),
            pulled.config.clone(),
            pulled.index.clone(),
        );
        let st = store.clone();
        let layers: Vec<Digest> = pulled.layers.iter().map(|l| l.digest.clone()).collect();
        let registered = tokio::task::spawn_blocking(move || {
            let r = (|| {
                if let Some(ix) = &index {
                    st.put_blob(ix)?;
                }
                st.register_image(&manifest, &config, &[tag_ref])
            })();
            // Unpacks made while downloading that no snapshot adopted (the layer was there
            // already, or the registration failed).
            st.discard_staged(&layers);
            r
        })
        .await
        .map_err(DaemonError::from)?;
        let rec = match registered {
            Ok(rec) => rec,
            Err(e) => {
                target.discard_committed(&|_| false);
                return Err(DaemonError::Unpack {
                    image: r.familiar(),
                    source: Box::new(e),
                });
            }
        };
        for d in &fetched {
            let _ = tx.send(Msg::Line(status(Some(d.short()), "Pull complete")));
        }
        let mut blobs: Vec<Digest> = pulled.layers.iter().map(|l| l.digest.clone()).collect();
        blobs.push(pulled.config_digest.clone());
        reg.sources.record(&r.registry, &r.repository, &blobs);
        let _ = tx.send(Msg::Line(status(
            None,
            format!("Digest: {}", pulled.digest),
        )));
        let name = r.familiar();
        let labels: std::collections::HashMap<String, String> = rec
            .config
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        self.events().image("pull", &name, &name, &labels);
        Ok(before.as_ref() != Some(&rec.id))
    }

    /// `POST /images/{name}/push?tag=`.
    pub(crate) async fn registry_push(&self, opts: PushOptions) -> Result<JsonStream> {
        let store = self.registry_store("pushing")?;
        let (reference, _) = pull_reference(&opts.name, &opts.tag)?;
        let creds = credentials(&opts.registry_auth)?;
        let refs: Vec<Reference> = if reference.tag.is_some() || reference.digest.is_some() {
            vec![reference.clone()]
        } else {
            let full = reference.full_name();
            let mut v: Vec<Reference> = store
                .images()
                .map_err(DaemonError::from)?
                .iter()
                .flat_map(|i| i.repo_tags.iter())
                .filter_map(|t| Reference::parse(t).ok())
                .filter(|t| t.full_name() == full)
                .collect();
            v.sort_by(|a, b| a.tag.cmp(&b.tag));
            v
        };
        let first = refs.first().cloned().unwrap_or(reference.clone());
        if refs.is_empty() || store.resolve(&first.to_string()).is_err() {
            return Err(DaemonError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                reference.familiar_name()
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let this = self.clone();
        tokio::spawn(async move {
            for r in &refs {
                if let Err(e) = this.push_one(&store, r, creds.clone(), &tx).await {
                    let _ = tx.send(Msg::Fail(e));
                    return;
                }
            }
        });
        commit_stream(rx).await
    }

    async fn push_one(
        &self,
        store: &Arc<Store>,
        r: &Reference,
        credentials: Option<Credentials>,
        tx: &mpsc::UnboundedSender<Msg>,
    ) -> Result<()> {
        let reg = &self.inner.registry;
        let rec = store.image(&r.to_string())?;
        let manifest = store.read_blob(&rec.manifest_digest)?;
        let mt = store.manifest_media_type(&rec.id)?;
        // Layers berth made are stored uncompressed; the registry gets gzip, made once here.
        let (manifest, layers) = {
            let st = store.clone();
            let mt = mt.clone();
            tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, Vec<Digest>)> {
                let out = st
                    .distributable_manifest(&manifest, &mt)?
                    .unwrap_or(manifest);
                let m = berth_oci::Manifest::from_slice(&out)
                    .map_err(|e| DaemonError::failed("the manifest to push".to_string(), e))?;
                Ok((out, m.layers.into_iter().map(|l| l.digest).collect()))
            })
            .await
            .map_err(|e| DaemonError::failed("compressing layers to push".to_string(), e))??
        };
        let mut blobs: Vec<Digest> = layers;
        blobs.push(rec.id.clone());
        let mount_from = reg
            .sources
            .mount_candidates(&r.registry, &r.repository, &blobs);
        let sink_tx = tx.clone();
        let popts = berth_registry::PushOptions {
            credentials,
            progress: ProgressSink::callback(move |p: Progress| {
                let _ = sink_tx.send(Msg::Line(progress_line(p)));
            }),
            mount_from,
        };
        let source = StoreBlobs::new(store.clone());
        let pushed = reg
            .client
            .push(r, &manifest, &mt, &source, &popts)
            .await
            .map_err(DaemonError::from)?;
        reg.sources.record(&r.registry, &r.repository, &blobs);
        let tag = r.tag.clone().unwrap_or_default();
        let _ = tx.send(Msg::Line(JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            aux: Some(JsonAux::Pushed {
                tag,
                digest: pushed.digest.to_string(),
                size: pushed.size as u64,
            }),
            ..Default::default()
        }));
        // Record the repo digest, as dockerd does after a push.
        let mut with_digest = r.clone();
        with_digest.digest = Some(pushed.digest.clone());
        let st = store.clone();
        let cfg = st.read_blob(&rec.id).ok();
        if let Some(cfg) = cfg {
            let res = tokio::task::spawn_blocking(move || {
                st.register_image(&manifest, &cfg, &[with_digest])
            })
            .await;
            if let Ok(Err(e)) = res {
                tracing::warn!(image = %r, error = %e, "cannot record the pushed repo digest");
            }
        }
        let name = r.familiar();
        self.events()
            .image("push", &name, &name, &Default::default());
        Ok(())
    }

    /// `GET /distribution/{name}/json`: the registry's descriptor of `name` (an index, or the
    /// image manifest) and the platforms it offers, as moby's `DistributionInspect`. Fetches
    /// the manifest(s) and the config (for a single-platform image's platform), never layers;
    /// nothing is stored.
    pub(crate) async fn registry_distribution(
        &self,
        name: &str,
        registry_auth: Option<String>,
    ) -> Result<DistributionInspect> {
        let reference = Reference::parse(name)
            .map_err(DaemonError::invalid)?
            .with_default_tag();
        let creds = credentials(&registry_auth)?;
        let client = &self.inner.registry.client;
        // The client resolves an index to one platform (the host's first). An index without
        // it is still inspectable: try the other common platforms until one resolves.
        let mut first_err = None;
        let mut pulled = None;
        for want in std::iter::once(None).chain(OTHER_PLATFORMS.iter().map(Some)) {
            let popts = berth_registry::PullOptions {
                platform: want.map(|p| Platform::parse(p).expect("valid platform")),
                credentials: creds.clone(),
                progress: ProgressSink::none(),
            };
            match client
                .pull(&reference, &InspectOnly::default(), &popts)
                .await
            {
                Ok(p) => {
                    pulled = Some(p);
                    break;
                }
                Err(e @ RegistryError::NoMatchingPlatform { .. }) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let Some(pulled) = pulled else {
            return Err(first_err.expect("an attempt failed").into());
        };
        distribution_inspect(&pulled)
            .map_err(|e| DaemonError::failed(format!("distribution inspect of {reference}"), e))
    }

    /// `POST /auth`.
    pub(crate) async fn registry_login(&self, req: AuthRequest) -> Result<String> {
        let creds = if !req.identitytoken.is_empty() {
            Credentials::IdentityToken(req.identitytoken.clone())
        } else if !req.username.is_empty() || !req.password.is_empty() {
            Credentials::basic(&req.username, &req.password)
        } else if !req.auth.is_empty() {
            let header = base64_json(&json!({ "auth": req.auth }));
            Credentials::from_x_registry_auth(&header)
                .map_err(DaemonError::from)?
                .ok_or_else(|| DaemonError::invalid("empty auth"))?
        } else {
            return Err(DaemonError::invalid(
                "login needs a username and password (or an identity token)",
            ));
        };
        let registry = login_registry(&req.serveraddress);
        match self.inner.registry.client.login(&registry, &creds).await {
            Ok(s) => Ok(s),
            Err(source) if source.kind() == berth_registry::ErrorKind::Unauthorized => {
                Err(DaemonError::LoginFailed {
                    registry,
                    source: Box::new(source),
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// `serveraddress` → the registry host (`https://index.docker.io/v1/` → `docker.io`).
pub fn login_registry(server: &str) -> String {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

fn base64_json(v: &Value) -> String {
    use std::fmt::Write as _;
    // Standard base64 without pulling in a crate for a one-off.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = serde_json::to_vec(v).expect("json");
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                let _ = out.write_char(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_accept_docker_list_and_per_registry_map() {
        let f = FileConfig::parse(br#"{"registry-mirrors":["https://m.example"]}"#).unwrap();
        assert_eq!(f.registry_mirrors.hub(), vec!["https://m.example"]);
        let f = FileConfig::parse(
            br#"{"registry-mirrors":{"quay.io":["http://127.0.0.1:5001/quay"],"index.docker.io":["https://h"]}}"#,
        )
        .unwrap();
        assert_eq!(
            f.registry_mirrors.0["quay.io"],
            vec!["http://127.0.0.1:5001/quay"]
        );
        assert_eq!(f.registry_mirrors.hub(), vec!["https://h"]);
        let rc = registry_config(&f, &|k| (k == "HOME").then(|| "/home/u".into()));
        assert_eq!(rc.registry_mirrors["docker.io"], vec!["https://h"]);
        assert_eq!(
            rc.docker_config.unwrap(),
            Path::new("/home/u/.docker/config.json")
        );
        assert_eq!(rc.certs_dir.unwrap(), Path::new(CERTS_DIR));
    }

    #[test]
    fn docker_config_location() {
        let env = |k: &str| (k == "DOCKER_CONFIG").then(|| "/etc/dc".to_string());
        assert_eq!(docker_config_path(&env), Path::new("/etc/dc/config.json"));
        assert_eq!(
            docker_config_path(&|_| None),
            Path::new("/root/.docker/config.json")
        );
    }

    #[test]
    fn pull_references() {
        let (r, all) = pull_reference("busybox", "").unwrap();
        assert!(all);
        assert_eq!(r.familiar_name(), "busybox");
        let (r, all) = pull_reference("127.0.0.1:5000/library/debian", "bookworm").unwrap();
        assert!(!all);
        assert_eq!(r.familiar(), "127.0.0.1:5000/library/debian:bookworm");
        let d = format!("sha256:{}", "a".repeat(64));
        let (r, _) = pull_reference("busybox", &d).unwrap();
        assert_eq!(r.digest.unwrap().to_string(), d);
        assert!(pull_reference("busybox:1", "2").is_err());
        assert!(pull_reference("busybox", "bad tag").is_err());
        assert!(pull_reference("Bad", "").is_err());
    }

    #[test]
    fn login_registries_and_auth_encoding() {
        assert_eq!(login_registry("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_registry(""), "docker.io");
        assert_eq!(login_registry("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            login_registry("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
        let h = base64_json(&json!({"username":"u","password":"p"}));
        let c = Credentials::from_x_registry_auth(&h).unwrap().unwrap();
        assert_eq!(c, Credentials::basic("u", "p"));
    }

    #[test]
    fn error_lines_are_dockers_shape() {
        assert_eq!(
            serde_json::to_value(error_line("boom")).unwrap(),
            json!({"errorDetail":{"message":"boom"},"error":"boom"})
        );
        let p = progress_line(Progress::new(Some("abc"), "Downloading").with_detail(5, 9));
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            json!({"id": "abc", "status": "Downloading",
                   "progressDetail": {"current": 5, "total": 9}})
        );
        assert_eq!(
            serde_json::to_value(status(None, "Digest: x")).unwrap(),
            json!({"status": "Digest: x"})
        );
        let pushed = JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            aux: Some(JsonAux::Pushed {
                tag: "1".into(),
                digest: "sha256:d".into(),
                size: 7,
            }),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(pushed).unwrap(),
            json!({"progressDetail": {}, "aux": {"Tag": "1", "Digest": "sha256:d", "Size": 7}})
        );
    }

    #[tokio::test]
    async fn failure_before_progress_is_an_http_error_after_it_in_stream() {
        use futures::StreamExt;
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(Msg::Line(status(Some("latest"), "Pulling from x")))
            .unwrap();
        tx.send(Msg::Fail(DaemonError::NotFound(
            "manifest for x:latest not found".into(),
        )))
        .unwrap();
        let e = commit_stream(rx).await.err().expect("http error");
        assert_eq!(e.kind(), berth_api_types::ErrorKind::NotFound);

        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(Msg::Line(status(Some("latest"), "Pulling from x")))
            .unwrap();
        tx.send(Msg::Line(status(Some("abc"), "Pulling fs layer")))
            .unwrap();
        tx.send(Msg::Fail(DaemonError::Unavailable("gone".into())))
            .unwrap();
        drop(tx);
        let lines: Vec<JsonMessage> = commit_stream(rx).await.unwrap().collect().await;
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2], error_line("gone"));
    }
}
