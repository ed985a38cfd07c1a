//! Golden files: a log directory written once by `generate_golden` and committed under
//! `tests/golden/v1/`. Today's code must still read it (so data written by an older build
//! stays readable) and must write the very same bytes (so a format change cannot slip in
//! unnoticed). A deliberate format change adds `v2/` and keeps reading `v1/`.
//!
//! Regenerate (only for a deliberate, documented format change):
//! `FRESHET_WRITE_GOLDEN=1 cargo test -p freshet-log --test golden -- --ignored generate_golden`

#[path = "support/batch.rs"]
mod batch;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use freshet_log::{files, Clock, FlushPolicy, Log, LogConfig, OffsetQuery};

#[derive(Debug)]
struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        1_700_000_000_000
    }
}

const LEADER_EPOCH: i32 = 5;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1")
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 2048,
        index_interval_bytes: 256,
        retention_ms: -1,
        flush: FlushPolicy::EveryAppend,
        ..LogConfig::default()
    }
}

/// The producer batches of the scenario: varied record counts, sizes and timestamps (not
/// monotonic, to exercise the time index).
fn producer_batches() -> Vec<Vec<u8>> {
    (0..24u64)
        .map(|i| {
            let records = 1 + (i % 4) as usize;
            let ts = 1_600_000_000_000 + (i as i64 * 37 % 11) * 1000;
            batch::filled_batch(records, 40 + (i as usize * 53) % 300, i + 1, ts)
        })
        .collect()
}

/// Writes the scenario into `dir`: appends, a DeleteRecords, a clean close.
fn write_scenario(dir: &Path) {
    let log = Log::open_with_clock(dir, config(), Arc::new(FixedClock)).unwrap();
    for mut b in producer_batches() {
        log.append(&mut b, LEADER_EPOCH).unwrap();
    }
    log.delete_records_before(3).unwrap();
    log.close().unwrap();
}

/// The batches as stored, with the offsets the scenario assigns.
fn stored_batches() -> Vec<(i64, Vec<u8>)> {
    let mut offset = 0;
    producer_batches()
        .into_iter()
        .map(|b| {
            let stored = batch::with_offset(&b, offset, LEADER_EPOCH);
            let base = offset;
            offset += batch::record_count(&b);
            (base, stored)
        })
        .collect()
}

#[test]
#[ignore = "writes tests/golden/v1; run only for a deliberate format change"]
fn generate_golden() {
    if std::env::var_os("FRESHET_WRITE_GOLDEN").is_none() {
        return;
    }
    let dir = golden_dir();
    let _ = fs::remove_dir_all(&dir);
    write_scenario(&dir);
}

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn todays_writer_produces_the_golden_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    write_scenario(tmp.path());
    let golden = listing(&golden_dir());
    let today = listing(tmp.path());
    let names = |l: &[(String, Vec<u8>)]| l.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&today), names(&golden));
    for ((name, bytes), (_, golden_bytes)) in today.iter().zip(&golden) {
        assert!(bytes == golden_bytes, "{name} differs from the golden file");
    }
}

#[test]
fn golden_log_still_reads() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes) in listing(&golden_dir()) {
        fs::write(tmp.path().join(name), bytes).unwrap();
    }
    let log = Log::open(tmp.path(), config()).unwrap();
    assert!(log.open_stats().clean_shutdown);
    assert_eq!(log.open_stats().segments_recovered, 0);
    let stored = stored_batches();
    let (last_base, last) = stored.last().unwrap();
    assert_eq!(log.log_end_offset(), last_base + batch::record_count(last));
    assert_eq!(log.log_start_offset(), 3);
    assert!(
        log.segment_base_offsets().len() >= 3,
        "{:?}",
        log.segment_base_offsets()
    );
    for (base, bytes) in &stored {
        if *base + batch::record_count(bytes) <= 3 {
            continue;
        }
        let slice = log.read((*base).max(3), 1, None).unwrap().unwrap();
        assert_eq!(&slice.read_to_vec().unwrap(), bytes, "batch at {base}");
    }
    let max = log.offset_for(OffsetQuery::MaxTimestamp).unwrap().unwrap();
    assert_eq!(max.timestamp, 1_600_000_010_000 + 3);
    let at = log
        .offset_for(OffsetQuery::Timestamp(1_600_000_009_500))
        .unwrap()
        .unwrap();
    let first_match = stored
        .iter()
        .find(|(base, b)| {
            let max_ts = i64::from_be_bytes(b[35..43].try_into().unwrap());
            max_ts >= 1_600_000_009_500 && base + batch::record_count(b) > 3
        })
        .unwrap();
    assert_eq!(at.offset, first_match.0.max(3));
    // The offset index of the first segment is Kafka's: (relative last offset, position) BE.
    let index = fs::read(tmp.path().join(files::file_name(0, files::INDEX_SUFFIX))).unwrap();
    let seg = fs::read(tmp.path().join(files::file_name(0, files::LOG_SUFFIX))).unwrap();
    assert!(!index.is_empty());
    for entry in index.chunks(files::OFFSET_ENTRY_BYTES) {
        let rel = u32::from_be_bytes(entry[0..4].try_into().unwrap());
        let pos = u32::from_be_bytes(entry[4..8].try_into().unwrap()) as usize;
        let (base, bytes) = stored
            .iter()
            .find(|(_, b)| seg[pos..].starts_with(b))
            .unwrap();
        assert_eq!(i64::from(rel), base + batch::record_count(bytes) - 1);
    }
}
