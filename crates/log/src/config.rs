//! Per-log configuration, named after Kafka's topic configs with units in the names.

use crate::error::LogError;

/// When appended bytes are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// fsync before an append is acknowledged (the default). Concurrent appenders share one
    /// fsync (group commit). An acknowledged append survives kill -9 and a power cut.
    EveryAppend,
    /// Kafka's interval style: fsync once `flush_messages` records are unflushed
    /// (`flush.messages`) or `flush_ms` has passed since the last flush (`flush.ms`, checked by
    /// [`crate::Log::run_maintenance`]). `None` disables that trigger.
    Interval {
        flush_messages: Option<u64>,
        flush_ms: Option<u64>,
    },
    /// Never fsync appended data on the append path; the OS writes dirty pages back when it
    /// likes. Sealed segments are still flushed by maintenance, as Kafka does at roll.
    Never,
}

/// A log's limits and policies. Defaults are Kafka's topic defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment before the active one would exceed this (`segment.bytes`).
    /// At most `i32::MAX` because index positions are 32-bit.
    pub segment_bytes_max: u32,
    /// Roll when the active segment's first append is older than this (`segment.ms`).
    pub segment_ms: u64,
    /// Maximum size of each index file; a full index rolls the segment
    /// (`segment.index.bytes`).
    pub segment_index_bytes_max: u32,
    /// Bytes of batches between two offset-index entries (`index.interval.bytes`).
    pub index_interval_bytes: u32,
    /// Delete whole sealed segments whose newest timestamp is older than this; -1 keeps
    /// them forever (`retention.ms`).
    pub retention_ms: i64,
    /// Delete the oldest sealed segments while the log is larger than this; -1 means no
    /// size limit (`retention.bytes`).
    pub retention_bytes: i64,
    /// When appended data is fsynced.
    pub flush: FlushPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes_max: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes_max: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            flush: FlushPolicy::EveryAppend,
        }
    }
}

/// Smallest segment: one batch header must fit (Kafka's minimum is 14 bytes; ours is the
/// v2 header so that any batch that fits is whole).
const SEGMENT_BYTES_MIN: u32 = 61;

impl LogConfig {
    /// Checks ranges; a log is only opened with a valid config.
    pub fn validate(&self) -> Result<(), LogError> {
        check(
            "segment_bytes_max",
            (SEGMENT_BYTES_MIN..=i32::MAX as u32).contains(&self.segment_bytes_max),
            "must be between 61 and 2147483647",
        )?;
        check("segment_ms", self.segment_ms > 0, "must be positive")?;
        check(
            "segment_index_bytes_max",
            self.segment_index_bytes_max >= 24,
            "must hold at least two time-index entries (24 bytes)",
        )?;
        check(
            "index_interval_bytes",
            self.index_interval_bytes > 0,
            "must be positive",
        )?;
        check(
            "retention_ms",
            self.retention_ms >= -1,
            "must be -1 or >= 0",
        )?;
        check(
            "retention_bytes",
            self.retention_bytes >= -1,
            "must be -1 or >= 0",
        )?;
        if let FlushPolicy::Interval {
            flush_messages,
            flush_ms,
        } = self.flush
        {
            check(
                "flush_messages",
                flush_messages != Some(0),
                "must be positive",
            )?;
            check("flush_ms", flush_ms != Some(0), "must be positive")?;
        }
        Ok(())
    }

    pub(crate) fn offset_index_entries_max(&self) -> usize {
        (self.segment_index_bytes_max / crate::index::OFFSET_ENTRY_BYTES as u32) as usize
    }

    pub(crate) fn time_index_entries_max(&self) -> usize {
        (self.segment_index_bytes_max / crate::index::TIME_ENTRY_BYTES as u32) as usize
    }
}

fn check(name: &'static str, ok: bool, reason: &str) -> Result<(), LogError> {
    if ok {
        Ok(())
    } else {
        Err(LogError::InvalidConfig {
            name,
            reason: reason.to_string(),
        })
    }
}
