//! The consumer group coordinator, without I/O.
//!
//! [`GroupCoordinator`] owns every group of the `__consumer_offsets` partitions this broker
//! leads. The broker hands it decoded requests with an opaque [`RequestHandle`] and the
//! current time; it answers with [`Output`]s: responses to send (possibly much later, since
//! JoinGroup and SyncGroup are long polls), records to append to `__consumer_offsets`, and the
//! time at which [`GroupCoordinator::tick`] must be called next. State is rebuilt on load by
//! [`GroupCoordinator::replay`] of those records.
//!
//! Implemented: the classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, KIP-394
//! member ids, KIP-345 static membership, KIP-814 skip_assignment), committed offsets
//! (OffsetCommit, OffsetFetch, OffsetDelete, expiry), ListGroups, DescribeGroups,
//! DeleteGroups, and the KIP-848 consumer protocol (ConsumerGroupHeartbeat,
//! ConsumerGroupDescribe, server-side `uniform` and `range` assignors, incremental
//! reconciliation). A group is a [`classic::ClassicGroup`] plus its offsets, and for a
//! KIP-848 group a [`consumer::ConsumerGroup`] beside them; KIP-848 assignment needs the
//! cluster's topics, given with [`GroupCoordinator::update_topics`].
//!
//! The rules and record formats are documented in `docs/design/group.md`.

pub mod assignor;
pub mod classic;
pub mod codes;
mod config;
pub mod consumer;
mod consumer_handlers;
mod coordinator;
mod offsets;
pub mod records;

pub use classic::GroupState;
pub use config::GroupConfig;
pub use consumer::{
    ConsumerGroup, ConsumerGroupState, ConsumerMember, MemberState, TopicMeta, TopicsSnapshot,
};
pub use coordinator::{partition_for, GroupCoordinator, ReplayError};
pub use records::Record;

use freshet_protocol::Response;

/// Identifies one request the broker is waiting to answer; chosen by the broker, echoed
/// back unchanged in [`Output::Respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestHandle(pub u64);

/// What the broker knows about a request besides its body.
///
/// Like every string of a decoded request, `client_id` and `client_host` must be at most
/// `i16::MAX` bytes: they are written into `__consumer_offsets` records, whose strings are
/// `i16`-length-prefixed.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestContext {
    pub handle: RequestHandle,
    /// The request's API version: it decides which fields exist and some rules (KIP-394
    /// applies from JoinGroup v4, batched members from LeaveGroup v3...).
    pub api_version: i16,
    pub client_id: String,
    pub client_host: String,
}

/// One thing the broker must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send `response` (encoded at the request's version) for the request `handle`.
    /// A response that follows a `Persist` in the same batch must be sent only once those
    /// records are durable, as Kafka answers after its append completes.
    Respond {
        handle: RequestHandle,
        response: Response,
    },
    /// Append these records, in order, to the group's `__consumer_offsets` partition.
    Persist {
        group_id: String,
        records: Vec<Record>,
    },
    /// Call [`GroupCoordinator::tick`] at or after `at_ms`. Each one replaces the previous:
    /// the broker keeps one timer. A tick earlier than needed is harmless.
    ScheduleTimer { at_ms: i64 },
}
