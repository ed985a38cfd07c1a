//! Small files beside the segments: the recovery-point and log-start-offset checkpoints and
//! the clean-shutdown marker. Each is replaced atomically (write a temp file, fsync it, rename,
//! fsync the directory), so a crash leaves either the old or the new content, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::LogError;

/// Everything below this offset is durable with indexes; only later segments need recovery.
pub const RECOVERY_POINT_FILE: &str = "recovery-point.checkpoint";
/// The log start offset set by DeleteRecords (retention alone is visible from file names).
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset.checkpoint";
/// Present only while the log is cleanly closed: every file was fsynced and the indexes are
/// complete, so opening skips recovery.
pub const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// Suffix of a checkpoint being written; leftovers are removed at open.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Version of the checkpoint text format (first line).
const CHECKPOINT_VERSION: &str = "0";

/// The text of a checkpoint: `0\n<offset>\n`. Text like Kafka's checkpoint files, so an
/// operator can read it with `cat`.
pub fn encode(offset: i64) -> String {
    format!("{CHECKPOINT_VERSION}\n{offset}\n")
}

/// Parses a checkpoint; `None` for anything malformed (the caller then falls back to the safe
/// choice: full recovery, or the first segment's base offset).
pub fn decode(text: &str) -> Option<i64> {
    let mut lines = text.split('\n');
    let version = lines.next()?;
    let offset = lines.next()?.parse::<i64>().ok()?;
    let rest_empty = lines.all(str::is_empty);
    (version == CHECKPOINT_VERSION && offset >= 0 && rest_empty).then_some(offset)
}

pub fn read(dir: &Path, name: &str) -> Result<Option<i64>, LogError> {
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(decode(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // Invalid UTF-8 is a damaged checkpoint, not a disk error.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Ok(None),
        Err(e) => Err(LogError::io("read", path, e)),
    }
}

/// Atomically replaces checkpoint `name` with `offset`, durably.
pub fn write(dir: &Path, name: &str, offset: i64) -> Result<(), LogError> {
    write_file_atomically(dir, name, encode(offset).as_bytes())
}

pub fn write_file_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), LogError> {
    let tmp = dir.join(format!("{name}{TEMP_SUFFIX}"));
    let path = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| LogError::io("create", &tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| LogError::io("write", &tmp, e))?;
    file.sync_all()
        .map_err(|e| LogError::io("fsync", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| LogError::io("rename", &tmp, e))?;
    sync_dir(dir)
}

/// Removes a file if present, durably.
pub fn remove(dir: &Path, name: &str) -> Result<(), LogError> {
    let path = dir.join(name);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io("remove", path, e)),
    }
}

/// fsync of the directory makes file creations, renames and removals in it durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io("fsync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_exact_text() {
        assert_eq!(encode(42), "0\n42\n");
        assert_eq!(decode("0\n42\n"), Some(42));
    }

    #[test]
    fn malformed_is_none() {
        for bad in [
            "",
            "0\n",
            "1\n42\n",
            "0\n-3\n",
            "0\nx\n",
            "0\n42\n7\n",
            "0\n 42\n",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path(), RECOVERY_POINT_FILE).unwrap(), None);
        write(dir.path(), RECOVERY_POINT_FILE, 7).unwrap();
        write(dir.path(), RECOVERY_POINT_FILE, 9).unwrap();
        assert_eq!(read(dir.path(), RECOVERY_POINT_FILE).unwrap(), Some(9));
        assert!(!dir.path().join("recovery-point.checkpoint.tmp").exists());
        fs::write(dir.path().join(RECOVERY_POINT_FILE), [0xff, 0xfe]).unwrap();
        assert_eq!(read(dir.path(), RECOVERY_POINT_FILE).unwrap(), None);
    }
}
