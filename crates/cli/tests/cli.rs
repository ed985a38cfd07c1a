//! The `freshet` CLI against a live broker process: topic admin, produce from stdin with keys,
//! consume with printing options, and one-line errors with a non-zero exit.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use support::BrokerProcess;

fn freshet(broker: &BrokerProcess, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_freshet"))
        .args(args)
        .env("FRESHET_BOOTSTRAP", broker.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

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
