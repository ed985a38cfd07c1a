//! Produce validation, as Kafka's `LogValidator` and `KafkaApis` do it for client batches:
//! every refusal carries Kafka's code, writes nothing, and leaves the partition readable.

#[macro_use]
mod support;

use bytes::Bytes;
use freshet_protocol::messages::produce_response::PartitionProduceResponse;
use freshet_protocol::messages::ApiVersionsRequest;
use freshet_protocol::ApiKey;
use freshet_records::{BatchHeader, BatchOptions, Compression, BATCH_HEADER_LEN};
use support::{
    batch, batch_with, create_topic, fetch_all, now_ms, produce, produce_at, produce_request,
    read_all, Client, TestBroker,
};

const NONE: i16 = 0;
const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_ENOUGH_REPLICAS: i16 = 19;
const INVALID_TIMESTAMP: i16 = 32;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const INVALID_RECORD: i16 = 87;

/// Recomputes length and CRC after a test edited a batch, so only what the test meant to
/// break is broken.
fn resign(mut bytes: Vec<u8>) -> Bytes {
    let batch_length = (bytes.len() - 12) as i32;
    bytes[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

/// Asserts a refusal, then that the partition took nothing: the next good batch lands at
/// `next_offset` and everything in the log reads back.
async fn assert_refused_and_nothing_written(
    broker: &TestBroker,
    c: &mut Client,
    topic: &str,
    refused: &PartitionProduceResponse,
    code: i16,
    next_offset: i64,
) {
    assert_eq!(refused.error_code, code, "{refused:?}");
    assert_eq!(refused.base_offset, -1);
    let next = produce(c, topic, 0, batch(&["good"])).await;
    assert_eq!((next.error_code, next.base_offset), (NONE, next_offset));
    let records = read_all(broker, topic, 0).await;
    assert_eq!(
        records.len() as i64,
        next_offset + 1,
        "every stored record reads"
    );
}

#[tokio::test]
async fn records_that_break_the_format_under_a_valid_crc_are_invalid_record() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "junk", 1, &[]).await;
    let good = batch(&["a", "b", "c"]).to_vec();

    // The second record's length varint claims more bytes than remain.
    let mut junk = good.clone();
    let first_record_len = (junk[BATCH_HEADER_LEN] as usize) / 2; // zigzag, one byte here
    junk[BATCH_HEADER_LEN + 1 + first_record_len] = 0x7e;
    let refused = produce(&mut c, "junk", 0, resign(junk)).await;
    assert_eq!(refused.record_errors.len(), 1, "{refused:?}");
    assert_eq!(refused.record_errors[0].batch_index, 1);
    assert!(refused.error_message.is_some());
    assert_refused_and_nothing_written(&broker, &mut c, "junk", &refused, INVALID_RECORD, 0).await;

    // Bytes left over after the declared records.
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0, 0, 0]);
    let refused = produce(&mut c, "junk", 0, resign(trailing)).await;
    assert_refused_and_nothing_written(&broker, &mut c, "junk", &refused, INVALID_RECORD, 1).await;

    // A compressed batch whose section is not what its codec attribute says.
    let mut not_gzip = good;
    not_gzip[22] |= Compression::Gzip.id();
    let refused = produce(&mut c, "junk", 0, resign(not_gzip)).await;
    assert_refused_and_nothing_written(&broker, &mut c, "junk", &refused, INVALID_RECORD, 2).await;
}

#[tokio::test]
async fn every_codec_is_walked_and_accepted_when_well_formed() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "codecs", 1, &[]).await;
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for (i, compression) in codecs.into_iter().enumerate() {
        let options = BatchOptions {
            compression,
            ..BatchOptions::default()
        };
        let sent = batch_with(&["x", "y"], now_ms(), options);
        let answer = produce(&mut c, "codecs", 0, sent).await;
        assert_eq!(
            (answer.error_code, answer.base_offset),
            (NONE, 2 * i as i64),
            "{compression:?}"
        );
    }
    assert_eq!(read_all(&broker, "codecs", 0).await.len(), 10);
}

#[tokio::test]
async fn a_flipped_byte_is_corrupt_message() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "crc", 1, &[]).await;
    let mut flipped = batch(&["a"]).to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    let refused = produce(&mut c, "crc", 0, Bytes::from(flipped)).await;
    assert_refused_and_nothing_written(&broker, &mut c, "crc", &refused, CORRUPT_MESSAGE, 0).await;
}

/// KIP-110: zstd needs Produce v7.
#[tokio::test]
async fn zstd_needs_produce_v7() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "zstd", 1, &[]).await;
    let zstd = || {
        let options = BatchOptions {
            compression: Compression::Zstd,
            ..BatchOptions::default()
        };
        batch_with(&["z"], now_ms(), options)
    };
    let refused = produce_at(&mut c, 6, -1, "zstd", 0, zstd()).await;
    assert_eq!(refused.error_code, UNSUPPORTED_COMPRESSION_TYPE);
    let accepted = produce_at(&mut c, 7, -1, "zstd", 0, zstd()).await;
    assert_eq!((accepted.error_code, accepted.base_offset), (NONE, 0));
    let lz4 = BatchOptions {
        compression: Compression::Lz4,
        ..BatchOptions::default()
    };
    let older = produce_at(&mut c, 6, -1, "zstd", 0, batch_with(&["l"], now_ms(), lz4)).await;
    assert_eq!((older.error_code, older.base_offset), (NONE, 1));
}

#[tokio::test]
async fn clients_may_not_write_control_batches() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "control", 1, &[]).await;
    let marker =
        freshet_records::control::end_txn_marker_batch(&freshet_records::control::EndTxnMarker {
            commit: true,
            coordinator_epoch: 0,
            producer_id: 7,
            producer_epoch: 0,
            base_offset: 0,
            partition_leader_epoch: 0,
            timestamp_ms: now_ms(),
        })
        .unwrap();
    let refused = produce(&mut c, "control", 0, Bytes::from(marker)).await;
    assert_refused_and_nothing_written(&broker, &mut c, "control", &refused, INVALID_RECORD, 0)
        .await;
}

/// Timestamps are checked record by record against message.timestamp.after.max.ms (one hour
/// by default in Kafka 4), not on the header's claim.
#[tokio::test]
async fn each_record_timestamp_is_checked_and_the_batch_max_timestamp_corrected() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "times", 1, &[]).await;
    let now = now_ms();
    let two_hours = 2 * 3_600_000;
    let future = batch_with(&["late"], now + two_hours, BatchOptions::default());
    let refused = produce(&mut c, "times", 0, future).await;
    assert_refused_and_nothing_written(&broker, &mut c, "times", &refused, INVALID_TIMESTAMP, 0)
        .await;

    // A header that claims a max timestamp of `now` over a record two hours ahead.
    let mut lying = build_batch_with_deltas(now, &[0, two_hours]);
    let mut header = BatchHeader::parse(&lying).unwrap();
    header.max_timestamp = now;
    header.write(&mut lying);
    let refused = produce(&mut c, "times", 0, resign(lying)).await;
    assert_eq!(refused.error_code, INVALID_TIMESTAMP, "{refused:?}");

    // Within bounds but understated: accepted, and stored with the records' largest.
    let mut understated = build_batch_with_deltas(now, &[0, 60_000]);
    let mut header = BatchHeader::parse(&understated).unwrap();
    header.max_timestamp = now;
    header.write(&mut understated);
    let accepted = produce(&mut c, "times", 0, resign(understated)).await;
    assert_eq!((accepted.error_code, accepted.base_offset), (NONE, 1));
    let stored = fetch_all(&broker, "times", 0).await;
    let (start, _) = freshet_records::split_batches(&stored)
        .map_while(Result::ok)
        .find(|(_, h)| h.base_offset == 1)
        .expect("the accepted batch");
    let stored = BatchHeader::parse(&stored[start..]).unwrap();
    assert_eq!(stored.max_timestamp, now + 60_000);
    freshet_records::validate(
        &fetch_all(&broker, "times", 0).await[start..start + stored.total_len()],
    )
    .expect("the rewritten batch's CRC holds");
}

/// A batch of null-key records with the given timestamp deltas from `base`.
fn build_batch_with_deltas(base: i64, deltas: &[i64]) -> Vec<u8> {
    let mut builder = freshet_records::BatchBuilder::new(BatchOptions::default());
    for delta in deltas {
        builder
            .push(&freshet_records::NewRecord {
                timestamp_ms: base + delta,
                key: None,
                value: Some(b"v"),
                headers: &[],
            })
            .unwrap();
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn min_insync_replicas_above_the_replicas_refuses_acks_all_only() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "isr", 1, &[("min.insync.replicas", "2")]).await;
    let all = produce_at(&mut c, 9, -1, "isr", 0, batch(&["a"])).await;
    assert_eq!(all.error_code, NOT_ENOUGH_REPLICAS);
    let leader = produce_at(&mut c, 9, 1, "isr", 0, batch(&["b"])).await;
    assert_eq!((leader.error_code, leader.base_offset), (NONE, 0));
    let records = read_all(&broker, "isr", 0).await;
    assert_eq!(records.len(), 1, "the acks=all batch was not written");
}

/// acks=0 has no response to carry an error, so Kafka closes the connection; a good acks=0
/// produce leaves it open.
#[tokio::test]
async fn a_refused_acks_zero_produce_closes_the_connection() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "fire", 1, &[]).await;

    c.send_only(9, produce_request(0, "fire", 0, batch(&["ok"])).into())
        .await;
    let still_open = call!(c, 3, ApiVersions, ApiVersionsRequest::default());
    assert_eq!(still_open.error_code, NONE);

    let before = c.send_only(3, ApiVersionsRequest::default().into()).await;
    c.send_only(9, produce_request(0, "fire", 7, batch(&["lost"])).into())
        .await;
    let (answered, _) = c.receive(ApiKey::ApiVersions, 3).await;
    assert_eq!(
        answered, before,
        "requests before the refused one are answered"
    );
    assert!(c.is_closed().await, "the connection closes");

    let mut other = broker.client().await;
    let unknown = produce_at(&mut other, 9, 1, "fire", 7, batch(&["x"])).await;
    assert_eq!(unknown.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(read_all(&broker, "fire", 0).await.len(), 1);
}
