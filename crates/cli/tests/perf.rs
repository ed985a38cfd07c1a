//! `freshet perf produce|consume|e2e` against a live broker process: each runs a small load
//! and its figures must agree with what the broker holds; bad arguments are one-line errors.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BrokerProcess, RawClient};

fn freshet(broker: &BrokerProcess, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_freshet"))
        .args(args)
        .env("FRESHET_BOOTSTRAP", broker.addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Runs a perf command with `--json` and parses its one-line summary.
fn json(broker: &BrokerProcess, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = freshet(broker, &args);
    let text = stdout_of(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn number(value: &Value, path: &[&str]) -> f64 {
    let mut at = value;
    for key in path {
        at = &at[*key];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {value}"))
}

/// min ≤ p50 ≤ p95 ≤ p99 ≤ p99.9 ≤ max, all ≥ 0, and `count` latencies.
fn assert_latency_ordered(summary: &Value, key: &str, count: f64) {
    let field = |name: &str| number(summary, &[key, name]);
    assert_eq!(field("count"), count, "{summary}");
    let ordered = ["min", "p50", "p95", "p99", "p99_9", "max"].map(field);
    assert!(ordered[0] >= 0.0, "{summary}");
    assert!(
        ordered.windows(2).all(|pair| pair[0] <= pair[1]),
        "percentiles out of order: {summary}"
    );
    assert!(field("avg") >= field("min") && field("avg") <= field("max"));
}

/// The end offset of partition 0, from the broker itself.
fn end_offset(broker: &BrokerProcess, topic: &str) -> i64 {
    let mut client = RawClient::connect(broker.addr).unwrap();
    let (error, high_watermark, _) = client.fetch(topic, 0).unwrap();
    assert_eq!(error, 0);
    high_watermark
}

#[test]
fn produce_sends_exactly_n_records_and_consume_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    let produced = json(
        &broker,
        &[
            "perf",
            "produce",
            "--topic",
            "load",
            "--num-records",
            "3000",
            "--record-size",
            "200",
            "--partitions",
            "1",
            "--acks",
            "1",
            "--compression",
            "lz4",
        ],
    );
    assert_eq!(produced["mode"], "produce");
    assert_eq!(number(&produced, &["records"]), 3000.0);
    assert_eq!(number(&produced, &["errors"]), 0.0);
    assert_eq!(number(&produced, &["partitions"]), 1.0);
    assert_eq!(produced["acks"], "1");
    assert_eq!(produced["compression"], "lz4");
    assert!(number(&produced, &["records_per_sec"]) > 0.0, "{produced}");
    let elapsed = number(&produced, &["elapsed_s"]);
    let rate = number(&produced, &["records_per_sec"]);
    assert!((rate * elapsed - 3000.0).abs() < 30.0, "{produced}");
    assert_latency_ordered(&produced, "latency_ms", 3000.0);
    assert_eq!(end_offset(&broker, "load"), 3000);

    // A second run appends to the same topic: the figures are per run.
    let again = json(
        &broker,
        &[
            "perf",
            "produce",
            "--topic",
            "load",
            "--num-records",
            "500",
            "--record-size",
            "200",
        ],
    );
    assert_eq!(number(&again, &["records"]), 500.0);
    assert_eq!(end_offset(&broker, "load"), 3500);

    let consumed = json(
        &broker,
        &["perf", "consume", "--topic", "load", "--messages", "3500"],
    );
    assert_eq!(consumed["mode"], "consume");
    assert_eq!(number(&consumed, &["records"]), 3500.0);
    assert_eq!(number(&consumed, &["bytes"]), 3500.0 * 200.0);
    assert!(number(&consumed, &["polls"]) >= 1.0);
    assert!(number(&consumed, &["fetch_records_per_sec"]) > 0.0);

    // Fewer than the topic holds: exactly that many are counted.
    let part = json(
        &broker,
        &["perf", "consume", "--topic", "load", "--messages", "1234"],
    );
    assert_eq!(number(&part, &["records"]), 1234.0);
    assert_eq!(number(&part, &["bytes"]), 1234.0 * 200.0);

    // More than it holds: the summary says how many came, and the exit says it fell short.
    let out = freshet(
        &broker,
        &[
            "perf",
            "consume",
            "--topic",
            "load",
            "--messages",
            "4000",
            "--timeout-ms",
            "500",
        ],
    );
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("consume: 3500 records (0.67 MiB) from load (1 partition)"),
        "{text}"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("only 3500 of 4000 records arrived"), "{err}");
}

#[test]
fn throughput_limit_holds_and_progress_lines_go_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    let started = Instant::now();
    let out = freshet(
        &broker,
        &[
            "perf",
            "produce",
            "--topic",
            "slow",
            "--num-records",
            "1000",
            "--record-size",
            "64",
            "--throughput",
            "1000",
            "--partitions",
            "3",
            "--report-interval-ms",
            "200",
        ],
    );
    let took = started.elapsed();
    let text = stdout_of(&out);
    // 1,000 records at 1,000/s: the last is sent 0.999 s after the first.
    assert!(took >= Duration::from_millis(999), "{took:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("produce: 1000 records of 64 bytes to slow (3 partitions, acks=all"),
        "{text}"
    );
    let rate: f64 = lines[1]
        .strip_prefix("throughput: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(rate > 0.0 && rate <= 1050.0, "{text}");
    assert!(lines[2].starts_with("latency (ms): min "), "{text}");
    assert!(lines[2].contains(" p99.9 "), "{text}");
    // Not a terminal: progress lines, each with a count below the total and a rate.
    let err = String::from_utf8(out.stderr).unwrap();
    let progress: Vec<&str> = err
        .lines()
        .filter(|line| line.starts_with("perf produce: "))
        .collect();
    assert!(progress.len() >= 2, "{err}");
    assert!(
        progress
            .iter()
            .all(|line| line.contains("/1000 records, ") && line.contains(" records/s over ")),
        "{err}"
    );
    // Every record landed, spread over the three partitions.
    let consumed = json(
        &broker,
        &["perf", "consume", "--topic", "slow", "--messages", "1000"],
    );
    assert_eq!(number(&consumed, &["records"]), 1000.0);
    assert_eq!(number(&consumed, &["partitions"]), 3.0);
}

#[test]
fn e2e_measures_every_record_at_the_asked_rate() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    let summary = json(
        &broker,
        &[
            "perf",
            "e2e",
            "--topic",
            "round-trip",
            "--rate",
            "500",
            "--num-records",
            "400",
            "--record-size",
            "100",
            "--partitions",
            "2",
            "--acks",
            "1",
        ],
    );
    assert_eq!(summary["mode"], "e2e");
    assert_eq!(number(&summary, &["records"]), 400.0);
    assert_eq!(number(&summary, &["received"]), 400.0);
    assert_eq!(number(&summary, &["errors"]), 0.0);
    assert_latency_ordered(&summary, "latency_ms", 400.0);
    assert_latency_ordered(&summary, "ack_latency_ms", 400.0);
    // 400 records at 500/s take about 0.8 s to send; never faster than asked.
    let achieved = number(&summary, &["achieved_rate"]);
    assert!(achieved > 0.0 && achieved <= 525.0, "{summary}");
    assert!(number(&summary, &["send_s"]) >= 0.79, "{summary}");

    // Records already in the topic, and others' records, are not counted: a second run
    // again sees exactly its own.
    let second = json(
        &broker,
        &[
            "perf",
            "e2e",
            "--topic",
            "round-trip",
            "--rate",
            "1000",
            "--duration-s",
            "0.2",
            "--record-size",
            "16",
        ],
    );
    assert_eq!(number(&second, &["records"]), 200.0);
    assert_eq!(number(&second, &["received"]), 200.0);
    assert_latency_ordered(&second, "latency_ms", 200.0);
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    let cases: [(&[&str], &str); 7] = [
        (
            &[
                "perf",
                "produce",
                "--topic",
                "t",
                "--num-records",
                "10",
                "--record-size",
                "0",
            ],
            "--record-size must be at least 1",
        ),
        (
            &[
                "perf",
                "produce",
                "--topic",
                "t",
                "--num-records",
                "10",
                "--record-size",
                "10",
                "--throughput",
                "0",
            ],
            "--throughput must be",
        ),
        (
            &[
                "perf",
                "produce",
                "--topic",
                "t",
                "--num-records",
                "10",
                "--record-size",
                "10",
                "--partitions",
                "0",
            ],
            "--partitions must be at least 1",
        ),
        (
            &[
                "perf",
                "e2e",
                "--topic",
                "t",
                "--rate",
                "10",
                "--record-size",
                "8",
            ],
            "--record-size must be at least 16 bytes",
        ),
        (
            &["perf", "e2e", "--topic", "t", "--rate", "0"],
            "--rate must be a positive number",
        ),
        (
            &["perf", "consume", "--topic", "missing", "--messages", "5"],
            "topic missing: UNKNOWN_TOPIC_OR_PARTITION",
        ),
        (
            &["perf", "consume", "--topic", "t", "--messages", "0"],
            "--messages must be at least 1",
        ),
    ];
    for (args, expected) in cases {
        let out = freshet(&broker, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("freshet: "), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // Values clap rejects: the first line names the option and the reason.
    let out = freshet(
        &broker,
        &[
            "perf",
            "produce",
            "--topic",
            "t",
            "--num-records",
            "1",
            "--record-size",
            "1",
            "--acks",
            "2",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("--acks") && first.contains("'2' is not 0, 1, -1 or all"),
        "{err}"
    );
    // Nothing was created by the rejected runs.
    let out = freshet(&broker, &["topic", "list"]);
    assert!(!stdout_of(&out).lines().any(|line| line.trim() == "t"));
}
