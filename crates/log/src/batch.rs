//! The few header facts the log needs, taken from `freshet-records` (the log never parses batch
//! bytes itself).

use freshet_records::{BatchError, BatchHeader};

/// Bytes of a RecordBatch v2 header.
pub const HEADER_BYTES: usize = freshet_records::BATCH_HEADER_LEN;

/// What the log keeps from a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub record_count: i64,
    /// Whole batch on disk: `LOG_OVERHEAD + batchLength`.
    pub total_bytes: u64,
}

fn info(h: &BatchHeader) -> BatchInfo {
    BatchInfo {
        base_offset: h.base_offset,
        last_offset: h.last_offset(),
        max_timestamp: h.max_timestamp,
        record_count: i64::from(h.record_count),
        total_bytes: h.total_len() as u64,
    }
}

/// Parses the header at the start of `bytes` (at least [`HEADER_BYTES`] long).
pub fn parse_header(bytes: &[u8]) -> Result<BatchInfo, BatchError> {
    BatchHeader::parse(bytes).map(|h| info(&h))
}

/// Checks that `bytes` is exactly one valid batch (framing and CRC32C).
pub fn validate(bytes: &[u8]) -> Result<BatchInfo, BatchError> {
    freshet_records::validate(bytes).map(|h| info(&h))
}

/// Assigns the offsets and leader epoch; the CRC does not cover these fields.
pub fn assign(bytes: &mut [u8], base_offset: i64, leader_epoch: i32) {
    freshet_records::set_base_offset(bytes, base_offset);
    freshet_records::set_partition_leader_epoch(bytes, leader_epoch);
}
