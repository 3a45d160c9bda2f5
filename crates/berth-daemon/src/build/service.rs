//! `POST /build` in the engine: unpack the context tar (plain or gzip) through the store's
//! confined applier, read the Dockerfile and `.dockerignore`, run berth-build over
//! [`StoreBuildBackend`], and translate its events into Docker's classic JSON messages.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api_types::{BuildOptions, ByteStream, JsonAux, JsonMessage, JsonStream, NamedContext};
use berth_build::{BuildRequest, Event, Network, Sink};
use berth_dockerfile::ignore::Matcher;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::build::backend::{BuildBackendConfig, BuildNetwork, Puller, StoreBuildBackend};
use crate::engine::Engine;
use crate::error::{DaemonError, Result};

/// The binary whose `shim` subcommand runs RUN containers: `BERTH_SHIM_EXE` or ourselves.
fn shim_exe() -> PathBuf {
    std::env::var_os("BERTH_SHIM_EXE")
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok())
        .unwrap_or_else(|| PathBuf::from("/proc/self/exe"))
}

/// A RUN container's ID as the classic builder prints it (12 characters).
fn short_ctr(container: &str) -> &str {
    let id = container.trim_start_matches("build-");
    &id[..12.min(id.len())]
}

/// One Docker JSON message for a build event (None: nothing to show).
pub fn event_message(e: &Event) -> Option<JsonMessage> {
    let short = |d: &berth_oci::Digest| d.hex()[..12].to_string();
    Some(JsonMessage::stream(match e {
        Event::Step { index, total, text } => format!("Step {index}/{total} : {text}\n"),
        Event::Cached => " ---> Using cache\n".to_string(),
        Event::Running { container } => format!(" ---> Running in {}\n", short_ctr(container)),
        Event::Removed { container } => {
            format!("Removing intermediate container {}\n", short_ctr(container))
        }
        // dockerd's classic builder shows a RUN's stderr in red (docker-py relies on it).
        Event::Output { stream: 2, data } => {
            format!("\x1b[91m{}\x1b[0m", String::from_utf8_lossy(data))
        }
        Event::Output { data, .. } => String::from_utf8_lossy(data).into_owned(),
        Event::StepDone { id } => format!(" ---> {}\n", short(id)),
        Event::Warning(w) => format!("{w}\n"),
    }))
}

/// A failed build's final message; a RUN that exited non-zero carries its code, as dockerd's.
fn build_error_message(e: &berth_build::BuildError) -> JsonMessage {
    let mut m = JsonMessage::error(crate::error::with_unmapped_hint(e.to_string()));
    if let (berth_build::BuildError::RunFailed { code, .. }, Some(d)) = (e, &mut m.error_detail) {
        d.code = Some(i64::from(*code));
    }
    m
}

/// Removes the unpacked context when the build is done (or abandoned).
struct ContextDir(PathBuf);

impl Drop for ContextDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn unpack_context(body: ByteStream, dir: &Path) -> Result<()> {
    let tar = dir.with_extension("tar");
    if let Some(parent) = dir.parent() {
        fs_err::create_dir_all(parent).map_err(|e| DaemonError::io("store build context", e))?;
    }
    let mut f =
        fs_err::File::create(&tar).map_err(|e| DaemonError::io("store build context", e))?;
    let mut body = body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| DaemonError::Invalid(format!("read build context: {e}")))?;
        f.write_all(&chunk)
            .map_err(|e| DaemonError::io("store build context", e))?;
    }
    drop(f);
    let d = dir.to_path_buf();
    let res = tokio::task::spawn_blocking(move || {
        fs_err::create_dir_all(&d)?;
        let f = fs_err::File::open(&tar)?;
        let r = berth_store::apply::decompressed(f)?;
        let out = berth_store::apply::apply_build_context(&d, r)
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        let _ = std::fs::remove_file(&tar);
        out
    })
    .await?;
    res.map_err(|e| {
        DaemonError::Invalid(format!("invalid build context (want a tar archive): {e}"))
    })
}

/// RUN steps on the engine's default network, as Docker's builder does (or the network the
/// build's `networkmode` names).
struct BridgeForBuilds(Engine, String);

const BUILD_NETWORK: &str = "bridge";

#[async_trait::async_trait]
impl BuildNetwork for BridgeForBuilds {
    async fn attach(&self, id: &str) -> Result<(PathBuf, String), DaemonError> {
        let net = self.0.network().await?;
        let ns = net
            .create_netns(id)
            .await
            .map_err(|e| DaemonError::Network(Box::new(e)))?;
        let cfg = berth_network::EndpointConfig {
            container_id: id.to_string(),
            name: id.to_string(),
            ..Default::default()
        };
        if let Err(e) = net.connect(&ns, &self.1, cfg).await {
            let _ = net.remove_netns(id).await;
            return Err(DaemonError::failed(
                format!("connect to the {} network", self.1),
                e,
            ));
        }
        let resolv = net
            .resolv_conf(&self.1, &Default::default())
            .await
            .unwrap_or_default();
        Ok((ns, resolv))
    }

    async fn detach(&self, id: &str) {
        let Ok(net) = self.0.network().await else {
            return;
        };
        if let Err(e) = net.disconnect(id, &self.1).await {
            tracing::warn!(id, error = %e, "cannot disconnect build step from the bridge");
        }
        if let Err(e) = net.remove_netns(id).await {
            tracing::warn!(id, error = %e, "cannot remove build step netns");
        }
    }
}

/// RUN steps in the network namespace of a running container (`--network=container:X`), as
/// dockerd creates the build's containers with that network mode. Nothing to undo.
struct ContainerForBuilds(Engine, String);

#[async_trait::async_trait]
impl BuildNetwork for ContainerForBuilds {
    async fn attach(&self, _id: &str) -> Result<(PathBuf, String), DaemonError> {
        let cs = &self.0.inner.containers;
        let c = cs.get(&self.1)?.snapshot();
        if !c.running() {
            return Err(DaemonError::Conflict(format!(
                "cannot join network of a non running container: {}",
                self.1
            )));
        }
        let ns = c
            .netns
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/proc/{}/ns/net", c.state.pid)));
        let resolv =
            std::fs::read_to_string(cs.ctr_dir(&c.id).join("resolv.conf")).unwrap_or_default();
        Ok((ns, resolv))
    }

    async fn detach(&self, _id: &str) {}
}

impl Engine {
    /// RUN containers' events on the engine's bus, as container events.
    fn step_events(&self) -> crate::build::backend::StepEvents {
        let engine = self.clone();
        Arc::new(move |action, id, attrs| {
            engine.events().emit(
                berth_api_types::models::EventMessageTypeEnum::CONTAINER,
                action,
                id,
                attrs,
            )
        })
    }

    /// Base-image pulls for the builder through the engine's registry client; the first
    /// in-stream error becomes the failure message.
    /// Pulls a build's base images, with the credentials the build was given for their
    /// registry (`X-Registry-Auth` values by registry host), if any.
    fn puller(&self, auth: BTreeMap<String, String>) -> Puller {
        let engine = self.clone();
        let auth = Arc::new(auth);
        Arc::new(move |name: String| {
            let engine = engine.clone();
            let auth = auth.clone();
            Box::pin(async move {
                let registry_auth = berth_oci::Reference::parse(&name)
                    .ok()
                    .and_then(|r| auth.get(&r.registry).cloned());
                let opts = berth_api_types::PullOptions {
                    from_image: name,
                    registry_auth,
                    ..Default::default()
                };
                let mut s = engine
                    .registry_pull(opts)
                    .await
                    .map_err(|e| e.to_string())?;
                while let Some(m) = s.next().await {
                    if let Some(err) = m.error {
                        return Err(err);
                    }
                }
                Ok(())
            })
        })
    }

    /// Build an image from a context tar; progress and errors arrive in the stream.
    /// What `/build` can refuse before reading the context: the platform and the network.
    async fn build_preflight(
        &self,
        opts: &BuildOptions,
    ) -> Result<(Network, Arc<dyn BuildNetwork>)> {
        if !opts.platform.is_empty() {
            let host = berth_oci::Platform::host();
            let want = berth_oci::Platform::parse(&opts.platform).map_err(DaemonError::invalid)?;
            if want.os != host.os || want.architecture != host.architecture {
                return Err(DaemonError::Invalid(format!(
                    "platform {} is not supported: this engine builds for {}/{} only",
                    opts.platform, host.os, host.architecture
                )));
            }
        }
        // default/bridge, host, none, container:X, or a network's name or ID (RUN joins it).
        if let Some(name) = opts.network.strip_prefix("container:") {
            self.inner.containers.get(name)?;
            let on: Arc<dyn BuildNetwork> = Arc::new(ContainerForBuilds(self.clone(), name.into()));
            return Ok((Network::Default, on));
        }
        let bridge = |name: String| -> Arc<dyn BuildNetwork> {
            Arc::new(BridgeForBuilds(self.clone(), name))
        };
        Ok(match Network::parse(&opts.network) {
            Some(n) => (n, bridge(BUILD_NETWORK.to_string())),
            None => {
                let net = self.network().await?;
                let info = net.inspect(&opts.network).await.map_err(|_| {
                    DaemonError::NotFound(format!(
                        "network {} not found: create it first or pass default, host or none",
                        opts.network
                    ))
                })?;
                (Network::Default, bridge(info.network.name))
            }
        })
    }

    pub(crate) async fn build_image(
        &self,
        body: ByteStream,
        opts: BuildOptions,
    ) -> Result<JsonStream> {
        let store = self.store().cloned().ok_or_else(|| {
            DaemonError::NotImplemented("this engine's image store cannot build".into())
        })?;
        // Refusing before the context is read would close the connection under a client
        // still uploading it (the docker CLI then reports a broken pipe, not our error): read
        // the body to its end first, as an answer after the upload.
        let (network, run_net) = match self.build_preflight(&opts).await {
            Ok(v) => v,
            Err(e) => {
                berth_api_types::drain(body).await;
                return Err(e);
            }
        };
        let root = store.root().to_path_buf();
        let dir = root.join("build-tmp").join(format!(
            "ctx-{}",
            &berth_oci::Digest::of(
                format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes()
            )
            .hex()[..16]
        ));
        let guard = ContextDir(dir.clone());
        unpack_context(body, &dir).await?;
        // Named contexts' files arrive as streams of their own, each unpacked beside the
        // context and gone with it.
        let mut named = BTreeMap::new();
        let mut named_guards = Vec::new();
        for (i, (name, c)) in opts.named_contexts.iter().enumerate() {
            let c = match c {
                NamedContext::Image(r) => berth_build::NamedContext::Image(r.clone()),
                NamedContext::Tar(slot) => {
                    let d = dir.with_file_name(format!(
                        "{}-named-{i}",
                        dir.file_name().unwrap_or_default().to_string_lossy()
                    ));
                    named_guards.push(ContextDir(d.clone()));
                    let stream = slot.take().ok_or_else(|| {
                        DaemonError::Invalid(format!(
                            "named build context {name:?} was already read"
                        ))
                    })?;
                    unpack_context(stream, &d).await?;
                    berth_build::NamedContext::Dir(d)
                }
            };
            named.insert(name.clone(), c);
        }
        // A BuildKit session sends the Dockerfile apart from the context.
        let dockerfile = match &opts.dockerfile_inline {
            Some(d) => d.clone(),
            None => {
                let parts = berth_build::context::clean_source(&opts.dockerfile, true)
                    .map_err(DaemonError::invalid)?;
                let df_path = berth_build::context::resolve_in_root(
                    &dir,
                    &parts,
                    true,
                    true,
                    "build context",
                )
                .map_err(DaemonError::invalid)?;
                std::fs::read_to_string(&df_path).map_err(|_| {
                    DaemonError::Invalid(format!(
                        "Cannot locate specified Dockerfile: {}: put it in the build context or pass -f",
                        opts.dockerfile
                    ))
                })?
            }
        };
        // A Dockerfile that does not parse is the request's fault, answered as a 400 before
        // the progress stream starts, as dockerd (whose errors before the first output are
        // HTTP errors): the Go client then returns it from ImageBuild itself.
        berth_dockerfile::parse(&dockerfile).map_err(DaemonError::invalid)?;
        let ignore_text = match &opts.dockerignore_inline {
            Some(t) => Some(t.clone()),
            None => std::fs::read_to_string(dir.join(".dockerignore")).ok(),
        };
        let ignore = match ignore_text {
            Some(t) => Matcher::from_dockerignore(&t).map_err(DaemonError::invalid)?,
            None => Matcher::default(),
        };
        // --cache-from: the named images that exist here (moby skips missing ones).
        let cache_from = opts.cache_from.as_ref().map(|names| {
            names
                .iter()
                .filter_map(|n| store.image(n).ok())
                .map(|img| img.config.rootfs.diff_ids.clone())
                .collect::<Vec<_>>()
        });
        let req = BuildRequest {
            dockerfile,
            context: dir.clone(),
            ignore,
            build_args: opts.build_args.clone(),
            target: opts.target.clone(),
            no_cache: opts.no_cache,
            pull: opts.pull,
            labels: opts.labels.clone(),
            tags: opts.tags.clone(),
            network,
            cache_from,
            secrets: opts
                .secrets
                .iter()
                .map(|(k, v)| (k.clone(), berth_build::SecretValue(v.0.clone())))
                .collect(),
            named_contexts: named,
            ssh: opts.ssh.keys().cloned().collect(),
        };
        let backend = Arc::new(StoreBuildBackend::new(
            store,
            BuildBackendConfig {
                shim_exe: shim_exe(),
                root,
                puller: Some(
                    self.puller(
                        opts.registry_auth
                            .iter()
                            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                            .collect(),
                    ),
                ),
                network: Some(run_net),
                extra_hosts: opts.extra_hosts.clone(),
                host_resolv: self
                    .config()
                    .rootless
                    .then(|| crate::networks::host_resolv_conf(self.config())),
                events: Some(self.step_events()),
                netns_dir: Some(self.config().exec_root.join("netns")),
                http: self.inner.http.clone(),
                ssh: opts.ssh.clone(),
            },
        ));
        let (tx, rx) = mpsc::unbounded_channel::<JsonMessage>();
        let quiet = opts.quiet;
        let etx = tx.clone();
        let sink: Sink = Arc::new(move |e: Event| {
            if quiet {
                return;
            }
            if let Some(m) = event_message(&e) {
                let _ = etx.send(m);
            }
        });
        let engine = self.clone();
        tokio::spawn(async move {
            let _guard = (guard, named_guards);
            // A client that goes away (docker build killed, connection closed) drops the
            // response stream: cancel the build, which drops the running step's future and
            // with it kills that step's container and releases its network and layers.
            let built = tokio::select! {
                r = berth_build::build(backend, req, sink) => r,
                _ = tx.closed() => {
                    tracing::info!("build cancelled: its client went away");
                    return;
                }
            };
            match built {
                Ok(out) => {
                    let id = out.image_id.to_string();
                    let _ = tx.send(JsonMessage {
                        aux: Some(JsonAux::Built { id: id.clone() }),
                        ..Default::default()
                    });
                    let _ = tx.send(JsonMessage::stream(if quiet {
                        format!("{id}\n")
                    } else {
                        format!("Successfully built {}\n", &out.image_id.hex()[..12])
                    }));
                    for t in &opts.tags {
                        let name = berth_oci::Reference::parse(t)
                            .map(|r| r.with_default_tag().familiar())
                            .unwrap_or_else(|_| t.clone());
                        engine
                            .events()
                            .image("tag", &id, &name, &Default::default());
                        if !quiet {
                            let _ = tx
                                .send(JsonMessage::stream(format!("Successfully tagged {name}\n")));
                        }
                    }
                }
                Err(e) => {
                    tracing::info!(error = %e, "build failed");
                    let _ = tx.send(build_error_message(&e));
                }
            }
        });
        Ok(Box::pin(tokio_stream_from(rx)))
    }
}

fn tokio_stream_from(
    mut rx: mpsc::UnboundedReceiver<JsonMessage>,
) -> impl futures::Stream<Item = JsonMessage> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Remove the builder's step-cache index (`<root>/build-cache`) and `RUN --mount=type=cache`
/// directories (`<root>/build-cache-mounts`). Intermediate step images stay: they are ordinary
/// untagged images, freed by `image prune`. Returns the removed entries and the bytes freed
/// (allocated blocks, as the volume code counts them).
/// Where BuildKit's front end keeps what the last syncs of each client directory brought
/// (under the store root; pruned with the build cache).
pub(crate) const BUILD_STATE_DIR: &str = "build-state";

pub(crate) fn prune_build_cache(root: &std::path::Path) -> std::io::Result<(Vec<String>, u64)> {
    let mut deleted = Vec::new();
    let mut freed = 0;
    for sub in ["build-cache", "build-cache-mounts", BUILD_STATE_DIR] {
        let dir = root.join(sub);
        let entries = match fs_err::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            freed += crate::volumes::du(&path);
            if path.is_dir() {
                fs_err::remove_dir_all(&path)?;
            } else {
                fs_err::remove_file(&path)?;
            }
            if let Some(name) = path.file_stem().and_then(|n| n.to_str()) {
                deleted.push(name.to_string());
            }
        }
    }
    Ok((deleted, freed))
}

#[cfg(test)]
mod prune_tests {
    #[test]
    fn prune_removes_cache_entries_and_mounts_and_counts_bytes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("build-cache")).unwrap();
        std::fs::write(d.path().join("build-cache/abc.json"), b"{\"image\":\"x\"}").unwrap();
        std::fs::create_dir_all(d.path().join("build-cache-mounts/m1")).unwrap();
        std::fs::write(d.path().join("build-cache-mounts/m1/f"), vec![0u8; 4096]).unwrap();
        let (deleted, freed) = super::prune_build_cache(d.path()).unwrap();
        assert_eq!(deleted.len(), 2, "{deleted:?}");
        assert!(deleted.contains(&"abc".to_string()));
        assert!(freed >= 4096 + 13, "{freed}");
        assert_eq!(
            std::fs::read_dir(d.path().join("build-cache"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(d.path().join("build-cache-mounts"))
                .unwrap()
                .count(),
            0
        );
        // Nothing to prune is not an error.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(super::prune_build_cache(empty.path()).unwrap(), (vec![], 0));
    }

    #[test]
    fn build_messages_are_dockers_shape() {
        use super::{Event, JsonAux, JsonMessage};
        use serde_json::json;
        let v = |m: JsonMessage| serde_json::to_value(m).unwrap();
        let failed = berth_build::BuildError::RunFailed {
            line: 3,
            command: "false".into(),
            code: 2,
        };
        let m = failed.to_string();
        assert_eq!(
            v(super::build_error_message(&failed)),
            json!({"errorDetail": {"code": 2, "message": m}, "error": m})
        );
        let other = berth_build::BuildError::Context {
            path: "x".into(),
            message: "no x".into(),
        };
        assert_eq!(
            v(super::build_error_message(&other)),
            json!({"errorDetail": {"message": "no x"}, "error": "no x"})
        );
        let out = super::event_message(&Event::Output {
            stream: 2,
            data: b"oops".to_vec(),
        });
        assert_eq!(
            v(out.unwrap()),
            json!({"stream": "\u{1b}[91moops\u{1b}[0m"})
        );
        let built = JsonMessage {
            aux: Some(JsonAux::Built {
                id: "sha256:i".into(),
            }),
            ..Default::default()
        };
        assert_eq!(v(built), json!({"aux": {"ID": "sha256:i"}}));
    }
}
