//! berth-build: Dockerfile → image. [`build`] plans the stages `--target` needs, runs
//! independent stages concurrently, evolves the image config per instruction ([`config`]),
//! keys every step by its parent, canonical instruction, visible build args and the content
//! hash of what it reads ([`context`]), and leaves every side effect to a [`BuildBackend`].

pub mod backend;
pub mod builder;
pub mod config;
pub mod context;
pub mod error;
pub mod fetch;
pub mod named;
mod secrets;

pub use backend::{
    BuildBackend, CopyFrom, CopyRequest, Event, Layer, MountSource, Network, RunMount, RunRequest,
    RunResult, SecretValue, Sink, State,
};
pub use builder::{auto_platform_args, build, BuildOutput, BuildRequest};
pub use context::{collect, content_hash, EntryKind, Source, SourceEntry, SourceOptions};
pub use error::{BuildError, ErrorKind, Result};
pub use fetch::{Download, Fetcher};
pub use named::{named_context_key, NamedContext};
