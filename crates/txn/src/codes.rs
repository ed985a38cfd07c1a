//! The Kafka error codes this crate answers with (numbers from Kafka's `Errors` enum).
//!
//! Every code is chosen in one place: the `kafka_error_code` method of the error enum that
//! carries it ([`crate::ProducerError`], [`crate::InitProducerIdError`]).

/// Retriable: the broker has no producer id to hand out yet (its next block is on the way).
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// Retriable: this broker is not the transaction coordinator for the transactional id.
pub const NOT_COORDINATOR: i16 = 16;
/// Retriable: no transaction coordinator can be found (what FindCoordinator answers when the
/// transaction state topic cannot be created).
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
/// The request is malformed (InitProducerId with only one of producer id and epoch set, or an
/// empty transactional id).
pub const INVALID_REQUEST: i16 = 42;
/// The batch's sequence does not follow the producer's last one.
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
/// Not sent by Kafka 2.x+ brokers for a produce: a duplicate is answered with success and the
/// original offsets. Listed so the decision is visible where the codes are.
pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
/// The batch's producer epoch is older than the one the partition knows.
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
/// A transactional write outside a transaction, or a plain write inside one.
pub const INVALID_TXN_STATE: i16 = 48;
/// InitProducerId with a transaction timeout that is not in `1..=transaction.max.timeout.ms`.
pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
/// Not sent by Kafka 2.5+ brokers for a produce (KIP-360 made an unknown producer acceptable
/// at any sequence). Listed for the same reason as `DUPLICATE_SEQUENCE_NUMBER`.
pub const UNKNOWN_PRODUCER_ID: i16 = 59;
/// The batch breaks a record rule Kafka's LogValidator enforces for client writes.
pub const INVALID_RECORD: i16 = 87;
