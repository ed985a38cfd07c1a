//! Append and read throughput of the log, next to the disk's own ceiling measured with `dd` in
//! the same run, the same directory and the same block size.
//!
//! `cargo run -p freshet-log --release --example log_bench -- [DIR] [MIB_PER_CASE] [ROUNDS] [SECONDS_PER_CASE] [FILTER]`
//! (defaults: `target/log-bench`, 1024, 3, 10, all cases; FILTER runs the cases whose name
//! contains it, and the two ceilings with the `never` case).
//!
//! Method (docs/design/log.md, "Benchmark"):
//! - Every round runs every case once, interleaved, and the summary prints the median of each
//!   case over the rounds and the median of the per-round ratios (each ratio compares two
//!   figures taken a few seconds apart, which is what survives a noisy shared machine).
//! - The ceiling for a batch size is `dd bs=<batch size> count=<MIB_PER_CASE / batch size>
//!   conv=fdatasync` writing a fresh file: buffered writes of that block size plus one
//!   `fdatasync` at the end. The `never` and `interval` cases do the same amount of work: they
//!   append MIB_PER_CASE of batches to a fresh log and then call `flush()` (one `fdatasync`),
//!   and their time includes that flush. The time before the flush is printed too.
//! - Before each measurement the previous case's files are deleted and `sync` runs, so both
//!   sides start with the same page-cache state; on odd rounds the log case runs before `dd`
//!   instead of after, so that neither side always inherits the other's writeback.
//! - fsync cases append until MIB_PER_CASE or SECONDS_PER_CASE, whichever comes first; the
//!   target for them is the ratio to the `never` case of the same batch size and round.

#[path = "../tests/support/batch.rs"]
mod batch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use freshet_log::{FlushPolicy, Log, LogConfig, MaintenanceTask};

const MIB: u64 = 1024 * 1024;

struct Args {
    dir: PathBuf,
    bytes_per_case: u64,
    rounds: usize,
    time_per_case: Duration,
    filter: String,
}

fn args() -> Args {
    let mut a = std::env::args().skip(1);
    let dir = a
        .next()
        .map_or_else(|| PathBuf::from("target/log-bench"), PathBuf::from);
    let mib: u64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(1024);
    let rounds: usize = a.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let secs: u64 = a.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let filter = a.next().unwrap_or_default();
    Args {
        dir,
        bytes_per_case: mib * MIB,
        rounds: rounds.max(1),
        time_per_case: Duration::from_secs(secs),
        filter,
    }
}

/// Runs `dd bs=<block_bytes> conv=fdatasync` writing `total_bytes` to a fresh file and returns
/// its throughput in MB/s (10^6 bytes), from the time dd reports itself.
fn dd(dir: &Path, block_bytes: u64, total_bytes: u64) -> f64 {
    let target = dir.join("dd.tmp");
    let _ = std::fs::remove_file(&target);
    sync_all();
    let count = total_bytes / block_bytes;
    let start = Instant::now();
    let out = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", target.display()))
        .arg(format!("bs={block_bytes}"))
        .arg(format!("count={count}"))
        .arg("conv=fdatasync")
        .output()
        .expect("run dd");
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
    (count * block_bytes) as f64 / secs / 1e6
}

/// The tightest ceiling for a batch size: this process writing `block` over and over to a
/// fresh file with `write`, then one `fdatasync` (what the log does minus validation, offset
/// assignment and indexes; dd additionally reads each block from /dev/zero).
fn raw_writes(dir: &Path, block: Vec<u8>, total_bytes: u64) -> Figures {
    use std::io::Write;
    let target = dir.join("raw.tmp");
    let _ = std::fs::remove_file(&target);
    sync_all();
    let count = total_bytes / block.len() as u64;
    let start = Instant::now();
    let mut file = std::fs::File::create(&target).expect("create raw.tmp");
    for _ in 0..count {
        file.write_all(&block).expect("write raw.tmp");
    }
    let appends_secs = start.elapsed().as_secs_f64();
    file.sync_data().expect("fdatasync raw.tmp");
    let secs = start.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&target);
    let bytes = (count * block.len() as u64) as f64;
    Figures {
        mb_per_s: bytes / secs / 1e6,
        batches_per_s: count as f64 / secs,
        appends_only_mb_per_s: bytes / appends_secs / 1e6,
        appends_per_flush: f64::NAN,
    }
}

fn sync_all() {
    let _ = Command::new("sync").status();
}

struct Figures {
    mb_per_s: f64,
    batches_per_s: f64,
    /// Throughput counting only the appends, before the final flush (`never`/`interval`).
    appends_only_mb_per_s: f64,
    /// Appends per flush round (group commit), fsync cases only.
    appends_per_flush: f64,
}

fn run_appends(
    args: &Args,
    dir: &Path,
    flush: FlushPolicy,
    batch_bytes: usize,
    writers: usize,
) -> Figures {
    let _ = std::fs::remove_dir_all(dir);
    sync_all();
    let config = LogConfig {
        flush,
        segment_bytes_max: 256 * MIB as u32,
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open(dir, config).expect("open log"));
    let _task = matches!(flush, FlushPolicy::Interval { .. })
        .then(|| MaintenanceTask::spawn(log.clone(), 100));
    let fixed_size = !matches!(flush, FlushPolicy::EveryAppend);
    let batch_len = bench_batch(batch_bytes, 0).len() as u64;
    let batches_each = (args.bytes_per_case / writers as u64 / batch_len).max(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            // Cases without fsync always write the full size (the same work as dd).
            let deadline = (!fixed_size).then(|| start + args.time_per_case);
            std::thread::spawn(move || {
                let mut b = bench_batch(batch_bytes, w as u64);
                let (mut bytes, mut batches) = (0u64, 0u64);
                while batches < batches_each && deadline.is_none_or(|d| Instant::now() < d) {
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
    let appends_secs = start.elapsed().as_secs_f64();
    let rounds = log.flush_rounds();
    log.flush().expect("final flush");
    let secs = start.elapsed().as_secs_f64();
    Figures {
        mb_per_s: bytes as f64 / secs / 1e6,
        batches_per_s: batches as f64 / secs,
        appends_only_mb_per_s: bytes as f64 / appends_secs / 1e6,
        appends_per_flush: if matches!(flush, FlushPolicy::EveryAppend) {
            batches as f64 / rounds.max(1) as f64
        } else {
            f64::NAN
        },
    }
}

/// A valid batch of about `batch_bytes` (1 KiB records); its exact length depends only on
/// `batch_bytes`, and `dd` uses that length as its block size.
fn bench_batch(batch_bytes: usize, writer: u64) -> Vec<u8> {
    let records = (batch_bytes / 1024).max(1);
    batch::filled_batch(records, batch_bytes - 61 - records * 8, writer + 7, 0)
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
        appends_only_mb_per_s: f64::NAN,
        appends_per_flush: f64::NAN,
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

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Per case name: [MB/s, batches/s, MB/s before the final flush, appends per fsync] of each
/// round; per ratio name: the ratio of each round.
#[derive(Default)]
struct Results {
    cases: BTreeMap<String, Vec<[f64; 4]>>,
    order: Vec<String>,
    ratios: BTreeMap<String, Vec<f64>>,
    ratio_order: Vec<String>,
}

impl Results {
    fn add(&mut self, name: &str, f: &Figures) {
        if !self.cases.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.cases.entry(name.to_string()).or_default().push([
            f.mb_per_s,
            f.batches_per_s,
            f.appends_only_mb_per_s,
            f.appends_per_flush,
        ]);
    }

    fn ratio(&mut self, name: &str, value: f64) {
        if !self.ratios.contains_key(name) {
            self.ratio_order.push(name.to_string());
        }
        self.ratios.entry(name.to_string()).or_default().push(value);
    }
}

fn main() {
    let args = args();
    std::fs::create_dir_all(&args.dir).expect("create bench directory");
    println!(
        "directory {}  ({} MiB per case, fsync cases at most {} s, {} rounds)  load average {}",
        args.dir.display(),
        args.bytes_per_case / MIB,
        args.time_per_case.as_secs(),
        args.rounds,
        load_average()
    );
    let interval = FlushPolicy::Interval {
        flush_messages: Some(10_000),
        flush_ms: Some(1000),
    };
    let mut results = Results::default();
    let wanted = |name: &str| args.filter.is_empty() || name.contains(&args.filter);
    for round in 0..args.rounds {
        println!();
        println!("round {} (load average {})", round + 1, load_average());
        println!(
            "{:<26} {:>8} {:>10} {:>17} {:>14}",
            "case", "MB/s", "batches/s", "before flush MB/s", "appends/fsync"
        );
        for (size_name, batch_bytes) in [("16KiB", 16 * 1024usize), ("1MiB", MIB as usize)] {
            let line = |results: &mut Results, name: String, f: Figures| {
                println!(
                    "{name:<26} {:>8.0} {:>10.0} {:>17.0} {:>14.1}",
                    f.mb_per_s, f.batches_per_s, f.appends_only_mb_per_s, f.appends_per_flush
                );
                results.add(&name, &f);
                f.mb_per_s
            };
            let dd_name = format!("dd-bs{size_name}-fdatasync");
            let never_name = format!("append-{size_name}-never-1w");
            let raw_name = format!("raw-write-{size_name}+fdatasync");
            let mut dd_figure = None;
            let mut raw_figure = None;
            let mut never_figure = None;
            let mut never_unflushed = None;
            // The two ceilings and the no-fsync case back to back, in an order that rotates
            // with the round (0 = dd, 1 = raw write loop, 2 = log).
            let mut trio = [0, 1, 2];
            trio.rotate_left(round % 3);
            for which in trio {
                if which == 1 && (wanted(&raw_name) || wanted(&never_name)) {
                    let f = raw_writes(&args.dir, bench_batch(batch_bytes, 0), args.bytes_per_case);
                    raw_figure = Some(line(&mut results, raw_name.clone(), f));
                } else if which == 0 && (wanted(&dd_name) || wanted(&never_name)) {
                    let block = bench_batch(batch_bytes, 0).len() as u64;
                    let mbps = dd(&args.dir, block, args.bytes_per_case);
                    let f = Figures {
                        mb_per_s: mbps,
                        batches_per_s: mbps * 1e6 / block as f64,
                        appends_only_mb_per_s: f64::NAN,
                        appends_per_flush: f64::NAN,
                    };
                    dd_figure = Some(line(&mut results, dd_name.clone(), f));
                } else if which == 2 && wanted(&never_name) {
                    let dir = args.dir.join(&never_name);
                    let f = run_appends(&args, &dir, FlushPolicy::Never, batch_bytes, 1);
                    never_unflushed = Some(f.appends_only_mb_per_s);
                    never_figure = Some(line(&mut results, never_name.clone(), f));
                    if batch_bytes as u64 == MIB && wanted("read") {
                        let r = run_reads(&dir);
                        line(&mut results, "read-1MiB (page cache)".into(), r);
                    }
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            if let (Some(dd), Some(never)) = (dd_figure, never_figure) {
                results.ratio(&format!("{never_name} / dd"), never / dd);
            }
            if let (Some(raw), Some(never)) = (raw_figure, never_figure) {
                results.ratio(&format!("{never_name} / raw write loop"), never / raw);
            }
            let cases = [
                ("interval", interval, 1),
                ("fsync", FlushPolicy::EveryAppend, 1),
                ("fsync", FlushPolicy::EveryAppend, 8),
                ("fsync", FlushPolicy::EveryAppend, 64),
            ];
            for (mode, flush, writers) in cases {
                let name = format!("append-{size_name}-{mode}-{writers}w");
                if !wanted(&name) {
                    continue;
                }
                let dir = args.dir.join(&name);
                let f = run_appends(&args, &dir, flush, batch_bytes, writers);
                let mbps = line(&mut results, name.clone(), f);
                let _ = std::fs::remove_dir_all(&dir);
                if let (8, Some(unflushed)) = (writers, never_unflushed) {
                    results.ratio(
                        &format!("{never_name} before flush / {name}"),
                        unflushed / mbps,
                    );
                }
                match (mode, writers, dd_figure, never_figure) {
                    ("interval", _, Some(dd), _) => {
                        results.ratio(&format!("{name} / dd"), mbps / dd);
                    }
                    ("fsync", 8, _, Some(never)) => {
                        results.ratio(&format!("{never_name} / {name}"), never / mbps);
                    }
                    _ => {}
                }
            }
        }
    }
    println!();
    println!(
        "medians over {} rounds (load average {})",
        args.rounds,
        load_average()
    );
    println!(
        "{:<26} {:>8} {:>10} {:>17} {:>14}   MB/s per round",
        "case", "MB/s", "batches/s", "before flush MB/s", "appends/fsync"
    );
    for name in &results.order {
        let runs = &results.cases[name];
        let col = |i: usize| -> Vec<f64> { runs.iter().map(|r| r[i]).collect() };
        let each: Vec<String> = col(0).iter().map(|v| format!("{v:.0}")).collect();
        println!(
            "{name:<26} {:>8.0} {:>10.0} {:>17.0} {:>14.1}   {}",
            median(&col(0)),
            median(&col(1)),
            median(&col(2)),
            median(&col(3)),
            each.join(" ")
        );
    }
    println!();
    println!("median ratio (per round)");
    for name in &results.ratio_order {
        let each: Vec<String> = results.ratios[name]
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect();
        println!(
            "{name:<60} {:>6.2}   {}",
            median(&results.ratios[name]),
            each.join(" ")
        );
    }
}
