//! The Raft log and hard state, in files of one directory.
//!
//! - `raft-log`: append-only frames (`length: u32, crc32c: u32, entry`), fsync'd before an
//!   append is acknowledged. A torn frame at the tail is cut off on open; truncation is
//!   `set_len` to the frame boundary; a purge rewrites the file without the purged prefix.
//! - `raft-vote`: the vote, replaced atomically and fsync'd before `save_vote` returns.
//! - `raft-purged`: the last purged log id, replaced atomically and fsync'd.
//! - `raft-committed`: the last committed log id, overwritten in place and not fsync'd: losing
//!   or tearing it only means re-applying fewer entries until the leader commits again.
//!
//! The metadata log is small, so every entry is also kept in memory; reads never touch disk.
//! I/O is blocking std::fs inside async fns: metadata writes are rare and tiny, and the
//! blocking keeps the order of writes obvious.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};

use crate::disk::{self, invalid, Reader, Writer};
use crate::types::{Entry, LogId, MetaRaft, Vote};

const LOG_FILE: &str = "raft-log";
const VOTE_FILE: &str = "raft-vote";
const PURGED_FILE: &str = "raft-purged";
const COMMITTED_FILE: &str = "raft-committed";

/// The log store handed to openraft. Cloning shares the same files and state.
#[derive(Clone)]
pub struct FileLogStore {
    inner: Arc<Mutex<LogInner>>,
}

struct LogInner {
    dir: PathBuf,
    file: File,
    /// Entries by index, each with the byte offset of its frame in `raft-log`.
    entries: BTreeMap<u64, (Entry, u64)>,
    /// Length of `raft-log`: where the next frame goes.
    end_offset: u64,
    vote: Option<Vote>,
    committed: Option<LogId>,
    /// `raft-committed`, kept open because it is rewritten on every commit.
    committed_file: Option<File>,
    last_purged: Option<LogId>,
}

impl FileLogStore {
    /// Opens (creating if needed) the store in `dir`, recovering after a crash: a torn tail
    /// is cut off, entries already purged are dropped.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let vote = read_sealed(dir, VOTE_FILE, |r| r.vote())?;
        let last_purged = read_sealed(dir, PURGED_FILE, |r| r.log_id())?;
        // The committed id is advisory (written without fsync): unreadable means unknown.
        let committed = read_sealed(dir, COMMITTED_FILE, |r| r.log_id()).unwrap_or(None);
        let (file, entries, end_offset) = recover_log(dir, last_purged.as_ref())?;
        let inner = LogInner {
            dir: dir.to_path_buf(),
            file,
            entries,
            end_offset,
            vote,
            committed,
            committed_file: None,
            last_purged,
        };
        Ok(FileLogStore {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LogInner> {
        // A poisoned lock means a panic mid-update; the in-memory state can no longer be
        // trusted to match the files, so stopping is the only safe choice.
        self.inner.lock().expect("log store lock poisoned")
    }
}

/// Reads a sealed file holding one value; `None` when the file does not exist.
fn read_sealed<T>(
    dir: &Path,
    name: &str,
    read: impl FnOnce(&mut Reader<'_>) -> io::Result<T>,
) -> io::Result<Option<T>> {
    let Some(bytes) = disk::read_optional(dir, name)? else {
        return Ok(None);
    };
    let body = disk::unseal(&bytes).map_err(|e| invalid(&format!("{name}: {e}")))?;
    let mut r = Reader::new(body);
    let value = read(&mut r)?;
    r.finish()?;
    Ok(Some(value))
}

type RecoveredLog = (File, BTreeMap<u64, (Entry, u64)>, u64);

/// Reads every intact frame of `raft-log`, cuts a torn tail, checks indexes are contiguous.
fn recover_log(dir: &Path, last_purged: Option<&LogId>) -> io::Result<RecoveredLog> {
    let path = dir.join(LOG_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let mut entries = BTreeMap::new();
    let mut offset = 0usize;
    let purged_index = last_purged.map(|id| id.index);
    while let Some((payload, frame_len)) = disk::read_frame(&bytes[offset..]) {
        let entry = disk::decode_entry(payload)?;
        let index = entry.log_id.index;
        if let Some((&last, _)) = entries.last_key_value() {
            if index != last + 1 {
                return Err(invalid("raft-log: entry indexes are not contiguous"));
            }
        }
        if purged_index.is_none_or(|p| index > p) {
            entries.insert(index, (entry, offset as u64));
        }
        offset += frame_len;
    }
    if offset < bytes.len() {
        if !disk::is_torn_tail(&bytes[offset..]) {
            // Damage with intact-looking data behind it is not a crash mid-append: cutting
            // there would silently drop acknowledged entries, so refuse to start instead.
            return Err(invalid("raft-log: damaged frame in the middle of the log"));
        }
        // A frame cut short by a crash during append; it was never acknowledged.
        file.set_len(offset as u64)?;
        file.sync_all()?;
    }
    file.seek(SeekFrom::Start(offset as u64))?;
    Ok((file, entries, offset as u64))
}

impl LogInner {
    fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .last_key_value()
            .map(|(_, (e, _))| e.log_id)
            .or(self.last_purged)
    }

    fn append(&mut self, entries: impl IntoIterator<Item = Entry>) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut added = Vec::new();
        for entry in entries {
            let offset = self.end_offset + buf.len() as u64;
            buf.extend_from_slice(&disk::frame(&disk::encode_entry(&entry)?)?);
            added.push((entry, offset));
        }
        self.file.seek(SeekFrom::Start(self.end_offset))?;
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.end_offset += buf.len() as u64;
        for (entry, offset) in added {
            self.entries.insert(entry.log_id.index, (entry, offset));
        }
        Ok(())
    }

    /// Removes every entry after `last` (all of them for `None`).
    fn truncate_after(&mut self, last: Option<&LogId>) -> io::Result<()> {
        let first_removed = last.map_or(0, |id| id.index + 1);
        let Some((_, offset)) = self.entries.range(first_removed..).next().map(|(_, v)| v) else {
            return Ok(());
        };
        let offset = *offset;
        self.file.set_len(offset)?;
        self.file.sync_all()?;
        self.end_offset = offset;
        self.entries.split_off(&first_removed);
        Ok(())
    }

    /// Drops entries up to `upto` inclusive: records the purge durably first, then rewrites
    /// the log without them (a crash in between leaves entries that open() drops again).
    fn purge(&mut self, upto: LogId) -> io::Result<()> {
        let mut w = Writer::default();
        w.log_id(&upto);
        disk::write_atomic(&self.dir, PURGED_FILE, &disk::seal(&w.buf), true)?;
        self.last_purged = Some(upto);
        self.entries = self.entries.split_off(&(upto.index + 1));
        self.rewrite_log()
    }

    fn rewrite_log(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        for (entry, offset) in self.entries.values_mut() {
            *offset = buf.len() as u64;
            buf.extend_from_slice(&disk::frame(&disk::encode_entry(entry)?)?);
        }
        disk::write_atomic(&self.dir, LOG_FILE, &buf, true)?;
        self.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.join(LOG_FILE))?;
        self.end_offset = buf.len() as u64;
        Ok(())
    }

    fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        let mut w = Writer::default();
        w.vote(vote);
        disk::write_atomic(&self.dir, VOTE_FILE, &disk::seal(&w.buf), true)?;
        self.vote = Some(*vote);
        Ok(())
    }

    /// Overwrites `raft-committed` in place (it always has the same length), without fsync:
    /// this runs on every commit, and a rename per commit costs as much as an fsync on ext4
    /// (it forces the new file's blocks out). A torn write fails its CRC and reads as "unknown".
    fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        if let Some(id) = &committed {
            let mut w = Writer::default();
            w.log_id(id);
            let file = match &mut self.committed_file {
                Some(file) => file,
                None => self.committed_file.insert(
                    OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(self.dir.join(COMMITTED_FILE))?,
                ),
            };
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&disk::seal(&w.buf))?;
        }
        self.committed = committed;
        Ok(())
    }

    fn range<RB: RangeBounds<u64>>(&self, range: RB) -> Vec<Entry> {
        let start = range.start_bound().cloned();
        let end = range.end_bound().cloned();
        self.entries
            .range((start, end))
            .map(|(_, (e, _))| e.clone())
            .collect()
    }
}

/// Reads the log for openraft (replication, apply). Shares the store's state.
#[derive(Clone)]
pub struct FileLogReader {
    store: FileLogStore,
}

impl RaftLogReader<MetaRaft> for FileLogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.store.lock().range(range))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.store.lock().vote)
    }
}

impl RaftLogReader<MetaRaft> for FileLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.lock().range(range))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.lock().vote)
    }
}

impl RaftLogStorage<MetaRaft> for FileLogStore {
    type LogReader = FileLogReader;

    async fn get_log_state(&mut self) -> Result<LogState<MetaRaft>, io::Error> {
        let inner = self.lock();
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: inner.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        FileLogReader {
            store: self.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.lock().save_vote(vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.lock().save_committed(committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<MetaRaft>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let result = self.lock().append(entries);
        match result {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.lock().truncate_after(last_log_id.as_ref())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.lock().purge(log_id)
    }
}

/// Used by tests in this crate to look at what is on disk.
#[cfg(test)]
impl FileLogStore {
    pub(crate) fn indexes(&self) -> Vec<u64> {
        self.lock().entries.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::MetadataBatch;
    use freshet_metadata::MetadataRecord;
    use openraft::impls::leader_id_adv::LeaderId;
    use openraft::EntryPayload;
    use std::ops::Bound;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(LeaderId { term, node_id: 1 }, index)
    }

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            log_id: log_id(term, index),
            payload: EntryPayload::Normal(MetadataBatch(vec![MetadataRecord::ClusterId(format!(
                "c{index}"
            ))])),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("freshet-raft-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn append_truncate_purge_survive_reopen() {
        let dir = temp_dir("reopen");
        let store = FileLogStore::open(&dir).unwrap();
        store.lock().append((1..=5).map(|i| entry(1, i))).unwrap();
        store.lock().truncate_after(Some(&log_id(1, 3))).unwrap();
        store.lock().append([entry(2, 4)]).unwrap();
        store.lock().purge(log_id(1, 2)).unwrap();
        store.lock().save_vote(&Vote::new(2, 1)).unwrap();
        store.lock().save_committed(Some(log_id(2, 4))).unwrap();
        assert_eq!(store.indexes(), vec![3, 4]);
        drop(store);

        let store = FileLogStore::open(&dir).unwrap();
        assert_eq!(store.indexes(), vec![3, 4]);
        let inner = store.lock();
        assert_eq!(inner.range(..), vec![entry(1, 3), entry(2, 4)]);
        assert_eq!(inner.vote, Some(Vote::new(2, 1)));
        assert_eq!(inner.committed, Some(log_id(2, 4)));
        assert_eq!(inner.last_purged, Some(log_id(1, 2)));
        assert_eq!(inner.last_log_id(), Some(log_id(2, 4)));
        drop(inner);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_tail_is_cut_and_appends_continue() {
        let dir = temp_dir("torn");
        let store = FileLogStore::open(&dir).unwrap();
        store.lock().append((1..=3).map(|i| entry(1, i))).unwrap();
        drop(store);
        // Simulate a crash in the middle of writing a fourth frame.
        let path = dir.join(LOG_FILE);
        let intact_len = std::fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        let torn = disk::frame(&disk::encode_entry(&entry(1, 4)).unwrap()).unwrap();
        file.write_all(&torn[..torn.len() - 3]).unwrap();
        drop(file);

        let store = FileLogStore::open(&dir).unwrap();
        assert_eq!(store.indexes(), vec![1, 2, 3]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), intact_len);
        store.lock().append([entry(1, 4)]).unwrap();
        drop(store);
        let store = FileLogStore::open(&dir).unwrap();
        assert_eq!(store.indexes(), vec![1, 2, 3, 4]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damage_in_the_middle_refuses_to_open() {
        let dir = temp_dir("middle");
        let store = FileLogStore::open(&dir).unwrap();
        store.lock().append((1..=3).map(|i| entry(1, i))).unwrap();
        drop(store);
        let path = dir.join(LOG_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[12] ^= 0xff; // inside the first entry's payload
        std::fs::write(&path, bytes).unwrap();
        let err = FileLogStore::open(&dir).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_vote_file_refuses_to_open() {
        let dir = temp_dir("badvote");
        let store = FileLogStore::open(&dir).unwrap();
        store.lock().save_vote(&Vote::new(1, 1)).unwrap();
        drop(store);
        let path = dir.join(VOTE_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let err = FileLogStore::open(&dir).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn range_bounds_are_honoured() {
        let dir = temp_dir("range");
        let store = FileLogStore::open(&dir).unwrap();
        store.lock().append((1..=5).map(|i| entry(1, i))).unwrap();
        let inner = store.lock();
        let indexes = |v: Vec<Entry>| v.iter().map(|e| e.log_id.index).collect::<Vec<_>>();
        assert_eq!(indexes(inner.range(2..4)), vec![2, 3]);
        assert_eq!(indexes(inner.range(4..)), vec![4, 5]);
        assert_eq!(
            indexes(inner.range((Bound::Excluded(1), Bound::Included(2)))),
            vec![2]
        );
        drop(inner);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
