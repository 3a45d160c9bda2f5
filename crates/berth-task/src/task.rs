//! [`Task`]: the undo stack of one start, and [`start`]: the one start sequence.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_runtime::ShimStarted;

use crate::effects::{Attached, Effects, MountedLayer};
use crate::plan::StartPlan;

/// Why a start failed; what it had done is undone by then.
#[derive(Debug)]
pub enum StartError<X> {
    /// A step of the caller's ([`Effects`] or [`Prepare`]) failed.
    Effect(X),
    /// The shim could not create the container (126/127 when the command cannot run).
    Spawn(berth_runtime::Error),
    /// The created container's process could not start.
    Start(berth_runtime::Error),
}

/// The caller's part of the sequence.
#[async_trait::async_trait]
pub trait Prepare<E: Effects>: Send {
    /// Layers to mount besides the rootfs before [`Prepare::plan`] (a build step's
    /// `--mount=from` stages), in order; the task releases them when it unwinds. None unless
    /// the caller says so.
    fn layers(&self) -> Vec<E::Layer> {
        Vec::new()
    }
    /// With the rootfs mounted, the network attached and [`Prepare::layers`] mounted (in
    /// their order): what to start (reading the rootfs, e.g. for the user; writing into it
    /// only what its own layer keeps).
    async fn plan(
        &mut self,
        rootfs: &Path,
        net: &Attached<E::Net>,
        layers: &[MountedLayer],
    ) -> Result<StartPlan, E::Error>;
    /// The shim created the container and waits to start its process: attach now.
    async fn created(&mut self, shim: &E::Shim) -> Result<(), E::Error>;
}

/// A started container.
pub struct Running<E: Effects> {
    pub rootfs: PathBuf,
    pub net: Attached<E::Net>,
    pub shim: E::Shim,
    pub started: ShimStarted,
}

/// What is done and must be undone on failure.
enum Done<S> {
    Rootfs,
    Network(Option<PathBuf>),
    /// None while the mount is in flight.
    Layer(Option<MountedLayer>),
    File(PathBuf),
    Shim(S),
}

/// One start's side effects and its undo stack. Each step is recorded *before* it runs, so a
/// start abandoned mid-step (its future dropped) still undoes it; a step that fails undid its
/// own work and is taken off again. [`Task::unwind`] undoes in reverse; [`Task::keep`] keeps.
pub struct Task<E: Effects> {
    fx: Arc<E>,
    id: String,
    done: Vec<Done<E::Shim>>,
}

impl<E: Effects> Task<E> {
    pub fn new(fx: Arc<E>, id: impl Into<String>) -> Task<E> {
        Task {
            fx,
            id: id.into(),
            done: Vec::new(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn effects(&self) -> &Arc<E> {
        &self.fx
    }

    /// Anything to undo?
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// Does the undo include a shim (one may be running)?
    pub fn holds_shim(&self) -> bool {
        self.done.iter().any(|d| matches!(d, Done::Shim(_)))
    }

    pub async fn mount_rootfs(&mut self) -> Result<PathBuf, E::Error> {
        self.done.push(Done::Rootfs);
        let r = self.fx.mount_rootfs(&self.id).await;
        self.settle(r)
    }

    pub async fn attach_network(&mut self) -> Result<Attached<E::Net>, E::Error> {
        self.done.push(Done::Network(None));
        let r = self.fx.attach_network(&self.id).await;
        let a = self.settle(r)?;
        if let Some(Done::Network(ns)) = self.done.last_mut() {
            ns.clone_from(&a.netns);
        }
        Ok(a)
    }

    /// Mount `layers` in order: where each is.
    pub async fn mount_layers(
        &mut self,
        layers: &[E::Layer],
    ) -> Result<Vec<MountedLayer>, E::Error> {
        let mut out = Vec::new();
        for l in layers {
            self.done.push(Done::Layer(None));
            let r = self.fx.mount_layer(l).await;
            let m = self.settle(r)?;
            if let Some(Done::Layer(slot)) = self.done.last_mut() {
                *slot = Some(m.clone());
            }
            out.push(m);
        }
        Ok(out)
    }

    /// Write the plan's files in order (those marked so are removed on unwind).
    pub async fn write_files(&mut self, plan: &StartPlan) -> Result<(), E::Error> {
        for f in &plan.files {
            let undo = f.remove_on_unwind;
            if undo {
                self.done.push(Done::File(f.path.clone()));
            }
            let r = self.fx.write_file(&f.path, &f.text, &f.what).await;
            if undo {
                self.settle(r)?;
            } else {
                r?;
            }
        }
        Ok(())
    }

    pub async fn spawn(
        &mut self,
        plan: &StartPlan,
    ) -> Result<(E::Shim, ShimStarted), berth_runtime::Error> {
        self.done.push(Done::Shim(self.fx.shim_at(&plan.shim_dir)));
        let r = self.fx.spawn_shim(&plan.shim_dir, &plan.config).await;
        if r.is_err() && !plan.reap_failed_spawn {
            self.done.pop();
        }
        r
    }

    pub async fn start_shim(&self, shim: &E::Shim) -> Result<(), berth_runtime::Error> {
        self.fx.start_shim(shim).await
    }

    /// Undo everything done so far, last first.
    pub async fn unwind(&mut self) {
        while let Some(d) = self.done.pop() {
            match d {
                Done::Shim(s) => self.fx.reap_shim(&s).await,
                Done::File(p) => self.fx.remove_file(&p).await,
                Done::Layer(Some(l)) => self.fx.unmount_layer(&l).await,
                Done::Layer(None) => {}
                Done::Network(ns) => self.fx.detach_network(&self.id, ns.as_deref()).await,
                Done::Rootfs => self.fx.unmount_rootfs(&self.id).await,
            }
        }
    }

    /// The start succeeded: what it made now belongs to the running container.
    pub fn keep(mut self) {
        self.done.clear();
    }

    /// A step's result: on failure the step undid itself, so it leaves the stack.
    fn settle<T>(&mut self, r: Result<T, E::Error>) -> Result<T, E::Error> {
        if r.is_err() {
            self.done.pop();
        }
        r
    }
}

/// The start sequence: mount the rootfs, attach the network, mount the caller's layers, plan,
/// write the files, spawn the shim, let the caller attach, start the process. On failure everything done is undone (in
/// reverse) before the error returns; on success the task holds the undo for the caller
/// (build steps unwind it after the exit; containers [`Task::keep`] it).
pub async fn start<E: Effects, P: Prepare<E>>(
    task: &mut Task<E>,
    prep: &mut P,
) -> Result<Running<E>, StartError<E::Error>> {
    let r = sequence(task, prep).await;
    if r.is_err() {
        task.unwind().await;
    }
    r
}

async fn sequence<E: Effects, P: Prepare<E>>(
    task: &mut Task<E>,
    prep: &mut P,
) -> Result<Running<E>, StartError<E::Error>> {
    use StartError::Effect;
    let fx = task.fx.clone();
    let rootfs = task.mount_rootfs().await.map_err(Effect)?;
    fx.phase("rootfs mounted");
    let net = task.attach_network().await.map_err(Effect)?;
    fx.phase("network ready");
    let layers = task.mount_layers(&prep.layers()).await.map_err(Effect)?;
    let plan = prep.plan(&rootfs, &net, &layers).await.map_err(Effect)?;
    task.write_files(&plan).await.map_err(Effect)?;
    fx.phase("etc files written");
    fx.phase("spec planned");
    let (shim, started) = task.spawn(&plan).await.map_err(StartError::Spawn)?;
    fx.phase("shim created the container");
    prep.created(&shim).await.map_err(Effect)?;
    fx.phase("attaches ready");
    task.start_shim(&shim).await.map_err(StartError::Start)?;
    fx.phase("container started");
    Ok(Running {
        rootfs,
        net,
        shim,
        started,
    })
}
