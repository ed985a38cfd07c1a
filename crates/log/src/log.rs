//! [`Log`]: one partition's segmented log, its reads, truncation, retention and flushes.
//!
//! Concurrency: the log is `Send + Sync` and its methods block on disk I/O. Appends,
//! rolls, truncations and deletions are serialized by the `writer` mutex; readers never take
//! it (they copy the segment list, an `Arc<Vec<..>>` replaced on change, and read with
//! `pread`). Durability is a separate step, [`Log::flush_until`], so that an fsync never
//! runs under the append lock and concurrent appenders share one fsync (group commit).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

use freshet_records::BatchError;

use crate::batch::{self, BatchInfo};
use crate::checkpoint;
use crate::config::{FlushPolicy, LogConfig};
use crate::error::LogError;
use crate::faults::{DiskFaults, FileOp};
use crate::index;
use crate::segment::{IndexLimits, Segment, SegmentFile, NO_TIMESTAMP};

/// Wall-clock milliseconds, injectable for tests.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(0, |d| d.as_millis() as i64)
    }
}

/// Offsets assigned to an appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub record_count: i64,
}

/// A byte range of a segment file holding whole batches, read without decoding. Holding it
/// keeps the file open, so the bytes stay readable even if retention deletes the segment.
#[derive(Debug, Clone)]
pub struct FetchSlice {
    pub segment: Arc<SegmentFile>,
    pub position_bytes: u64,
    pub len_bytes: u32,
    /// Base offset of the first batch in the range.
    pub first_offset: i64,
}

impl FetchSlice {
    /// Copies the range into memory (a network layer may instead `sendfile` from
    /// [`SegmentFile::file`]).
    pub fn read_to_vec(&self) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; self.len_bytes as usize];
        self.segment.read_exact_at(&mut buf, self.position_bytes)?;
        Ok(buf)
    }
}

/// What ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The log start offset (timestamp -2).
    Earliest,
    /// The log end offset (timestamp -1); the broker substitutes the high watermark.
    Latest,
    /// The batch with the largest timestamp (timestamp -3, KIP-734).
    MaxTimestamp,
    /// The first batch with a max timestamp `>=` this.
    Timestamp(i64),
}

/// An answer to an [`OffsetQuery`]. Answers are batch-level: for `Timestamp` the offset is the
/// batch's base offset (never after the first matching record), for `MaxTimestamp` its last
/// offset; `batch` lets the broker decode that one batch to refine to the exact record.
#[derive(Debug, Clone)]
pub struct OffsetAndTimestamp {
    pub offset: i64,
    pub timestamp: i64,
    pub batch: Option<FetchSlice>,
}

/// What opening the log found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenStats {
    pub clean_shutdown: bool,
    pub segments: usize,
    /// Segments fully scanned (past the recovery point, or with a damaged index).
    pub segments_recovered: usize,
    /// Bytes read from `.log` files while opening.
    pub bytes_scanned: u64,
    /// Bytes cut off torn or corrupt tails.
    pub bytes_truncated: u64,
    /// Later segments deleted because an earlier one ended early.
    pub segments_deleted: usize,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
}

/// State changed only under the append lock.
#[derive(Debug)]
pub(crate) struct WriterState {
    pub closed: bool,
    /// Segments written since their last fsync.
    pub dirty: Vec<Arc<Segment>>,
    /// A segment file was created since the last directory fsync.
    pub dir_dirty: bool,
    /// Records appended since the last flush (`flush.messages`).
    pub unflushed_records: u64,
    pub last_flush_ms: i64,
    /// Value of the recovery-point checkpoint file.
    pub recovery_point_on_disk: i64,
    /// The clean-shutdown marker is still on disk: nothing changed the segment files since
    /// the log was opened after a clean shutdown. The first change removes it (durably)
    /// before touching a file, so a crash after that recovers as unclean, and a crash
    /// before it reopens as clean, which is still true. Opening costs no fsync this way.
    pub clean_marker: bool,
}

impl WriterState {
    fn mark_dirty(&mut self, seg: &Arc<Segment>) {
        if !self.dirty.iter().any(|s| Arc::ptr_eq(s, seg)) {
            self.dirty.push(seg.clone());
        }
    }
}

/// The group-commit coordinator's state.
#[derive(Debug)]
pub(crate) struct SyncState {
    /// Every offset below this is on disk.
    pub durable_offset: i64,
    /// A flush (or an exclusive operation) is running; others wait on `sync_done`.
    pub in_flight: bool,
    /// Set by the first failed write-side system call; sticky (see [`LogError::Failed`]).
    pub failed: Option<String>,
    /// Flush rounds completed since open (each one fsync per dirty file).
    pub flush_rounds: u64,
}

/// One partition's log in one directory.
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    /// Replaced whole by [`Log::set_config`]; readers take a copy.
    pub(crate) config: RwLock<LogConfig>,
    /// Index sizes, fixed when the log is opened (`segment.index.bytes` applies on reopen).
    pub(crate) limits: IndexLimits,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) writer: Mutex<WriterState>,
    /// Oldest first; the last is the active segment. Never empty.
    pub(crate) segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    pub(crate) log_end_offset: AtomicI64,
    pub(crate) log_start_offset: AtomicI64,
    pub(crate) sync: Mutex<SyncState>,
    /// Mirrors `sync.failed.is_some()` (set once, never cleared), so that the append path
    /// checks it without taking the group-commit mutex that flush waiters hold.
    pub(crate) failed_flag: AtomicBool,
    pub(crate) sync_done: Condvar,
    pub(crate) open_stats: OpenStats,
    /// Fault injection for tests, shared by every segment (see [`DiskFaults`]).
    pub(crate) faults: DiskFaults,
}

impl Log {
    /// The directory holding this log's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes retention, roll and flush settings of the open log (a topic's configs altered
    /// while it runs). Index sizes keep the values the log was opened with.
    pub fn set_config(&self, config: LogConfig) -> Result<(), LogError> {
        config.validate()?;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }

    /// The first offset a read may ask for.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// The offset the next append gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }

    /// Every offset below this is fsynced.
    pub fn durable_offset(&self) -> i64 {
        self.sync_state().durable_offset
    }

    /// Flush rounds completed since the log was opened: with group commit, appends per round
    /// tell how many acknowledgements one fsync covered (Kafka's flush-rate metric).
    pub fn flush_rounds(&self) -> u64 {
        self.sync_state().flush_rounds
    }

    pub fn open_stats(&self) -> &OpenStats {
        &self.open_stats
    }

    /// The fault-injection handle of this log's files. A test seam: tests arm it to make
    /// writes, fsyncs, reads or file creations fail; nothing else does.
    pub fn disk_faults(&self) -> &DiskFaults {
        &self.faults
    }

    /// Whether a disk error took the log offline (every operation but the offset getters then
    /// returns [`LogError::Failed`] until the log is reopened).
    pub fn is_failed(&self) -> bool {
        self.failed_flag.load(Ordering::Acquire)
    }

    /// Bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments()
            .iter()
            .map(|s| u64::from(s.size_bytes()))
            .sum()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments().iter().map(|s| s.base_offset()).collect()
    }

    pub(crate) fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        self.segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn publish_segments(&self, segments: Vec<Arc<Segment>>) {
        assert!(!segments.is_empty(), "a log always has an active segment");
        *self.segments.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(segments);
    }

    fn active(&self) -> Arc<Segment> {
        self.segments().last().expect("never empty").clone()
    }

    /// The append lock, for an operation that may change the log's files: refused once the log
    /// is closed or failed (checked under the lock, so no change starts after a failure that
    /// was marked under it).
    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, WriterState>, LogError> {
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if w.closed {
            return Err(LogError::Closed);
        }
        self.check_not_failed()?;
        Ok(w)
    }

    fn sync_state(&self) -> MutexGuard<'_, SyncState> {
        self.sync.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(Failed)` once a disk error took the log offline.
    pub fn check_not_failed(&self) -> Result<(), LogError> {
        if !self.is_failed() {
            return Ok(());
        }
        match &self.sync_state().failed {
            Some(reason) => Err(LogError::Failed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Takes the log offline if `e` is a failed system call, and passes `e` on. Called on every
    /// error of an operation that changes the log's files (append, roll, flush, truncation,
    /// deletion, checkpoints): after such an error the files may hold a torn batch, or data
    /// the kernel could not write back, and only recovery at the next open can tell which
    /// bytes are whole. Kafka does the same at directory scope (an `IOException` takes the log
    /// directory offline). May be called with the append lock held, never with `sync` held.
    fn fail(&self, e: LogError) -> LogError {
        if let LogError::Io { .. } = e {
            self.mark_failed(&mut self.sync_state(), &e);
        }
        e
    }

    /// [`Log::fail`] with `sync` already held: a flush or exclusive operation marks its own
    /// failure before it clears `in_flight`, so no waiter can start another fsync in between
    /// (one that might succeed on pages the kernel already dropped).
    fn mark_failed(&self, s: &mut SyncState, e: &LogError) {
        if let LogError::Io { .. } = e {
            s.failed.get_or_insert_with(|| e.to_string());
            self.failed_flag.store(true, Ordering::Release);
        }
    }

    /// Removes the clean-shutdown marker, and fsyncs the directory, before the first change
    /// to the segment files since open (see [`WriterState::clean_marker`]).
    fn drop_clean_marker(&self, w: &mut WriterState) -> Result<(), LogError> {
        if w.clean_marker {
            self.faults
                .check(FileOp::Sync)
                .map_err(|e| LogError::io("fsync directory", &self.dir, e))?;
            checkpoint::remove(&self.dir, checkpoint::CLEAN_SHUTDOWN_FILE)?;
            w.clean_marker = false;
        }
        Ok(())
    }

    /// fsync of the log directory, through the fault seam ([`FileOp::Sync`]).
    fn sync_dir(&self) -> Result<(), LogError> {
        self.faults
            .check(FileOp::Sync)
            .map_err(|e| LogError::io("fsync directory", &self.dir, e))?;
        checkpoint::sync_dir(&self.dir)
    }

    /// Appends one batch and, per the flush policy, waits until it is durable. The batch is
    /// validated (framing, CRC32C), then its base offset and partition leader epoch are
    /// overwritten in place (the CRC does not cover them) and it is written unchanged
    /// otherwise. Returns the offsets assigned.
    pub fn append(&self, batch: &mut [u8], leader_epoch: i32) -> Result<AppendInfo, LogError> {
        let (info, flush_needed) = self.append_inner(batch, leader_epoch)?;
        if flush_needed {
            self.flush_until(info.last_offset + 1)?;
        }
        Ok(info)
    }

    /// Appends without waiting for durability whatever the policy; pair with
    /// [`Log::flush_until`] (e.g. to append to many partitions, then wait once).
    pub fn append_unflushed(
        &self,
        batch: &mut [u8],
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        self.append_inner(batch, leader_epoch).map(|(info, _)| info)
    }

    fn append_inner(
        &self,
        batch: &mut [u8],
        leader_epoch: i32,
    ) -> Result<(AppendInfo, bool), LogError> {
        let info = batch::validate(batch).map_err(LogError::InvalidBatch)?;
        // One read of the config per append (it is replaced whole by `set_config`).
        let config = self.config();
        check_append_size(&config, &info)?;
        let now_ms = self.clock.now_ms();
        let mut w = self.writer()?;
        self.drop_clean_marker(&mut w).map_err(|e| self.fail(e))?;
        let base_offset = self.log_end_offset();
        let info = BatchInfo {
            base_offset,
            last_offset: base_offset + (info.last_offset - info.base_offset),
            ..info
        };
        batch::assign(batch, base_offset, leader_epoch);
        // On an error nothing below moves the log end offset: a torn write's bytes lie past the
        // segment's size (readers never see them) and the log goes offline until recovery cuts
        // them off.
        let active = self
            .maybe_roll(&mut w, &config, &info, now_ms)
            .map_err(|e| self.fail(e))?;
        active
            .append(batch, &info, &self.limits, now_ms)
            .map_err(|e| self.fail(e))?;
        self.log_end_offset
            .store(info.last_offset + 1, Ordering::Release);
        w.mark_dirty(&active);
        w.unflushed_records += info.record_count.max(0) as u64;
        let flush_needed = match config.flush {
            FlushPolicy::EveryAppend => true,
            FlushPolicy::Interval {
                flush_messages: Some(n),
                ..
            } => w.unflushed_records >= n,
            _ => false,
        };
        let appended = AppendInfo {
            base_offset,
            last_offset: info.last_offset,
            max_timestamp: info.max_timestamp,
            record_count: info.record_count,
        };
        Ok((appended, flush_needed))
    }

    /// Kafka's roll rules: the batch would overflow `segment_bytes_max`, the segment is older
    /// than `segment_ms`, an index is full, or offsets would not fit a 32-bit relative offset.
    fn maybe_roll(
        &self,
        w: &mut WriterState,
        config: &LogConfig,
        info: &BatchInfo,
        now_ms: i64,
    ) -> Result<Arc<Segment>, LogError> {
        let active = self.active();
        let should_roll = {
            let meta = active.meta();
            let too_big =
                u64::from(meta.size_bytes) + info.total_bytes > u64::from(config.segment_bytes_max);
            let too_old = meta
                .first_append_ms
                .is_some_and(|t| now_ms.saturating_sub(t) >= config.segment_ms as i64);
            let offsets_overflow = info.last_offset - active.base_offset() > i64::from(i32::MAX);
            meta.size_bytes > 0
                && (too_big || too_old || meta.indexes_full(&self.limits) || offsets_overflow)
        };
        if !should_roll {
            return Ok(active);
        }
        self.roll(w, &active, info.base_offset)
    }

    /// Seals `active` and starts a new active segment at `base_offset`.
    fn roll(
        &self,
        w: &mut WriterState,
        active: &Arc<Segment>,
        base_offset: i64,
    ) -> Result<Arc<Segment>, LogError> {
        active.seal()?;
        w.mark_dirty(active);
        let new = Arc::new(Segment::create(&self.dir, base_offset, &self.faults)?);
        w.dir_dirty = true;
        let mut segments = self.segments().as_ref().clone();
        segments.push(new.clone());
        self.publish_segments(segments);
        Ok(new)
    }

    /// Blocks until every offset below `offset` is on disk. Group commit: the caller either
    /// runs one fsync that covers everything written so far, or waits for the running one and
    /// checks again.
    pub fn flush_until(&self, offset: i64) -> Result<(), LogError> {
        self.flush_with(offset, false)
    }

    /// Flushes everything appended so far.
    pub fn flush(&self) -> Result<(), LogError> {
        self.flush_until(self.log_end_offset())
    }

    /// fsyncs sealed segments only (what Kafka does at roll time even without a flush policy),
    /// so that the recovery point can move past them.
    pub fn flush_sealed(&self) -> Result<(), LogError> {
        let active_base = self.active().base_offset();
        self.flush_with(active_base, true)
    }

    fn flush_with(&self, offset: i64, sealed_only: bool) -> Result<(), LogError> {
        loop {
            let mut s = self.sync_state();
            if let Some(reason) = &s.failed {
                return Err(LogError::Failed {
                    reason: reason.clone(),
                });
            }
            if s.durable_offset >= offset {
                return Ok(());
            }
            if s.in_flight {
                drop(self.sync_done.wait(s).unwrap_or_else(|p| p.into_inner()));
                continue;
            }
            s.in_flight = true;
            drop(s);
            let result = self.flush_once(sealed_only);
            let mut s = self.sync_state();
            s.in_flight = false;
            match &result {
                Ok(end) => {
                    s.durable_offset = s.durable_offset.max(*end);
                    s.flush_rounds += 1;
                }
                // Only a failed system call takes the log offline; `Closed` is not a disk
                // failure. Every waiter then sees `Failed`: after a failed fsync Linux may have
                // dropped the dirty pages, so no later fsync could prove them durable.
                Err(e) => self.mark_failed(&mut s, e),
            }
            self.sync_done.notify_all();
            drop(s);
            result?;
        }
    }

    /// One fsync round, run by exactly one thread at a time (`in_flight`). Returns the offset
    /// below which everything is now durable.
    fn flush_once(&self, sealed_only: bool) -> Result<i64, LogError> {
        let (end, dirty, dir_dirty, active) = {
            let mut w = self.writer()?;
            let active = self.active();
            let end = if sealed_only {
                active.base_offset()
            } else {
                self.log_end_offset()
            };
            let mut dirty = std::mem::take(&mut w.dirty);
            if sealed_only {
                dirty.retain(|s| !Arc::ptr_eq(s, &active));
                w.mark_dirty(&active);
            } else {
                w.unflushed_records = 0;
                w.last_flush_ms = self.clock.now_ms();
            }
            (end, dirty, std::mem::take(&mut w.dir_dirty), active)
        };
        let mut sealed_synced = false;
        for seg in &dirty {
            seg.sync_data()?;
            if !Arc::ptr_eq(seg, &active) {
                seg.sync_indexes()?;
                sealed_synced = true;
            }
        }
        if dir_dirty {
            self.sync_dir()?;
        }
        if sealed_synced {
            self.write_recovery_point(end)?;
        }
        Ok(end)
    }

    /// Called only by the thread holding `in_flight`.
    fn write_recovery_point(&self, offset: i64) -> Result<(), LogError> {
        checkpoint::write(&self.dir, checkpoint::RECOVERY_POINT_FILE, offset)?;
        self.writer()?.recovery_point_on_disk = offset;
        Ok(())
    }

    /// Runs `f` with no flush in flight and the append lock held (truncation, close), then
    /// caps the durable offset at the new log end.
    pub(crate) fn exclusive<T>(
        &self,
        f: impl FnOnce(&mut WriterState) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        let mut s = self.sync_state();
        while s.in_flight {
            s = self.sync_done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.in_flight = true;
        drop(s);
        let result = self.writer().and_then(|mut w| f(&mut w));
        let mut s = self.sync_state();
        s.in_flight = false;
        s.durable_offset = s.durable_offset.min(self.log_end_offset());
        if let Err(e) = &result {
            self.mark_failed(&mut s, e);
        }
        self.sync_done.notify_all();
        result
    }

    /// Reads whole batches from the batch containing `offset` onward, up to `max_bytes`
    /// (Kafka's rule: the first batch is returned whole even when larger), from one segment,
    /// stopping before any batch that reaches `upper_bound_offset` (the high watermark or
    /// last stable offset the caller holds). `None` when nothing is readable yet.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u32,
        upper_bound_offset: Option<i64>,
    ) -> Result<Option<FetchSlice>, LogError> {
        self.check_not_failed()?;
        let segments = self.segments();
        let leo = self.log_end_offset();
        let lso = self.log_start_offset();
        if offset < lso || offset > leo {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: lso,
                log_end_offset: leo,
            });
        }
        let limit_offset = upper_bound_offset.unwrap_or(leo).min(leo);
        let first = segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1);
        for seg in &segments[first..] {
            if seg.base_offset() >= limit_offset || offset >= limit_offset {
                return Ok(None);
            }
            if let Some(slice) = read_segment(seg, offset, max_bytes, limit_offset)? {
                return Ok(Some(slice));
            }
        }
        Ok(None)
    }

    /// ListOffsets.
    pub fn offset_for(&self, query: OffsetQuery) -> Result<Option<OffsetAndTimestamp>, LogError> {
        self.check_not_failed()?;
        let at = |offset| {
            Some(OffsetAndTimestamp {
                offset,
                timestamp: NO_TIMESTAMP,
                batch: None,
            })
        };
        match query {
            OffsetQuery::Earliest => Ok(at(self.log_start_offset())),
            OffsetQuery::Latest => Ok(at(self.log_end_offset())),
            OffsetQuery::MaxTimestamp => self.max_timestamp_offset(),
            OffsetQuery::Timestamp(ts) => self.first_offset_at_or_after(ts),
        }
    }

    fn max_timestamp_offset(&self) -> Result<Option<OffsetAndTimestamp>, LogError> {
        let segments = self.segments();
        let best = segments
            .iter()
            .map(|s| (s, s.meta().max_timestamp, s.meta().offset_of_max_timestamp))
            .filter(|(_, ts, _)| *ts != NO_TIMESTAMP)
            .reduce(|best, cur| if cur.1 > best.1 { cur } else { best });
        let Some((seg, timestamp, offset)) = best else {
            return Ok(None);
        };
        let offset = offset.max(self.log_start_offset());
        let size = seg.size_bytes();
        let batch = seg
            .find_batch(offset, size)?
            .map(|(pos, info)| slice_of(seg, pos, &info));
        Ok(Some(OffsetAndTimestamp {
            offset,
            timestamp,
            batch,
        }))
    }

    /// The first batch at or after the log start offset with a max timestamp `>= ts`: the time
    /// index gives where to start, then batch headers are scanned.
    fn first_offset_at_or_after(&self, ts: i64) -> Result<Option<OffsetAndTimestamp>, LogError> {
        let lso = self.log_start_offset();
        for seg in self.segments().iter() {
            let (max_ts, size, floor) = {
                let meta = seg.meta();
                (
                    meta.max_timestamp,
                    meta.size_bytes,
                    index::time_floor_below(&meta.time_entries, ts),
                )
            };
            if max_ts < ts {
                continue;
            }
            let start = floor.map_or(seg.base_offset(), |e| {
                seg.base_offset() + i64::from(e.relative_offset) + 1
            });
            let Some((mut pos, _)) = seg.find_batch(start.max(lso), size)? else {
                continue;
            };
            while pos < size {
                let info = seg.header_at(pos, size)?;
                if info.max_timestamp >= ts && info.last_offset >= lso {
                    let offset = info.base_offset.max(lso);
                    let batch = Some(slice_of(seg, pos, &info));
                    return Ok(Some(OffsetAndTimestamp {
                        offset,
                        timestamp: info.max_timestamp,
                        batch,
                    }));
                }
                pos += info.total_bytes as u32;
            }
        }
        Ok(None)
    }

    /// Removes every batch from the one containing `offset` onward (replication's
    /// truncation after a leader change). Returns the new log end offset, which is `offset`
    /// when it falls on a batch boundary and the containing batch's base offset otherwise
    /// (never below the log start offset: then the log restarts empty there). Below the log
    /// start offset the whole log is emptied and restarted at `offset`.
    pub fn truncate_to(&self, offset: i64) -> Result<i64, LogError> {
        if offset < self.log_start_offset() {
            self.truncate_fully_and_start_at(offset)?;
            return Ok(offset);
        }
        self.exclusive(|w| {
            let leo = self.log_end_offset();
            if offset >= leo {
                return Ok(leo);
            }
            self.drop_clean_marker(w)?;
            let segments = self.segments();
            let keep = segments
                .partition_point(|s| s.base_offset() <= offset)
                .max(1);
            let target = &segments[keep - 1];
            let size = target.size_bytes();
            let (position, new_leo) = match target.find_batch(offset, size)? {
                Some((pos, info)) => (pos, info.base_offset),
                None => (size, target.next_offset()),
            };
            let lso = self.log_start_offset();
            if new_leo < lso {
                // The batch holding `offset` also holds the log start offset: nothing visible
                // is left, so restart empty at the start offset rather than end below it.
                self.reset_to(w, lso)?;
                return Ok(lso);
            }
            self.publish_segments(segments[..keep].to_vec());
            for seg in &segments[keep..] {
                seg.delete_files()?;
            }
            w.dirty.retain(|s| s.base_offset() <= target.base_offset());
            target.truncate_to(position, &self.limits)?;
            checkpoint::sync_dir(&self.dir)?;
            self.log_end_offset.store(new_leo, Ordering::Release);
            let rp = w.recovery_point_on_disk.min(new_leo);
            checkpoint::write(&self.dir, checkpoint::RECOVERY_POINT_FILE, rp)?;
            w.recovery_point_on_disk = rp;
            Ok(new_leo)
        })
    }

    /// Deletes every segment and restarts the log empty at `offset` (a follower whose leader
    /// no longer has its offsets).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), LogError> {
        self.exclusive(|w| self.reset_to(w, offset))
    }

    fn reset_to(&self, w: &mut WriterState, offset: i64) -> Result<(), LogError> {
        self.drop_clean_marker(w)?;
        let old = self.segments();
        for seg in old.iter() {
            seg.delete_files()?;
        }
        let fresh = Arc::new(Segment::create(&self.dir, offset, &self.faults)?);
        self.publish_segments(vec![fresh]);
        w.dirty.clear();
        checkpoint::sync_dir(&self.dir)?;
        self.log_end_offset.store(offset, Ordering::Release);
        self.log_start_offset.store(offset, Ordering::Release);
        checkpoint::write(&self.dir, checkpoint::LOG_START_OFFSET_FILE, offset)?;
        checkpoint::write(&self.dir, checkpoint::RECOVERY_POINT_FILE, offset)?;
        w.recovery_point_on_disk = offset;
        Ok(())
    }

    /// DeleteRecords: makes `offset` the log start offset (durably, before returning) and
    /// deletes segments that now lie wholly below it. Returns the log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let mut w = self.writer()?;
        let (lso, leo) = (self.log_start_offset(), self.log_end_offset());
        if offset > leo || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: lso,
                log_end_offset: leo,
            });
        }
        if offset <= lso {
            return Ok(lso);
        }
        checkpoint::write(&self.dir, checkpoint::LOG_START_OFFSET_FILE, offset)
            .map_err(|e| self.fail(e))?;
        self.log_start_offset.store(offset, Ordering::Release);
        self.delete_old_segments(&mut w, |_, next_base, _| next_base <= offset)?;
        Ok(offset)
    }

    /// Deletes whole segments past `retention_ms` (by their newest timestamp) or while the
    /// log exceeds `retention_bytes`, oldest first. An active segment past `retention_ms` goes
    /// too, as in Kafka: an empty segment is rolled at the log end first (a log always has
    /// one), so a topic that stops receiving records still loses them on time.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionOutcome, LogError> {
        let mut w = self.writer()?;
        self.roll_if_expired(&mut w, now_ms)
            .map_err(|e| self.fail(e))?;
        let segments = self.segments();
        let mut total_bytes: i64 = segments.iter().map(|s| i64::from(s.size_bytes())).sum();
        let lso = self.log_start_offset();
        let (retention_ms, retention_bytes) =
            (self.config().retention_ms, self.config().retention_bytes);
        self.delete_old_segments(&mut w, |seg, next_base, size| {
            let by_start = next_base <= lso;
            let by_size = retention_bytes >= 0 && total_bytes - size >= retention_bytes;
            let by_time =
                retention_ms >= 0 && segment_time_ms(seg) < now_ms.saturating_sub(retention_ms);
            let delete = by_start || by_size || by_time;
            if delete {
                total_bytes -= size;
            }
            delete
        })
    }

    /// Seals an active segment whose records are all past `retention_ms` and starts an empty
    /// one at the log end, so that retention can delete the old one. Only records consumers
    /// may already read are deleted this way (Kafka: below the high watermark): under the
    /// fsync-per-append policy that means flushed.
    fn roll_if_expired(&self, w: &mut WriterState, now_ms: i64) -> Result<(), LogError> {
        let config = self.config();
        let active = self.active();
        let expired = config.retention_ms >= 0
            && active.meta().size_bytes > 0
            && segment_time_ms(&active) < now_ms.saturating_sub(config.retention_ms);
        let leo = self.log_end_offset();
        let visible =
            config.flush != FlushPolicy::EveryAppend || self.sync_state().durable_offset >= leo;
        if !(expired && visible) {
            return Ok(());
        }
        self.drop_clean_marker(w)?;
        self.roll(w, &active, leo).map(|_| ())
    }

    /// Deletes sealed segments from the oldest while `predicate(segment, next base, size)`
    /// holds; the log start offset moves up to the new first segment.
    fn delete_old_segments(
        &self,
        w: &mut WriterState,
        mut predicate: impl FnMut(&Segment, i64, i64) -> bool,
    ) -> Result<RetentionOutcome, LogError> {
        let segments = self.segments();
        let mut n = 0;
        while n + 1 < segments.len()
            && predicate(
                &segments[n],
                segments[n + 1].base_offset(),
                i64::from(segments[n].size_bytes()),
            )
        {
            n += 1;
        }
        if n == 0 {
            return Ok(RetentionOutcome::default());
        }
        self.drop_clean_marker(w).map_err(|e| self.fail(e))?;
        self.publish_segments(segments[n..].to_vec());
        self.log_start_offset
            .fetch_max(segments[n].base_offset(), Ordering::AcqRel);
        let mut outcome = RetentionOutcome::default();
        for seg in &segments[..n] {
            outcome.segments_deleted += 1;
            outcome.bytes_deleted += u64::from(seg.size_bytes());
            seg.delete_files().map_err(|e| self.fail(e))?;
        }
        Ok(outcome)
    }

    /// The periodic work the broker runs for each log (Kafka's scheduler tasks): retention,
    /// `flush_ms` for the interval policy, fsync of sealed segments, and the recovery-point
    /// checkpoint.
    pub fn run_maintenance(&self, now_ms: i64) -> Result<RetentionOutcome, LogError> {
        let outcome = self.enforce_retention(now_ms)?;
        self.run_flush_maintenance(now_ms)?;
        Ok(outcome)
    }

    /// [`Log::run_maintenance`] without retention, for callers that check retention less
    /// often than flushes (Kafka's `log.retention.check.interval.ms`).
    pub fn run_flush_maintenance(&self, now_ms: i64) -> Result<(), LogError> {
        let last_flush_ms = self.writer()?.last_flush_ms;
        match self.config().flush {
            FlushPolicy::Interval {
                flush_ms: Some(ms), ..
            } if now_ms.saturating_sub(last_flush_ms) >= ms as i64 => self.flush()?,
            _ => self.flush_sealed()?,
        }
        self.checkpoint_recovery_point()
    }

    /// Writes the recovery-point checkpoint if the durable offset moved since it was written.
    pub fn checkpoint_recovery_point(&self) -> Result<(), LogError> {
        self.exclusive(|w| {
            let durable = self.sync_state().durable_offset;
            if durable > w.recovery_point_on_disk {
                checkpoint::write(&self.dir, checkpoint::RECOVERY_POINT_FILE, durable)?;
                w.recovery_point_on_disk = durable;
            }
            Ok(())
        })
    }

    /// Flushes everything, writes the checkpoints and the clean-shutdown marker; the next
    /// open then skips recovery. Later calls on this log return [`LogError::Closed`].
    pub fn close(&self) -> Result<(), LogError> {
        self.exclusive(|w| {
            let segments = self.segments();
            let active = segments.last().expect("never empty");
            active.seal()?;
            for seg in w.dirty.iter().chain(std::iter::once(active)) {
                seg.sync_data()?;
                seg.sync_indexes()?;
            }
            checkpoint::sync_dir(&self.dir)?;
            let leo = self.log_end_offset();
            checkpoint::write(&self.dir, checkpoint::RECOVERY_POINT_FILE, leo)?;
            checkpoint::write(
                &self.dir,
                checkpoint::LOG_START_OFFSET_FILE,
                self.log_start_offset(),
            )?;
            checkpoint::write_file_atomically(&self.dir, checkpoint::CLEAN_SHUTDOWN_FILE, b"")?;
            w.clean_marker = true;
            w.closed = true;
            Ok(())
        })
    }
}

fn check_append_size(config: &LogConfig, info: &BatchInfo) -> Result<(), LogError> {
    if info.last_offset < info.base_offset {
        return Err(LogError::InvalidBatch(BatchError::InconsistentCount {
            record_count: info.record_count as i32,
            last_offset_delta: (info.last_offset - info.base_offset) as i32,
        }));
    }
    if info.total_bytes > u64::from(config.segment_bytes_max) {
        return Err(LogError::BatchTooLarge {
            batch_bytes: info.total_bytes,
            segment_bytes_max: config.segment_bytes_max,
        });
    }
    Ok(())
}

/// Reads from one segment; `None` if `offset` is past its end.
fn read_segment(
    seg: &Segment,
    offset: i64,
    max_bytes: u32,
    limit_offset: i64,
) -> Result<Option<FetchSlice>, LogError> {
    let (size, next) = {
        let meta = seg.meta();
        (meta.size_bytes, meta.next_offset)
    };
    if offset >= next {
        return Ok(None);
    }
    let Some((pos, first)) = seg.find_batch(offset, size)? else {
        return Ok(None);
    };
    if first.last_offset >= limit_offset {
        return Ok(None);
    }
    let upper_pos = if limit_offset < next {
        seg.find_batch(limit_offset, size)?.map_or(size, |(p, _)| p)
    } else {
        size
    };
    let limit = (u64::from(pos) + u64::from(max_bytes)).min(u64::from(upper_pos)) as u32;
    let mut end = seg.batch_boundary_before(pos, limit, size)?;
    if end <= pos {
        end = pos + first.total_bytes as u32;
    }
    Ok(Some(FetchSlice {
        segment: seg.log.clone(),
        position_bytes: u64::from(pos),
        len_bytes: end - pos,
        first_offset: first.base_offset,
    }))
}

fn slice_of(seg: &Segment, pos: u32, info: &BatchInfo) -> FetchSlice {
    FetchSlice {
        segment: seg.log.clone(),
        position_bytes: u64::from(pos),
        len_bytes: info.total_bytes as u32,
        first_offset: info.base_offset,
    }
}

/// A segment's age for `retention_ms`: its newest batch timestamp, or the file's modification
/// time when no batch carries one (Kafka's rule).
fn segment_time_ms(seg: &Segment) -> i64 {
    let max_ts = seg.meta().max_timestamp;
    if max_ts != NO_TIMESTAMP {
        return max_ts;
    }
    let modified = seg.log.file().metadata().and_then(|m| m.modified()).ok();
    modified
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(i64::MAX, |d| d.as_millis() as i64)
}
