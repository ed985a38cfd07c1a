//! Retention through topic configs on a running broker: `segment.ms` rolls segments on append
//! and `retention.ms` deletes whole old segments, the active one too once all its records are
//! past it (as Kafka does, so a topic that stops receiving records still loses them on time),
//! moving the log start offset that ListOffsets and Fetch report.

#[macro_use]
mod support;

use std::time::{Duration, Instant};
use support::{batch, create_topic, fetch_one, list_offset, produce, Client, TestBroker};

const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;

/// Fetch v12 of partition 0 at `offset`: (error code, log start offset).
async fn fetch_at(c: &mut Client, topic: &str, offset: i64) -> (i16, i64) {
    let request = fetch_one(topic, 0, offset, 0);
    let response = call!(c, 12, Fetch, request);
    let p = &response.responses[0].partitions[0];
    (p.error_code, p.log_start_offset)
}

#[tokio::test]
async fn retention_ms_deletes_old_segments_then_the_expired_active_one() {
    let broker = TestBroker::start_with(|config| config.log_retention_check_interval_ms = 50).await;
    let mut c = broker.client().await;
    let configs = [("segment.ms", "100"), ("retention.ms", "1500")];
    create_topic(&mut c, "aging", 1, &configs).await;
    for value in ["a", "b", "c"] {
        assert_eq!(
            produce(&mut c, "aging", 0, batch(&[value]))
                .await
                .error_code,
            NONE
        );
    }
    // Older than segment.ms: the next append starts a new segment at offset 3.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        produce(&mut c, "aging", 0, batch(&["d"])).await.base_offset,
        3
    );
    assert_eq!(list_offset(&mut c, "aging", 0, EARLIEST).await, (NONE, 0));

    // Once the first segment's records are older than retention.ms, it goes; the active
    // segment, written 300 ms later, goes 300 ms later. Either may be seen first.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let (code, start) = list_offset(&mut c, "aging", 0, EARLIEST).await;
        assert_eq!(code, NONE);
        if seen.last() != Some(&start) {
            seen.push(start);
        }
        if start == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "retention stopped at {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]) && seen.iter().all(|o| [0, 3, 4].contains(o)),
        "whole segments go, oldest first: log start offsets seen {seen:?}"
    );
    assert_eq!(list_offset(&mut c, "aging", 0, LATEST).await, (NONE, 4));
    assert_eq!(fetch_at(&mut c, "aging", 0).await, (OFFSET_OUT_OF_RANGE, 4));
    assert_eq!(fetch_at(&mut c, "aging", 4).await, (NONE, 4));
    // Appends go on at the log end.
    assert_eq!(
        produce(&mut c, "aging", 0, batch(&["e"])).await.base_offset,
        4
    );
}
