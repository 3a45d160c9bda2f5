//! Build `RUN` on berth-task, the start path `docker run` uses: the step's rw layer, its
//! network (the engine's bridge through [`BuildNetwork`], the host's, or none), its
//! `--mount=from` layers (task steps, undone with the rest), its mounts and /etc files planned
//! as data, the shim attached before start, and [`RunStep`], the guard that
//! undoes a step whose build was cancelled mid-step.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_build::{
    BuildError, ErrorKind, Event, MountSource, Network, RunRequest, RunResult, Sink, State,
};
use berth_oci::Digest;
use berth_runtime::{Error as RtError, NetworkMode, Shim, ShimConfig, ShimStarted, StdioEvent};
use berth_store::Store;
use berth_task::{
    Attached, Effects, MountedLayer, PlannedFile, Prepare, StartError, StartPlan, Task,
};

use crate::build::backend::{
    be_err, blocking, io_err, store_err, BuildNetwork, Scratch, StoreBuildBackend,
};
use crate::build::copy::RootWriter;
use crate::build::secret_file::SecretFile;
use crate::build::ssh_socket::SshSocket;
use crate::containers::lock;

/// A RUN mount: (target, kind, source, options).
type StepMount = (String, String, String, Vec<String>);

/// Hostname of every RUN container (BuildKit's).
const HOSTNAME: &str = "buildkitsandbox";

/// A RUN step's side effects.
struct StepEffects {
    store: Arc<Store>,
    /// The engine's bridge when the step runs on it.
    bridge: Option<Arc<dyn BuildNetwork>>,
    network: Network,
    exe: PathBuf,
    /// Where `--network none` namespaces go (see [`crate::build::backend::BuildBackendConfig`]).
    netns_dir: Option<PathBuf>,
    /// The resolv.conf host-network steps get instead of the host's file (rootless).
    host_resolv: Option<String>,
    /// The rw layers of `--mount=from` stages the task mounted, by id.
    layers: Mutex<HashMap<String, Scratch>>,
}

#[async_trait::async_trait]
impl Effects for StepEffects {
    type Shim = Shim;
    type Net = ();
    type Error = BuildError;
    /// A `--mount=from` stage's image (None: `scratch`).
    type Layer = Option<Digest>;

    async fn mount_rootfs(&self, id: &str) -> Result<PathBuf, BuildError> {
        let (store, id) = (self.store.clone(), id.to_string());
        blocking(move || store.mount_rw_layer(&id).map_err(store_err)).await
    }

    async fn unmount_rootfs(&self, id: &str) {
        let (store, id) = (self.store.clone(), id.to_string());
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = store.unmount_rw_layer(&id) {
                tracing::warn!(id, error = %e, "cannot unmount RUN rw layer");
            }
        })
        .await;
    }

    /// A new rw layer over the stage, mounted (a mount abandoned in flight drops its
    /// [`Scratch`], which removes the layer).
    async fn mount_layer(&self, image: &Option<Digest>) -> Result<MountedLayer, BuildError> {
        let (store, image) = (self.store.clone(), image.clone());
        let s = blocking(move || Scratch::new(&store, image.as_ref())).await?;
        let m = MountedLayer {
            id: s.id.clone(),
            path: s.merged.clone(),
        };
        lock(&self.layers).insert(s.id.clone(), s);
        Ok(m)
    }

    /// Unmount and remove the layer, off the async workers.
    async fn unmount_layer(&self, layer: &MountedLayer) {
        let made = lock(&self.layers).remove(&layer.id);
        if let Some(s) = made {
            let _ = tokio::task::spawn_blocking(move || drop(s)).await;
        }
    }

    async fn attach_network(&self, id: &str) -> Result<Attached<()>, BuildError> {
        let Some(n) = &self.bridge else {
            if let (Network::None, Some(dir)) = (self.network, &self.netns_dir) {
                // A namespace of its own with loopback up, as `docker run --network none`.
                let ns = dir.join(id);
                berth_network::netlink::create_netns(&ns)
                    .await
                    .map_err(|e| be_err(ErrorKind::Unavailable, format!("RUN netns: {e}")))?;
                return Ok(Attached {
                    mode: NetworkMode::Path(ns.clone()),
                    netns: Some(ns),
                    ..Default::default()
                });
            }
            let (mode, resolv) = match self.network {
                Network::None => (NetworkMode::None, String::new()),
                _ => (
                    NetworkMode::Host,
                    self.host_resolv.clone().unwrap_or_default(),
                ),
            };
            return Ok(Attached {
                mode,
                resolv,
                ..Default::default()
            });
        };
        let (ns, resolv) = n.attach(id).await.map_err(|m| {
            be_err(
                ErrorKind::Unavailable,
                format!("RUN network: {m}; RUN --network=host avoids the bridge"),
            )
        })?;
        Ok(Attached {
            mode: NetworkMode::Path(ns.clone()),
            netns: Some(ns),
            resolv,
            ..Default::default()
        })
    }

    async fn detach_network(&self, id: &str, netns: Option<&Path>) {
        if let Some(n) = &self.bridge {
            n.detach(id).await;
        } else if let Some(ns) = netns {
            let ns = ns.to_path_buf();
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = berth_network::netlink::remove_netns(&ns) {
                    tracing::warn!(netns = %ns.display(), error = %e, "cannot remove RUN netns");
                }
            })
            .await;
        }
    }

    async fn write_file(&self, path: &Path, text: &str, what: &str) -> Result<(), BuildError> {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io_err(&format!("write {what}"), e))?;
        }
        tokio::fs::write(path, text)
            .await
            .map_err(|e| io_err(&format!("write {what}"), e))
    }

    async fn remove_file(&self, path: &Path) {
        let _ = tokio::fs::remove_file(path).await;
    }

    fn shim_at(&self, dir: &Path) -> Shim {
        Shim::new(dir)
    }

    async fn spawn_shim(
        &self,
        dir: &Path,
        cfg: &ShimConfig,
    ) -> Result<(Shim, ShimStarted), RtError> {
        Shim::spawn(&self.exe, dir, cfg).await
    }

    async fn start_shim(&self, shim: &Shim) -> Result<(), RtError> {
        shim.start().await
    }

    /// Wait returns once the shim recorded the exit and removed the cgroups (or, when the
    /// shim is gone, after cleaning up for it); then its directory goes.
    async fn reap_shim(&self, shim: &Shim) {
        if berth_task::reap(shim, Some(Duration::from_secs(30)))
            .await
            .is_none()
        {
            tracing::warn!(dir = %shim.dir().display(), "RUN container did not report its exit after SIGKILL");
        }
        let _ = tokio::fs::remove_dir_all(shim.dir()).await;
    }
}

/// What one RUN step holds while it runs: its task (shim, network, scratch files, the
/// `--mount=from` layers, the mount of its rw layer) and its rw layer. Dropped unfinished
/// (the build was cancelled: its client went away and the build future was dropped
/// mid-step, or the step failed early), it unwinds the task — kills the container, waits for
/// the shim to clean up its cgroups, releases the layers, detaches the network — and only
/// then removes its rw layer, from a task, since the drop cannot wait.
struct RunStep {
    task: Task<StepEffects>,
    scratch: Option<Scratch>,
}

impl RunStep {
    /// The container exited: release the step's resources, keep the main layer for the diff.
    async fn finish(mut self) -> Scratch {
        self.task.unwind().await;
        self.scratch.take().expect("RUN step finished once")
    }
}

impl Drop for RunStep {
    fn drop(&mut self) {
        let Some(scratch) = self.scratch.take() else {
            return; // finished
        };
        let fx = self.task.effects().clone();
        let mut task = std::mem::replace(&mut self.task, Task::new(fx, ""));
        let cleanup = async move {
            if task.holds_shim() {
                tracing::info!(id = task.id(), "RUN step abandoned: killing its container");
            }
            task.unwind().await;
            // Remove the rw layer only once nothing runs on it.
            let _ = tokio::task::spawn_blocking(move || drop(scratch)).await;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(cleanup);
            }
            Err(_) => tracing::error!("no runtime to clean up an abandoned RUN step"),
        }
    }
}

/// The step's planning (user, mounts, /etc files, spec) and attach.
struct RunPrep<'a> {
    be: &'a StoreBuildBackend,
    req: &'a RunRequest,
    sink: &'a Sink,
    id: String,
    shim_dir: PathBuf,
    on_bridge: bool,
    /// Mount targets that did not exist in the rootfs (removed again before the diff).
    created_targets: Vec<String>,
    stream: Option<berth_runtime::StdioStream>,
    /// Files holding the step's secrets (removed when the step is over, or abandoned).
    secrets: &'a mut Vec<SecretFile>,
    /// Sockets forwarding the client's SSH agents (closed likewise).
    ssh: &'a mut Vec<SshSocket>,
}

fn rt(e: RtError) -> BuildError {
    be_err(ErrorKind::Unavailable, format!("RUN container: {e}"))
}

impl RunPrep<'_> {
    /// The step's mounts: (target, kind, source, options); `layers` are the `--mount=from`
    /// stages, mounted in the order of the request's mounts.
    fn mounts(&mut self, layers: &[MountedLayer]) -> Result<Vec<StepMount>, BuildError> {
        let mut layers = layers.iter();
        let mut plan = Vec::new();
        // Under --userns-remap the step's root is the remapped one: cache dirs are its own,
        // secrets and agent sockets get the host ids of the owners asked for.
        let ids = self.be.store.ids().clone();
        let host_owner = |uid: u32, gid: u32| {
            ids.to_host(uid, gid)
                .map_err(|e| be_err(ErrorKind::Invalid, format!("RUN --mount: {e}")))
        };
        for m in &self.req.mounts {
            match &m.source {
                MountSource::Cache { id } => {
                    let dir = self
                        .be
                        .cfg
                        .root
                        .join("build-cache-mounts")
                        .join(Digest::of(id.as_bytes()).hex());
                    fs_err::create_dir_all(&dir).map_err(|e| io_err("create cache mount", e))?;
                    if !ids.is_identity() {
                        let (uid, gid) = ids.root();
                        let parent = dir.parent().unwrap_or(&dir);
                        berth_rootfs::fsmode::group_traverse(parent, gid)
                            .and_then(|()| std::os::unix::fs::chown(&dir, Some(uid), Some(gid)))
                            .map_err(|e| io_err("give the cache mount to the remapped root", e))?;
                    }
                    plan.push((
                        m.target.clone(),
                        "bind".into(),
                        dir.display().to_string(),
                        vec!["rbind".into(), "rw".into()],
                    ));
                }
                MountSource::Secret {
                    data,
                    mode,
                    uid,
                    gid,
                } => {
                    // `<step>-secret-<n>`: a crash's leftovers are found by their step.
                    let path = self.be.tmp_dir().join(format!(
                        "{}-secret-{}",
                        self.id,
                        self.secrets.len()
                    ));
                    let (uid, gid) = host_owner(*uid, *gid)?;
                    let file = SecretFile::write(path, &data.0, *mode, uid, gid)
                        .map_err(|e| io_err("write build secret", e))?;
                    plan.push((
                        m.target.clone(),
                        "bind".into(),
                        file.0.display().to_string(),
                        vec!["bind".into(), "ro".into()],
                    ));
                    self.secrets.push(file);
                }
                MountSource::Ssh { id, mode, uid, gid } => {
                    let agent = self.be.cfg.ssh.get(id).cloned().ok_or_else(|| {
                        be_err(
                            ErrorKind::Invalid,
                            format!("no SSH agent {id:?} forwarded by the client"),
                        )
                    })?;
                    // `<step>-ssh-<n>`: a crash's leftovers are found by their step.
                    let path =
                        self.be
                            .tmp_dir()
                            .join(format!("{}-ssh-{}", self.id, self.ssh.len()));
                    let (uid, gid) = host_owner(*uid, *gid)?;
                    let socket = SshSocket::serve(path, agent, *mode, uid, gid)
                        .map_err(|e| io_err("serve the forwarded SSH agent", e))?;
                    plan.push((
                        m.target.clone(),
                        "bind".into(),
                        socket.path.display().to_string(),
                        vec!["bind".into(), "ro".into()],
                    ));
                    self.ssh.push(socket);
                }
                MountSource::Tmpfs { size } => {
                    let mut o = vec!["nosuid".to_string(), "nodev".into()];
                    if let Some(s) = size {
                        o.push(format!("size={s}"));
                    }
                    plan.push((m.target.clone(), "tmpfs".into(), "tmpfs".into(), o));
                }
                MountSource::Bind { from, source } => {
                    let (root, strict) = match from {
                        None => (self.req.context.clone(), true),
                        Some(_) => {
                            let l = layers.next().expect("a layer mounted per --mount=from");
                            (l.path.clone(), false)
                        }
                    };
                    let parts = berth_build::context::clean_source(source, strict)?;
                    let host = berth_build::context::resolve_in_root(
                        &root,
                        &parts,
                        true,
                        strict,
                        "build context",
                    )?;
                    let ro = if m.readonly { "ro" } else { "rw" };
                    plan.push((
                        m.target.clone(),
                        "bind".into(),
                        host.display().to_string(),
                        vec!["rbind".into(), ro.into()],
                    ));
                }
            }
        }
        Ok(plan)
    }
}

#[async_trait::async_trait]
impl Prepare<StepEffects> for RunPrep<'_> {
    /// The stages `--mount=from` binds from, in the order of the request's mounts.
    fn layers(&self) -> Vec<Option<Digest>> {
        self.req
            .mounts
            .iter()
            .filter_map(|m| match &m.source {
                MountSource::Bind { from: Some(st), .. } => Some(st.rootfs.clone()),
                _ => None,
            })
            .collect()
    }

    async fn plan(
        &mut self,
        rootfs: &Path,
        net: &Attached<()>,
        layers: &[MountedLayer],
    ) -> Result<StartPlan, BuildError> {
        let user_spec = self.req.user.clone();
        let user = berth_runtime::user::resolve_in_rootfs(rootfs, &user_spec, &[])
            .map_err(|e| be_err(ErrorKind::Invalid, format!("USER {user_spec}: {e}")))?;
        let ids = self.be.store.ids().clone();
        let writer = RootWriter::open_mapped(rootfs, &ids).map_err(|e| io_err("open rootfs", e))?;
        let mounts = self.mounts(layers)?;
        if !ids.is_identity() {
            // The step's /etc files are bind sources the remapped root must reach.
            berth_rootfs::fsmode::group_traverse(&self.be.tmp_dir(), ids.root().1)
                .map_err(|e| io_err("open the build's scratch dir to the remapped root", e))?;
        }
        let extra_hosts = &self.be.cfg.extra_hosts;
        let host_hosts =
            (!extra_hosts.is_empty()).then(|| fs::read_to_string("/etc/hosts").unwrap_or_default());
        let (plan, created) = step_plan(StepInputs {
            id: &self.id,
            rootfs,
            req: self.req,
            user,
            net,
            mounts,
            tmp: &self.be.tmp_dir(),
            shim_dir: &self.shim_dir,
            state_root: self.be.cfg.root.join("build-tmp").join("runtime"),
            on_bridge: self.on_bridge,
            extra_hosts,
            host_hosts,
            in_rootfs: &|p| writer.exists(p),
            on_host: &|p| Path::new(p).exists(),
            ids,
        });
        self.created_targets.extend(created);
        (self.sink)(Event::Running {
            container: self.id.clone(),
        });
        Ok(plan)
    }

    /// Attach before the process starts, so no output is missed.
    async fn created(&mut self, shim: &Shim) -> Result<(), BuildError> {
        self.stream = Some(shim.attach(false, true, true).await.map_err(rt)?);
        Ok(())
    }
}

/// What a RUN step's plan is made of, as values.
struct StepInputs<'a> {
    id: &'a str,
    rootfs: &'a Path,
    req: &'a RunRequest,
    user: berth_runtime::User,
    net: &'a Attached<()>,
    /// The RUN mounts: (target, kind, source, options).
    mounts: Vec<StepMount>,
    /// Where the step's scratch files go.
    tmp: &'a Path,
    shim_dir: &'a Path,
    state_root: PathBuf,
    on_bridge: bool,
    /// `--add-host` entries (name, ip).
    extra_hosts: &'a [(String, String)],
    /// The host's /etc/hosts, read when there are `--add-host` entries.
    host_hosts: Option<String>,
    /// Does a path exist in the step's rootfs?
    in_rootfs: &'a (dyn Fn(&str) -> bool + Sync),
    /// Does a path exist on the host?
    on_host: &'a (dyn Fn(&str) -> bool + Sync),
    /// The daemon's `--userns-remap` mapping (identity without it).
    ids: berth_rootless::IdMapping,
}

/// The RUN step's start plan (pure), and the mount targets that did not exist in its rootfs
/// (removed again before the diff). /etc/resolv.conf and /etc/hosts: the bridge's
/// resolv.conf (or the one a rootless daemon gives host-network steps) and the host's hosts
/// with `--add-host` entries when there are such, else the host's own files, read-only.
fn step_plan(i: StepInputs<'_>) -> (StartPlan, Vec<String>) {
    let mut created = Vec::new();
    let mut mounts = Vec::new();
    for (target, kind, source, options) in i.mounts {
        if !(i.in_rootfs)(&target) {
            created.push(target.clone());
        }
        mounts.push(berth_runtime::MountSpec {
            destination: target,
            kind,
            source,
            options,
        });
    }
    let mut files = Vec::new();
    let mut etc = [("/etc/resolv.conf", None), ("/etc/hosts", None)];
    if i.on_bridge || !i.net.resolv.is_empty() {
        let path = i.tmp.join(format!("{}-resolv.conf", i.id));
        etc[0].1 = Some(path.clone());
        files.push(PlannedFile {
            path,
            text: i.net.resolv.clone(),
            what: "RUN resolv.conf".into(),
            remove_on_unwind: true,
        });
    }
    if !i.extra_hosts.is_empty() {
        let path = i.tmp.join(format!("{}-hosts", i.id));
        etc[1].1 = Some(path.clone());
        files.push(PlannedFile {
            path,
            text: hosts_with(i.host_hosts.as_deref().unwrap_or(""), i.extra_hosts),
            what: "RUN hosts file".into(),
            remove_on_unwind: true,
        });
    }
    for (f, planned) in etc {
        let source = match planned {
            Some(p) => p.display().to_string(),
            None if (i.on_host)(f) => f.to_string(),
            None => continue,
        };
        if !(i.in_rootfs)(f) {
            created.push(f.to_string());
        }
        mounts.push(berth_runtime::MountSpec {
            destination: f.into(),
            kind: "bind".into(),
            source,
            options: vec!["bind".into(), "ro".into()],
        });
    }
    let spec = berth_runtime::ContainerSpec {
        id: i.id.to_string(),
        rootfs: i.rootfs.to_path_buf(),
        args: i.req.args.clone(),
        env: i.req.env.clone(),
        cwd: i.req.workdir.clone(),
        user: i.user,
        hostname: HOSTNAME.into(),
        mounts,
        // dockerd's RUN containers are created like any other: own netns unless host.
        own_netns: i.net.mode != berth_runtime::NetworkMode::Host,
        network: i.net.mode.clone(),
        userns: (!i.ids.is_identity()).then(|| i.ids.clone()),
        ..Default::default()
    };
    let plan = StartPlan {
        files,
        shim_dir: i.shim_dir.to_path_buf(),
        config: ShimConfig {
            spec,
            state_root: i.state_root,
            log: berth_runtime::LogConfig::with_defaults(i.shim_dir.join("container.log")),
            start_on_request: true,
        },
        // The shim dir goes with the step: reap whatever a failed spawn left.
        reap_failed_spawn: true,
    };
    (plan, created)
}

/// Stream a started RUN container's output to `sink` until it exits: its exit code.
async fn stream_output(
    stream: Option<berth_runtime::StdioStream>,
    shim: &Shim,
    sink: &Sink,
) -> Result<i32, BuildError> {
    let mut code = None;
    if let Some(mut stream) = stream {
        loop {
            match stream.next().await {
                Ok(StdioEvent::Stdout(data)) => sink(Event::Output { stream: 1, data }),
                Ok(StdioEvent::Stderr(data)) => sink(Event::Output { stream: 2, data }),
                Ok(StdioEvent::Exit(c)) => {
                    code = Some(c);
                    break;
                }
                Ok(StdioEvent::Closed) | Err(_) => break,
            }
        }
    }
    let x = shim.wait().await.map_err(rt)?;
    Ok(code.unwrap_or(x.exit_code))
}

/// Run `req` in a container over `parent`'s filesystem, attached before its process starts
/// (no output is missed), streaming its output to `sink`; its exit code (126/127 when the
/// command cannot run) and, when it succeeded, its changes as a layer.
pub(crate) async fn run(
    be: &StoreBuildBackend,
    parent: &State,
    req: RunRequest,
    sink: Sink,
) -> Result<RunResult, BuildError> {
    let store = be.store.clone();
    let image = parent.rootfs.clone();
    let scratch = blocking(move || Scratch::unmounted(&store, image.as_ref())).await?;
    let id = scratch.id.clone();
    let shim_dir = be.tmp_dir().join(format!("{id}-shim"));
    // dockerd's build containers show in `docker events`: create, start, die, destroy.
    let event = |action: &str, extra: Option<(&str, String)>| {
        if let Some(ev) = &be.cfg.events {
            let mut attrs = HashMap::from([("name".to_string(), id.clone())]);
            if let Some(img) = &parent.rootfs {
                attrs.insert("image".into(), img.to_string());
            }
            if let Some((k, v)) = extra {
                attrs.insert(k.into(), v);
            }
            ev(action, id.trim_start_matches("build-"), attrs);
        }
    };
    event("create", None);
    // RUN on the bridge (the default when the engine has one) or the host's network.
    let bridge = match (req.network, &be.cfg.network) {
        (Network::Default, Some(n)) => Some(n.clone()),
        _ => None,
    };
    let fx = Arc::new(StepEffects {
        store: be.store.clone(),
        bridge: bridge.clone(),
        network: req.network,
        exe: be.cfg.shim_exe.clone(),
        netns_dir: be.cfg.netns_dir.clone(),
        host_resolv: be.cfg.host_resolv.clone(),
        layers: Mutex::default(),
    });
    let mut step = RunStep {
        task: Task::new(fx, id.clone()),
        scratch: Some(scratch),
    };
    // Removed when this step returns or is abandoned (its future dropped); a container still
    // being killed keeps its bind mount of the file until it is gone.
    let mut secrets = Vec::new();
    let mut ssh = Vec::new();
    let mut prep = RunPrep {
        be,
        req: &req,
        sink: &sink,
        id: id.clone(),
        shim_dir,
        on_bridge: bridge.is_some(),
        created_targets: Vec::new(),
        stream: None,
        secrets: &mut secrets,
        ssh: &mut ssh,
    };
    let started = berth_task::start(&mut step.task, &mut prep).await;
    let (stream, created_targets) = (
        prep.stream.take(),
        std::mem::take(&mut prep.created_targets),
    );
    drop(prep);
    let exec_failed = |message: String, code: i32| {
        sink(Event::Output {
            stream: 2,
            data: format!("{message}\n").into_bytes(),
        });
        Ok(code)
    };
    let ran = match started {
        Ok(running) => {
            event("start", None);
            stream_output(stream, &running.shim, &sink).await
        }
        Err(StartError::Spawn(RtError::Exec { message, exit_code }))
        | Err(StartError::Start(RtError::Exec { message, exit_code })) => {
            exec_failed(message, exit_code)
        }
        Err(StartError::Spawn(e)) => Err(be_err(
            ErrorKind::Unavailable,
            format!("start RUN container: {e}"),
        )),
        Err(StartError::Start(e)) => Err(rt(e)),
        // Undone already; the guard removes the layers.
        Err(StartError::Effect(e)) => return Err(e),
    };
    let scratch = step.finish().await;
    if let Ok(code) = &ran {
        event("die", Some(("exitCode", code.to_string())));
    }
    event("destroy", None);
    sink(Event::Removed {
        container: id.clone(),
    });
    let exit_code = ran?;
    let diff_ids = parent.config.rootfs.diff_ids.clone();
    let tmp = be.tmp_dir();
    let store = be.store.clone();
    blocking(move || {
        store.unmount_rw_layer(&scratch.id).map_err(store_err)?;
        for t in created_targets {
            remove_mount_target(&scratch.upper, &t);
        }
        if exit_code != 0 {
            return Ok(RunResult {
                exit_code,
                layer: None,
            });
        }
        let layer = scratch.diff(&diff_ids, &tmp)?;
        Ok(RunResult { exit_code, layer })
    })
    .await
}

/// Remove from an upper dir a mount target the runtime created, and the parent dirs that were
/// only copied up to hold it (empty afterwards), so mounts leave no trace in the layer.
fn remove_mount_target(upper: &Path, target: &str) {
    let rel = target.trim_matches('/');
    let p = upper.join(rel);
    if let Ok(md) = fs::symlink_metadata(&p) {
        let _ = if md.is_dir() {
            fs::remove_dir(&p)
        } else {
            fs::remove_file(&p)
        };
    }
    let mut parent = Path::new(rel).parent();
    while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
        // remove_dir fails on a non-empty dir, which then stays (a real change).
        if fs::remove_dir(upper.join(dir)).is_err() {
            break;
        }
        parent = dir.parent();
    }
}

/// The host's hosts file with `--add-host` entries appended (the classic builder's RUN view).
fn hosts_with(base: &str, extra: &[(String, String)]) -> String {
    let mut out = base.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for (name, ip) in extra {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> RunRequest {
        RunRequest {
            args: vec!["/bin/sh".into(), "-c".into(), "make".into()],
            env: vec!["PATH=/usr/bin".into()],
            user: "builder".into(),
            workdir: "/src".into(),
            network: Network::Default,
            mounts: vec![],
            context: "/ctx".into(),
        }
    }

    fn inputs<'a>(
        req: &'a RunRequest,
        net: &'a Attached<()>,
        on_bridge: bool,
        extra_hosts: &'a [(String, String)],
        in_rootfs: &'a (dyn Fn(&str) -> bool + Sync),
        on_host: &'a (dyn Fn(&str) -> bool + Sync),
    ) -> StepInputs<'a> {
        StepInputs {
            ids: berth_rootless::IdMapping::identity(),
            id: "build-abc",
            rootfs: Path::new("/rw/build-abc/merged"),
            req,
            user: berth_runtime::User {
                uid: 1000,
                ..Default::default()
            },
            net,
            mounts: vec![(
                "/root/.cache".into(),
                "bind".into(),
                "/cache/k".into(),
                vec!["rbind".into(), "rw".into()],
            )],
            tmp: Path::new("/var/lib/berth/build-tmp"),
            shim_dir: Path::new("/var/lib/berth/build-tmp/build-abc-shim"),
            state_root: "/var/lib/berth/build-tmp/runtime".into(),
            on_bridge,
            extra_hosts,
            host_hosts: (!extra_hosts.is_empty()).then(|| "127.0.0.1\tlocalhost".into()),
            in_rootfs,
            on_host,
        }
    }

    #[test]
    fn bridge_step_with_added_hosts() {
        let req = req();
        let net = Attached {
            mode: NetworkMode::Path("/run/netns/build-abc".into()),
            netns: Some("/run/netns/build-abc".into()),
            resolv: "nameserver 172.17.0.1\n".into(),
            ..Default::default()
        };
        let hosts = [("db".to_string(), "10.0.0.5".to_string())];
        // The image has /etc/hosts but neither /etc/resolv.conf nor the cache dir.
        let in_rootfs = |p: &str| p == "/etc/hosts";
        let (plan, created) = step_plan(inputs(&req, &net, true, &hosts, &in_rootfs, &|_| true));
        let tmp = Path::new("/var/lib/berth/build-tmp");
        let files: Vec<_> = plan
            .files
            .iter()
            .map(|f| (f.path.clone(), f.text.as_str(), f.remove_on_unwind))
            .collect();
        assert_eq!(
            files,
            [
                (
                    tmp.join("build-abc-resolv.conf"),
                    "nameserver 172.17.0.1\n",
                    true
                ),
                (
                    tmp.join("build-abc-hosts"),
                    "127.0.0.1\tlocalhost\n10.0.0.5\tdb\n",
                    true
                ),
            ]
        );
        let s = &plan.config.spec;
        let mounts: Vec<_> = s
            .mounts
            .iter()
            .map(|m| {
                (
                    m.destination.as_str(),
                    m.source.as_str(),
                    m.options.join(","),
                )
            })
            .collect();
        assert_eq!(
            mounts,
            [
                ("/root/.cache", "/cache/k", "rbind,rw".to_string()),
                (
                    "/etc/resolv.conf",
                    "/var/lib/berth/build-tmp/build-abc-resolv.conf",
                    "bind,ro".to_string()
                ),
                (
                    "/etc/hosts",
                    "/var/lib/berth/build-tmp/build-abc-hosts",
                    "bind,ro".to_string()
                ),
            ]
        );
        assert_eq!(created, ["/root/.cache", "/etc/resolv.conf"]);
        assert_eq!(s.hostname, "buildkitsandbox");
        assert_eq!(s.args, ["/bin/sh", "-c", "make"]);
        assert_eq!(s.cwd, "/src");
        assert_eq!(s.user.uid, 1000);
        assert_eq!(s.network, NetworkMode::Path("/run/netns/build-abc".into()));
        assert!(plan.reap_failed_spawn);
        assert!(plan.config.start_on_request);
        assert_eq!(
            plan.config.log.path,
            Path::new("/var/lib/berth/build-tmp/build-abc-shim/container.log")
        );
    }

    #[test]
    fn host_step_binds_the_hosts_files_that_exist() {
        let req = req();
        let net = Attached {
            mode: NetworkMode::Host,
            ..Default::default()
        };
        // A host without /etc/hosts: only its resolv.conf is bound; no scratch files.
        let on_host = |p: &str| p == "/etc/resolv.conf";
        let (plan, created) = step_plan(inputs(&req, &net, false, &[], &|_| true, &on_host));
        assert!(plan.files.is_empty());
        let dests: Vec<_> = plan
            .config
            .spec
            .mounts
            .iter()
            .map(|m| (m.destination.as_str(), m.source.as_str()))
            .collect();
        assert_eq!(
            dests,
            [
                ("/root/.cache", "/cache/k"),
                ("/etc/resolv.conf", "/etc/resolv.conf")
            ]
        );
        assert!(created.is_empty());
        assert_eq!(plan.config.spec.network, NetworkMode::Host);

        // A rootless daemon's host network has its own resolv.conf (slirp's DNS): written and
        // bound instead of the host's file.
        let net = Attached {
            mode: NetworkMode::Host,
            resolv: "nameserver 10.0.2.3\n".into(),
            ..Default::default()
        };
        let (plan, _) = step_plan(inputs(&req, &net, false, &[], &|_| true, &on_host));
        assert_eq!(plan.files.len(), 1);
        assert_eq!(plan.files[0].text, "nameserver 10.0.2.3\n");
        let bound = plan
            .config
            .spec
            .mounts
            .iter()
            .find(|m| m.destination == "/etc/resolv.conf")
            .unwrap();
        assert_eq!(Path::new(&bound.source), plan.files[0].path);
    }
}
