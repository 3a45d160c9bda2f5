//! `moby.buildkit.secrets.v1` (the Secrets service a client's session serves), from
//! BuildKit's `session/secrets/secrets.proto`.

use std::collections::HashMap;

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GetSecretRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(map = "string, string", tag = "2")]
    pub annotations: HashMap<String, String>,
}

/// The secret's bytes (`Debug` would print them: never log this message).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GetSecretResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}
