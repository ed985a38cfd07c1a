//! Errors of header-level batch handling, each mapped to the Kafka error code a Kafka 4 broker
//! returns for the same input.

use std::fmt;

/// Kafka error codes this crate maps to (numbers from Kafka's `Errors` enum).
pub mod kafka_error {
    /// The message contents does not match its CRC, or the framing is broken.
    pub const CORRUPT_MESSAGE: i16 = 2;
    /// The message is larger than the server accepts (here: once decompressed).
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    /// The version of the API (here: the message format) is not supported.
    pub const UNSUPPORTED_VERSION: i16 = 35;
    /// The requesting client does not support the compression type of the batch.
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    /// The record batch is well-framed but its contents break the format's rules.
    pub const INVALID_RECORD: i16 = 87;
}

/// Why a batch (or a run of concatenated batches) was rejected at the header level.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    /// Fewer bytes than the header or the declared batch length needs.
    Truncated {
        needed_bytes: usize,
        available_bytes: usize,
    },
    /// `batchLength` is smaller than a v2 header can be (or negative).
    BadLength { batch_length: i32 },
    /// `validate` got more bytes than `LOG_OVERHEAD + batchLength`.
    TrailingBytes {
        declared_bytes: usize,
        actual_bytes: usize,
    },
    /// Magic byte other than 2. Magic 0 and 1 are the legacy message sets that Kafka 4
    /// no longer accepts (KIP-724); anything else is garbage.
    UnsupportedMagic(i8),
    /// Compression bits 5, 6 or 7 in the attributes: no such codec.
    UnknownCompression(u8),
    /// The stored CRC32C does not match the bytes from `attributes` to the end.
    CrcMismatch { expected: u32, actual: u32 },
    /// `recordCount` disagrees with `lastOffsetDelta + 1`, or is not positive, in a batch
    /// that a producer sent (Kafka's LogValidator rule).
    InconsistentCount {
        record_count: i32,
        last_offset_delta: i32,
    },
}

impl BatchError {
    /// The Kafka error code a produce request carrying this batch is answered with.
    ///
    /// Mirrors Kafka 4: a CRC or framing failure, or a magic byte outside 0..=2, is
    /// `CORRUPT_MESSAGE` (`ByteBufferLogInputStream`: "Invalid magic found in record");
    /// a legacy message set (magic 0/1) inside a produce request v3+ is `INVALID_RECORD`
    /// (`ProduceRequest.validateRecords` throws `InvalidRecordException`: "are only allowed
    /// to contain record batches with magic version 2"). Produce v0-2 themselves, the only
    /// requests that could carry magic 0/1 legally, are refused as a whole with
    /// `UNSUPPORTED_VERSION` by the broker's API version check (KIP-896), not here.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            BatchError::Truncated { .. }
            | BatchError::BadLength { .. }
            | BatchError::TrailingBytes { .. }
            | BatchError::UnknownCompression(_)
            | BatchError::CrcMismatch { .. } => kafka_error::CORRUPT_MESSAGE,
            BatchError::UnsupportedMagic(0 | 1) => kafka_error::INVALID_RECORD,
            BatchError::UnsupportedMagic(_) => kafka_error::CORRUPT_MESSAGE,
            BatchError::InconsistentCount { .. } => kafka_error::INVALID_RECORD,
        }
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated {
                needed_bytes,
                available_bytes,
            } => {
                write!(
                    f,
                    "batch truncated: need {needed_bytes} bytes, have {available_bytes}"
                )
            }
            BatchError::BadLength { batch_length } => {
                write!(f, "batch length {batch_length} is below the v2 minimum")
            }
            BatchError::TrailingBytes {
                declared_bytes,
                actual_bytes,
            } => write!(
                f,
                "batch declares {declared_bytes} bytes but {actual_bytes} were given"
            ),
            BatchError::UnsupportedMagic(magic) => {
                write!(
                    f,
                    "unsupported message format magic {magic} (only 2 is accepted)"
                )
            }
            BatchError::UnknownCompression(id) => write!(f, "unknown compression type id {id}"),
            BatchError::CrcMismatch { expected, actual } => {
                write!(
                    f,
                    "batch CRC32C mismatch: stored {expected:#010x}, computed {actual:#010x}"
                )
            }
            BatchError::InconsistentCount {
                record_count,
                last_offset_delta,
            } => write!(
                f,
                "record count {record_count} does not match last offset delta {last_offset_delta}"
            ),
        }
    }
}

impl std::error::Error for BatchError {}
