//! Why a client's batch was refused by the producer state of its partition.

use std::fmt;

use crate::codes;

/// A produce-path refusal. The whole partition's append is answered with
/// [`ProducerError::kafka_error_code`] and nothing of it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProducerError {
    /// A client sent a control batch (Kafka's LogValidator: "Clients are not allowed to
    /// write control records").
    ControlBatchFromClient,
    /// A batch with a producer id but a negative base sequence (Kafka's LogValidator).
    InvalidSequence {
        producer_id: i64,
        base_sequence: i32,
    },
    /// A batch whose `lastOffsetDelta` is negative: it cannot say which sequences it holds.
    InvalidOffsetDelta {
        producer_id: i64,
        last_offset_delta: i32,
    },
    /// The batch's epoch is older than the partition's for this producer: a zombie or a
    /// producer whose epoch was bumped elsewhere (since Kafka 2.7 this replaces
    /// PRODUCER_FENCED in produce responses).
    InvalidProducerEpoch {
        producer_id: i64,
        producer_epoch: i16,
        current_epoch: i16,
    },
    /// A newer epoch than the partition knows must start at sequence 0.
    NewEpochNotAtSequenceZero {
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    },
    /// Same epoch, but the batch does not start right after the last sequence (a gap, or a
    /// retry of a batch older than the last five).
    OutOfOrderSequence {
        producer_id: i64,
        base_sequence: i32,
        last_sequence: i32,
    },
    /// A transactional batch outside a transaction this partition knows of. Kafka 4
    /// (`transaction.partition.verification.enable`, default true) refuses such a batch
    /// unless the transaction coordinator verified it; Freshet has no coordinator yet.
    TransactionNotVerified { producer_id: i64 },
    /// A non-transactional batch while the producer's transaction is open here.
    NonTransactionalInTransaction { producer_id: i64 },
}

impl ProducerError {
    /// The partition error code of the produce response.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            ProducerError::ControlBatchFromClient
            | ProducerError::InvalidSequence { .. }
            | ProducerError::InvalidOffsetDelta { .. } => codes::INVALID_RECORD,
            ProducerError::InvalidProducerEpoch { .. } => codes::INVALID_PRODUCER_EPOCH,
            ProducerError::NewEpochNotAtSequenceZero { .. }
            | ProducerError::OutOfOrderSequence { .. } => codes::OUT_OF_ORDER_SEQUENCE_NUMBER,
            ProducerError::TransactionNotVerified { .. }
            | ProducerError::NonTransactionalInTransaction { .. } => codes::INVALID_TXN_STATE,
        }
    }
}

impl fmt::Display for ProducerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProducerError::ControlBatchFromClient => {
                write!(f, "clients are not allowed to write control records")
            }
            ProducerError::InvalidSequence {
                producer_id,
                base_sequence,
            } => write!(
                f,
                "invalid sequence number {base_sequence} in batch of producer {producer_id}"
            ),
            ProducerError::InvalidOffsetDelta {
                producer_id,
                last_offset_delta,
            } => write!(
                f,
                "invalid last offset delta {last_offset_delta} in batch of producer {producer_id}"
            ),
            ProducerError::InvalidProducerEpoch {
                producer_id,
                producer_epoch,
                current_epoch,
            } => write!(
                f,
                "epoch {producer_epoch} of producer {producer_id} is older than {current_epoch}"
            ),
            ProducerError::NewEpochNotAtSequenceZero {
                producer_id,
                producer_epoch,
                base_sequence,
            } => write!(
                f,
                "new epoch {producer_epoch} of producer {producer_id} starts at sequence \
                 {base_sequence}, not 0"
            ),
            ProducerError::OutOfOrderSequence {
                producer_id,
                base_sequence,
                last_sequence,
            } => write!(
                f,
                "out of order sequence {base_sequence} of producer {producer_id}, \
                 last was {last_sequence}"
            ),
            ProducerError::TransactionNotVerified { producer_id } => write!(
                f,
                "transactional batch of producer {producer_id} is not part of an ongoing transaction"
            ),
            ProducerError::NonTransactionalInTransaction { producer_id } => write!(
                f,
                "non-transactional batch of producer {producer_id} during its transaction"
            ),
        }
    }
}

impl std::error::Error for ProducerError {}
