//! Builds: the classic `POST /build` service (`service`), the builder's side effects over
//! berth-store (`backend`), COPY/ADD (`copy`) and RUN steps on berth-task (`run`). BuildKit's
//! `Solve` will feed berth-build's graph from here too.

pub mod backend;
pub mod copy;
mod run;
pub(crate) mod service;
