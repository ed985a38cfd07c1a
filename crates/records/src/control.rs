//! Control records: the transaction markers (COMMIT / ABORT) the transaction coordinator has
//! written into partitions. A control batch has the control and transactional attribute bits
//! set and holds one record whose key is `{version: int16 = 0, type: int16}` and, for
//! end-transaction markers, whose value is `{version: int16 = 0, coordinatorEpoch: int32}`.

use crate::builder::{BatchBuilder, BatchOptions, BuildError, NewRecord};
use crate::header::Compression;

/// The `type` field of a control record key (Kafka's `ControlRecordType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecordType {
    Abort,
    Commit,
    /// KRaft and later types (leader change, snapshot header...): kept by number.
    Other(i16),
}

impl ControlRecordType {
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(id) => id,
        }
    }

    fn from_id(id: i16) -> ControlRecordType {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Other(other),
        }
    }
}

/// Reads a control record key; `None` if it is shorter than 4 bytes. Kafka reads only the
/// version and type and ignores anything after, so later versions still parse.
pub fn parse_control_key(key: &[u8]) -> Option<ControlRecordType> {
    let type_bytes: [u8; 2] = key.get(2..4)?.try_into().ok()?;
    Some(ControlRecordType::from_id(i16::from_be_bytes(type_bytes)))
}

/// Reads the coordinator epoch from an end-transaction marker's value (`None` if short).
pub fn parse_end_txn_coordinator_epoch(value: &[u8]) -> Option<i32> {
    let epoch: [u8; 4] = value.get(2..6)?.try_into().ok()?;
    Some(i32::from_be_bytes(epoch))
}

/// Everything a COMMIT or ABORT marker batch needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub commit: bool,
    pub coordinator_epoch: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub timestamp_ms: i64,
}

/// Builds the single-record control batch Kafka writes for a transaction marker.
pub fn end_txn_marker_batch(marker: &EndTxnMarker) -> Result<Vec<u8>, BuildError> {
    let kind = if marker.commit {
        ControlRecordType::Commit
    } else {
        ControlRecordType::Abort
    };
    let mut key = [0u8; 4];
    key[2..4].copy_from_slice(&kind.id().to_be_bytes());
    let mut value = [0u8; 6];
    value[2..6].copy_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let mut builder = BatchBuilder::new(BatchOptions {
        base_offset: marker.base_offset,
        partition_leader_epoch: marker.partition_leader_epoch,
        producer_id: marker.producer_id,
        producer_epoch: marker.producer_epoch,
        base_sequence: -1,
        transactional: true,
        control: true,
        compression: Compression::None,
        ..BatchOptions::default()
    });
    builder.push(&NewRecord {
        timestamp_ms: marker.timestamp_ms,
        key: Some(&key),
        value: Some(&value),
        headers: &[],
    })?;
    builder.build()
}
