//! The `freshet` CLI against a live broker process: topic admin, produce from stdin with keys,
//! consume with printing options, and one-line errors with a non-zero exit.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use support::{freshet, ok, spawn_freshet, BrokerProcess, Lines, RawClient};

#[test]
fn topic_produce_consume_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    ok(freshet(
        &broker,
        &[
            "topic",
            "create",
            "tour",
            "-p",
            "3",
            "-c",
            "retention.ms=3600000",
        ],
        "",
    ));
    let listed = ok(freshet(&broker, &["topic", "list"], ""));
    assert!(listed.lines().any(|l| l.trim() == "tour"), "{listed}");
    let described = ok(freshet(&broker, &["topic", "describe", "tour"], ""));
    assert!(
        described.contains("retention.ms") && described.contains("3600000"),
        "{described}"
    );

    let lines = "user1:hello\nuser2:world\nuser1:again\n";
    ok(freshet(
        &broker,
        &[
            "produce",
            "tour",
            "--key-separator",
            ":",
            "--compression",
            "lz4",
        ],
        lines,
    ));
    let out = ok(freshet(
        &broker,
        &["consume", "tour", "--print-key", "--print-partition"],
        "",
    ));
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    assert_eq!(got.len(), 3, "{out}");
    // The same key always lands on the same partition (murmur2, as the Java client).
    let partition_of = |line: &str| {
        line.split_whitespace()
            .find(|w| w.starts_with("Partition:"))
            .map(str::to_string)
    };
    let user1: Vec<_> = got
        .iter()
        .filter(|l| l.contains("user1"))
        .map(|l| partition_of(l))
        .collect();
    assert_eq!(user1.len(), 2);
    assert_eq!(user1[0], user1[1], "{out}");
    assert!(
        out.contains("hello") && out.contains("world") && out.contains("again"),
        "{out}"
    );

    let out = ok(freshet(
        &broker,
        &["consume", "tour", "--max-messages", "1"],
        "",
    ));
    assert_eq!(out.lines().count(), 1, "{out}");

    ok(freshet(&broker, &["topic", "delete", "tour"], ""));
    let listed = ok(freshet(&broker, &["topic", "list"], ""));
    assert!(!listed.lines().any(|l| l.trim() == "tour"), "{listed}");
}

#[test]
fn errors_are_one_line_and_a_failure_exit() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    ok(freshet(&broker, &["topic", "create", "twice"], ""));
    let out = freshet(&broker, &["topic", "create", "twice"], "");
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("TOPIC_ALREADY_EXISTS"), "{err}");
    let out = freshet(&broker, &["topic", "create", "bad/name"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("INVALID_TOPIC_EXCEPTION"));
}

/// `freshet ... | head -1` ends quietly: no panic, no backtrace on the closed pipe.
#[test]
fn a_closed_stdout_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    ok(freshet(
        &broker,
        &["topic", "create", "wide", "-p", "500"],
        "",
    ));
    let err = dir.path().join("stderr");
    let script = format!(
        "\"$0\" topic describe wide 2>{} | head -1 >/dev/null",
        err.display()
    );
    let status = Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_freshet")])
        .env("FRESHET_BOOTSTRAP", broker.addr.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let stderr = std::fs::read_to_string(err).unwrap();
    assert!(stderr.is_empty(), "{stderr}");
}

/// The `Configs:` entries `freshet topic describe` printed for one topic, sorted.
fn described_configs(described: &str) -> Vec<String> {
    let mut configs: Vec<String> = described
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Configs: "))
        .flat_map(|l| l.split(','))
        .map(str::to_owned)
        .collect();
    configs.sort();
    configs
}

/// The partition numbers `freshet topic describe` listed.
fn described_partitions(described: &str) -> Vec<String> {
    described
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Partition: "))
        .map(|rest| rest.split('\t').next().unwrap().to_owned())
        .collect()
}

#[test]
fn topic_alter_adds_partitions_and_sets_and_removes_configs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    ok(freshet(
        &broker,
        &[
            "topic",
            "create",
            "grow",
            "-p",
            "1",
            "-c",
            "retention.ms=3600000",
        ],
        "",
    ));
    let out = ok(freshet(
        &broker,
        &[
            "topic",
            "alter",
            "grow",
            "-p",
            "3",
            "-c",
            "retention.ms=7200000",
            "-c",
            "max.message.bytes=500000",
        ],
        "",
    ));
    assert_eq!(
        out,
        "Topic grow now has 3 partitions.\nUpdated the configs of topic grow.\n"
    );
    let described = ok(freshet(&broker, &["topic", "describe", "grow"], ""));
    assert!(described.contains("\tPartitionCount: 3\t"), "{described}");
    assert_eq!(described_partitions(&described), ["0", "1", "2"]);
    assert_eq!(
        described_configs(&described),
        ["max.message.bytes=500000", "retention.ms=7200000"],
        "{described}"
    );

    // A partition added by alter takes records.
    ok(freshet(
        &broker,
        &["produce", "grow", "--partition", "2"],
        "on-new\n",
    ));
    let out = ok(freshet(
        &broker,
        &[
            "consume",
            "grow",
            "--partition",
            "2",
            "--print-partition",
            "--print-offset",
        ],
        "",
    ));
    assert_eq!(out, "Partition:2\tOffset:0\ton-new\n");

    let out = ok(freshet(
        &broker,
        &[
            "topic",
            "alter",
            "grow",
            "--delete-config",
            "max.message.bytes",
        ],
        "",
    ));
    assert_eq!(out, "Updated the configs of topic grow.\n");
    let described = ok(freshet(&broker, &["topic", "describe", "grow"], ""));
    assert_eq!(
        described_configs(&described),
        ["retention.ms=7200000"],
        "{described}"
    );

    // Fewer partitions, or nothing to change: one-line errors, and the topic is unchanged.
    let out = freshet(&broker, &["topic", "alter", "grow", "-p", "2"], "");
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("INVALID_PARTITIONS"), "{err}");
    let out = freshet(&broker, &["topic", "alter", "grow"], "");
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("nothing to alter"), "{err}");
    let described = ok(freshet(&broker, &["topic", "describe", "grow"], ""));
    assert_eq!(described_partitions(&described), ["0", "1", "2"]);
}

/// Every line of `freshet consume` output, sorted (partitions interleave in any order).
fn sorted_lines(out: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    lines
}

/// The producer id of the first batch in partition 0 of `topic`.
fn first_batch_producer_id(broker: &BrokerProcess, topic: &str) -> i64 {
    let mut client = RawClient::connect(broker.addr).unwrap();
    let (code, _, bytes) = client.fetch(topic, 0).unwrap();
    assert_eq!(code, 0);
    freshet_records::BatchHeader::parse(&bytes)
        .expect("a batch")
        .producer_id
}

#[test]
fn produce_writes_to_the_given_partition_with_the_given_acks() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    ok(freshet(
        &broker,
        &["topic", "create", "placed", "-p", "3"],
        "",
    ));
    ok(freshet(
        &broker,
        &["produce", "placed", "--partition", "2", "--acks", "all"],
        "a\nb\n",
    ));
    ok(freshet(
        &broker,
        &["produce", "placed", "--partition", "0", "--acks", "-1"],
        "c\n",
    ));
    let out = ok(freshet(
        &broker,
        &["consume", "placed", "--print-partition", "--print-offset"],
        "",
    ));
    assert_eq!(
        sorted_lines(&out),
        [
            "Partition:0\tOffset:0\tc",
            "Partition:2\tOffset:0\ta",
            "Partition:2\tOffset:1\tb"
        ]
    );

    // With min.insync.replicas=2 on one broker, a produce with acks=all is refused (and
    // retried for two minutes), while acks=0 and acks=1 are not held to it: these going
    // through shows the CLI sent what it was told.
    ok(freshet(
        &broker,
        &[
            "topic",
            "create",
            "strict",
            "-p",
            "2",
            "-c",
            "min.insync.replicas=2",
        ],
        "",
    ));
    // acks=0 gets no answer: a write before the new partitions' logs are open would be
    // dropped unseen, so wait for them first.
    support::wait_served(&mut RawClient::connect(broker.addr).unwrap(), "strict", 2);
    ok(freshet(
        &broker,
        &["produce", "strict", "--partition", "0", "--acks", "1"],
        "one\n",
    ));
    ok(freshet(
        &broker,
        &["produce", "strict", "--partition", "1", "--acks", "0"],
        "zero\n",
    ));
    // Nothing acknowledged the acks=0 record: poll until the broker appended it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let out = ok(freshet(
            &broker,
            &["consume", "strict", "--print-partition", "--print-offset"],
            "",
        ));
        if out.lines().count() >= 2 || Instant::now() >= deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        sorted_lines(&out),
        ["Partition:0\tOffset:0\tone", "Partition:1\tOffset:0\tzero"]
    );

    // As in the Java client, acks=all makes the producer idempotent (its batches carry a
    // producer id) and acks=1 does not.
    assert!(first_batch_producer_id(&broker, "placed") >= 0);
    assert_eq!(first_batch_producer_id(&broker, "strict"), -1);

    let out = freshet(&broker, &["produce", "placed", "--acks", "2"], "x\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not 0, 1, -1 or all"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One `--print-offset --print-timestamp` line: (offset, timestamp, value).
fn offset_timestamp_value(line: &str) -> (i64, i64, String) {
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields.len(), 3, "{line:?}");
    let offset = fields[0]
        .strip_prefix("Offset:")
        .expect(line)
        .parse()
        .unwrap();
    let timestamp = fields[1]
        .strip_prefix("Timestamp:")
        .expect(line)
        .parse()
        .unwrap();
    (offset, timestamp, fields[2].to_owned())
}

#[test]
fn consume_starts_at_an_offset_or_a_timestamp_and_stops_at_max_messages() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    ok(freshet(
        &broker,
        &["topic", "create", "history", "-p", "1"],
        "",
    ));
    let before = now_ms();
    ok(freshet(&broker, &["produce", "history"], "v0\nv1\nv2\n"));
    let between = now_ms();
    // The second produce must stamp later times than the first: let the clock move on.
    while now_ms() <= between {
        std::thread::sleep(Duration::from_millis(1));
    }
    ok(freshet(&broker, &["produce", "history"], "v3\nv4\n"));
    let after = now_ms();

    let out = ok(freshet(
        &broker,
        &["consume", "history", "--print-offset", "--print-timestamp"],
        "",
    ));
    let records: Vec<(i64, i64, String)> = out.lines().map(offset_timestamp_value).collect();
    let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
    let values: Vec<&str> = records.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4], "{out}");
    assert_eq!(values, ["v0", "v1", "v2", "v3", "v4"], "{out}");
    for (i, &(_, timestamp, _)) in records.iter().enumerate() {
        let (from, to) = if i < 3 {
            (before, between)
        } else {
            (between + 1, after)
        };
        assert!(
            (from..=to).contains(&timestamp),
            "record {i} stamped {timestamp}, produced within {from}..={to}"
        );
    }

    let consume = |extra: &[&str]| {
        let mut args = vec!["consume", "history", "--print-offset"];
        args.extend_from_slice(extra);
        ok(freshet(&broker, &args, ""))
    };
    assert_eq!(consume(&["--offset", "3"]), "Offset:3\tv3\nOffset:4\tv4\n");
    assert_eq!(consume(&["--offset", "5"]), "");

    // --timestamp starts at the first record stamped at or after it.
    for &(_, timestamp, _) in &records {
        let expected: String = records
            .iter()
            .filter(|r| r.1 >= timestamp)
            .map(|(offset, _, value)| format!("Offset:{offset}\t{value}\n"))
            .collect();
        let from = timestamp.to_string();
        assert_eq!(consume(&["--timestamp", &from]), expected, "from {from}");
    }
    let later = (records[4].1 + 1).to_string();
    assert_eq!(consume(&["--timestamp", &later]), "");

    assert_eq!(
        consume(&["--max-messages", "2"]),
        "Offset:0\tv0\nOffset:1\tv1\n"
    );
    assert_eq!(
        consume(&["--offset", "2", "--max-messages", "2"]),
        "Offset:2\tv2\nOffset:3\tv3\n"
    );
    // --max-messages also ends --follow.
    assert_eq!(
        consume(&["--follow", "--max-messages", "3"]),
        "Offset:0\tv0\nOffset:1\tv1\nOffset:2\tv2\n"
    );
}

#[test]
fn consume_follow_prints_what_arrives_and_from_end_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path());
    ok(freshet(
        &broker,
        &["topic", "create", "live", "-p", "1"],
        "",
    ));
    ok(freshet(&broker, &["produce", "live"], "old0\nold1\n"));
    let wait = Duration::from_secs(30);

    // --follow prints the existing records, then keeps waiting for new ones.
    let mut follower = spawn_freshet(
        &broker,
        &["consume", "live", "--follow", "--print-offset"],
        Stdio::null(),
    );
    let lines = Lines::of(follower.stdout.take().unwrap());
    assert_eq!(lines.next_within(wait).as_deref(), Some("Offset:0\told0"));
    assert_eq!(lines.next_within(wait).as_deref(), Some("Offset:1\told1"));
    ok(freshet(&broker, &["produce", "live"], "new2\n"));
    assert_eq!(lines.next_within(wait).as_deref(), Some("Offset:2\tnew2"));
    assert!(
        follower.try_wait().unwrap().is_none(),
        "--follow stopped at the end"
    );
    follower.kill().unwrap();
    follower.wait().unwrap();

    // --from-end, and an --offset past the end: nothing that was there at the start.
    let produced = tail_prints_only_later_records(&broker, &["--from-end"], 3);
    tail_prints_only_later_records(&broker, &["--offset", "999"], 3 + produced);
}

/// Starts `consume live --follow --max-messages 1` at `start` on a log of `end` records and
/// checks it prints only a record produced later, at its offset, then exits. The consumer may
/// not yet be at the end when a record is produced, so this produces until it prints one;
/// the one printed must be one of these. Returns how many records it produced.
fn tail_prints_only_later_records(broker: &BrokerProcess, start: &[&str], end: i64) -> i64 {
    let wait = Duration::from_secs(30);
    let mut args = vec![
        "consume",
        "live",
        "--follow",
        "--max-messages",
        "1",
        "--print-offset",
    ];
    args.extend_from_slice(start);
    let mut tail = spawn_freshet(broker, &args, Stdio::null());
    let lines = Lines::of(tail.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut produced = 0;
    let line = loop {
        assert!(Instant::now() < deadline, "{start:?} printed nothing");
        ok(freshet(
            broker,
            &["produce", "live"],
            &format!("late{produced}\n"),
        ));
        produced += 1;
        if let Some(line) = lines.next_within(Duration::from_secs(2)) {
            break line;
        }
    };
    let (offset, value) = line.split_once('\t').expect(&line);
    let late: i64 = value
        .strip_prefix("late")
        .unwrap_or_else(|| panic!("{start:?} printed an old record: {line}"))
        .parse()
        .unwrap();
    assert!(late < produced, "{line}");
    assert_eq!(offset, format!("Offset:{}", end + late), "{line}");
    let status = support::wait_exit(&mut tail, wait).expect("--max-messages 1 did not end it");
    assert!(status.success(), "{status}");
    assert_eq!(
        lines.next_within(Duration::from_secs(1)),
        None,
        "more output"
    );
    produced
}
