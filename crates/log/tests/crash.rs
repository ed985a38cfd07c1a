//! Crash test: a child process (this test binary re-executed) appends in fsync mode from
//! several threads and prints every acknowledged append; the parent kills it with SIGKILL at a
//! random moment, reopens the log, and checks that every acknowledged batch is there byte for
//! byte, that offsets are dense, and that nothing but whole valid batches is served.
//!
//! `cargo test -p freshet-log --test crash` runs 20 kills. More:
//! `FRESHET_CRASH_ROUNDS=300 cargo test -p freshet-log --test crash -- --ignored many_kills`.

#[path = "support/batch.rs"]
mod batch;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use batch::{filled_batch_with_producer, with_offset};
use freshet_log::{FlushPolicy, Log, LogConfig};

const CHILD_DIR_ENV: &str = "FRESHET_LOG_CRASH_DIR";
const CHILD_RUN_ENV: &str = "FRESHET_LOG_CRASH_RUN";
const WRITER_THREADS: i16 = 4;

fn crash_config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 64 * 1024,
        index_interval_bytes: 1024,
        flush: FlushPolicy::EveryAppend,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// The batch writer `writer` of run `run` sends as its `seq`-th append: its size and content
/// follow from those three numbers, so the parent can rebuild it exactly.
fn expected_batch(run: i64, writer: i16, seq: i32) -> Vec<u8> {
    let h = (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (writer as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (seq as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
    let records = 1 + (h % 4) as usize;
    let payload = 10 + ((h >> 8) % 6000) as usize;
    filled_batch_with_producer(records, payload, h, i64::from(seq), (run, writer, seq))
}

/// The child: appends until killed, printing `ACK <base offset> <run> <writer> <seq>` after
/// each append returns (that is, after it is durable).
#[test]
#[ignore = "child process of the crash tests; does nothing unless started by them"]
fn crash_child_writer() {
    let (Some(dir), Some(run)) = (
        std::env::var_os(CHILD_DIR_ENV),
        std::env::var_os(CHILD_RUN_ENV),
    ) else {
        return;
    };
    let run: i64 = run.to_str().unwrap().parse().unwrap();
    let log = Arc::new(Log::open(dir, crash_config()).unwrap());
    println!("READY");
    let threads: Vec<_> = (0..WRITER_THREADS)
        .map(|writer| {
            let log = log.clone();
            std::thread::spawn(move || {
                for seq in 0.. {
                    let mut b = expected_batch(run, writer, seq);
                    let info = log.append(&mut b, run as i32).unwrap();
                    let line = format!("ACK {} {run} {writer} {seq}\n", info.base_offset);
                    let mut out = std::io::stdout().lock();
                    out.write_all(line.as_bytes()).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[derive(Debug, Clone, Copy)]
struct Ack {
    base_offset: i64,
    run: i64,
    writer: i16,
    seq: i32,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ACK ")?.strip_suffix('\n')?.split(' ');
    let ack = Ack {
        base_offset: parts.next()?.parse().ok()?,
        run: parts.next()?.parse().ok()?,
        writer: parts.next()?.parse().ok()?,
        seq: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(ack)
}

/// Starts a child, lets it run `run_ms`, kills it with SIGKILL; returns its acknowledgements.
fn run_and_kill(dir: &Path, run: i64, run_ms: u64) -> Vec<Ack> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_RUN_ENV, run.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            // The harness may print "test crash_child_writer ... " on the same line.
            if line.ends_with("READY\n") {
                let _ = ready_tx.send(());
            }
            // A line cut by the kill has no newline and is not an acknowledgement.
            acks.extend(parse_ack(&line));
            line.clear();
        }
        acks
    });
    // Odd runs count from the moment the log is open (kills land among appends); even runs
    // from the spawn, so some kills land while the child is still recovering the log.
    if run % 2 == 1 {
        let _ = ready_rx.recv_timeout(Duration::from_secs(30));
    }
    std::thread::sleep(Duration::from_millis(run_ms));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    reader.join().unwrap()
}

/// Simulates a write torn by a power cut: the start of a batch (never acknowledged) at the
/// end of the newest segment. Returns the bytes added.
fn tear_tail(dir: &Path, rng: u64) -> u64 {
    let newest = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .unwrap();
    let batch = with_offset(&expected_batch(-1, 0, 0), 0, 0);
    let torn = &batch[..1 + (rng as usize >> 3) % (batch.len() - 1)];
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(newest)
        .unwrap();
    file.write_all(torn).unwrap();
    torn.len() as u64
}

/// Reopens the log and checks every acknowledgement so far plus the whole log's content.
/// Returns the bytes recovery cut off.
fn verify(dir: &Path, acks: &[Ack]) -> u64 {
    let log = Log::open(dir, crash_config()).unwrap();
    for ack in acks {
        let slice = log
            .read(ack.base_offset, 1, None)
            .unwrap()
            .expect("acknowledged batch present");
        let expected = with_offset(
            &expected_batch(ack.run, ack.writer, ack.seq),
            ack.base_offset,
            ack.run as i32,
        );
        assert_eq!(
            slice.read_to_vec().unwrap(),
            expected,
            "batch at {}",
            ack.base_offset
        );
    }
    let mut offset = log.log_start_offset();
    while let Some(slice) = log.read(offset, 1 << 20, None).unwrap() {
        let bytes = slice.read_to_vec().unwrap();
        let mut pos = 0;
        while pos < bytes.len() {
            let b = &bytes[pos..];
            let base = i64::from_be_bytes(b[0..8].try_into().unwrap());
            assert_eq!(base, offset, "offsets are dense");
            let epoch = i32::from_be_bytes(b[12..16].try_into().unwrap());
            let run = i64::from_be_bytes(b[43..51].try_into().unwrap());
            let writer = i16::from_be_bytes(b[51..53].try_into().unwrap());
            let seq = i32::from_be_bytes(b[53..57].try_into().unwrap());
            assert_eq!(i64::from(epoch), run);
            let expected = with_offset(&expected_batch(run, writer, seq), base, epoch);
            assert_eq!(
                &b[..expected.len()],
                &expected[..],
                "served batch at {base} is whole and valid"
            );
            offset = base + batch::record_count(&expected);
            pos += expected.len();
        }
    }
    assert_eq!(
        offset,
        log.log_end_offset(),
        "every offset up to the end is served"
    );
    log.open_stats().bytes_truncated
}

fn kill_rounds(rounds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = seed;
    let mut all_acks = Vec::new();
    for run in 0..rounds as i64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let run_ms = 20 + rng % 250;
        let acks = run_and_kill(dir.path(), run, run_ms);
        all_acks.extend(acks);
        let torn_bytes = if run % 4 == 3 {
            tear_tail(dir.path(), rng)
        } else {
            0
        };
        let truncated = verify(dir.path(), &all_acks);
        assert!(
            truncated >= torn_bytes,
            "a torn tail of {torn_bytes} bytes was cut off"
        );
    }
    assert!(
        all_acks.len() as u64 > rounds,
        "children acknowledged appends: {}",
        all_acks.len()
    );
    eprintln!(
        "{} acknowledged appends verified over {rounds} kills",
        all_acks.len()
    );
}

#[test]
fn sigkill_loses_no_acknowledged_append() {
    kill_rounds(20);
}

#[test]
#[ignore = "long: many kills; FRESHET_CRASH_ROUNDS sets how many"]
fn many_kills() {
    let rounds = std::env::var("FRESHET_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    kill_rounds(rounds);
}
