//! berth-runtime: Container config to OCI runtime spec, and the per-container shim.
