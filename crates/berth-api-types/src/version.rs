//! The Engine API versions berth speaks and the engine version it reports.

/// The newest Engine API version berth serves: the version the pinned `bollard-stubs`
/// (=1.53.1) models describe. Older clients (docker 28's CLI speaks 1.50) negotiate down.
pub const API_VERSION: &str = "1.53";
/// The oldest version accepted: dockerd 20.10's minimum (newer dockerd refuses below 1.24; old
/// clients harm nobody, and moby's own 20.10 suite speaks 1.19 in places). What older versions
/// meant is adapted in one place, berth-api's `routes/compat.rs`.
pub const MIN_API_VERSION: &str = "1.12";
/// Reported as the engine's `Server` version string.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
