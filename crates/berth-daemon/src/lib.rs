//! berth-daemon: the engine. It composes the side-effect crates (image store, containers via
//! shims, networks, volumes, registry, builds) behind berth-api-types' service traits, and owns
//! the daemon process lifecycle without HTTP ([`Daemon`], [`secure_state`]); the binary serves
//! [`Engine::services`] with berth-api.

pub mod atomic_file;
pub mod build;
pub mod config;
pub mod containers;
pub mod engine;
pub mod error;
pub mod events;
mod go_parse;
pub mod images;
mod networks;
mod off_worker;
pub mod orphans;
mod pid_file;
pub mod registry;
mod rootless_ports;
pub mod server;
mod system;
pub mod volumes;

pub use config::{DaemonConfig, FileConfig};
pub use engine::Engine;
pub use error::{DaemonError, ErrorKind};
pub use server::{
    apply_userns_remap, open_engine, open_store, secure_state, shutdown_signal, start_engine,
    Daemon,
};
