//! The producer-state snapshot: the whole [`ProducerStateTable`] at a log offset, so that a
//! restart replays only the batches after it. The byte layout is in `docs/design/txn.md`.
//!
//! Everything is big-endian. A CRC32C covers all bytes after the CRC field, and the decoder
//! checks every field's range and refuses trailing bytes, so a torn or corrupt file is an
//! error (then rebuild from the log), never a panic or a wrong state. No count read from the
//! file makes the decoder allocate more than the file's size could hold.

use std::collections::VecDeque;
use std::fmt;

use crate::state::{
    BatchMetadata, ProducerEntry, ProducerStateConfig, ProducerStateTable, BATCHES_RETAINED,
};

/// The first four bytes of every snapshot: "FPST" (Freshet Producer STate).
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"FPST";
/// The only format version so far.
pub const SNAPSHOT_VERSION: u16 = 1;
/// Magic, version, CRC, end offset and entry count.
const HEADER_LEN: usize = 4 + 2 + 4 + 8 + 4;
/// Where the CRC field starts; it covers everything after it.
const CRC_AT: usize = 6;
/// The fixed part of an entry: id, epoch, coordinator epoch, last timestamp, transaction
/// first offset, batch count.
const ENTRY_FIXED_LEN: usize = 8 + 2 + 4 + 8 + 8 + 1;
/// One retained batch: last sequence, last offset, offset delta, max timestamp.
const BATCH_LEN: usize = 4 + 8 + 4 + 8;

/// A decoded snapshot: the table and the log offset it covers up to (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedSnapshot {
    pub table: ProducerStateTable,
    /// Replay the log from here on.
    pub end_offset: i64,
}

/// Why a snapshot could not be used. The caller deletes it and rebuilds from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Fewer bytes than a field needs.
    Truncated {
        needed_bytes: usize,
        available_bytes: usize,
    },
    BadMagic([u8; 4]),
    UnsupportedVersion(u16),
    CrcMismatch {
        stored: u32,
        computed: u32,
    },
    /// Bytes after the last entry.
    TrailingBytes(usize),
    /// A field outside its range (the field is named).
    InvalidField(&'static str),
    /// Producer ids not strictly ascending: a duplicate or a reordered file.
    ProducerIdsNotAscending {
        previous: i64,
        next: i64,
    },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Truncated {
                needed_bytes,
                available_bytes,
            } => write!(
                f,
                "snapshot truncated: needs {needed_bytes} bytes, has {available_bytes}"
            ),
            SnapshotError::BadMagic(magic) => {
                write!(f, "not a producer snapshot (magic {magic:?})")
            }
            SnapshotError::UnsupportedVersion(version) => {
                write!(f, "unsupported producer snapshot version {version}")
            }
            SnapshotError::CrcMismatch { stored, computed } => write!(
                f,
                "producer snapshot CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            SnapshotError::TrailingBytes(count) => {
                write!(f, "{count} trailing bytes after the producer snapshot")
            }
            SnapshotError::InvalidField(field) => {
                write!(f, "producer snapshot has an invalid {field}")
            }
            SnapshotError::ProducerIdsNotAscending { previous, next } => write!(
                f,
                "producer snapshot lists producer {next} after {previous}"
            ),
        }
    }
}

impl std::error::Error for SnapshotError {}

impl ProducerStateTable {
    /// The snapshot of this table, taken when the log ends at `end_offset` (every batch
    /// below it is reflected, none above).
    pub fn encode_snapshot(&self, end_offset: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.len() * (ENTRY_FIXED_LEN + BATCH_LEN));
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&[0; 4]); // CRC, filled in last
        out.extend_from_slice(&end_offset.to_be_bytes());
        let count = u32::try_from(self.len()).expect("fewer than 2^32 producers in a partition");
        out.extend_from_slice(&count.to_be_bytes());
        for (producer_id, entry) in self.entries() {
            encode_entry(&mut out, *producer_id, entry);
        }
        let crc = crc32c::crc32c(&out[CRC_AT + 4..]);
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Reads a snapshot written by [`Self::encode_snapshot`]. The config is not stored in the
    /// file; pass the partition's current one (then call [`Self::remove_expired`], as Kafka
    /// drops expired producers when it loads a snapshot).
    pub fn decode_snapshot(
        config: ProducerStateConfig,
        bytes: &[u8],
    ) -> Result<DecodedSnapshot, SnapshotError> {
        let mut reader = Reader { bytes, at: 0 };
        let magic: [u8; 4] = reader.array()?;
        if magic != SNAPSHOT_MAGIC {
            return Err(SnapshotError::BadMagic(magic));
        }
        let version = u16::from_be_bytes(reader.array()?);
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let stored = u32::from_be_bytes(reader.array()?);
        let computed = crc32c::crc32c(&bytes[reader.at..]);
        if stored != computed {
            return Err(SnapshotError::CrcMismatch { stored, computed });
        }
        let end_offset = reader.i64()?;
        if end_offset < 0 {
            return Err(SnapshotError::InvalidField("end offset"));
        }
        let table = decode_entries(&mut reader, config)?;
        match reader.remaining() {
            0 => Ok(DecodedSnapshot { table, end_offset }),
            extra => Err(SnapshotError::TrailingBytes(extra)),
        }
    }
}

fn encode_entry(out: &mut Vec<u8>, producer_id: i64, entry: &ProducerEntry) {
    out.extend_from_slice(&producer_id.to_be_bytes());
    out.extend_from_slice(&entry.producer_epoch.to_be_bytes());
    out.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
    out.extend_from_slice(&entry.last_timestamp_ms.to_be_bytes());
    out.extend_from_slice(&entry.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
    let batch_count = u8::try_from(entry.batches.len()).expect("at most 5 batches retained");
    out.push(batch_count);
    for batch in &entry.batches {
        out.extend_from_slice(&batch.last_sequence.to_be_bytes());
        out.extend_from_slice(&batch.last_offset.to_be_bytes());
        out.extend_from_slice(&batch.offset_delta().to_be_bytes());
        out.extend_from_slice(&batch.max_timestamp_ms.to_be_bytes());
    }
}

fn decode_entries(
    reader: &mut Reader<'_>,
    config: ProducerStateConfig,
) -> Result<ProducerStateTable, SnapshotError> {
    let count = u32::from_be_bytes(reader.array()?);
    // Each entry takes at least ENTRY_FIXED_LEN bytes: refuse a count the file cannot hold
    // before looping on it.
    let needed_bytes = (count as usize).saturating_mul(ENTRY_FIXED_LEN);
    if needed_bytes > reader.remaining() {
        return Err(SnapshotError::Truncated {
            needed_bytes,
            available_bytes: reader.remaining(),
        });
    }
    let mut table = ProducerStateTable::new(config);
    let mut previous: Option<i64> = None;
    for _ in 0..count {
        let (producer_id, entry) = decode_entry(reader)?;
        if let Some(previous) = previous.filter(|previous| *previous >= producer_id) {
            return Err(SnapshotError::ProducerIdsNotAscending {
                previous,
                next: producer_id,
            });
        }
        previous = Some(producer_id);
        table.insert_entry(producer_id, entry);
    }
    Ok(table)
}

fn decode_entry(reader: &mut Reader<'_>) -> Result<(i64, ProducerEntry), SnapshotError> {
    let producer_id = reader.i64()?;
    if producer_id < 0 {
        return Err(SnapshotError::InvalidField("producer id"));
    }
    let producer_epoch = i16::from_be_bytes(reader.array()?);
    let coordinator_epoch = i32::from_be_bytes(reader.array()?);
    let last_timestamp_ms = reader.i64()?;
    let current_txn_first_offset = match reader.i64()? {
        -1 => None,
        offset if offset >= 0 => Some(offset),
        _ => return Err(SnapshotError::InvalidField("transaction first offset")),
    };
    let [batch_count] = reader.array::<1>()?;
    if usize::from(batch_count) > BATCHES_RETAINED {
        return Err(SnapshotError::InvalidField("batch count"));
    }
    let mut batches = VecDeque::with_capacity(usize::from(batch_count));
    for _ in 0..batch_count {
        batches.push_back(decode_batch(reader)?);
    }
    let entry = ProducerEntry {
        producer_epoch,
        batches,
        last_timestamp_ms,
        coordinator_epoch,
        current_txn_first_offset,
    };
    Ok((producer_id, entry))
}

fn decode_batch(reader: &mut Reader<'_>) -> Result<BatchMetadata, SnapshotError> {
    let last_sequence = i32::from_be_bytes(reader.array()?);
    let last_offset = reader.i64()?;
    let offset_delta = i32::from_be_bytes(reader.array()?);
    let max_timestamp_ms = reader.i64()?;
    if last_sequence < 0 {
        return Err(SnapshotError::InvalidField("batch last sequence"));
    }
    if offset_delta < 0 || last_offset < i64::from(offset_delta) {
        return Err(SnapshotError::InvalidField("batch offsets"));
    }
    Ok(BatchMetadata::from_last(
        last_sequence,
        last_offset,
        offset_delta,
        max_timestamp_ms,
    ))
}

/// Reads big-endian fields from the front of a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let field = self
            .bytes
            .get(self.at..self.at + N)
            .ok_or(SnapshotError::Truncated {
                needed_bytes: self.at + N,
                available_bytes: self.bytes.len(),
            })?;
        self.at += N;
        let mut out = [0u8; N];
        out.copy_from_slice(field);
        Ok(out)
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
}
