//! `moby.buildkit.secrets.v1` (the Secrets service a client's session serves) and the
//! `Credentials` call of `moby.filesync.v1.Auth`, from BuildKit's `session/secrets/secrets.proto`
//! and `session/auth/auth.proto`.

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

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CredentialsRequest {
    #[prost(string, tag = "1")]
    pub host: String,
}

/// A registry login (`Secret` is the password or identity token; never log this message).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CredentialsResponse {
    #[prost(string, tag = "1")]
    pub username: String,
    #[prost(string, tag = "2")]
    pub secret: String,
}
