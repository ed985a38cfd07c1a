//! One partition's durable, segmented log.
//!
//! A [`Log`] owns one directory of segments named by base offset (`00000000000000000000.log`
//! with `.index` and `.timeindex` beside it, Kafka's layout), appends RecordBatch v2 batches
//! byte for byte (only the base offset and partition leader epoch are assigned), serves reads
//! as byte ranges of segment files, enforces retention, truncates for replication, and recovers
//! a torn tail after a crash. Formats and durability guarantees: `docs/design/log.md`.
//!
//! The log knows nothing about the network, partitions' replicas or high watermarks: the broker
//! passes the high watermark as an upper bound on reads.
//!
//! ## Blocking API
//! Every method blocks on disk I/O and the log is `Send + Sync`: a tokio broker wraps calls in
//! `spawn_blocking` (what `tokio::fs` does internally for each call anyway). Kept synchronous
//! because file I/O on Linux is blocking whatever the wrapper, because a group-commit waiter
//! then parks a blocking-pool thread instead of a runtime worker, and because the crate stays
//! free of any async runtime and can be tested and embedded without one.

mod batch;
mod checkpoint;
mod config;
mod error;
mod faults;
mod index;
mod log;
mod maintenance;
mod recovery;
mod segment;

pub use crate::config::{FlushPolicy, LogConfig};
pub use crate::error::{kafka_error, LogError};
pub use crate::faults::{DiskFaults, Fault, FileOp, EIO, ENOSPC};
pub use crate::log::{
    AppendInfo, Clock, FetchSlice, Log, OffsetAndTimestamp, OffsetQuery, OpenStats,
    RetentionOutcome, SystemClock,
};
pub use crate::maintenance::MaintenanceTask;
pub use crate::segment::SegmentFile;

/// Names of the files in a log directory, for tools and tests.
pub mod files {
    pub use crate::checkpoint::{CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
    pub use crate::index::{OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES};
    pub use crate::segment::{file_name, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
}
