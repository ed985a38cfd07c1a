//! A consumer group survives kill -9 of the broker: a member consumes part of a topic and
//! commits after each batch, the broker is killed and restarted, and a new member of the same
//! group resumes exactly at the committed offsets, so that across the two every record is
//! consumed once. Consumers are Freshet's own group consumer (`freshet-client`).

mod support;

use bytes::Bytes;
use freshet_client::{
    Admin, ClientConfig, GroupConsumer, GroupConsumerConfig, NewTopic, OffsetReset, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::BrokerProcess;

const TOPIC: &str = "resume";
const GROUP: &str = "resume-group";
const PARTITIONS: i32 = 4;
const RECORDS: usize = 400;

/// (partition, offset, value) of a consumed record.
type Consumed = (i32, i64, String);

async fn create_and_fill(servers: &str) {
    let admin = Admin::new(ClientConfig::new(servers)).unwrap();
    admin
        .create_topics(&[NewTopic::new(TOPIC, PARTITIONS, 1)], false)
        .await
        .unwrap();
    admin.wait_for_topic(TOPIC).await.unwrap();
    // Small batches, so that the consumers' small fetches return a few records at a time.
    let mut config = ProducerConfig::new(servers);
    config.batch_bytes_max = 256;
    let producer = Producer::new(config).unwrap();
    let sends: Vec<_> = (0..RECORDS)
        .map(|i| {
            producer.send(ProducerRecord {
                topic: TOPIC.into(),
                partition: None,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(format!("value-{i}"))),
                headers: Vec::new(),
                timestamp: None,
            })
        })
        .collect();
    for send in sends {
        send.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// A member with manual commits and short timeouts, subscribed to the topic.
fn member(servers: &str) -> GroupConsumer {
    let mut config = GroupConsumerConfig::new(servers, GROUP);
    config.consumer.auto_offset_reset = OffsetReset::Earliest;
    config.consumer.fetch_max_wait_ms = 200;
    config.consumer.partition_fetch_bytes_max = 512;
    config.enable_auto_commit = false;
    config.session_timeout_ms = 6_000;
    config.heartbeat_interval_ms = 500;
    config.max_poll_interval_ms = 15_000;
    let mut consumer = GroupConsumer::new(config).unwrap();
    consumer.subscribe([TOPIC]);
    consumer
}

/// Polls until `enough(consumed so far)`, committing synchronously after every batch, so
/// everything returned is committed; returns the records and the committed positions.
async fn consume_and_commit(
    consumer: &mut GroupConsumer,
    enough: impl Fn(usize) -> bool,
) -> (Vec<Consumed>, BTreeMap<TopicPartition, i64>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut consumed = Vec::new();
    while !enough(consumed.len()) {
        assert!(
            Instant::now() < deadline,
            "consumed only {} records",
            consumed.len()
        );
        let records = consumer.poll(Duration::from_millis(500)).await.unwrap();
        if records.is_empty() {
            continue;
        }
        for r in records {
            let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            consumed.push((r.partition, r.offset, value));
        }
        consumer.commit_sync().await.unwrap();
    }
    (consumed, consumer.positions())
}

#[test]
fn a_group_resumes_at_its_commits_after_the_broker_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path());
    let rt = support::runtime();
    let servers = broker.addr.to_string();
    let (first, committed) = rt.block_on(async {
        create_and_fill(&servers).await;
        let mut consumer = member(&servers);
        let result = consume_and_commit(&mut consumer, |n| n >= RECORDS / 2).await;
        // The member is left as a crash leaves it: no LeaveGroup, no last commit.
        std::mem::forget(consumer);
        result
    });
    assert!(first.len() < RECORDS, "the first member read everything");
    broker.kill9();

    // A new port: the abandoned member cannot reach the restarted broker.
    let broker = BrokerProcess::start(dir.path());
    let servers = broker.addr.to_string();
    let (second, _) = rt.block_on(async {
        let mut consumer = member(&servers);
        let remaining = RECORDS - first.len();
        let result = consume_and_commit(&mut consumer, |n| n >= remaining).await;
        consumer.close().await.unwrap();
        result
    });

    // The second member starts each partition exactly at the committed offset.
    for p in 0..PARTITIONS {
        let committed_at = committed
            .get(&TopicPartition::new(TOPIC, p))
            .copied()
            .unwrap_or(0);
        let resumed_at = second.iter().find(|r| r.0 == p).map(|r| r.1);
        if let Some(resumed_at) = resumed_at {
            assert_eq!(resumed_at, committed_at, "partition {p}");
        }
    }
    // Nothing read twice, nothing missed.
    let values = |records: &[Consumed]| -> BTreeSet<String> {
        records.iter().map(|r| r.2.clone()).collect()
    };
    let (a, b) = (values(&first), values(&second));
    assert_eq!(a.len(), first.len(), "no duplicates in the first member");
    assert_eq!(b.len(), second.len(), "no duplicates in the second member");
    assert!(a.is_disjoint(&b), "records consumed by both members");
    let all: BTreeSet<String> = (0..RECORDS).map(|i| format!("value-{i}")).collect();
    assert_eq!(a.union(&b).cloned().collect::<BTreeSet<_>>(), all);
}
