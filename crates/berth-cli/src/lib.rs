//! berth-cli: The berth binary: docker-compatible commands, daemon and shim entry points.
