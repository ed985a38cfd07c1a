//! Builds a RecordBatch v2 from records: encodes them, compresses the records section, fills
//! the header (lengths, last offset delta, timestamps, count) and computes the CRC.

use std::fmt;

use crate::codec::{self, CodecError};
use crate::header::{
    BatchHeader, Compression, TimestampType, ATTRIBUTES_OFFSET, BATCH_HEADER_LEN, CRC_OFFSET,
    LOG_OVERHEAD, MAGIC_V2,
};
use crate::varint::{varint_len, varlong_len, write_varint, write_varlong};

/// Batch-wide settings. `Default` gives a plain, non-idempotent, uncompressed batch at
/// offset 0 (the broker assigns real offsets by patching `base_offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    /// -1 when the producer is not idempotent.
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence number of the first record; -1 without a producer id.
    pub base_sequence: i32,
    pub transactional: bool,
    /// Control batches hold transaction markers (see [`crate::control`]).
    pub control: bool,
    pub compression: Compression,
    pub timestamp_type: TimestampType,
    /// With LogAppendTime, the broker's append time, stored as the batch's max timestamp.
    pub log_append_time_ms: Option<i64>,
}

impl Default for BatchOptions {
    fn default() -> BatchOptions {
        BatchOptions {
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            log_append_time_ms: None,
        }
    }
}

/// A record to add: borrowed, because the builder encodes it immediately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecord<'a> {
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// `(key, value)`; keys may repeat and order is kept.
    pub headers: &'a [(&'a [u8], Option<&'a [u8]>)],
}

/// Why a batch could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The batch (or one field of a record) would not fit the format's i32 lengths.
    TooLarge {
        bytes: usize,
    },
    /// An offset delta not above the previous record's, or past `i32::MAX`.
    OffsetOrder,
    Codec(CodecError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::TooLarge { bytes } => write!(f, "{bytes} bytes do not fit a record batch"),
            BuildError::OffsetOrder => write!(f, "offset deltas must increase within a batch"),
            BuildError::Codec(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for BuildError {}

/// Accumulates records and produces one batch. Offset deltas are 0, 1, 2... in push order,
/// unless given explicitly with [`BatchBuilder::push_with_offset_delta`] (compaction keeps
/// the original offsets of the records it retains).
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    options: BatchOptions,
    /// Encoded, uncompressed records section.
    records: Vec<u8>,
    record_count: i32,
    /// Offset delta of the last record pushed; -1 before the first.
    last_offset_delta: i32,
    base_timestamp_ms: Option<i64>,
    max_timestamp_ms: i64,
}

impl BatchBuilder {
    pub fn new(options: BatchOptions) -> BatchBuilder {
        BatchBuilder {
            options,
            records: Vec::new(),
            record_count: 0,
            last_offset_delta: -1,
            base_timestamp_ms: None,
            max_timestamp_ms: -1,
        }
    }

    /// Number of records pushed so far.
    pub fn record_count(&self) -> i32 {
        self.record_count
    }

    /// Bytes of the uncompressed records section so far (a producer's batch-size estimate).
    pub fn records_bytes(&self) -> usize {
        self.records.len()
    }

    /// Encodes and appends one record at the next offset delta. Like Kafka's builder, the
    /// first record's timestamp becomes the batch's base timestamp.
    pub fn push(&mut self, record: &NewRecord<'_>) -> Result<(), BuildError> {
        let offset_delta = self
            .last_offset_delta
            .checked_add(1)
            .ok_or(BuildError::OffsetOrder)?;
        self.push_with_offset_delta(offset_delta, record)
    }

    /// Encodes and appends one record at `offset_delta`, which must be above the previous
    /// record's (gaps are allowed, as in a compacted batch).
    pub fn push_with_offset_delta(
        &mut self,
        offset_delta: i32,
        record: &NewRecord<'_>,
    ) -> Result<(), BuildError> {
        if offset_delta <= self.last_offset_delta {
            return Err(BuildError::OffsetOrder);
        }
        let record_count = self
            .record_count
            .checked_add(1)
            .ok_or(BuildError::OffsetOrder)?;
        let base_timestamp_ms = *self.base_timestamp_ms.get_or_insert(record.timestamp_ms);
        let timestamp_delta = record.timestamp_ms.wrapping_sub(base_timestamp_ms);
        let body_bytes = body_len(record, timestamp_delta, offset_delta)?;
        let body_bytes_i32 = to_i32(body_bytes)?;
        self.records
            .reserve(varint_len(body_bytes_i32) + body_bytes);
        write_varint(body_bytes_i32, &mut self.records);
        let body_start = self.records.len();
        encode_body(record, timestamp_delta, offset_delta, &mut self.records);
        assert_eq!(
            self.records.len() - body_start,
            body_bytes,
            "record size estimate is exact"
        );
        self.record_count = record_count;
        self.last_offset_delta = offset_delta;
        self.max_timestamp_ms = self.max_timestamp_ms.max(record.timestamp_ms);
        Ok(())
    }

    /// Finishes the batch: compressed, with every header field and the CRC filled in.
    pub fn build(&self) -> Result<Vec<u8>, BuildError> {
        let mut batch = vec![0u8; BATCH_HEADER_LEN];
        codec::compress(self.options.compression, &self.records, &mut batch)
            .map_err(BuildError::Codec)?;
        let header = self.header(to_i32(batch.len() - LOG_OVERHEAD)?);
        header.write(&mut batch);
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(batch)
    }

    fn header(&self, batch_length: i32) -> BatchHeader {
        let options = &self.options;
        let max_timestamp = match (options.timestamp_type, options.log_append_time_ms) {
            (TimestampType::LogAppendTime, Some(append_time_ms)) => append_time_ms,
            _ => self.max_timestamp_ms,
        };
        BatchHeader {
            base_offset: options.base_offset,
            batch_length,
            partition_leader_epoch: options.partition_leader_epoch,
            magic: MAGIC_V2,
            crc: 0,
            attributes: attributes(options),
            // An empty batch gets delta 0 (Kafka's builder never writes one).
            last_offset_delta: self.last_offset_delta.max(0),
            base_timestamp: self.base_timestamp_ms.unwrap_or(-1),
            max_timestamp,
            producer_id: options.producer_id,
            producer_epoch: options.producer_epoch,
            base_sequence: options.base_sequence,
            record_count: self.record_count,
        }
    }
}

fn attributes(options: &BatchOptions) -> i16 {
    let mut attributes = i16::from(options.compression.id());
    if options.timestamp_type == TimestampType::LogAppendTime {
        attributes |= 0x08;
    }
    if options.transactional {
        attributes |= 0x10;
    }
    if options.control {
        attributes |= 0x20;
    }
    attributes
}

fn to_i32(bytes: usize) -> Result<i32, BuildError> {
    i32::try_from(bytes).map_err(|_| BuildError::TooLarge { bytes })
}

/// Exact encoded size of a record after its length prefix.
fn body_len(
    record: &NewRecord<'_>,
    timestamp_delta: i64,
    offset_delta: i32,
) -> Result<usize, BuildError> {
    let mut bytes = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
    bytes += nullable_len(record.key)? + nullable_len(record.value)?;
    bytes += varint_len(to_i32(record.headers.len())?);
    for (key, value) in record.headers {
        bytes += nullable_len(Some(key))? + nullable_len(*value)?;
    }
    Ok(bytes)
}

fn nullable_len(field: Option<&[u8]>) -> Result<usize, BuildError> {
    Ok(match field {
        None => 1,
        Some(bytes) => varint_len(to_i32(bytes.len())?) + bytes.len(),
    })
}

fn encode_body(record: &NewRecord<'_>, timestamp_delta: i64, offset_delta: i32, out: &mut Vec<u8>) {
    out.push(0); // record attributes: unused, always 0
    write_varlong(timestamp_delta, out);
    write_varint(offset_delta, out);
    write_nullable(record.key, out);
    write_nullable(record.value, out);
    // Lengths were checked to fit i32 by body_len() before encoding started.
    write_varint(record.headers.len() as i32, out);
    for (key, value) in record.headers {
        write_nullable(Some(key), out);
        write_nullable(*value, out);
    }
}

fn write_nullable(field: Option<&[u8]>, out: &mut Vec<u8>) {
    match field {
        None => write_varint(-1, out),
        Some(bytes) => {
            write_varint(bytes.len() as i32, out);
            out.extend_from_slice(bytes);
        }
    }
}
