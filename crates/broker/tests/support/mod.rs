//! A broker started in-process on 127.0.0.1:0 with a temporary data directory, and a tiny
//! raw-protocol client: one request at a time, Kafka framing and headers.

#![allow(dead_code)] // Each test file uses a different part of this.

use bytes::{Bytes, BytesMut};
use freshet_broker::{Broker, BrokerConfig};
use freshet_protocol::frame::decode_frame;
use freshet_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use freshet_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use freshet_protocol::messages::produce_response::PartitionProduceResponse;
use freshet_protocol::messages::{FetchRequest, ProduceRequest};
use freshet_protocol::wire::{decode_response, encode_request};
use freshet_protocol::{ApiKey, Request, RequestHeader, Response};
use freshet_records::{BatchBuilder, BatchOptions, NewRecord};
use std::net::SocketAddr;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FRAME_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Sends a request and unwraps the response variant, panicking on any other.
#[macro_export]
macro_rules! call {
    ($client:expr, $version:expr, $variant:ident, $request:expr) => {
        match $client.send($version, $request.into()).await {
            freshet_protocol::Response::$variant(r) => r,
            other => panic!("unexpected response {other:?}"),
        }
    };
}

pub struct TestBroker {
    pub broker: Broker,
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        TestBroker::start_with(|_| {}).await
    }

    /// Starts with the test configuration changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path());
        configure(&mut config);
        let broker = Broker::start(config).await.expect("broker starts");
        TestBroker { broker, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.broker.local_addr()
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr()).await
    }

    /// Stops cleanly and starts again on the same data directory.
    pub async fn restart(self) -> TestBroker {
        let TestBroker { broker, dir } = self;
        broker.shutdown().await.expect("clean shutdown");
        let broker = start_in(dir.path()).await;
        TestBroker { broker, dir }
    }
}

async fn start_in(dir: &Path) -> Broker {
    Broker::start(test_config(dir))
        .await
        .expect("broker starts")
}

fn test_config(dir: &Path) -> BrokerConfig {
    BrokerConfig {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".to_string(),
        // Groups form at once, and __consumer_offsets is quick to create.
        group_initial_rebalance_delay_ms: 0,
        offsets_topic_num_partitions: 3,
        ..BrokerConfig::default()
    }
}

pub struct Client {
    stream: TcpStream,
    correlation_id: i32,
    buf: BytesMut,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.expect("connect"),
            correlation_id: 0,
            buf: BytesMut::new(),
        }
    }

    /// Sends `request` at `version` and waits for its response.
    pub async fn send(&mut self, version: i16, request: Request) -> Response {
        let api_key = request.api_key();
        let correlation_id = self.send_only(version, request).await;
        let (answered, response) = self.receive(api_key, version).await;
        assert_eq!(answered, correlation_id);
        response
    }

    /// Sends `request` without waiting (pipelining); returns its correlation id.
    pub async fn send_only(&mut self, version: i16, request: Request) -> i32 {
        self.correlation_id += 1;
        let header = RequestHeader {
            request_api_key: request.api_key().as_i16(),
            request_api_version: version,
            correlation_id: self.correlation_id,
            client_id: Some("apis-test".to_string()),
            ..RequestHeader::default()
        };
        let mut out = BytesMut::new();
        encode_request(&header, &request, &mut out, FRAME_BYTES_MAX).expect("encode");
        self.send_raw(&out).await;
        self.correlation_id
    }

    /// Writes bytes as they are: hand-made frames.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads the next response, of `api_key` at `version`, with its correlation id.
    pub async fn receive(&mut self, api_key: ApiKey, version: i16) -> (i32, Response) {
        let frame = self
            .read_frame()
            .await
            .expect("broker closed the connection");
        let (header, response) = decode_response(api_key, version, frame).expect("decode");
        (header.correlation_id, response)
    }

    /// Whether the broker closes the connection (end of stream) within five seconds, with
    /// no further response before it.
    pub async fn is_closed(&mut self) -> bool {
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), self.read_frame());
        matches!(read.await, Ok(None))
    }

    /// The next whole frame, or `None` once the broker has closed the connection.
    async fn read_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = decode_frame(&mut self.buf, FRAME_BYTES_MAX).expect("frame") {
                return Some(frame);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

/// A Produce request of one partition's records.
pub fn produce_request(acks: i16, topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest {
        acks,
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
    }
}

/// Produce v9 with acks=-1 of one partition's records; that partition's answer.
pub async fn produce(
    c: &mut Client,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    produce_at(c, 9, -1, topic, partition, records).await
}

/// Produce at `version` with `acks` (1 or -1) of one partition's records; its answer.
pub async fn produce_at(
    c: &mut Client,
    version: i16,
    acks: i16,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    let request = produce_request(acks, topic, partition, records);
    let mut response = call!(c, version, Produce, request);
    response.responses.remove(0).partition_responses.remove(0)
}

/// A batch of `values` (no keys) with the given producer fields and timestamps.
pub fn batch_with(values: &[&str], timestamp_ms: i64, options: BatchOptions) -> Bytes {
    let mut builder = BatchBuilder::new(options);
    for v in values {
        builder
            .push(&NewRecord {
                timestamp_ms,
                key: None,
                value: Some(v.as_bytes()),
                headers: &[],
            })
            .expect("push");
    }
    Bytes::from(builder.build().expect("build"))
}

/// A plain batch stamped now.
pub fn batch(values: &[&str]) -> Bytes {
    batch_with(values, now_ms(), BatchOptions::default())
}

/// An idempotent producer's batch.
pub fn idempotent_batch(
    values: &[&str],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Bytes {
    let options = BatchOptions {
        producer_id,
        producer_epoch,
        base_sequence,
        ..BatchOptions::default()
    };
    batch_with(values, now_ms(), options)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Every record of `topic`-`partition` as (offset, key, value), read with one Fetch v12
/// from offset 0 (enough for the small logs of tests).
pub async fn read_all(
    broker: &TestBroker,
    topic: &str,
    partition: i32,
) -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
    let bytes = fetch_all(broker, topic, partition).await;
    let mut out = Vec::new();
    for (start, header) in freshet_records::split_batches(&bytes).map_while(Result::ok) {
        let batch = bytes.slice(start..start + header.total_len());
        for record in freshet_records::records(&batch, 64 << 20).expect("records") {
            let record = record.expect("record");
            out.push((record.offset, record.key, record.value));
        }
    }
    out
}

/// The stored batches of `topic`-`partition` from offset 0, as one Fetch v12 returns them.
pub async fn fetch_all(broker: &TestBroker, topic: &str, partition: i32) -> Bytes {
    let mut client = broker.client().await;
    let mut request = fetch_one(topic, partition, 0, 0);
    request.max_bytes = 50 * 1024 * 1024;
    request.topics[0].partitions[0].partition_max_bytes = 50 * 1024 * 1024;
    let Response::Fetch(response) = client.send(12, request.into()).await else {
        panic!("not a fetch response");
    };
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.error_code, 0, "fetch {topic}-{partition}");
    data.records.clone().unwrap_or_default()
}

/// One partition to fetch from `fetch_offset`, no leader epoch checks.
pub fn fetch_partition(
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: i32,
) -> FetchPartition {
    FetchPartition {
        partition,
        current_leader_epoch: -1,
        fetch_offset,
        last_fetched_epoch: -1,
        log_start_offset: -1,
        partition_max_bytes,
        ..Default::default()
    }
}

/// A sessionless Fetch of one partition from `offset` with 1 MiB limits, waiting up to
/// `max_wait_ms` for a byte.
pub fn fetch_one(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.to_string(),
            partitions: vec![fetch_partition(partition, offset, 1 << 20)],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Creates a topic (CreateTopics v7), asserting success; returns its id.
pub async fn create_topic(
    c: &mut Client,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> freshet_protocol::Uuid {
    let request = freshet_protocol::messages::CreateTopicsRequest {
        topics: vec![
            freshet_protocol::messages::create_topics_request::CreatableTopic {
                name: name.to_string(),
                num_partitions: partitions,
                replication_factor: 1,
                configs: configs
                    .iter()
                    .map(|(k, v)| {
                        freshet_protocol::messages::create_topics_request::CreatableTopicConfig {
                            name: k.to_string(),
                            value: Some(v.to_string()),
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            },
        ],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let response = call!(c, 7, CreateTopics, request);
    assert_eq!(response.topics[0].error_code, 0, "{:?}", response.topics[0]);
    wait_served(c, name, partitions).await;
    response.topics[0].topic_id
}

/// Polls ListOffsets until every partition of `topic` up to `partitions` is served: the
/// broker answers CreateTopics and CreatePartitions once the metadata is committed and opens
/// the logs in the background (NOT_LEADER_OR_FOLLOWER meanwhile), as Kafka does. Returns the
/// number of polls that found some partition not served yet.
pub async fn wait_served(c: &mut Client, topic: &str, partitions: i32) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut waits = 0;
    loop {
        let unserved = unserved_partitions(c, topic, partitions).await;
        if unserved == 0 {
            return waits;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{topic}: {unserved} of {partitions} partitions not served after 30 s"
        );
        waits += 1;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// How many of the first `partitions` partitions of `topic` answer ListOffsets (latest) with
/// an error.
pub async fn unserved_partitions(c: &mut Client, topic: &str, partitions: i32) -> usize {
    let request = list_offsets_request(topic, 0..partitions, -1);
    let response = call!(c, 7, ListOffsets, request);
    response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.error_code != 0)
        .count()
        + (partitions as usize)
            .saturating_sub(response.topics.iter().map(|t| t.partitions.len()).sum())
}

/// ListOffsets v7 of one partition at `timestamp`; returns (error code, offset).
pub async fn list_offset(
    c: &mut Client,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i16, i64) {
    let request = list_offsets_request(topic, partition..partition + 1, timestamp);
    let response = call!(c, 7, ListOffsets, request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// ListOffsets of `partitions` of `topic` at `timestamp` (-1 latest, -2 earliest).
pub fn list_offsets_request(
    topic: &str,
    partitions: std::ops::Range<i32>,
    timestamp: i64,
) -> freshet_protocol::messages::ListOffsetsRequest {
    use freshet_protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsTopic,
    };
    freshet_protocol::messages::ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: topic.to_string(),
            partitions: partitions
                .map(|p| ListOffsetsPartition {
                    partition_index: p,
                    current_leader_epoch: -1,
                    timestamp,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}
