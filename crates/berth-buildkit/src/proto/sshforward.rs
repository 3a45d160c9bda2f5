//! `moby.sshforward.v1.SSH` (the agent forwarding a client's session serves), from BuildKit's
//! `session/sshforward/ssh.proto`.

/// A chunk of the agent connection's bytes, either way.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct BytesMessage {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CheckAgentRequest {
    #[prost(string, tag = "1")]
    pub id: String,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CheckAgentResponse {}
