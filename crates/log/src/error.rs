//! The log's error values. Every disk failure is a value (never a panic) that the broker turns
//! into a Kafka error code through [`LogError::kafka_error_code`], the one place that choice is
//! made.

use std::fmt;
use std::io;
use std::path::PathBuf;

use freshet_records::BatchError;

/// Kafka error codes the log maps to (numbers from Kafka's `Errors` enum).
pub mod kafka_error {
    /// The requested offset is outside the range the log holds.
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    /// The bytes do not form a valid batch (framing or CRC).
    pub const CORRUPT_MESSAGE: i16 = 2;
    /// The batch is larger than a segment may hold.
    pub const RECORD_LIST_TOO_LARGE: i16 = 18;
    /// A disk error: Kafka marks the log directory offline and answers with this code.
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    /// A bad configuration value.
    pub const INVALID_CONFIG: i16 = 40;
}

/// Why a log operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum LogError {
    /// A system call on a log file failed.
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// An earlier write, fsync, file creation or deletion failed, so the log is offline: it
    /// refuses appends, flushes, reads and offset lookups until it is reopened, whose recovery
    /// cuts off any torn tail. After a failed fsync Linux may have dropped the dirty pages, so
    /// only a scan can tell what is on disk; Kafka likewise takes the log directory offline.
    Failed { reason: String },
    /// Bytes read back from a segment do not form a valid batch.
    Corrupt {
        path: PathBuf,
        position_bytes: u64,
        reason: String,
    },
    /// An appended batch is not a valid RecordBatch v2.
    InvalidBatch(BatchError),
    /// An appended batch is larger than `segment_bytes_max`.
    BatchTooLarge {
        batch_bytes: u64,
        segment_bytes_max: u32,
    },
    /// The offset is below the log start offset or above the log end offset.
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// A configuration value is out of its allowed range.
    InvalidConfig { name: &'static str, reason: String },
    /// The log was closed.
    Closed,
}

impl LogError {
    /// The Kafka error code the broker answers with.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            LogError::Io { .. } | LogError::Failed { .. } | LogError::Corrupt { .. } => {
                kafka_error::KAFKA_STORAGE_ERROR
            }
            LogError::Closed => kafka_error::KAFKA_STORAGE_ERROR,
            LogError::InvalidBatch(e) => e.kafka_error_code(),
            LogError::BatchTooLarge { .. } => kafka_error::RECORD_LIST_TOO_LARGE,
            LogError::OffsetOutOfRange { .. } => kafka_error::OFFSET_OUT_OF_RANGE,
            LogError::InvalidConfig { .. } => kafka_error::INVALID_CONFIG,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io { op, path, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
            LogError::Failed { reason } => {
                write!(f, "log is offline after a disk error: {reason}")
            }
            LogError::Corrupt {
                path,
                position_bytes,
                reason,
            } => {
                write!(
                    f,
                    "corrupt batch in {} at byte {position_bytes}: {reason}",
                    path.display()
                )
            }
            LogError::InvalidBatch(e) => write!(f, "invalid batch: {e}"),
            LogError::BatchTooLarge {
                batch_bytes,
                segment_bytes_max,
            } => write!(
                f,
                "batch of {batch_bytes} bytes exceeds segment_bytes_max {segment_bytes_max}"
            ),
            LogError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            } => write!(
                f,
                "offset {offset} outside [{log_start_offset}, {log_end_offset}]"
            ),
            LogError::InvalidConfig { name, reason } => write!(f, "config {name}: {reason}"),
            LogError::Closed => write!(f, "log is closed"),
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Io { source, .. } => Some(source),
            LogError::InvalidBatch(e) => Some(e),
            _ => None,
        }
    }
}
