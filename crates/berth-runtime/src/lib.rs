//! berth-runtime: container config → OCI runtime spec (pure), and the per-container shim that
//! runs it with youki's libcontainer, owns its stdio, logs and exit status.

pub mod cgroups;
pub mod client;
pub mod confine;
pub mod error;
mod exec;
mod executor;
pub mod logs;
pub mod oci_cli;
mod orphan;
pub mod pathutil;
pub mod protocol;
pub mod seccomp;
pub mod seccomp_default;
pub mod shim;
pub mod spec;
mod stdio;
mod sys;
pub mod user;
pub mod userns;

pub use client::{Shim, ShimStarted, StdioEvent, StdioStream};
pub use error::{Error, ErrorKind, Result};
pub use exec::exec_process;
pub use logs::{Follower, LogConfig, LogEntry, ReadOptions};
pub use orphan::{cleanup_orphan, write_exit};
pub use protocol::{ExecConfig, ExitInfo, StateInfo};
pub use shim::{shim_main, ShimArgs, ShimConfig};
pub use spec::{
    build_spec, ContainerSpec, HostInfo, MountSpec, NetworkMode, NsMode, Resources, SeccompMode,
    Ulimit,
};
pub use sys::await_exit;
pub use user::User;
