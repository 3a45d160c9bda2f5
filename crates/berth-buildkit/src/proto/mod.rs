//! BuildKit's protobuf messages, written by hand from the `.proto` field numbers (prost
//! derives; no protoc). Only the fields berth reads or answers are modelled.

pub mod control;
pub mod fsutil;
pub mod gateway;
pub mod secrets;
pub mod sshforward;

#[cfg(test)]
mod wire_tests;
