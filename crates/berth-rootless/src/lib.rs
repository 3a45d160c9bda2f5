//! Rootless mode: `berth daemon` started by an ordinary user re-executes itself into a new user
//! namespace (root = the user, 1..=65536 = the user's subordinate ids), mount namespace and
//! network namespace, as rootlesskit does; inside, the daemon is root and runs unchanged.
//!
//! The plan (`subid`, `plan`, `paths`) is pure data; `spawn` applies it (fork, `newuidmap`,
//! supervision), `inner` prepares the namespaces for the daemon and `cgroup` gives containers a
//! private cgroup tree where the host has cgroup v1.

pub mod cgroup;
pub mod inner;
pub mod paths;
pub mod plan;
pub mod remap;
pub mod remap_host;
pub mod slirp;
pub mod spawn;
pub mod subid;

pub use plan::{IdMap, Mapping, Plan, User};
pub use remap::{IdMapping, Unmapped};
pub use spawn::{current_user, resume_child, run_parent, stage, Stage};

use berth_errors::ErrorKind;

/// What can stop rootless mode from starting; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("HOME is not set (or not absolute): rootless berth keeps its state under it")]
    NoHome,
    #[error(
        "XDG_RUNTIME_DIR is not set (or not absolute): rootless berth puts its socket in \
         $XDG_RUNTIME_DIR/berth; log in through a session that sets it (systemd-logind, \
         `loginctl enable-linger`) or pass --exec-root DIR and -H unix://DIR/berth.sock"
    )]
    NoRuntimeDir,
    #[error("{tool} not found: rootless berth maps your subordinate ids with it; install the uidmap package (apt-get install uidmap)")]
    NoTool { tool: &'static str },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot create a user namespace: {0} (unprivileged user namespaces may be disabled: \
         sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces)"
    )]
    Unshare(#[source] std::io::Error),
    #[error("{what} failed: {detail}")]
    Map { what: String, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl RootlessError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RootlessError::NoHome | RootlessError::NoRuntimeDir => ErrorKind::Invalid,
            RootlessError::NoTool { .. } | RootlessError::Unshare(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }

    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        RootlessError::Io {
            what: what.into(),
            source,
        }
    }
}
