//! berth-api: Docker Engine API routes over narrow service traits.
