//! Errors of the client: Kafka error codes with their names, and one narrow enum per family
//! (client-wide [`Error`], and [`ProduceError`] for the outcome of one produced record).

use std::fmt;
use std::sync::Arc;

/// A Kafka protocol error code as it appears in a response (`0` is success).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KafkaCode(pub i16);

/// The codes with their Kafka names, in code order (`org.apache.kafka.common.protocol.Errors`).
/// The third column says whether Kafka marks the error retriable.
const CODES: &[(i16, &str, bool)] = &[
    (-1, "UNKNOWN_SERVER_ERROR", false),
    (0, "NONE", false),
    (1, "OFFSET_OUT_OF_RANGE", false),
    (2, "CORRUPT_MESSAGE", true),
    (3, "UNKNOWN_TOPIC_OR_PARTITION", true),
    (4, "INVALID_FETCH_SIZE", false),
    (5, "LEADER_NOT_AVAILABLE", true),
    (6, "NOT_LEADER_OR_FOLLOWER", true),
    (7, "REQUEST_TIMED_OUT", true),
    (8, "BROKER_NOT_AVAILABLE", false),
    (9, "REPLICA_NOT_AVAILABLE", true),
    (10, "MESSAGE_TOO_LARGE", false),
    (11, "STALE_CONTROLLER_EPOCH", false),
    (12, "OFFSET_METADATA_TOO_LARGE", false),
    (13, "NETWORK_EXCEPTION", true),
    (14, "COORDINATOR_LOAD_IN_PROGRESS", true),
    (15, "COORDINATOR_NOT_AVAILABLE", true),
    (16, "NOT_COORDINATOR", true),
    (17, "INVALID_TOPIC_EXCEPTION", false),
    (18, "RECORD_LIST_TOO_LARGE", false),
    (19, "NOT_ENOUGH_REPLICAS", true),
    (20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true),
    (21, "INVALID_REQUIRED_ACKS", false),
    (22, "ILLEGAL_GENERATION", false),
    (23, "INCONSISTENT_GROUP_PROTOCOL", false),
    (24, "INVALID_GROUP_ID", false),
    (25, "UNKNOWN_MEMBER_ID", false),
    (26, "INVALID_SESSION_TIMEOUT", false),
    (27, "REBALANCE_IN_PROGRESS", false),
    (28, "INVALID_COMMIT_OFFSET_SIZE", false),
    (29, "TOPIC_AUTHORIZATION_FAILED", false),
    (30, "GROUP_AUTHORIZATION_FAILED", false),
    (31, "CLUSTER_AUTHORIZATION_FAILED", false),
    (32, "INVALID_TIMESTAMP", false),
    (33, "UNSUPPORTED_SASL_MECHANISM", false),
    (34, "ILLEGAL_SASL_STATE", false),
    (35, "UNSUPPORTED_VERSION", false),
    (36, "TOPIC_ALREADY_EXISTS", false),
    (37, "INVALID_PARTITIONS", false),
    (38, "INVALID_REPLICATION_FACTOR", false),
    (39, "INVALID_REPLICA_ASSIGNMENT", false),
    (40, "INVALID_CONFIG", false),
    (41, "NOT_CONTROLLER", true),
    (42, "INVALID_REQUEST", false),
    (43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false),
    (44, "POLICY_VIOLATION", false),
    (45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false),
    (46, "DUPLICATE_SEQUENCE_NUMBER", false),
    (47, "INVALID_PRODUCER_EPOCH", false),
    (48, "INVALID_TXN_STATE", false),
    (49, "INVALID_PRODUCER_ID_MAPPING", false),
    (50, "INVALID_TRANSACTION_TIMEOUT", false),
    (51, "CONCURRENT_TRANSACTIONS", true),
    (52, "TRANSACTION_COORDINATOR_FENCED", false),
    (53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false),
    (54, "SECURITY_DISABLED", false),
    (55, "OPERATION_NOT_ATTEMPTED", false),
    (56, "KAFKA_STORAGE_ERROR", true),
    (57, "LOG_DIR_NOT_FOUND", false),
    (58, "SASL_AUTHENTICATION_FAILED", false),
    (59, "UNKNOWN_PRODUCER_ID", false),
    (60, "REASSIGNMENT_IN_PROGRESS", false),
    (61, "DELEGATION_TOKEN_AUTH_DISABLED", false),
    (62, "DELEGATION_TOKEN_NOT_FOUND", false),
    (63, "DELEGATION_TOKEN_OWNER_MISMATCH", false),
    (64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false),
    (65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", false),
    (66, "DELEGATION_TOKEN_EXPIRED", false),
    (67, "INVALID_PRINCIPAL_TYPE", false),
    (68, "NON_EMPTY_GROUP", false),
    (69, "GROUP_ID_NOT_FOUND", false),
    (70, "FETCH_SESSION_ID_NOT_FOUND", true),
    (71, "INVALID_FETCH_SESSION_EPOCH", true),
    (72, "LISTENER_NOT_FOUND", true),
    (73, "TOPIC_DELETION_DISABLED", false),
    (74, "FENCED_LEADER_EPOCH", true),
    (75, "UNKNOWN_LEADER_EPOCH", true),
    (76, "UNSUPPORTED_COMPRESSION_TYPE", false),
    (77, "STALE_BROKER_EPOCH", false),
    (78, "OFFSET_NOT_AVAILABLE", true),
    (79, "MEMBER_ID_REQUIRED", false),
    (80, "PREFERRED_LEADER_NOT_AVAILABLE", true),
    (81, "GROUP_MAX_SIZE_REACHED", false),
    (82, "FENCED_INSTANCE_ID", false),
    (83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true),
    (84, "ELECTION_NOT_NEEDED", true),
    (85, "NO_REASSIGNMENT_IN_PROGRESS", false),
    (86, "GROUP_SUBSCRIBED_TO_TOPIC", false),
    (87, "INVALID_RECORD", false),
    (88, "UNSTABLE_OFFSET_COMMIT", true),
    (89, "THROTTLING_QUOTA_EXCEEDED", true),
    (90, "PRODUCER_FENCED", false),
    (91, "RESOURCE_NOT_FOUND", false),
    (92, "DUPLICATE_RESOURCE", false),
    (93, "UNACCEPTABLE_CREDENTIAL", false),
    (94, "INCONSISTENT_VOTER_SET", false),
    (95, "INVALID_UPDATE_VERSION", false),
    (96, "FEATURE_UPDATE_FAILED", false),
    (97, "PRINCIPAL_DESERIALIZATION_FAILURE", false),
    (98, "SNAPSHOT_NOT_FOUND", false),
    (99, "POSITION_OUT_OF_RANGE", false),
    (100, "UNKNOWN_TOPIC_ID", true),
    (101, "DUPLICATE_BROKER_REGISTRATION", false),
    (102, "BROKER_ID_NOT_REGISTERED", false),
    (103, "INCONSISTENT_TOPIC_ID", true),
    (104, "INCONSISTENT_CLUSTER_ID", false),
    (105, "TRANSACTIONAL_ID_NOT_FOUND", false),
    (106, "FETCH_SESSION_TOPIC_ID_ERROR", true),
    (107, "INELIGIBLE_REPLICA", false),
    (108, "NEW_LEADER_ELECTED", false),
    (109, "OFFSET_MOVED_TO_TIERED_STORAGE", false),
    (110, "FENCED_MEMBER_EPOCH", false),
    (111, "UNRELEASED_INSTANCE_ID", false),
    (112, "UNSUPPORTED_ASSIGNOR", false),
    (113, "STALE_MEMBER_EPOCH", false),
    (114, "MISMATCHED_ENDPOINT_TYPE", false),
    (115, "UNSUPPORTED_ENDPOINT_TYPE", false),
    (116, "UNKNOWN_CONTROLLER_ID", false),
    (117, "UNKNOWN_SUBSCRIPTION_ID", false),
    (118, "TELEMETRY_TOO_LARGE", false),
    (119, "INVALID_REGISTRATION", false),
    (120, "TRANSACTION_ABORTABLE", false),
];

impl KafkaCode {
    pub const NONE: KafkaCode = KafkaCode(0);
    pub const OFFSET_OUT_OF_RANGE: KafkaCode = KafkaCode(1);
    pub const UNKNOWN_TOPIC_OR_PARTITION: KafkaCode = KafkaCode(3);
    pub const LEADER_NOT_AVAILABLE: KafkaCode = KafkaCode(5);
    pub const NOT_LEADER_OR_FOLLOWER: KafkaCode = KafkaCode(6);
    pub const REQUEST_TIMED_OUT: KafkaCode = KafkaCode(7);
    pub const MESSAGE_TOO_LARGE: KafkaCode = KafkaCode(10);
    pub const NETWORK_EXCEPTION: KafkaCode = KafkaCode(13);
    pub const UNSUPPORTED_VERSION: KafkaCode = KafkaCode(35);
    pub const TOPIC_ALREADY_EXISTS: KafkaCode = KafkaCode(36);
    pub const NOT_CONTROLLER: KafkaCode = KafkaCode(41);
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: KafkaCode = KafkaCode(45);
    pub const DUPLICATE_SEQUENCE_NUMBER: KafkaCode = KafkaCode(46);
    pub const FENCED_LEADER_EPOCH: KafkaCode = KafkaCode(74);
    pub const UNKNOWN_LEADER_EPOCH: KafkaCode = KafkaCode(75);
    pub const UNKNOWN_TOPIC_ID: KafkaCode = KafkaCode(100);

    /// Kafka's name for the code, or `None` for a code this table does not know.
    pub fn name(self) -> Option<&'static str> {
        CODES
            .binary_search_by_key(&self.0, |&(code, _, _)| code)
            .ok()
            .map(|index| CODES[index].1)
    }

    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Whether Kafka marks the error retriable: the same request may succeed later.
    pub fn is_retriable(self) -> bool {
        CODES
            .binary_search_by_key(&self.0, |&(code, _, _)| code)
            .is_ok_and(|index| CODES[index].2)
    }

    /// Whether the error means the client's view of partition leadership is stale, so
    /// metadata must be fetched again before the next attempt.
    pub fn invalidates_metadata(self) -> bool {
        matches!(self.0, 3 | 5 | 6 | 74 | 75 | 100 | 103)
    }
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "Kafka error code {}", self.0),
        }
    }
}

/// An error code from a broker with the message the broker gave, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    pub code: KafkaCode,
    pub message: Option<String>,
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(message) if !message.is_empty() => write!(f, "{}: {message}", self.code),
            _ => self.code.fmt(f),
        }
    }
}

impl std::error::Error for KafkaError {}

/// Turns a response's error code (and message) into a `Result`.
pub fn check(code: i16, message: Option<&str>) -> Result<(), Error> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::Kafka(KafkaError {
            code: KafkaCode(code),
            message: message.map(str::to_owned),
        }))
    }
}

/// Why a client operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The broker answered with an error code.
    #[error("{0}")]
    Kafka(KafkaError),
    /// The same, for one named resource (a topic, a partition) of a request about many.
    #[error("{resource}: {error}")]
    Resource { resource: String, error: KafkaError },
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        addr: String,
        error: Arc<std::io::Error>,
    },
    /// The connection broke; requests in flight on it have an unknown outcome.
    #[error("connection to {addr} lost: {reason}")]
    Disconnected { addr: String, reason: String },
    #[error("{what} timed out after {timeout_ms} ms")]
    Timeout { what: String, timeout_ms: u64 },
    /// The broker does not offer any version of an API that this client speaks.
    #[error("broker {addr} does not support {api} versions {min}-{max}")]
    UnsupportedVersion {
        addr: String,
        api: &'static str,
        min: i16,
        max: i16,
    },
    /// A response could not be decoded, or breaks the protocol.
    #[error("invalid response from {addr}: {reason}")]
    Protocol { addr: String, reason: String },
    /// A request could not be encoded (a value out of the wire format's range).
    #[error("cannot encode request: {0}")]
    Encode(freshet_protocol::EncodeError),
    /// Fetched records could not be read.
    #[error("corrupt records in {topic}-{partition} at offset {offset}: {reason}")]
    CorruptRecords {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("no broker reachable (bootstrap: {0})")]
    NoBrokers(String),
    /// The partition is not assigned to this consumer.
    #[error("{topic}-{partition} is not assigned")]
    NotAssigned { topic: String, partition: i32 },
    #[error("the client is closed")]
    Closed,
}

impl Error {
    /// The Kafka error code, when the broker sent one.
    pub fn kafka_code(&self) -> Option<KafkaCode> {
        match self {
            Error::Kafka(error) | Error::Resource { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// Whether trying again may succeed: retriable codes and lost connections.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Kafka(error) | Error::Resource { error, .. } => error.code.is_retriable(),
            Error::Connect { .. } | Error::Disconnected { .. } | Error::Timeout { .. } => true,
            Error::NoBrokers(_) => true,
            _ => false,
        }
    }
}

/// Why one produced record was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The partition leader rejected the batch holding the record.
    #[error("{topic}-{partition}: {error}")]
    Kafka {
        topic: String,
        partition: i32,
        error: KafkaError,
    },
    /// Not acknowledged within `delivery.timeout.ms` (retries included).
    #[error("record for {topic}-{partition} not acknowledged within {delivery_timeout_ms} ms (last error: {last_error})")]
    DeliveryTimeout {
        topic: String,
        partition: i32,
        delivery_timeout_ms: u64,
        last_error: String,
    },
    /// The record alone is larger than `max.request.size`.
    #[error("record of {bytes} bytes exceeds max.request.size {max_request_bytes}")]
    RecordTooLarge {
        bytes: usize,
        max_request_bytes: usize,
    },
    /// The partition given in the record does not exist.
    #[error("partition {partition} of {topic} does not exist ({partition_count} partitions)")]
    UnknownPartition {
        topic: String,
        partition: i32,
        partition_count: usize,
    },
    /// `send` was called while `buffer.memory` bytes were already waiting.
    #[error("producer buffer full ({buffer_memory_bytes} bytes waiting)")]
    BufferFull { buffer_memory_bytes: usize },
    /// A failure outside one partition: metadata, producer id, the connection.
    #[error("{0}")]
    Client(#[from] Error),
    #[error("the producer is closed")]
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_common_codes() {
        assert_eq!(KafkaCode(3).name(), Some("UNKNOWN_TOPIC_OR_PARTITION"));
        assert_eq!(KafkaCode(6).name(), Some("NOT_LEADER_OR_FOLLOWER"));
        assert_eq!(KafkaCode(36).name(), Some("TOPIC_ALREADY_EXISTS"));
        assert_eq!(KafkaCode(-1).name(), Some("UNKNOWN_SERVER_ERROR"));
        assert_eq!(KafkaCode(120).name(), Some("TRANSACTION_ABORTABLE"));
        assert_eq!(KafkaCode(999).name(), None);
        assert_eq!(KafkaCode(3).to_string(), "UNKNOWN_TOPIC_OR_PARTITION (3)");
        assert_eq!(KafkaCode(999).to_string(), "Kafka error code 999");
    }

    #[test]
    fn table_is_sorted_and_dense() {
        // Binary search needs order; density catches a skipped or duplicated line.
        for (index, &(code, name, _)) in CODES.iter().enumerate() {
            assert_eq!(i64::from(code), index as i64 - 1, "{name}");
        }
    }

    #[test]
    fn retriable_codes() {
        assert!(KafkaCode::NOT_LEADER_OR_FOLLOWER.is_retriable());
        assert!(KafkaCode::REQUEST_TIMED_OUT.is_retriable());
        assert!(!KafkaCode::MESSAGE_TOO_LARGE.is_retriable());
        assert!(!KafkaCode::TOPIC_ALREADY_EXISTS.is_retriable());
        assert!(KafkaCode::NOT_LEADER_OR_FOLLOWER.invalidates_metadata());
        assert!(!KafkaCode::REQUEST_TIMED_OUT.invalidates_metadata());
    }

    #[test]
    fn error_display_is_one_line() {
        let error = Error::Resource {
            resource: "topic t".into(),
            error: KafkaError {
                code: KafkaCode(36),
                message: Some("Topic 't' already exists.".into()),
            },
        };
        assert_eq!(
            error.to_string(),
            "topic t: TOPIC_ALREADY_EXISTS (36): Topic 't' already exists."
        );
    }
}
