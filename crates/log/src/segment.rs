//! One segment: `<base>.log` (batches back to back), `<base>.index` and `<base>.timeindex`.
//!
//! Writers are serialized by the log's append lock; readers share the segment through an `Arc`
//! and read with positioned reads (`pread`), so neither blocks the other for longer than the
//! copy of a few fields under `meta`'s lock.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::batch::{self, BatchInfo, HEADER_BYTES};
use crate::error::LogError;
use crate::faults::{DiskFaults, FileOp};
use crate::index::{self, OffsetEntry, TimeEntry, OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES};

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
/// Appended to the three file names of a segment being deleted (as Kafka does), so a crash in
/// the middle of a deletion never leaves a half-present segment that looks live.
pub const DELETED_SUFFIX: &str = ".deleted";
/// Kafka's "no timestamp" value.
pub const NO_TIMESTAMP: i64 = -1;

/// `00000000000000000042.log`: the base offset in 20 digits, Kafka's naming.
pub fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}.{suffix}")
}

/// The base offset of a segment file name, if it is one (`<20 digits>.<suffix>`).
pub fn parse_file_name(name: &str, suffix: &str) -> Option<i64> {
    let digits = name.strip_suffix(suffix)?.strip_suffix('.')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()
}

/// A segment's `.log` file, shared with readers. Holding one keeps the data readable even
/// after retention deleted the segment (an open descriptor outlives the unlink).
#[derive(Debug)]
pub struct SegmentFile {
    base_offset: i64,
    path: PathBuf,
    file: File,
    /// The log's fault-injection handle (a test seam; see [`crate::DiskFaults`]). Every
    /// system call on this segment's files asks it first.
    faults: DiskFaults,
}

impl SegmentFile {
    /// The offset of the segment's first batch (its file name).
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// The path the segment had when opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for zero-copy sends (`sendfile`) of a [`crate::FetchSlice`].
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Fills `buf` from byte `position` of the file.
    pub fn read_exact_at(&self, buf: &mut [u8], position: u64) -> Result<(), LogError> {
        self.faults
            .check(FileOp::Read)
            .and_then(|()| self.file.read_exact_at(buf, position))
            .map_err(|e| LogError::io("read", &self.path, e))
    }

    /// Writes all of `buf` at `position`. On an error, any prefix of `buf` may have reached
    /// the file (a short write): the caller must not count those bytes as part of the log.
    fn write_all_at(&self, buf: &[u8], position: u64) -> Result<(), LogError> {
        pwrite_all(&self.faults, &self.file, buf, position)
            .map_err(|e| LogError::io("write", &self.path, e))
    }

    fn set_len(&self, len_bytes: u64) -> Result<(), LogError> {
        self.faults
            .check(FileOp::Write)
            .and_then(|()| self.file.set_len(len_bytes))
            .map_err(|e| LogError::io("truncate", &self.path, e))
    }

    fn corrupt(&self, position_bytes: u64, reason: impl Into<String>) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            position_bytes,
            reason: reason.into(),
        }
    }
}

/// Limits that decide index entries and rolls, copied from the config.
#[derive(Debug, Clone, Copy)]
pub struct IndexLimits {
    pub index_interval_bytes: u32,
    pub offset_entries_max: usize,
    pub time_entries_max: usize,
}

/// In-memory state of a segment. Invariant: `size_bytes` is the end of the last whole batch
/// written, and every entry points at a batch start below it.
#[derive(Debug, Clone)]
pub struct SegmentMeta {
    pub size_bytes: u32,
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    pub offset_entries: Vec<OffsetEntry>,
    pub time_entries: Vec<TimeEntry>,
    /// How many entries of each index are already written to its file.
    pub offset_entries_on_disk: usize,
    pub time_entries_on_disk: usize,
    bytes_since_index_entry: u64,
    /// Wall-clock time of the first append since this segment was created or opened, for
    /// `segment_ms`.
    pub first_append_ms: Option<i64>,
}

impl SegmentMeta {
    fn empty(base_offset: i64) -> Self {
        SegmentMeta {
            size_bytes: 0,
            next_offset: base_offset,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            offset_entries: Vec::new(),
            time_entries: Vec::new(),
            offset_entries_on_disk: 0,
            time_entries_on_disk: 0,
            bytes_since_index_entry: 0,
            first_append_ms: None,
        }
    }

    /// Accounts for a batch written at `position`: Kafka's rule, an index entry once more than
    /// `index_interval_bytes` were written since the previous one, and a time entry at the same
    /// moment when the max timestamp grew.
    fn record_batch(&mut self, base: i64, position: u32, info: &BatchInfo, limits: &IndexLimits) {
        if info.max_timestamp > self.max_timestamp {
            self.max_timestamp = info.max_timestamp;
            self.offset_of_max_timestamp = info.last_offset;
        }
        if self.bytes_since_index_entry > u64::from(limits.index_interval_bytes) {
            let relative_offset = relative(base, info.last_offset);
            self.offset_entries.push(OffsetEntry {
                relative_offset,
                position,
            });
            self.maybe_append_time_entry(base);
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += info.total_bytes;
        self.size_bytes = position + info.total_bytes as u32;
        self.next_offset = info.last_offset + 1;
    }

    fn maybe_append_time_entry(&mut self, base: i64) {
        let last_ts = self
            .time_entries
            .last()
            .map_or(NO_TIMESTAMP, |e| e.timestamp);
        if self.max_timestamp > last_ts {
            let relative_offset = relative(base, self.offset_of_max_timestamp);
            self.time_entries.push(TimeEntry {
                timestamp: self.max_timestamp,
                relative_offset,
            });
        }
    }

    /// An index is full: the next batch goes to a new segment.
    pub fn indexes_full(&self, limits: &IndexLimits) -> bool {
        self.offset_entries.len() >= limits.offset_entries_max
            || self.time_entries.len() >= limits.time_entries_max
    }
}

fn relative(base: i64, offset: i64) -> u32 {
    let rel = offset - base;
    assert!(
        (0..=i64::from(i32::MAX)).contains(&rel),
        "relative offset {rel} out of range"
    );
    rel as u32
}

/// One segment and its two indexes.
#[derive(Debug)]
pub struct Segment {
    pub log: std::sync::Arc<SegmentFile>,
    /// Index files are opened only to write or sync them (at seal, flush of a sealed segment,
    /// recovery, truncation), so a segment holds one descriptor, not three: a broker with
    /// many partitions runs out of descriptors later.
    index_path: PathBuf,
    time_index_path: PathBuf,
    meta: RwLock<SegmentMeta>,
    /// An index file did not exist when the segment was opened (it must be rebuilt).
    indexes_missing: bool,
}

/// Where a scan of batch headers stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEnd {
    /// End of the last valid batch.
    pub valid_end_bytes: u64,
    /// Why the scan stopped before the end of the file, if it did (torn or corrupt tail).
    pub invalid_reason: Option<String>,
    /// Bytes read from the `.log` file.
    pub bytes_read: u64,
}

/// How [`open_file`] opens a segment's file.
#[derive(Clone, Copy)]
enum FileMode {
    /// A new, empty file (replacing a stale one of the same name).
    Create,
    /// The file must exist.
    Existing,
    /// Kept if it exists, created empty otherwise.
    CreateIfMissing,
}

/// Opens one of a segment's files for reading and writing, through the fault seam
/// ([`FileOp::Create`]).
fn open_file(
    dir: &Path,
    base_offset: i64,
    suffix: &str,
    faults: &DiskFaults,
    mode: FileMode,
) -> Result<(PathBuf, File), LogError> {
    let path = dir.join(file_name(base_offset, suffix));
    let (create, truncate, what) = match mode {
        FileMode::Create => (true, true, "create"),
        FileMode::Existing => (false, false, "open"),
        FileMode::CreateIfMissing => (true, false, "open"),
    };
    let file = faults
        .check(FileOp::Create)
        .and_then(|()| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(truncate)
                .open(&path)
        })
        .map_err(|e| LogError::io(what, &path, e))?;
    Ok((path, file))
}

impl Segment {
    /// Creates a new, empty segment (replacing stale files of the same name).
    pub fn create(dir: &Path, base_offset: i64, faults: &DiskFaults) -> Result<Segment, LogError> {
        let open = |suffix| open_file(dir, base_offset, suffix, faults, FileMode::Create);
        let files = (
            open(LOG_SUFFIX)?,
            open(INDEX_SUFFIX)?,
            open(TIME_INDEX_SUFFIX)?,
        );
        Ok(Segment::from_files(
            base_offset,
            files,
            SegmentMeta::empty(base_offset),
            faults,
        ))
    }

    /// Opens an existing segment's files (the indexes are created if missing) with empty
    /// metadata; the caller loads or rebuilds it.
    pub fn open(dir: &Path, base_offset: i64, faults: &DiskFaults) -> Result<Segment, LogError> {
        let open = |suffix, mode| open_file(dir, base_offset, suffix, faults, mode);
        let indexes_missing = [INDEX_SUFFIX, TIME_INDEX_SUFFIX]
            .iter()
            .any(|s| !dir.join(file_name(base_offset, s)).exists());
        let files = (
            open(LOG_SUFFIX, FileMode::Existing)?,
            open(INDEX_SUFFIX, FileMode::CreateIfMissing)?,
            open(TIME_INDEX_SUFFIX, FileMode::CreateIfMissing)?,
        );
        let mut seg =
            Segment::from_files(base_offset, files, SegmentMeta::empty(base_offset), faults);
        seg.indexes_missing = indexes_missing;
        Ok(seg)
    }

    fn from_files(
        base_offset: i64,
        ((log_path, log), (index_path, _), (time_index_path, _)): (
            (PathBuf, File),
            (PathBuf, File),
            (PathBuf, File),
        ),
        meta: SegmentMeta,
        faults: &DiskFaults,
    ) -> Segment {
        Segment {
            log: std::sync::Arc::new(SegmentFile {
                base_offset,
                path: log_path,
                file: log,
                faults: faults.clone(),
            }),
            index_path,
            time_index_path,
            meta: RwLock::new(meta),
            indexes_missing: false,
        }
    }

    pub fn base_offset(&self) -> i64 {
        self.log.base_offset
    }

    pub fn meta(&self) -> RwLockReadGuard<'_, SegmentMeta> {
        self.meta.read().unwrap_or_else(|p| p.into_inner())
    }

    fn meta_mut(&self) -> RwLockWriteGuard<'_, SegmentMeta> {
        self.meta.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn size_bytes(&self) -> u32 {
        self.meta().size_bytes
    }

    pub fn next_offset(&self) -> i64 {
        self.meta().next_offset
    }

    /// Length of the `.log` file on disk (may exceed `size_bytes` before recovery).
    pub fn file_len_bytes(&self) -> Result<u64, LogError> {
        self.log
            .file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| LogError::io("stat", &self.log.path, e))
    }

    /// Writes an already validated and offset-assigned batch at the end of the segment.
    /// Called under the log's append lock.
    pub fn append(
        &self,
        bytes: &[u8],
        info: &BatchInfo,
        limits: &IndexLimits,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let position = self.size_bytes();
        self.log.write_all_at(bytes, u64::from(position))?;
        let mut meta = self.meta_mut();
        meta.first_append_ms.get_or_insert(now_ms);
        meta.record_batch(self.base_offset(), position, info, limits);
        Ok(())
    }

    /// Marks the end of writes to this segment (roll or close): a last time-index entry for
    /// the segment's max timestamp (so that reopening knows it without reading the data), and
    /// the index entries written to their files (fsynced later by a flush).
    pub fn seal(&self) -> Result<(), LogError> {
        {
            let mut meta = self.meta_mut();
            let base = self.base_offset();
            if meta.size_bytes > 0 {
                meta.maybe_append_time_entry(base);
            }
        }
        self.write_index_files()
    }

    /// Writes index entries not yet in their files.
    pub fn write_index_files(&self) -> Result<(), LogError> {
        let mut meta = self.meta_mut();
        let mut buf = Vec::new();
        index::encode_offset_entries(
            &meta.offset_entries[meta.offset_entries_on_disk..],
            &mut buf,
        );
        let at = (meta.offset_entries_on_disk * OFFSET_ENTRY_BYTES) as u64;
        write_at(&self.log.faults, &self.index_path, &buf, at)?;
        meta.offset_entries_on_disk = meta.offset_entries.len();
        buf.clear();
        index::encode_time_entries(&meta.time_entries[meta.time_entries_on_disk..], &mut buf);
        let at = (meta.time_entries_on_disk * TIME_ENTRY_BYTES) as u64;
        write_at(&self.log.faults, &self.time_index_path, &buf, at)?;
        meta.time_entries_on_disk = meta.time_entries.len();
        Ok(())
    }

    /// fsyncs the data file (`fdatasync`: data and the size needed to read it back).
    pub fn sync_data(&self) -> Result<(), LogError> {
        self.log
            .faults
            .check(FileOp::Sync)
            .and_then(|()| self.log.file.sync_data())
            .map_err(|e| LogError::io("fsync", &self.log.path, e))
    }

    /// Writes and fsyncs both index files.
    pub fn sync_indexes(&self) -> Result<(), LogError> {
        self.write_index_files()?;
        for path in [&self.index_path, &self.time_index_path] {
            if let Some(file) = open_index(path)? {
                self.log
                    .faults
                    .check(FileOp::Sync)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| LogError::io("fsync", path, e))?;
            }
        }
        Ok(())
    }

    /// Loads the indexes of a segment trusted to be complete (below the recovery point or
    /// after a clean shutdown). Returns false when an index is damaged (the caller rebuilds).
    pub fn load_trusted(&self, next_offset_hint: Option<i64>) -> Result<bool, LogError> {
        if self.indexes_missing {
            return Ok(false);
        }
        let log_len = self.file_len_bytes()?;
        let Ok(size_bytes) = u32::try_from(log_len) else {
            return Ok(false);
        };
        let index_bytes = read_file(&self.log.faults, &self.index_path)?;
        let time_bytes = read_file(&self.log.faults, &self.time_index_path)?;
        let base = self.base_offset();
        let next_rel = next_offset_hint.map(|n| (n - base).max(0) as u64);
        let Some(offsets) = index::decode_offset_entries(&index_bytes, log_len) else {
            return Ok(false);
        };
        let Some(times) = index::decode_time_entries(&time_bytes, next_rel) else {
            return Ok(false);
        };
        if log_len > 0 && times.is_empty() {
            // A sealed non-empty segment always has its final time entry.
            return Ok(false);
        }
        let mut meta = SegmentMeta::empty(base);
        if let Some(last) = times.last() {
            meta.max_timestamp = last.timestamp;
            meta.offset_of_max_timestamp = base + i64::from(last.relative_offset);
        }
        meta.size_bytes = size_bytes;
        meta.next_offset = next_offset_hint.unwrap_or(base);
        meta.offset_entries_on_disk = offsets.len();
        meta.time_entries_on_disk = times.len();
        meta.offset_entries = offsets;
        meta.time_entries = times;
        *self.meta_mut() = meta;
        Ok(true)
    }

    /// Rebuilds metadata and indexes by scanning every batch from the start, validating
    /// length, CRC and dense offsets; truncates the file at the first invalid batch (a torn or
    /// corrupt tail). The index files are rewritten (not fsynced).
    pub fn recover(&self, limits: &IndexLimits) -> Result<ScanEnd, LogError> {
        let base = self.base_offset();
        let mut meta = SegmentMeta::empty(base);
        let file_len = self.file_len_bytes()?;
        let end = self.scan(0, file_len, Some(base), true, &mut |pos, info| {
            meta.record_batch(base, pos, info, limits);
        })?;
        if end.valid_end_bytes < file_len {
            self.log.set_len(end.valid_end_bytes)?;
        }
        self.replace_meta_and_index_files(meta)?;
        Ok(end)
    }

    /// After a clean shutdown: finds the segment's end by scanning only from the last index
    /// entry. Returns false if that tail does not validate (the caller then recovers).
    pub fn load_tail(&self, limits: &IndexLimits) -> Result<(bool, u64), LogError> {
        let base = self.base_offset();
        let file_len = self.file_len_bytes()?;
        let (start, mut meta) = {
            let meta = self.meta();
            (
                meta.offset_entries.last().map_or(0, |e| e.position),
                meta.clone(),
            )
        };
        meta.bytes_since_index_entry = 0;
        let mut last = None;
        let expected = (start == 0).then_some(base);
        let end = self.scan(start, file_len, expected, true, &mut |pos, info| {
            meta.max_timestamp = meta.max_timestamp.max(info.max_timestamp);
            if pos > start {
                meta.record_batch(base, pos, info, limits);
            } else {
                meta.bytes_since_index_entry = info.total_bytes;
            }
            last = Some(info.last_offset);
        })?;
        if end.invalid_reason.is_some() || end.valid_end_bytes != file_len {
            return Ok((false, end.bytes_read));
        }
        meta.size_bytes = file_len as u32;
        meta.next_offset = last.map_or(base, |l| l + 1);
        *self.meta_mut() = meta;
        Ok((true, end.bytes_read))
    }

    /// Walks batches from `start` to `end_bytes`, calling `on_batch(position, info)` for each
    /// valid one. With `validate`, reads whole batches and checks CRC; `expected_base` checks
    /// that offsets are dense from there.
    pub fn scan(
        &self,
        start: u32,
        end_bytes: u64,
        mut expected_base: Option<i64>,
        validate: bool,
        on_batch: &mut dyn FnMut(u32, &BatchInfo),
    ) -> Result<ScanEnd, LogError> {
        let mut pos = u64::from(start);
        let mut bytes_read = 0u64;
        let mut buf = vec![0u8; HEADER_BYTES];
        let stop = |pos: u64, bytes_read: u64, reason: String| ScanEnd {
            valid_end_bytes: pos,
            invalid_reason: Some(reason),
            bytes_read,
        };
        while pos < end_bytes {
            if end_bytes - pos < HEADER_BYTES as u64 {
                return Ok(stop(pos, bytes_read, "partial batch header".into()));
            }
            buf.resize(HEADER_BYTES, 0);
            self.log.read_exact_at(&mut buf, pos)?;
            bytes_read += HEADER_BYTES as u64;
            let mut info = match batch::parse_header(&buf) {
                Ok(info) => info,
                Err(e) => return Ok(stop(pos, bytes_read, format!("bad header: {e}"))),
            };
            if info.total_bytes > end_bytes - pos || pos + info.total_bytes > u64::from(u32::MAX) {
                return Ok(stop(
                    pos,
                    bytes_read,
                    "batch extends past end of file".into(),
                ));
            }
            if validate {
                buf.resize(info.total_bytes as usize, 0);
                self.log
                    .read_exact_at(&mut buf[HEADER_BYTES..], pos + HEADER_BYTES as u64)?;
                bytes_read += info.total_bytes - HEADER_BYTES as u64;
                info = match batch::validate(&buf) {
                    Ok(info) => info,
                    Err(e) => return Ok(stop(pos, bytes_read, format!("invalid batch: {e}"))),
                };
            }
            if let Some(expected) = expected_base {
                if info.base_offset != expected || info.last_offset < info.base_offset {
                    let reason =
                        format!("base offset {} where {expected} expected", info.base_offset);
                    return Ok(stop(pos, bytes_read, reason));
                }
            }
            let seg_base = self.base_offset();
            let in_segment = info.base_offset >= seg_base
                && info.last_offset >= info.base_offset
                && info.last_offset - seg_base <= i64::from(i32::MAX);
            if !in_segment {
                let reason = "offsets outside the segment's range".to_string();
                return Ok(stop(pos, bytes_read, reason));
            }
            on_batch(pos as u32, &info);
            expected_base = Some(info.last_offset + 1);
            pos += info.total_bytes;
        }
        Ok(ScanEnd {
            valid_end_bytes: pos,
            invalid_reason: None,
            bytes_read,
        })
    }

    fn replace_meta_and_index_files(&self, mut meta: SegmentMeta) -> Result<(), LogError> {
        truncate_file(&self.log.faults, &self.index_path, 0)?;
        truncate_file(&self.log.faults, &self.time_index_path, 0)?;
        meta.offset_entries_on_disk = 0;
        meta.time_entries_on_disk = 0;
        *self.meta_mut() = meta;
        self.write_index_files()
    }

    /// Reads and parses the batch header at `position`, bounded by `size_bytes`.
    pub fn header_at(&self, position: u32, size_bytes: u32) -> Result<BatchInfo, LogError> {
        let pos = u64::from(position);
        if pos + HEADER_BYTES as u64 > u64::from(size_bytes) {
            return Err(self.log.corrupt(pos, "batch header past segment end"));
        }
        let mut buf = [0u8; HEADER_BYTES];
        self.log.read_exact_at(&mut buf, pos)?;
        let info = batch::parse_header(&buf).map_err(|e| self.log.corrupt(pos, e.to_string()))?;
        if pos + info.total_bytes > u64::from(size_bytes) {
            return Err(self.log.corrupt(pos, "batch extends past segment end"));
        }
        Ok(info)
    }

    /// The first batch whose last offset is `>= offset` (the batch containing it), if any,
    /// within the first `size_bytes` of the segment.
    pub fn find_batch(
        &self,
        offset: i64,
        size_bytes: u32,
    ) -> Result<Option<(u32, BatchInfo)>, LogError> {
        let base = self.base_offset();
        let start = {
            let meta = self.meta();
            let rel = (offset - base).clamp(0, i64::from(u32::MAX)) as u32;
            index::offset_floor(&meta.offset_entries, rel).map_or(0, |e| e.position)
        };
        let mut pos = start.min(size_bytes);
        while pos < size_bytes {
            let info = self.header_at(pos, size_bytes)?;
            if info.last_offset >= offset {
                return Ok(Some((pos, info)));
            }
            pos += info.total_bytes as u32;
        }
        Ok(None)
    }

    /// The end of the last whole batch that starts at or after `start` and ends at or before
    /// `limit`; `start` itself when the first batch does not fit.
    pub fn batch_boundary_before(
        &self,
        start: u32,
        limit: u32,
        size_bytes: u32,
    ) -> Result<u32, LogError> {
        let jump = {
            let meta = self.meta();
            index::position_floor(&meta.offset_entries, limit).map_or(0, |e| e.position)
        };
        let mut pos = start.max(jump);
        loop {
            if pos >= size_bytes.min(limit) {
                return Ok(pos.min(limit));
            }
            let info = self.header_at(pos, size_bytes)?;
            let end = u64::from(pos) + info.total_bytes;
            if end > u64::from(limit) {
                return Ok(pos);
            }
            pos = end as u32;
        }
    }

    /// Cuts the segment so that it ends just before the batch at `position` whose base offset
    /// is `next_offset`, and rebuilds its metadata from batch headers (truncation is rare: it
    /// serves replication).
    pub fn truncate_to(&self, position: u32, limits: &IndexLimits) -> Result<(), LogError> {
        self.log.set_len(u64::from(position))?;
        let base = self.base_offset();
        let mut meta = SegmentMeta::empty(base);
        self.scan(
            0,
            u64::from(position),
            Some(base),
            false,
            &mut |pos, info| {
                meta.record_batch(base, pos, info, limits);
            },
        )?;
        self.replace_meta_and_index_files(meta)?;
        self.sync_data()?;
        self.sync_indexes()
    }

    /// Renames the three files to `*.deleted`, then removes them. Readers holding the
    /// [`SegmentFile`] keep reading through their open descriptor.
    pub fn delete_files(&self) -> Result<(), LogError> {
        let paths = [&self.log.path, &self.index_path, &self.time_index_path];
        let mut renamed = Vec::with_capacity(3);
        for path in paths {
            let mut deleted = path.clone().into_os_string();
            deleted.push(DELETED_SUFFIX);
            let deleted = PathBuf::from(deleted);
            rename_if_present(path, &deleted)?;
            renamed.push(deleted);
        }
        for path in renamed {
            remove_if_present(&path)?;
        }
        Ok(())
    }
}

/// Opens an index file for writing; `None` once the segment was deleted (a flush may still
/// hold it), so that a late write never recreates a deleted index.
fn open_index(path: &Path) -> Result<Option<File>, LogError> {
    match OpenOptions::new().write(true).open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io("open", path, e)),
    }
}

fn write_at(faults: &DiskFaults, path: &Path, buf: &[u8], at: u64) -> Result<(), LogError> {
    if buf.is_empty() {
        return Ok(());
    }
    let Some(file) = open_index(path)? else {
        return Ok(());
    };
    pwrite_all(faults, &file, buf, at).map_err(|e| LogError::io("write", path, e))
}

/// `pwrite` of all of `buf` at `at`, through the fault seam: an armed torn-write fault stores
/// a prefix of `buf`, then fails, as a real short write followed by an error does.
fn pwrite_all(faults: &DiskFaults, file: &File, buf: &[u8], at: u64) -> std::io::Result<()> {
    match faults.check_write(buf.len()) {
        Ok(()) => file.write_all_at(buf, at),
        Err(torn) => file
            .write_all_at(&buf[..torn.written_bytes], at)
            .and(Err(torn.error)),
    }
}

fn truncate_file(faults: &DiskFaults, path: &Path, len: u64) -> Result<(), LogError> {
    match open_index(path)? {
        Some(file) => faults
            .check(FileOp::Write)
            .and_then(|()| file.set_len(len))
            .map_err(|e| LogError::io("truncate", path, e)),
        None => Ok(()),
    }
}

fn read_file(faults: &DiskFaults, path: &Path) -> Result<Vec<u8>, LogError> {
    faults
        .check(FileOp::Read)
        .and_then(|()| fs::read(path))
        .map_err(|e| LogError::io("read", path, e))
}

fn rename_if_present(from: &Path, to: &Path) -> Result<(), LogError> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io("rename", from, e)),
        _ => Ok(()),
    }
}

pub fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io("remove", path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_twenty_digits() {
        assert_eq!(file_name(42, LOG_SUFFIX), "00000000000000000042.log");
        assert_eq!(
            parse_file_name("00000000000000000042.log", LOG_SUFFIX),
            Some(42)
        );
        assert_eq!(
            parse_file_name("00000000000000000042.index", LOG_SUFFIX),
            None
        );
        assert_eq!(parse_file_name("0000000000000000042.log", LOG_SUFFIX), None);
        assert_eq!(
            parse_file_name("0000000000000000004a.log", LOG_SUFFIX),
            None
        );
        assert_eq!(
            parse_file_name("00000000000000000042.log.deleted", LOG_SUFFIX),
            None
        );
    }
}
