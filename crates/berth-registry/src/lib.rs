//! berth-registry: the OCI distribution client — registry endpoints (mirrors for any registry,
//! insecure registries, certs.d), Basic/Bearer auth with docker config.json credentials,
//! parallel resumable pulls into a `BlobTarget`, pushes (mount, monolithic and chunked uploads)
//! from a `BlobSource`, with Docker-style progress events.
//!
//! How the daemon uses it (one `Client` for the daemon's lifetime; it caches connections,
//! the endpoint chosen per registry and tokens per scope):
//!
//! ```text
//! let client = Client::new(RegistryConfig { registry_mirrors, insecure_registries,
//!                                           certs_dir: Some("/etc/berth/certs.d"), .. },
//!                          connector);                              // berth-http port
//! let creds = Credentials::from_x_registry_auth(header)?;           // API request header
//! let (sink, rx) = ProgressSink::channel();                          // → Docker JSON stream
//! let p = client.pull(&reference, &store_target, &PullOptions { platform, credentials: creds,
//!                                                               progress: sink }).await?;
//! store.register_image(&p.manifest, &p.config, tags);                // p.digest = repo digest
//! let pushed = client.push(&reference, &manifest, &media_type, &store_source,
//!                          &PushOptions { mount_from, .. }).await?;  // pushed.digest
//! let tags = client.list_tags(&reference, creds.as_ref()).await?;   // --all-tags
//! client.login(registry, &creds).await?;                             // "Login Succeeded"
//! let (reg, term) = split_search_term("127.0.0.1:5000/app");        // docker search
//! let found = client.search(&reg, &term, 25, creds.as_ref()).await?; // GET /v1/search
//! ```

pub mod auth;
pub mod blob;
pub mod client;
pub mod config;
pub mod error;
pub mod progress;
pub mod pull;
pub mod push;
pub mod search;

pub use auth::{lookup_docker_config, parse_challenge, Challenge, Credentials};
pub use blob::{BlobSource, BlobTarget, BlobWriter, DirBlobStore};
pub use client::Client;
pub use config::RegistryConfig;
pub use error::{ErrorKind, RegistryError, Result};
pub use progress::{Progress, ProgressDetail, ProgressSink};
pub use pull::{PullOptions, PulledImage, MAX_MANIFEST_SIZE};
pub use push::{BlobPush, PushOptions, PushedImage};
pub use search::{split_search_term, SearchResult, SearchResults, DEFAULT_SEARCH_LIMIT};

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::Reference;

    /// The daemon runs pulls and pushes inside axum handlers and spawned tasks: their futures
    /// must be Send.
    #[allow(dead_code)]
    fn futures_are_send(
        c: &Client,
        r: &Reference,
        d: &DirBlobStore,
        po: &PullOptions,
        pu: &PushOptions,
    ) {
        fn send<T: Send>(_: &T) {}
        send(&c.pull(r, d, po));
        send(&c.push(r, b"", "", d, pu));
        send(&c.list_tags(r, None));
        send(&c.login("r", &Credentials::basic("u", "p")));
        send(&c.search("r", "t", 25, None));
    }
}
