//! Disk errors injected through `Log::disk_faults`: each comes back as an error value of the
//! right kind (never a panic), nothing that was not acknowledged is served, the log goes
//! offline after a write-side error, and reopening recovers every acknowledged batch byte for
//! byte with any torn tail cut off.

#[path = "support/batch.rs"]
mod batch;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Barrier};

use batch::filled_batch;
use freshet_log::{
    files, kafka_error, Fault, FileOp, FlushPolicy, Log, LogConfig, LogError, OffsetQuery, EIO,
    ENOSPC,
};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 4096,
        index_interval_bytes: 256,
        flush: FlushPolicy::EveryAppend,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// Batch number `i` of a test: 3 records, about 200 bytes of values, timestamps 10 ms apart.
fn batch(i: usize) -> Vec<u8> {
    filled_batch(3, 200, i as u64 + 1, 1_000 + i as i64 * 10)
}

/// Appends batches `from..to`, each acknowledged; returns them as stored.
fn append_acked(log: &Log, from: usize, to: usize) -> Vec<Vec<u8>> {
    (from..to)
        .map(|i| {
            let mut b = batch(i);
            log.append(&mut b, 3).expect("append before any fault");
            b
        })
        .collect()
}

/// Every byte the log serves, read slice by slice.
fn read_all(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log.read(offset, 1 << 20, None).unwrap() {
        let bytes = slice.read_to_vec().unwrap();
        offset = last_offset(&bytes) + 1;
        out.extend_from_slice(&bytes);
    }
    out
}

fn last_offset(bytes: &[u8]) -> i64 {
    let (mut pos, mut last) = (0, -1);
    while pos < bytes.len() {
        let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap());
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        let delta = i32::from_be_bytes(bytes[pos + 23..pos + 27].try_into().unwrap());
        last = base + i64::from(delta);
        pos += 12 + len;
    }
    last
}

/// Asserts `e` is the failed system call `op` with OS error `errno`, answered as
/// KAFKA_STORAGE_ERROR.
fn assert_io(e: &LogError, want_op: &str, errno: i32) {
    match e {
        LogError::Io { op, source, .. } => {
            assert_eq!((*op, source.raw_os_error()), (want_op, Some(errno)), "{e}");
        }
        other => panic!("expected an I/O error from {want_op}, got {other:?}"),
    }
    assert_eq!(e.kafka_error_code(), kafka_error::KAFKA_STORAGE_ERROR);
}

fn assert_failed<T: std::fmt::Debug>(r: Result<T, LogError>) {
    match r {
        Err(e @ LogError::Failed { .. }) => {
            assert_eq!(e.kafka_error_code(), kafka_error::KAFKA_STORAGE_ERROR);
        }
        other => panic!("expected the log to be offline, got {other:?}"),
    }
}

/// Every operation of an offline log answers `Failed`; the offsets do not move.
fn assert_offline(log: &Log, log_end_offset: i64) {
    assert!(log.is_failed());
    assert_failed(log.append(&mut batch(99), 3));
    assert_failed(log.append_unflushed(&mut batch(99), 3));
    assert_failed(log.read(0, 1 << 20, None));
    assert_failed(log.offset_for(OffsetQuery::Timestamp(0)));
    assert_failed(log.offset_for(OffsetQuery::MaxTimestamp));
    assert_failed(log.flush());
    assert_failed(log.truncate_to(0));
    assert_failed(log.delete_records_before(1));
    assert_failed(log.run_maintenance(i64::MAX));
    assert_failed(log.close());
    assert_eq!(log.log_end_offset(), log_end_offset);
}

fn segment_len(dir: &Path, base_offset: i64) -> u64 {
    let name = files::file_name(base_offset, files::LOG_SUFFIX);
    std::fs::metadata(dir.join(name)).unwrap().len()
}

/// The served batches by base offset.
fn batches_by_offset(served: &[u8]) -> BTreeMap<i64, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pos = 0;
    while pos < served.len() {
        let base = i64::from_be_bytes(served[pos..pos + 8].try_into().unwrap());
        let len = 12 + i32::from_be_bytes(served[pos + 8..pos + 12].try_into().unwrap()) as usize;
        out.insert(base, served[pos..pos + len].to_vec());
        pos += len;
    }
    out
}

/// Reopens `dir` and checks that it serves exactly `acked` (plus, when given, `maybe`: a
/// batch written but not acknowledged, which may survive whole or not at all), then that it
/// takes appends again. Returns the reopened log and the batch appended to it.
fn reopen_and_check(dir: &Path, acked: &[Vec<u8>], maybe: Option<&[u8]>) -> (Log, Vec<u8>) {
    let log = Log::open(dir, config()).expect("reopen after the fault");
    assert!(!log.open_stats().clean_shutdown);
    let served = read_all(&log);
    let acked: Vec<u8> = acked.concat();
    assert_eq!(
        &served[..acked.len().min(served.len())],
        &acked[..],
        "acked prefix"
    );
    let extra = &served[acked.len()..];
    assert!(
        extra.is_empty() || Some(extra) == maybe,
        "only an unacknowledged batch, whole, may follow ({} extra bytes)",
        extra.len()
    );
    let end = log.log_end_offset();
    let mut probe = batch(50);
    let info = log.append(&mut probe, 4).expect("appends work again");
    assert_eq!(info.base_offset, end);
    assert_eq!(read_all(&log), [served, probe.clone()].concat());
    (log, probe)
}

#[test]
fn a_failed_write_is_an_error_and_takes_the_log_offline() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let acked = append_acked(&log, 0, 4);
    let (end, len) = (log.log_end_offset(), segment_len(dir.path(), 0));
    log.disk_faults().inject(FileOp::Write, Fault::eio());
    let e = log.append(&mut batch(4), 3).unwrap_err();
    assert_io(&e, "write", EIO);
    assert_eq!(log.disk_faults().injected(), 1);
    assert_eq!(segment_len(dir.path(), 0), len, "nothing reached the file");
    assert_offline(&log, end);
    drop(log);
    let (log, _) = reopen_and_check(dir.path(), &acked, None);
    assert_eq!(log.open_stats().bytes_truncated, 0);
}

#[test]
fn a_torn_write_is_never_served_and_is_cut_off_at_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let acked = append_acked(&log, 0, 3);
    let (end, len) = (log.log_end_offset(), segment_len(dir.path(), 0));
    log.disk_faults()
        .inject(FileOp::Write, Fault::enospc().torn(100));
    let e = log.append(&mut batch(3), 3).unwrap_err();
    assert_io(&e, "write", ENOSPC);
    assert_eq!(
        segment_len(dir.path(), 0),
        len + 100,
        "the torn prefix is on disk"
    );
    assert_offline(&log, end);
    drop(log);
    let (log, _) = reopen_and_check(dir.path(), &acked, None);
    assert_eq!(log.open_stats().bytes_truncated, 100);
}

#[test]
fn a_failed_fsync_is_not_acknowledged_and_nothing_after_it_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let acked = append_acked(&log, 0, 4);
    let durable = log.durable_offset();
    log.disk_faults().inject(FileOp::Sync, Fault::eio());
    let mut unacked = batch(4);
    let e = log.append(&mut unacked, 3).unwrap_err();
    assert_io(&e, "fsync", EIO);
    assert_eq!(log.durable_offset(), durable);
    // The bytes were written (the log end moved past them) but are never served: the log is
    // offline, reads included, until recovery decides what is whole.
    assert_offline(&log, durable + 3);
    // A later fsync would succeed, but must not be trusted with pages the failed one dropped.
    log.disk_faults().clear();
    assert_failed(log.flush());
    assert_eq!(log.durable_offset(), durable);
    drop(log);
    reopen_and_check(dir.path(), &acked, Some(&unacked));
}

#[test]
fn every_waiter_of_a_failed_group_commit_gets_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), config()).unwrap());
    let acked = append_acked(&log, 0, 2);
    // Two flush rounds succeed, then the disk fails for good while 8 threads append.
    log.disk_faults()
        .inject(FileOp::Sync, Fault::eio().after(2));
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut results = Vec::new();
                for i in 0..5 {
                    let mut b = batch(100 + t * 10 + i);
                    let r = log.append(&mut b, 3);
                    results.push((r.map_err(|e| e.kafka_error_code()), b));
                }
                results
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("no appender panics"))
        .collect();
    assert!(log.is_failed());
    let errors = results.iter().filter(|(r, _)| r.is_err()).count();
    assert!(errors > 0);
    for (r, _) in &results {
        if let Err(code) = r {
            assert_eq!(*code, kafka_error::KAFKA_STORAGE_ERROR);
        }
    }
    // Every acknowledged batch is below the durable offset; after reopening, each is served
    // whole at the offset it was given.
    let durable = log.durable_offset();
    let acked_later: Vec<(i64, Vec<u8>)> = results
        .into_iter()
        .filter_map(|(r, b)| r.ok().map(|info| (info.base_offset, b)))
        .collect();
    assert!(acked_later.iter().all(|(o, _)| *o + 3 <= durable));
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    let served = read_all(&log);
    assert_eq!(served[..acked.concat().len()], acked.concat()[..]);
    let by_offset = batches_by_offset(&served);
    for (base, b) in acked_later {
        assert_eq!(
            by_offset.get(&base),
            Some(&b),
            "acknowledged batch at {base}"
        );
    }
}

#[test]
fn a_failed_read_is_an_error_for_that_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let acked = append_acked(&log, 0, 4);
    let held = log.read(0, 1 << 20, None).unwrap().expect("data");
    log.disk_faults().inject(FileOp::Read, Fault::eio());
    assert_io(&log.read(3, 1 << 20, None).unwrap_err(), "read", EIO);
    assert_io(&held.read_to_vec().unwrap_err(), "read", EIO);
    let e = log.offset_for(OffsetQuery::Timestamp(1_015)).unwrap_err();
    assert_io(&e, "read", EIO);
    // A read changes nothing on disk: the log stays online and appends go on.
    assert!(!log.is_failed());
    let more = append_acked(&log, 4, 6);
    log.disk_faults().clear();
    assert_eq!(
        read_all(&log),
        [acked.clone(), more.clone()].concat().concat()
    );
    log.close().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(log.open_stats().clean_shutdown);
    assert_eq!(read_all(&log), [acked, more].concat().concat());
}

/// Appends until the append that needs a new segment fails; returns the acknowledged
/// batches and that error.
fn append_until_roll_fails(log: &Log) -> (Vec<Vec<u8>>, LogError) {
    let mut acked = Vec::new();
    for i in 0..100 {
        let mut b = batch(i);
        match log.append(&mut b, 3) {
            Ok(_) => acked.push(b),
            Err(e) => return (acked, e),
        }
    }
    panic!("the log never rolled");
}

#[test]
fn a_segment_that_cannot_be_created_fails_the_roll() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    log.disk_faults().inject(FileOp::Create, Fault::enospc());
    let (acked, e) = append_until_roll_fails(&log);
    assert_io(&e, "create", ENOSPC);
    assert!(acked.len() > 1);
    assert_eq!(log.segment_base_offsets(), vec![0]);
    let end = 3 * acked.len() as i64;
    assert_offline(&log, end);
    drop(log);
    let (log, probe) = reopen_and_check(dir.path(), &acked, None);
    // The roll that failed now happens: the batch after the acknowledged ones starts a new
    // segment.
    assert_eq!(log.segment_base_offsets(), vec![0, end]);
    let more = append_acked(&log, 60, 66);
    assert_eq!(read_all(&log), [acked, vec![probe], more].concat().concat());
}

#[test]
fn a_roll_that_creates_the_data_file_but_not_its_index_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    // The `.log` is created, then creating the `.index` fails.
    log.disk_faults()
        .inject(FileOp::Create, Fault::enospc().after(1));
    let (acked, e) = append_until_roll_fails(&log);
    assert_io(&e, "create", ENOSPC);
    let end = 3 * acked.len() as i64;
    assert!(dir
        .path()
        .join(files::file_name(end, files::LOG_SUFFIX))
        .exists());
    assert_offline(&log, end);
    drop(log);
    let (log, _) = reopen_and_check(dir.path(), &acked, None);
    assert_eq!(log.segment_base_offsets(), vec![0, end]);
}

#[test]
fn a_failed_fsync_of_sealed_segments_in_maintenance_takes_the_log_offline() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::Never,
        ..config()
    };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    // Acknowledged without fsync (the policy), spanning several segments.
    let acked: Vec<Vec<u8>> = (0..15)
        .map(|i| {
            let mut b = batch(i);
            log.append(&mut b, 3).unwrap();
            b
        })
        .collect();
    assert!(log.segment_base_offsets().len() > 1);
    log.disk_faults().inject(FileOp::Sync, Fault::enospc());
    assert_io(&log.run_maintenance(0).unwrap_err(), "fsync", ENOSPC);
    assert_offline(&log, 45);
    drop(log);
    // The page cache kept everything (no power was cut): all of it is recovered.
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(read_all(&log), acked.concat());
}
