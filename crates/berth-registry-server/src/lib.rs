//! berth-registry-server: a private registry in berth's binary (`berth registry serve`),
//! speaking the OCI Distribution Specification v1.1 and Docker's Registry HTTP API V2 over a
//! content-addressed filesystem store: pull and push (monolithic, chunked, single-request,
//! cross-repository mount), tags and catalog with pagination, deletes when enabled, and the
//! referrers API; Basic auth from an htpasswd file or Bearer tokens from the built-in issuer
//! (per-repository scopes from a policy file); a pull-through cache mode (Basic or Bearer
//! upstreams); a YAML config file.

pub mod auth;
pub mod config;
pub mod policy;
pub mod proxy;
pub mod route;
pub mod server;
pub mod store;
pub mod token;

pub use server::{router, Options};
pub use store::Store;
