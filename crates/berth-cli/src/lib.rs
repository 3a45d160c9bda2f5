//! berth-cli: the `berth` binary's library — docker-compatible commands over the Engine API,
//! plus the `daemon` and hidden `shim` entry points.

pub mod app;
pub mod autostart;
pub mod cli;
pub mod cli_compose;
pub mod cli_container;
pub mod cli_kube;
pub mod cmd;
pub mod context;
pub mod defaults;
pub mod entry;
pub mod exit;
pub mod format;
pub mod opts;
pub mod progress;
pub mod runopts;
#[cfg(feature = "daemon")]
pub mod serve;
pub mod template;
pub mod tty;
pub mod units;
