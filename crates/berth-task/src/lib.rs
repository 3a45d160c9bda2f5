//! berth-task: apply a start plan — rootfs, network, /etc files, shim spawn, attach, start —
//! and unwind exactly what was done, in reverse, when a step fails or the start is abandoned.
//! `docker run` (the daemon's containers) and build `RUN` steps share this one start path.
//!
//! The side effects sit behind [`Effects`] (youki's `Syscall` pattern): the daemon implements
//! it over its store, network service and berth-runtime's shim; [`recording::Recording`]
//! records the calls so the unwind order is tested without root. What to start is data: a
//! [`StartPlan`] (the shim's config with its OCI-bound spec and mounts, and the files to write),
//! computed by the caller's pure planner inside [`Prepare::plan`] over the layers the task
//! mounted for it ([`Prepare::layers`]).

mod effects;
mod plan;
pub mod recording;
mod task;

pub use effects::{reap, Attached, Effects, MountedLayer};
pub use plan::{PlannedFile, StartPlan};
pub use task::{start, Prepare, Running, StartError, Task};
