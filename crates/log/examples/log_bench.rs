//! Append and read throughput of the log, next to the disk's own ceiling measured with `dd` in
//! the same run and the same directory.
//!
//! `cargo run -p freshet-log --release --example log_bench -- [DIR] [MIB_PER_CASE] [SECONDS_PER_CASE]`
//! (defaults: `target/log-bench`, 1024, 10). Each case appends until it has written
//! MIB_PER_CASE or run SECONDS_PER_CASE, whichever comes first.

#[path = "../tests/support/batch.rs"]
mod batch;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use freshet_log::{FlushPolicy, Log, LogConfig, MaintenanceTask};

const MIB: u64 = 1024 * 1024;

struct Args {
    dir: PathBuf,
    bytes_per_case: u64,
    time_per_case: Duration,
}

fn args() -> Args {
    let mut a = std::env::args().skip(1);
    let dir = a
        .next()
        .map_or_else(|| PathBuf::from("target/log-bench"), PathBuf::from);
    let mib: u64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(1024);
    let secs: u64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    Args {
        dir,
        bytes_per_case: mib * MIB,
        time_per_case: Duration::from_secs(secs),
    }
}

/// Runs dd and returns its throughput in MB/s (10^6 bytes), computed from its own report.
fn dd(dir: &Path, mib: u64, fdatasync: bool) -> f64 {
    let target = dir.join("dd.tmp");
    let mut cmd = Command::new("dd");
    cmd.arg("if=/dev/zero")
        .arg(format!("of={}", target.display()))
        .arg("bs=1M")
        .arg(format!("count={mib}"));
    if fdatasync {
        cmd.arg("conv=fdatasync");
    }
    let start = Instant::now();
    let out = cmd.output().expect("run dd");
    let elapsed = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&target);
    let report = String::from_utf8_lossy(&out.stderr);
    // "... bytes (...) copied, 1.234 s, 870 MB/s": take the seconds dd measured itself.
    let secs = report
        .split(", ")
        .find_map(|p| {
            p.strip_suffix(" s")
                .and_then(|s| s.trim().parse::<f64>().ok())
        })
        .unwrap_or(elapsed);
    (mib * MIB) as f64 / secs / 1e6
}

fn sync_all() {
    let _ = Command::new("sync").status();
}

struct Figures {
    mb_per_s: f64,
    batches_per_s: f64,
    secs: f64,
}

fn run_appends(
    args: &Args,
    name: &str,
    flush: FlushPolicy,
    batch_bytes: usize,
    writers: usize,
) -> Figures {
    let dir = args.dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let config = LogConfig {
        flush,
        segment_bytes_max: 256 * MIB as u32,
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open(&dir, config).expect("open log"));
    let _task = matches!(flush, FlushPolicy::Interval { .. })
        .then(|| MaintenanceTask::spawn(log.clone(), 100));
    let records = (batch_bytes / 1024).max(1);
    let start = Instant::now();
    let bytes_each = args.bytes_per_case / writers as u64;
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            let deadline = start + args.time_per_case;
            std::thread::spawn(move || {
                let mut b =
                    batch::filled_batch(records, batch_bytes - 61 - records * 8, w as u64 + 7, 0);
                let (mut bytes, mut batches) = (0u64, 0u64);
                while bytes < bytes_each && Instant::now() < deadline {
                    log.append(&mut b, 0).expect("append");
                    bytes += b.len() as u64;
                    batches += 1;
                }
                (bytes, batches)
            })
        })
        .collect();
    let (mut bytes, mut batches) = (0u64, 0u64);
    for h in handles {
        let (b, n) = h.join().expect("writer thread");
        bytes += b;
        batches += n;
    }
    let secs = start.elapsed().as_secs_f64();
    Figures {
        mb_per_s: bytes as f64 / secs / 1e6,
        batches_per_s: batches as f64 / secs,
        secs,
    }
}

fn run_reads(dir: &Path) -> Figures {
    let log = Log::open(
        dir,
        LogConfig {
            segment_bytes_max: 256 * MIB as u32,
            ..LogConfig::default()
        },
    )
    .expect("open log");
    let start = Instant::now();
    let (mut offset, mut bytes, mut reads) = (log.log_start_offset(), 0u64, 0u64);
    let mut buf = Vec::new();
    while let Some(slice) = log.read(offset, MIB as u32, None).expect("read") {
        buf.resize(slice.len_bytes as usize, 0);
        slice
            .segment
            .read_exact_at(&mut buf, slice.position_bytes)
            .expect("pread");
        bytes += buf.len() as u64;
        reads += 1;
        offset = next_offset(&buf);
    }
    let secs = start.elapsed().as_secs_f64();
    Figures {
        mb_per_s: bytes as f64 / secs / 1e6,
        batches_per_s: reads as f64 / secs,
        secs,
    }
}

/// The offset after the last batch in `bytes` (header fields only).
fn next_offset(bytes: &[u8]) -> i64 {
    let mut pos = 0;
    let mut next = 0;
    while pos + 61 <= bytes.len() {
        let base = i64::from_be_bytes(bytes[pos..pos + 8].try_into().unwrap());
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        let delta = i32::from_be_bytes(bytes[pos + 23..pos + 27].try_into().unwrap());
        next = base + i64::from(delta) + 1;
        pos += len + 12;
    }
    next
}

fn main() {
    let args = args();
    std::fs::create_dir_all(&args.dir).expect("create bench directory");
    let mib = args.bytes_per_case / MIB;
    sync_all();
    let dd_sync = dd(&args.dir, mib, true);
    sync_all();
    let dd_buffered = dd(&args.dir, mib, false);
    println!(
        "directory {}  ({mib} MiB or {} s per case)",
        args.dir.display(),
        args.time_per_case.as_secs()
    );
    println!("ceiling at start: dd bs=1M count={mib} conv=fdatasync {dd_sync:.0} MB/s, buffered {dd_buffered:.0} MB/s");
    println!("each case runs between two dd runs to the same directory (buffered dd for never and");
    println!("interval, conv=fdatasync for fsync) and is rated against the better of the two");
    println!();
    println!(
        "{:<26} {:>8} {:>10} {:>20} {:>8}",
        "case", "MB/s", "batches/s", "dd before/after MB/s", "% of dd"
    );
    let interval = FlushPolicy::Interval {
        flush_messages: Some(10_000),
        flush_ms: Some(1000),
    };
    let modes = [
        ("never", FlushPolicy::Never),
        ("interval", interval),
        ("fsync", FlushPolicy::EveryAppend),
    ];
    for (size_name, batch_bytes) in [("16KiB", 16 * 1024), ("1MiB", MIB as usize)] {
        for (mode_name, flush) in modes {
            report(
                &args,
                &format!("append-{size_name}-{mode_name}-1w"),
                flush,
                batch_bytes,
                1,
            );
        }
        for writers in [8, 64] {
            report(
                &args,
                &format!("append-{size_name}-fsync-{writers}w"),
                FlushPolicy::EveryAppend,
                batch_bytes,
                writers,
            );
        }
    }
    let read = run_reads(&args.dir.join("append-1MiB-never-1w"));
    println!(
        "{:<26} {:>8.0} {:>10.0}",
        "read-1MiB (page cache)", read.mb_per_s, read.batches_per_s
    );
}

/// Runs one case between two dd runs of the same kind to the same directory, and rates the
/// case against the better of the two (the machine is shared, so its ceiling moves).
fn report(args: &Args, name: &str, flush: FlushPolicy, batch_bytes: usize, writers: usize) {
    let fsync = matches!(flush, FlushPolicy::EveryAppend);
    sync_all();
    let before = dd(&args.dir, args.bytes_per_case / MIB, fsync);
    sync_all();
    let f = run_appends(args, name, flush, batch_bytes, writers);
    sync_all();
    let written_mib = ((f.mb_per_s * f.secs * 1e6) as u64 / MIB).max(64);
    let after = dd(&args.dir, written_mib, fsync);
    let ceiling = before.max(after);
    let kind = if fsync { "sync" } else { "buf" };
    let pct = 100.0 * f.mb_per_s / ceiling;
    println!(
        "{name:<26} {:>8.0} {:>10.0} {:>7.0} /{:>6.0} {kind:>4} {pct:>7.0}%",
        f.mb_per_s, f.batches_per_s, before, after
    );
}
