//! The broker's side of the group coordinator: one task owns the no-I/O
//! [`GroupCoordinator`] and performs what it asks for.
//!
//! Handlers send group requests over a channel and await their response, which may come much
//! later (JoinGroup and SyncGroup are parked until the rebalance completes). The task:
//! - answers each request with the coordinator's `Respond` output, only after the records of
//!   any `Persist` before it are durable in `__consumer_offsets` (fsync under the default
//!   policy), as Kafka answers after its append;
//! - keeps the one timer the coordinator asks for and calls `tick` when it fires;
//! - at start-up, replays `__consumer_offsets` from a blocking reader while the coordinator
//!   answers COORDINATOR_LOAD_IN_PROGRESS.
//!
//! Invariant: every request handed to the task gets exactly one response (the coordinator
//! guarantees one `Respond` per handle; the map of waiting requests holds each handle once).

use crate::broker::Context;
use crate::codes;
use crate::partitions::Partition;
use bytes::Bytes;
use freshet_group::{
    GroupConfig, GroupCoordinator, Output, RequestContext, RequestHandle, TopicMeta, TopicsSnapshot,
};
use freshet_metadata::controller::{self, ControllerSettings, NewTopic};
use freshet_metadata::MetadataImage;
use freshet_protocol::{Request, Response};
use freshet_records::{BatchBuilder, BatchOptions, NewRecord};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Kafka's internal topic for group metadata and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Kafka's `offsets.topic.segment.bytes`.
const OFFSETS_TOPIC_SEGMENT_BYTES: &str = "104857600";

/// Records handed to the coordinator per replay message while loading.
const REPLAY_CHUNK_RECORDS: usize = 1024;

/// Bytes read from a partition log per step while loading.
const REPLAY_READ_BYTES: u32 = 1024 * 1024;

/// Largest decompressed batch accepted while loading (Kafka's default max.message.bytes is
/// far below it; a larger batch is skipped as corrupt).
const REPLAY_DECOMPRESSED_BYTES_MAX: usize = 64 * 1024 * 1024;

enum Command {
    Request {
        context: RequestContext,
        request: Box<Request>,
        reply: oneshot::Sender<Response>,
    },
    /// Key/value pairs read back from `__consumer_offsets`, in log order.
    Replay(Vec<(Bytes, Option<Bytes>)>),
    LoadDone,
}

/// The handle that handlers use; the task itself runs in [`run`].
pub struct GroupService {
    tx: mpsc::UnboundedSender<Command>,
    rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    next_handle: AtomicU64,
    /// Serialises creation of `__consumer_offsets` (FindCoordinator and the first commit may
    /// race to create it).
    create_lock: tokio::sync::Mutex<()>,
}

impl Default for GroupService {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        GroupService {
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
            next_handle: AtomicU64::new(0),
            create_lock: tokio::sync::Mutex::new(()),
        }
    }
}

impl GroupService {
    /// Hands a group request to the coordinator and waits for its response. During shutdown
    /// the task is gone and this never resolves: the connection is closing anyway.
    pub async fn call(
        &self,
        ctx: &Context,
        api_version: i16,
        client_id: Option<String>,
        client_host: String,
        mut request: Request,
    ) -> Response {
        let unknown = take_unknown_partitions(&ctx.quorum.image(), &mut request);
        let mut response = self
            .coordinate(api_version, client_id, client_host, request)
            .await;
        answer_unknown_partitions(&mut response, unknown);
        response
    }

    async fn coordinate(
        &self,
        api_version: i16,
        client_id: Option<String>,
        client_host: String,
        request: Request,
    ) -> Response {
        let context = RequestContext {
            handle: RequestHandle(self.next_handle.fetch_add(1, Ordering::Relaxed)),
            api_version,
            client_id: truncated(client_id.unwrap_or_default()),
            client_host: truncated(client_host),
        };
        let (reply, response) = oneshot::channel();
        let sent = self.tx.send(Command::Request {
            context,
            request: Box::new(request),
            reply,
        });
        match (sent, response.await) {
            (Ok(()), Ok(response)) => response,
            _ => std::future::pending().await,
        }
    }

    /// Creates `__consumer_offsets` (compacted, `offsets_topic_num_partitions` partitions) if
    /// it does not exist yet, as Kafka does on the first FindCoordinator for a group.
    pub async fn ensure_offsets_topic(&self, ctx: &Context) -> Result<(), String> {
        if ctx.quorum.image().topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let _guard = self.create_lock.lock().await;
        let image = ctx.quorum.image();
        if image.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let request = NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: Some(ctx.config.offsets_topic_num_partitions),
            replication_factor: Some(1),
            configs: vec![
                ("cleanup.policy".to_string(), Some("compact".to_string())),
                (
                    "segment.bytes".to_string(),
                    Some(OFFSETS_TOPIC_SEGMENT_BYTES.to_string()),
                ),
            ],
        };
        // The coordinator replays the topic with last-value-wins semantics, so compaction's
        // meaning holds even before the log cleaner exists.
        let settings = ControllerSettings {
            compact_supported: true,
            ..ctx.controller.clone()
        };
        let topic_id = crate::handlers::metadata::random_topic_id();
        let records = controller::create_topic(&image, &request, topic_id, &settings)
            .map_err(|e| e.to_string())?;
        ctx.propose(records).await.map_err(|e| e.to_string())
    }
}

/// Commits and deletes of offsets for partitions that do not exist are answered
/// UNKNOWN_TOPIC_OR_PARTITION by the broker before the coordinator sees them, as Kafka does;
/// this removes them from the request and returns them.
fn take_unknown_partitions(image: &MetadataImage, request: &mut Request) -> Vec<(String, i32)> {
    let exists = |topic: &str, partition: i32| {
        image
            .topic(topic)
            .is_some_and(|t| (0..t.partitions.len() as i32).contains(&partition))
    };
    let mut unknown = Vec::new();
    match request {
        Request::OffsetCommit(r) => {
            for topic in &mut r.topics {
                topic.partitions.retain(|p| {
                    let known = exists(&topic.name, p.partition_index);
                    if !known {
                        unknown.push((topic.name.clone(), p.partition_index));
                    }
                    known
                });
            }
            r.topics.retain(|t| !t.partitions.is_empty());
        }
        Request::OffsetDelete(r) => {
            for topic in &mut r.topics {
                topic.partitions.retain(|p| {
                    let known = exists(&topic.name, p.partition_index);
                    if !known {
                        unknown.push((topic.name.clone(), p.partition_index));
                    }
                    known
                });
            }
            r.topics.retain(|t| !t.partitions.is_empty());
        }
        _ => {}
    }
    unknown
}

/// Adds the partitions [`take_unknown_partitions`] removed to the response, with their error.
fn answer_unknown_partitions(response: &mut Response, unknown: Vec<(String, i32)>) {
    use freshet_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use freshet_protocol::messages::offset_delete_response::{
        OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
    };
    for (name, partition_index) in unknown {
        match response {
            Response::OffsetCommit(r) => {
                let at = match r.topics.iter().position(|t| t.name == name) {
                    Some(at) => at,
                    None => {
                        r.topics.push(OffsetCommitResponseTopic {
                            name,
                            ..Default::default()
                        });
                        r.topics.len() - 1
                    }
                };
                r.topics[at].partitions.push(OffsetCommitResponsePartition {
                    partition_index,
                    error_code: codes::UNKNOWN_TOPIC_OR_PARTITION,
                    ..Default::default()
                });
            }
            Response::OffsetDelete(r) => {
                let at = match r.topics.iter().position(|t| t.name == name) {
                    Some(at) => at,
                    None => {
                        r.topics.push(OffsetDeleteResponseTopic {
                            name,
                            ..Default::default()
                        });
                        r.topics.len() - 1
                    }
                };
                r.topics[at].partitions.push(OffsetDeleteResponsePartition {
                    partition_index,
                    error_code: codes::UNKNOWN_TOPIC_OR_PARTITION,
                });
            }
            _ => {}
        }
    }
}

/// `__consumer_offsets` strings are i16-length-prefixed.
fn truncated(mut s: String) -> String {
    let max = i16::MAX as usize;
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn group_config(ctx: &Context) -> GroupConfig {
    let c = &ctx.config;
    GroupConfig {
        initial_rebalance_delay_ms: c.group_initial_rebalance_delay_ms,
        session_timeout_min_ms: c.group_min_session_timeout_ms,
        session_timeout_max_ms: c.group_max_session_timeout_ms,
        offsets_retention_ms: c.offsets_retention_minutes.saturating_mul(60_000),
        offsets_retention_check_interval_ms: c.offsets_retention_check_interval_ms,
        consumer_session_timeout_ms: c.group_consumer_session_timeout_ms,
        consumer_heartbeat_interval_ms: c.group_consumer_heartbeat_interval_ms,
        member_id_seed: rand_seed(),
        ..GroupConfig::default()
    }
}

fn rand_seed() -> u64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default())
}

fn now_ms() -> i64 {
    freshet_log::Clock::now_ms(&freshet_log::SystemClock)
}

/// The coordinator task. Runs until shutdown.
pub async fn run(ctx: Arc<Context>) {
    let Some(mut rx) = ctx
        .groups
        .rx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    else {
        tracing::error!("group coordinator task started twice");
        return;
    };
    let config = group_config(&ctx);
    let mut coordinator = if ctx.quorum.image().topic(OFFSETS_TOPIC).is_some() {
        let (ctx, tx) = (ctx.clone(), ctx.groups.tx.clone());
        tokio::task::spawn_blocking(move || load(&ctx, &tx));
        GroupCoordinator::loading(config)
    } else {
        GroupCoordinator::new(config)
    };
    let mut state = TaskState::default();
    let mut shutdown = ctx.shutdown.clone();
    let mut metadata = ctx.quorum.watch();
    let outputs = coordinator.update_topics(now_ms(), &topics_snapshot(&ctx));
    state.perform(&ctx, outputs).await;
    loop {
        let timer = state.timer_ms;
        let outputs = tokio::select! {
            changed = metadata.changed() => {
                if changed.is_err() {
                    return;
                }
                // KIP-848 groups reassign when their subscribed topics change.
                let topics = topics_snapshot(&ctx);
                if &topics == coordinator.topics() {
                    continue;
                }
                coordinator.update_topics(now_ms(), &topics)
            }
            command = rx.recv() => match command {
                Some(command) => state.apply(&mut coordinator, command),
                None => return,
            },
            _ = sleep_until_ms(timer), if timer.is_some() => {
                state.timer_ms = None;
                coordinator.tick(now_ms())
            }
            _ = shutdown.changed() => return,
        };
        state.perform(&ctx, outputs).await;
    }
}

/// Every topic's id and partition count, as KIP-848 assignment needs them.
fn topics_snapshot(ctx: &Context) -> TopicsSnapshot {
    ctx.quorum
        .image()
        .topics()
        .map(|t| {
            let meta = TopicMeta {
                id: freshet_protocol::Uuid(t.topic_id.0),
                partitions: t.partitions.len() as i32,
            };
            (t.name.clone(), meta)
        })
        .collect()
}

async fn sleep_until_ms(at_ms: Option<i64>) {
    let wait = at_ms.unwrap_or(0).saturating_sub(now_ms()).max(0);
    tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
}

#[derive(Default)]
struct TaskState {
    waiting: HashMap<RequestHandle, oneshot::Sender<Response>>,
    timer_ms: Option<i64>,
}

impl TaskState {
    fn apply(&mut self, coordinator: &mut GroupCoordinator, command: Command) -> Vec<Output> {
        let now = now_ms();
        match command {
            Command::Request {
                context,
                request,
                reply,
            } => {
                let previous = self.waiting.insert(context.handle, reply);
                debug_assert!(previous.is_none(), "request handles are unique");
                dispatch(coordinator, now, &context, &request)
            }
            Command::Replay(records) => {
                for (key, value) in records {
                    if let Err(e) = coordinator.replay(&key, value.as_ref()) {
                        tracing::warn!(error = ?e, "skipping unreadable __consumer_offsets record");
                    }
                }
                Vec::new()
            }
            Command::LoadDone => {
                tracing::info!("consumer groups loaded");
                coordinator.finish_load(now)
            }
        }
    }

    /// Performs outputs in order: appends, then (once they are durable) responses. A response
    /// that follows records which could not be made durable is turned into NOT_COORDINATOR
    /// (what Kafka answers on a storage error), so nothing is acknowledged that a crash could
    /// lose; the client retries.
    async fn perform(&mut self, ctx: &Context, outputs: Vec<Output>) {
        let mut unflushed: Vec<(Arc<Partition>, i64)> = Vec::new();
        let mut durable = true;
        for output in outputs {
            match output {
                Output::Persist { group_id, records } => {
                    match append(ctx, &group_id, &records).await {
                        Ok(appended) => unflushed.push(appended),
                        Err(e) => {
                            tracing::error!(group = %group_id, error = %e, "cannot persist group records");
                            durable = false;
                        }
                    }
                }
                Output::Respond {
                    handle,
                    mut response,
                } => {
                    durable &= settle(&mut unflushed).await;
                    if !durable {
                        fail_response(&mut response, codes::NOT_COORDINATOR);
                    }
                    if let Some(reply) = self.waiting.remove(&handle) {
                        let _ = reply.send(response);
                    }
                }
                Output::ScheduleTimer { at_ms } => self.timer_ms = Some(at_ms),
            }
        }
        settle(&mut unflushed).await;
    }
}

/// Sets `code` as the outcome of a response to a request that wrote records.
fn fail_response(response: &mut Response, code: i16) {
    match response {
        Response::JoinGroup(r) => r.error_code = code,
        Response::SyncGroup(r) => r.error_code = code,
        Response::Heartbeat(r) => r.error_code = code,
        Response::LeaveGroup(r) => r.error_code = code,
        Response::OffsetDelete(r) => r.error_code = code,
        Response::ConsumerGroupHeartbeat(r) => r.error_code = code,
        Response::OffsetCommit(r) => {
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.error_code = code;
            }
        }
        Response::DeleteGroups(r) => {
            for result in &mut r.results {
                result.error_code = code;
            }
        }
        // Read-only answers (OffsetFetch, ListGroups, DescribeGroups...) write nothing.
        _ => {}
    }
}

/// Routes a group request to the coordinator.
fn dispatch(
    coordinator: &mut GroupCoordinator,
    now: i64,
    context: &RequestContext,
    request: &Request,
) -> Vec<Output> {
    match request {
        Request::JoinGroup(r) => coordinator.handle_join(now, context, r),
        Request::SyncGroup(r) => coordinator.handle_sync(now, context, r),
        Request::Heartbeat(r) => coordinator.handle_heartbeat(now, context, r),
        Request::LeaveGroup(r) => coordinator.handle_leave(now, context, r),
        Request::OffsetCommit(r) => coordinator.handle_offset_commit(now, context, r),
        Request::OffsetFetch(r) => coordinator.handle_offset_fetch(context, r),
        Request::OffsetDelete(r) => coordinator.handle_offset_delete(context, r),
        Request::ListGroups(r) => coordinator.handle_list_groups(context, r),
        Request::DescribeGroups(r) => coordinator.handle_describe_groups(context, r),
        Request::DeleteGroups(r) => coordinator.handle_delete_groups(context, r),
        Request::ConsumerGroupHeartbeat(r) => {
            coordinator.handle_consumer_group_heartbeat(now, context, r)
        }
        Request::ConsumerGroupDescribe(r) => coordinator.handle_consumer_group_describe(context, r),
        other => {
            unreachable!("{} is not a group request", other.api_key().name())
        }
    }
}

/// Appends a group's records to its `__consumer_offsets` partition, unflushed; returns the
/// partition and the end offset to flush to.
async fn append(
    ctx: &Context,
    group_id: &str,
    records: &[freshet_group::Record],
) -> Result<(Arc<Partition>, i64), String> {
    ctx.groups.ensure_offsets_topic(ctx).await?;
    let partitions = ctx
        .quorum
        .image()
        .topic(OFFSETS_TOPIC)
        .map_or(0, |t| t.partitions.len() as i32);
    let index = freshet_group::partition_for(group_id, partitions.max(1));
    let p = ctx
        .partitions
        .get(OFFSETS_TOPIC, index)
        .ok_or_else(|| format!("{OFFSETS_TOPIC}-{index} is not led by this broker"))?;
    let mut batch = encode_batch(records, now_ms()).map_err(|e| e.to_string())?;
    let info = p
        .log
        .append_unflushed(&mut batch, p.leader_epoch)
        .map_err(|e| e.to_string())?;
    Ok((p, info.last_offset + 1))
}

fn encode_batch(
    records: &[freshet_group::Record],
    now_ms: i64,
) -> Result<Vec<u8>, freshet_records::BuildError> {
    let mut builder = BatchBuilder::new(BatchOptions::default());
    for record in records {
        builder.push(&NewRecord {
            timestamp_ms: now_ms,
            key: Some(&record.key),
            value: record.value.as_deref(),
            headers: &[],
        })?;
    }
    builder.build()
}

/// Waits until the appended records are durable (per the topic's flush policy) and makes
/// them visible to fetches; false if any could not be flushed.
async fn settle(unflushed: &mut Vec<(Arc<Partition>, i64)>) -> bool {
    let mut durable = true;
    for (p, end) in unflushed.drain(..) {
        if p.fsync_on_append() {
            let log = p.log.clone();
            let flushed = tokio::task::spawn_blocking(move || log.flush_until(end)).await;
            if let Err(e) = flushed
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                tracing::error!(error = %e, "flushing __consumer_offsets");
                durable = false;
                continue;
            }
        }
        p.advance_high_watermark(end);
    }
    durable
}

/// Reads every led `__consumer_offsets` partition from start to end and sends the records to
/// the coordinator task, then `LoadDone`.
fn load(ctx: &Context, tx: &mpsc::UnboundedSender<Command>) {
    let started = std::time::Instant::now();
    let mut count = 0usize;
    let partitions = ctx
        .quorum
        .image()
        .topic(OFFSETS_TOPIC)
        .map_or(0, |t| t.partitions.len() as i32);
    for index in 0..partitions {
        if let Some(p) = ctx.partitions.get(OFFSETS_TOPIC, index) {
            count += replay_partition(&p, tx);
        }
    }
    tracing::debug!(
        records = count,
        ms = started.elapsed().as_millis() as u64,
        "read __consumer_offsets"
    );
    let _ = tx.send(Command::LoadDone);
}

fn replay_partition(p: &Partition, tx: &mpsc::UnboundedSender<Command>) -> usize {
    let mut offset = p.log.log_start_offset();
    let end = p.log.log_end_offset();
    let mut chunk = Vec::new();
    let mut count = 0;
    while offset < end {
        let bytes = match p.log.read(offset, REPLAY_READ_BYTES, None) {
            Ok(Some(slice)) => match slice.read_to_vec() {
                Ok(bytes) => Bytes::from(bytes),
                Err(e) => {
                    tracing::error!(error = %e, "reading __consumer_offsets");
                    break;
                }
            },
            Ok(None) => break,
            Err(e) => {
                tracing::error!(error = %e, "reading __consumer_offsets");
                break;
            }
        };
        let before = offset;
        for (start, header) in freshet_records::split_batches(&bytes).map_while(Result::ok) {
            if header.last_offset() < offset {
                continue;
            }
            offset = header.last_offset().saturating_add(1);
            if header.is_control() {
                continue;
            }
            let batch = bytes.slice(start..start + header.total_len());
            let records = match freshet_records::records(&batch, REPLAY_DECOMPRESSED_BYTES_MAX) {
                Ok(records) => records,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping unreadable __consumer_offsets batch");
                    continue;
                }
            };
            for record in records.map_while(Result::ok) {
                let Some(key) = record.key else { continue };
                chunk.push((key, record.value));
                count += 1;
                if chunk.len() >= REPLAY_CHUNK_RECORDS {
                    let _ = tx.send(Command::Replay(std::mem::take(&mut chunk)));
                }
            }
        }
        if offset == before {
            break;
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Command::Replay(chunk));
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use freshet_protocol::messages::{
        JoinGroupResponse, OffsetCommitResponse, OffsetFetchResponse,
    };

    #[test]
    fn responses_after_a_failed_write_carry_the_error() {
        let mut join = Response::JoinGroup(JoinGroupResponse::default());
        fail_response(&mut join, codes::NOT_COORDINATOR);
        let Response::JoinGroup(join) = join else {
            unreachable!()
        };
        assert_eq!(join.error_code, codes::NOT_COORDINATOR);

        let partition = |i| OffsetCommitResponsePartition {
            partition_index: i,
            ..Default::default()
        };
        let mut commit = Response::OffsetCommit(OffsetCommitResponse {
            topics: vec![OffsetCommitResponseTopic {
                name: "t".into(),
                partitions: vec![partition(0), partition(1)],
                ..Default::default()
            }],
            ..Default::default()
        });
        fail_response(&mut commit, codes::NOT_COORDINATOR);
        let Response::OffsetCommit(commit) = commit else {
            unreachable!()
        };
        assert!(commit.topics[0]
            .partitions
            .iter()
            .all(|p| p.error_code == codes::NOT_COORDINATOR));

        let fetch = Response::OffsetFetch(OffsetFetchResponse::default());
        let mut unchanged = fetch.clone();
        fail_response(&mut unchanged, codes::NOT_COORDINATOR);
        assert_eq!(unchanged, fetch, "reads are not writes");
    }
}
