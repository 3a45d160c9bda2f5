//! berth-daemon: the engine. It composes the side-effect crates (image store, containers via
//! shims, networks, volumes, registry, builds) behind berth-api-types' service traits, and owns
//! the daemon process lifecycle without HTTP ([`Daemon`], [`secure_state`]); the binary serves
//! [`Engine::services`] with berth-api.

mod archive_ops_service;
pub mod atomic_file;
pub mod build_backend;
pub mod build_copy;
mod build_run;
mod build_service;
pub mod changes;
pub mod commit;
pub mod config;
pub mod containers;
pub mod engine;
pub mod error;
pub mod events;
pub mod image_plan;
pub mod image_store;
mod images;
pub mod init_layer;
mod networks;
mod off_worker;
pub mod orphans;
mod pid_file;
pub mod registry;
pub mod registry_store;
pub mod server;
pub mod store_adapter;
mod system;
pub mod volumes;
pub mod volumes_mounts;
mod volumes_service;

pub use config::{DaemonConfig, FileConfig};
pub use engine::Engine;
pub use error::{DaemonError, ErrorKind};
pub use server::{open_engine, open_store, secure_state, shutdown_signal, start_engine, Daemon};
