//! The group consumer: Kafka's classic consumer group protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch), with the `consumer` protocol type and
//! Kafka's subscription and assignment encodings, so a [`GroupConsumer`] can share a group with
//! Java and librdkafka consumers.
//!
//! Members of a group share the partitions of the topics they subscribe to: each partition is
//! read by one member at a time, and the group's progress is one committed offset per
//! partition. When members join, leave or die, the group rebalances: the coordinator collects
//! every member's subscription, the leader member assigns partitions with the chosen
//! [`AssignmentStrategy`], and each member gets its share. With `range` and `roundrobin`
//! (eager) members give up everything before a rebalance; with `cooperative-sticky` members
//! keep what stays theirs and only partitions that move are revoked, in a first round, and
//! assigned to their new owner in a second.
//!
//! A [`RebalanceListener`] hears about partitions assigned, revoked (given up in an orderly
//! way; offsets can still be committed) and lost (the membership ended before they could be
//! revoked: another member may already own them). Rebalances happen inside
//! [`GroupConsumer::poll`], so a listener runs between two polls of the application.
//!
//! # Delivery guarantees
//!
//! Where the committed offset sits relative to processing decides what a crash costs. Turn
//! auto commit off to choose yourself.
//!
//! **At most once**: commit the offsets past the records *before* processing them. A crash
//! during processing skips the rest of the batch; nothing is processed twice.
//!
//! ```no_run
//! # async fn run() -> Result<(), freshet_client::Error> {
//! use std::time::Duration;
//! use freshet_client::{GroupConsumer, GroupConsumerConfig};
//!
//! let mut config = GroupConsumerConfig::new("localhost:9092", "billing");
//! config.enable_auto_commit = false;
//! let mut consumer = GroupConsumer::new(config)?;
//! consumer.subscribe(["payments"]);
//! loop {
//!     let records = consumer.poll(Duration::from_secs(1)).await?;
//!     // The positions are already past `records`: commit them first...
//!     consumer.commit_sync().await?;
//!     for record in records {
//!         // ...then process. A crash here loses these records, never repeats them.
//!         println!("{}-{}@{}", record.topic, record.partition, record.offset);
//!     }
//! }
//! # }
//! ```
//!
//! **At least once**: process, *then* commit. A crash after processing and before the commit
//! makes the next owner of the partition read those records again, so processing should be
//! idempotent. (Auto commit gives at least once as well, as long as every record a poll
//! returned is processed before the next poll: the commits run inside `poll` and `close`,
//! and before partitions are revoked.)
//!
//! ```no_run
//! # async fn run() -> Result<(), freshet_client::Error> {
//! # use std::time::Duration;
//! # use freshet_client::{GroupConsumer, GroupConsumerConfig};
//! # fn store(_: &freshet_client::ConsumerRecord) {}
//! let mut config = GroupConsumerConfig::new("localhost:9092", "billing");
//! config.enable_auto_commit = false;
//! let mut consumer = GroupConsumer::new(config)?;
//! consumer.subscribe(["payments"]);
//! loop {
//!     let records = consumer.poll(Duration::from_secs(1)).await?;
//!     for record in &records {
//!         store(record); // must tolerate seeing a record twice
//!     }
//!     // Commit only what was processed; commit_async does not wait for the answer.
//!     consumer.commit_sync().await?;
//! }
//! # }
//! ```
//!
//! Explicit offsets (for example per record, or the next offset after each processed record)
//! go through [`GroupConsumer::commit_offsets_sync`] / [`GroupConsumer::commit_offsets_async`];
//! the offset to commit is the *next* record to read (`record.offset + 1`).
//!
//! **Exactly once** (consume, transform, produce) needs transactions, which this client
//! and Freshet do not implement yet. It will look like Kafka's: a transactional producer
//! sends the output records and the consumer's offsets in one transaction, and readers of the
//! output use `read_committed`:
//!
//! ```ignore
//! // Not implemented yet: the shape it will take.
//! producer.begin_transaction()?;
//! for record in consumer.poll(timeout).await? {
//!     producer.send(transform(&record))?;
//! }
//! producer.send_offsets_to_transaction(consumer.positions(), &consumer.group_metadata()).await?;
//! producer.commit_transaction().await?; // output and offsets become visible together, or neither
//! ```
//!
//! # Static membership
//!
//! With `group_instance_id` set (KIP-345) the member keeps its identity across restarts:
//! [`GroupConsumer::close`] does not leave the group, and a consumer started again with the
//! same instance id within `session_timeout_ms` gets the same partitions back without a
//! rebalance. A second live consumer with the same instance id fences the first, whose next
//! poll fails with FENCED_INSTANCE_ID.

pub mod assignor;
pub mod commit;
mod membership;
pub mod protocol;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshet_protocol::messages::{JoinGroupResponse, SyncGroupResponse};

use crate::consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset};
use crate::error::{Error, KafkaCode, KafkaError};
use crate::TopicPartition;

pub use assignor::{AssignmentStrategy, MemberSubscription};
pub use commit::{CommitHandle, OffsetAndMetadata};
use membership::{Coordinator, Recovery};
use protocol::{Assignment, Subscription};

/// Group consumer settings, named after the Java client's, with its defaults.
#[derive(Debug, Clone)]
pub struct GroupConsumerConfig {
    /// Fetching and `auto.offset.reset` (applied to partitions with no committed offset).
    pub consumer: ConsumerConfig,
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: static membership (KIP-345).
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms`: without a heartbeat for this long the member is dropped.
    pub session_timeout_ms: u64,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `max.poll.interval.ms`: the longest time between polls before the member leaves the
    /// group; also the rebalance timeout sent in JoinGroup.
    pub max_poll_interval_ms: u64,
    /// `enable.auto.commit`.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval_ms: u64,
    /// `partition.assignment.strategy`, in order of preference. The cooperative protocol is
    /// used when every strategy listed is cooperative.
    pub assignment_strategies: Vec<AssignmentStrategy>,
    /// `metadata.max.age.ms`: how often subscribed topics (and a pattern's matches) are
    /// looked at again, to rejoin when partitions or matching topics appear.
    pub metadata_max_age_ms: u64,
}

impl GroupConsumerConfig {
    pub fn new(bootstrap_servers: &str, group_id: &str) -> GroupConsumerConfig {
        GroupConsumerConfig {
            consumer: ConsumerConfig::new(bootstrap_servers),
            group_id: group_id.to_owned(),
            group_instance_id: None,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            assignment_strategies: vec![
                AssignmentStrategy::Range,
                AssignmentStrategy::CooperativeSticky,
            ],
            metadata_max_age_ms: 300_000,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.group_id.is_empty() {
            return Err(Error::Config("group.id must not be empty".into()));
        }
        if self.assignment_strategies.is_empty() {
            return Err(Error::Config(
                "partition.assignment.strategy must name at least one assignor".into(),
            ));
        }
        if self.heartbeat_interval_ms == 0 || self.heartbeat_interval_ms >= self.session_timeout_ms
        {
            return Err(Error::Config(
                "heartbeat.interval.ms must be above 0 and below session.timeout.ms".into(),
            ));
        }
        if self.group_instance_id.as_deref() == Some("") {
            return Err(Error::Config("group.instance.id must not be empty".into()));
        }
        for (name, value) in [
            ("session.timeout.ms", self.session_timeout_ms),
            ("max.poll.interval.ms", self.max_poll_interval_ms),
        ] {
            if value > i32::MAX as u64 {
                return Err(Error::Config(format!("{name} {value} is too large")));
            }
        }
        Ok(())
    }

    fn cooperative(&self) -> bool {
        self.assignment_strategies
            .iter()
            .all(|strategy| strategy.is_cooperative())
    }
}

/// Told about partitions given to and taken from this member. Called inside
/// [`GroupConsumer::poll`] (and [`GroupConsumer::close`]).
pub trait RebalanceListener: Send {
    /// Partitions newly assigned (after a rebalance; may be empty). Their positions are
    /// the committed offsets, or `auto.offset.reset` where none is committed.
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }
    /// Partitions given up in order. With auto commit, their positions are already
    /// committed when this runs.
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }
    /// Partitions lost with the membership (session timed out, fenced, generation moved on):
    /// other members may own them already, so committing is pointless. Defaults to
    /// [`RebalanceListener::on_partitions_revoked`], as in Kafka's clients.
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(partitions);
    }
}

/// One rebalance callback, for listeners written as closures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceEvent<'a> {
    Assigned(&'a [TopicPartition]),
    Revoked(&'a [TopicPartition]),
    Lost(&'a [TopicPartition]),
}

impl<F> RebalanceListener for F
where
    F: FnMut(RebalanceEvent<'_>) + Send,
{
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        self(RebalanceEvent::Assigned(partitions));
    }
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        self(RebalanceEvent::Revoked(partitions));
    }
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        self(RebalanceEvent::Lost(partitions));
    }
}

#[derive(Debug, Clone)]
enum Topics {
    None,
    Names(BTreeSet<String>),
    Pattern(regex::Regex),
}

/// A consumer in a group: subscribe, poll, commit. One task drives it; heartbeats run in a
/// background task (so a tokio runtime must be running). Dropping it without
/// [`GroupConsumer::close`] stops heartbeats: the coordinator drops the member after
/// `session_timeout_ms`.
pub struct GroupConsumer {
    consumer: Consumer,
    config: GroupConsumerConfig,
    coordinator: Arc<Coordinator>,
    topics: Topics,
    /// The topics in the current subscription (a pattern's matches).
    subscribed: BTreeSet<String>,
    /// Partition counts of the subscribed topics when the group last settled.
    topic_counts: BTreeMap<String, i32>,
    /// The assignment, the same as the inner consumer's.
    owned: BTreeSet<TopicPartition>,
    owned_generation: i32,
    /// Assigned partitions whose committed offsets have not been fetched yet.
    needs_committed: BTreeSet<TopicPartition>,
    /// In a mutex only so the consumer is `Sync` (its futures hold `&self`); never contended.
    listener: Option<std::sync::Mutex<Box<dyn RebalanceListener>>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    /// A JoinGroup or SyncGroup waiting for the rest of the group.
    in_flight: Option<InFlight>,
    next_auto_commit: Instant,
    next_metadata_check: Instant,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group_id", &self.config.group_id)
            .field("owned", &self.owned)
            .finish()
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.coordinator.state().closed = true;
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        if let Some(in_flight) = self.in_flight.take() {
            in_flight.abort();
        }
    }
}

/// A rebalance request on its way.
enum InFlight {
    Joining {
        task: tokio::task::JoinHandle<Result<JoinGroupResponse, Error>>,
        generation_before: i32,
    },
    Syncing {
        task: tokio::task::JoinHandle<Result<SyncGroupResponse, Error>>,
        generation: i32,
    },
}

impl InFlight {
    fn abort(self) {
        match self {
            InFlight::Joining { task, .. } => task.abort(),
            InFlight::Syncing { task, .. } => task.abort(),
        }
    }
}

/// A failed request: retriable ones (the coordinator moved, a timeout) mean finding the
/// coordinator again; others end the consumer.
fn request_failure(error: Error) -> (Error, Recovery) {
    let recovery = if error.is_retriable() {
        Recovery::Rediscover
    } else {
        Recovery::Fatal
    };
    (error, recovery)
}

impl GroupConsumer {
    pub fn new(config: GroupConsumerConfig) -> Result<GroupConsumer, Error> {
        config.validate()?;
        let consumer = Consumer::new(config.consumer.clone())?;
        let coordinator = Arc::new(Coordinator::new(
            consumer.cluster().clone(),
            config.group_id.clone(),
            config.group_instance_id.clone(),
            config.max_poll_interval_ms,
        ));
        let now = Instant::now();
        Ok(GroupConsumer {
            consumer,
            coordinator,
            topics: Topics::None,
            subscribed: BTreeSet::new(),
            topic_counts: BTreeMap::new(),
            owned: BTreeSet::new(),
            owned_generation: -1,
            needs_committed: BTreeSet::new(),
            listener: None,
            heartbeat: None,
            in_flight: None,
            next_auto_commit: now + Duration::from_millis(config.auto_commit_interval_ms),
            next_metadata_check: now,
            config,
        })
    }

    /// Subscribes to these topics (replacing any earlier subscription); the group
    /// rebalances at the next poll.
    pub fn subscribe<I, S>(&mut self, topics: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics = Topics::Names(topics.into_iter().map(Into::into).collect());
        self.subscription_changed();
    }

    /// Subscribes to every topic whose whole name matches `pattern` (as Java's
    /// `subscribe(Pattern)`); topics created later are picked up within
    /// `metadata_max_age_ms`. Internal topics never match.
    pub fn subscribe_pattern(&mut self, pattern: &str) -> Result<(), Error> {
        let anchored = format!("^(?:{pattern})$");
        let regex = regex::Regex::new(&anchored).map_err(|error| {
            Error::Config(format!("invalid topic pattern {pattern:?}: {error}"))
        })?;
        self.topics = Topics::Pattern(regex);
        self.subscription_changed();
        Ok(())
    }

    fn subscription_changed(&mut self) {
        self.next_metadata_check = Instant::now();
        let mut state = self.coordinator.state();
        state.rejoin_needed = true;
        state.reason = "the subscription changed".into();
    }

    /// Sets the listener told about assignments and revocations.
    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = Some(std::sync::Mutex::new(Box::new(listener)));
    }

    /// The partitions assigned to this member, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    /// The topics subscribed to (a pattern's current matches), sorted.
    pub fn subscription(&self) -> Vec<String> {
        self.subscribed.iter().cloned().collect()
    }

    /// The member id the coordinator gave (empty before joining).
    pub fn member_id(&self) -> String {
        self.coordinator.state().member_id.clone()
    }

    /// The generation of the group this member last joined, -1 when not in one.
    pub fn generation(&self) -> i32 {
        self.coordinator.state().generation
    }

    /// Whether this member was the leader (the one that computed the assignment) of the
    /// last rebalance.
    pub fn is_leader(&self) -> bool {
        self.coordinator.state().leader
    }

    /// The assignment protocol the group chose (`range`, `cooperative-sticky`, ...).
    pub fn protocol(&self) -> Option<String> {
        self.coordinator.state().protocol.clone()
    }

    pub fn group_id(&self) -> &str {
        &self.config.group_id
    }

    /// The offset the next poll reads from in `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.consumer.position(tp)
    }

    /// The positions of all assigned partitions that have one: what `commit_sync` commits.
    pub fn positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.owned
            .iter()
            .filter(|tp| !self.needs_committed.contains(*tp))
            .filter_map(|tp| Some((tp.clone(), self.consumer.position(tp)?)))
            .collect()
    }

    /// Moves the position of an assigned partition.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), Error> {
        self.consumer.seek(tp, offset)?;
        self.needs_committed.remove(tp);
        Ok(())
    }

    /// Stops fetching these assigned partitions until resumed (the membership goes on).
    /// Pausing lasts until the partition is revoked.
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.consumer.pause(partitions)
    }

    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        self.consumer.resume(partitions);
    }

    pub fn paused(&self) -> Vec<TopicPartition> {
        self.consumer.paused()
    }

    /// The committed offsets of these partitions (`None`: nothing committed).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, Error> {
        self.coordinator.fetch_committed(partitions).await
    }

    /// Commits the positions of all assigned partitions and waits for the answer.
    ///
    /// A moved or loading coordinator is retried for up to one request timeout. Errors
    /// ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID mean the partitions may belong to another
    /// member now (the next poll reports them lost and rejoins); REBALANCE_IN_PROGRESS means
    /// the group is between generations: poll to finish the rebalance, then commit what is
    /// still assigned.
    pub async fn commit_sync(&mut self) -> Result<(), Error> {
        let offsets = self.position_offsets();
        self.commit_offsets_sync(offsets).await
    }

    /// Commits these offsets (the next offset to read of each partition) and waits.
    pub async fn commit_offsets_sync(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error> {
        self.check_fatal()?;
        self.coordinator.commit_sync(&offsets).await
    }

    /// Commits the positions of all assigned partitions without waiting: commits are sent
    /// in call order; await the handle for the result or drop it.
    pub fn commit_async(&mut self) -> CommitHandle {
        let offsets = self.position_offsets();
        self.commit_offsets_async(offsets)
    }

    /// Commits these offsets without waiting.
    pub fn commit_offsets_async(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> CommitHandle {
        if offsets.is_empty() {
            return CommitHandle::done();
        }
        let connection = self.coordinator.state().connection.clone();
        let sent = match connection.filter(|connection| !connection.is_dead()) {
            Some(connection) => self.coordinator.send_commit_on(&connection, &offsets),
            None => Err(Error::Closed),
        };
        CommitHandle::spawn(self.coordinator.clone(), sent, offsets)
    }

    fn position_offsets(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        self.positions()
            .into_iter()
            .map(|(tp, offset)| (tp, OffsetAndMetadata::new(offset)))
            .collect()
    }

    fn check_fatal(&self) -> Result<(), Error> {
        match &self.coordinator.state().fatal {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Takes part in the group (joining, rebalancing, heartbeats) and returns the records
    /// available now from the assigned partitions, waiting up to `timeout` for some.
    /// Returns an empty list when the group has not settled within `timeout`.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, Error> {
        let deadline = Instant::now() + timeout;
        self.coordinator.state().last_poll = Instant::now();
        self.start_heartbeats();
        if matches!(self.topics, Topics::None) {
            return Err(Error::Config(
                "poll before subscribe: the consumer has no subscription".into(),
            ));
        }
        loop {
            self.check_fatal()?;
            self.maybe_auto_commit();
            self.check_metadata().await;
            if !self.ensure_active_group(deadline).await? {
                return Ok(Vec::new());
            }
            self.fetch_pending_committed().await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let slice = remaining.min(Duration::from_millis(
                self.config.consumer.fetch_max_wait_ms.max(50),
            ));
            let records = self.consumer.poll(slice).await?;
            if !records.is_empty() || Instant::now() >= deadline {
                return Ok(records);
            }
        }
    }

    fn start_heartbeats(&mut self) {
        if self.heartbeat.is_none() {
            self.heartbeat = Some(tokio::spawn(membership::heartbeat_loop(
                self.coordinator.clone(),
                Duration::from_millis(self.config.heartbeat_interval_ms),
                Duration::from_millis(self.config.max_poll_interval_ms),
            )));
        }
    }

    fn maybe_auto_commit(&mut self) {
        if !self.config.enable_auto_commit || Instant::now() < self.next_auto_commit {
            return;
        }
        self.next_auto_commit =
            Instant::now() + Duration::from_millis(self.config.auto_commit_interval_ms);
        if self.coordinator.state().stable {
            // Failures are retried by the next auto commit.
            drop(self.commit_async());
        }
    }

    /// Commits the positions before giving partitions up (auto commit only). A failure
    /// means the partitions are someone else's already; the new owner rereads.
    async fn auto_commit_before_revoke(&mut self) {
        if self.config.enable_auto_commit && !self.owned.is_empty() {
            let _ = self.commit_sync().await;
        }
    }

    /// Looks at the subscribed topics again when `metadata_max_age_ms` has passed: a new
    /// matching topic or more partitions mean a rebalance.
    async fn check_metadata(&mut self) {
        if Instant::now() < self.next_metadata_check {
            return;
        }
        self.next_metadata_check =
            Instant::now() + Duration::from_millis(self.config.metadata_max_age_ms);
        let Ok((subscribed, counts)) = self.resolve_topics().await else {
            return;
        };
        if subscribed != self.subscribed || counts != self.topic_counts {
            let mut state = self.coordinator.state();
            if !state.rejoin_needed {
                state.rejoin_needed = true;
                state.reason = "subscribed topics or their partitions changed".into();
            }
        }
    }

    /// The subscribed topics (matching the pattern, or named) and the partition counts of
    /// those that exist.
    async fn resolve_topics(&self) -> Result<(BTreeSet<String>, BTreeMap<String, i32>), Error> {
        let cluster = self.consumer.cluster();
        match &self.topics {
            Topics::None => Ok((BTreeSet::new(), BTreeMap::new())),
            Topics::Names(names) => {
                let list: Vec<String> = names.iter().cloned().collect();
                let response = cluster.refresh_metadata(Some(&list), false).await?;
                Ok((names.clone(), partition_counts(&response)))
            }
            Topics::Pattern(regex) => {
                let response = cluster.refresh_metadata(None, false).await?;
                let mut counts = partition_counts(&response);
                counts.retain(|topic, _| regex.is_match(topic));
                let internal: BTreeSet<&str> = response
                    .topics
                    .iter()
                    .filter(|topic| topic.is_internal)
                    .filter_map(|topic| topic.name.as_deref())
                    .collect();
                counts.retain(|topic, _| !internal.contains(topic.as_str()));
                Ok((counts.keys().cloned().collect(), counts))
            }
        }
    }

    /// Joins or rejoins until the member is stable. `Ok(false)` when `deadline` passed first.
    async fn ensure_active_group(&mut self, deadline: Instant) -> Result<bool, Error> {
        loop {
            self.check_fatal()?;
            let (stable, rejoin_needed, lost) = {
                let mut state = self.coordinator.state();
                let lost = std::mem::take(&mut state.lost);
                (state.stable, state.rejoin_needed, lost)
            };
            if lost {
                self.lose_partitions();
            }
            if stable && !rejoin_needed && !lost {
                return Ok(true);
            }
            // Even with the deadline passed, a round is started (or its answer picked up),
            // so polls with a zero timeout make progress too.
            match self.join_and_sync(deadline).await {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err((error, Recovery::Fatal)) => {
                    let mut state = self.coordinator.state();
                    if state.fatal.is_none() && error.kafka_code() == Some(KafkaCode(82)) {
                        state.fatal = Some(error.clone());
                    }
                    return Err(error);
                }
                Err((_, Recovery::Rejoin)) => {}
                Err((_, Recovery::Rediscover | Recovery::Backoff)) => {
                    if Instant::now() >= deadline {
                        return Ok(false);
                    }
                    tokio::time::sleep(self.coordinator.retry_backoff).await;
                }
            }
        }
    }

    fn lose_partitions(&mut self) {
        if self.owned.is_empty() {
            return;
        }
        let lost: Vec<TopicPartition> = std::mem::take(&mut self.owned).into_iter().collect();
        self.consumer.assign(Vec::new());
        self.needs_committed.clear();
        if let Some(listener) = self.listener.as_mut().and_then(|l| l.get_mut().ok()) {
            listener.on_partitions_lost(&lost);
        }
    }

    fn revoke(&mut self, partitions: &BTreeSet<TopicPartition>) {
        if partitions.is_empty() {
            return;
        }
        let revoked: Vec<TopicPartition> = partitions.iter().cloned().collect();
        for tp in &revoked {
            self.owned.remove(tp);
            self.needs_committed.remove(tp);
        }
        self.consumer.assign(self.owned.iter().cloned().collect());
        if let Some(listener) = self.listener.as_mut().and_then(|l| l.get_mut().ok()) {
            listener.on_partitions_revoked(&revoked);
        }
    }

    /// Drives one JoinGroup + SyncGroup round, applying the assignment. The requests run in
    /// tasks that outlive a poll: when `deadline` passes first, `Ok(false)` and the round
    /// goes on at the next poll (other members wait for this one meanwhile).
    async fn join_and_sync(&mut self, deadline: Instant) -> Result<bool, (Error, Recovery)> {
        if self.in_flight.is_none() {
            self.start_join().await?;
        }
        if let Some(InFlight::Joining {
            task,
            generation_before,
        }) = &mut self.in_flight
        {
            let generation_before = *generation_before;
            let Ok(joined) = tokio::time::timeout_at(deadline.into(), task).await else {
                return Ok(false);
            };
            self.in_flight = None;
            let response = joined
                .unwrap_or(Err(Error::Closed))
                .map_err(request_failure)?;
            self.on_joined(response, generation_before).await?;
        }
        if let Some(InFlight::Syncing { task, generation }) = &mut self.in_flight {
            let generation = *generation;
            let Ok(synced) = tokio::time::timeout_at(deadline.into(), task).await else {
                return Ok(false);
            };
            self.in_flight = None;
            let sync = synced
                .unwrap_or(Err(Error::Closed))
                .map_err(request_failure)?;
            self.on_synced(sync, generation)?;
        }
        Ok(true)
    }

    /// Gives up what must go before joining, and sends JoinGroup.
    async fn start_join(&mut self) -> Result<(), (Error, Recovery)> {
        let cooperative = self.config.cooperative();
        // Eager: everything is given up before joining. Cooperative: commit, keep all.
        self.auto_commit_before_revoke().await;
        if !cooperative {
            let all = self.owned.clone();
            self.revoke(&all);
        }
        let (subscribed, counts) = self
            .resolve_topics()
            .await
            .map_err(|error| (error, Recovery::Backoff))?;
        self.subscribed = subscribed;
        self.topic_counts = counts;

        let subscription = Subscription {
            topics: self.subscribed.iter().cloned().collect(),
            user_data: None,
            owned_partitions: self.owned.iter().cloned().collect(),
            generation_id: self.owned_generation,
            rack_id: None,
        };
        let protocols: Vec<(String, Bytes)> = self
            .config
            .assignment_strategies
            .iter()
            .map(|strategy| {
                let mut subscription = subscription.clone();
                if strategy.is_cooperative() {
                    // Older cooperative-sticky assignors read the generation from user data.
                    subscription.user_data =
                        Some(Bytes::copy_from_slice(&self.owned_generation.to_be_bytes()));
                }
                (strategy.name().to_owned(), subscription.encode())
            })
            .collect();
        let generation_before = self.coordinator.state().generation;
        self.coordinator.begin_join();
        let coordinator = self.coordinator.clone();
        let session_timeout_ms = self.config.session_timeout_ms as i32;
        let rebalance_timeout_ms = self.config.max_poll_interval_ms as i32;
        let task = tokio::spawn(async move {
            coordinator
                .join(protocols, session_timeout_ms, rebalance_timeout_ms)
                .await
        });
        self.in_flight = Some(InFlight::Joining {
            task,
            generation_before,
        });
        Ok(())
    }

    /// Handles the JoinGroup answer: the leader assigns; everyone sends SyncGroup.
    async fn on_joined(
        &mut self,
        response: JoinGroupResponse,
        generation_before: i32,
    ) -> Result<(), (Error, Recovery)> {
        if response.error_code == membership::MEMBER_ID_REQUIRED {
            // KIP-394: join again with the id the coordinator chose.
            let mut state = self.coordinator.state();
            state.member_id = response.member_id.clone();
            state.rejoin_needed = true;
            return Err((group_error(response.error_code), Recovery::Rejoin));
        }
        if response.error_code != 0 {
            let recovery =
                self.coordinator
                    .on_group_error(response.error_code, None, generation_before);
            self.coordinator.state().rejoin_needed = true;
            return Err((group_error(response.error_code), recovery));
        }
        let protocol = response.protocol_name.clone().unwrap_or_default();
        let strategy = AssignmentStrategy::from_name(&protocol).ok_or_else(|| {
            (
                Error::Kafka(KafkaError {
                    code: KafkaCode(23),
                    message: Some(format!("the group chose unknown protocol {protocol:?}")),
                }),
                Recovery::Fatal,
            )
        })?;
        let leader = response.leader == response.member_id;
        {
            let mut state = self.coordinator.state();
            state.member_id = response.member_id.clone();
            state.generation = response.generation_id;
            state.protocol = Some(protocol.clone());
            state.leader = leader;
        }
        let assignments = if leader && !response.skip_assignment {
            match self.leader_assign(strategy, &response).await {
                Ok(assignments) => assignments,
                Err(error) => {
                    self.coordinator.state().rejoin_needed = true;
                    return Err((error, Recovery::Backoff));
                }
            }
        } else {
            Vec::new()
        };
        let coordinator = self.coordinator.clone();
        let generation = response.generation_id;
        let member_id = response.member_id;
        let task = tokio::spawn(async move {
            coordinator
                .sync(generation, &member_id, &protocol, assignments)
                .await
        });
        self.in_flight = Some(InFlight::Syncing { task, generation });
        Ok(())
    }

    fn on_synced(
        &mut self,
        sync: SyncGroupResponse,
        generation: i32,
    ) -> Result<(), (Error, Recovery)> {
        if sync.error_code != 0 {
            let recovery = self
                .coordinator
                .on_group_error(sync.error_code, None, generation);
            // Any failed sync means joining again.
            self.coordinator.state().rejoin_needed = true;
            return Err((group_error(sync.error_code), recovery));
        }
        let assignment = Assignment::decode(sync.assignment).map_err(|error| {
            self.coordinator.state().rejoin_needed = true;
            (
                Error::Protocol {
                    addr: "group coordinator".into(),
                    reason: error.to_string(),
                },
                Recovery::Backoff,
            )
        })?;
        {
            let mut state = self.coordinator.state();
            if state.generation != generation {
                // The generation ended meanwhile.
                state.rejoin_needed = true;
                return Err((
                    group_error(membership::ILLEGAL_GENERATION),
                    Recovery::Rejoin,
                ));
            }
            state.stable = true;
        }
        self.apply_assignment(assignment.partitions, generation);
        Ok(())
    }

    /// The leader's share-out: every member's subscription, the partition counts of every
    /// topic any member subscribes to, and the chosen strategy.
    async fn leader_assign(
        &self,
        strategy: AssignmentStrategy,
        response: &JoinGroupResponse,
    ) -> Result<Vec<(String, Bytes)>, Error> {
        let mut members = Vec::new();
        let mut all_topics = BTreeSet::new();
        for member in &response.members {
            let subscription =
                Subscription::decode(member.metadata.clone()).map_err(|error| Error::Protocol {
                    addr: "group coordinator".into(),
                    reason: format!("member {}: {error}", member.member_id),
                })?;
            all_topics.extend(subscription.topics.iter().cloned());
            members.push(MemberSubscription {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                topics: subscription.topics.iter().cloned().collect(),
                generation: subscription.owned_generation(),
                owned_partitions: subscription.owned_partitions,
            });
        }
        let list: Vec<String> = all_topics.into_iter().collect();
        let counts = if list.is_empty() {
            BTreeMap::new()
        } else {
            let metadata = self
                .consumer
                .cluster()
                .refresh_metadata(Some(&list), false)
                .await?;
            partition_counts(&metadata)
        };
        Ok(strategy
            .assign(&members, &counts)
            .into_iter()
            .map(|(member_id, partitions)| {
                let bytes = Assignment {
                    partitions,
                    user_data: None,
                }
                .encode();
                (member_id, bytes)
            })
            .collect())
    }

    fn apply_assignment(&mut self, partitions: Vec<TopicPartition>, generation: i32) {
        let assigned: BTreeSet<TopicPartition> = partitions.into_iter().collect();
        let revoked: BTreeSet<TopicPartition> = self.owned.difference(&assigned).cloned().collect();
        if !revoked.is_empty() {
            // Cooperative: what moves is given up now and assigned in a follow-up round.
            self.revoke(&revoked);
            let mut state = self.coordinator.state();
            state.rejoin_needed = true;
            state.reason = "partitions were revoked for another member".into();
        }
        let added: Vec<TopicPartition> = assigned.difference(&self.owned).cloned().collect();
        self.owned = assigned;
        self.owned_generation = generation;
        self.consumer.assign(self.owned.iter().cloned().collect());
        self.needs_committed.extend(added.iter().cloned());
        if let Some(listener) = self.listener.as_mut().and_then(|l| l.get_mut().ok()) {
            listener.on_partitions_assigned(&added);
        }
    }

    /// Positions newly assigned partitions at their committed offsets (or leaves them to
    /// `auto.offset.reset`).
    async fn fetch_pending_committed(&mut self) -> Result<(), Error> {
        if self.needs_committed.is_empty() {
            return Ok(());
        }
        let pending: Vec<TopicPartition> = self.needs_committed.iter().cloned().collect();
        let committed = self.coordinator.fetch_committed(&pending).await?;
        for (tp, offset) in committed {
            if !self.needs_committed.remove(&tp) {
                continue;
            }
            if let Some(offset) = offset {
                // Revoked meanwhile: nothing to position.
                let _ = self.consumer.seek(&tp, offset);
            } else if self.config.consumer.auto_offset_reset == OffsetReset::None {
                return Err(Error::Resource {
                    resource: format!("partition {tp}"),
                    error: KafkaError {
                        code: KafkaCode(1),
                        message: Some("no committed offset and auto.offset.reset is none".into()),
                    },
                });
            }
        }
        Ok(())
    }

    /// Commits (with auto commit), gives the partitions up and leaves the group. A static
    /// member (`group_instance_id`) does not leave: its partitions wait for it until the
    /// session timeout.
    pub async fn close(mut self) -> Result<(), Error> {
        if let Some(in_flight) = self.in_flight.take() {
            in_flight.abort();
        }
        let stable = self.coordinator.state().stable;
        let commit = if self.config.enable_auto_commit && stable {
            self.commit_sync().await
        } else {
            Ok(())
        };
        if !self.owned.is_empty() {
            let owned = self.owned.clone();
            if stable {
                self.revoke(&owned);
            } else {
                self.lose_partitions();
            }
        }
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        let leave = if self.config.group_instance_id.is_none() {
            self.coordinator.leave("the consumer is closing").await
        } else {
            Ok(())
        };
        self.coordinator.state().closed = true;
        commit.and(leave)
    }
}

fn group_error(code: i16) -> Error {
    Error::Kafka(KafkaError {
        code: KafkaCode(code),
        message: None,
    })
}

/// Partition counts of the topics a metadata response describes without error.
fn partition_counts(
    response: &freshet_protocol::messages::MetadataResponse,
) -> BTreeMap<String, i32> {
    response
        .topics
        .iter()
        .filter(|topic| topic.error_code == 0 && !topic.partitions.is_empty())
        .filter_map(|topic| Some((topic.name.clone()?, topic.partitions.len() as i32)))
        .collect()
}
