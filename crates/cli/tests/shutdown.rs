//! `freshet serve` as a process: SIGTERM or Ctrl-C (SIGINT) stops it with exit status 0,
//! leaves every partition marked as cleanly shut down, and a restart on the same data
//! directory serves every record back. Each start logs exactly one "ready" line.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{freshet, ok, BrokerProcess};

/// The line `freshet serve` logs once the broker is up (crates/cli/src/serve.rs).
const READY: &str = "freshet broker ready";
/// The line it logs once the broker has shut down.
const STOPPED: &str = "stopped cleanly";
/// The marker a log writes in its partition directory on a clean close (freshet-log's
/// CLEAN_SHUTDOWN_FILE); spelled out here because it is part of the on-disk format.
const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// Generous for a loaded machine: a clean stop takes well under a second when idle.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

const EXPECTED: [&str; 4] = [
    "Partition:0\tOffset:0\tk0\tzero",
    "Partition:0\tOffset:1\tk1\tone",
    "Partition:0\tOffset:2\tk2\ttwo",
    "Partition:1\tOffset:0\tk3\tthree",
];

fn consume_all(broker: &BrokerProcess) -> Vec<String> {
    let out = ok(freshet(
        broker,
        &[
            "consume",
            "kept",
            "--print-partition",
            "--print-offset",
            "--print-key",
        ],
        "",
    ));
    let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

fn count_lines(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|line| line.contains(needle))
        .count()
}

/// Sends `signal`, then asserts the broker exits with status 0 in time and logged one
/// ready line and one stopped line into `log`.
fn stop(broker: &mut BrokerProcess, signal: &str, log: &Path) {
    let sent = Instant::now();
    broker.signal(signal);
    let status = broker
        .wait_exit(EXIT_TIMEOUT)
        .unwrap_or_else(|| panic!("still running {EXIT_TIMEOUT:?} after SIG{signal}"));
    assert_eq!(status.code(), Some(0), "exit after SIG{signal}: {status}");
    eprintln!("SIG{signal}: exited in {:?}", sent.elapsed());
    let text = std::fs::read_to_string(log).unwrap();
    assert_eq!(count_lines(log, READY), 1, "{text}");
    assert_eq!(count_lines(log, STOPPED), 1, "{text}");
}

fn stop_cleanly_and_restart(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first_log = dir.path().join("first.log");
    let mut broker = BrokerProcess::start_logging_to(&data, &first_log);
    ok(freshet(
        &broker,
        &["topic", "create", "kept", "-p", "2"],
        "",
    ));
    ok(freshet(
        &broker,
        &[
            "produce",
            "kept",
            "--partition",
            "0",
            "--key-separator",
            ":",
        ],
        "k0:zero\nk1:one\nk2:two\n",
    ));
    ok(freshet(
        &broker,
        &[
            "produce",
            "kept",
            "--partition",
            "1",
            "--key-separator",
            ":",
        ],
        "k3:three\n",
    ));
    assert_eq!(consume_all(&broker), EXPECTED);

    let partition_dirs: Vec<PathBuf> = (0..2).map(|p| data.join(format!("kept-{p}"))).collect();
    for d in &partition_dirs {
        assert!(d.is_dir(), "no partition directory {}", d.display());
        assert!(
            !d.join(CLEAN_SHUTDOWN_FILE).exists(),
            "{} marked clean while the broker runs and after writes",
            d.display()
        );
    }
    stop(&mut broker, signal, &first_log);
    for d in &partition_dirs {
        assert!(
            d.join(CLEAN_SHUTDOWN_FILE).is_file(),
            "no clean-shutdown marker in {} after SIG{signal}",
            d.display()
        );
    }

    let second_log = dir.path().join("second.log");
    let mut broker = BrokerProcess::start_logging_to(&data, &second_log);
    assert_eq!(consume_all(&broker), EXPECTED, "after the restart");
    stop(&mut broker, signal, &second_log);
    for d in &partition_dirs {
        assert!(d.join(CLEAN_SHUTDOWN_FILE).is_file(), "{}", d.display());
    }
}

#[test]
fn sigterm_stops_cleanly_and_a_restart_serves_every_record() {
    stop_cleanly_and_restart("TERM");
}

#[test]
fn ctrl_c_stops_cleanly_and_a_restart_serves_every_record() {
    stop_cleanly_and_restart("INT");
}
