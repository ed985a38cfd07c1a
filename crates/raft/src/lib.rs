//! Freshet's metadata quorum: the metadata log of `freshet-metadata` replicated by openraft.
//!
//! One node runs a single voter; a cluster runs three or five voters and the other brokers
//! follow as learners. Everything the quorum needs is in one directory (layout in
//! docs/design/metadata.md): the Raft log, the vote, the last purged and committed ids, and
//! a snapshot of the image.
//!
//! The broker holds a [`MetadataQuorum`]: it proposes records built by
//! `freshet_metadata::controller` and reads the applied [`freshet_metadata::MetadataImage`].
//!
//! Architecture invariant: this crate decides nothing about topics or configs; it only
//! orders, stores and applies records. Transport is pluggable ([`network`]).

pub mod disk;
pub mod log_store;
pub mod network;
pub mod quorum;
pub mod state_machine;
pub mod tcp;
pub mod types;

pub use network::{InProcessNetwork, InProcessRouter, NoPeers};
pub use quorum::{
    prewarm, MetaRaftHandle, MetadataQuorum, ProposeError, QuorumError, QuorumOptions,
};
pub use state_machine::AppliedImage;
pub use tcp::TcpNetwork;
pub use types::{MetaRaft, MetadataBatch, RejectedRecord};
