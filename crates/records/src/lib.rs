//! Kafka RecordBatch v2 (magic 2): the fixed 61-byte header, CRC32C, base-offset and
//! leader-epoch patching, walking concatenated batches, record iteration, a batch builder and
//! the compression codecs.
//!
//! The broker's hot path only touches the header ([`validate`], [`set_base_offset`],
//! [`set_partition_leader_epoch`]); records are decoded only where a feature needs them.
//! The byte layout is documented in `docs/design/records.md`.

mod error;
mod header;

pub use error::{kafka_error, BatchError};
pub use header::{
    set_base_offset, set_partition_leader_epoch, split_batches, validate, BatchHeader, Batches,
    Compression, TimestampType, BATCH_HEADER_LEN, BATCH_LENGTH_OFFSET, LOG_OVERHEAD,
};
