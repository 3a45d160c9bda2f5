//! The Engine API versions berth speaks and the engine version it reports.

/// The newest Engine API version berth serves: the version the pinned `bollard-stubs`
/// (=1.53.1) models describe. Older clients (docker 28's CLI speaks 1.50) negotiate down.
pub const API_VERSION: &str = "1.53";
/// The oldest version accepted, as dockerd's default minimum.
pub const MIN_API_VERSION: &str = "1.24";
/// Reported as the engine's `Server` version string.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
