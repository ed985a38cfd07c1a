//! Records inside a batch's (decompressed) records section.
//!
//! Each record: `length` varint, `attributes` int8, `timestampDelta` varlong, `offsetDelta`
//! varint, `keyLength` varint (-1 = null) + key, `valueLength` varint (-1 = null) + value,
//! `headerCount` varint, then per header `keyLength` varint + key (a string, never null) and
//! `valueLength` varint (-1 = null) + value.
//!
//! Keys, values and header fields are [`Bytes`] slices of the batch (or of the decompressed
//! buffer), so iteration copies nothing. Every length and count from the input is checked
//! against the bytes that remain before anything is allocated for it.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

use crate::codec::{self, CodecError};
use crate::error::{kafka_error, BatchError};
use crate::header::{BatchHeader, Compression, TimestampType, BATCH_HEADER_LEN};
use crate::varint::{read_varint, read_varlong};

/// One record header. Keys may repeat within a record; order is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// UTF-8 by the protocol's rules, kept as bytes: Kafka does not reject bad UTF-8 here.
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// One decoded record with its absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Unused by Kafka today; kept so a record can be re-encoded byte for byte.
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    /// `base_offset + offset_delta`.
    pub offset: i64,
    /// `base_timestamp + timestamp_delta`, or the batch's `max_timestamp` when the batch
    /// uses LogAppendTime (the broker's clock overrides the producer's for every record).
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

/// Why the records of a batch could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The batch header itself is bad.
    Batch(BatchError),
    /// Decompressing the records section failed or passed the size limit.
    Codec(CodecError),
    /// A record's bytes break the format (bad varint, length past the end, negative sizes).
    Malformed {
        record_index: i32,
        reason: &'static str,
    },
    /// Fewer records than `recordCount` fit in the records section.
    MissingRecords { expected: i32, found: i32 },
    /// Bytes remain after `recordCount` records.
    TrailingBytes { bytes: usize },
}

impl RecordError {
    /// The Kafka error code for a produce request carrying the batch.
    ///
    /// Kafka 4's `DefaultRecord.readFrom` turns every malformed record (short buffer, bad
    /// varint, negative header key length, size disagreeing with fields) into
    /// `InvalidRecordException`, and so does a wrong record count ("Incorrect declared batch
    /// size"): `INVALID_RECORD`, which producers do not retry. Codec errors: see
    /// [`CodecError::kafka_error_code`].
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            RecordError::Batch(error) => error.kafka_error_code(),
            RecordError::Codec(error) => error.kafka_error_code(),
            RecordError::Malformed { .. }
            | RecordError::MissingRecords { .. }
            | RecordError::TrailingBytes { .. } => kafka_error::INVALID_RECORD,
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Batch(error) => error.fmt(f),
            RecordError::Codec(error) => error.fmt(f),
            RecordError::Malformed {
                record_index,
                reason,
            } => {
                write!(f, "record {record_index} is malformed: {reason}")
            }
            RecordError::MissingRecords { expected, found } => {
                write!(f, "batch declares {expected} records but holds {found}")
            }
            RecordError::TrailingBytes { bytes } => {
                write!(f, "{bytes} bytes remain after the declared records")
            }
        }
    }
}

impl std::error::Error for RecordError {}

impl From<BatchError> for RecordError {
    fn from(error: BatchError) -> RecordError {
        RecordError::Batch(error)
    }
}

impl From<CodecError> for RecordError {
    fn from(error: CodecError) -> RecordError {
        RecordError::Codec(error)
    }
}

/// Opens the records of one whole batch: validates header, length and CRC, decompresses the
/// records section (at most `max_decompressed_bytes`), and returns an iterator over them.
pub fn records(batch: &Bytes, max_decompressed_bytes: usize) -> Result<Records, RecordError> {
    let header = crate::header::validate(batch)?;
    let section = batch.slice(BATCH_HEADER_LEN..header.total_len());
    let body = match header.compression() {
        Compression::None => section,
        codec => Bytes::from(codec::decompress(codec, &section, max_decompressed_bytes)?),
    };
    Ok(Records::new(header, body))
}

/// Iterator over the records of one batch; see [`records`]. Yields at most `recordCount`
/// items, then an error if bytes remain; after any error it yields nothing more.
#[derive(Debug, Clone)]
pub struct Records {
    header: BatchHeader,
    body: Bytes,
    position: usize,
    next_index: i32,
    done: bool,
}

impl Records {
    /// Iterates `body`, the already decompressed records section of the batch `header`.
    pub fn new(header: BatchHeader, body: Bytes) -> Records {
        Records {
            header,
            body,
            position: 0,
            next_index: 0,
            done: false,
        }
    }

    /// The header of the batch being iterated.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    fn step(&mut self) -> Option<Result<Record, RecordError>> {
        let expected = self.header.record_count.max(0);
        let rest = self.body.len() - self.position;
        if self.next_index >= expected {
            self.done = true;
            return (rest > 0).then_some(Err(RecordError::TrailingBytes { bytes: rest }));
        }
        if rest == 0 {
            self.done = true;
            return Some(Err(RecordError::MissingRecords {
                expected,
                found: self.next_index,
            }));
        }
        let index = self.next_index;
        let result = self.read_record(index);
        self.next_index += 1;
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }

    fn read_record(&mut self, record_index: i32) -> Result<Record, RecordError> {
        let (end, fields) = within_record(&self.body, self.position, record_index, read_fields)?;
        self.position = end;
        Ok(fields.into_record(&self.body, &self.header))
    }
}

impl Iterator for Records {
    type Item = Result<Record, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.step()
    }
}

impl std::iter::FusedIterator for Records {}

/// One record's fields as positions in the records section: what [`within_record`] finds with [`read_fields`]
/// without copying or allocating anything but the header list.
struct RecordFields {
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    headers: Vec<HeaderRanges>,
}

/// A record header's key and (nullable) value as positions in the records section.
type HeaderRanges = (Range<usize>, Option<Range<usize>>);

impl RecordFields {
    fn into_record(self, body: &Bytes, batch: &BatchHeader) -> Record {
        let slice = |range: Option<Range<usize>>| range.map(|r| body.slice(r));
        let timestamp = match batch.timestamp_type() {
            TimestampType::CreateTime => batch.base_timestamp.wrapping_add(self.timestamp_delta),
            TimestampType::LogAppendTime => batch.max_timestamp,
        };
        Record {
            attributes: self.attributes,
            timestamp_delta: self.timestamp_delta,
            offset_delta: self.offset_delta,
            offset: batch.base_offset.wrapping_add(i64::from(self.offset_delta)),
            timestamp,
            key: slice(self.key),
            value: slice(self.value),
            headers: self
                .headers
                .into_iter()
                .map(|(key, value)| RecordHeader {
                    key: body.slice(key),
                    value: slice(value),
                })
                .collect(),
        }
    }
}

/// Reads the record that starts at `position` of `body` (its length prefix, then its fields
/// with `read_fields`) and returns where it ends with what `read_fields` found. Every length is
/// checked against the record's own length, so no field can reach into the next record.
fn within_record<T>(
    body: &[u8],
    position: usize,
    record_index: i32,
    read_fields: impl FnOnce(&mut Cursor<'_>) -> Option<T>,
) -> Result<(usize, T), RecordError> {
    let malformed = |reason| RecordError::Malformed {
        record_index,
        reason,
    };
    let mut cursor = Cursor {
        bytes: body,
        position,
        end: body.len(),
    };
    let length = cursor
        .length()
        .ok_or_else(|| malformed("bad record length"))?;
    cursor.end = cursor.position + length;
    let fields = read_fields(&mut cursor).ok_or_else(|| malformed("bad record body"))?;
    if cursor.position != cursor.end {
        return Err(malformed("record length disagrees with its fields"));
    }
    Ok((cursor.end, fields))
}

/// Reads a record's fields after its length prefix; `None` on any malformation.
fn read_fields(cursor: &mut Cursor<'_>) -> Option<RecordFields> {
    Some(RecordFields {
        attributes: cursor.byte()? as i8,
        timestamp_delta: cursor.varlong()?,
        offset_delta: cursor.varint()?,
        key: cursor.nullable_range()?,
        value: cursor.nullable_range()?,
        headers: read_headers(cursor)?,
    })
}

/// The smallest header on the wire: a zero-length key and a null value, one byte each.
const HEADER_MIN_BYTES: usize = 2;

fn read_headers(cursor: &mut Cursor<'_>) -> Option<Vec<HeaderRanges>> {
    let count = usize::try_from(cursor.varint()?).ok()?;
    // A hostile count cannot make us reserve more than the remaining bytes could hold.
    if count > cursor.remaining() / HEADER_MIN_BYTES {
        return None;
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let key = cursor.nullable_range()??; // Kafka rejects a null header key.
        let value = cursor.nullable_range()?;
        headers.push((key, value));
    }
    Some(headers)
}

/// The timestamps a walk over a batch's records found (see [`scan_records`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannedRecords {
    /// The smallest and largest record timestamps (`base_timestamp + timestampDelta`), as a
    /// CreateTime batch states them.
    pub min_timestamp: i64,
    pub max_timestamp: i64,
}

/// Checks that `body`, the decompressed records section of the batch `header`, holds exactly
/// `recordCount` well-formed records, and returns the range of their timestamps. The records
/// are walked, never built: this is the broker's produce-time check (Kafka's LogValidator
/// parses every record of a client's batch too), so that a batch whose CRC is right but whose
/// records are not can never reach a consumer.
pub fn scan_records(header: &BatchHeader, body: &[u8]) -> Result<ScannedRecords, RecordError> {
    let expected = header.record_count.max(0);
    let mut position = 0;
    let mut min_delta = i64::MAX;
    let mut max_delta = i64::MIN;
    for index in 0..expected {
        if position == body.len() {
            return Err(RecordError::MissingRecords {
                expected,
                found: index,
            });
        }
        let (end, delta) = within_record(body, position, index, skip_fields)?;
        position = end;
        min_delta = min_delta.min(delta);
        max_delta = max_delta.max(delta);
    }
    if position < body.len() {
        return Err(RecordError::TrailingBytes {
            bytes: body.len() - position,
        });
    }
    let at = |delta: i64| header.base_timestamp.wrapping_add(delta);
    Ok(ScannedRecords {
        min_timestamp: at(min_delta),
        max_timestamp: at(max_delta),
    })
}

/// [`read_fields`] that only checks the layout and returns the timestamp delta.
fn skip_fields(cursor: &mut Cursor<'_>) -> Option<i64> {
    cursor.byte()?;
    let timestamp_delta = cursor.varlong()?;
    cursor.varint()?;
    cursor.nullable_range()?;
    cursor.nullable_range()?;
    let count = usize::try_from(cursor.varint()?).ok()?;
    for _ in 0..count {
        cursor.nullable_range()??; // a null header key is malformed
        cursor.nullable_range()?;
    }
    Some(timestamp_delta)
}

/// A read position in a shared buffer, bounded by `end`; every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
    /// Exclusive bound: reads never pass it (`end <= bytes.len()`).
    end: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.end - self.position
    }

    fn rest(&self) -> &[u8] {
        &self.bytes[self.position..self.end]
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = *self.rest().first()?;
        self.position += 1;
        Some(byte)
    }

    fn varint(&mut self) -> Option<i32> {
        let (value, used) = read_varint(self.rest())?;
        self.position += used;
        Some(value)
    }

    fn varlong(&mut self) -> Option<i64> {
        let (value, used) = read_varlong(self.rest())?;
        self.position += used;
        Some(value)
    }

    /// A non-negative varint length that fits in the remaining bytes.
    fn length(&mut self) -> Option<usize> {
        let length = usize::try_from(self.varint()?).ok()?;
        (length <= self.remaining()).then_some(length)
    }

    /// Varint length then that many bytes, as their range; length -1 is null (`Some(None)`);
    /// `None` if malformed.
    fn nullable_range(&mut self) -> Option<Option<Range<usize>>> {
        let (length, used) = read_varint(self.rest())?;
        if length == -1 {
            self.position += used;
            return Some(None);
        }
        let length = self.length()?;
        let range = self.position..self.position + length;
        self.position += length;
        Some(Some(range))
    }
}
