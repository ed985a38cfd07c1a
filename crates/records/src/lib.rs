//! Kafka RecordBatch v2 (magic 2): the fixed 61-byte header, CRC32C, base-offset and
//! leader-epoch patching, walking concatenated batches, record iteration, a batch builder,
//! control (transaction marker) records and the compression codecs.
//!
//! The broker's hot path only touches the header ([`validate`], [`set_base_offset`],
//! [`set_partition_leader_epoch`]); records are decoded only where a feature needs them
//! ([`records`]). The byte layout is documented in `docs/design/records.md`.
//!
//! Nothing here panics on input bytes, and no length or count read from input makes the
//! crate allocate more than the input (or, after decompression, the caller's
//! `max_decompressed_bytes`) could hold.

mod builder;
mod codec;
pub mod control;
mod error;
mod header;
mod record;
mod varint;

pub use builder::{BatchBuilder, BatchOptions, BuildError, NewRecord};
pub use codec::{compress, decompress, CodecError};
pub use error::{kafka_error, BatchError};
pub use header::{
    set_base_offset, set_max_timestamp, set_partition_leader_epoch, split_batches,
    stamp_log_append_time, validate, BatchHeader, Batches, Compression, TimestampType,
    BATCH_HEADER_LEN, BATCH_LENGTH_OFFSET, LOG_OVERHEAD, MAGIC_V2,
};
pub use record::{
    records, scan_records, Record, RecordError, RecordHeader, Records, ScannedRecords,
};
