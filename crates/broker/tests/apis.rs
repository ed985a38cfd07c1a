//! The admin, idempotence and fetch-session APIs over real TCP against an in-process broker.

#[macro_use]
mod support;

use bytes::Bytes;
use freshet_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use freshet_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use freshet_protocol::messages::fetch_response::PartitionData;
use freshet_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use freshet_protocol::messages::produce_response::PartitionProduceResponse;
use freshet_protocol::messages::*;
use freshet_protocol::Uuid;
use support::{batch, idempotent_batch, now_ms, Client, TestBroker};

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

async fn create_topic(c: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.to_string(),
            num_partitions: partitions,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig {
                    name: k.to_string(),
                    value: Some(v.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let response = call!(c, 7, CreateTopics, request);
    assert_eq!(
        response.topics[0].error_code, NONE,
        "{:?}",
        response.topics[0]
    );
}

async fn produce(
    c: &mut Client,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.to_string(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut response = call!(c, 9, Produce, request);
    response.responses.remove(0).partition_responses.remove(0)
}

fn fetch_partition(partition: i32, fetch_offset: i64) -> FetchPartition {
    FetchPartition {
        partition,
        current_leader_epoch: -1,
        fetch_offset,
        last_fetched_epoch: -1,
        log_start_offset: -1,
        partition_max_bytes: 1024 * 1024,
        ..Default::default()
    }
}

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
            .map(|(p, o)| fetch_partition(*p, *o))
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
