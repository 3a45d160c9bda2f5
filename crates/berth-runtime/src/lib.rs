//! berth-runtime: container config → OCI runtime spec (pure), and the per-container shim that
//! runs it with youki's libcontainer, owns its stdio, logs and exit status.

pub mod error;
pub mod pathutil;
pub mod seccomp;
pub mod seccomp_default;
pub mod spec;
pub mod user;

pub use error::{Error, ErrorKind, Result};
pub use spec::{
    build_spec, ContainerSpec, HostInfo, MountSpec, NetworkMode, NsMode, Resources, SeccompMode,
    Ulimit,
};
pub use user::User;
