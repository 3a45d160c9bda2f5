//! `moby.buildkit.v1.frontend` (the LLBBridge a client-side build function drives),
//! `moby.buildkit.v1.apicaps` and `google.rpc.Status`: the messages berth answers, from
//! BuildKit's `frontend/gateway/pb/gateway.proto` and `util/apicaps/pb/caps.proto`.

use std::collections::HashMap;

use super::control::WorkerRecord;

/// `moby.buildkit.v1.apicaps.APICap`: one capability the server has.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ApiCap {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(bool, tag = "2")]
    pub enabled: bool,
    #[prost(bool, tag = "3")]
    pub deprecated: bool,
    #[prost(string, tag = "4")]
    pub disabled_reason: String,
    #[prost(string, tag = "5")]
    pub disabled_reason_msg: String,
    #[prost(string, tag = "6")]
    pub disabled_alternative: String,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PingRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PongResponse {
    #[prost(message, repeated, tag = "1")]
    pub frontend_api_caps: Vec<ApiCap>,
    #[prost(message, repeated, tag = "2")]
    pub llb_caps: Vec<ApiCap>,
    #[prost(message, repeated, tag = "3")]
    pub workers: Vec<WorkerRecord>,
}

/// Gateway `SolveRequest` (Definition 1, CacheImports 12, FrontendInputs 13, SourcePolicies
/// 15 not modelled beyond the definition's presence).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SolveRequest {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub definition: Option<Vec<u8>>,
    #[prost(string, tag = "2")]
    pub frontend: String,
    #[prost(map = "string, string", tag = "3")]
    pub frontend_opt: HashMap<String, String>,
    #[prost(bool, tag = "5")]
    pub allow_result_return: bool,
    #[prost(bool, tag = "6")]
    pub allow_result_array_ref: bool,
    #[prost(bool, tag = "10")]
    pub r#final: bool,
    #[prost(bytes = "vec", tag = "11")]
    pub exporter_attr: Vec<u8>,
    #[prost(bool, tag = "14")]
    pub evaluate: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SolveResponse {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(message, optional, tag = "3")]
    pub result: Option<BuildResult>,
}

/// `Result`: one ref (or a map of them), with metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BuildResult {
    #[prost(oneof = "build_result::Result", tags = "1, 2, 3, 4")]
    pub result: Option<build_result::Result>,
    #[prost(map = "string, bytes", tag = "10")]
    pub metadata: HashMap<String, Vec<u8>>,
}

pub mod build_result {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Result {
        #[prost(string, tag = "1")]
        RefDeprecated(String),
        #[prost(message, tag = "2")]
        RefsDeprecated(super::RefMapDeprecated),
        #[prost(message, tag = "3")]
        Ref(super::Ref),
        #[prost(message, tag = "4")]
        Refs(super::RefMap),
    }
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RefMapDeprecated {
    #[prost(map = "string, string", tag = "1")]
    pub refs: HashMap<String, String>,
}

/// A result handle (`def`, the LLB it came from, is not modelled).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Ref {
    #[prost(string, tag = "1")]
    pub id: String,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RefMap {
    #[prost(map = "string, message", tag = "1")]
    pub refs: HashMap<String, Ref>,
}

/// `google.rpc.Status` (details not modelled).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReturnRequest {
    #[prost(message, optional, tag = "1")]
    pub result: Option<BuildResult>,
    #[prost(message, optional, tag = "2")]
    pub error: Option<RpcStatus>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ReturnResponse {}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct EvaluateRequest {
    #[prost(string, tag = "1")]
    pub r#ref: String,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct EvaluateResponse {}
