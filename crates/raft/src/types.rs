//! The openraft type configuration of the metadata log.

use std::fmt;

use freshet_metadata::{MetadataError, MetadataRecord};

/// One Raft entry's payload: records applied all or nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataBatch(pub Vec<MetadataRecord>);

impl fmt::Display for MetadataBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetadataBatch({} records)", self.0.len())
    }
}

/// What applying one entry did. A refused batch is still a committed entry (every replica
/// refuses it the same way, deterministically); it just changes nothing.
pub type ApplyOutcome = Result<(), RejectedRecord>;

/// The record of a batch that failed validation against the image, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record {index} of the batch was refused: {error}")]
pub struct RejectedRecord {
    pub index: usize,
    pub error: MetadataError,
}

openraft::declare_raft_types!(
    /// Types of the metadata Raft group. Node ids are u64 in openraft; Kafka broker ids are
    /// i32 and map one to one onto the non-negative range.
    pub MetaRaft:
        D = MetadataBatch,
        R = ApplyOutcome,
        NodeId = u64,
        Node = openraft::BasicNode,
        AsyncRuntime = openraft_rt_tokio::TokioRuntime,
);

pub type LogId = openraft::type_config::alias::LogIdOf<MetaRaft>;
pub type Vote = openraft::type_config::alias::VoteOf<MetaRaft>;
pub type Entry = openraft::type_config::alias::EntryOf<MetaRaft>;
pub type Membership = openraft::Membership<u64, openraft::BasicNode>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<MetaRaft>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<MetaRaft>;
pub type Snapshot = openraft::type_config::alias::SnapshotOf<MetaRaft, Vec<u8>>;
