//! Behaviour of one log: offsets, files, reads, timestamps, truncation, retention, recovery.

#[path = "support/batch.rs"]
mod batch;

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use batch::{build_batch, filled_batch, with_offset};
use freshet_log::{files, Clock, FlushPolicy, Log, LogConfig, LogError, OffsetQuery};

#[derive(Debug, Default)]
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 4096,
        index_interval_bytes: 256,
        flush: FlushPolicy::EveryAppend,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// Appends `n` batches of 3 records with ~200 bytes each; returns the stored bytes.
fn append_batches(log: &Log, n: usize, ts0: i64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut b = filled_batch(3, 200, i as u64 + 1, ts0 + i as i64 * 10);
            let info = log.append(&mut b, 7).unwrap();
            assert_eq!(b[0..8], info.base_offset.to_be_bytes());
            b
        })
        .collect()
}

fn read_all(log: &Log, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while let Some(slice) = log.read(offset, 1 << 20, None).unwrap() {
        let bytes = slice.read_to_vec().unwrap();
        offset = last_offset_of_slice(&bytes) + 1;
        out.extend_from_slice(&bytes);
    }
    out
}

fn last_offset_of_slice(bytes: &[u8]) -> i64 {
    let mut pos = 0;
    let mut last = -1;
    while pos < bytes.len() {
        let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap());
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize + 12;
        let delta = i32::from_be_bytes(bytes[pos + 23..pos + 27].try_into().unwrap());
        last = base + i64::from(delta);
        pos += len;
    }
    last
}

#[test]
fn offsets_are_dense_and_bytes_unchanged_except_offset_and_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let original = build_batch(&[b"a", b"bb", b"ccc"], 1000, 5);
    let mut b = original.clone();
    let info = log.append(&mut b, 42).unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.record_count),
        (0, 2, 3)
    );
    assert_eq!(b, with_offset(&original, 0, 42));
    let mut b2 = original.clone();
    assert_eq!(log.append(&mut b2, 42).unwrap().base_offset, 3);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.durable_offset(), 6, "fsync policy: durable on return");
    let slice = log.read(4, 1 << 20, None).unwrap().unwrap();
    assert_eq!(slice.first_offset, 3);
    assert_eq!(slice.read_to_vec().unwrap(), with_offset(&original, 3, 42));
}

#[test]
fn segments_roll_with_kafka_names_and_reads_cross_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let stored = append_batches(&log, 60, 1_000);
    let bases = log.segment_base_offsets();
    assert!(bases.len() > 3, "rolled: {bases:?}");
    for base in &bases {
        for suffix in [
            files::LOG_SUFFIX,
            files::INDEX_SUFFIX,
            files::TIME_INDEX_SUFFIX,
        ] {
            assert!(dir.path().join(files::file_name(*base, suffix)).exists());
        }
    }
    assert!(dir.path().join("00000000000000000000.log").exists());
    for seg in dir.path().read_dir().unwrap() {
        let len = seg.unwrap().metadata().unwrap().len();
        assert!(len <= 4096);
    }
    assert_eq!(read_all(&log, 0), stored.concat());
}

#[test]
fn sealed_segment_index_files_hold_kafka_entries() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let stored = append_batches(&log, 20, 5_000);
    let bases = log.segment_base_offsets();
    let index = fs::read(
        dir.path()
            .join(files::file_name(bases[0], files::INDEX_SUFFIX)),
    )
    .unwrap();
    let time = fs::read(
        dir.path()
            .join(files::file_name(bases[0], files::TIME_INDEX_SUFFIX)),
    )
    .unwrap();
    assert_eq!(index.len() % 8, 0);
    assert!(!index.is_empty());
    // Each offset entry: relative last offset of a batch, then its position in the .log file.
    let seg_log = fs::read(
        dir.path()
            .join(files::file_name(bases[0], files::LOG_SUFFIX)),
    )
    .unwrap();
    for e in index.chunks(8) {
        let rel = u32::from_be_bytes(e[0..4].try_into().unwrap());
        let pos = u32::from_be_bytes(e[4..8].try_into().unwrap()) as usize;
        let base = i64::from_be_bytes(seg_log[pos..pos + 8].try_into().unwrap());
        let delta = i32::from_be_bytes(seg_log[pos + 23..pos + 27].try_into().unwrap());
        assert_eq!(base + i64::from(delta), bases[0] + i64::from(rel));
    }
    // The final time entry holds the segment's max timestamp.
    let last = &time[time.len() - 12..];
    let ts = i64::from_be_bytes(last[0..8].try_into().unwrap());
    let seg_batches = seg_log.len() / stored[0].len();
    assert_eq!(ts, 5_000 + (seg_batches as i64 - 1) * 10 + 2);
}

#[test]
fn read_respects_max_bytes_first_batch_rule_and_upper_bound() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            segment_bytes_max: 1 << 20,
            ..small_config()
        },
    )
    .unwrap();
    let stored = append_batches(&log, 10, 0);
    let len = stored[0].len() as u32;
    let one = log.read(0, 1, None).unwrap().unwrap();
    assert_eq!(one.len_bytes, len, "first batch whole even over max_bytes");
    let two = log.read(3, 2 * len + len / 2, None).unwrap().unwrap();
    assert_eq!(
        two.read_to_vec().unwrap(),
        [stored[1].clone(), stored[2].clone()].concat()
    );
    let bounded = log.read(0, 1 << 20, Some(7)).unwrap().unwrap();
    assert_eq!(
        bounded.len_bytes,
        2 * len,
        "batch 6..8 reaches the bound and is excluded"
    );
    assert!(log.read(6, 1 << 20, Some(7)).unwrap().is_none());
    assert!(log.read(30, 1 << 20, None).unwrap().is_none(), "at log end");
    let err = log.read(31, 1, None).unwrap_err();
    assert!(matches!(err, LogError::OffsetOutOfRange { .. }));
    assert_eq!(err.kafka_error_code(), 1);
}

#[test]
fn list_offsets_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    append_batches(&log, 40, 10_000); // batch i: timestamps 10_000 + 10 i .. + 2
    let q = |query| log.offset_for(query).unwrap();
    assert_eq!(q(OffsetQuery::Earliest).unwrap().offset, 0);
    assert_eq!(q(OffsetQuery::Latest).unwrap().offset, 120);
    let max = q(OffsetQuery::MaxTimestamp).unwrap();
    assert_eq!((max.offset, max.timestamp), (119, 10_392));
    for (ts, expected) in [
        (0, Some(0)),
        (10_002, Some(0)),
        (10_003, Some(3)),
        (10_150, Some(45)),
        (10_392, Some(117)),
        (10_393, None),
    ] {
        let got = q(OffsetQuery::Timestamp(ts)).map(|r| r.offset);
        assert_eq!(got, expected, "timestamp {ts}");
    }
    let found = q(OffsetQuery::Timestamp(10_150)).unwrap();
    let batch = found.batch.unwrap().read_to_vec().unwrap();
    assert_eq!(i64::from_be_bytes(batch[0..8].try_into().unwrap()), 45);
}

#[test]
fn truncate_to_drops_containing_batch_and_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let stored = append_batches(&log, 40, 0);
    let segments_before = log.segment_base_offsets().len();
    assert_eq!(
        log.truncate_to(31).unwrap(),
        30,
        "offset 31 is inside batch 30..32"
    );
    assert_eq!(log.log_end_offset(), 30);
    assert!(log.segment_base_offsets().len() < segments_before);
    assert_eq!(read_all(&log, 0), stored[..10].concat());
    let mut b = filled_batch(3, 200, 99, 0);
    assert_eq!(log.append(&mut b, 8).unwrap().base_offset, 30);
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 33);
    assert_eq!(read_all(&log, 0), [stored[..10].concat(), b].concat());
    assert_eq!(log.truncate_to(0).unwrap(), 0);
    assert_eq!(log.segment_base_offsets(), vec![0]);
    assert!(log.read(0, 100, None).unwrap().is_none());
}

#[test]
fn delete_records_moves_start_durably() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    append_batches(&log, 40, 0);
    let first_segments = log.segment_base_offsets();
    assert_eq!(log.delete_records_before(50).unwrap(), 50);
    assert_eq!(log.log_start_offset(), 50);
    assert!(log.segment_base_offsets()[0] > 0 && log.segment_base_offsets()[0] <= 50);
    assert!(log.segment_base_offsets().len() < first_segments.len());
    assert!(matches!(
        log.read(10, 100, None),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.read(50, 1, None).unwrap().unwrap().first_offset, 48);
    assert_eq!(
        log.offset_for(OffsetQuery::Timestamp(0))
            .unwrap()
            .unwrap()
            .offset,
        50
    );
    assert!(log.delete_records_before(500).is_err());
    drop(log); // no close: the checkpoint alone must keep the start offset
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 50);
}

#[test]
fn retention_by_bytes_keeps_the_active_segment_and_by_time_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 8192,
        ..small_config()
    };
    let log = Log::open(dir.path(), config).unwrap();
    append_batches(&log, 60, 1_000);
    let before = log.size_bytes();
    let out = log.enforce_retention(0).unwrap();
    assert!(out.segments_deleted > 0);
    assert!(log.size_bytes() < before && log.size_bytes() >= 8192 - 4096);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    let fetched = log
        .read(log.log_start_offset(), 100, None)
        .unwrap()
        .unwrap();
    assert_eq!(fetched.first_offset, log.log_start_offset());
    drop(log);

    let config = LogConfig {
        retention_ms: 100,
        ..small_config()
    };
    let log = Log::open(dir.path(), config).unwrap();
    let out = log.enforce_retention(1_000_000).unwrap();
    assert!(out.segments_deleted > 0);
    // Every record is past retention.ms, the active segment's too (Kafka's rule): an empty
    // segment at the log end is all that is left, and appends go on from there.
    assert_eq!(log.segment_base_offsets(), vec![180]);
    assert_eq!(log.log_start_offset(), 180);
    assert_eq!(log.log_end_offset(), 180);
    assert!(log.read(180, 100, None).unwrap().is_none());
    append_batches(&log, 1, 1_000_000);
    assert_eq!(log.log_end_offset(), 183);
    assert_eq!(
        log.enforce_retention(1_000_000).unwrap().segments_deleted,
        0
    );
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (180, 183));
}

#[test]
fn deleted_segment_stays_readable_through_a_held_slice() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            retention_bytes: 0,
            ..small_config()
        },
    )
    .unwrap();
    let stored = append_batches(&log, 30, 0);
    let slice = log.read(0, 100, None).unwrap().unwrap();
    assert!(log.enforce_retention(0).unwrap().segments_deleted > 0);
    assert!(!dir.path().join("00000000000000000000.log").exists());
    assert_eq!(slice.read_to_vec().unwrap(), stored[0]);
}

#[test]
fn segment_ms_rolls_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::default());
    let config = LogConfig {
        segment_bytes_max: 1 << 20,
        segment_ms: 1000,
        ..small_config()
    };
    let log = Log::open_with_clock(dir.path(), config, clock.clone()).unwrap();
    append_batches(&log, 3, 0);
    clock.0.store(999, Ordering::SeqCst);
    append_batches(&log, 1, 0);
    assert_eq!(log.segment_base_offsets(), vec![0]);
    clock.0.store(1000, Ordering::SeqCst);
    append_batches(&log, 1, 0);
    assert_eq!(log.segment_base_offsets(), vec![0, 12]);
}

#[test]
fn full_index_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes_max: 1 << 20,
        segment_index_bytes_max: 24, // 3 offset entries, 2 time entries
        index_interval_bytes: 1,
        ..small_config()
    };
    let log = Log::open(dir.path(), config).unwrap();
    append_batches(&log, 10, 0);
    assert!(
        log.segment_base_offsets().len() >= 3,
        "{:?}",
        log.segment_base_offsets()
    );
}

#[test]
fn invalid_input_is_an_error_value() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let mut bad = build_batch(&[b"x"], 0, 0);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let err = log.append(&mut bad, 0).unwrap_err();
    assert_eq!(err.kafka_error_code(), 2, "{err}");
    let mut big = filled_batch(1, 5000, 1, 0);
    let err = log.append(&mut big, 0).unwrap_err();
    assert!(matches!(err, LogError::BatchTooLarge { .. }));
    assert_eq!(err.kafka_error_code(), 18);
    assert!(Log::open(
        dir.path(),
        LogConfig {
            segment_bytes_max: 10,
            ..small_config()
        }
    )
    .is_err());
    log.close().unwrap();
    let mut ok = build_batch(&[b"x"], 0, 0);
    let err = log.append(&mut ok, 0).unwrap_err();
    assert!(matches!(err, LogError::Closed));
    assert_eq!(err.kafka_error_code(), 56);
}

#[test]
fn clean_close_reopens_without_scanning() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let stored = append_batches(&log, 60, 0);
    log.close().unwrap();
    assert!(dir.path().join(files::CLEAN_SHUTDOWN_FILE).exists());
    let log = Log::open(dir.path(), small_config()).unwrap();
    let stats = log.open_stats().clone();
    assert!(stats.clean_shutdown);
    assert_eq!(stats.segments_recovered, 0);
    assert!(
        stats.bytes_scanned < 1024,
        "only the tail after the last index entry: {stats:?}"
    );
    // Reads leave the marker: the files are still what the clean shutdown left.
    assert_eq!(log.log_end_offset(), 180);
    assert_eq!(read_all(&log, 0), stored.concat());
    assert_eq!(
        log.offset_for(OffsetQuery::MaxTimestamp)
            .unwrap()
            .unwrap()
            .timestamp,
        592
    );
    assert!(dir.path().join(files::CLEAN_SHUTDOWN_FILE).exists());
    // Dropped without close (a crash): still a clean reopen.
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(log.open_stats().clean_shutdown);
    // The first append removes it before writing.
    append_batches(&log, 1, 180);
    assert!(
        !dir.path().join(files::CLEAN_SHUTDOWN_FILE).exists(),
        "marker consumed by the first change"
    );
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!log.open_stats().clean_shutdown);
    assert_eq!(log.log_end_offset(), 183);
}

/// Every change to the segment files after a clean open removes the marker first:
/// truncation, DeleteRecords that deletes a segment, retention.
#[test]
fn first_change_after_a_clean_open_removes_the_marker() {
    type Change = (&'static str, fn(&Log));
    let changes: [Change; 3] = [
        ("truncate", |log| {
            log.truncate_to(30).unwrap();
        }),
        ("delete records", |log| {
            log.delete_records_before(150).unwrap();
        }),
        ("reset", |log| log.truncate_fully_and_start_at(500).unwrap()),
    ];
    for (name, change) in changes {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_config()).unwrap();
        append_batches(&log, 60, 0);
        log.close().unwrap();
        let log = Log::open(dir.path(), small_config()).unwrap();
        assert!(
            dir.path().join(files::CLEAN_SHUTDOWN_FILE).exists(),
            "{name}"
        );
        change(&log);
        assert!(
            !dir.path().join(files::CLEAN_SHUTDOWN_FILE).exists(),
            "{name}"
        );
    }
}

/// Scaled version of "10 GB in 100 segments": 100 segments; after an unclean stop only the
/// segments past the recovery point are read.
#[test]
fn unclean_open_scans_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::Never,
        ..small_config()
    };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    while log.segment_base_offsets().len() < 100 {
        append_batches(&log, 5, 0);
    }
    let active_bytes = fs::metadata(dir.path().join(files::file_name(
        *log.segment_base_offsets().last().unwrap(),
        files::LOG_SUFFIX,
    )))
    .unwrap()
    .len();
    let total = log.size_bytes();
    log.flush_sealed().unwrap(); // what maintenance does; moves the recovery point
    drop(log); // crash-like: no clean marker
    let log = Log::open(dir.path(), config).unwrap();
    let stats = log.open_stats();
    assert!(!stats.clean_shutdown);
    assert_eq!(stats.segments, 100);
    assert_eq!(stats.segments_recovered, 1, "{stats:?}");
    assert_eq!(stats.bytes_scanned, active_bytes);
    assert!(stats.bytes_scanned * 50 < total);
}

#[test]
fn torn_tail_is_truncated_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let stored = append_batches(&log, 5, 0);
    let active = files::file_name(
        *log.segment_base_offsets().last().unwrap(),
        files::LOG_SUFFIX,
    );
    drop(log);
    let path = dir.path().join(&active);
    let mut bytes = fs::read(&path).unwrap();
    let half = stored[4].len() / 2;
    bytes.truncate(bytes.len() - half); // the last batch is half written
    bytes.extend_from_slice(&[0u8; 100]); // and followed by zeros, as after a power cut
    fs::write(&path, &bytes).unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(
        log.open_stats().bytes_truncated as usize,
        stored[4].len() - half + 100
    );
    assert_eq!(read_all(&log, 0), stored[..4].concat());
    let mut b = filled_batch(3, 200, 1234, 0);
    assert_eq!(log.append(&mut b, 1).unwrap().base_offset, 12);
}

#[test]
fn corrupt_middle_batch_cuts_everything_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            segment_bytes_max: 1 << 20,
            ..small_config()
        },
    )
    .unwrap();
    let stored = append_batches(&log, 10, 0);
    drop(log);
    let path = dir.path().join("00000000000000000000.log");
    let mut bytes = fs::read(&path).unwrap();
    let pos = stored[0].len() * 6 + 100;
    bytes[pos] ^= 1; // a flipped bit inside batch 6's records
    fs::write(&path, &bytes).unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), 18);
    assert_eq!(read_all(&log, 0), stored[..6].concat());
}

#[test]
fn damaged_or_missing_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let stored = append_batches(&log, 40, 0);
    let bases = log.segment_base_offsets();
    log.close().unwrap();
    fs::remove_file(
        dir.path()
            .join(files::file_name(bases[0], files::INDEX_SUFFIX)),
    )
    .unwrap();
    fs::write(
        dir.path()
            .join(files::file_name(bases[1], files::TIME_INDEX_SUFFIX)),
        [1u8; 13],
    )
    .unwrap();
    let index1 = dir
        .path()
        .join(files::file_name(bases[1], files::INDEX_SUFFIX));
    let good_index1 = fs::read(&index1).unwrap();
    fs::write(&index1, [0xffu8; 16]).unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.open_stats().segments_recovered, 2);
    assert_eq!(
        fs::read(&index1).unwrap(),
        good_index1,
        "rebuilt identically"
    );
    assert_eq!(read_all(&log, 0), stored.concat());
    for offset in [0, 5, 17, 50, 119] {
        let slice = log.read(offset, 1, None).unwrap().unwrap();
        assert_eq!(slice.first_offset, offset - offset % 3);
    }
}

#[test]
fn leftovers_of_interrupted_deletes_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    append_batches(&log, 5, 0);
    drop(log);
    fs::write(dir.path().join("00000000000000000099.log.deleted"), b"junk").unwrap();
    fs::write(dir.path().join("00000000000000000777.index"), b"").unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!dir.path().join("00000000000000000099.log.deleted").exists());
    assert!(!dir.path().join("00000000000000000777.index").exists());
    assert_eq!(log.log_end_offset(), 15);
}

#[test]
fn concurrent_appenders_share_fsyncs_and_get_distinct_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        Log::open(
            dir.path(),
            LogConfig {
                segment_bytes_max: 1 << 20,
                ..small_config()
            },
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        let mut b = filled_batch(1, 100, t * 1000 + i, 0);
                        let info = log.append(&mut b, 0).unwrap();
                        assert!(log.durable_offset() > info.last_offset);
                        (info.base_offset, b)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<(i64, Vec<u8>)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    let offsets: Vec<i64> = all.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (0..400).collect::<Vec<_>>());
    // A round starts only for an append not yet covered, so there are never more rounds than
    // appends (with overlapping appenders, usually far fewer).
    let rounds = log.flush_rounds();
    assert!((1..=400).contains(&rounds), "{rounds} flush rounds");
    let bytes: Vec<u8> = all.into_iter().flat_map(|(_, b)| b).collect();
    assert_eq!(read_all(&log, 0), bytes);
}

#[test]
fn interval_and_never_policies() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::default());
    let config = LogConfig {
        flush: FlushPolicy::Interval {
            flush_messages: Some(7),
            flush_ms: Some(1000),
        },
        ..small_config()
    };
    let log = Log::open_with_clock(dir.path().join("interval"), config, clock.clone()).unwrap();
    append_batches(&log, 2, 0);
    assert_eq!(log.durable_offset(), 0, "6 records < flush_messages");
    append_batches(&log, 1, 0);
    assert_eq!(log.durable_offset(), 9, "9 records >= 7: flushed");
    assert_eq!(log.flush_rounds(), 1);
    append_batches(&log, 1, 0);
    assert_eq!(log.durable_offset(), 9);
    log.run_maintenance(500).unwrap();
    assert_eq!(log.durable_offset(), 9);
    log.run_maintenance(1000).unwrap();
    assert_eq!(log.durable_offset(), 12, "flush_ms elapsed");
    assert_eq!(log.flush_rounds(), 2);

    let config = LogConfig {
        flush: FlushPolicy::Never,
        ..small_config()
    };
    let log = Log::open(dir.path().join("never"), config).unwrap();
    append_batches(&log, 30, 0);
    assert_eq!(log.durable_offset(), 0);
    log.run_maintenance(0).unwrap();
    let active_base = *log.segment_base_offsets().last().unwrap();
    assert_eq!(
        log.durable_offset(),
        active_base,
        "maintenance flushed sealed segments"
    );
    let rp = fs::read_to_string(dir.path().join("never").join(files::RECOVERY_POINT_FILE)).unwrap();
    assert_eq!(rp, format!("0\n{active_base}\n"));
}

#[test]
fn maintenance_task_runs_in_background() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        Log::open(
            dir.path(),
            LogConfig {
                retention_bytes: 0,
                ..small_config()
            },
        )
        .unwrap(),
    );
    append_batches(&log, 30, 0);
    let task = freshet_log::MaintenanceTask::spawn(log.clone(), 10);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while (log.segment_base_offsets().len() > 1 || task.runs() == 0)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(log.segment_base_offsets().len(), 1);
    assert!(task.runs() >= 1);
    assert_eq!(task.last_error(), None);
    drop(task);
}

#[test]
fn empty_directory_opens_at_zero_and_checkpoint_is_text() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("p-0"), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert!(log.offset_for(OffsetQuery::MaxTimestamp).unwrap().is_none());
    append_batches(&log, 1, 0);
    log.close().unwrap();
    let text = fs::read_to_string(dir.path().join("p-0").join(files::RECOVERY_POINT_FILE)).unwrap();
    assert_eq!(text, "0\n3\n");
    assert!(Path::new(&dir.path().join("p-0").join(files::LOG_START_OFFSET_FILE)).exists());
}

#[test]
fn set_config_changes_retention_and_rolls_of_an_open_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            segment_bytes_max: 1 << 20,
            ..small_config()
        },
    )
    .unwrap();
    append_batches(&log, 20, 0);
    assert_eq!(log.segment_base_offsets(), vec![0]);
    log.set_config(small_config()).unwrap();
    assert_eq!(log.config().segment_bytes_max, 4096);
    append_batches(&log, 20, 0);
    assert!(
        log.segment_base_offsets().len() > 1,
        "smaller segment_bytes_max rolls"
    );
    assert_eq!(log.enforce_retention(0).unwrap().segments_deleted, 0);
    log.set_config(LogConfig {
        retention_bytes: 0,
        ..small_config()
    })
    .unwrap();
    assert!(log.enforce_retention(0).unwrap().segments_deleted > 0);
    assert_eq!(log.segment_base_offsets().len(), 1);
    let bad = LogConfig {
        retention_ms: -5,
        ..small_config()
    };
    assert!(matches!(
        log.set_config(bad),
        Err(LogError::InvalidConfig { .. })
    ));
    assert_eq!(
        log.config().retention_bytes,
        0,
        "a rejected config changes nothing"
    );
}

#[test]
fn clean_marker_with_damaged_tail_falls_back_to_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let stored = append_batches(&log, 10, 0);
    let last = *log.segment_base_offsets().last().unwrap();
    log.close().unwrap();
    let path = dir.path().join(files::file_name(last, files::LOG_SUFFIX));
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&stored[0][..30]);
    fs::write(&path, bytes).unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(log.open_stats().clean_shutdown);
    assert_eq!(log.open_stats().segments_recovered, 1);
    assert_eq!(log.open_stats().bytes_truncated, 30);
    assert_eq!(read_all(&log, 0), stored.concat());
}

#[test]
fn readers_see_whole_batches_while_appends_roll_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::Never,
        ..small_config()
    };
    let log = Arc::new(Log::open(dir.path(), config).unwrap());
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || append_batches(&log, 400, 0))
    };
    let mut offset = 0;
    let mut seen = Vec::new();
    while offset < 1200 {
        match log.read(offset, 1000, None).unwrap() {
            Some(slice) => {
                let bytes = slice.read_to_vec().unwrap();
                offset = last_offset_of_slice(&bytes) + 1;
                seen.extend_from_slice(&bytes);
            }
            None => std::thread::yield_now(),
        }
    }
    let stored = writer.join().unwrap();
    assert_eq!(seen, stored.concat());
}

/// A brand-new log costs no fsync at open (no recovery-point file yet); its first flush makes
/// it durable, and a log abandoned before any append (a crash) reopens empty.
#[test]
fn a_fresh_log_is_cheap_to_open_and_reopens_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("fresh"), small_config()).unwrap();
    assert!(!dir.path().join("fresh/recovery-point.checkpoint").exists());
    drop(log); // no close: as after kill -9
    let log = Log::open(dir.path().join("fresh"), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let stored = append_batches(&log, 3, 1_000);
    drop(log);
    let log = Log::open(dir.path().join("fresh"), small_config()).unwrap();
    assert_eq!(read_all(&log, 0), stored.concat());
    assert!(dir.path().join("fresh/recovery-point.checkpoint").exists());
}
