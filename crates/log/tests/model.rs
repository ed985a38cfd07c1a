//! Property test: random appends, reads, timestamp lookups, truncations, DeleteRecords,
//! retention and reopens (clean and crash-like) against an in-memory model of the log.

#[path = "support/batch.rs"]
mod batch;

use freshet_log::{FlushPolicy, Log, LogConfig, LogError, OffsetQuery};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        payload_bytes: usize,
        base_timestamp: i64,
    },
    Read {
        pick: u16,
        max_bytes: u32,
        bounded: Option<u16>,
    },
    ByTimestamp {
        timestamp: i64,
    },
    Truncate {
        pick: u16,
    },
    DeleteRecords {
        pick: u16,
    },
    Retention,
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..5, 0usize..400, 0i64..1000).prop_map(|(records, payload_bytes, base_timestamp)| {
            Op::Append { records, payload_bytes, base_timestamp }
        }),
        4 => (any::<u16>(), 1u32..3000, proptest::option::of(any::<u16>()))
            .prop_map(|(pick, max_bytes, bounded)| Op::Read { pick, max_bytes, bounded }),
        2 => (0i64..1100).prop_map(|timestamp| Op::ByTimestamp { timestamp }),
        1 => any::<u16>().prop_map(|pick| Op::Truncate { pick }),
        1 => any::<u16>().prop_map(|pick| Op::DeleteRecords { pick }),
        1 => Just(Op::Retention),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

#[derive(Debug, Clone)]
struct Stored {
    base: i64,
    last: i64,
    max_timestamp: i64,
    bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<Stored>,
    log_start_offset: i64,
}

impl Model {
    fn log_end_offset(&self) -> i64 {
        self.batches
            .last()
            .map_or(self.log_start_offset, |b| b.last + 1)
    }

    /// An offset in `[log start, log end]` chosen by `pick`.
    fn pick(&self, pick: u16) -> i64 {
        let span = self.log_end_offset() - self.log_start_offset + 1;
        self.log_start_offset + i64::from(pick) % span
    }

    fn containing(&self, offset: i64) -> Option<usize> {
        self.batches.iter().position(|b| b.last >= offset)
    }
}

/// Retention (when a test calls it) keeps about 4 KB.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 1500,
        index_interval_bytes: 200,
        retention_bytes: 4000,
        retention_ms: -1,
        flush: FlushPolicy::Never,
        ..LogConfig::default()
    }
}

fn check_read(log: &Log, model: &Model, offset: i64, max_bytes: u32, bound: Option<i64>) {
    let got = log.read(offset, max_bytes, bound).unwrap();
    let limit = bound.unwrap_or(i64::MAX).min(model.log_end_offset());
    let first = model
        .containing(offset)
        .filter(|&i| model.batches[i].last < limit);
    let (Some(slice), Some(first)) = (&got, first) else {
        assert!(
            got.is_none() && first.is_none(),
            "read {offset}: got {got:?}, model {first:?}"
        );
        return;
    };
    let bytes = slice.read_to_vec().unwrap();
    let mut expected = Vec::new();
    let mut count = 0;
    for b in &model.batches[first..] {
        if expected.len() >= bytes.len() {
            break;
        }
        assert!(b.last < limit, "batch {} reaches bound {limit}", b.base);
        expected.extend_from_slice(&b.bytes);
        count += 1;
    }
    assert_eq!(
        bytes, expected,
        "read {offset} max {max_bytes}: whole batches in order"
    );
    assert!(
        count == 1 || bytes.len() <= max_bytes as usize,
        "only the first batch may exceed max_bytes"
    );
}

fn check_timestamp(log: &Log, model: &Model, timestamp: i64) {
    let got = log
        .offset_for(OffsetQuery::Timestamp(timestamp))
        .unwrap()
        .map(|r| r.offset);
    let lso = model.log_start_offset;
    let expected = model
        .batches
        .iter()
        .find(|b| b.last >= lso && b.max_timestamp >= timestamp)
        .map(|b| b.base.max(lso));
    assert_eq!(got, expected, "first offset with timestamp >= {timestamp}");
}

fn apply(log: &mut Log, model: &mut Model, op: Op, dir: &std::path::Path, seq: &mut u64) {
    match op {
        Op::Append {
            records,
            payload_bytes,
            base_timestamp,
        } => {
            *seq += 1;
            let mut b = batch::filled_batch(records, payload_bytes, *seq, base_timestamp);
            let info = log.append(&mut b, 3).unwrap();
            assert_eq!(info.base_offset, model.log_end_offset());
            let max_timestamp = base_timestamp + records as i64 - 1;
            model.batches.push(Stored {
                base: info.base_offset,
                last: info.last_offset,
                max_timestamp,
                bytes: b,
            });
        }
        Op::Read {
            pick,
            max_bytes,
            bounded,
        } => {
            let bound = bounded.map(|p| model.pick(p));
            check_read(log, model, model.pick(pick), max_bytes, bound);
            let below = model.log_start_offset - 1;
            if below >= 0 {
                assert!(matches!(
                    log.read(below, 10, None),
                    Err(LogError::OffsetOutOfRange { .. })
                ));
            }
        }
        Op::ByTimestamp { timestamp } => check_timestamp(log, model, timestamp),
        Op::Truncate { pick } => {
            let target = model.pick(pick);
            let new_end = log.truncate_to(target).unwrap();
            model.batches.retain(|b| b.last < target);
            if model
                .batches
                .last()
                .is_some_and(|b| b.last < model.log_start_offset)
            {
                model.batches.clear(); // nothing visible left: restart at the start offset
            }
            assert_eq!(new_end, model.log_end_offset());
        }
        Op::DeleteRecords { pick } => {
            let target = model.pick(pick);
            model.log_start_offset = model.log_start_offset.max(target);
            assert_eq!(
                log.delete_records_before(target).unwrap(),
                model.log_start_offset
            );
        }
        Op::Retention => {
            log.enforce_retention(0).unwrap();
            let lso = log.log_start_offset();
            assert!(lso >= model.log_start_offset);
            let on_boundary =
                lso == model.log_end_offset() || model.batches.iter().any(|b| b.base == lso);
            assert!(
                lso == model.log_start_offset || on_boundary,
                "retention moves the start to a segment base"
            );
            model.log_start_offset = lso;
            model.batches.retain(|b| b.last >= lso);
        }
        Op::Reopen { clean } => {
            if clean {
                log.close().unwrap();
            }
            *log = Log::open(dir, config()).unwrap();
        }
    }
    assert_eq!(log.log_end_offset(), model.log_end_offset());
    assert_eq!(log.log_start_offset(), model.log_start_offset);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), config()).unwrap();
        let mut model = Model::default();
        let mut seq = 0;
        for op in ops {
            apply(&mut log, &mut model, op, dir.path(), &mut seq);
        }
        // Everything still readable, whole, from the start.
        let mut offset = model.log_start_offset;
        while offset < model.log_end_offset() {
            check_read(&log, &model, offset, 700, None);
            let slice = log.read(offset, 700, None).unwrap().unwrap();
            let bytes = slice.read_to_vec().unwrap();
            let i = model.containing(offset).unwrap();
            let mut len = 0;
            let mut j = i;
            while len < bytes.len() { len += model.batches[j].bytes.len(); j += 1; }
            offset = model.batches[j - 1].last + 1;
        }
    }
}
