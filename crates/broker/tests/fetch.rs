//! Fetch over real TCP against an in-process broker: long polls (`max_wait_ms`, `min_bytes`),
//! the size limits of KIP-74 (`partition_max_bytes`, `max_bytes`) and `isolation_level`.

#[macro_use]
mod support;

use bytes::Bytes;
use freshet_protocol::messages::fetch_request::FetchTopic;
use freshet_protocol::messages::fetch_response::PartitionData;
use freshet_protocol::messages::{FetchRequest, FetchResponse};
use freshet_protocol::{ApiKey, Response};
use std::time::{Duration, Instant};
use support::{batch, create_topic, produce, Client, TestBroker};

const NONE: i16 = 0;
const FETCH_VERSION: i16 = 12;
/// A bound no answer should come near, even on a loaded machine: a test fails instead of
/// hanging.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// One partition to fetch: (topic, partition, fetch offset, partition_max_bytes).
type Wanted<'a> = (&'a str, i32, i64, i32);

/// A sessionless Fetch (session id 0, epoch -1) of `wanted`, in order.
fn fetch_request(
    max_wait_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
    isolation_level: i8,
    wanted: &[Wanted],
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for &(topic, partition, fetch_offset, partition_max_bytes) in wanted {
        let p = support::fetch_partition(partition, fetch_offset, partition_max_bytes);
        match topics.last_mut().filter(|t| t.topic == topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(FetchTopic {
                topic: topic.to_string(),
                partitions: vec![p],
                ..Default::default()
            }),
        }
    }
    FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes,
        max_bytes,
        isolation_level,
        session_id: 0,
        session_epoch: -1,
        topics,
        ..Default::default()
    }
}

/// Fetch of one partition from `offset` with large size limits.
fn fetch_one(topic: &str, offset: i64, max_wait_ms: i32, min_bytes: i32) -> FetchRequest {
    fetch_request(
        max_wait_ms,
        min_bytes,
        50 << 20,
        0,
        &[(topic, 0, offset, 1 << 20)],
    )
}

async fn fetch(c: &mut Client, request: FetchRequest) -> FetchResponse {
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, c.send(FETCH_VERSION, request.into()));
    match answer.await.expect("fetch answered") {
        Response::Fetch(r) => r,
        other => panic!("unexpected response {other:?}"),
    }
}

/// The answer to a fetch sent earlier with `send_only`.
async fn receive_fetch(c: &mut Client, correlation_id: i32) -> FetchResponse {
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, c.receive(ApiKey::Fetch, FETCH_VERSION));
    match answer.await.expect("fetch answered") {
        (id, Response::Fetch(r)) if id == correlation_id => r,
        other => panic!("unexpected response {other:?}"),
    }
}

fn partition<'a>(response: &'a FetchResponse, topic: &str, index: i32) -> &'a PartitionData {
    response
        .responses
        .iter()
        .filter(|t| t.topic == topic)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == index)
        .unwrap_or_else(|| panic!("{topic}-{index} missing from {response:?}"))
}

fn record_bytes(p: &PartitionData) -> &[u8] {
    p.records.as_deref().unwrap_or_default()
}

/// The complete batches of a partition's records, as (base offset, record values as
/// [`shown`]); a partial batch at the end (which Kafka may send when a limit cuts a batch)
/// is left out, as consumers do.
fn complete_batches(p: &PartitionData) -> Vec<(i64, Vec<String>)> {
    let bytes = p.records.clone().unwrap_or_default();
    freshet_records::split_batches(&bytes)
        .map_while(Result::ok)
        .map(|(start, header)| {
            let batch = bytes.slice(start..start + header.total_len());
            let values = freshet_records::records(&batch, 64 << 20)
                .expect("batch decodes")
                .map(|r| {
                    let value = r.expect("record").value.unwrap_or_default();
                    shown(std::str::from_utf8(&value).expect("utf-8 value"))
                })
                .collect();
            (header.base_offset, values)
        })
        .collect()
}

/// A record value as tests compare it: long ones cut to their start and length, so that a
/// failure prints readably.
fn shown(value: &str) -> String {
    match value.get(..8) {
        Some(start) if value.len() > 40 => format!("{start}..({} bytes)", value.len()),
        _ => value.to_string(),
    }
}

/// Every record value of a partition's answer, in order.
fn values(p: &PartitionData) -> Vec<String> {
    complete_batches(p)
        .into_iter()
        .flat_map(|(_, values)| values)
        .collect()
}

async fn produce_ok(c: &mut Client, topic: &str, partition: i32, records: Bytes) {
    let answer = produce(c, topic, partition, records).await;
    assert_eq!(answer.error_code, NONE, "produce to {topic}-{partition}");
}

/// A fetch waiting on an empty partition is answered as soon as a record is appended, not
/// at the end of its 10 s `max_wait_ms`.
#[tokio::test]
async fn a_long_poll_is_woken_by_an_append() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "wake", 1, &[]).await;

    let started = Instant::now();
    let id = c
        .send_only(FETCH_VERSION, fetch_one("wake", 0, 10_000, 1).into())
        .await;
    let mut producer = broker.client().await;
    let append = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        produce_ok(&mut producer, "wake", 0, batch(&["late"])).await;
    });
    let response = receive_fetch(&mut c, id).await;
    let answered = started.elapsed();
    append.await.expect("producer task");

    assert_eq!(response.error_code, NONE);
    let p = partition(&response, "wake", 0);
    assert_eq!(p.error_code, NONE);
    assert_eq!(
        values(p),
        vec!["late"],
        "the answer holds the appended record"
    );
    assert_eq!(p.high_watermark, 1);
    assert!(
        answered >= Duration::from_millis(250),
        "answered after {answered:?}, before the append"
    );
    assert!(
        answered < Duration::from_secs(5),
        "answered after {answered:?}: the append did not wake the 10 s long poll"
    );
}

/// With nothing to return, a fetch waits `max_wait_ms` and then answers empty.
#[tokio::test]
async fn a_long_poll_with_nothing_appended_times_out_empty() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "quiet", 1, &[]).await;

    let started = Instant::now();
    let response = fetch(&mut c, fetch_one("quiet", 0, 500, 1)).await;
    let answered = started.elapsed();

    assert_eq!(response.error_code, NONE);
    let p = partition(&response, "quiet", 0);
    assert_eq!(p.error_code, NONE);
    assert!(record_bytes(p).is_empty(), "no records: {p:?}");
    assert_eq!((p.high_watermark, p.log_start_offset), (0, 0));
    assert!(
        answered >= Duration::from_millis(450),
        "answered after {answered:?}, before max_wait_ms (500 ms)"
    );
    assert!(
        answered < Duration::from_secs(10),
        "answered after {answered:?}, far after max_wait_ms (500 ms)"
    );

    // max_wait_ms 0 answers at once, even with nothing to return (a loose bound: a loaded
    // machine may be slow, but not by seconds).
    let started = Instant::now();
    let response = fetch(&mut c, fetch_one("quiet", 0, 0, 1)).await;
    assert!(record_bytes(partition(&response, "quiet", 0)).is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "max_wait_ms 0 waited {:?}",
        started.elapsed()
    );
}

/// Data present but fewer bytes than `min_bytes`: the fetch waits out `max_wait_ms`, then
/// returns what there is. A later append that reaches `min_bytes` answers it early.
#[tokio::test]
async fn min_bytes_holds_the_answer_until_enough_data_or_the_timeout() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "min", 1, &[]).await;
    let first = batch(&["first"]);
    let first_len = first.len() as i32;
    produce_ok(&mut c, "min", 0, first).await;

    // Too little data: answered at the timeout, with the data.
    let started = Instant::now();
    let response = fetch(&mut c, fetch_one("min", 0, 500, 10_000)).await;
    let answered = started.elapsed();
    let p = partition(&response, "min", 0);
    assert_eq!(p.error_code, NONE);
    assert_eq!(values(p), vec!["first"]);
    assert!(
        answered >= Duration::from_millis(450),
        "answered after {answered:?} with {} of min_bytes 10000",
        record_bytes(p).len()
    );
    assert!(
        answered < Duration::from_secs(10),
        "answered after {answered:?}"
    );

    // Enough data already: answered at once.
    let started = Instant::now();
    let response = fetch(&mut c, fetch_one("min", 0, 10_000, first_len)).await;
    assert_eq!(values(partition(&response, "min", 0)), vec!["first"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "min_bytes already met, yet answered after {:?}",
        started.elapsed()
    );

    // One byte more than there is: a later append reaches min_bytes and answers early.
    let started = Instant::now();
    let id = c
        .send_only(
            FETCH_VERSION,
            fetch_one("min", 0, 10_000, first_len + 1).into(),
        )
        .await;
    let mut producer = broker.client().await;
    let append = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        produce_ok(&mut producer, "min", 0, batch(&["second"])).await;
    });
    let response = receive_fetch(&mut c, id).await;
    let answered = started.elapsed();
    append.await.expect("producer task");
    let p = partition(&response, "min", 0);
    assert_eq!(
        values(p),
        vec!["first", "second"],
        "answered before min_bytes was reached"
    );
    assert!(
        answered < Duration::from_secs(5),
        "answered after {answered:?}: reaching min_bytes did not end the 10 s wait"
    );
}

/// A value of about 1 KiB: each batch of one such record is a little over 1 KiB.
fn kib_value(tag: &str) -> String {
    format!("{tag}-{}", "x".repeat(1000))
}

/// Three ~1 KiB batches in each of `partitions` partitions of `topic`; returns the values
/// as [`shown`] (per partition, per batch) and the size of the first batch of partition 0.
async fn three_kib_batches(
    c: &mut Client,
    topic: &str,
    partitions: i32,
) -> (Vec<Vec<String>>, usize) {
    let mut all = Vec::new();
    let mut first_len = 0;
    for p in 0..partitions {
        let mut per_partition = Vec::new();
        for i in 0..3 {
            let value = kib_value(&format!("p{p}b{i}"));
            let records = batch(&[&value]);
            if p == 0 && i == 0 {
                first_len = records.len();
            }
            produce_ok(c, topic, p, records).await;
            per_partition.push(shown(&value));
        }
        all.push(per_partition);
    }
    (all, first_len)
}

/// KIP-74: `partition_max_bytes` and `max_bytes` cut the answer at batch boundaries, but the
/// first batch of the first partition with data is always returned whole.
#[tokio::test]
async fn size_limits_cut_at_batches_but_always_return_the_first_batch() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "sizes", 2, &[]).await;
    let (values_of, batch_len) = three_kib_batches(&mut c, "sizes", 2).await;
    assert!(
        (1000..1500).contains(&batch_len),
        "a batch is {batch_len} bytes"
    );
    let big = 50 << 20;

    // Large limits: all three batches.
    let all = fetch(&mut c, fetch_request(0, 0, big, 0, &[("sizes", 0, 0, big)])).await;
    let p = partition(&all, "sizes", 0);
    assert_eq!(values(p), values_of[0]);
    assert_eq!(
        complete_batches(p)
            .iter()
            .map(|(o, _)| *o)
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );

    // partition_max_bytes 1500 holds one batch and not two.
    let cut = fetch(
        &mut c,
        fetch_request(0, 0, big, 0, &[("sizes", 0, 0, 1500)]),
    )
    .await;
    let p = partition(&cut, "sizes", 0);
    assert_eq!(p.error_code, NONE);
    assert_eq!(
        complete_batches(p),
        vec![(0, vec![values_of[0][0].clone()])]
    );
    assert!(
        record_bytes(p).len() <= 1500,
        "{} bytes answered for partition_max_bytes 1500",
        record_bytes(p).len()
    );
    assert_eq!(p.high_watermark, 3);

    // Room for exactly two batches: two.
    let two = 2 * batch_len as i32;
    let cut = fetch(&mut c, fetch_request(0, 0, big, 0, &[("sizes", 0, 0, two)])).await;
    let offsets: Vec<i64> = complete_batches(partition(&cut, "sizes", 0))
        .iter()
        .map(|(o, _)| *o)
        .collect();
    assert_eq!(offsets, vec![0, 1]);

    // partition_max_bytes 10, far below one batch: the first batch still comes, whole, so a
    // consumer is never stuck behind a large batch.
    let tiny = fetch(&mut c, fetch_request(0, 0, big, 0, &[("sizes", 0, 0, 10)])).await;
    let p = partition(&tiny, "sizes", 0);
    assert_eq!(p.error_code, NONE);
    assert_eq!(
        complete_batches(p),
        vec![(0, vec![values_of[0][0].clone()])]
    );
    assert_eq!(record_bytes(p).len(), batch_len, "exactly the first batch");

    // Same from a later offset: the batch at that offset.
    let tiny = fetch(&mut c, fetch_request(0, 0, big, 0, &[("sizes", 0, 2, 10)])).await;
    assert_eq!(
        complete_batches(partition(&tiny, "sizes", 0)),
        vec![(2, vec![values_of[0][2].clone()])]
    );

    // max_bytes (500) below either partition's first batch: the first partition gets its
    // first batch whole, the second nothing (the response limit is already spent).
    let wanted = [("sizes", 0, 0, big), ("sizes", 1, 0, big)];
    let limited = fetch(&mut c, fetch_request(0, 0, 500, 0, &wanted)).await;
    let p0 = partition(&limited, "sizes", 0);
    let p1 = partition(&limited, "sizes", 1);
    assert_eq!((p0.error_code, p1.error_code), (NONE, NONE));
    assert_eq!(
        complete_batches(p0),
        vec![(0, vec![values_of[0][0].clone()])]
    );
    assert_eq!(record_bytes(p0).len(), batch_len);
    assert!(
        record_bytes(p1).is_empty(),
        "second partition got {} bytes beyond max_bytes",
        record_bytes(p1).len()
    );
    assert_eq!(p1.high_watermark, 3, "the partition is still reported");

    // The first partition with data is the one that may exceed the limits: partition 0 is
    // empty from offset 3, so partition 1 gets its first batch.
    let wanted = [("sizes", 0, 3, big), ("sizes", 1, 0, big)];
    let limited = fetch(&mut c, fetch_request(0, 0, 500, 0, &wanted)).await;
    assert!(record_bytes(partition(&limited, "sizes", 0)).is_empty());
    assert_eq!(
        complete_batches(partition(&limited, "sizes", 1)),
        vec![(0, vec![values_of[1][0].clone()])]
    );
}

/// KIP-74: only the first batch of the first non-empty partition may exceed the limits
/// (Kafka's `ReplicaManager.readFromLocalLog` clears `minOneMessage` once a partition has
/// returned data). A later partition gets no whole batch that would overrun what is left of
/// the response's `max_bytes` (Kafka sends at most a cut batch that consumers drop).
#[tokio::test]

async fn a_later_partition_does_not_overrun_max_bytes() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "kip74", 2, &[]).await;
    let (_, batch_len) = three_kib_batches(&mut c, "kip74", 2).await;
    let big = 50 << 20;

    // max_bytes of one and a half batches: partition 0 takes one batch, the half batch left
    // is too little for partition 1's first batch.
    let max_bytes = (batch_len + batch_len / 2) as i32;
    let wanted = [("kip74", 0, 0, big), ("kip74", 1, 0, big)];
    let response = fetch(&mut c, fetch_request(0, 0, max_bytes, 0, &wanted)).await;
    let p0 = partition(&response, "kip74", 0);
    let p1 = partition(&response, "kip74", 1);
    assert_eq!(complete_batches(p0).len(), 1);
    assert_eq!(
        complete_batches(p1).len(),
        0,
        "partition 1 got a whole batch ({} bytes after partition 0's {}) for max_bytes {max_bytes}",
        record_bytes(p1).len(),
        record_bytes(p0).len()
    );
    let total = record_bytes(p0).len() + record_bytes(p1).len();
    assert!(
        total <= max_bytes as usize,
        "{total} bytes answered for max_bytes {max_bytes}"
    );
}

/// KIP-74, as above: once a partition has returned data, a later partition's own
/// `partition_max_bytes` is a hard limit too.
#[tokio::test]

async fn a_later_partition_keeps_its_partition_max_bytes() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "kip74", 2, &[]).await;
    three_kib_batches(&mut c, "kip74", 2).await;
    let big = 50 << 20;

    let wanted = [("kip74", 0, 0, big), ("kip74", 1, 0, 10)];
    let response = fetch(&mut c, fetch_request(0, 0, big, 0, &wanted)).await;
    assert_eq!(complete_batches(partition(&response, "kip74", 0)).len(), 3);
    let p1 = partition(&response, "kip74", 1);
    assert_eq!(p1.error_code, NONE);
    assert!(
        record_bytes(p1).len() <= 10,
        "partition 1 got {} bytes for partition_max_bytes 10",
        record_bytes(p1).len()
    );
}

/// Without transactions, read_committed (1) sees what read_uncommitted (0) sees, and the
/// last stable offset is the high watermark.
#[tokio::test]
async fn read_committed_matches_read_uncommitted_without_transactions() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "iso", 1, &[]).await;
    produce_ok(&mut c, "iso", 0, batch(&["a", "b"])).await;
    produce_ok(&mut c, "iso", 0, batch(&["c"])).await;

    let wanted = [("iso", 0, 0, 1 << 20)];
    let uncommitted = fetch(&mut c, fetch_request(0, 0, 50 << 20, 0, &wanted)).await;
    let committed = fetch(&mut c, fetch_request(0, 0, 50 << 20, 1, &wanted)).await;
    assert_eq!((uncommitted.error_code, committed.error_code), (NONE, NONE));
    let u = partition(&uncommitted, "iso", 0);
    let r = partition(&committed, "iso", 0);
    assert_eq!((u.error_code, r.error_code), (NONE, NONE));
    assert_eq!(values(r), vec!["a", "b", "c"]);
    assert_eq!(record_bytes(r), record_bytes(u), "same records either way");
    assert_eq!(r.high_watermark, 3);
    assert_eq!(r.last_stable_offset, r.high_watermark);
    assert_eq!(u.last_stable_offset, u.high_watermark);
    assert!(
        r.aborted_transactions
            .as_deref()
            .unwrap_or_default()
            .is_empty(),
        "no aborted transactions: {:?}",
        r.aborted_transactions
    );

    // From the middle, read_committed starts at the batch holding the offset.
    let wanted = [("iso", 0, 2, 1 << 20)];
    let tail = fetch(&mut c, fetch_request(0, 0, 50 << 20, 1, &wanted)).await;
    assert_eq!(values(partition(&tail, "iso", 0)), vec!["c"]);
}
