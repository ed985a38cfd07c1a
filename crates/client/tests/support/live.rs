//! What the tests against a live broker share: where the broker is, and names no earlier run
//! used. Included with `#[path = "support/live.rs"] mod live;`.

#![allow(dead_code)] // each test binary uses its own subset

/// `FRESHET_TEST_BOOTSTRAP`, or `None` (the test is skipped) when it is not set.
pub fn bootstrap() -> Option<String> {
    match std::env::var("FRESHET_TEST_BOOTSTRAP") {
        Ok(servers) if !servers.is_empty() => Some(servers),
        _ => {
            eprintln!("FRESHET_TEST_BOOTSTRAP is not set: skipping this broker test");
            None
        }
    }
}

/// `prefix-<nanoseconds since 1970>`: a topic or group name of its own.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

/// An hour ago, in milliseconds since 1970: a record timestamp the broker keeps (retention.ms
/// is 7 days by default, and deletes older records at its next check, as Kafka does) and that
/// differs from the producer's default (now).
pub fn an_hour_ago_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    now - 3_600_000
}
