//! Rebuilding a partition's idempotent-producer state from its log when the partition opens.
//!
//! Only the tail is replayed: at most the last [`REPLAY_OFFSETS_MAX`] offsets, within the
//! active segment and the one before it, so opening a partition reads a bounded amount. A
//! producer whose last batch lies further back is forgotten, which KIP-360 makes harmless
//! (an unknown producer may continue at any sequence); what is lost is duplicate detection
//! for retries of batches that old, and clients retry only their last five in-flight
//! batches, within `delivery.timeout.ms`.
//!
//! A clean shutdown writes the whole table to [`SNAPSHOT_FILE`] (as Kafka writes its
//! `.snapshot` files); the next open loads it and replays only the batches after its end
//! offset, so no producer is forgotten across a clean restart however old its last batch.

use freshet_log::Log;
use freshet_txn::{ProducerBatch, ProducerStateConfig, ProducerStateTable};
use std::io::Write;
use std::path::Path;

/// The producer-state snapshot in a partition directory (format: docs/design/txn.md).
pub const SNAPSHOT_FILE: &str = "producer-state.snapshot";

/// Bytes read per step of the replay: whole batches, the first one even when larger.
const REPLAY_READ_BYTES: u32 = 1024 * 1024;

/// Segments at the end of the log replayed on open.
const REPLAY_SEGMENTS: usize = 2;

/// Offsets at the end of the log replayed on open.
pub const REPLAY_OFFSETS_MAX: i64 = 100_000;

/// The producer state at the end of the log: the snapshot if one matches the log, then the
/// batches after it; else the log's tail alone.
pub fn rebuild(log: &Log) -> ProducerStateTable {
    if let Some((mut table, end_offset)) = load_snapshot(log) {
        table.replay(batches_from(log, end_offset));
        return table;
    }
    let mut table = ProducerStateTable::new(ProducerStateConfig::default());
    table.replay(tail_batches(log));
    table
}

/// The snapshot, when it decodes and its end offset lies within the log (a log truncated
/// below it, or cleaned past it, makes it useless).
fn load_snapshot(log: &Log) -> Option<(ProducerStateTable, i64)> {
    let bytes = std::fs::read(log.dir().join(SNAPSHOT_FILE)).ok()?;
    match ProducerStateTable::decode_snapshot(ProducerStateConfig::default(), &bytes) {
        Ok(s) if (log.log_start_offset()..=log.log_end_offset()).contains(&s.end_offset) => {
            Some((s.table, s.end_offset))
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(dir = %log.dir().display(), error = %e, "ignoring producer snapshot");
            None
        }
    }
}

/// Writes the snapshot atomically (temporary file, fsync, rename) for the log's end offset.
pub fn write_snapshot(
    dir: &Path,
    table: &ProducerStateTable,
    end_offset: i64,
) -> std::io::Result<()> {
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&table.encode_snapshot(end_offset))?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// The offset the replay starts at: within the last [`REPLAY_SEGMENTS`] segments and the
/// last [`REPLAY_OFFSETS_MAX`] offsets.
fn replay_start_offset(log: &Log) -> i64 {
    let bases = log.segment_base_offsets();
    let start = bases
        .len()
        .checked_sub(REPLAY_SEGMENTS)
        .and_then(|i| bases.get(i))
        .or(bases.first())
        .copied()
        .unwrap_or(0);
    start
        .max(log.log_end_offset().saturating_sub(REPLAY_OFFSETS_MAX))
        .max(log.log_start_offset())
}

/// Headers of the batches from [`replay_start_offset`] to the end, with their base offsets.
/// Stops quietly at the first unreadable range: replay is best effort by design.
fn tail_batches(log: &Log) -> Vec<(ProducerBatch, i64)> {
    batches_from(log, replay_start_offset(log))
}

/// Headers of the batches from `offset` to the end of the log, with their base offsets.
fn batches_from(log: &Log, start_offset: i64) -> Vec<(ProducerBatch, i64)> {
    let mut out = Vec::new();
    let mut offset = start_offset;
    let end = log.log_end_offset();
    while offset < end {
        let bytes = match log.read(offset, REPLAY_READ_BYTES, None) {
            Ok(Some(slice)) => match slice.read_to_vec() {
                Ok(bytes) => bytes,
                Err(_) => break,
            },
            _ => break,
        };
        let before = offset;
        for (_, header) in freshet_records::split_batches(&bytes).map_while(Result::ok) {
            if header.last_offset() < offset {
                continue;
            }
            out.push((ProducerBatch::from_header(&header), header.base_offset));
            offset = header.last_offset().saturating_add(1);
        }
        if offset == before {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_log::LogConfig;
    use freshet_records::{BatchBuilder, BatchOptions, NewRecord};

    fn batch(records: usize, producer_id: i64, base_sequence: i32) -> Vec<u8> {
        let mut builder = BatchBuilder::new(BatchOptions {
            producer_id,
            producer_epoch: if producer_id >= 0 { 0 } else { -1 },
            base_sequence,
            ..BatchOptions::default()
        });
        for _ in 0..records {
            let record = NewRecord {
                timestamp_ms: 1,
                key: None,
                value: None,
                headers: &[],
            };
            builder.push(&record).expect("push");
        }
        builder.build().expect("build")
    }

    #[test]
    fn replay_reads_the_tail_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), LogConfig::default()).expect("open");
        log.append(&mut batch(2, 7, 0), 0).expect("append");
        log.append(&mut batch(1, 8, 0), 0).expect("append");
        let table = rebuild(&log);
        assert_eq!(table.producer_ids().collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(table.entry(7).map(|e| e.last_sequence()), Some(1));

        // Exactly enough offsets after them that the window starts at producer 8's batch
        // (offset 2): producer 7 (offsets 0-1) falls out.
        let filler = usize::try_from(REPLAY_OFFSETS_MAX - 2).expect("fits");
        log.append(&mut batch(filler, -1, -1), 0).expect("append");
        log.append(&mut batch(1, 9, 4), 0).expect("append");
        let table = rebuild(&log);
        assert_eq!(table.producer_ids().collect::<Vec<_>>(), vec![8, 9]);
        assert_eq!(table.entry(9).map(|e| e.last_sequence()), Some(4));
    }

    #[test]
    fn a_snapshot_keeps_producers_beyond_the_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), LogConfig::default()).expect("open");
        log.append(&mut batch(2, 7, 0), 0).expect("append");
        write_snapshot(dir.path(), &rebuild(&log), log.log_end_offset()).expect("snapshot");
        let filler = usize::try_from(REPLAY_OFFSETS_MAX).expect("fits");
        log.append(&mut batch(filler, -1, -1), 0).expect("append");
        log.append(&mut batch(1, 9, 4), 0).expect("append");
        // Producer 7 is beyond the tail window, but the snapshot remembers it, and the batch
        // after the snapshot is replayed.
        let table = rebuild(&log);
        assert_eq!(table.producer_ids().collect::<Vec<_>>(), vec![7, 9]);
        // A snapshot whose end offset is past the log's end is ignored.
        let mut far = ProducerStateTable::new(ProducerStateConfig::default());
        far.replay([(
            ProducerBatch::from_header(
                &freshet_records::BatchHeader::parse(&batch(1, 5, 0)).unwrap(),
            ),
            0,
        )]);
        write_snapshot(dir.path(), &far, log.log_end_offset() + 10).expect("snapshot");
        assert_eq!(rebuild(&log).producer_ids().collect::<Vec<_>>(), vec![9]);
        // A corrupt one too.
        std::fs::write(dir.path().join(SNAPSHOT_FILE), b"garbage").unwrap();
        assert_eq!(rebuild(&log).producer_ids().collect::<Vec<_>>(), vec![9]);
    }
}
