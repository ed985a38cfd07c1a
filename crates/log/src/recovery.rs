//! Opening a log directory: load trusted segments from their indexes, recover the tail.
//!
//! A segment is trusted (not read) when the clean-shutdown marker is present, or when the
//! next segment starts at or below the recovery-point checkpoint: everything below that point
//! was fsynced, indexes included, before the checkpoint was written. Every other segment is
//! scanned batch by batch (length, CRC32C, dense offsets), cut at the first invalid byte, and
//! its indexes rebuilt. So opening costs the unflushed tail, not the whole log.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use crate::checkpoint::{
    self, CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE, TEMP_SUFFIX,
};
use crate::config::LogConfig;
use crate::error::LogError;
use crate::faults::DiskFaults;
use crate::log::{Clock, Log, OpenStats, SyncState, SystemClock, WriterState};
use crate::segment::{
    self, IndexLimits, Segment, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering after a crash.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log, LogError> {
        Log::open_with_clock(dir, config, Arc::new(SystemClock))
    }

    /// [`Log::open`] with an injected clock (tests drive `segment_ms` and flush intervals).
    pub fn open_with_clock(
        dir: impl AsRef<Path>,
        config: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Log, LogError> {
        config.validate()?;
        let faults = DiskFaults::new();
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| LogError::io("create directory", &dir, e))?;
        let bases = list_segments(&dir)?;
        let limits = IndexLimits {
            index_interval_bytes: config.index_interval_bytes,
            offset_entries_max: config.offset_index_entries_max(),
            time_entries_max: config.time_index_entries_max(),
        };
        let clean = dir.join(CLEAN_SHUTDOWN_FILE).exists();
        let recovery_point = if clean {
            i64::MAX
        } else {
            checkpoint::read(&dir, RECOVERY_POINT_FILE)?.unwrap_or(0)
        };
        let mut stats = OpenStats {
            clean_shutdown: clean,
            ..OpenStats::default()
        };
        let (mut segments, recovered) =
            load_segments(&dir, &bases, recovery_point, &limits, &mut stats, &faults)?;
        let lso_checkpoint = checkpoint::read(&dir, LOG_START_OFFSET_FILE)?;
        if segments.is_empty() {
            segments.push(Arc::new(Segment::create(
                &dir,
                lso_checkpoint.unwrap_or(0),
                &faults,
            )?));
        }
        let first_base = segments[0].base_offset();
        let mut lso = lso_checkpoint.unwrap_or(first_base).max(first_base);
        let mut leo = segments.last().expect("non-empty").next_offset();
        let restarted = lso > leo;
        if restarted {
            // DeleteRecords moved the start past data that a crash then lost: restart empty at
            // the start offset so that deleted offsets are never handed out again.
            for seg in &segments {
                seg.delete_files()?;
            }
            segments = vec![Arc::new(Segment::create(&dir, lso, &faults)?)];
            leo = lso;
        }
        lso = lso.min(leo);
        for seg in &recovered {
            seg.sync_data()?;
            seg.sync_indexes()?;
        }
        // A brand-new log has nothing to make durable yet: its file creations reach the disk
        // with the first flush (the directory is marked dirty), and a crash before that leaves
        // an empty or missing directory, which opens as this same empty log. Skipping three
        // fsyncs here is what makes creating a topic of thousands of partitions quick.
        let fresh = bases.is_empty()
            && !clean
            && lso_checkpoint.is_none()
            && !dir.join(RECOVERY_POINT_FILE).exists();
        // After a clean shutdown with nothing to recover, the recovery point on disk is already
        // the end of the log (close writes it before the marker): no need to write it again.
        let up_to_date = clean
            && recovered.is_empty()
            && checkpoint::read(&dir, RECOVERY_POINT_FILE)? == Some(leo);
        if !fresh && !up_to_date {
            checkpoint::sync_dir(&dir)?;
            checkpoint::write(&dir, RECOVERY_POINT_FILE, leo)?;
        }
        // The marker stays until the first change to the segment files (`drop_clean_marker`):
        // until then the files are exactly what the clean shutdown left. A log that was not
        // shut down cleanly has none; a recovered one must not get one back.
        let clean_marker =
            clean && recovered.is_empty() && stats.segments_deleted == 0 && !restarted;
        if clean && !clean_marker {
            checkpoint::remove(&dir, CLEAN_SHUTDOWN_FILE)?;
        }
        stats.segments = segments.len();
        let now_ms = clock.now_ms();
        Ok(Log {
            dir,
            config: std::sync::RwLock::new(config),
            limits,
            clock,
            writer: Mutex::new(WriterState {
                closed: false,
                dirty: Vec::new(),
                dir_dirty: fresh,
                unflushed_records: 0,
                last_flush_ms: now_ms,
                recovery_point_on_disk: leo,
                clean_marker,
            }),
            segments: RwLock::new(Arc::new(segments)),
            log_end_offset: AtomicI64::new(leo),
            log_start_offset: AtomicI64::new(lso),
            sync: Mutex::new(SyncState {
                durable_offset: leo,
                in_flight: false,
                failed: None,
                flush_rounds: 0,
            }),
            failed_flag: AtomicBool::new(false),
            sync_done: Condvar::new(),
            open_stats: stats,
            faults,
        })
    }
}

type Loaded = (Vec<Arc<Segment>>, Vec<Arc<Segment>>);

/// Loads each segment; returns all kept segments and the ones that were recovered (to be
/// fsynced). After a segment that ends early (torn tail, gap), later segments are deleted: an
/// offset gap must never be served.
fn load_segments(
    dir: &Path,
    bases: &[i64],
    recovery_point: i64,
    limits: &IndexLimits,
    stats: &mut OpenStats,
    faults: &DiskFaults,
) -> Result<Loaded, LogError> {
    let mut segments = Vec::with_capacity(bases.len());
    let mut recovered = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        let seg = Arc::new(Segment::open(dir, base, faults)?);
        let next_base = bases.get(i + 1).copied();
        let trusted = recovery_point == i64::MAX || next_base.is_some_and(|n| n <= recovery_point);
        let mut ended_early = false;
        if !(trusted && load_trusted(&seg, next_base, limits, stats)?) {
            let len_before = seg.file_len_bytes()?;
            let end = seg.recover(limits)?;
            stats.segments_recovered += 1;
            stats.bytes_scanned += end.bytes_read;
            stats.bytes_truncated += len_before - end.valid_end_bytes;
            ended_early = end.invalid_reason.is_some();
            recovered.push(seg.clone());
        }
        let gap = next_base.is_some_and(|n| n != seg.next_offset());
        segments.push(seg);
        if (ended_early || gap) && next_base.is_some() {
            for &later in &bases[i + 1..] {
                Segment::open(dir, later, faults)?.delete_files()?;
                stats.segments_deleted += 1;
            }
            break;
        }
    }
    Ok((segments, recovered))
}

/// Loads a trusted segment from its indexes (and, for the last segment after a clean
/// shutdown, a scan from its last index entry). False means it must be recovered instead.
fn load_trusted(
    seg: &Segment,
    next_base: Option<i64>,
    limits: &IndexLimits,
    stats: &mut OpenStats,
) -> Result<bool, LogError> {
    if !seg.load_trusted(next_base)? {
        return Ok(false);
    }
    if next_base.is_some() {
        return Ok(true);
    }
    let (ok, bytes_read) = seg.load_tail(limits)?;
    stats.bytes_scanned += bytes_read;
    Ok(ok)
}

/// Base offsets of the segments in `dir`, sorted; removes leftovers of interrupted deletions
/// and checkpoint writes, and index files without a segment.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let entries = fs::read_dir(dir).map_err(|e| LogError::io("list", dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("list", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    let mut bases: Vec<i64> = names
        .iter()
        .filter_map(|n| segment::parse_file_name(n, LOG_SUFFIX))
        .collect();
    bases.sort_unstable();
    for name in &names {
        let orphan_index = [INDEX_SUFFIX, TIME_INDEX_SUFFIX]
            .iter()
            .filter_map(|s| segment::parse_file_name(name, s))
            .any(|b| bases.binary_search(&b).is_err());
        if name.ends_with(DELETED_SUFFIX) || name.ends_with(TEMP_SUFFIX) || orphan_index {
            segment::remove_if_present(&dir.join(name))?;
        }
    }
    Ok(bases)
}
