//! Conversions from errors that are not lower crates' typed errors (a joined task, the
//! confined filesystem's classified errors) into [`DaemonError`].

use super::DaemonError;

impl From<tokio::task::JoinError> for DaemonError {
    fn from(e: tokio::task::JoinError) -> Self {
        DaemonError::Task(e.to_string())
    }
}

/// Confined filesystem errors keep their texts and kinds (a read-only mount stays a 403).
impl From<berth_rootfs::RootfsError> for DaemonError {
    fn from(e: berth_rootfs::RootfsError) -> Self {
        use berth_rootfs::RootfsError as R;
        match e {
            R::NotFound(m) => DaemonError::NotFound(m),
            R::Invalid(m) => DaemonError::Invalid(m),
            R::Op { what, source } => DaemonError::Io { what, source },
            other => DaemonError::Rootfs(Box::new(other)),
        }
    }
}

/// berth-network's errors, with moby's texts where scripts grep for them.
impl From<berth_network::Error> for DaemonError {
    fn from(e: berth_network::Error) -> Self {
        use berth_network::Error as E;
        match e {
            E::NetworkNotFound(n) => DaemonError::NoSuchNetwork(n),
            E::NetworkExists(n) => {
                DaemonError::Conflict(format!("network with name {n} already exists"))
            }
            e => DaemonError::Network(Box::new(e)),
        }
    }
}

impl From<berth_registry::RegistryError> for DaemonError {
    fn from(e: berth_registry::RegistryError) -> Self {
        DaemonError::Registry(Box::new(e))
    }
}

impl From<berth_build::BuildError> for DaemonError {
    fn from(e: berth_build::BuildError) -> Self {
        DaemonError::Build(Box::new(e))
    }
}
