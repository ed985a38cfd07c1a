//! Fault injection for the log's file I/O: the seam through which tests make writes, fsyncs,
//! reads and file creations fail with real `std::io::Error` values (EIO, ENOSPC, ...), which
//! then travel the same error paths as an error from the kernel.
//!
//! Every [`crate::Log`] carries one [`DiskFaults`] handle ([`crate::Log::disk_faults`]), shared
//! by all its segments. Invariant: while nothing is armed, each file operation costs one
//! relaxed load of an `AtomicU32` and a branch before the real system call, and behaves
//! exactly as without the seam; production code never arms it.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Linux `EIO`: an I/O error reported by the device.
pub const EIO: i32 = 5;
/// Linux `ENOSPC`: no space left on the device.
pub const ENOSPC: i32 = 28;

/// The kinds of file operation a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileOp {
    /// Creating or opening a segment's files (`open(2)`): a roll, a log restarted by
    /// truncation, or a reopen.
    Create,
    /// Writing segment data or index entries (`pwrite`), and cutting a file (`ftruncate`).
    Write,
    /// `fdatasync` of a segment's data or index files, and the directory fsync that makes a
    /// rolled segment's files durable.
    Sync,
    /// Reading segment data (`pread`) or index files.
    Read,
}

impl FileOp {
    fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// One injected fault: after `ok_before` more operations of its kind succeed, every later one
/// fails with `errno` until [`DiskFaults::clear`] (a failing disk keeps failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    errno: i32,
    ok_before: u64,
    torn_bytes: Option<usize>,
}

impl Fault {
    /// Fails with the OS error number `errno` (see [`EIO`], [`ENOSPC`]).
    pub fn errno(errno: i32) -> Fault {
        Fault {
            errno,
            ok_before: 0,
            torn_bytes: None,
        }
    }

    /// `EIO`, what a dying disk reports.
    pub fn eio() -> Fault {
        Fault::errno(EIO)
    }

    /// `ENOSPC`, a full file system.
    pub fn enospc() -> Fault {
        Fault::errno(ENOSPC)
    }

    /// Lets the next `n` operations of the fault's kind succeed first.
    pub fn after(self, n: u64) -> Fault {
        Fault {
            ok_before: n,
            ..self
        }
    }

    /// For [`FileOp::Write`]: the failing write first stores its first `bytes` bytes (a short
    /// write the kernel made before running out of space, or a torn write), then fails.
    pub fn torn(self, bytes: usize) -> Fault {
        Fault {
            torn_bytes: Some(bytes),
            ..self
        }
    }
}

/// A shared, cloneable switchboard of faults for one log's files.
#[derive(Debug, Clone, Default)]
pub struct DiskFaults(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// Bit [`FileOp::bit`] is set while a fault is armed for that kind: the only field the
    /// I/O paths read when nothing is armed.
    armed: AtomicU32,
    /// The armed faults by [`FileOp`] index, each with the operations it let through so far.
    faults: Mutex<[Option<(Fault, u64)>; 4]>,
    /// Errors returned so far.
    injected: AtomicU64,
}

/// What an armed write fault decided: store `written_bytes` of the buffer, then fail.
#[derive(Debug)]
pub(crate) struct WriteFault {
    pub written_bytes: usize,
    pub error: io::Error,
}

impl DiskFaults {
    pub fn new() -> DiskFaults {
        DiskFaults::default()
    }

    /// Arms `fault` for operations of kind `op`, replacing any fault armed for it.
    pub fn inject(&self, op: FileOp, fault: Fault) {
        self.0.faults.lock().unwrap_or_else(|p| p.into_inner())[op as usize] = Some((fault, 0));
        self.0.armed.fetch_or(op.bit(), Ordering::Release);
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        let mut faults = self.0.faults.lock().unwrap_or_else(|p| p.into_inner());
        self.0.armed.store(0, Ordering::Release);
        *faults = [None; 4];
    }

    /// How many errors the armed faults have returned.
    pub fn injected(&self) -> u64 {
        self.0.injected.load(Ordering::Acquire)
    }

    /// `Err` when an armed fault makes this operation fail (the caller then skips the real
    /// system call).
    #[inline]
    pub(crate) fn check(&self, op: FileOp) -> io::Result<()> {
        if self.0.armed.load(Ordering::Relaxed) & op.bit() == 0 {
            return Ok(());
        }
        self.fire(op).map_or(Ok(()), |fault| Err(error(fault)))
    }

    /// Like [`DiskFaults::check`] for a write of `len` bytes, telling how much of it to store
    /// before failing.
    #[inline]
    pub(crate) fn check_write(&self, len: usize) -> Result<(), WriteFault> {
        if self.0.armed.load(Ordering::Relaxed) & FileOp::Write.bit() == 0 {
            return Ok(());
        }
        match self.fire(FileOp::Write) {
            None => Ok(()),
            Some(fault) => Err(WriteFault {
                written_bytes: fault.torn_bytes.unwrap_or(0).min(len),
                error: error(fault),
            }),
        }
    }

    /// Counts one operation of kind `op` against its fault; `Some` when it must fail.
    #[cold]
    fn fire(&self, op: FileOp) -> Option<Fault> {
        let mut faults = self.0.faults.lock().unwrap_or_else(|p| p.into_inner());
        let (fault, passed) = faults[op as usize].as_mut()?;
        if *passed < fault.ok_before {
            *passed += 1;
            return None;
        }
        self.0.injected.fetch_add(1, Ordering::AcqRel);
        Some(*fault)
    }
}

fn error(fault: Fault) -> io::Error {
    io::Error::from_raw_os_error(fault.errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unarmed_passes_and_armed_fails_after_its_allowance() {
        let faults = DiskFaults::new();
        for op in [FileOp::Create, FileOp::Write, FileOp::Sync, FileOp::Read] {
            assert!(faults.check(op).is_ok());
        }
        faults.inject(FileOp::Sync, Fault::enospc().after(2));
        assert!(faults.check(FileOp::Sync).is_ok());
        assert!(faults.check(FileOp::Read).is_ok());
        assert!(faults.check(FileOp::Sync).is_ok());
        for _ in 0..3 {
            let e = faults.check(FileOp::Sync).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(ENOSPC));
        }
        assert_eq!(faults.injected(), 3);
        faults.clear();
        assert!(faults.check(FileOp::Sync).is_ok());
    }

    #[test]
    fn torn_writes_store_at_most_the_buffer() {
        let faults = DiskFaults::new();
        faults.inject(FileOp::Write, Fault::eio().torn(100));
        let f = faults.check_write(40).unwrap_err();
        assert_eq!((f.written_bytes, f.error.raw_os_error()), (40, Some(EIO)));
        let f = faults.check_write(400).unwrap_err();
        assert_eq!(f.written_bytes, 100);
        faults.inject(FileOp::Write, Fault::eio());
        assert_eq!(faults.check_write(400).unwrap_err().written_bytes, 0);
        // Clones share the switchboard (the log hands one to every segment).
        let clone = faults.clone();
        clone.clear();
        assert!(faults.check_write(400).is_ok());
    }
}
