//! The daemon's end-to-end tests as one binary (one link instead of one per file; linking the
//! test binaries dominated CI). Each module is one area; `common` is the shared harness.
//! `tests/build.rs` stays its own binary: it doubles as the RUN shim and has its own main.

#[path = "../common/mod.rs"]
mod common;

mod archive_volumes;
mod as_dockerd;
mod bollard_client;
mod build_fidelity;
mod buildkit_client;
mod cancel;
mod cli_multi;
mod commit;
mod compose_buildkit;
mod compose_clients;
mod confinement;
mod containerd;
mod containers;
mod contexts;
mod crash;
mod dashboard;
mod docker_cli;
mod docker_py;
mod error_texts;
mod exec_attach;
mod fidelity;
mod image_fidelity;
mod kube;
mod lifecycle;
mod list_filters;
mod logs_details;
mod moby_suite_finds;
mod network_files;
mod networks;
mod registry;
mod registry_server;
mod remote_ssh;
mod rootless;
mod run_flags;
mod runtime_fidelity;
mod state_modes;
mod system_check;
mod tls;
mod update;
mod userns_remap;
mod validation;
mod validation_conflicts;
mod volumes_cli;
