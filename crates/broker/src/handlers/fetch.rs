//! Fetch: reads whole batches straight from segment files and long-polls until `min_bytes`
//! are available, `max_wait_ms` passes, or the broker shuts down. Appends wake waiting
//! fetches through each partition's high-watermark watch.
//!
//! Fetch sessions (KIP-227, `crate::fetch_session`) decide which partitions a request reads
//! and which an incremental response may omit.

use crate::broker::Context;
use crate::codes;
use crate::fetch_session::{
    FetchPlan, PartitionKey, PartitionParams, SentPartition, SessionPartition, SessionRequest,
};
use crate::partitions::Partition;
use bytes::Bytes;
use freshet_log::LogError;
use freshet_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use freshet_protocol::messages::{FetchRequest, FetchResponse};
use freshet_protocol::Uuid;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Fetch v13 replaced topic names by topic ids (KIP-516).
const TOPIC_IDS_MIN_VERSION: i16 = 13;

/// Kafka's fenced-epoch error: the client's leader epoch is older than ours.
const FENCED_LEADER_EPOCH: i16 = 74;

/// Upper bound on a long poll, whatever the client asks (Kafka clients send 500 ms).
const FETCH_WAIT_MAX_MS: u64 = 30_000;

/// One requested partition, resolved against the metadata image.
struct Target {
    topic: String,
    topic_id: Uuid,
    partition: i32,
    fetch_offset: i64,
    current_leader_epoch: i32,
    partition_max_bytes: i32,
    /// `None` when the topic or partition is not led here (or unknown).
    led: Result<Arc<Partition>, i16>,
    /// The session key, and what the client was last told (-1: nothing).
    key: PartitionKey,
    sent_high_watermark: i64,
    sent_log_start_offset: i64,
}

pub async fn handle(ctx: Arc<Context>, request: FetchRequest, version: i16) -> FetchResponse {
    let (session_id, incremental, partitions) = match plan(&ctx, &request) {
        Ok(plan) => plan,
        Err(error_code) => {
            return FetchResponse {
                error_code,
                ..Default::default()
            }
        }
    };
    let targets = Arc::new(resolve(&ctx, partitions, version));
    let wait_ms = u64::try_from(request.max_wait_ms)
        .unwrap_or(0)
        .min(FETCH_WAIT_MAX_MS);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0);
    let mut watchers: Vec<watch::Receiver<i64>> = targets
        .iter()
        .filter_map(|t| t.led.as_ref().ok())
        .map(|p| p.watch_high_watermark())
        .collect();
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let read_targets = targets.clone();
        let (partitions, bytes, errors) =
            tokio::task::spawn_blocking(move || read_all(&read_targets, max_bytes))
                .await
                .unwrap_or_else(|_| (Vec::new(), 0, true));
        let expired = tokio::time::Instant::now() >= deadline;
        if bytes >= min_bytes.max(1)
            || errors
            || expired
            || watchers.is_empty()
            || *shutdown.borrow()
        {
            let shown = Shown {
                incremental,
                version,
            };
            let (response, sent) = response(&targets, partitions, shown);
            if session_id != 0 {
                ctx.fetch_sessions.finish(session_id, &sent);
            }
            return FetchResponse {
                session_id,
                ..response
            };
        }
        tokio::select! {
            _ = any_changed(&mut watchers) => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The session id to answer with, whether the response is incremental, and the partitions
/// to read; or a session error. Before v7 the request has no session fields and decodes as
/// epoch -1: no session.
fn plan(ctx: &Context, request: &FetchRequest) -> Result<(i32, bool, Vec<SessionPartition>), i16> {
    let now_ms = freshet_log::Clock::now_ms(&freshet_log::SystemClock);
    match ctx.fetch_sessions.begin(session_request(request), now_ms) {
        FetchPlan::Error(code) => Err(code),
        FetchPlan::Full {
            session_id,
            partitions,
        } => Ok((session_id, false, partitions)),
        FetchPlan::Incremental {
            session_id,
            partitions,
        } => Ok((session_id, true, partitions)),
    }
}

async fn any_changed(watchers: &mut [watch::Receiver<i64>]) {
    let changes = watchers.iter_mut().map(|w| Box::pin(w.changed()));
    let _ = futures::future::select_all(changes).await;
}

/// The session fields of a request, with partitions keyed as the client names them.
fn session_request(request: &FetchRequest) -> SessionRequest {
    let partitions = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                let params = PartitionParams {
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes,
                    current_leader_epoch: p.current_leader_epoch,
                };
                (key(t.topic_id, &t.topic, p.partition), params)
            })
        })
        .collect();
    let forgotten = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| key(t.topic_id, &t.topic, *p)))
        .collect();
    SessionRequest {
        session_id: request.session_id,
        session_epoch: request.session_epoch,
        partitions,
        forgotten,
    }
}

fn key(topic_id: Uuid, topic: &str, partition: i32) -> PartitionKey {
    PartitionKey {
        topic_id,
        topic: topic.to_string(),
        partition,
    }
}

fn resolve(ctx: &Context, partitions: Vec<SessionPartition>, version: i16) -> Vec<Target> {
    let image = ctx.quorum.image();
    partitions
        .into_iter()
        .map(|p| {
            let topic = if version >= TOPIC_IDS_MIN_VERSION {
                image
                    .topic_by_id(freshet_metadata::TopicId(p.key.topic_id.0))
                    .map(|i| i.name.clone())
            } else {
                Some(p.key.topic.clone())
            };
            let led = match &topic {
                None => Err(codes::UNKNOWN_TOPIC_ID),
                Some(name) => ctx
                    .partitions
                    .get(name, p.key.partition)
                    .ok_or_else(|| ctx.unserved_partition_error(name, p.key.partition)),
            };
            Target {
                topic: topic.unwrap_or_default(),
                topic_id: p.key.topic_id,
                partition: p.key.partition,
                fetch_offset: p.params.fetch_offset,
                current_leader_epoch: p.params.current_leader_epoch,
                partition_max_bytes: p.params.partition_max_bytes,
                led,
                key: p.key,
                sent_high_watermark: p.sent_high_watermark,
                sent_log_start_offset: p.sent_log_start_offset,
            }
        })
        .collect()
}

/// What one read pass found for one partition.
struct Read {
    error_code: i16,
    high_watermark: i64,
    log_start_offset: i64,
    records: Bytes,
}

/// Reads every target once. Returns the reads, the record bytes gathered, and whether any
/// partition has an error (which answers the fetch at once, as in Kafka).
fn read_all(targets: &[Target], max_bytes: usize) -> (Vec<Read>, usize, bool) {
    let mut total = 0usize;
    let mut errors = false;
    let reads = targets
        .iter()
        .map(|t| {
            // KIP-74: while nothing has been gathered, the first batch found is returned whole
            // even over the limits, so a consumer is never stuck behind a large batch. After
            // that the limits are hard: a partition whose next batch does not fit gets nothing
            // this time (Kafka sends a cut batch, which consumers drop).
            let remaining = max_bytes.saturating_sub(total);
            let limit = usize::try_from(t.partition_max_bytes)
                .unwrap_or(0)
                .min(remaining);
            let read = if total == 0 {
                read_one(t, limit.max(1), FirstBatch::Whole)
            } else {
                read_one(t, limit, FirstBatch::WithinLimit)
            };
            total += read.records.len();
            errors |= read.error_code != codes::NONE;
            read
        })
        .collect();
    (reads, total, errors)
}

/// Whether a read may return a first batch larger than its limit (KIP-74).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstBatch {
    Whole,
    WithinLimit,
}

fn read_one(t: &Target, max_bytes: usize, first_batch: FirstBatch) -> Read {
    let p = match &t.led {
        Ok(p) => p,
        Err(code) => {
            return Read {
                error_code: *code,
                high_watermark: -1,
                log_start_offset: -1,
                records: Bytes::new(),
            }
        }
    };
    let high_watermark = p.high_watermark();
    let log_start_offset = p.log.log_start_offset();
    let read = |error_code, records| Read {
        error_code,
        high_watermark,
        log_start_offset,
        records,
    };
    // An offline log (a disk error, see `docs/design/log.md`) answers KAFKA_STORAGE_ERROR at
    // once, even where no read is needed, as Kafka answers for an offline log directory.
    if let Err(e) = p.log.check_not_failed() {
        return read(e.kafka_error_code(), Bytes::new());
    }
    if let Some(code) = epoch_error(t.current_leader_epoch, p.leader_epoch) {
        return read(code, Bytes::new());
    }
    if max_bytes == 0 || t.fetch_offset == high_watermark {
        return read(codes::NONE, Bytes::new());
    }
    if t.fetch_offset > high_watermark {
        // Beyond what consumers may see: out of range unless it is appended but not yet
        // durable, in which case the consumer simply waits.
        let leo = p.log.log_end_offset();
        let code = if t.fetch_offset > leo {
            codes::OFFSET_OUT_OF_RANGE
        } else {
            codes::NONE
        };
        return read(code, Bytes::new());
    }
    let max = u32::try_from(max_bytes).unwrap_or(u32::MAX);
    match p
        .log
        .read(t.fetch_offset, max, Some(high_watermark))
        .map(|s| s.filter(|s| first_batch == FirstBatch::Whole || s.len_bytes <= max))
        .and_then(|s| s.map(|s| s.read_to_vec()).transpose())
    {
        Ok(bytes) => read(codes::NONE, Bytes::from(bytes.unwrap_or_default())),
        Err(LogError::OffsetOutOfRange { .. }) => read(codes::OFFSET_OUT_OF_RANGE, Bytes::new()),
        Err(e) => read(e.kafka_error_code(), Bytes::new()),
    }
}

/// KIP-320: a client that knows a newer leader epoch than ours waits for metadata to catch
/// up; one with an older epoch has stale metadata and must refresh.
fn epoch_error(client_epoch: i32, leader_epoch: i32) -> Option<i16> {
    match client_epoch {
        -1 => None,
        e if e > leader_epoch => Some(codes::UNKNOWN_LEADER_EPOCH),
        e if e < leader_epoch => Some(FENCED_LEADER_EPOCH),
        _ => None,
    }
}

/// How a response is shaped.
#[derive(Clone, Copy)]
struct Shown {
    /// An incremental session response: partitions with nothing new are left out.
    incremental: bool,
    version: i16,
}

/// Whether an incremental response must include the partition (Kafka's
/// `CachedPartition.maybeUpdateResponseData`): records, an error, or a moved watermark.
fn has_news(t: &Target, r: &Read) -> bool {
    r.error_code != codes::NONE
        || !r.records.is_empty()
        || r.high_watermark != t.sent_high_watermark
        || r.log_start_offset != t.sent_log_start_offset
}

fn response(
    targets: &[Target],
    reads: Vec<Read>,
    shown: Shown,
) -> (FetchResponse, Vec<SentPartition>) {
    let version = shown.version;
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut sent = Vec::new();
    for (t, r) in targets.iter().zip(reads) {
        if shown.incremental && !has_news(t, &r) {
            continue;
        }
        sent.push(SentPartition {
            key: t.key.clone(),
            high_watermark: r.high_watermark,
            log_start_offset: r.log_start_offset,
            had_records: !r.records.is_empty(),
        });
        let partition = PartitionData {
            partition_index: t.partition,
            error_code: r.error_code,
            high_watermark: r.high_watermark,
            last_stable_offset: r.high_watermark,
            log_start_offset: r.log_start_offset,
            preferred_read_replica: -1,
            records: Some(r.records),
            ..Default::default()
        };
        let same_topic = |x: &FetchableTopicResponse| {
            if version >= TOPIC_IDS_MIN_VERSION {
                x.topic_id == t.topic_id
            } else {
                x.topic == t.topic
            }
        };
        match topics.last_mut().filter(|x| same_topic(x)) {
            Some(x) => x.partitions.push(partition),
            None => topics.push(FetchableTopicResponse {
                topic: t.topic.clone(),
                topic_id: t.topic_id,
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    let response = FetchResponse {
        responses: topics,
        ..Default::default()
    };
    (response, sent)
}
