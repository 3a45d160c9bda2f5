//! berth-client: Docker Engine API client over a unix socket.
