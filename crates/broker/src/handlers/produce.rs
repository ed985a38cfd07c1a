//! Produce: validate each partition's batch, append it in request order, then wait for the
//! flush policy before acknowledging (acks 1 and -1) or answer nothing (acks 0; a request
//! with any partition refused then closes the connection, as Kafka does, so that the
//! producer notices and refreshes its metadata).
//!
//! Validation is Kafka's `LogValidator` for client batches: exactly one RecordBatch v2, CRC,
//! count agreeing with offsets, no control batches, no zstd before Produce v7, and every
//! record walked (decompressed first when the batch is compressed), so that a batch whose CRC
//! is right but whose records are not is refused instead of breaking every consumer of the
//! partition. Record timestamps are checked against the topic's bounds one by one, and a
//! batch whose header understates its largest timestamp gets the right one (new CRC).
//!
//! Under the default fsync policy an append becomes visible to consumers (the high
//! watermark moves) only once it is durable, so nothing a consumer has read can be lost by a
//! crash; acks=1 and acks=all both wait for that on a single node.
//!
//! Idempotent producers (batches with a producer id) are checked against the partition's
//! producer state before the append: a retry of one of the producer's last five batches is
//! answered with its original offsets and nothing is written; a gap in the sequence is
//! OUT_OF_ORDER_SEQUENCE_NUMBER (rules in `freshet-txn`). Topics with
//! `message.timestamp.type=LogAppendTime` get the append time stamped into the batch header.

use super::Reply;
use crate::broker::Context;
use crate::codes;
use crate::partitions::Partition;
use bytes::Bytes;
use freshet_log::LogError;
use freshet_metadata::config::TimestampType;
use freshet_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use freshet_protocol::messages::{ProduceRequest, ProduceResponse};
use freshet_protocol::Response;
use freshet_records::{BatchHeader, Compression, RecordError, ScannedRecords};
use freshet_txn::{AppendDecision, ProducerBatch, ProducerError};
use std::sync::Arc;

/// The first Produce version that carries RecordBatch v2 (magic 2); Kafka 4 refuses older ones.
const PRODUCE_VERSION_MIN_SERVED: i16 = 3;

/// The first Produce version that may carry zstd batches (KIP-110).
const PRODUCE_VERSION_MIN_ZSTD: i16 = 7;

/// The most a compressed batch may inflate to when its records are checked; past it the batch
/// is refused with MESSAGE_TOO_LARGE (the producer then splits it), so a small request cannot
/// make the broker allocate without bound.
const DECOMPRESSED_BATCH_BYTES_MAX: usize = 128 * 1024 * 1024;

/// A single node is the only replica of each of its partitions, so its in-sync replica count
/// is 1 (replication across brokers arrives with the cluster).
const IN_SYNC_REPLICAS: i32 = 1;

/// One partition's outcome after the ordered (append) phase.
struct Appended {
    topic: String,
    partition: i32,
    result: Result<(Landed, Arc<Partition>), Refusal>,
}

/// Where a batch is in the log: appended now, or already there (an idempotent retry).
#[derive(Debug, Clone, Copy)]
struct Landed {
    base_offset: i64,
    last_offset: i64,
    /// The broker's append time for LogAppendTime topics, else -1 (the response field).
    log_append_time_ms: i64,
}

/// A partition-level error: the Kafka code and the message sent with it.
#[derive(Debug)]
struct Refusal {
    code: i16,
    message: Option<String>,
    /// The index in the batch of the record that caused it, when one record did (Produce v8+
    /// `record_errors`, which the Java producer turns into that record's exception).
    record_index: Option<i32>,
}

impl Refusal {
    fn new(code: i16) -> Refusal {
        Refusal {
            code,
            message: None,
            record_index: None,
        }
    }

    fn with(code: i16, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: Some(message.into()),
            record_index: None,
        }
    }

    /// A batch-level error: its Kafka code and its description.
    fn batch(e: freshet_records::BatchError) -> Refusal {
        Refusal::with(e.kafka_error_code(), e.to_string())
    }

    fn from_records(e: RecordError) -> Refusal {
        let record_index = match e {
            RecordError::Malformed { record_index, .. } => Some(record_index),
            _ => None,
        };
        Refusal {
            record_index,
            ..Refusal::with(e.kafka_error_code(), e.to_string())
        }
    }
}

/// Kafka lets only its own admin client append to internal topics (`__consumer_offsets` is
/// written by the group coordinator alone).
const INTERNAL_TOPICS_CLIENT_ID: &str = "__admin_client";

pub fn handle(
    ctx: Arc<Context>,
    request: ProduceRequest,
    version: i16,
    client_id: Option<&str>,
) -> Reply {
    let acks = request.acks;
    let internal_allowed = client_id == Some(INTERNAL_TOPICS_CLIENT_ID);
    let refusal = request_refusal(&request, version);
    let appended: Vec<Appended> = request
        .topic_data
        .into_iter()
        .flat_map(|t| {
            let topic = t.name;
            t.partition_data
                .into_iter()
                .map(move |p| (topic.clone(), p.index, p.records))
        })
        .map(|(topic, partition, records)| {
            let result = match &refusal {
                Some(code) => Err(Refusal::new(*code)),
                None if super::metadata::is_internal(&topic) && !internal_allowed => {
                    Err(Refusal::with(
                        codes::INVALID_TOPIC_EXCEPTION,
                        format!("cannot append to internal topic {topic}"),
                    ))
                }
                None => append(&ctx, &topic, partition, records, version, acks),
            };
            Appended {
                topic,
                partition,
                result,
            }
        })
        .collect();
    let refused = appended.iter().any(|a| a.result.is_err());
    let completion = complete(appended);
    if acks == 0 {
        // The client wants no answer, but the high watermark must still advance.
        tokio::spawn(completion);
        if refused {
            return Reply::Close("a produce request with acks=0 was refused".into());
        }
        return Reply::Nothing;
    }
    Reply::later(async move { Response::Produce(completion.await) })
}

/// A refusal of the whole request, applied to each partition as Kafka does.
fn request_refusal(request: &ProduceRequest, version: i16) -> Option<i16> {
    if version < PRODUCE_VERSION_MIN_SERVED {
        return Some(codes::UNSUPPORTED_VERSION);
    }
    if !(-1..=1).contains(&request.acks) {
        return Some(codes::INVALID_REQUIRED_ACKS);
    }
    if request.transactional_id.is_some() {
        // Transactions arrive with the transaction coordinator; until then a transactional
        // producer is refused rather than half-served.
        return Some(codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    }
    None
}

/// The ordered phase: checks and appends one partition's batch (not yet flushed).
fn append(
    ctx: &Context,
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
    version: i16,
    acks: i16,
) -> Result<(Landed, Arc<Partition>), Refusal> {
    let p = ctx
        .partitions
        .get(topic, partition)
        .ok_or_else(|| Refusal::new(ctx.unserved_partition_error(topic, partition)))?;
    let records = records.unwrap_or_default();
    let header = single_batch(&records, version)?;
    let config = p.config();
    let batch_bytes = records.len();
    let max_message_bytes = usize::try_from(config.max_message_bytes).unwrap_or(0);
    if batch_bytes > max_message_bytes {
        let message =
            format!("batch of {batch_bytes} bytes exceeds max.message.bytes {max_message_bytes}");
        return Err(Refusal::with(codes::MESSAGE_TOO_LARGE, message));
    }
    if acks == -1 && config.min_insync_replicas > IN_SYNC_REPLICAS {
        let message = format!(
            "{IN_SYNC_REPLICAS} in-sync replica, below min.insync.replicas {}",
            config.min_insync_replicas
        );
        return Err(Refusal::with(codes::NOT_ENOUGH_REPLICAS, message));
    }
    let scanned = scan_records(&records, &header)?;
    // The frame is shared and immutable; the log patches base offset and leader epoch in a
    // copy. The log has written the copy when `append` returns, so one buffer per thread is
    // reused for it rather than a fresh allocation per batch.
    BATCH_COPY
        .with(|cell| {
            let mut batch = cell.borrow_mut();
            if batch.capacity() > BATCH_COPY_KEEP_BYTES {
                *batch = Vec::new();
            }
            batch.clear();
            batch.extend_from_slice(&records);
            append_copy(&p, &header, &scanned, &mut batch)
        })
        .map(|landed| (landed, p))
}

thread_local! {
    /// The per-thread copy buffer of [`append`].
    static BATCH_COPY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Copy buffers that grew past this (an unusually large batch) are not kept.
const BATCH_COPY_KEEP_BYTES: usize = 1024 * 1024;

/// Walks every record of the client's batch (Kafka's LogValidator does too); a compressed
/// batch is decompressed for it, within [`DECOMPRESSED_BATCH_BYTES_MAX`].
fn scan_records(records: &Bytes, header: &BatchHeader) -> Result<ScannedRecords, Refusal> {
    let section = &records[freshet_records::BATCH_HEADER_LEN..header.total_len()];
    let scanned = match header.compression() {
        Compression::None => freshet_records::scan_records(header, section),
        codec => freshet_records::decompress(codec, section, DECOMPRESSED_BATCH_BYTES_MAX)
            .map_err(RecordError::from)
            .and_then(|body| freshet_records::scan_records(header, &body)),
    };
    scanned.map_err(Refusal::from_records)
}

/// Checks timestamps (or stamps LogAppendTime) and appends `batch`, the caller's copy.
fn append_copy(
    p: &Partition,
    header: &BatchHeader,
    scanned: &ScannedRecords,
    batch: &mut [u8],
) -> Result<Landed, Refusal> {
    let mut producer_batch = ProducerBatch::from_header(header);
    let log_append_time_ms = match p.config().message_timestamp_type {
        TimestampType::CreateTime => {
            check_timestamps(p, scanned)?;
            if header.timestamp_type() == freshet_records::TimestampType::CreateTime
                && scanned.max_timestamp != header.max_timestamp
            {
                // Kafka's LogValidator sets the batch's maxTimestamp to its records' largest;
                // the time index is built from it.
                set_max_timestamp(batch, scanned.max_timestamp)?;
                producer_batch.max_timestamp_ms = scanned.max_timestamp;
            }
            -1
        }
        TimestampType::LogAppendTime => {
            if header.timestamp_type() == freshet_records::TimestampType::LogAppendTime {
                // Only the broker stamps LogAppendTime.
                return Err(Refusal::with(
                    codes::INVALID_TIMESTAMP,
                    "producers may not set the LogAppendTime timestamp type",
                ));
            }
            let now_ms = freshet_log::Clock::now_ms(&freshet_log::SystemClock);
            stamp_log_append_time(batch, now_ms)?;
            producer_batch.max_timestamp_ms = now_ms;
            now_ms
        }
    };
    append_idempotent(p, batch, &producer_batch, log_append_time_ms)
}

/// Checks the batch against the partition's producer state and appends it, or finds the
/// batch it repeats. The state lock spans check, append and update, so concurrent
/// connections see each other's sequences.
fn append_idempotent(
    p: &Partition,
    batch: &mut [u8],
    producer_batch: &ProducerBatch,
    log_append_time_ms: i64,
) -> Result<Landed, Refusal> {
    let mut producers = p.producers.lock().unwrap_or_else(|e| e.into_inner());
    if producer_batch.has_producer_id() && producers.entry(producer_batch.producer_id).is_none() {
        // A producer new to this partition: forget the idle ones first, so the table stays
        // bounded by the producers seen within `producer.id.expiration.ms` (a scan, paid
        // only when a producer appears, which InitProducerId makes rare).
        producers.remove_expired(freshet_log::Clock::now_ms(&freshet_log::SystemClock));
    }
    let decision = producers
        .check_append(producer_batch)
        .map_err(producer_refusal)?;
    if let AppendDecision::Duplicate(original) = decision {
        return Ok(Landed {
            base_offset: original.base_offset,
            last_offset: original.last_offset,
            log_append_time_ms: if log_append_time_ms >= 0 {
                original.max_timestamp_ms
            } else {
                -1
            },
        });
    }
    let info = p
        .log
        .append_unflushed(batch, p.leader_epoch)
        .map_err(storage_refusal)?;
    producers.on_appended(producer_batch, info.base_offset);
    Ok(Landed {
        base_offset: info.base_offset,
        last_offset: info.last_offset,
        log_append_time_ms,
    })
}

fn producer_refusal(e: ProducerError) -> Refusal {
    Refusal::with(e.kafka_error_code(), e.to_string())
}

fn set_max_timestamp(batch: &mut [u8], max_timestamp_ms: i64) -> Result<(), Refusal> {
    freshet_records::set_max_timestamp(batch, max_timestamp_ms)
        .map(|_| ())
        .map_err(Refusal::batch)
}

/// LogAppendTime, done in place by the records crate as Kafka's LogValidator does it.
fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) -> Result<(), Refusal> {
    freshet_records::stamp_log_append_time(batch, now_ms)
        .map(|_| ())
        .map_err(Refusal::batch)
}

/// Kafka 4 requires exactly one RecordBatch v2 per partition in Produce v3+, and checks the
/// batch header as `ProduceRequest.validateRecords` and `LogValidator.validateBatch` do.
fn single_batch(records: &[u8], version: i16) -> Result<BatchHeader, Refusal> {
    let mut batches = freshet_records::split_batches(records);
    let header = match batches.next() {
        None => {
            return Err(Refusal::with(
                codes::INVALID_RECORD,
                "produce request carries no record batch",
            ))
        }
        Some(Err(e)) => return Err(Refusal::batch(e)),
        Some(Ok((_, header))) => header,
    };
    if batches.next().is_some() {
        return Err(Refusal::with(
            codes::INVALID_RECORD,
            "produce requests v3+ must carry exactly one record batch per partition",
        ));
    }
    // The CRC first, so that a damaged batch is CORRUPT_MESSAGE before its records are read.
    freshet_records::validate(records).map_err(Refusal::batch)?;
    if header.record_count <= 0 {
        return Err(Refusal::with(
            codes::INVALID_RECORD,
            "record batch has no records",
        ));
    }
    // Kafka's LogValidator: a client batch's count must match its offset range, or the
    // sequence numbers it claims (base + last offset delta) would not be its records'.
    header.check_producer_counts().map_err(Refusal::batch)?;
    if version < PRODUCE_VERSION_MIN_ZSTD && header.compression() == Compression::Zstd {
        return Err(Refusal::with(
            codes::UNSUPPORTED_COMPRESSION_TYPE,
            format!("produce requests v{version} may not use zstd (v{PRODUCE_VERSION_MIN_ZSTD}+)"),
        ));
    }
    if header.is_control() {
        return Err(Refusal::with(
            codes::INVALID_RECORD,
            "clients may not write control batches",
        ));
    }
    Ok(header)
}

/// `message.timestamp.after.max.ms` / `before.max.ms` for CreateTime topics, checked on the
/// smallest and largest record timestamps (so on every record). A record without a timestamp
/// (-1) is exempt, as in Kafka.
fn check_timestamps(p: &Partition, scanned: &ScannedRecords) -> Result<(), Refusal> {
    let now_ms = freshet_log::Clock::now_ms(&freshet_log::SystemClock);
    let c = p.config();
    let too_new = scanned.max_timestamp.saturating_sub(now_ms) > c.message_timestamp_after_max_ms;
    let too_old = scanned.min_timestamp != NO_TIMESTAMP
        && now_ms.saturating_sub(scanned.min_timestamp) > c.message_timestamp_before_max_ms;
    if too_new || too_old {
        let (earliest, latest) = (
            now_ms.saturating_sub(c.message_timestamp_before_max_ms),
            now_ms.saturating_add(c.message_timestamp_after_max_ms),
        );
        return Err(Refusal::with(
            codes::INVALID_TIMESTAMP,
            format!(
                "a record timestamp is outside [{earliest}, {latest}], the range the topic accepts"
            ),
        ));
    }
    Ok(())
}

/// A record's timestamp when the producer set none.
const NO_TIMESTAMP: i64 = -1;

fn storage_refusal(e: LogError) -> Refusal {
    let code = e.kafka_error_code();
    Refusal::with(code, e.to_string())
}

/// The waiting phase: flush what the policy requires (group commit shares fsyncs between
/// concurrent producers), move high watermarks, and build the response.
async fn complete(appended: Vec<Appended>) -> ProduceResponse {
    let (names, results): (Vec<_>, Vec<_>) = appended
        .into_iter()
        .map(|a| ((a.topic, a.partition), settle(a.result)))
        .unzip();
    let results = futures::future::join_all(results).await;
    let mut topics: Vec<TopicProduceResponse> = Vec::new();
    for ((topic, partition), result) in names.into_iter().zip(results) {
        let response = partition_response(partition, result);
        match topics.last_mut().filter(|t| t.name == topic) {
            Some(t) => t.partition_responses.push(response),
            None => topics.push(TopicProduceResponse {
                name: topic,
                partition_responses: vec![response],
                ..Default::default()
            }),
        }
    }
    ProduceResponse {
        responses: topics,
        ..Default::default()
    }
}

async fn settle(
    result: Result<(Landed, Arc<Partition>), Refusal>,
) -> Result<(Landed, i64), Refusal> {
    // A duplicate waits like the original: it may not be durable yet.
    let (info, p) = result?;
    let end = info.last_offset + 1;
    if p.fsync_on_append() {
        p.flusher
            .durable_below(end)
            .await
            .map_err(storage_refusal)?;
    }
    p.advance_high_watermark(end);
    Ok((info, p.log.log_start_offset()))
}

fn partition_response(
    index: i32,
    result: Result<(Landed, i64), Refusal>,
) -> PartitionProduceResponse {
    let base = PartitionProduceResponse {
        index,
        log_append_time_ms: -1,
        ..Default::default()
    };
    match result {
        Ok((info, log_start_offset)) => PartitionProduceResponse {
            base_offset: info.base_offset,
            log_append_time_ms: info.log_append_time_ms,
            log_start_offset,
            ..base
        },
        Err(r) => PartitionProduceResponse {
            error_code: r.code,
            base_offset: -1,
            log_start_offset: -1,
            record_errors: r
                .record_index
                .map(|batch_index| BatchIndexAndErrorMessage {
                    batch_index,
                    batch_index_error_message: r.message.clone(),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            error_message: r.message,
            ..base
        },
    }
}
