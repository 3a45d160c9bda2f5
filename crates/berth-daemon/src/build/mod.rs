//! Builds: the classic `POST /build` service (`service`, which BuildKit's `Solve` reaches
//! through the same `ImageService::build`), the builder's side effects over berth-store
//! (`backend`), COPY/ADD (`copy`), RUN steps on berth-task (`run`), their secret files
//! (`secret_file`) and forwarded SSH agent sockets (`ssh_socket`).

pub mod backend;
pub mod copy;
mod run;
mod secret_file;
pub(crate) mod service;
mod ssh_socket;
