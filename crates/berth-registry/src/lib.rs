//! berth-registry: OCI distribution client: token/basic auth, parallel resumable pull, push.
