//! berth-registry: the OCI distribution client — registry endpoints (mirrors for any registry,
//! insecure registries, certs.d), Basic/Bearer auth with docker config.json credentials,
//! parallel resumable pulls into a `BlobTarget`, pushes (mount, monolithic and chunked uploads)
//! from a `BlobSource`, with Docker-style progress events.

pub mod auth;
pub mod blob;
pub mod client;
pub mod config;
pub mod error;
pub mod progress;
pub mod pull;
pub mod push;

pub use auth::{lookup_docker_config, parse_challenge, Challenge, Credentials};
pub use blob::{BlobSource, BlobTarget, BlobWriter, DirBlobStore};
pub use client::Client;
pub use config::RegistryConfig;
pub use error::{ErrorKind, RegistryError, Result};
pub use progress::{Progress, ProgressDetail, ProgressSink};
pub use pull::{PullOptions, PulledImage, MAX_MANIFEST_SIZE};
pub use push::{BlobPush, PushOptions, PushedImage};
