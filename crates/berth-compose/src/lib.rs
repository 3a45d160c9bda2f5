//! berth-compose: Compose projects — load, interpolate, check, normalize and merge compose
//! files (the model `berth compose config` prints), order services by their dependencies, and
//! plan containers with the labels Compose v2 uses, so `berth compose` and `docker compose` see
//! each other's projects.

pub mod apply;
pub mod dotenv;
pub mod interpolate;
pub mod normalize;
pub mod order;
pub mod plan;
pub mod project;
pub mod schema;
pub mod units;

pub use project::{load, LoadError, LoadOptions, Project};
