//! Errors of this crate and the one place where each is mapped to a Kafka error code.

use crate::record::TopicId;

/// Kafka protocol error codes used by metadata operations (values from Kafka's `Errors`).
pub mod kafka_code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const NOT_CONTROLLER: i16 = 41;
    pub const INVALID_REQUEST: i16 = 42;
    pub const POLICY_VIOLATION: i16 = 44;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const STALE_BROKER_EPOCH: i16 = 77;
    pub const INVALID_UPDATE_VERSION: i16 = 95;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    pub const BROKER_ID_NOT_REGISTERED: i16 = 102;
    pub const INELIGIBLE_REPLICA: i16 = 107;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
}

/// A record that cannot be applied to the image: applying it would break an invariant.
/// The image is unchanged when `apply` returns one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    #[error("cluster id is already {existing}, cannot set it to {proposed}")]
    ClusterIdAlreadySet { existing: String, proposed: String },
    #[error("topic '{0}' already exists")]
    DuplicateTopicName(String),
    #[error("topic id {0} already exists")]
    DuplicateTopicId(TopicId),
    #[error("topic name '{0}' is invalid")]
    InvalidTopicName(String),
    #[error("no topic with id {0}")]
    UnknownTopicId(TopicId),
    #[error("no topic named '{0}'")]
    UnknownTopicName(String),
    #[error("partition {partition} of topic {topic_id} does not exist")]
    UnknownPartition { topic_id: TopicId, partition: i32 },
    #[error("partition {partition} of topic {topic_id} is not the next one ({expected})")]
    PartitionOutOfOrder {
        topic_id: TopicId,
        partition: i32,
        expected: i32,
    },
    #[error("invalid partition state: {0}")]
    InvalidPartitionState(&'static str),
    #[error("broker {node_id}: epoch {proposed} is not after {current}")]
    StaleBrokerEpoch {
        node_id: i32,
        current: i64,
        proposed: i64,
    },
    #[error("broker {0} is not registered")]
    UnknownBroker(i32),
    #[error(
        "producer id block starting at {proposed} overlaps ids handed out (next is {expected})"
    )]
    ProducerIdsOutOfOrder { expected: i64, proposed: i64 },
    #[error("producer id block is invalid: {0}")]
    InvalidProducerIds(&'static str),
}

impl MetadataError {
    /// The Kafka error code a request that produced this record should be answered with
    /// (typically a race between two proposals checked against the same image).
    pub fn error_code(&self) -> i16 {
        use kafka_code::*;
        match self {
            MetadataError::DuplicateTopicName(_) | MetadataError::DuplicateTopicId(_) => {
                TOPIC_ALREADY_EXISTS
            }
            MetadataError::InvalidTopicName(_) => INVALID_TOPIC_EXCEPTION,
            MetadataError::UnknownTopicId(_)
            | MetadataError::UnknownTopicName(_)
            | MetadataError::UnknownPartition { .. } => UNKNOWN_TOPIC_OR_PARTITION,
            MetadataError::PartitionOutOfOrder { .. } => INVALID_PARTITIONS,
            MetadataError::InvalidPartitionState(_) => INVALID_REPLICA_ASSIGNMENT,
            MetadataError::StaleBrokerEpoch { .. } => STALE_BROKER_EPOCH,
            MetadataError::UnknownBroker(_) => BROKER_ID_NOT_REGISTERED,
            MetadataError::ClusterIdAlreadySet { .. }
            | MetadataError::ProducerIdsOutOfOrder { .. }
            | MetadataError::InvalidProducerIds(_) => UNKNOWN_SERVER_ERROR,
        }
    }
}

/// Why a topic operation (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs) is refused.
/// The message is what the broker puts in the response's `error_message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("This server does not host this topic-partition.")]
    UnknownTopicOrPartition,
    #[error("This server does not host this topic ID.")]
    UnknownTopicId,
    #[error("{0}")]
    PolicyViolation(String),
    #[error("{0}")]
    InvalidRequest(String),
}

impl TopicError {
    /// The Kafka error code for this refusal.
    pub fn error_code(&self) -> i16 {
        use kafka_code::*;
        match self {
            TopicError::TopicAlreadyExists(_) => TOPIC_ALREADY_EXISTS,
            TopicError::InvalidTopic(_) => INVALID_TOPIC_EXCEPTION,
            TopicError::InvalidPartitions(_) => INVALID_PARTITIONS,
            TopicError::InvalidReplicationFactor(_) => INVALID_REPLICATION_FACTOR,
            TopicError::InvalidReplicaAssignment(_) => INVALID_REPLICA_ASSIGNMENT,
            TopicError::InvalidConfig(_) => INVALID_CONFIG,
            TopicError::UnknownTopicOrPartition => UNKNOWN_TOPIC_OR_PARTITION,
            TopicError::UnknownTopicId => UNKNOWN_TOPIC_ID,
            TopicError::PolicyViolation(_) => POLICY_VIOLATION,
            TopicError::InvalidRequest(_) => INVALID_REQUEST,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        assert_eq!(TopicError::TopicAlreadyExists("t".into()).error_code(), 36);
        assert_eq!(TopicError::InvalidTopic(String::new()).error_code(), 17);
        assert_eq!(
            TopicError::InvalidPartitions(String::new()).error_code(),
            37
        );
        assert_eq!(
            TopicError::InvalidReplicationFactor(String::new()).error_code(),
            38
        );
        assert_eq!(TopicError::InvalidConfig(String::new()).error_code(), 40);
        assert_eq!(TopicError::UnknownTopicOrPartition.error_code(), 3);
        assert_eq!(TopicError::PolicyViolation(String::new()).error_code(), 44);
        assert_eq!(TopicError::InvalidRequest(String::new()).error_code(), 42);
        assert_eq!(
            MetadataError::DuplicateTopicName("t".into()).error_code(),
            36
        );
        assert_eq!(
            TopicError::TopicAlreadyExists("t".into()).to_string(),
            "Topic 't' already exists."
        );
    }
}
