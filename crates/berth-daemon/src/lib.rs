//! berth-daemon: the engine. It composes the side-effect crates (today the image store; next
//! containers via shims, networks, volumes, registry) behind berth-api's service traits, and
//! owns the daemon process lifecycle ([`run`], [`serve`]).

mod archive_ops_service;
pub mod atomic_file;
pub mod build_backend;
pub mod build_copy;
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
pub mod listen;
mod networks;
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
pub use server::{bind_socket, open_engine, open_store, run, run_until, serve};
