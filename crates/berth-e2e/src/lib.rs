//! berth-e2e holds no library code: its `tests/` drive the `berth` binary and the engine from
//! outside (the real docker CLI, docker-py, Compose v1/v2, bollard, raw API calls), so the
//! engine crate itself links no HTTP server or client (`cargo tree -p berth-daemon`).
