//! The admin, idempotence and fetch-session APIs over real TCP against an in-process broker.

#[macro_use]
mod support;

use bytes::Bytes;
use freshet_protocol::messages::fetch_request::{FetchTopic, ForgottenTopic};
use freshet_protocol::messages::fetch_response::PartitionData;
use freshet_protocol::messages::*;
use freshet_protocol::Uuid;
use support::{batch, create_topic, idempotent_batch, now_ms, produce, Client, TestBroker};

const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_CONFIG: i16 = 40;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
const UNKNOWN_TOPIC_ID: i16 = 100;

fn fetch_request(session_id: i32, session_epoch: i32, topics: Vec<FetchTopic>) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 50 * 1024 * 1024,
        session_id,
        session_epoch,
        topics,
        ..Default::default()
    }
}

fn fetch_topic(topic: &str, partitions: &[(i32, i64)]) -> FetchTopic {
    FetchTopic {
        topic: topic.to_string(),
        partitions: partitions
            .iter()
            .map(|(p, o)| support::fetch_partition(*p, *o, 1024 * 1024))
            .collect(),
        ..Default::default()
    }
}

/// (topic, partition) of every partition in a fetch response, in order.
fn fetched(response: &FetchResponse) -> Vec<(String, i32)> {
    response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic.clone(), p.partition_index))
        })
        .collect()
}

fn partition_data<'a>(
    response: &'a FetchResponse,
    topic: &str,
    partition: i32,
) -> &'a PartitionData {
    response
        .responses
        .iter()
        .filter(|t| t.topic == topic)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .expect("partition in response")
}

async fn init_producer_id(c: &mut Client) -> (i64, i16) {
    let request = InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    let response = call!(c, 4, InitProducerId, request);
    assert_eq!(response.error_code, NONE);
    (response.producer_id, response.producer_epoch)
}

#[tokio::test]
async fn init_producer_id_hands_out_distinct_ids_across_restarts() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let (first, epoch) = init_producer_id(&mut c).await;
    let (second, _) = init_producer_id(&mut c).await;
    assert!(first >= 0);
    assert_eq!(epoch, 0);
    assert_eq!(second, first + 1);
    // Transactional ids are refused until the transaction coordinator exists.
    let transactional = InitProducerIdRequest {
        transactional_id: Some("tx".to_string()),
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    };
    let refused = call!(c, 4, InitProducerId, transactional);
    assert_ne!(refused.error_code, NONE);
    assert_eq!(refused.producer_id, -1);
    drop(c);
    // A restarted broker takes a fresh block: no id is handed out twice.
    let broker = broker.restart().await;
    let mut c = broker.client().await;
    let (after_restart, _) = init_producer_id(&mut c).await;
    assert!(after_restart > second, "{after_restart} after {second}");
}

#[tokio::test]
async fn idempotent_produce_dedups_retries_and_refuses_gaps_even_after_restart() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "idem", 1, &[]).await;
    let (pid, epoch) = init_producer_id(&mut c).await;
    let first = produce(
        &mut c,
        "idem",
        0,
        idempotent_batch(&["a", "b"], pid, epoch, 0),
    )
    .await;
    assert_eq!((first.error_code, first.base_offset), (NONE, 0));
    let plain = produce(&mut c, "idem", 0, batch(&["plain"])).await;
    assert_eq!((plain.error_code, plain.base_offset), (NONE, 2));
    let second = produce(&mut c, "idem", 0, idempotent_batch(&["c"], pid, epoch, 2)).await;
    assert_eq!((second.error_code, second.base_offset), (NONE, 3));
    // A retry of the first batch is answered with its original offset and not written again.
    let retry = produce(
        &mut c,
        "idem",
        0,
        idempotent_batch(&["a", "b"], pid, epoch, 0),
    )
    .await;
    assert_eq!((retry.error_code, retry.base_offset), (NONE, 0));
    let gap = produce(&mut c, "idem", 0, idempotent_batch(&["x"], pid, epoch, 7)).await;
    assert_eq!(gap.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER);
    let end = produce(&mut c, "idem", 0, batch(&["end"])).await;
    assert_eq!(end.base_offset, 4, "the retry and the gap wrote nothing");
    drop(c);

    // The state comes back from the log.
    let broker = broker.restart().await;
    let mut c = broker.client().await;
    let retry = produce(&mut c, "idem", 0, idempotent_batch(&["c"], pid, epoch, 2)).await;
    assert_eq!((retry.error_code, retry.base_offset), (NONE, 3));
    let gap = produce(&mut c, "idem", 0, idempotent_batch(&["x"], pid, epoch, 5)).await;
    assert_eq!(gap.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER);
    let next = produce(&mut c, "idem", 0, idempotent_batch(&["d"], pid, epoch, 3)).await;
    assert_eq!((next.error_code, next.base_offset), (NONE, 5));
    // An older epoch is a zombie.
    let bumped = produce(
        &mut c,
        "idem",
        0,
        idempotent_batch(&["e"], pid, epoch + 1, 0),
    )
    .await;
    assert_eq!(bumped.error_code, NONE);
    let zombie = produce(&mut c, "idem", 0, idempotent_batch(&["z"], pid, epoch, 4)).await;
    assert_eq!(zombie.error_code, INVALID_PRODUCER_EPOCH);
}

#[tokio::test]
async fn log_append_time_topics_stamp_the_batch_and_answer_the_time() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(
        &mut c,
        "lat",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    create_topic(&mut c, "ct", 1, &[]).await;
    let old_ms = now_ms() - 3_600_000 * 24 * 365;
    let before = now_ms();
    let options = freshet_records::BatchOptions::default();
    let sent = support::batch_with(&["v"], old_ms, options);
    let stamped = produce(&mut c, "lat", 0, sent.clone()).await;
    let after = now_ms();
    assert_eq!(stamped.error_code, NONE);
    assert!(
        (before..=after).contains(&stamped.log_append_time_ms),
        "{stamped:?}"
    );
    let create_time = produce(&mut c, "ct", 0, sent).await;
    assert_eq!(
        (create_time.error_code, create_time.log_append_time_ms),
        (NONE, -1)
    );

    let response = call!(
        c,
        12,
        Fetch,
        fetch_request(0, -1, vec![fetch_topic("lat", &[(0, 0)])])
    );
    let records = partition_data(&response, "lat", 0)
        .records
        .clone()
        .expect("records");
    let header = freshet_records::validate(&records).expect("stored batch has a valid CRC");
    assert_eq!(
        header.timestamp_type(),
        freshet_records::TimestampType::LogAppendTime
    );
    assert_eq!(header.max_timestamp, stamped.log_append_time_ms);
    assert_eq!(
        header.base_timestamp, old_ms,
        "record timestamps are kept as sent"
    );
}

#[tokio::test]
async fn fetch_sessions_send_only_what_changed() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "s", 3, &[]).await;
    for p in 0..3 {
        produce(&mut c, "s", p, batch(&["one"])).await;
    }
    let full = call!(
        c,
        12,
        Fetch,
        fetch_request(0, 0, vec![fetch_topic("s", &[(0, 0), (1, 0), (2, 0)])])
    );
    assert_eq!(full.error_code, NONE);
    assert_ne!(full.session_id, 0, "a full fetch opens a session");
    assert_eq!(fetched(&full).len(), 3);
    let id = full.session_id;

    // Nothing new: the incremental response lists no partition.
    let moved = vec![fetch_topic("s", &[(0, 1), (1, 1), (2, 1)])];
    let quiet = call!(c, 12, Fetch, fetch_request(id, 1, moved));
    assert_eq!((quiet.error_code, quiet.session_id), (NONE, id));
    assert_eq!(fetched(&quiet), vec![]);

    // New data on partition 1 only: only it comes back, without naming anything.
    produce(&mut c, "s", 1, batch(&["two"])).await;
    let news = call!(c, 12, Fetch, fetch_request(id, 2, vec![]));
    assert_eq!(fetched(&news), vec![("s".to_string(), 1)]);
    assert_eq!(partition_data(&news, "s", 1).high_watermark, 2);

    // A forgotten partition is no longer fetched, even with new data.
    let mut forget = fetch_request(id, 3, vec![fetch_topic("s", &[(1, 2)])]);
    forget.forgotten_topics_data = vec![ForgottenTopic {
        topic: "s".to_string(),
        partitions: vec![2],
        ..Default::default()
    }];
    let after_forget = call!(c, 12, Fetch, forget);
    assert_eq!(fetched(&after_forget), vec![]);
    produce(&mut c, "s", 2, batch(&["three"])).await;
    produce(&mut c, "s", 0, batch(&["three"])).await;
    let only_zero = call!(c, 12, Fetch, fetch_request(id, 4, vec![]));
    assert_eq!(fetched(&only_zero), vec![("s".to_string(), 0)]);

    // Wrong epoch, unknown id, then closing with epoch -1.
    let stale = call!(c, 12, Fetch, fetch_request(id, 4, vec![]));
    assert_eq!(stale.error_code, INVALID_FETCH_SESSION_EPOCH);
    let unknown = call!(c, 12, Fetch, fetch_request(id ^ 0x5555, 1, vec![]));
    assert_eq!(unknown.error_code, FETCH_SESSION_ID_NOT_FOUND);
    let closing = call!(
        c,
        12,
        Fetch,
        fetch_request(id, -1, vec![fetch_topic("s", &[(0, 0)])])
    );
    assert_eq!((closing.error_code, closing.session_id), (NONE, 0));
    assert_eq!(fetched(&closing), vec![("s".to_string(), 0)]);
    let closed = call!(c, 12, Fetch, fetch_request(id, 5, vec![]));
    assert_eq!(closed.error_code, FETCH_SESSION_ID_NOT_FOUND);
}

async fn delete_topics_v5(c: &mut Client, names: &[&str]) -> Vec<i16> {
    let request = DeleteTopicsRequest {
        topic_names: names.iter().map(|n| n.to_string()).collect(),
        timeout_ms: 10_000,
        ..Default::default()
    };
    let response = call!(c, 5, DeleteTopics, request);
    response.responses.iter().map(|r| r.error_code).collect()
}

#[tokio::test]
async fn delete_topics_by_name_and_by_id() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "gone", 1, &[]).await;
    let kept_id = create_topic(&mut c, "by-id", 1, &[]).await;
    assert_eq!(
        produce(&mut c, "gone", 0, batch(&["x"])).await.error_code,
        NONE
    );
    assert!(broker.dir.path().join("gone-0").exists());

    let codes = delete_topics_v5(&mut c, &["gone", "never-was"]).await;
    assert_eq!(codes, vec![NONE, UNKNOWN_TOPIC_OR_PARTITION]);
    let after = produce(&mut c, "gone", 0, batch(&["x"])).await;
    assert_eq!(after.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert!(
        !broker.dir.path().join("gone-0").exists(),
        "the log directory is removed"
    );

    let by_id = DeleteTopicsRequest {
        topics: vec![
            delete_topics_request::DeleteTopicState {
                name: None,
                topic_id: kept_id,
                ..Default::default()
            },
            delete_topics_request::DeleteTopicState {
                name: None,
                topic_id: Uuid([7; 16]),
                ..Default::default()
            },
        ],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let response = call!(c, 6, DeleteTopics, by_id);
    let first = &response.responses[0];
    assert_eq!(
        (first.name.as_deref(), first.error_code),
        (Some("by-id"), NONE)
    );
    assert_eq!(response.responses[1].error_code, UNKNOWN_TOPIC_ID);
    let gone = produce(&mut c, "by-id", 0, batch(&["x"])).await;
    assert_eq!(gone.error_code, UNKNOWN_TOPIC_OR_PARTITION);
}

async fn create_partitions(
    c: &mut Client,
    topic: &str,
    count: i32,
    validate_only: bool,
) -> create_partitions_response::CreatePartitionsTopicResult {
    let request = CreatePartitionsRequest {
        topics: vec![create_partitions_request::CreatePartitionsTopic {
            name: topic.to_string(),
            count,
            assignments: None,
            ..Default::default()
        }],
        timeout_ms: 10_000,
        validate_only,
        ..Default::default()
    };
    call!(c, 3, CreatePartitions, request).results.remove(0)
}

/// CreatePartitions answers once the metadata is committed; the 1,500 new logs open in the
/// background. Meanwhile Metadata advertises no leader for a partition whose log is not open
/// (LEADER_NOT_AVAILABLE), and produce to it gets the retriable NOT_LEADER_OR_FOLLOWER, never
/// UNKNOWN_TOPIC_OR_PARTITION; a client retrying those succeeds.
#[tokio::test]
async fn create_partitions_answers_before_the_new_logs_are_open() {
    const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    const COUNT: i32 = 1500;
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "wide", 1, &[]).await;
    assert_eq!(
        create_partitions(&mut c, "wide", COUNT, false)
            .await
            .error_code,
        NONE
    );
    // Metadata shows the committed partitions with their leader at once, as Kafka's does.
    let request = MetadataRequest {
        topics: Some(vec![metadata_request::MetadataRequestTopic {
            name: Some("wide".to_string()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let first = call!(c, 12, Metadata, request);
    let partitions = &first.topics[0].partitions;
    assert_eq!(
        partitions.len(),
        COUNT as usize,
        "the metadata is committed"
    );
    assert!(partitions
        .iter()
        .all(|p| p.error_code == NONE && p.leader_id == 1));
    // Opening 1,499 logs (directories, files) takes far longer than one round trip, so right
    // after the answer some partitions are not served yet.
    assert!(
        support::unserved_partitions(&mut c, "wide", COUNT).await > 0,
        "answered after every log was already open"
    );
    // Produce to the last partition at once, retrying as a client does.
    let mut retries = 0;
    loop {
        let response = produce(&mut c, "wide", COUNT - 1, batch(&["x"])).await;
        match response.error_code {
            NONE => break,
            NOT_LEADER_OR_FOLLOWER => retries += 1,
            other => panic!("produce to a partition being opened: error {other}"),
        }
        assert!(retries < 10_000, "partition never came online");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // Every partition comes online; afterwards each produce succeeds at the first attempt.
    support::wait_served(&mut c, "wide", COUNT).await;
    for p in [0, 1, COUNT / 2, COUNT - 2] {
        assert_eq!(
            produce(&mut c, "wide", p, batch(&["y"])).await.error_code,
            NONE
        );
    }
    // A partition that does not exist is still unknown.
    assert_eq!(
        produce(&mut c, "wide", COUNT, batch(&["z"]))
            .await
            .error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[tokio::test]
async fn create_partitions_grows_topics_and_validates_only_when_asked() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "grow", 1, &[]).await;
    assert_eq!(
        create_partitions(&mut c, "grow", 3, true).await.error_code,
        NONE
    );
    let not_yet = produce(&mut c, "grow", 2, batch(&["x"])).await;
    assert_eq!(
        not_yet.error_code, UNKNOWN_TOPIC_OR_PARTITION,
        "validate_only changed nothing"
    );
    assert_eq!(
        create_partitions(&mut c, "grow", 3, false).await.error_code,
        NONE
    );
    support::wait_served(&mut c, "grow", 3).await;
    assert_eq!(
        produce(&mut c, "grow", 2, batch(&["x"])).await.error_code,
        NONE
    );
    let shrink = create_partitions(&mut c, "grow", 2, false).await;
    assert_eq!(shrink.error_code, INVALID_PARTITIONS);
    assert!(shrink.error_message.is_some());
    let unknown = create_partitions(&mut c, "nope", 2, false).await;
    assert_eq!(unknown.error_code, UNKNOWN_TOPIC_OR_PARTITION);
}

fn describe_topic(name: &str, keys: Option<Vec<&str>>) -> DescribeConfigsRequest {
    DescribeConfigsRequest {
        resources: vec![describe_configs_request::DescribeConfigsResource {
            resource_type: 2,
            resource_name: name.to_string(),
            configuration_keys: keys.map(|k| k.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }],
        include_synonyms: true,
        include_documentation: true,
        ..Default::default()
    }
}

/// (value, source) of each named config in a DescribeConfigs result.
fn config_of(
    result: &describe_configs_response::DescribeConfigsResult,
    name: &str,
) -> (String, i8) {
    let c = result
        .configs
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} not described"));
    (c.value.clone().unwrap_or_default(), c.config_source)
}

#[tokio::test]
async fn describe_configs_lists_every_topic_config_with_sources_and_synonyms() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "described", 1, &[("retention.ms", "1000")]).await;
    let response = call!(c, 4, DescribeConfigs, describe_topic("described", None));
    let result = &response.results[0];
    assert_eq!(result.error_code, NONE);
    assert_eq!(
        result.configs.len(),
        freshet_metadata::config::TOPIC_CONFIGS.len()
    );
    assert_eq!(config_of(result, "retention.ms"), ("1000".to_string(), 1));
    assert_eq!(
        config_of(result, "cleanup.policy"),
        ("delete".to_string(), 5)
    );
    let retention = result
        .configs
        .iter()
        .find(|c| c.name == "retention.ms")
        .unwrap();
    assert_eq!(retention.config_type, 5, "LONG");
    let synonyms: Vec<(&str, i8)> = retention
        .synonyms
        .iter()
        .map(|s| (s.name.as_str(), s.source))
        .collect();
    assert_eq!(synonyms, vec![("retention.ms", 1), ("log.retention.ms", 5)]);

    // Version 1 has no types; a key filter narrows the list.
    let filtered = call!(
        c,
        1,
        DescribeConfigs,
        describe_topic("described", Some(vec!["segment.bytes"]))
    );
    let only = &filtered.results[0].configs;
    assert_eq!(only.len(), 1);
    assert_eq!(
        (only[0].name.as_str(), only[0].config_type),
        ("segment.bytes", 0)
    );

    let unknown = call!(c, 4, DescribeConfigs, describe_topic("nope", None));
    assert_eq!(unknown.results[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert!(unknown.results[0].configs.is_empty());

    let broker_resource = |name: &str| DescribeConfigsRequest {
        resources: vec![describe_configs_request::DescribeConfigsResource {
            resource_type: 4,
            resource_name: name.to_string(),
            configuration_keys: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    let this = call!(c, 4, DescribeConfigs, broker_resource("1"));
    assert_eq!(this.results[0].error_code, NONE);
    assert_eq!(config_of(&this.results[0], "node.id"), ("1".to_string(), 4));
    let other = call!(c, 4, DescribeConfigs, broker_resource("7"));
    assert_eq!(other.results[0].error_code, 42);
}

fn alterable(name: &str, value: Option<&str>) -> alter_configs_request::AlterableConfig {
    alter_configs_request::AlterableConfig {
        name: name.to_string(),
        value: value.map(str::to_string),
        ..Default::default()
    }
}

async fn alter_configs(
    c: &mut Client,
    topic: &str,
    configs: &[(&str, &str)],
    validate_only: bool,
) -> i16 {
    let request = AlterConfigsRequest {
        resources: vec![alter_configs_request::AlterConfigsResource {
            resource_type: 2,
            resource_name: topic.to_string(),
            configs: configs.iter().map(|(k, v)| alterable(k, Some(v))).collect(),
            ..Default::default()
        }],
        validate_only,
        ..Default::default()
    };
    call!(c, 2, AlterConfigs, request).responses[0].error_code
}

async fn incremental(c: &mut Client, topic: &str, ops: &[(&str, i8, Option<&str>)]) -> i16 {
    let request = IncrementalAlterConfigsRequest {
        resources: vec![incremental_alter_configs_request::AlterConfigsResource {
            resource_type: 2,
            resource_name: topic.to_string(),
            configs: ops
                .iter()
                .map(
                    |(name, op, value)| incremental_alter_configs_request::AlterableConfig {
                        name: name.to_string(),
                        config_operation: *op,
                        value: value.map(str::to_string),
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    call!(c, 1, IncrementalAlterConfigs, request).responses[0].error_code
}

async fn described(c: &mut Client, topic: &str, name: &str) -> (String, i8) {
    let response = call!(c, 4, DescribeConfigs, describe_topic(topic, None));
    config_of(&response.results[0], name)
}

#[tokio::test]
async fn alter_configs_replace_and_incremental_ops_change_overrides() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "alt", 1, &[("retention.ms", "1000")]).await;

    // The legacy form replaces the whole set; validate_only changes nothing.
    assert_eq!(
        alter_configs(&mut c, "alt", &[("segment.ms", "5000")], true).await,
        NONE
    );
    assert_eq!(described(&mut c, "alt", "segment.ms").await.1, 5);
    assert_eq!(
        alter_configs(&mut c, "alt", &[("segment.ms", "5000")], false).await,
        NONE
    );
    assert_eq!(
        described(&mut c, "alt", "segment.ms").await,
        ("5000".to_string(), 1)
    );
    assert_eq!(
        described(&mut c, "alt", "retention.ms").await.1,
        5,
        "replaced away"
    );
    assert_eq!(
        alter_configs(&mut c, "alt", &[("segment.ms", "zero")], false).await,
        INVALID_CONFIG
    );
    assert_eq!(
        alter_configs(&mut c, "nope", &[], false).await,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    // SET, DELETE, APPEND, SUBTRACT.
    let list = "follower.replication.throttled.replicas";
    let ops = [
        ("max.message.bytes", 0, Some("200")),
        ("segment.ms", 1, None),
        (list, 2, Some("0:1")),
    ];
    assert_eq!(incremental(&mut c, "alt", &ops).await, NONE);
    assert_eq!(
        described(&mut c, "alt", "max.message.bytes").await,
        ("200".to_string(), 1)
    );
    assert_eq!(described(&mut c, "alt", "segment.ms").await.1, 5);
    assert_eq!(
        incremental(&mut c, "alt", &[(list, 2, Some("1:1"))]).await,
        NONE
    );
    assert_eq!(described(&mut c, "alt", list).await.0, "0:1,1:1");
    assert_eq!(
        incremental(&mut c, "alt", &[(list, 3, Some("0:1"))]).await,
        NONE
    );
    assert_eq!(described(&mut c, "alt", list).await.0, "1:1");
    assert_eq!(
        incremental(&mut c, "alt", &[("retention.ms", 0, None)]).await,
        42
    );
    assert_eq!(
        incremental(&mut c, "alt", &[("retention.ms", 9, Some("1"))]).await,
        42
    );
    assert_eq!(
        incremental(&mut c, "alt", &[("no.such.config", 0, Some("1"))]).await,
        INVALID_CONFIG
    );
    // The running partition takes the new value at once...
    let big = "x".repeat(300);
    let refused = produce(&mut c, "alt", 0, batch(&[big.as_str()])).await;
    assert_eq!(
        refused.error_code, 10,
        "MESSAGE_TOO_LARGE at once under max.message.bytes=200"
    );
    drop(c);

    // ...and keeps it across a restart.
    let broker = broker.restart().await;
    let mut c = broker.client().await;
    let refused = produce(&mut c, "alt", 0, batch(&[big.as_str()])).await;
    assert_eq!(
        refused.error_code, 10,
        "MESSAGE_TOO_LARGE under max.message.bytes=200"
    );
}

#[tokio::test]
async fn describe_cluster_lists_this_broker() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let request = DescribeClusterRequest {
        endpoint_type: 1,
        ..Default::default()
    };
    let response = call!(c, 1, DescribeCluster, request);
    assert_eq!(response.error_code, NONE);
    assert_eq!(
        Some(response.cluster_id.clone()),
        broker.broker.cluster_id()
    );
    assert_eq!(response.brokers.len(), 1);
    assert_eq!(response.brokers[0].broker_id, 1);
    assert_eq!(response.brokers[0].port, i32::from(broker.addr().port()));
    let controllers = DescribeClusterRequest {
        endpoint_type: 2,
        ..Default::default()
    };
    assert_eq!(call!(c, 1, DescribeCluster, controllers).error_code, 114);
}

async fn delete_records(c: &mut Client, topic: &str, partition: i32, offset: i64) -> (i64, i16) {
    let request = DeleteRecordsRequest {
        topics: vec![delete_records_request::DeleteRecordsTopic {
            name: topic.to_string(),
            partitions: vec![delete_records_request::DeleteRecordsPartition {
                partition_index: partition,
                offset,
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let response = call!(c, 2, DeleteRecords, request);
    let p = &response.topics[0].partitions[0];
    (p.low_watermark, p.error_code)
}

#[tokio::test]
async fn delete_records_moves_the_log_start_offset() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "trim", 1, &[]).await;
    for _ in 0..3 {
        produce(&mut c, "trim", 0, batch(&["a", "b"])).await;
    }
    assert_eq!(delete_records(&mut c, "trim", 0, 2).await, (2, NONE));
    let response = call!(
        c,
        12,
        Fetch,
        fetch_request(0, -1, vec![fetch_topic("trim", &[(0, 0)])])
    );
    let p = partition_data(&response, "trim", 0);
    assert_eq!((p.error_code, p.log_start_offset), (OFFSET_OUT_OF_RANGE, 2));
    assert_eq!(
        delete_records(&mut c, "trim", 0, 99).await,
        (-1, OFFSET_OUT_OF_RANGE)
    );
    assert_eq!(delete_records(&mut c, "trim", 0, -1).await, (6, NONE));
    assert_eq!(
        delete_records(&mut c, "trim", 1, 0).await.1,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    // The next append continues the offsets.
    assert_eq!(
        produce(&mut c, "trim", 0, batch(&["c"])).await.base_offset,
        6
    );
}

#[tokio::test]
async fn api_versions_advertises_the_new_apis() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let response = call!(c, 3, ApiVersions, ApiVersionsRequest::default());
    let range = |key: i16| {
        response
            .api_keys
            .iter()
            .find(|k| k.api_key == key)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(20), Some((1, 6)), "DeleteTopics");
    assert_eq!(range(21), Some((0, 2)), "DeleteRecords");
    assert_eq!(range(22), Some((0, 5)), "InitProducerId");
    assert_eq!(range(32), Some((1, 4)), "DescribeConfigs");
    assert_eq!(range(33), Some((0, 2)), "AlterConfigs");
    assert_eq!(range(37), Some((0, 3)), "CreatePartitions");
    assert_eq!(range(44), Some((0, 1)), "IncrementalAlterConfigs");
    assert_eq!(range(60), Some((0, 1)), "DescribeCluster");
    assert_eq!(
        range(8),
        Some((2, 9)),
        "OffsetCommit (v0-1 removed in Kafka 4)"
    );
    assert_eq!(
        range(9),
        Some((1, 9)),
        "OffsetFetch (v0 removed in Kafka 4)"
    );
    assert_eq!(range(11), Some((0, 9)), "JoinGroup");
    assert_eq!(range(47), Some((0, 0)), "OffsetDelete");
}

/// A minimal request of `key`: the defaults, except acks=1 so that Produce is answered.
fn minimal_request(key: freshet_protocol::ApiKey) -> freshet_protocol::Request {
    use freshet_protocol::ApiKey as K;
    match key {
        K::Produce => ProduceRequest {
            acks: 1,
            ..Default::default()
        }
        .into(),
        K::Fetch => FetchRequest::default().into(),
        K::ListOffsets => ListOffsetsRequest::default().into(),
        K::Metadata => MetadataRequest::default().into(),
        K::ApiVersions => ApiVersionsRequest::default().into(),
        K::CreateTopics => CreateTopicsRequest::default().into(),
        K::DeleteTopics => DeleteTopicsRequest::default().into(),
        K::DeleteRecords => DeleteRecordsRequest::default().into(),
        K::InitProducerId => InitProducerIdRequest {
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }
        .into(),
        K::DescribeConfigs => DescribeConfigsRequest::default().into(),
        K::AlterConfigs => AlterConfigsRequest::default().into(),
        K::CreatePartitions => CreatePartitionsRequest::default().into(),
        K::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default().into(),
        K::DescribeCluster => DescribeClusterRequest::default().into(),
        K::FindCoordinator => freshet_protocol::messages::FindCoordinatorRequest::default().into(),
        K::JoinGroup => freshet_protocol::messages::JoinGroupRequest::default().into(),
        K::SyncGroup => freshet_protocol::messages::SyncGroupRequest::default().into(),
        K::Heartbeat => freshet_protocol::messages::HeartbeatRequest::default().into(),
        K::LeaveGroup => freshet_protocol::messages::LeaveGroupRequest::default().into(),
        K::OffsetCommit => freshet_protocol::messages::OffsetCommitRequest::default().into(),
        K::OffsetFetch => freshet_protocol::messages::OffsetFetchRequest::default().into(),
        K::ListGroups => freshet_protocol::messages::ListGroupsRequest::default().into(),
        K::DescribeGroups => freshet_protocol::messages::DescribeGroupsRequest::default().into(),
        K::DeleteGroups => freshet_protocol::messages::DeleteGroupsRequest::default().into(),
        K::OffsetDelete => freshet_protocol::messages::OffsetDeleteRequest::default().into(),
        K::ConsumerGroupHeartbeat => {
            freshet_protocol::messages::ConsumerGroupHeartbeatRequest::default().into()
        }
        K::ConsumerGroupDescribe => {
            freshet_protocol::messages::ConsumerGroupDescribeRequest::default().into()
        }
        other => panic!("add a minimal {} request to this test", other.name()),
    }
}

/// ApiVersions tells the truth: every advertised API answers at every advertised version
/// (an API listed without a handler would get no response at all).
#[tokio::test]
async fn every_advertised_version_is_answered() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let advertised = call!(c, 3, ApiVersions, ApiVersionsRequest::default()).api_keys;
    let mut answered = 0;
    for entry in advertised {
        let key = freshet_protocol::ApiKey::from_i16(entry.api_key).expect("a known key");
        for version in entry.min_version..=entry.max_version {
            let reply = c.send(version, minimal_request(key));
            let response = tokio::time::timeout(std::time::Duration::from_secs(10), reply)
                .await
                .unwrap_or_else(|_| panic!("{} v{version} got no response", key.name()));
            assert_eq!(response.api_key(), key);
            answered += 1;
        }
    }
    // 139 when written; fewer would mean the ApiVersions list itself shrank.
    assert!(answered >= 139, "{answered} API versions answered");
}

/// From Fetch v13 sessions name partitions by topic id (KIP-516), forgotten ones too.
#[tokio::test]
async fn fetch_sessions_by_topic_id() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "ids", 2, &[]).await;
    let by_id = |partitions: &[(i32, i64)]| FetchTopic {
        topic_id: id,
        partitions: partitions
            .iter()
            .map(|(p, o)| support::fetch_partition(*p, *o, 1024 * 1024))
            .collect(),
        ..Default::default()
    };
    let full = call!(
        c,
        17,
        Fetch,
        fetch_request(0, 0, vec![by_id(&[(0, 0), (1, 0)])])
    );
    assert_eq!(full.responses[0].topic_id, id);
    assert_eq!(full.responses[0].partitions.len(), 2);
    let session = full.session_id;
    let mut forget = fetch_request(session, 1, vec![]);
    forget.forgotten_topics_data = vec![ForgottenTopic {
        topic_id: id,
        partitions: vec![0],
        ..Default::default()
    }];
    assert!(call!(c, 17, Fetch, forget).responses.is_empty());
    produce(&mut c, "ids", 0, batch(&["a"])).await;
    produce(&mut c, "ids", 1, batch(&["b"])).await;
    let news = call!(c, 17, Fetch, fetch_request(session, 2, vec![]));
    assert_eq!(news.responses.len(), 1);
    let partitions: Vec<i32> = news.responses[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!((news.responses[0].topic_id, partitions), (id, vec![1]));
}

/// Kafka's rule for client batches: record count == last offset delta + 1.
#[tokio::test]
async fn a_batch_whose_count_disagrees_with_its_offsets_is_invalid() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "counts", 1, &[]).await;
    let mut bytes = idempotent_batch(&["a", "b"], 0, 0, 0).to_vec();
    // lastOffsetDelta (bytes 23..27) from 1 to 5, with the CRC (17..21, over 21..) redone.
    bytes[23..27].copy_from_slice(&5i32.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let refused = produce(&mut c, "counts", 0, Bytes::from(bytes)).await;
    assert_eq!(refused.error_code, 87, "INVALID_RECORD");
    let next = produce(&mut c, "counts", 0, idempotent_batch(&["a", "b"], 0, 0, 0)).await;
    assert_eq!(
        (next.error_code, next.base_offset),
        (NONE, 0),
        "nothing was written"
    );
}

/// FindCoordinator: this broker for groups (single key and KIP-699 batches), none yet for
/// transactions, INVALID_REQUEST for an unknown key type.
#[tokio::test]
async fn find_coordinator_names_this_broker_for_groups() {
    use freshet_protocol::messages::FindCoordinatorRequest;
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let single = FindCoordinatorRequest {
        key: "g".into(),
        key_type: 0,
        ..Default::default()
    };
    let r = call!(c, 3, FindCoordinator, single);
    assert_eq!((r.error_code, r.node_id), (NONE, 1));
    assert_eq!(r.port, i32::from(broker.addr().port()));
    let batch = FindCoordinatorRequest {
        key_type: 0,
        coordinator_keys: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    let r = call!(c, 4, FindCoordinator, batch);
    let keys: Vec<_> = r
        .coordinators
        .iter()
        .map(|c| (c.key.as_str(), c.error_code, c.node_id))
        .collect();
    assert_eq!(keys, vec![("a", NONE, 1), ("b", NONE, 1)]);
    let txn = FindCoordinatorRequest {
        key_type: 1,
        coordinator_keys: vec!["t".into()],
        ..Default::default()
    };
    let r = call!(c, 4, FindCoordinator, txn);
    assert_eq!(
        r.coordinators[0].error_code, 15,
        "COORDINATOR_NOT_AVAILABLE"
    );
    let odd = FindCoordinatorRequest {
        key_type: 9,
        coordinator_keys: vec!["x".into()],
        ..Default::default()
    };
    let r = call!(c, 4, FindCoordinator, odd);
    assert_eq!(r.coordinators[0].error_code, 42, "INVALID_REQUEST");
}

/// Creating a topic of many partitions opens their logs without holding up requests for
/// other partitions: produces on another connection are acknowledged while it runs.
#[tokio::test]
async fn creating_a_large_topic_does_not_stall_other_partitions() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "busy", 1, &[]).await;
    let mut admin = broker.client().await;
    let creation = tokio::spawn(async move {
        create_topic(&mut admin, "large", 2_000, &[]).await;
    });
    let mut acknowledged_during_creation = 0;
    while !creation.is_finished() {
        let answer = produce(&mut c, "busy", 0, batch(&["v"])).await;
        assert_eq!(answer.error_code, NONE);
        if !creation.is_finished() {
            acknowledged_during_creation += 1;
        }
    }
    creation.await.expect("creation succeeds");
    assert!(
        acknowledged_during_creation > 0,
        "no produce was answered while 2,000 partitions were being created"
    );
    let described = call!(
        c,
        12,
        Metadata,
        MetadataRequest {
            topics: Some(vec![metadata_request::MetadataRequestTopic {
                name: Some("large".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    );
    assert_eq!(described.topics[0].partitions.len(), 2_000);
    let answer = produce(&mut c, "large", 1_999, batch(&["last"])).await;
    assert_eq!(answer.error_code, NONE, "the last partition is open");
}
