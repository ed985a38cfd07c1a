//! Freshet's Rust Kafka client: a [`Producer`] (murmur2 partitioner compatible with the
//! Java client, sticky partitioning, per-partition batches, a background sender with
//! retries, idempotence on by default), a [`Consumer`] (assign, seek, poll), a
//! [`GroupConsumer`] (consumer groups: subscribe, rebalance, commit; see [`group`]) and an
//! [`Admin`] client for topics and configs.
//!
//! Speaks the Kafka protocol to any Kafka-compatible broker; versions are negotiated per
//! API with ApiVersions (see [`versions`]).

pub mod admin;
pub mod cluster;
pub mod connection;
pub mod consumer;
pub mod coordinator;
pub mod error;
pub mod group;
pub mod producer;
pub mod versions;

/// Keys, values and header values are `Bytes` (re-exported so users need not depend on it).
pub use bytes::Bytes;

pub use admin::groups::{CommittedOffset, GroupDescription, GroupListing, MemberDescription};
pub use admin::{Admin, AlterConfigOp, ConfigEntry, NewTopic, TopicDescription};
pub use cluster::{BrokerInfo, ClientConfig, PartitionInfo, TopicInfo};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, OffsetSpec};
pub use error::{Error, KafkaCode, KafkaError, ProduceError};
pub use freshet_records::Compression;
pub use group::{
    AssignmentStrategy, CommitHandle, GroupConsumer, GroupConsumerConfig, OffsetAndMetadata,
    RebalanceEvent, RebalanceListener,
};
pub use producer::{
    Acks, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Parses a compression name as Kafka's `compression.type` spells it.
pub fn parse_compression(name: &str) -> Option<Compression> {
    match name.to_ascii_lowercase().as_str() {
        "none" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        "lz4" => Some(Compression::Lz4),
        "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// Milliseconds since the Unix epoch, the clock of record timestamps.
pub(crate) fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}
