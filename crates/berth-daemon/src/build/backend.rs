//! [`StoreBuildBackend`]: berth-build's side effects over berth-store (rw layers, diffs,
//! layer commit, image registration) and berth-task (RUN, in `build::run`), plus the
//! step cache as one JSON file per key under `<root>/build-cache/`. `docker commit`
//! (`crate::images::commit`) shares its diff → layer → image code ([`diff_layer`], [`register_state`]).

use std::collections::HashMap;
use std::fs;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use berth_build::{
    BuildBackend, BuildError, CopyFrom, CopyRequest, ErrorKind, Layer, RunRequest, RunResult, Sink,
    SourceOptions, State,
};
use berth_oci::{Descriptor, Digest, ImageConfig, Manifest, Reference};
use berth_store::Store;

use crate::build::copy::{is_archive, Owner, RootWriter};

/// Fetches an image into the store (the engine's registry pull); `Err` carries the message.
pub type Puller =
    Arc<dyn Fn(String) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Puts a RUN step on the engine's default bridge network (Docker's build default: its own
/// netns, an address, outbound NAT) and takes it off again.
#[async_trait::async_trait]
pub trait BuildNetwork: Send + Sync {
    /// Create and connect a namespace for step `id`: its path and the resolv.conf to use.
    async fn attach(&self, id: &str) -> Result<(PathBuf, String), crate::error::DaemonError>;
    /// Disconnect and remove what [`BuildNetwork::attach`] made (best effort, logged).
    async fn detach(&self, id: &str);
}

/// Reports a RUN container's lifecycle as dockerd's container events: `(action, id,
/// attributes)` for create, start, die (with `exitCode`) and destroy.
pub type StepEvents = Arc<dyn Fn(&str, &str, HashMap<String, String>) + Send + Sync>;

/// Where the backend keeps its files and how it runs containers.
#[derive(Clone)]
pub struct BuildBackendConfig {
    /// The executable whose `shim <dir>` subcommand runs berth-runtime's shim.
    pub shim_exe: PathBuf,
    /// Scratch and cache dirs live here (normally the store root).
    pub root: PathBuf,
    /// Pulls base images that are missing (or all of them with `--pull`); None: local only.
    pub puller: Option<Puller>,
    /// The default network for RUN; None: RUN shares the host's network.
    pub network: Option<Arc<dyn BuildNetwork>>,
    /// `--add-host` entries (name, ip) appended to RUN steps' /etc/hosts.
    pub extra_hosts: Vec<(String, String)>,
    /// The resolv.conf host-network RUN steps get; None: the host's own file, bound. A
    /// rootless daemon's namespace reaches the host's loopback resolvers only through
    /// slirp4netns: its copy names that.
    pub host_resolv: Option<String>,
    /// Where RUN containers' events go; None: nowhere.
    pub events: Option<StepEvents>,
    /// Where a `--network none` step's own namespace (loopback up, as dockerd's) is named;
    /// None: the runtime's bare namespace (loopback down).
    pub netns_dir: Option<PathBuf>,
    /// The HTTP client port `ADD <url>` downloads through.
    pub http: Arc<dyn berth_http::Connector>,
    /// The SSH agents the client forwards, by ID (`RUN --mount=type=ssh`).
    pub ssh: std::collections::BTreeMap<String, berth_api_types::SshForward>,
}

/// The daemon's build backend.
pub struct StoreBuildBackend {
    pub(crate) store: Arc<Store>,
    pub(crate) cfg: BuildBackendConfig,
    /// `ADD <url>` downloads (created on first use).
    fetcher: std::sync::OnceLock<berth_build::Fetcher>,
}

pub(crate) fn be_err(kind: ErrorKind, what: impl std::fmt::Display) -> BuildError {
    BuildError::backend(kind, what.to_string())
}

pub(crate) fn store_err(e: berth_store::StoreError) -> BuildError {
    // A store conflict (an image in use) is, for a build step, bad input like any other.
    let kind = match e.kind() {
        ErrorKind::Conflict => ErrorKind::Invalid,
        k => k,
    };
    be_err(kind, e)
}

pub(crate) fn io_err(what: &str, e: std::io::Error) -> BuildError {
    be_err(ErrorKind::Internal, format!("{what}: {e}"))
}

fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let h = Digest::of(format!("{t}-{n}-{}", std::process::id()).as_bytes());
    format!("{prefix}{}", &h.hex()[..24])
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BuildError> + Send + 'static,
) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| be_err(ErrorKind::Internal, format!("build task panicked: {e}")))?
}

/// A mounted rw layer over a state's filesystem; removed (unmounted, deleted) on drop.
pub(crate) struct Scratch {
    store: Arc<Store>,
    pub id: String,
    pub merged: PathBuf,
    pub upper: PathBuf,
}

impl Scratch {
    /// A new rw layer over `image`, mounted.
    pub fn new(store: &Arc<Store>, image: Option<&Digest>) -> Result<Scratch, BuildError> {
        let s = Scratch::unmounted(store, image)?;
        store.mount_rw_layer(&s.id).map_err(store_err)?;
        Ok(s)
    }

    /// A new rw layer over `image`, not yet mounted (a RUN step's task mounts it).
    pub fn unmounted(store: &Arc<Store>, image: Option<&Digest>) -> Result<Scratch, BuildError> {
        let id = unique("build-");
        let rw = store.create_rw_layer(&id, image).map_err(store_err)?;
        Ok(Scratch {
            store: store.clone(),
            id,
            merged: rw.merged.clone(),
            upper: rw.upper.clone(),
        })
    }

    /// The changes as a committed layer on top of `parent_diff_ids`; None when nothing changed.
    pub fn diff(
        &self,
        parent_diff_ids: &[Digest],
        tmp_dir: &Path,
    ) -> Result<Option<Layer>, BuildError> {
        diff_layer(&self.store, &self.id, parent_diff_ids, tmp_dir)
    }
}

/// Commit the rw changes of `rw_id` (container or build step) as a layer over
/// `parent_diff_ids`; None when its upper dir is empty. The diff tar streams through a pipe
/// from a writer thread into the store's commit (compress + unpack), so the two overlap and
/// the uncompressed tar never touches the disk (`tmp_dir` is no longer needed; kept so callers
/// such as `docker commit` keep their signature).
pub fn diff_layer(
    store: &Store,
    rw_id: &str,
    parent_diff_ids: &[Digest],
    tmp_dir: &Path,
) -> Result<Option<Layer>, BuildError> {
    let _ = tmp_dir;
    let rw = store.rw_layer(rw_id).map_err(store_err)?;
    let empty = fs_err::read_dir(&rw.upper)
        .map_err(|e| io_err("read upper dir", e))?
        .next()
        .is_none();
    if empty {
        return Ok(None);
    }
    let (reader, writer) = std::io::pipe().map_err(|e| io_err("create diff pipe", e))?;
    let chain = berth_store::chain_ids(parent_diff_ids).pop();
    let upper = rw.upper.clone();
    let xattrs = store.overlay_xattrs();
    let (written, committed) = std::thread::scope(|sc| {
        let w = sc.spawn(move || {
            // Dropping the writer (also on error) ends the reader's stream.
            let out = BufWriter::with_capacity(1 << 20, writer);
            berth_store::diff_tar(&upper, xattrs, store.ids(), out).map_err(store_err)
        });
        let c = store.commit_layer(chain.as_ref(), BufReader::with_capacity(1 << 20, reader));
        let w = w
            .join()
            .unwrap_or_else(|_| Err(be_err(ErrorKind::Internal, "layer diff writer panicked")));
        (w, c)
    });
    // A writer failure means a truncated tar: whatever was committed from it is not used
    // (unreferenced, GC removes it).
    written?;
    let c = committed.map_err(store_err)?;
    Ok(Some(Layer {
        descriptor: c.descriptor,
        diff_id: c.diff_id,
    }))
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = self.store.remove_rw_layer(&self.id) {
            tracing::warn!(id = %self.id, error = %e, "cannot remove build rw layer");
        }
    }
}

/// Register `config` over `layers` as an image (tags may be empty); its ID.
pub fn register_state(
    store: &Store,
    config: &ImageConfig,
    layers: &[Descriptor],
    tags: &[Reference],
) -> Result<Digest, BuildError> {
    let cb = config.to_vec();
    store.put_blob(&cb).map_err(store_err)?;
    let m = Manifest::oci(&cb, layers.to_vec());
    let mb = m.to_vec();
    store.put_blob(&mb).map_err(store_err)?;
    let rec = store.register_image(&mb, &cb, tags).map_err(store_err)?;
    Ok(rec.id)
}

/// Record `parent` as the image's parent unless it is the image itself (best effort).
pub(crate) fn set_parent(store: &Store, id: &Digest, parent: Option<&Digest>) {
    if let Some(p) = parent.filter(|p| *p != id) {
        if let Err(e) = store.set_image_parent(id, Some(p)) {
            tracing::debug!(image = %id, error = %e, "cannot record parent image");
        }
    }
}

impl StoreBuildBackend {
    /// Mount a scratch rw layer over `parent`, let `f` change it, and return the change as a
    /// layer (None when nothing changed).
    async fn on_scratch(
        &self,
        parent: &State,
        f: impl FnOnce(&Arc<Store>, &Path) -> Result<(), BuildError> + Send + 'static,
    ) -> Result<Option<Layer>, BuildError> {
        let store = self.store.clone();
        let image = parent.rootfs.clone();
        let diff_ids = parent.config.rootfs.diff_ids.clone();
        let tmp = self.tmp_dir();
        blocking(move || {
            let s = Scratch::new(&store, image.as_ref())?;
            f(&store, &s.merged)?;
            s.store.unmount_rw_layer(&s.id).map_err(store_err)?;
            s.diff(&diff_ids, &tmp)
        })
        .await
    }

    pub fn new(store: Arc<Store>, cfg: BuildBackendConfig) -> StoreBuildBackend {
        StoreBuildBackend {
            store,
            cfg,
            fetcher: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.cfg.root.join("build-tmp")
    }

    fn cache_path(&self, key: &str) -> Option<PathBuf> {
        key.bytes().all(|b| b.is_ascii_hexdigit()).then(|| {
            self.cfg
                .root
                .join("build-cache")
                .join(format!("{key}.json"))
        })
    }

    fn state_of(&self, name: &str) -> Result<State, BuildError> {
        let rec = self.store.image(name).map_err(|e| match e.kind() {
            berth_store::ErrorKind::NotFound => be_err(
                ErrorKind::NotFound,
                format!("pull access denied for {name}: the image is not present locally; pull or load it first"),
            ),
            _ => store_err(e),
        })?;
        Ok(State {
            config: rec.config,
            layers: rec.layers,
            rootfs: Some(rec.id),
        })
    }
}

fn owner_for(root: &Path, chown: Option<&str>) -> Result<Owner, BuildError> {
    let Some(spec) = chown else {
        return Ok(Owner::default());
    };
    let u = berth_runtime::user::resolve_in_rootfs(root, spec, &[])
        .map_err(|e| be_err(ErrorKind::Invalid, format!("--chown={spec}: {e}")))?;
    // Docker: a user without a group uses the user's numeric id as the group id.
    let gid = if spec.contains(':') { u.gid } else { u.uid };
    Ok(Owner { uid: u.uid, gid })
}

fn do_copy(store: &Arc<Store>, merged: &Path, req: &CopyRequest) -> Result<(), BuildError> {
    let owner = owner_for(merged, req.chown.as_deref())?;
    let mut w =
        RootWriter::open_mapped(merged, store.ids()).map_err(|e| io_err("open rootfs", e))?;
    let dest = req.dest.trim_start_matches('/').to_string();
    let dest_dir = req.dest.ends_with('/');
    let werr = |e: std::io::Error| be_err(ErrorKind::Invalid, e);
    let place = |w: &RootWriter, name: &str, is_dir: bool| -> String {
        if is_dir {
            dest.trim_end_matches('/').to_string()
        } else if dest_dir || w.is_dir(&dest) {
            format!("{}/{name}", dest.trim_end_matches('/'))
        } else {
            dest.clone()
        }
    };
    match &req.from {
        CopyFrom::Inline(files) => {
            for (name, data) in files {
                let to = place(&w, name, false);
                w.write_file(&to, &mut data.as_slice(), req.chmod.unwrap_or(0o644), owner)
                    .map_err(werr)?;
            }
        }
        CopyFrom::Context(sources) => {
            for s in sources {
                let local_file = !s.is_dir() && s.url.is_none();
                if req.extract_archives && local_file && is_archive(&s.entries[0].host) {
                    let to = if dest_dir || w.is_dir(&dest) || !w.exists(&dest) {
                        dest.trim_end_matches('/').to_string()
                    } else {
                        dest.clone()
                    };
                    w.extract(&to, &s.entries[0].host).map_err(werr)?;
                    continue;
                }
                let to = place(&w, &s.name, s.is_dir());
                w.copy_source(s, &to, owner, req.chmod).map_err(werr)?;
            }
        }
        CopyFrom::State { state, sources } => {
            let src = Scratch::new(store, state.rootfs.as_ref())?;
            let opts = SourceOptions {
                ignore: None,
                strict: false,
                what: "source image",
                excludes: &req.excludes,
            };
            for p in sources {
                for s in berth_build::collect(&src.merged, p, &opts)? {
                    let to = place(&w, &s.name, s.is_dir());
                    w.copy_source(&s, &to, owner, req.chmod).map_err(werr)?;
                }
            }
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl BuildBackend for StoreBuildBackend {
    async fn resolve_image(&self, name: &str, pull: bool) -> Result<State, BuildError> {
        let lookup = || {
            let me = StoreBuildBackend::new(self.store.clone(), self.cfg.clone());
            let name = name.to_string();
            blocking(move || me.state_of(&name))
        };
        if !pull {
            match lookup().await {
                Err(e) if e.kind() == ErrorKind::NotFound && self.cfg.puller.is_some() => {}
                other => return other,
            }
        }
        if let Some(puller) = &self.cfg.puller {
            puller(name.to_string())
                .await
                .map_err(|m| be_err(ErrorKind::NotFound, m))?;
        }
        lookup().await
    }

    async fn run(
        &self,
        parent: &State,
        req: RunRequest,
        sink: Sink,
    ) -> Result<RunResult, BuildError> {
        crate::build::run::run(self, parent, req, sink).await
    }

    async fn copy(&self, parent: &State, req: CopyRequest) -> Result<Option<Layer>, BuildError> {
        self.on_scratch(parent, move |store, merged| do_copy(store, merged, &req))
            .await
    }

    async fn mkdir(
        &self,
        parent: &State,
        path: String,
        user: String,
    ) -> Result<Option<Layer>, BuildError> {
        self.on_scratch(parent, move |store, merged| {
            let w = RootWriter::open_mapped(merged, store.ids())
                .map_err(|e| io_err("open rootfs", e))?;
            if w.is_dir(&path) {
                return Ok(());
            }
            let owner = if user.is_empty() {
                Owner::default()
            } else {
                let u = berth_runtime::user::resolve_in_rootfs(merged, &user, &[])
                    .map_err(|e| be_err(ErrorKind::Invalid, format!("USER {user}: {e}")))?;
                Owner {
                    uid: u.uid,
                    gid: u.gid,
                }
            };
            w.mkdir_all(&path, 0o755, owner)
                .map(|_| ())
                .map_err(|e| be_err(ErrorKind::Invalid, format!("WORKDIR {path}: {e}")))
        })
        .await
    }

    async fn register(&self, state: &State) -> Result<Digest, BuildError> {
        let store = self.store.clone();
        let st = state.clone();
        // `state.rootfs` is still the parent's image here: record it as Docker's `Parent`,
        // which lets image listings hide intermediate build images.
        blocking(move || {
            let id = register_state(&store, &st.config, &st.layers, &[])?;
            set_parent(&store, &id, st.rootfs.as_ref());
            Ok(id)
        })
        .await
    }

    async fn commit(&self, state: &State, tags: &[String]) -> Result<Digest, BuildError> {
        let refs = tags
            .iter()
            .map(|t| {
                Reference::parse(t)
                    .map_err(|e| be_err(ErrorKind::Invalid, format!("invalid tag {t:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let store = self.store.clone();
        let st = state.clone();
        blocking(move || {
            let id = register_state(&store, &st.config, &st.layers, &refs)?;
            set_parent(&store, &id, st.rootfs.as_ref());
            Ok(id)
        })
        .await
    }

    async fn cache_get(&self, key: &str) -> Result<Option<State>, BuildError> {
        let Some(p) = self.cache_path(key) else {
            return Ok(None);
        };
        let store = self.store.clone();
        blocking(move || {
            let Ok(b) = fs::read(&p) else {
                return Ok(None);
            };
            let Ok(s) = serde_json::from_slice::<State>(&b) else {
                let _ = fs::remove_file(&p);
                return Ok(None);
            };
            // Usable only while the step's own image is still in the store: an image `rmi`
            // deleted is never a cache hit (entries from before every step was an image
            // name their parent's image instead, and are dropped the same way).
            let own = s.rootfs.as_ref().filter(|id| **id == s.id());
            if own.is_none_or(|id| store.image(&id.to_string()).is_err()) {
                let _ = fs::remove_file(&p);
                return Ok(None);
            }
            Ok(Some(s))
        })
        .await
    }

    /// Downloads go to `<root>/build-tmp/downloads/` and are re-fetched on every build: the
    /// cache key is the content digest (Docker's classic builder does the same).
    async fn fetch(&self, url: &str) -> Result<berth_build::Download, BuildError> {
        let fetcher = match self.fetcher.get() {
            Some(f) => f,
            None => {
                let f = berth_build::Fetcher::new(self.cfg.http.as_ref())?;
                self.fetcher.get_or_init(|| f)
            }
        };
        fetcher
            .download(url, &self.tmp_dir().join("downloads"))
            .await
    }

    async fn cache_put(&self, key: &str, state: &State) -> Result<(), BuildError> {
        let Some(p) = self.cache_path(key) else {
            return Ok(());
        };
        let b = serde_json::to_vec(state).map_err(|e| be_err(ErrorKind::Internal, e))?;
        blocking(move || {
            crate::atomic_file::write_atomic(&p, &b).map_err(|e| io_err("write build cache", e))
        })
        .await
    }
}
