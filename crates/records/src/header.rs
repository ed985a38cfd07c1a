//! The fixed 61-byte RecordBatch v2 header: parsing, CRC32C validation, offset and epoch
//! patching, and walking a run of concatenated batches by their lengths alone.

use crate::error::BatchError;

/// Bytes in the fixed RecordBatch v2 header, from `baseOffset` to `recordCount` inclusive.
pub const BATCH_HEADER_LEN: usize = 61;
/// Position of the big-endian i32 `batchLength`.
pub const BATCH_LENGTH_OFFSET: usize = 8;
/// `baseOffset` (8) + `batchLength` (4): the bytes that `batchLength` does not count.
pub const LOG_OVERHEAD: usize = 12;

// Field positions, in bytes from the start of the batch (see docs/design/records.md).
pub(crate) const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
pub(crate) const MAGIC_OFFSET: usize = 16;
pub(crate) const CRC_OFFSET: usize = 17;
/// The CRC covers everything from here to the end of the batch.
pub(crate) const ATTRIBUTES_OFFSET: usize = 21;
pub(crate) const LAST_OFFSET_DELTA_OFFSET: usize = 23;
pub(crate) const BASE_TIMESTAMP_OFFSET: usize = 27;
pub(crate) const MAX_TIMESTAMP_OFFSET: usize = 35;
pub(crate) const PRODUCER_ID_OFFSET: usize = 43;
pub(crate) const PRODUCER_EPOCH_OFFSET: usize = 51;
pub(crate) const BASE_SEQUENCE_OFFSET: usize = 53;
pub(crate) const RECORD_COUNT_OFFSET: usize = 57;

/// The only message format this crate accepts.
pub const MAGIC_V2: i8 = 2;
/// Smallest legal `batchLength`: a header with no records.
pub(crate) const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// Compression codec of a batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The codec's id in the attribute bits.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with attribute id `id`, or `None` for the unassigned ids 5-7.
    pub fn from_id(id: u8) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Which clock the batch's timestamps come from (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker on append (topic config `message.timestamp.type=LogAppendTime`).
    LogAppendTime,
}

/// The decoded fixed header of a RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Bytes after the `batchLength` field: the batch is `LOG_OVERHEAD + batch_length` long.
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    /// CRC32C (Castagnoli) of the bytes from `attributes` to the end of the batch.
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Decodes the fixed header from the start of `batch`.
    ///
    /// Checks that the 61 header bytes are present, that the magic byte is 2, that
    /// `batchLength` is at least a header's worth and that the codec id is assigned. It does
    /// not require the whole batch to be present (a segment reader may hold only the header)
    /// and does not check the CRC: use [`validate`] for that.
    pub fn parse(batch: &[u8]) -> Result<BatchHeader, BatchError> {
        // Magic sits at byte 16 in every message format, so a legacy message set shorter
        // than a v2 header is still reported as an unsupported format, not as truncated.
        if batch.len() > MAGIC_OFFSET && batch[MAGIC_OFFSET] as i8 != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(batch[MAGIC_OFFSET] as i8));
        }
        let header: &[u8; BATCH_HEADER_LEN] = batch
            .get(..BATCH_HEADER_LEN)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(BatchError::Truncated {
                needed_bytes: BATCH_HEADER_LEN,
                available_bytes: batch.len(),
            })?;
        let parsed = Self::decode(header);
        if parsed.batch_length < BATCH_LENGTH_MIN {
            return Err(BatchError::BadLength {
                batch_length: parsed.batch_length,
            });
        }
        let codec_id = (parsed.attributes & COMPRESSION_MASK) as u8;
        if Compression::from_id(codec_id).is_none() {
            return Err(BatchError::UnknownCompression(codec_id));
        }
        Ok(parsed)
    }

    fn decode(h: &[u8; BATCH_HEADER_LEN]) -> BatchHeader {
        BatchHeader {
            base_offset: i64::from_be_bytes(array(h, 0)),
            batch_length: i32::from_be_bytes(array(h, BATCH_LENGTH_OFFSET)),
            partition_leader_epoch: i32::from_be_bytes(array(h, PARTITION_LEADER_EPOCH_OFFSET)),
            magic: h[MAGIC_OFFSET] as i8,
            crc: u32::from_be_bytes(array(h, CRC_OFFSET)),
            attributes: i16::from_be_bytes(array(h, ATTRIBUTES_OFFSET)),
            last_offset_delta: i32::from_be_bytes(array(h, LAST_OFFSET_DELTA_OFFSET)),
            base_timestamp: i64::from_be_bytes(array(h, BASE_TIMESTAMP_OFFSET)),
            max_timestamp: i64::from_be_bytes(array(h, MAX_TIMESTAMP_OFFSET)),
            producer_id: i64::from_be_bytes(array(h, PRODUCER_ID_OFFSET)),
            producer_epoch: i16::from_be_bytes(array(h, PRODUCER_EPOCH_OFFSET)),
            base_sequence: i32::from_be_bytes(array(h, BASE_SEQUENCE_OFFSET)),
            record_count: i32::from_be_bytes(array(h, RECORD_COUNT_OFFSET)),
        }
    }

    /// Writes this header into the first 61 bytes of `out`, exactly as stored (the CRC field
    /// is written as given, not recomputed).
    ///
    /// # Panics
    /// If `out` is shorter than [`BATCH_HEADER_LEN`]: callers size their own buffers.
    pub fn write(&self, out: &mut [u8]) {
        let h = &mut out[..BATCH_HEADER_LEN];
        h[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        h[8..12].copy_from_slice(&self.batch_length.to_be_bytes());
        h[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        h[MAGIC_OFFSET] = self.magic as u8;
        h[17..21].copy_from_slice(&self.crc.to_be_bytes());
        h[21..23].copy_from_slice(&self.attributes.to_be_bytes());
        h[23..27].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        h[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        h[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        h[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        h[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        h[57..61].copy_from_slice(&self.record_count.to_be_bytes());
    }

    /// Offset of the last record the batch was built with (kept even if compaction removed it).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// The whole batch's size in bytes: `LOG_OVERHEAD + batch_length`.
    pub fn total_len(&self) -> usize {
        // parse() guarantees batch_length >= BATCH_LENGTH_MIN > 0, and an i32 fits in usize
        // on every target this crate supports (32 and 64 bit).
        LOG_OVERHEAD + usize::try_from(self.batch_length.max(0)).unwrap_or(0)
    }

    /// The batch's codec.
    ///
    /// # Panics
    /// On an unassigned codec id (5-7). [`BatchHeader::parse`] rejects those, so only a header
    /// assembled by hand with bad attributes can get here, which is a bug in the caller.
    pub fn compression(&self) -> Compression {
        let id = (self.attributes & COMPRESSION_MASK) as u8;
        Compression::from_id(id).unwrap_or_else(|| {
            panic!("BatchHeader with unassigned compression id {id}: parse() rejects these")
        })
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// A control batch holds transaction markers (commit/abort), never user records.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Set by compaction when `base_timestamp` holds the delete horizon (KIP-534).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_BIT != 0
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch carries a producer id (idempotent or transactional producer).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// The rule Kafka's LogValidator applies to a batch a producer sent: at least one record,
    /// and `recordCount == lastOffsetDelta + 1`. (Batches in a compacted log may legally
    /// hold fewer records than their offset range, so this is not part of [`validate`].)
    pub fn check_producer_counts(&self) -> Result<(), BatchError> {
        let count_from_offsets = i64::from(self.last_offset_delta) + 1;
        if self.record_count <= 0 || count_from_offsets != i64::from(self.record_count) {
            return Err(BatchError::InconsistentCount {
                record_count: self.record_count,
                last_offset_delta: self.last_offset_delta,
            });
        }
        Ok(())
    }
}

/// Copies `N` bytes at `at` out of the header; the caller passes in-bounds constants.
fn array<const N: usize>(h: &[u8; BATCH_HEADER_LEN], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&h[at..at + N]);
    out
}

/// CRC32C over `batch[ATTRIBUTES_OFFSET..]`, the bytes the stored CRC covers.
pub(crate) fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..])
}

/// Parses the header and checks that `batch` is exactly one whole batch whose CRC matches.
pub fn validate(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let declared_bytes = header.total_len();
    if batch.len() < declared_bytes {
        return Err(BatchError::Truncated {
            needed_bytes: declared_bytes,
            available_bytes: batch.len(),
        });
    }
    if batch.len() > declared_bytes {
        return Err(BatchError::TrailingBytes {
            declared_bytes,
            actual_bytes: batch.len(),
        });
    }
    let actual = compute_crc(batch);
    if actual != header.crc {
        return Err(BatchError::CrcMismatch {
            expected: header.crc,
            actual,
        });
    }
    Ok(header)
}

/// Overwrites `baseOffset`. The CRC does not cover it, so the batch stays valid.
///
/// # Panics
/// If `batch` is shorter than the header: only call on a batch that parsed.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Overwrites `partitionLeaderEpoch`. The CRC does not cover it, so the batch stays valid.
///
/// # Panics
/// If `batch` is shorter than the header: only call on a batch that parsed.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Switches a whole, valid batch to LogAppendTime at `append_time_ms`, as Kafka's
/// `LogValidator` does in place for topics with `message.timestamp.type=LogAppendTime`:
/// sets attribute bit 3 and `maxTimestamp` (every record then reads that timestamp) and
/// recomputes the CRC. The stored CRC is checked first, so a corrupt batch is never
/// re-blessed with a fresh checksum. Returns the updated header.
pub fn stamp_log_append_time(
    batch: &mut [u8],
    append_time_ms: i64,
) -> Result<BatchHeader, BatchError> {
    rewrite_header(batch, |header| {
        header.attributes |= TIMESTAMP_TYPE_BIT;
        header.max_timestamp = append_time_ms;
    })
}

/// Sets `maxTimestamp` of a whole, valid batch and recomputes the CRC, as Kafka's
/// `LogValidator` does when a client's batch header disagrees with its records' largest
/// timestamp. The stored CRC is checked first. Returns the updated header.
pub fn set_max_timestamp(batch: &mut [u8], max_timestamp: i64) -> Result<BatchHeader, BatchError> {
    rewrite_header(batch, |header| header.max_timestamp = max_timestamp)
}

/// Validates `batch`, applies `change` to its header, and writes the header back with a new
/// CRC: a corrupt batch is never re-blessed with a fresh checksum.
fn rewrite_header(
    batch: &mut [u8],
    change: impl FnOnce(&mut BatchHeader),
) -> Result<BatchHeader, BatchError> {
    let mut header = validate(batch)?;
    change(&mut header);
    header.write(batch);
    header.crc = compute_crc(batch);
    header.write(batch);
    Ok(header)
}

/// Walks concatenated batches (a produce request's `records` field, a segment's bytes)
/// using the length fields only: no CRC check, no record decoding.
///
/// Yields `(start, header)` per batch, where `start` is the batch's first byte in `bytes`.
/// After the first error (including a batch that runs past the end) it yields nothing more.
pub fn split_batches(bytes: &[u8]) -> Batches<'_> {
    Batches {
        bytes,
        position: 0,
        failed: false,
    }
}

/// Iterator returned by [`split_batches`].
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    bytes: &'a [u8],
    position: usize,
    failed: bool,
}

impl Iterator for Batches<'_> {
    type Item = Result<(usize, BatchHeader), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.bytes.len() {
            return None;
        }
        let start = self.position;
        let rest = &self.bytes[start..];
        let result = BatchHeader::parse(rest).and_then(|header| {
            if header.total_len() > rest.len() {
                Err(BatchError::Truncated {
                    needed_bytes: header.total_len(),
                    available_bytes: rest.len(),
                })
            } else {
                Ok(header)
            }
        });
        match result {
            Ok(header) => {
                self.position = start + header.total_len();
                Some(Ok((start, header)))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

impl std::iter::FusedIterator for Batches<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty (zero-record) batch with a correct CRC, written field by field.
    fn empty_batch(attributes: i16) -> Vec<u8> {
        let header = BatchHeader {
            base_offset: 100,
            batch_length: BATCH_LENGTH_MIN,
            partition_leader_epoch: 7,
            magic: MAGIC_V2,
            crc: 0,
            attributes,
            last_offset_delta: 0,
            base_timestamp: 1_700_000_000_000,
            max_timestamp: 1_700_000_000_500,
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 9,
            record_count: 0,
        };
        let mut batch = vec![0u8; BATCH_HEADER_LEN];
        header.write(&mut batch);
        let crc = compute_crc(&batch);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        batch
    }

    #[test]
    fn parse_reads_every_field() {
        let batch = empty_batch(0x18 | 4);
        let h = validate(&batch).unwrap();
        assert_eq!(h.base_offset, 100);
        assert_eq!(h.batch_length, 49);
        assert_eq!(h.partition_leader_epoch, 7);
        assert_eq!(h.magic, 2);
        assert_eq!(h.base_timestamp, 1_700_000_000_000);
        assert_eq!(h.max_timestamp, 1_700_000_000_500);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, 9)
        );
        assert_eq!(h.compression(), Compression::Zstd);
        assert!(h.is_transactional());
        assert!(!h.is_control());
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(h.total_len(), BATCH_HEADER_LEN);
        assert_eq!(h.last_offset(), 100);
    }

    #[test]
    fn patching_offset_and_epoch_keeps_crc_valid() {
        let mut batch = empty_batch(0);
        set_base_offset(&mut batch, 1 << 40);
        set_partition_leader_epoch(&mut batch, 12);
        let h = validate(&batch).unwrap();
        assert_eq!(h.base_offset, 1 << 40);
        assert_eq!(h.partition_leader_epoch, 12);
    }

    #[test]
    fn flipped_bit_in_covered_bytes_fails_crc() {
        let mut batch = empty_batch(0);
        batch[BASE_TIMESTAMP_OFFSET] ^= 1;
        let err = validate(&batch).unwrap_err();
        assert!(matches!(err, BatchError::CrcMismatch { .. }), "{err:?}");
        assert_eq!(err.kafka_error_code(), 2);
    }

    #[test]
    fn legacy_magic_is_rejected_even_when_short() {
        let mut legacy = vec![0u8; 26];
        legacy[MAGIC_OFFSET] = 1;
        let err = BatchHeader::parse(&legacy).unwrap_err();
        assert_eq!(err, BatchError::UnsupportedMagic(1));
        // Kafka's ProduceRequest.validateRecords: InvalidRecordException.
        assert_eq!(err.kafka_error_code(), crate::kafka_error::INVALID_RECORD);
        let mut garbage = vec![0u8; BATCH_HEADER_LEN];
        garbage[MAGIC_OFFSET] = 0x7f;
        let err = BatchHeader::parse(&garbage).unwrap_err();
        assert_eq!(err, BatchError::UnsupportedMagic(0x7f));
        assert_eq!(err.kafka_error_code(), crate::kafka_error::CORRUPT_MESSAGE);
    }

    #[test]
    fn lengths_are_checked() {
        let batch = empty_batch(0);
        assert!(matches!(
            BatchHeader::parse(&batch[..60]),
            Err(BatchError::Truncated {
                needed_bytes: 61,
                available_bytes: 60
            })
        ));
        let mut long = batch.clone();
        long.push(0);
        assert!(matches!(
            validate(&long),
            Err(BatchError::TrailingBytes { .. })
        ));
        let mut short_len = batch.clone();
        short_len[8..12].copy_from_slice(&48i32.to_be_bytes());
        assert_eq!(
            BatchHeader::parse(&short_len),
            Err(BatchError::BadLength { batch_length: 48 })
        );
        let mut huge_len = batch;
        huge_len[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            validate(&huge_len),
            Err(BatchError::Truncated { .. })
        ));
    }

    #[test]
    fn stamping_log_append_time_keeps_the_batch_valid() {
        let mut batch = empty_batch(0);
        let stamped = stamp_log_append_time(&mut batch, 123_456).unwrap();
        assert_eq!(validate(&batch).unwrap(), stamped);
        assert_eq!(stamped.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(stamped.max_timestamp, 123_456);
        batch[30] ^= 1;
        assert!(matches!(
            stamp_log_append_time(&mut batch, 1),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn unknown_codec_is_rejected() {
        let batch = empty_batch(5);
        assert_eq!(validate(&batch), Err(BatchError::UnknownCompression(5)));
    }

    #[test]
    fn split_walks_batches_and_stops_at_truncation() {
        let one = empty_batch(0);
        let mut bytes = one.clone();
        bytes.extend_from_slice(&one);
        bytes.extend_from_slice(&one[..30]);
        let items: Vec<_> = split_batches(&bytes).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap().0, 0);
        assert_eq!(items[1].as_ref().unwrap().0, 61);
        assert!(matches!(items[2], Err(BatchError::Truncated { .. })));
        assert_eq!(split_batches(&[]).count(), 0);
    }

    #[test]
    fn producer_count_rule() {
        let batch = empty_batch(0);
        let mut h = BatchHeader::parse(&batch).unwrap();
        assert!(h.check_producer_counts().is_err());
        h.record_count = 3;
        h.last_offset_delta = 2;
        assert!(h.check_producer_counts().is_ok());
        h.last_offset_delta = i32::MAX;
        assert!(h.check_producer_counts().is_err());
    }
}
