//! A disk error on one partition of a running broker (injected through the log's fault seam):
//! that partition answers KAFKA_STORAGE_ERROR to Produce, Fetch and ListOffsets, never
//! acknowledging the write that failed, and Metadata shows it offline; the other partitions and the broker carry on; a
//! restart recovers the partition with every acknowledged record.

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use freshet_log::{Fault, FileOp, EIO};
use freshet_protocol::messages::metadata_request::MetadataRequestTopic;
use freshet_protocol::messages::metadata_response::MetadataResponsePartition;
use freshet_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use freshet_protocol::messages::{MetadataRequest, ProduceRequest};
use support::{batch, create_topic, fetch_one, list_offset, read_all, Client, TestBroker};

const NONE: i16 = 0;
const LEADER_NOT_AVAILABLE: i16 = 5;
const KAFKA_STORAGE_ERROR: i16 = 56;
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

/// One Produce v9 request (acks=all) with one batch per partition; returns each partition's
/// (error code, base offset) in request order.
async fn produce(c: &mut Client, topic: &str, values: &[(i32, &str)]) -> Vec<(i16, i64)> {
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.to_string(),
            partition_data: values
                .iter()
                .map(|(partition, value)| PartitionProduceData {
                    index: *partition,
                    records: Some(batch(&[value])),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = call!(c, 9, Produce, request);
    let partitions = &response.responses[0].partition_responses;
    values
        .iter()
        .map(|(index, _)| {
            let p = partitions
                .iter()
                .find(|p| p.index == *index)
                .expect("answered");
            (p.error_code, p.base_offset)
        })
        .collect()
}

/// A Fetch v12 of one partition that may long-poll for `max_wait_ms`; returns its error code,
/// the record bytes, and how long the broker took.
async fn fetch(
    c: &mut Client,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
) -> (i16, Bytes, Duration) {
    let request = fetch_one(topic, partition, offset, max_wait_ms);
    let started = Instant::now();
    let response = call!(c, 12, Fetch, request);
    let p = &response.responses[0].partitions[0];
    let records = p.records.clone().unwrap_or_default();
    (p.error_code, records, started.elapsed())
}

/// Partitions 0 and 1 of `topic` as Metadata v12 reports them.
async fn metadata_partitions(
    c: &mut Client,
    topic: &str,
) -> (MetadataResponsePartition, MetadataResponsePartition) {
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(topic.to_string()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let response = call!(c, 12, Metadata, request);
    let partitions = &response.topics[0].partitions;
    (partitions[0].clone(), partitions[1].clone())
}

fn values(records: &[(i64, Option<Bytes>, Option<Bytes>)]) -> Vec<(i64, String)> {
    records
        .iter()
        .map(|(offset, _, v)| {
            let v = v
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            (*offset, v.into_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_failed_disk_on_one_partition_answers_storage_errors_and_spares_the_others() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "disk", 2, &[]).await;
    assert_eq!(
        produce(&mut c, "disk", &[(0, "a0"), (1, "b0")]).await,
        vec![(NONE, 0), (NONE, 0)]
    );

    // Partition 0's disk starts failing its fsyncs (EIO), as a dying disk does.
    let log = broker.broker.partition_log("disk", 0).expect("led here");
    log.disk_faults().inject(FileOp::Sync, Fault::errno(EIO));

    // One request for both partitions: the failed write is not acknowledged, the other is.
    assert_eq!(
        produce(&mut c, "disk", &[(0, "a1"), (1, "b1")]).await,
        vec![(KAFKA_STORAGE_ERROR, -1), (NONE, 1)]
    );
    assert!(log.is_failed());
    assert_eq!(log.disk_faults().injected(), 1);
    // The partition stays offline: later writes, reads (even a long poll at its end, which
    // needs no read) and offset lookups answer at once with the storage error.
    assert_eq!(
        produce(&mut c, "disk", &[(0, "a2")]).await,
        vec![(KAFKA_STORAGE_ERROR, -1)]
    );
    let (code, records, _) = fetch(&mut c, "disk", 0, 0, 0).await;
    assert_eq!((code, records.len()), (KAFKA_STORAGE_ERROR, 0));
    let (code, _, took) = fetch(&mut c, "disk", 0, 1, 5_000).await;
    assert_eq!(code, KAFKA_STORAGE_ERROR);
    assert!(
        took < Duration::from_secs(2),
        "answered at once, took {took:?}"
    );
    for timestamp in [LATEST, EARLIEST, MAX_TIMESTAMP, 0] {
        assert_eq!(
            list_offset(&mut c, "disk", 0, timestamp).await,
            (KAFKA_STORAGE_ERROR, -1),
            "ListOffsets at {timestamp}"
        );
    }

    // Metadata shows the partition without a leader and this node as its offline replica,
    // as Kafka reports a partition whose only replica is on a failed log directory.
    let (p0, p1) = metadata_partitions(&mut c, "disk").await;
    assert_eq!(
        (p0.error_code, p0.leader_id, p0.offline_replicas.clone()),
        (LEADER_NOT_AVAILABLE, -1, vec![1])
    );
    assert_eq!(
        (p1.error_code, p1.leader_id, p1.offline_replicas.clone()),
        (NONE, 1, vec![])
    );

    // Partition 1 and the rest of the broker carry on.
    assert_eq!(produce(&mut c, "disk", &[(1, "b2")]).await, vec![(NONE, 2)]);
    assert_eq!(
        values(&read_all(&broker, "disk", 1).await),
        vec![(0, "b0".into()), (1, "b1".into()), (2, "b2".into())]
    );
    assert_eq!(list_offset(&mut c, "disk", 1, LATEST).await, (NONE, 3));
    create_topic(&mut c, "after", 1, &[]).await;
    assert_eq!(produce(&mut c, "after", &[(0, "x")]).await, vec![(NONE, 0)]);
    drop((c, log));

    // A restart reopens the log: recovery keeps the acknowledged record; the unacknowledged
    // one may survive (it reached the page cache) but only whole, at the next offset.
    let broker = broker.restart().await;
    let mut c = broker.client().await;
    let recovered = values(&read_all(&broker, "disk", 0).await);
    assert_eq!(recovered[0], (0, "a0".to_string()));
    assert!(recovered[1..].is_empty() || recovered[1..] == [(1, "a1".to_string())]);
    let next = recovered.len() as i64;
    assert_eq!(
        produce(&mut c, "disk", &[(0, "a3")]).await,
        vec![(NONE, next)]
    );
    assert_eq!(
        list_offset(&mut c, "disk", 0, LATEST).await,
        (NONE, next + 1)
    );
}
