//! The producer's background task: partitions records, fills batches, and sends them to
//! partition leaders.
//!
//! One loop owns all state, so there are no locks: it reacts to commands from the handle,
//! to responses of requests in flight, and to timers (linger, retry backoff). Requests are
//! handed to a connection from inside the loop, in order; only the waiting for responses
//! runs in spawned tasks, whose outcomes come back to the loop.
//!
//! Ordering: batches of one partition are sealed (given their sequence numbers) in order,
//! and at most `max_in_flight_per_partition` are in flight. When one must be retried, no
//! newer batch of that partition is sent until every batch in flight has answered; then the
//! retried batches go first, one at a time, in sequence order (the broker answers the
//! newer ones that overtook them with OUT_OF_ORDER_SEQUENCE_NUMBER, and they are retried
//! too), and new batches wait until no retry is in flight. With idempotence, the first
//! batch of a partition travels alone until one is acknowledged. Both keep a retry
//! recognisable as a duplicate (see [`PartitionState`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshet_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use freshet_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
};
use freshet_protocol::ApiKey;
use freshet_records::{BatchBuilder, BatchOptions, NewRecord};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::accumulator::{Accumulator, Appended, Batch, RecordData};
use super::partitioner::{key_partition, StickyPartitioner};
use super::{BufferGauge, Command, ProducerConfig, RecordMetadata, Submission};
use crate::cluster::{topic_error, Cluster, TopicInfo};
use crate::error::{Error, KafkaCode, KafkaError, ProduceError};
use crate::TopicPartition;

/// What travels with each record through the accumulator.
struct Completion {
    reply: oneshot::Sender<Result<RecordMetadata, ProduceError>>,
    timestamp_ms: i64,
    size_estimate_bytes: usize,
}

/// A batch encoded for the wire, with its sequence number fixed: retries resend these
/// exact bytes, so the broker can recognise a duplicate.
struct Sealed {
    tp: TopicPartition,
    bytes: Bytes,
    completions: Vec<Completion>,
    /// The producer id and epoch the sequence belongs to (`None` without idempotence).
    producer_id: Option<(i64, i16)>,
    base_sequence: i32,
    created: Instant,
    attempts: u32,
    last_error: String,
    /// The last answer was OUT_OF_ORDER_SEQUENCE_NUMBER: the broker has not written it.
    refused_out_of_order: bool,
}

/// Send state of one partition.
#[derive(Default)]
struct PartitionState {
    next_sequence: i32,
    in_flight: usize,
    /// Batches to send again, in sequence order; they go before any new batch.
    retry: VecDeque<Sealed>,
    retry_not_before: Option<Instant>,
    /// Whether the broker has acknowledged a batch of this partition from this producer.
    /// Until then it does not know the producer there and accepts a first batch with any
    /// sequence (Kafka since KIP-360), so a batch that overtook a refused first batch
    /// (NOT_LEADER_OR_FOLLOWER on a new topic, a lost connection) would be written, and
    /// the first batch's retry could never follow it (OUT_OF_ORDER_SEQUENCE_NUMBER). So
    /// the first batch travels alone.
    acknowledged: bool,
    /// Retried batches in flight (at most one). No new batch is sealed while one is: the
    /// broker recognises a retry as a duplicate only while it is among the producer's
    /// last five batches of the partition, so at most four batches may be written after
    /// a batch whose outcome is unknown. Those four are the ones sent during its first
    /// attempt; a new batch sent behind its retry could be a fifth (when the retry's
    /// answer is lost again), and every later retry would get OUT_OF_ORDER_SEQUENCE_NUMBER.
    retries_in_flight: usize,
    /// The producer id and epoch `next_sequence` counts for. A batch that fails for good
    /// leaves its sequences unused, and the broker would refuse every later sequence of
    /// that producer id; so the sender then takes a new producer id (as Kafka's Java
    /// client bumps the epoch, KIP-360), and each partition starts again at sequence 0
    /// under it once nothing sealed under the old one is in flight or queued.
    producer_id: Option<(i64, i16)>,
}

impl PartitionState {
    /// Whether a new batch (not a retry) may be sealed and sent now, for a producer whose
    /// current id is `producer_id`.
    fn may_send_new_batch(
        &self,
        max_in_flight: usize,
        idempotent: bool,
        producer_id: Option<(i64, i16)>,
    ) -> bool {
        let limit = if !idempotent {
            max_in_flight
        } else if self.producer_id != producer_id || !self.acknowledged {
            // A new producer id: only once the old one's batches are done, and its first
            // batch alone.
            1
        } else {
            max_in_flight
        };
        self.retry.is_empty() && self.retries_in_flight == 0 && self.in_flight < limit
    }

    /// Starts counting sequences from 0 for `producer_id`, if it is a new one.
    fn adopt(&mut self, producer_id: Option<(i64, i16)>) {
        if self.producer_id != producer_id {
            self.producer_id = producer_id;
            self.next_sequence = 0;
            self.acknowledged = false;
        }
    }
}

/// The outcome of one produce request, returned by the task that waited for it.
struct RequestOutcome {
    node_id: i32,
    batches: Vec<Sealed>,
    /// `Ok(None)` for acks=0, which has no response.
    result: Result<Option<ProduceResponse>, Error>,
}

/// Records waiting for their topic's metadata, in send order.
#[derive(Default)]
struct WaitingTopic {
    records: VecDeque<Submission>,
    since: Option<Instant>,
    last_error: Option<String>,
}

pub(super) struct Sender {
    cluster: Arc<Cluster>,
    config: ProducerConfig,
    idempotent: bool,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
    buffer: Arc<BufferGauge>,
    started: Instant,
    waiting: BTreeMap<String, WaitingTopic>,
    accumulator: Accumulator<Completion>,
    sticky: StickyPartitioner,
    partitions: HashMap<TopicPartition, PartitionState>,
    in_flight: JoinSet<RequestOutcome>,
    producer_id: Option<(i64, i16)>,
    metadata_stale: bool,
    metadata_not_before: Instant,
    /// Records accepted and not yet completed.
    outstanding: usize,
    flush_waiters: Vec<oneshot::Sender<()>>,
    close_waiter: Option<oneshot::Sender<()>>,
    closing: bool,
}

impl Sender {
    pub(super) fn new(
        cluster: Arc<Cluster>,
        config: ProducerConfig,
        idempotent: bool,
        commands: mpsc::UnboundedReceiver<Command>,
        buffer: Arc<BufferGauge>,
    ) -> Sender {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let now = Instant::now();
        Sender {
            accumulator: Accumulator::new(config.batch_bytes_max, config.linger_ms),
            cluster,
            config,
            idempotent,
            commands,
            commands_open: true,
            buffer,
            started: now,
            waiting: BTreeMap::new(),
            sticky: StickyPartitioner::new(seed),
            partitions: HashMap::new(),
            in_flight: JoinSet::new(),
            producer_id: None,
            metadata_stale: false,
            metadata_not_before: now,
            outstanding: 0,
            flush_waiters: Vec::new(),
            close_waiter: None,
            closing: false,
        }
    }

    fn now_ms(&self, now: Instant) -> u64 {
        now.duration_since(self.started).as_millis() as u64
    }
}

pub(super) async fn run(mut sender: Sender) {
    loop {
        let now = Instant::now();
        sender.route_waiting(now).await;
        sender.expire(now);
        sender.send_ready(now).await;
        sender.answer_flushes();
        if sender.finished() {
            break;
        }
        let wake = sender.next_wake(Instant::now());
        tokio::select! {
            command = sender.commands.recv(), if sender.commands_open => sender.on_command(command),
            Some(outcome) = sender.in_flight.join_next(), if !sender.in_flight.is_empty() => {
                match outcome {
                    Ok(outcome) => sender.on_outcome(outcome),
                    // A waiting task cannot panic short of a bug; its batches are lost.
                    Err(error) => panic!("produce response task failed: {error}"),
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    if let Some(done) = sender.close_waiter.take() {
        let _ = done.send(());
    }
}

impl Sender {
    fn on_command(&mut self, command: Option<Command>) {
        match command {
            Some(Command::Send(submission)) => {
                self.outstanding += 1;
                let entry = self
                    .waiting
                    .entry(submission.record.topic.clone())
                    .or_default();
                entry.since.get_or_insert_with(Instant::now);
                entry.records.push_back(*submission);
            }
            Some(Command::Flush(done)) => self.flush_waiters.push(done),
            Some(Command::Close(done)) => {
                self.close_waiter = Some(done);
                self.closing = true;
                self.commands_open = false;
            }
            // Every handle is gone: finish what was accepted, then stop.
            None => {
                self.closing = true;
                self.commands_open = false;
            }
        }
    }

    fn flushing(&self) -> bool {
        self.closing || !self.flush_waiters.is_empty()
    }

    fn answer_flushes(&mut self) {
        if self.outstanding == 0 {
            for done in self.flush_waiters.drain(..) {
                let _ = done.send(());
            }
        }
    }

    fn finished(&self) -> bool {
        self.closing && self.outstanding == 0 && self.in_flight.is_empty()
    }

    /// The next moment something may become due: a linger deadline, a retry backoff, a
    /// metadata retry. While anything is outstanding, at least every `retry.backoff.ms` so
    /// delivery timeouts are noticed.
    fn next_wake(&self, now: Instant) -> Instant {
        let backoff = Duration::from_millis(self.config.retry_backoff_ms.max(1));
        let mut wake = now + Duration::from_secs(3600);
        if self.outstanding > 0 {
            wake = wake.min(now + backoff);
        }
        if let Some(deadline_ms) = self.accumulator.next_linger_deadline_ms() {
            wake = wake.min(self.started + Duration::from_millis(deadline_ms));
        }
        for state in self.partitions.values() {
            if let (Some(not_before), false) = (state.retry_not_before, state.retry.is_empty()) {
                wake = wake.min(not_before);
            }
        }
        wake.max(now)
    }

    /// Partitions the records of every topic whose metadata is known; fetches metadata
    /// for the others.
    async fn route_waiting(&mut self, now: Instant) {
        if self.waiting.is_empty() {
            return;
        }
        let mut missing = Vec::new();
        let topics: Vec<String> = self.waiting.keys().cloned().collect();
        for topic in topics {
            match self.cluster.topic(&topic) {
                Some(info) if !info.partitions.is_empty() => self.route_topic(&info, now),
                _ => missing.push(topic),
            }
        }
        if !missing.is_empty() && now >= self.metadata_not_before {
            self.fetch_missing_metadata(&missing).await;
        }
        self.expire_waiting(now);
    }

    async fn fetch_missing_metadata(&mut self, missing: &[String]) {
        self.metadata_not_before =
            Instant::now() + Duration::from_millis(self.config.retry_backoff_ms);
        match self.cluster.refresh_metadata(Some(missing), true).await {
            Ok(response) => {
                for topic in missing {
                    let Some(error) = topic_error(&response, topic) else {
                        continue;
                    };
                    if error.code.is_retriable() {
                        if let Some(waiting) = self.waiting.get_mut(topic) {
                            waiting.last_error = Some(error.to_string());
                        }
                    } else {
                        self.fail_waiting_topic(topic, &error);
                    }
                }
            }
            Err(error) => {
                for waiting in self.waiting.values_mut() {
                    waiting.last_error = Some(error.to_string());
                }
            }
        }
    }

    fn fail_waiting_topic(&mut self, topic: &str, error: &KafkaError) {
        let Some(waiting) = self.waiting.remove(topic) else {
            return;
        };
        for submission in waiting.records {
            let error = ProduceError::Kafka {
                topic: topic.to_owned(),
                partition: submission.record.partition.unwrap_or(-1),
                error: error.clone(),
            };
            self.complete(submission.size_estimate_bytes, submission.reply, Err(error));
        }
    }

    /// Fails records that waited for metadata longer than the delivery timeout.
    fn expire_waiting(&mut self, now: Instant) {
        let timeout = Duration::from_millis(self.config.delivery_timeout_ms);
        let expired: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, w)| {
                w.since
                    .is_some_and(|since| now.duration_since(since) >= timeout)
            })
            .map(|(topic, _)| topic.clone())
            .collect();
        for topic in expired {
            let Some(waiting) = self.waiting.remove(&topic) else {
                continue;
            };
            let last_error = waiting
                .last_error
                .unwrap_or_else(|| "no metadata for the topic".into());
            for submission in waiting.records {
                let error = ProduceError::DeliveryTimeout {
                    topic: topic.clone(),
                    partition: submission.record.partition.unwrap_or(-1),
                    delivery_timeout_ms: self.config.delivery_timeout_ms,
                    last_error: last_error.clone(),
                };
                self.complete(submission.size_estimate_bytes, submission.reply, Err(error));
            }
        }
    }

    fn route_topic(&mut self, info: &TopicInfo, now: Instant) {
        let Some(waiting) = self.waiting.remove(&info.name) else {
            return;
        };
        let now_ms = self.now_ms(now);
        let available: Vec<i32> = info
            .partitions
            .iter()
            .filter(|p| p.leader >= 0)
            .map(|p| p.partition)
            .collect();
        let count = info.partitions.len();
        for submission in waiting.records {
            let Submission {
                record,
                timestamp_ms,
                size_estimate_bytes,
                reply,
            } = submission;
            let completion = Completion {
                reply,
                timestamp_ms,
                size_estimate_bytes,
            };
            let data = RecordData {
                timestamp_ms,
                key: record.key,
                value: record.value,
                headers: record.headers,
            };
            let partition = match (record.partition, &data.key) {
                (Some(p), _) if p >= 0 && (p as usize) < count => p,
                (Some(p), _) => {
                    let error = ProduceError::UnknownPartition {
                        topic: info.name.clone(),
                        partition: p,
                        partition_count: count,
                    };
                    self.complete(completion.size_estimate_bytes, completion.reply, Err(error));
                    continue;
                }
                (None, Some(key)) => key_partition(key, count),
                (None, None) => {
                    self.append_sticky(&info.name, count, &available, data, completion, now_ms);
                    continue;
                }
            };
            let tp = TopicPartition::new(info.name.clone(), partition);
            let appended = self
                .accumulator
                .append(&tp, data, completion, now_ms, false);
            debug_assert!(!matches!(appended, Appended::WouldStartNewBatch(..)));
        }
    }

    /// Keyless records: the sticky partition, or the next one when its batch is full.
    fn append_sticky(
        &mut self,
        topic: &str,
        count: usize,
        available: &[i32],
        data: RecordData,
        completion: Completion,
        now_ms: u64,
    ) {
        let partition = self.sticky.partition(topic, count, available);
        let tp = TopicPartition::new(topic, partition);
        if let Appended::WouldStartNewBatch(data, completion) =
            self.accumulator.append(&tp, data, completion, now_ms, true)
        {
            let next = self.sticky.next(topic, count, available, Some(partition));
            let tp = TopicPartition::new(topic, next);
            self.accumulator
                .append(&tp, data, completion, now_ms, false);
        }
    }

    /// Fails batches that waited in the accumulator past the delivery timeout.
    fn expire(&mut self, now: Instant) {
        let now_ms = self.now_ms(now);
        let Some(created_before_ms) = now_ms.checked_sub(self.config.delivery_timeout_ms) else {
            return;
        };
        for batch in self.accumulator.expire(created_before_ms) {
            let reason = self.waiting_reason(&batch.tp);
            self.fail_batch(batch, &reason);
        }
    }

    /// Why a batch of `tp` is still waiting in the accumulator.
    fn waiting_reason(&self, tp: &TopicPartition) -> String {
        if self.leader(tp).is_none() {
            return "no leader to send to".into();
        }
        match self.partitions.get(tp) {
            Some(state) if !state.retry.is_empty() || state.retries_in_flight > 0 => {
                let last = state
                    .retry
                    .front()
                    .map_or("", |batch| batch.last_error.as_str());
                format!("waiting behind an earlier batch of the partition being retried ({last})")
            }
            Some(state) if state.in_flight > 0 => {
                "waiting behind earlier batches of the partition in flight".into()
            }
            _ => "not sent in time".into(),
        }
    }

    fn fail_batch(&mut self, batch: Batch<Completion>, last_error: &str) {
        for (_, completion) in batch.records {
            let error = ProduceError::DeliveryTimeout {
                topic: batch.tp.topic.clone(),
                partition: batch.tp.partition,
                delivery_timeout_ms: self.config.delivery_timeout_ms,
                last_error: last_error.to_owned(),
            };
            self.complete(completion.size_estimate_bytes, completion.reply, Err(error));
        }
    }

    fn complete(
        &mut self,
        size_estimate_bytes: usize,
        reply: oneshot::Sender<Result<RecordMetadata, ProduceError>>,
        result: Result<RecordMetadata, ProduceError>,
    ) {
        let _ = reply.send(result);
        self.outstanding -= 1;
        self.buffer.release(size_estimate_bytes);
    }

    /// Seals and sends every batch that may go now, one produce request per leader.
    async fn send_ready(&mut self, now: Instant) {
        let candidates = self.sendable_partitions(now);
        if candidates.is_empty() {
            return;
        }
        if self.metadata_stale && now >= self.metadata_not_before {
            self.refresh_stale_metadata().await;
        }
        if self.idempotent && self.producer_id.is_none() {
            if let Err(error) = self.init_producer_id().await {
                self.on_producer_id_error(error);
                return;
            }
        }
        let mut by_leader: BTreeMap<i32, Vec<Sealed>> = BTreeMap::new();
        for tp in candidates {
            let Some(leader) = self.leader(&tp) else {
                self.metadata_stale = true;
                continue;
            };
            if let Some(sealed) = self.take_batch(&tp, now) {
                by_leader.entry(leader).or_default().push(sealed);
            }
        }
        for (leader, batches) in by_leader {
            self.dispatch(leader, batches).await;
        }
    }

    /// Partitions with a batch to send and room in flight: retries first (once nothing of
    /// the partition is in flight and the backoff passed), else accumulator batches that
    /// are ready.
    fn sendable_partitions(&self, now: Instant) -> Vec<TopicPartition> {
        let mut sendable: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, state)| !state.retry.is_empty() && state.in_flight == 0)
            .filter(|(_, state)| state.retry_not_before.is_none_or(|t| now >= t))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in self.accumulator.ready(self.now_ms(now), self.flushing()) {
            let state = self.partitions.get(&tp);
            let blocked = state.is_some_and(|s| {
                !s.may_send_new_batch(
                    self.config.max_in_flight_per_partition,
                    self.idempotent,
                    self.producer_id,
                )
            });
            if !blocked {
                sendable.push(tp);
            }
        }
        sendable
    }

    fn leader(&self, tp: &TopicPartition) -> Option<i32> {
        let topic = self.cluster.topic(&tp.topic)?;
        let partition = topic
            .partitions
            .iter()
            .find(|p| p.partition == tp.partition)?;
        (partition.leader >= 0).then_some(partition.leader)
    }

    async fn refresh_stale_metadata(&mut self) {
        self.metadata_not_before =
            Instant::now() + Duration::from_millis(self.config.retry_backoff_ms);
        let mut topics: Vec<String> = self.partitions.keys().map(|tp| tp.topic.clone()).collect();
        topics.extend(
            self.accumulator
                .ready(u64::MAX, true)
                .into_iter()
                .map(|tp| tp.topic),
        );
        topics.sort();
        topics.dedup();
        if self
            .cluster
            .refresh_metadata(Some(&topics), false)
            .await
            .is_ok()
        {
            self.metadata_stale = false;
        }
    }

    /// Takes the partition's next batch: the first retry, or a new batch sealed now.
    fn take_batch(&mut self, tp: &TopicPartition, now: Instant) -> Option<Sealed> {
        let state = self.partitions.entry(tp.clone()).or_default();
        if let Some(mut sealed) = state.retry.pop_front() {
            // Refused (never written) under a producer id given up since: it can only be
            // written under the new one, with the partition's next sequence. Retries go
            // only when nothing of the partition is in flight, so none of the old id's
            // batches can still land after it.
            if self.idempotent
                && sealed.refused_out_of_order
                && self.producer_id.is_some()
                && sealed.producer_id != self.producer_id
            {
                state.adopt(self.producer_id);
                if let Some((id, epoch)) = self.producer_id {
                    if let Ok(bytes) = restamp(&sealed.bytes, id, epoch, state.next_sequence) {
                        sealed.bytes = bytes;
                        sealed.producer_id = self.producer_id;
                        sealed.base_sequence = state.next_sequence;
                        state.next_sequence = increment_sequence(
                            state.next_sequence,
                            sealed.completions.len() as i32,
                        );
                    }
                }
            }
            state.in_flight += 1;
            state.retries_in_flight += 1;
            return Some(sealed);
        }
        let batch = self.accumulator.drain(tp)?;
        if self.idempotent {
            state.adopt(self.producer_id);
        }
        let base_sequence = if self.idempotent {
            state.next_sequence
        } else {
            -1
        };
        match seal(
            batch,
            self.producer_id,
            base_sequence,
            self.config.compression,
            now,
        ) {
            Ok(sealed) => {
                let state = self.partitions.entry(tp.clone()).or_default();
                if self.idempotent {
                    state.next_sequence =
                        increment_sequence(state.next_sequence, sealed.completions.len() as i32);
                }
                state.in_flight += 1;
                Some(sealed)
            }
            Err((completions, reason)) => {
                for completion in completions {
                    let error = ProduceError::Client(Error::Config(format!(
                        "cannot build a batch: {reason}"
                    )));
                    self.complete(completion.size_estimate_bytes, completion.reply, Err(error));
                }
                None
            }
        }
    }

    async fn dispatch(&mut self, leader: i32, batches: Vec<Sealed>) {
        let connection = match self.cluster.broker_connection(leader).await {
            Ok(connection) => connection,
            Err(error) => {
                self.metadata_stale = true;
                for mut batch in batches {
                    self.landed(&mut batch);
                    self.retry_or_fail(batch, error.to_string(), true);
                }
                return;
            }
        };
        let request = produce_request(
            &batches,
            self.config.acks.as_i16(),
            self.config.client.connection.request_timeout_ms,
        );
        let sent = connection.version(ApiKey::Produce).and_then(|version| {
            if self.config.acks == super::Acks::None {
                connection
                    .send_oneway(ApiKey::Produce, version, &request)
                    .map(Err)
            } else {
                connection.send(ApiKey::Produce, version, &request).map(Ok)
            }
        });
        match sent {
            Ok(Ok(pending)) => {
                self.in_flight.spawn(async move {
                    let result = pending.recv::<ProduceResponse>().await.map(Some);
                    RequestOutcome {
                        node_id: leader,
                        batches,
                        result,
                    }
                });
            }
            Ok(Err(written)) => {
                self.in_flight.spawn(async move {
                    let result = match written.await {
                        Ok(Ok(())) => Ok(None),
                        Ok(Err(error)) => Err(error),
                        Err(_) => Err(Error::Closed),
                    };
                    RequestOutcome {
                        node_id: leader,
                        batches,
                        result,
                    }
                });
            }
            Err(error) => {
                for mut batch in batches {
                    self.landed(&mut batch);
                    let retriable = error.is_retriable();
                    self.retry_or_fail(batch, error.to_string(), retriable);
                }
            }
        }
    }

    /// Counts a batch out of flight, its outcome (or the failure to send it) in hand.
    fn landed(&mut self, batch: &mut Sealed) {
        batch.refused_out_of_order = false;
        let state = self.partition_mut(&batch.tp);
        state.in_flight -= 1;
        if batch.attempts > 0 {
            state.retries_in_flight -= 1;
        }
    }

    fn partition_mut(&mut self, tp: &TopicPartition) -> &mut PartitionState {
        self.partitions.entry(tp.clone()).or_default()
    }

    async fn init_producer_id(&mut self) -> Result<(), Error> {
        let connection = self.cluster.any_connection().await?;
        let request = InitProducerIdRequest {
            transactional_id: None,
            // Ignored without a transactional id; Java sends the largest value.
            transaction_timeout_ms: i32::MAX,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        let (_, response): (_, InitProducerIdResponse) =
            connection.call(ApiKey::InitProducerId, &request).await?;
        crate::error::check(response.error_code, None)?;
        self.producer_id = Some((response.producer_id, response.producer_epoch));
        Ok(())
    }

    /// Retriable: try again after the backoff (the delivery timeout bounds it). Otherwise
    /// every ready batch fails with the error.
    fn on_producer_id_error(&mut self, error: Error) {
        self.metadata_not_before =
            Instant::now() + Duration::from_millis(self.config.retry_backoff_ms);
        if error.is_retriable() {
            return;
        }
        for tp in self.accumulator.ready(u64::MAX, true) {
            while let Some(batch) = self.accumulator.drain(&tp) {
                for (_, completion) in batch.records {
                    let failure = ProduceError::Client(error.clone());
                    self.complete(
                        completion.size_estimate_bytes,
                        completion.reply,
                        Err(failure),
                    );
                }
            }
        }
    }

    fn on_outcome(&mut self, outcome: RequestOutcome) {
        let RequestOutcome {
            node_id,
            batches,
            result,
        } = outcome;
        match result {
            Err(error) => {
                self.metadata_stale = true;
                let retriable = error.is_retriable();
                let reason = format!("broker {node_id}: {error}");
                for mut batch in batches {
                    self.landed(&mut batch);
                    self.retry_or_fail(batch, reason.clone(), retriable);
                }
            }
            Ok(None) => {
                for mut batch in batches {
                    self.landed(&mut batch);
                    self.succeed(batch, -1, -1);
                }
            }
            Ok(Some(response)) => {
                for mut batch in batches {
                    self.landed(&mut batch);
                    self.on_partition_response(batch, &response);
                }
            }
        }
    }

    fn on_partition_response(&mut self, mut batch: Sealed, response: &ProduceResponse) {
        let answer = response
            .responses
            .iter()
            .filter(|topic| topic.name == batch.tp.topic)
            .flat_map(|topic| topic.partition_responses.iter())
            .find(|p| p.index == batch.tp.partition);
        let Some(answer) = answer else {
            self.retry_or_fail(batch, "the response omitted the partition".into(), true);
            return;
        };
        let code = KafkaCode(answer.error_code);
        batch.refused_out_of_order = code == KafkaCode::OUT_OF_ORDER_SEQUENCE_NUMBER;
        if code.is_ok() {
            self.succeed(batch, answer.base_offset, answer.log_append_time_ms);
            return;
        }
        if code == KafkaCode::DUPLICATE_SEQUENCE_NUMBER {
            // The broker already has this batch (an earlier attempt succeeded).
            self.succeed(batch, answer.base_offset, answer.log_append_time_ms);
            return;
        }
        let error = KafkaError {
            code,
            message: answer.error_message.clone(),
        };
        if code.invalidates_metadata() {
            self.metadata_stale = true;
        }
        // A newer batch overtook one being retried: it goes again after it (see top).
        let retriable = code.is_retriable()
            || (self.idempotent && code == KafkaCode::OUT_OF_ORDER_SEQUENCE_NUMBER);
        if retriable {
            self.retry_or_fail(batch, error.to_string(), true);
        } else {
            self.fail_sealed(batch, |tp| ProduceError::Kafka {
                topic: tp.topic.clone(),
                partition: tp.partition,
                error: error.clone(),
            });
        }
    }

    fn succeed(&mut self, batch: Sealed, base_offset: i64, log_append_time_ms: i64) {
        self.partition_mut(&batch.tp).acknowledged = true;
        for (index, completion) in batch.completions.into_iter().enumerate() {
            let metadata = RecordMetadata {
                topic: batch.tp.topic.clone(),
                partition: batch.tp.partition,
                offset: if base_offset >= 0 {
                    base_offset + index as i64
                } else {
                    -1
                },
                timestamp: if log_append_time_ms >= 0 {
                    log_append_time_ms
                } else {
                    completion.timestamp_ms
                },
            };
            self.complete(
                completion.size_estimate_bytes,
                completion.reply,
                Ok(metadata),
            );
        }
    }

    fn fail_sealed(&mut self, batch: Sealed, error: impl Fn(&TopicPartition) -> ProduceError) {
        if self.idempotent && batch.producer_id.is_some() && batch.producer_id == self.producer_id {
            // Its sequences may never be written: continue under a new producer id.
            self.producer_id = None;
        }
        for completion in batch.completions {
            let failure = error(&batch.tp);
            self.complete(
                completion.size_estimate_bytes,
                completion.reply,
                Err(failure),
            );
        }
    }

    /// Queues the batch to be sent again after the backoff, unless it is out of attempts
    /// or time.
    fn retry_or_fail(&mut self, mut batch: Sealed, reason: String, retriable: bool) {
        batch.attempts += 1;
        batch.last_error = reason;
        let timed_out =
            batch.created.elapsed() >= Duration::from_millis(self.config.delivery_timeout_ms);
        if !retriable || timed_out || batch.attempts > self.config.retries {
            let delivery_timeout_ms = self.config.delivery_timeout_ms;
            let last_error = batch.last_error.clone();
            self.fail_sealed(batch, |tp| ProduceError::DeliveryTimeout {
                topic: tp.topic.clone(),
                partition: tp.partition,
                delivery_timeout_ms,
                last_error: last_error.clone(),
            });
            return;
        }
        let backoff = Duration::from_millis(self.config.retry_backoff_ms);
        let state = self.partition_mut(&batch.tp);
        let position = state
            .retry
            .iter()
            .position(|queued| queued.base_sequence > batch.base_sequence);
        match position {
            Some(index) => state.retry.insert(index, batch),
            None => state.retry.push_back(batch),
        }
        state.retry_not_before = Some(Instant::now() + backoff);
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from i32::MAX to 0.
fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// The same records as `batch`, encoded again under another producer id, epoch and base
/// sequence.
fn restamp(
    batch: &Bytes,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<Bytes, String> {
    let header = freshet_records::validate(batch).map_err(|e| e.to_string())?;
    let mut builder = BatchBuilder::new(BatchOptions {
        producer_id,
        producer_epoch,
        base_sequence,
        compression: header.compression(),
        ..BatchOptions::default()
    });
    for record in freshet_records::records(batch, usize::MAX).map_err(|e| e.to_string())? {
        let record = record.map_err(|e| e.to_string())?;
        let headers: Vec<(&[u8], Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|h| (&h.key[..], h.value.as_deref()))
            .collect();
        builder
            .push(&NewRecord {
                timestamp_ms: record.timestamp,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers: &headers,
            })
            .map_err(|e| e.to_string())?;
    }
    builder.build().map(Bytes::from).map_err(|e| e.to_string())
}

/// Encodes the batch; on failure hands the completions back with the reason.
fn seal(
    batch: Batch<Completion>,
    producer_id: Option<(i64, i16)>,
    base_sequence: i32,
    compression: freshet_records::Compression,
    now: Instant,
) -> Result<Sealed, (Vec<Completion>, String)> {
    let (producer_id, producer_epoch) = match (producer_id, base_sequence >= 0) {
        (Some(id), true) => id,
        _ => (-1, -1),
    };
    let mut builder = BatchBuilder::new(BatchOptions {
        producer_id,
        producer_epoch,
        base_sequence: if producer_id >= 0 { base_sequence } else { -1 },
        compression,
        ..BatchOptions::default()
    });
    let mut completions = Vec::with_capacity(batch.records.len());
    let mut failure = None;
    for (record, completion) in batch.records {
        completions.push(completion);
        if failure.is_some() {
            continue;
        }
        let headers: Vec<(&[u8], Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(key, value)| (key.as_bytes(), value.as_deref()))
            .collect();
        let new_record = NewRecord {
            timestamp_ms: record.timestamp_ms,
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: &headers,
        };
        if let Err(error) = builder.push(&new_record) {
            failure = Some(error.to_string());
        }
    }
    if let Some(reason) = failure {
        return Err((completions, reason));
    }
    match builder.build() {
        Ok(bytes) => Ok(Sealed {
            tp: batch.tp,
            bytes: Bytes::from(bytes),
            completions,
            producer_id: (producer_id >= 0).then_some((producer_id, producer_epoch)),
            base_sequence,
            created: now,
            attempts: 0,
            last_error: String::new(),
            refused_out_of_order: false,
        }),
        Err(error) => Err((completions, error.to_string())),
    }
}

fn produce_request(batches: &[Sealed], acks: i16, timeout_ms: u64) -> ProduceRequest {
    let mut topics: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
    for batch in batches {
        topics
            .entry(&batch.tp.topic)
            .or_default()
            .push(PartitionProduceData {
                index: batch.tp.partition,
                records: Some(batch.bytes.clone()),
                ..Default::default()
            });
    }
    ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: i32::try_from(timeout_ms).unwrap_or(i32::MAX),
        topic_data: topics
            .into_iter()
            .map(|(name, partition_data)| TopicProduceData {
                name: name.to_owned(),
                partition_data,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 5, 5), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX - 4, 5), 0);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 10), 8);
    }

    #[test]
    fn first_batch_of_an_idempotent_partition_travels_alone() {
        const PID: Option<(i64, i16)> = Some((9, 0));
        let mut state = PartitionState::default();
        state.adopt(PID);
        assert!(state.may_send_new_batch(5, true, PID));
        state.in_flight = 1;
        assert!(
            !state.may_send_new_batch(5, true, PID),
            "nothing acknowledged yet: the broker would take any sequence"
        );
        assert!(
            state.may_send_new_batch(5, false, PID),
            "without sequences, no reason to wait"
        );
        state.acknowledged = true;
        assert!(state.may_send_new_batch(5, true, PID));
        state.in_flight = 5;
        assert!(!state.may_send_new_batch(5, true, PID), "max in flight");
        state.in_flight = 1;
        state.retries_in_flight = 1;
        assert!(
            !state.may_send_new_batch(5, true, PID),
            "nothing new behind a retry: it must stay among the last five"
        );
        state.in_flight = 0;
        state.retries_in_flight = 0;
        state.retry.push_back(Sealed {
            tp: TopicPartition::new("t", 0),
            bytes: Bytes::new(),
            completions: Vec::new(),
            producer_id: PID,
            base_sequence: 0,
            created: Instant::now(),
            attempts: 1,
            last_error: String::new(),
            refused_out_of_order: false,
        });
        assert!(
            !state.may_send_new_batch(5, true, PID),
            "retries go before new batches"
        );
    }

    #[test]
    fn a_new_producer_id_waits_for_the_old_ones_batches_then_restarts_sequences() {
        let old = Some((9, 0));
        let new = Some((10, 0));
        let mut state = PartitionState::default();
        state.adopt(old);
        state.acknowledged = true;
        state.next_sequence = 42;
        state.in_flight = 2;
        assert!(state.may_send_new_batch(5, true, old));
        assert!(
            !state.may_send_new_batch(5, true, new),
            "batches of the old producer id are in flight"
        );
        state.in_flight = 0;
        assert!(state.may_send_new_batch(5, true, new));
        state.adopt(new);
        assert_eq!((state.next_sequence, state.acknowledged), (0, false));
        state.next_sequence = 3;
        state.adopt(new);
        assert_eq!(state.next_sequence, 3, "the same id keeps its sequences");
    }

    #[test]
    fn produce_request_groups_batches_by_topic() {
        let (reply, _) = oneshot::channel();
        let now = Instant::now();
        let batch = |topic: &str, partition: i32| Sealed {
            tp: TopicPartition::new(topic, partition),
            bytes: Bytes::from_static(b"batch"),
            completions: Vec::new(),
            producer_id: None,
            base_sequence: 0,
            created: now,
            attempts: 0,
            last_error: String::new(),
            refused_out_of_order: false,
        };
        let _unused = Completion {
            reply,
            timestamp_ms: 0,
            size_estimate_bytes: 0,
        };
        let request = produce_request(&[batch("b", 1), batch("a", 0), batch("b", 0)], -1, 30_000);
        assert_eq!(request.acks, -1);
        assert_eq!(request.timeout_ms, 30_000);
        let layout: Vec<(String, Vec<i32>)> = request
            .topic_data
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.partition_data.iter().map(|p| p.index).collect(),
                )
            })
            .collect();
        assert_eq!(
            layout,
            vec![("a".to_owned(), vec![0]), ("b".to_owned(), vec![1, 0])]
        );
    }

    #[test]
    fn sealed_batch_carries_producer_id_and_sequence() {
        let mut batch = Batch {
            tp: TopicPartition::new("t", 0),
            records: Vec::new(),
            size_estimate_bytes: 0,
            created_ms: 0,
        };
        for i in 0..3 {
            let (reply, _) = oneshot::channel();
            batch.records.push((
                RecordData {
                    timestamp_ms: 1_000 + i,
                    key: Some(Bytes::from(format!("k{i}"))),
                    value: None,
                    headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
                },
                Completion {
                    reply,
                    timestamp_ms: 1_000 + i,
                    size_estimate_bytes: 10,
                },
            ));
        }
        let sealed = seal(
            batch,
            Some((42, 3)),
            7,
            freshet_records::Compression::Lz4,
            Instant::now(),
        )
        .unwrap_or_else(|(_, reason)| panic!("{reason}"));
        let header = freshet_records::validate(&sealed.bytes).unwrap();
        assert_eq!(header.producer_id, 42);
        assert_eq!(header.producer_epoch, 3);
        assert_eq!(header.base_sequence, 7);
        assert_eq!(header.record_count, 3);
        assert_eq!(header.compression(), freshet_records::Compression::Lz4);
        let records: Vec<_> = freshet_records::records(&sealed.bytes, 1 << 20)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(records[2].key.as_deref(), Some(&b"k2"[..]));
        assert_eq!(records[2].timestamp, 1_002);
        assert_eq!(records[1].headers[0].value.as_deref(), Some(&b"v"[..]));

        let again = restamp(&sealed.bytes, 43, 0, 11).unwrap();
        let header = freshet_records::validate(&again).unwrap();
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (43, 0, 11)
        );
        assert_eq!(header.record_count, 3);
        assert_eq!(header.compression(), freshet_records::Compression::Lz4);
        let restamped: Vec<_> = freshet_records::records(&again, 1 << 20)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(restamped, records, "the same records");
    }
}
