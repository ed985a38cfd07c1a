//! Rebuilding a partition's idempotent-producer state from its log when the partition opens.
//!
//! Only the tail is replayed: at most the last [`REPLAY_OFFSETS_MAX`] offsets, within the
//! active segment and the one before it, so opening a partition reads a bounded amount. A
//! producer whose last batch lies further back is forgotten, which KIP-360 makes harmless
//! (an unknown producer may continue at any sequence); what is lost is duplicate detection
//! for retries of batches that old, and clients retry only their last five in-flight
//! batches, within `delivery.timeout.ms`. (Kafka instead loads a producer snapshot written
//! at shutdown and replays from it; `freshet-txn` has the snapshot format, the partition
//! registry does not write it yet.)

use freshet_log::Log;
use freshet_txn::{ProducerBatch, ProducerStateConfig, ProducerStateTable};

/// Bytes read per step of the replay: whole batches, the first one even when larger.
const REPLAY_READ_BYTES: u32 = 1024 * 1024;

/// Segments at the end of the log replayed on open.
const REPLAY_SEGMENTS: usize = 2;

/// Offsets at the end of the log replayed on open.
pub const REPLAY_OFFSETS_MAX: i64 = 100_000;

/// The producer state the log's tail implies.
pub fn rebuild(log: &Log) -> ProducerStateTable {
    let mut table = ProducerStateTable::new(ProducerStateConfig::default());
    table.replay(tail_batches(log));
    table
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
    let mut out = Vec::new();
    let mut offset = replay_start_offset(log);
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
}
