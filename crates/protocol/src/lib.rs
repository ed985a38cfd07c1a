//! Kafka wire protocol: request/response types generated from Kafka's JSON message specs
//! (`cargo xtask codegen`), their encodings, and the size-prefixed frame codec.
//!
//! Decoding never panics and never reserves more memory than the input could fill: see
//! [`codec`] for the rules every reader follows.

pub mod codec;
pub mod frame;
mod generated;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
pub mod wire;

pub use codec::{Decode, DecodeError, Encode, EncodeError, RawTaggedField, Uuid};
pub use generated::messages::{RequestHeader, ResponseHeader};
pub use generated::{internal_records, messages, ApiKey, Request, Response};
