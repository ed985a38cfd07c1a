//! The idempotent producer against a fake broker that checks sequence numbers as Kafka
//! does (`ProducerAppendInfo.checkSequence`): a producer the partition does not know yet may
//! start at any sequence, a known one must continue at its last sequence + 1, and a batch
//! equal to one of its last five is a duplicate.
//!
//! The race this pins down (seen against Kafka 4.3.1 right after topic creation): the
//! first batch of a partition is refused with a retriable error (NOT_LEADER_OR_FOLLOWER:
//! the leader is not ready yet) while later batches of the same partition are already in
//! flight. The broker does not know the producer yet, so it accepts the second batch with
//! its non-zero sequence; the first batch's retry can then never be accepted (sequence 0
//! after the later ones: OUT_OF_ORDER_SEQUENCE_NUMBER until the delivery timeout).

#[path = "support/fake_wire.rs"]
mod fake_wire;

use fake_wire::PRODUCER_APIS;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use freshet_client::{DeliveryFuture, KafkaCode, Producer, ProducerConfig, ProducerRecord};
use freshet_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use freshet_protocol::messages::{InitProducerIdResponse, ProduceRequest, ProduceResponse};
use freshet_protocol::{ApiKey, Decode, Encode};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// The first producer id handed out; each InitProducerId gets the next.
const FIRST_PRODUCER_ID: i64 = 51;
const PRODUCER_EPOCH: i16 = 0;

/// One partition's log and the producer's state in it, as Kafka keeps them.
#[derive(Default)]
struct Partition {
    /// `None` until a batch of the producer is appended.
    last_sequence: Option<i32>,
    /// (base sequence, last sequence, base offset) of the last five appended batches.
    recent: VecDeque<(i32, i32, i64)>,
}

#[derive(Default)]
struct Broker {
    /// Produce requests still to be refused with NOT_LEADER_OR_FOLLOWER (after a delay
    /// that lets the client pipeline its next batches behind the first).
    not_leader_first: usize,
    /// The partition's state per producer id (its log offsets are shared).
    producers: HashMap<i64, Partition>,
    log_end_offset: i64,
    producer_ids_issued: i64,
    /// A batch with this base sequence (of the first producer id) is refused with
    /// MESSAGE_TOO_LARGE, once: not written, so its sequences are a gap.
    refused: Option<i32>,
    /// A batch with this base sequence is written but answered REQUEST_TIMED_OUT (as
    /// Kafka does when acks=all replication times out); its retry then loses its answer:
    /// the connection goes silent (requests still read and appended, none answered) and
    /// is closed shortly after.
    written_unanswered: Option<i32>,
    /// Set once the retry arrived: the serving connection stops answering.
    silence: bool,
    /// Every (base sequence, record count, error code) answered, in order.
    answered: Vec<(i32, i32, i16)>,
}

impl Broker {
    fn append(&mut self, batch: &Bytes) -> (i16, i64) {
        let header = freshet_records::validate(batch).unwrap();
        assert!(header.producer_id >= FIRST_PRODUCER_ID);
        assert!(header.producer_id < FIRST_PRODUCER_ID + self.producer_ids_issued);
        assert_eq!(header.producer_epoch, PRODUCER_EPOCH);
        let first = header.base_sequence;
        let last = first + header.record_count - 1;
        let log_end_offset = self.log_end_offset;
        let partition = self.producers.entry(header.producer_id).or_default();
        let retry_of_unanswered =
            self.written_unanswered == Some(first) && partition.last_sequence.is_some();
        let result = if self.not_leader_first > 0 {
            self.not_leader_first -= 1;
            (KafkaCode::NOT_LEADER_OR_FOLLOWER.0, -1)
        } else if header.producer_id == FIRST_PRODUCER_ID && self.refused == Some(first) {
            self.refused = None;
            (KafkaCode::MESSAGE_TOO_LARGE.0, -1)
        } else if let Some(&(_, _, offset)) = partition
            .recent
            .iter()
            .find(|(b, l, _)| (*b, *l) == (first, last))
        {
            // Kafka answers a duplicate with success and the original offset.
            (0, offset)
        } else if partition
            .last_sequence
            .is_some_and(|known| first != known + 1)
        {
            (KafkaCode::OUT_OF_ORDER_SEQUENCE_NUMBER.0, -1)
        } else {
            let p = partition;
            let offset = log_end_offset;
            self.log_end_offset += i64::from(header.record_count);
            p.last_sequence = Some(last);
            p.recent.push_back((first, last, offset));
            if p.recent.len() > 5 {
                p.recent.pop_front();
            }
            if self.written_unanswered == Some(first) {
                (KafkaCode::REQUEST_TIMED_OUT.0, -1)
            } else {
                (0, offset)
            }
        };
        if retry_of_unanswered && result.0 == 0 {
            self.written_unanswered = None;
            self.silence = true;
        }
        self.answered.push((first, header.record_count, result.0));
        result
    }
}

async fn start(broker: Arc<Mutex<Broker>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(stream, addr.port(), broker.clone()));
        }
    });
    addr.to_string()
}

/// Answers requests one at a time, in order, like a Kafka connection.
async fn serve(mut stream: TcpStream, port: u16, broker: Arc<Mutex<Broker>>) {
    let mut silent_until = None;
    loop {
        let len = match silent_until {
            None => stream.read_i32().await,
            // Silent: read and append what comes for a while, answer nothing, then close.
            Some(until) => match tokio::time::timeout_at(until, stream.read_i32()).await {
                Ok(len) => len,
                Err(_) => return,
            },
        };
        let Ok(len) = len else { return };
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
            ApiKey::InitProducerId => {
                let producer_id = {
                    let mut broker = broker.lock().unwrap();
                    broker.producer_ids_issued += 1;
                    FIRST_PRODUCER_ID + broker.producer_ids_issued - 1
                };
                InitProducerIdResponse {
                    producer_id,
                    producer_epoch: PRODUCER_EPOCH,
                    ..Default::default()
                }
                .encode(&mut body, version)
                .unwrap()
            }
            ApiKey::Produce => {
                let request = ProduceRequest::decode(&mut frame, version).unwrap();
                let delay = broker.lock().unwrap().not_leader_first > 0;
                if delay {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                produce(&request, &broker)
                    .encode(&mut body, version)
                    .unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
        if silent_until.is_none() && std::mem::take(&mut broker.lock().unwrap().silence) {
            silent_until = Some(tokio::time::Instant::now() + Duration::from_millis(300));
        }
        if silent_until.is_some() {
            continue;
        }
        fake_wire::write_response(&mut stream, api, version, header.correlation_id, &body).await;
    }
}

fn produce(request: &ProduceRequest, broker: &Mutex<Broker>) -> ProduceResponse {
    let mut broker = broker.lock().unwrap();
    let partition = &request.topic_data[0].partition_data[0];
    let (error_code, base_offset) = broker.append(partition.records.as_ref().unwrap());
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

/// A producer with quick retries and a short delivery timeout; with `one_record_batches`
/// every record is a batch of its own, so several batches of a partition can be in flight.
fn producer(addr: &str, one_record_batches: bool) -> Producer {
    let mut config = ProducerConfig::new(addr);
    config.retry_backoff_ms = 10;
    config.linger_ms = 0;
    config.delivery_timeout_ms = 3_000;
    if one_record_batches {
        config.batch_bytes_max = 1;
        config.max_in_flight_per_partition = 5;
    }
    Producer::new(config).unwrap()
}

/// Each delivery's offset or error message, in the order given.
async fn outcomes(
    deliveries: impl IntoIterator<Item = DeliveryFuture>,
) -> Vec<Result<i64, String>> {
    let mut out = Vec::new();
    for delivery in deliveries {
        out.push(delivery.await.map(|m| m.offset).map_err(|e| e.to_string()));
    }
    out
}

#[tokio::test]
async fn first_batch_refused_while_later_ones_are_in_flight_still_lands_first() {
    let broker = Arc::new(Mutex::new(Broker {
        not_leader_first: 1,
        ..Default::default()
    }));
    let addr = start(broker.clone()).await;
    let producer = producer(&addr, true);
    let deliveries: Vec<_> = (0..12)
        .map(|i| producer.send(ProducerRecord::new("t", format!("v{i}")).with_partition(0)))
        .collect();
    let offsets = outcomes(deliveries).await;
    producer.close().await.unwrap();
    let answered = broker.lock().unwrap().answered.clone();
    let expected: Vec<Result<i64, String>> = (0..12).map(Ok).collect();
    assert_eq!(
        offsets, expected,
        "every record once, in send order; broker answers (base sequence, count, code): {answered:?}"
    );
    assert!(
        answered.iter().all(|&(_, _, code)| code != 45),
        "no OUT_OF_ORDER_SEQUENCE_NUMBER: {answered:?}"
    );
    assert_eq!(answered[0], (0, 1, KafkaCode::NOT_LEADER_OR_FOLLOWER.0));
}

#[tokio::test]
async fn retry_whose_answer_is_lost_again_stays_a_duplicate() {
    let broker = Arc::new(Mutex::new(Broker {
        written_unanswered: Some(1),
        ..Default::default()
    }));
    let addr = start(broker.clone()).await;
    let producer = producer(&addr, true);
    let deliveries: Vec<_> = (0..20)
        .map(|i| producer.send(ProducerRecord::new("t", format!("v{i}")).with_partition(0)))
        .collect();
    let offsets = outcomes(deliveries).await;
    producer.close().await.unwrap();
    let answered = broker.lock().unwrap().answered.clone();
    let expected: Vec<Result<i64, String>> = (0..20).map(Ok).collect();
    assert_eq!(
        offsets, expected,
        "every record once, in send order; broker answers (base sequence, count, code): {answered:?}"
    );
    assert!(
        answered.contains(&(1, 1, KafkaCode::REQUEST_TIMED_OUT.0)),
        "the scenario ran: {answered:?}"
    );
    assert!(
        answered.iter().all(|&(_, _, code)| code != 45),
        "no OUT_OF_ORDER_SEQUENCE_NUMBER: {answered:?}"
    );
}

#[tokio::test]
async fn batch_refused_for_good_does_not_leave_a_gap_that_blocks_the_partition() {
    let broker = Arc::new(Mutex::new(Broker {
        refused: Some(1),
        ..Default::default()
    }));
    let addr = start(broker.clone()).await;
    let producer = producer(&addr, false);
    let send =
        |value: &str| producer.send(ProducerRecord::new("t", value.to_owned()).with_partition(0));
    assert_eq!(send("a").await.unwrap().offset, 0);
    let refused = send("b").await.unwrap_err().to_string();
    assert!(refused.contains("MESSAGE_TOO_LARGE"), "{refused}");
    // Sequence 1 was never written: sequence 2 of the same producer id would be out of
    // order for ever. One at a time: each is sent after the previous one is answered.
    let mut offsets = Vec::new();
    for value in ["c", "d", "e"] {
        offsets.extend(outcomes([send(value)]).await);
    }
    producer.close().await.unwrap();
    let answered = broker.lock().unwrap().answered.clone();
    assert_eq!(
        offsets,
        vec![Ok(1), Ok(2), Ok(3)],
        "broker answers (base sequence, count, code): {answered:?}"
    );
}

#[tokio::test]
async fn batches_behind_one_refused_for_good_move_to_the_new_producer_id() {
    let broker = Arc::new(Mutex::new(Broker {
        refused: Some(1),
        ..Default::default()
    }));
    let addr = start(broker.clone()).await;
    let producer = producer(&addr, true);
    let send =
        |value: &str| producer.send(ProducerRecord::new("t", value.to_owned()).with_partition(0));
    assert_eq!(send("a").await.unwrap().offset, 0);
    // Three batches in flight at once: sequence 1 is refused, 2 and 3 are then out of
    // order under the first producer id and can only be written under a new one.
    let results = outcomes([send("b"), send("c"), send("d")]).await;
    let after = outcomes([send("e")]).await.remove(0);
    producer.close().await.unwrap();
    let answered = broker.lock().unwrap().answered.clone();
    assert!(
        results[0]
            .as_ref()
            .is_err_and(|e| e.contains("MESSAGE_TOO_LARGE")),
        "{results:?}"
    );
    assert_eq!(
        (&results[1..], after),
        (&[Ok(1), Ok(2)][..], Ok(3)),
        "broker answers (base sequence, count, code): {answered:?}"
    );
}
