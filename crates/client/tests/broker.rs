//! Integration tests against a real broker at `FRESHET_TEST_BOOTSTRAP` (`host:port`): Apache
//! Kafka today (`tools/kafka.sh start DIR PORT`), Freshet once it serves. Without the
//! variable each test prints a note and passes.
//!
//! Every test creates its own topics with a unique suffix, so runs can repeat against the
//! same broker.

#[path = "support/live.rs"]
mod live;

use live::{an_hour_ago_ms, bootstrap, unique};

use std::time::Duration;

use bytes::Bytes;
use freshet_client::admin::AlterConfigOp;
use freshet_client::consumer::OffsetSpec;
use freshet_client::producer::partitioner::key_partition;
use freshet_client::{
    Acks, Admin, ClientConfig, Compression, Consumer, ConsumerConfig, ConsumerRecord, Error,
    KafkaCode, NewTopic, OffsetReset, ProduceError, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};

async fn create_topic(admin: &Admin, name: &str, partitions: i32) {
    admin
        .create_topics(&[NewTopic::new(name, partitions, 1)], false)
        .await
        .unwrap();
    admin.wait_for_topic(name).await.unwrap();
}

fn consumer(servers: &str) -> Consumer {
    let mut config = ConsumerConfig::new(servers);
    config.auto_offset_reset = OffsetReset::Earliest;
    config.fetch_max_wait_ms = 200;
    Consumer::new(config).unwrap()
}

/// Polls until `count` records arrived or 10 s passed.
async fn poll_n(consumer: &mut Consumer, count: usize) -> Vec<ConsumerRecord> {
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while records.len() < count && std::time::Instant::now() < deadline {
        records.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    records
}

fn keyed_record(topic: &str, i: usize, base_timestamp_ms: i64) -> ProducerRecord {
    ProducerRecord {
        topic: topic.to_owned(),
        partition: None,
        key: Some(Bytes::from(format!("key-{i}"))),
        value: if i % 7 == 3 {
            None
        } else {
            Some(Bytes::from(format!("value-{i}-{}", "x".repeat(i * 13))))
        },
        headers: vec![
            ("trace".to_owned(), Some(Bytes::from(format!("t{i}")))),
            // Repeated keys and null values survive the round trip.
            ("trace".to_owned(), None),
            (
                "bin".to_owned(),
                Some(Bytes::from(vec![0u8, 0xff, i as u8])),
            ),
        ],
        timestamp: Some(base_timestamp_ms + i as i64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_every_codec() {
    let Some(servers) = bootstrap() else { return };
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    let base_timestamp_ms = an_hour_ago_ms();
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let topic = unique(&format!("codec-{compression:?}").to_lowercase());
        create_topic(&admin, &topic, 3).await;
        let mut config = ProducerConfig::new(&servers);
        config.compression = compression;
        let producer = Producer::new(config).unwrap();
        let sent: Vec<ProducerRecord> = (0..60)
            .map(|i| keyed_record(&topic, i, base_timestamp_ms))
            .collect();
        let futures: Vec<_> = sent.iter().map(|r| producer.send(r.clone())).collect();
        let mut acked = Vec::new();
        for future in futures {
            acked.push(future.await.unwrap());
        }
        producer.close().await.unwrap();
        for (record, metadata) in sent.iter().zip(&acked) {
            // The key decides the partition exactly as the Java client would.
            assert_eq!(
                metadata.partition,
                key_partition(record.key.as_ref().unwrap(), 3)
            );
            assert_eq!(metadata.timestamp, record.timestamp.unwrap());
        }
        let mut consumer = consumer(&servers);
        let partitions: Vec<TopicPartition> =
            (0..3).map(|p| TopicPartition::new(&topic, p)).collect();
        consumer.assign(partitions.clone());
        consumer.seek_to_beginning(&partitions).await.unwrap();
        let mut received = poll_n(&mut consumer, sent.len()).await;
        assert_eq!(received.len(), sent.len(), "{compression:?}");
        received.sort_by_key(|r| (r.partition, r.offset));
        for (record, metadata) in sent.iter().zip(&acked) {
            let got = received
                .iter()
                .find(|r| r.partition == metadata.partition && r.offset == metadata.offset)
                .unwrap_or_else(|| panic!("{compression:?}: no record at {metadata:?}"));
            assert_eq!(got.key, record.key);
            assert_eq!(got.value, record.value);
            assert_eq!(got.headers, record.headers);
            assert_eq!(got.timestamp, record.timestamp.unwrap());
        }
        // Offsets within a partition are dense from 0.
        for p in 0..3 {
            let offsets: Vec<i64> = received
                .iter()
                .filter(|r| r.partition == p)
                .map(|r| r.offset)
                .collect();
            assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
        }
        admin.delete_topics(&[topic]).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_from_offset_timestamp_and_end() {
    let Some(servers) = bootstrap() else { return };
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    let topic = unique("positions");
    create_topic(&admin, &topic, 1).await;
    let producer = Producer::new(ProducerConfig::new(&servers)).unwrap();
    let base_timestamp_ms = an_hour_ago_ms();
    for i in 0..10 {
        let record = ProducerRecord::new(&topic, format!("v{i}"))
            .with_partition(0)
            .with_timestamp(base_timestamp_ms + 1_000 * i);
        let metadata = producer.send(record).await.unwrap();
        assert_eq!(metadata.offset, i);
    }
    let tp = TopicPartition::new(&topic, 0);
    let mut consumer = consumer(&servers);
    consumer.assign(vec![tp.clone()]);

    consumer.seek(&tp, 4).unwrap();
    let records = poll_n(&mut consumer, 6).await;
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (4..10).collect::<Vec<_>>()
    );
    assert_eq!(records[0].value.as_deref(), Some(&b"v4"[..]));

    // The first record at or after the timestamp, even between two records.
    consumer
        .seek_to_timestamp(std::slice::from_ref(&tp), base_timestamp_ms + 5_500)
        .await
        .unwrap();
    assert_eq!(consumer.position(&tp), Some(6));
    let records = poll_n(&mut consumer, 4).await;
    assert_eq!(
        records.first().map(|r| r.timestamp),
        Some(base_timestamp_ms + 6_000)
    );
    // After the last timestamp: the end.
    consumer
        .seek_to_timestamp(std::slice::from_ref(&tp), base_timestamp_ms + 60_000)
        .await
        .unwrap();
    assert_eq!(consumer.position(&tp), Some(10));

    consumer
        .seek_to_end(std::slice::from_ref(&tp))
        .await
        .unwrap();
    assert_eq!(consumer.position(&tp), Some(10));
    assert!(consumer
        .poll(Duration::from_millis(300))
        .await
        .unwrap()
        .is_empty());
    producer
        .send(ProducerRecord::new(&topic, "late"))
        .await
        .unwrap();
    let records = poll_n(&mut consumer, 1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].offset, 10);
    assert_eq!(records[0].value.as_deref(), Some(&b"late"[..]));

    let offsets = consumer
        .list_offsets(std::slice::from_ref(&tp), OffsetSpec::Earliest)
        .await
        .unwrap();
    assert_eq!(offsets[&tp], 0);

    // Out of range: reset to earliest by policy.
    consumer.seek(&tp, 1_000).unwrap();
    let records = poll_n(&mut consumer, 11).await;
    assert_eq!(records.first().map(|r| r.offset), Some(0));
    producer.close().await.unwrap();
    admin.delete_topics(&[topic]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_modes_and_sticky_partitioning() {
    let Some(servers) = bootstrap() else { return };
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    let topic = unique("acks");
    create_topic(&admin, &topic, 4).await;
    // Kafka publishes a new partition's leader in metadata slightly before the leader can
    // take writes; acks=0 cannot see the NOT_LEADER_OR_FOLLOWER it would get, so write one
    // acknowledged (and retried) record to every partition first.
    let probe = Producer::new(ProducerConfig::new(&servers)).unwrap();
    for p in 0..4 {
        probe
            .send(ProducerRecord::new(&topic, "probe").with_partition(p))
            .await
            .unwrap();
    }
    probe.close().await.unwrap();
    for (acks, expect_offsets) in [(Acks::None, false), (Acks::Leader, true), (Acks::All, true)] {
        let mut config = ProducerConfig::new(&servers);
        config.acks = acks;
        config.linger_ms = 50;
        let producer = Producer::new(config).unwrap();
        let futures: Vec<_> = (0..20)
            .map(|i| producer.send(ProducerRecord::new(&topic, format!("{acks:?}-{i}"))))
            .collect();
        let mut partitions = Vec::new();
        for future in futures {
            let metadata = future.await.unwrap();
            assert_eq!(
                metadata.offset >= 0,
                expect_offsets,
                "{acks:?}: {metadata:?}"
            );
            partitions.push(metadata.partition);
        }
        partitions.dedup();
        assert_eq!(
            partitions.len(),
            1,
            "keyless records in one batch stick to one partition"
        );
        producer.close().await.unwrap();
    }
    let mut consumer = consumer(&servers);
    let tps: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new(&topic, p)).collect();
    consumer.assign(tps);
    let records = poll_n(&mut consumer, 64).await;
    let mut summary: Vec<(i32, String)> = records
        .iter()
        .map(|r| {
            (
                r.partition,
                String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned(),
            )
        })
        .collect();
    summary.sort();
    assert_eq!(records.len(), 64, "{summary:?}");
    admin.delete_topics(&[topic]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_errors_are_per_record() {
    let Some(servers) = bootstrap() else { return };
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    let topic = unique("errors");
    create_topic(&admin, &topic, 2).await;
    let producer = Producer::new(ProducerConfig::new(&servers)).unwrap();
    let bad = producer.send(ProducerRecord::new(&topic, "x").with_partition(7));
    let good = producer.send(ProducerRecord::new(&topic, "y").with_partition(1));
    assert!(matches!(
        bad.await,
        Err(ProduceError::UnknownPartition { partition: 7, .. })
    ));
    assert_eq!(good.await.unwrap().partition, 1);
    let huge = producer.send(ProducerRecord::new(&topic, vec![0u8; 2 * 1024 * 1024]));
    assert!(matches!(
        huge.await,
        Err(ProduceError::RecordTooLarge { .. })
    ));
    let invalid = producer.send(ProducerRecord::new("bad topic name!", "z"));
    match invalid.await {
        Err(ProduceError::Kafka { error, .. }) => {
            assert_eq!(error.code.name(), Some("INVALID_TOPIC_EXCEPTION"))
        }
        other => panic!("expected INVALID_TOPIC_EXCEPTION, got {other:?}"),
    }
    producer.close().await.unwrap();
    admin.delete_topics(&[topic]).await.unwrap();
}

/// The topic's configs once `done` holds for them (or after 10 s, for the asserts to report).
async fn configs_when(
    admin: &Admin,
    topic: &str,
    done: impl Fn(&[freshet_client::ConfigEntry]) -> bool,
) -> Vec<freshet_client::ConfigEntry> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let configs = admin.describe_configs(topic).await.unwrap();
        if done(&configs) || std::time::Instant::now() >= deadline {
            return configs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_round_trip() {
    let Some(servers) = bootstrap() else { return };
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    let topic = unique("admin");
    let new_topic = NewTopic::new(&topic, 3, 1)
        .with_config("retention.ms", "3600000")
        .with_config("cleanup.policy", "delete");
    admin
        .create_topics(std::slice::from_ref(&new_topic), true)
        .await
        .unwrap();
    assert!(
        !admin.list_topics(false).await.unwrap().contains(&topic),
        "validate_only creates nothing"
    );
    admin
        .create_topics(std::slice::from_ref(&new_topic), false)
        .await
        .unwrap();
    let description = admin.wait_for_topic(&topic).await.unwrap();
    assert_eq!(description.partitions.len(), 3);
    assert!(description
        .partitions
        .iter()
        .all(|p| p.leader >= 0 && p.replicas.len() == 1));
    assert!(admin.list_topics(false).await.unwrap().contains(&topic));

    let again = admin.create_topics(&[new_topic], false).await.unwrap_err();
    assert_eq!(again.kafka_code(), Some(KafkaCode::TOPIC_ALREADY_EXISTS));

    let configs = configs_when(&admin, &topic, |configs| {
        configs.iter().any(|c| c.name == "retention.ms")
    })
    .await;
    let retention = configs.iter().find(|c| c.name == "retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert!(retention.is_topic_override());
    let segment = configs.iter().find(|c| c.name == "segment.bytes").unwrap();
    assert!(!segment.is_topic_override());

    admin
        .alter_configs(
            &topic,
            &[
                AlterConfigOp::Set("segment.bytes".into(), "1048576".into()),
                AlterConfigOp::Delete("retention.ms".into()),
            ],
        )
        .await
        .unwrap();
    // Brokers apply controller changes asynchronously: read until the change shows.
    let configs = configs_when(&admin, &topic, |configs| {
        configs
            .iter()
            .any(|c| c.name == "segment.bytes" && c.value.as_deref() == Some("1048576"))
    })
    .await;
    let value = |name: &str| configs.iter().find(|c| c.name == name).unwrap().clone();
    assert_eq!(value("segment.bytes").value.as_deref(), Some("1048576"));
    assert!(value("segment.bytes").is_topic_override());
    assert!(!value("retention.ms").is_topic_override());
    assert_eq!(value("retention.ms").value.as_deref(), Some("604800000"));

    let bad = admin
        .alter_configs(
            &topic,
            &[AlterConfigOp::Set("no.such.config".into(), "1".into())],
        )
        .await
        .unwrap_err();
    assert_eq!(
        bad.kafka_code().and_then(KafkaCode::name),
        Some("INVALID_CONFIG")
    );

    admin.create_partitions(&topic, 5).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let described = admin
            .describe_topics(std::slice::from_ref(&topic))
            .await
            .unwrap();
        if described[0].partitions.len() == 5 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "5 partitions never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shrink = admin.create_partitions(&topic, 2).await.unwrap_err();
    assert_eq!(
        shrink.kafka_code(),
        Some(KafkaCode(37)),
        "INVALID_PARTITIONS: {shrink}"
    );

    let (_, brokers) = admin.describe_cluster().await.unwrap();
    assert!(!brokers.is_empty());

    admin
        .delete_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while admin.list_topics(false).await.unwrap().contains(&topic) {
        assert!(
            std::time::Instant::now() < deadline,
            "topic still listed after delete"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing = admin.delete_topics(&[topic]).await.unwrap_err();
    assert_eq!(
        missing.kafka_code(),
        Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_is_a_clear_error() {
    // Needs no broker: port 1 on loopback refuses connections.
    let admin = Admin::new({
        let mut config = ClientConfig::new("127.0.0.1:1");
        config.connection.request_timeout_ms = 300;
        config
    })
    .unwrap();
    let error = admin.list_topics(false).await.unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
    assert!(error.to_string().contains("127.0.0.1:1"), "{error}");
}
