//! The producer against a scripted broker on 127.0.0.1:0: what exactly goes on the wire
//! when a batch must be retried (same bytes, same producer id and sequence), and which
//! sequence numbers follow.

#[path = "support/fake_wire.rs"]
mod fake_wire;

use fake_wire::PRODUCER_APIS;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use freshet_client::{KafkaCode, ProduceError, Producer, ProducerConfig, ProducerRecord};
use freshet_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use freshet_protocol::messages::{InitProducerIdResponse, ProduceRequest, ProduceResponse};
use freshet_protocol::{ApiKey, Decode, Encode};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

const PRODUCER_ID: i64 = 4242;
const PRODUCER_EPOCH: i16 = 7;

/// What the fake broker saw and how it answers produce requests.
#[derive(Default)]
struct Script {
    /// Error codes for the next produce requests, in order; success once empty.
    produce_errors: Vec<i16>,
    /// Every batch received, in order, with the error code it was answered with.
    batches: Vec<(Bytes, i16)>,
    /// Records appended so far (the next base offset).
    log_end_offset: i64,
}

async fn start(script: Arc<Mutex<Script>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(stream, addr.port(), script.clone()));
        }
    });
    addr.to_string()
}

async fn serve(mut stream: TcpStream, port: u16, script: Arc<Mutex<Script>>) {
    while let Ok(len) = stream.read_i32().await {
        let (api, version, header, mut frame) =
            fake_wire::read_request_body(&mut stream, len).await;
        let mut body = BytesMut::new();
        match api {
            ApiKey::ApiVersions => fake_wire::api_versions(PRODUCER_APIS)
                .encode(&mut body, version)
                .unwrap(),
            ApiKey::Metadata => fake_wire::metadata_one_partition(port)
                .encode(&mut body, version)
                .unwrap(),
            ApiKey::InitProducerId => InitProducerIdResponse {
                producer_id: PRODUCER_ID,
                producer_epoch: PRODUCER_EPOCH,
                ..Default::default()
            }
            .encode(&mut body, version)
            .unwrap(),
            ApiKey::Produce => {
                let request = ProduceRequest::decode(&mut frame, version).unwrap();
                produce(&request, &script)
                    .encode(&mut body, version)
                    .unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
        fake_wire::write_response(&mut stream, api, version, header.correlation_id, &body).await;
    }
}

fn produce(request: &ProduceRequest, script: &Mutex<Script>) -> ProduceResponse {
    let mut script = script.lock().unwrap();
    let partition = &request.topic_data[0].partition_data[0];
    let batch = partition.records.clone().unwrap();
    let header = freshet_records::validate(&batch).unwrap();
    let error_code = if script.produce_errors.is_empty() {
        0
    } else {
        script.produce_errors.remove(0)
    };
    script.batches.push((batch, error_code));
    let base_offset = if error_code == 0 {
        let base = script.log_end_offset;
        script.log_end_offset += i64::from(header.record_count);
        base
    } else {
        -1
    };
    ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "t".into(),
            partition_responses: vec![PartitionProduceResponse {
                index: partition.index,
                error_code,
                base_offset,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn config(addr: &str) -> ProducerConfig {
    let mut config = ProducerConfig::new(addr);
    config.retry_backoff_ms = 10;
    config.linger_ms = 20;
    config
}

#[tokio::test]
async fn retried_batch_is_resent_byte_for_byte_with_its_sequence() {
    let script = Arc::new(Mutex::new(Script {
        produce_errors: vec![
            KafkaCode::NOT_LEADER_OR_FOLLOWER.0,
            KafkaCode::REQUEST_TIMED_OUT.0,
        ],
        ..Default::default()
    }));
    let addr = start(script.clone()).await;
    let producer = Producer::new(config(&addr)).unwrap();
    let first: Vec<_> = (0..3)
        .map(|i| producer.send(ProducerRecord::new("t", format!("a{i}")).with_partition(0)))
        .collect();
    for (i, delivery) in first.into_iter().enumerate() {
        let metadata = delivery.await.unwrap();
        assert_eq!((metadata.partition, metadata.offset), (0, i as i64));
    }
    let second: Vec<_> = (0..2)
        .map(|i| producer.send(ProducerRecord::new("t", format!("b{i}")).with_partition(0)))
        .collect();
    for (i, delivery) in second.into_iter().enumerate() {
        assert_eq!(delivery.await.unwrap().offset, 3 + i as i64);
    }
    producer.close().await.unwrap();

    let batches = script.lock().unwrap().batches.clone();
    let codes: Vec<i16> = batches.iter().map(|(_, code)| *code).collect();
    assert_eq!(
        codes,
        vec![6, 7, 0, 0],
        "two failed attempts, the retry, the next batch"
    );
    assert_eq!(batches[0].0, batches[1].0, "a retry resends the same bytes");
    assert_eq!(batches[1].0, batches[2].0);
    let headers: Vec<_> = batches
        .iter()
        .map(|(b, _)| freshet_records::validate(b).unwrap())
        .collect();
    for header in &headers {
        assert_eq!(
            (header.producer_id, header.producer_epoch),
            (PRODUCER_ID, PRODUCER_EPOCH)
        );
    }
    assert_eq!((headers[0].base_sequence, headers[0].record_count), (0, 3));
    assert_eq!((headers[3].base_sequence, headers[3].record_count), (3, 2));
}

#[tokio::test]
async fn fatal_error_fails_the_batch_and_keeps_the_next_one_going() {
    let script = Arc::new(Mutex::new(Script {
        produce_errors: vec![10], // MESSAGE_TOO_LARGE: not retriable.
        ..Default::default()
    }));
    let addr = start(script.clone()).await;
    let producer = Producer::new(config(&addr)).unwrap();
    let failed = producer
        .send(ProducerRecord::new("t", "x").with_partition(0))
        .await;
    match failed {
        Err(ProduceError::Kafka {
            error, partition, ..
        }) => {
            assert_eq!(error.code, KafkaCode::MESSAGE_TOO_LARGE);
            assert_eq!(partition, 0);
        }
        other => panic!("expected MESSAGE_TOO_LARGE, got {other:?}"),
    }
    let ok = producer
        .send(ProducerRecord::new("t", "y").with_partition(0))
        .await
        .unwrap();
    assert_eq!(ok.offset, 0);
    producer.flush().await.unwrap();
    producer.close().await.unwrap();
    assert_eq!(
        script.lock().unwrap().batches.len(),
        2,
        "no retry of a fatal error"
    );
}

#[tokio::test]
async fn delivery_timeout_bounds_retries() {
    let script = Arc::new(Mutex::new(Script {
        produce_errors: vec![KafkaCode::REQUEST_TIMED_OUT.0; 1_000],
        ..Default::default()
    }));
    let addr = start(script.clone()).await;
    let mut config = config(&addr);
    config.delivery_timeout_ms = 300;
    let producer = Producer::new(config).unwrap();
    let started = std::time::Instant::now();
    let result = producer
        .send(ProducerRecord::new("t", "x").with_partition(0))
        .await;
    let elapsed = started.elapsed();
    match result {
        Err(ProduceError::DeliveryTimeout { last_error, .. }) => {
            assert!(last_error.contains("REQUEST_TIMED_OUT"), "{last_error}");
        }
        other => panic!("expected a delivery timeout, got {other:?}"),
    }
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    let attempts = script.lock().unwrap().batches.len();
    assert!(
        attempts >= 3,
        "retried with backoff until the timeout: {attempts} attempts"
    );
    producer.close().await.unwrap();
}
