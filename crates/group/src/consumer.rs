//! A KIP-848 consumer group: members, epochs, the target assignment and each member's
//! incremental reconciliation towards it. The transitions that produce outputs live in
//! `consumer_handlers.rs`; this module holds the state and the pure rules.

use std::collections::{BTreeMap, BTreeSet};

use freshet_protocol::internal_records::consumer_group_current_member_assignment_value::TopicPartitions as RecordTopicPartitions;
use freshet_protocol::internal_records::consumer_group_partition_metadata_value::TopicMetadata;
use freshet_protocol::internal_records::consumer_group_target_assignment_member_value::TopicPartition as TargetTopicPartition;
use freshet_protocol::internal_records::{
    ConsumerGroupCurrentMemberAssignmentValue, ConsumerGroupMemberMetadataValue,
    ConsumerGroupMetadataValue, ConsumerGroupPartitionMetadataValue,
    ConsumerGroupTargetAssignmentMemberValue, ConsumerGroupTargetAssignmentMetadataValue,
};
use freshet_protocol::Uuid;

use crate::assignor::{self, Assignment, MemberSpec};
use crate::records::{self, Record};

/// What the coordinator knows about one topic: its id and partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicMeta {
    pub id: Uuid,
    pub partitions: i32,
}

/// Every topic of the cluster by name, as the broker hands it to
/// [`GroupCoordinator::update_topics`](crate::GroupCoordinator::update_topics).
pub type TopicsSnapshot = BTreeMap<String, TopicMeta>;

/// Member epoch a member sends to leave the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// Member epoch a static member sends to leave for a while, keeping its partitions.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// Kafka's `MemberState`, with its record values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Owns exactly its target assignment at the assignment epoch.
    Stable,
    /// Must give up `pending_revocation` before it moves to the next epoch.
    UnrevokedPartitions,
    /// At the latest epoch, waiting for partitions other members have not released yet.
    UnreleasedPartitions,
}

impl MemberState {
    pub fn value(self) -> i8 {
        match self {
            Self::Stable => 0,
            Self::UnrevokedPartitions => 1,
            Self::UnreleasedPartitions => 2,
        }
    }

    pub fn from_value(value: i8) -> Self {
        match value {
            1 => Self::UnrevokedPartitions,
            2 => Self::UnreleasedPartitions,
            // Kafka maps unknown values to UNKNOWN, which reconciles like STABLE.
            _ => Self::Stable,
        }
    }
}

/// Kafka's consumer group states, as ListGroups and ConsumerGroupDescribe name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Assigning => "Assigning",
            Self::Reconciling => "Reconciling",
            Self::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    /// Partitions the member owns (or may own now): what its heartbeat response lists.
    pub assigned: Assignment,
    /// Partitions it still owns but must give up.
    pub partitions_pending_revocation: Assignment,
    /// Removed when this passes without a heartbeat.
    pub session_deadline_ms: i64,
    /// Removed when this passes while it still holds partitions to revoke.
    pub revocation_deadline_ms: Option<i64>,
    /// KIP-1251: the member epoch at which it was given each partition it owns. It has
    /// owned a partition without a break since that epoch, so a commit sent with any epoch
    /// from there up to its current one is its own. A partition without an entry counts
    /// as given at the current epoch (the strict KIP-848 rule). Not persisted: after a
    /// reload every owned partition counts as given at the reloaded epoch.
    pub assignment_epochs: BTreeMap<(Uuid, i32), i32>,
}

impl ConsumerMember {
    pub fn new(member_id: &str) -> Self {
        Self {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            rebalance_timeout_ms: -1,
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            partitions_pending_revocation: Assignment::new(),
            session_deadline_ms: i64::MAX,
            revocation_deadline_ms: None,
            assignment_epochs: BTreeMap::new(),
        }
    }

    /// The epoch since which the member has owned `partition` without a break, if it owns
    /// it (assigned or still to revoke).
    pub fn owned_since(&self, topic: Uuid, partition: i32) -> Option<i32> {
        let owns = |a: &Assignment| a.get(&topic).is_some_and(|ps| ps.contains(&partition));
        if !owns(&self.assigned) && !owns(&self.partitions_pending_revocation) {
            return None;
        }
        Some(
            self.assignment_epochs
                .get(&(topic, partition))
                .copied()
                .unwrap_or(self.member_epoch),
        )
    }

    /// Forgets the epochs of partitions it no longer owns and stamps the ones it was just
    /// given with its current epoch. Call after every change of what it owns.
    pub(crate) fn stamp_assignment_epochs(&mut self) {
        let owned: BTreeSet<(Uuid, i32)> = self.owned_partitions().collect();
        self.assignment_epochs.retain(|tp, _| owned.contains(tp));
        for tp in owned {
            self.assignment_epochs
                .entry(tp)
                .or_insert(self.member_epoch);
        }
    }

    /// The topic names this member subscribes to: its names that exist, plus every topic
    /// its regex matches in full. Internal topics included: Kafka's coordinator matches a
    /// KIP-848 regex against every topic it may describe (classic clients, which match on
    /// their side, usually leave internal topics out themselves).
    pub fn subscribed_topics<'a>(&'a self, topics: &'a TopicsSnapshot) -> BTreeSet<&'a str> {
        let mut out: BTreeSet<&str> = self
            .subscribed_topic_names
            .iter()
            .filter(|name| topics.contains_key(name.as_str()))
            .map(String::as_str)
            .collect();
        if let Some(regex) = self
            .subscribed_topic_regex
            .as_deref()
            .and_then(compile_regex)
        {
            out.extend(
                topics
                    .keys()
                    .filter(|name| regex.is_match(name))
                    .map(String::as_str),
            );
        }
        out
    }

    /// Whether this member subscribes to `topic` by name or by regex (the topic may not
    /// exist).
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscribed_topic_names.iter().any(|n| n == topic)
            || self
                .subscribed_topic_regex
                .as_deref()
                .and_then(compile_regex)
                .is_some_and(|r| r.is_match(topic))
    }

    pub(crate) fn metadata_value(&self) -> ConsumerGroupMemberMetadataValue {
        ConsumerGroupMemberMetadataValue {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.clone(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
            classic_member_metadata: None,
            unknown_tagged_fields: Vec::new(),
        }
    }

    pub(crate) fn apply_metadata(&mut self, value: ConsumerGroupMemberMetadataValue) {
        self.instance_id = value.instance_id;
        self.rack_id = value.rack_id;
        self.client_id = value.client_id;
        self.client_host = value.client_host;
        self.subscribed_topic_names = value.subscribed_topic_names;
        self.subscribed_topic_regex = value.subscribed_topic_regex;
        self.rebalance_timeout_ms = value.rebalance_timeout_ms;
        self.server_assignor = value.server_assignor;
    }

    pub(crate) fn assignment_value(&self) -> ConsumerGroupCurrentMemberAssignmentValue {
        ConsumerGroupCurrentMemberAssignmentValue {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state.value(),
            assigned_partitions: record_partitions(&self.assigned),
            partitions_pending_revocation: record_partitions(&self.partitions_pending_revocation),
            unknown_tagged_fields: Vec::new(),
        }
    }

    pub(crate) fn apply_assignment(&mut self, value: ConsumerGroupCurrentMemberAssignmentValue) {
        self.member_epoch = value.member_epoch;
        self.previous_member_epoch = value.previous_member_epoch;
        self.state = MemberState::from_value(value.state);
        self.assigned = from_record_partitions(value.assigned_partitions);
        self.partitions_pending_revocation =
            from_record_partitions(value.partitions_pending_revocation);
        self.assignment_epochs.clear();
        self.stamp_assignment_epochs();
    }

    /// The reconciliation state as one comparable tuple (what the current-assignment
    /// record holds).
    fn reconciliation(&self) -> (i32, i32, MemberState, &Assignment, &Assignment) {
        (
            self.member_epoch,
            self.previous_member_epoch,
            self.state,
            &self.assigned,
            &self.partitions_pending_revocation,
        )
    }

    fn owned_partitions(&self) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        self.assigned
            .iter()
            .chain(&self.partitions_pending_revocation)
            .flat_map(|(topic, ps)| ps.iter().map(move |p| (*topic, *p)))
    }
}

/// Compiles a subscription regex as Kafka applies it: the whole topic name must match.
pub(crate) fn compile_regex(pattern: &str) -> Option<regex::Regex> {
    if pattern.is_empty() {
        return None;
    }
    regex::Regex::new(&format!("^(?:{pattern})$")).ok()
}

fn record_partitions(assignment: &Assignment) -> Vec<RecordTopicPartitions> {
    assignment
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(topic, ps)| RecordTopicPartitions {
            topic_id: *topic,
            partitions: ps.iter().copied().collect(),
            unknown_tagged_fields: Vec::new(),
        })
        .collect()
}

fn from_record_partitions(partitions: Vec<RecordTopicPartitions>) -> Assignment {
    let mut out = Assignment::new();
    for tp in partitions {
        out.entry(tp.topic_id).or_default().extend(tp.partitions);
    }
    out.retain(|_, ps| !ps.is_empty());
    out
}

/// Whether the partitions a member says it owns (`None`: it did not say, so it may own
/// anything) include any of `partitions` (Kafka's `ownsRevokedPartitions`).
fn owns_any(owned: Option<&Assignment>, partitions: &Assignment) -> bool {
    owned.is_none_or(|owned| {
        partitions
            .iter()
            .any(|(t, ps)| owned.get(t).is_some_and(|o| !o.is_disjoint(ps)))
    })
}

/// Drops topics with no partitions so that equal assignments compare equal.
pub(crate) fn normalized(mut assignment: Assignment) -> Assignment {
    assignment.retain(|_, ps| !ps.is_empty());
    assignment
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroup {
    pub group_id: String,
    /// Bumped by every change of membership, subscriptions or subscribed topic metadata.
    pub group_epoch: i32,
    /// The group epoch the target assignment was computed for.
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// group.instance.id -> member id.
    pub static_members: BTreeMap<String, String>,
    /// Each member's target assignment (absent = empty).
    pub target: BTreeMap<String, Assignment>,
    /// Metadata of the subscribed topics the target assignment was computed from.
    pub subscribed_topics: BTreeMap<String, TopicMeta>,
    /// When the group last changed state; an empty group's offsets expire relative to it.
    pub state_timestamp_ms: i64,
}

impl ConsumerGroup {
    pub fn new(group_id: &str, now_ms: i64) -> Self {
        Self {
            group_id: group_id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscribed_topics: BTreeMap::new(),
            state_timestamp_ms: now_ms,
        }
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The assignor the members ask for most (ties to the smallest name), else the default.
    pub fn preferred_assignor(&self) -> &str {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(name) = member.server_assignor.as_deref() {
                *votes.entry(name).or_default() += 1;
            }
        }
        let best = votes.values().copied().max().unwrap_or(0);
        votes
            .into_iter()
            .find(|(_, n)| *n == best)
            .map_or(assignor::DEFAULT_ASSIGNOR, |(name, _)| name)
    }

    pub fn target_of(&self, member_id: &str) -> Assignment {
        self.target.get(member_id).cloned().unwrap_or_default()
    }

    /// The subscribed topics' metadata as the members' subscriptions resolve now.
    pub(crate) fn resolve_subscribed_topics(
        &self,
        topics: &TopicsSnapshot,
    ) -> BTreeMap<String, TopicMeta> {
        let mut out = BTreeMap::new();
        for member in self.members.values() {
            for name in member.subscribed_topics(topics) {
                out.insert(name.to_string(), topics[name]);
            }
        }
        out
    }

    /// The earliest session or revocation deadline.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.members
            .values()
            .flat_map(|m| std::iter::once(m.session_deadline_ms).chain(m.revocation_deadline_ms))
            .min()
    }

    // ------------------------------------------------------------ records

    pub(crate) fn epoch_record(&self) -> Record {
        Record {
            key: records::consumer_group_metadata_key(&self.group_id),
            value: Some(records::consumer_group_value(&ConsumerGroupMetadataValue {
                epoch: self.group_epoch,
                unknown_tagged_fields: Vec::new(),
            })),
        }
    }

    pub(crate) fn partition_metadata_record(&self) -> Record {
        let topics = self
            .subscribed_topics
            .iter()
            .map(|(name, meta)| TopicMetadata {
                topic_id: meta.id,
                topic_name: name.clone(),
                num_partitions: meta.partitions,
                partition_metadata: Vec::new(),
                unknown_tagged_fields: Vec::new(),
            })
            .collect();
        Record {
            key: records::consumer_group_partition_metadata_key(&self.group_id),
            value: Some(records::consumer_group_value(
                &ConsumerGroupPartitionMetadataValue {
                    topics,
                    unknown_tagged_fields: Vec::new(),
                },
            )),
        }
    }

    pub(crate) fn apply_partition_metadata(&mut self, value: ConsumerGroupPartitionMetadataValue) {
        self.subscribed_topics = value
            .topics
            .into_iter()
            .map(|t| {
                let meta = TopicMeta {
                    id: t.topic_id,
                    partitions: t.num_partitions,
                };
                (t.topic_name, meta)
            })
            .collect();
    }

    pub(crate) fn member_record(&self, member: &ConsumerMember) -> Record {
        Record {
            key: records::consumer_group_member_metadata_key(&self.group_id, &member.member_id),
            value: Some(records::consumer_group_value(&member.metadata_value())),
        }
    }

    pub(crate) fn current_assignment_record(&self, member: &ConsumerMember) -> Record {
        Record {
            key: records::consumer_group_current_member_assignment_key(
                &self.group_id,
                &member.member_id,
            ),
            value: Some(records::consumer_group_value(&member.assignment_value())),
        }
    }

    fn target_member_record(&self, member_id: &str, assignment: &Assignment) -> Record {
        let value = ConsumerGroupTargetAssignmentMemberValue {
            topic_partitions: assignment
                .iter()
                .filter(|(_, ps)| !ps.is_empty())
                .map(|(topic, ps)| TargetTopicPartition {
                    topic_id: *topic,
                    partitions: ps.iter().copied().collect(),
                    unknown_tagged_fields: Vec::new(),
                })
                .collect(),
            unknown_tagged_fields: Vec::new(),
        };
        Record {
            key: records::consumer_group_target_assignment_member_key(&self.group_id, member_id),
            value: Some(records::consumer_group_value(&value)),
        }
    }

    pub(crate) fn apply_target_member(
        &mut self,
        member_id: &str,
        value: ConsumerGroupTargetAssignmentMemberValue,
    ) {
        let mut assignment = Assignment::new();
        for tp in value.topic_partitions {
            assignment
                .entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions);
        }
        self.target
            .insert(member_id.to_string(), normalized(assignment));
    }

    fn target_metadata_record(&self) -> Record {
        Record {
            key: records::consumer_group_target_assignment_metadata_key(&self.group_id),
            value: Some(records::consumer_group_value(
                &ConsumerGroupTargetAssignmentMetadataValue {
                    assignment_epoch: self.assignment_epoch,
                    unknown_tagged_fields: Vec::new(),
                },
            )),
        }
    }

    /// Tombstones of a member's three records, in Kafka's order (current assignment,
    /// target assignment, metadata).
    fn member_tombstones(&self, member_id: &str) -> [Record; 3] {
        let g = &self.group_id;
        [
            Record {
                key: records::consumer_group_current_member_assignment_key(g, member_id),
                value: None,
            },
            Record {
                key: records::consumer_group_target_assignment_member_key(g, member_id),
                value: None,
            },
            Record {
                key: records::consumer_group_member_metadata_key(g, member_id),
                value: None,
            },
        ]
    }

    /// Tombstones of every record of the group (members first, then the group's own
    /// records), for DeleteGroups, expiry and conversion to a classic group.
    pub(crate) fn tombstones(&self) -> Vec<Record> {
        let mut out: Vec<Record> = self
            .members
            .keys()
            .flat_map(|id| self.member_tombstones(id))
            .collect();
        let g = &self.group_id;
        for key in [
            records::consumer_group_target_assignment_metadata_key(g),
            records::consumer_group_partition_metadata_key(g),
            records::consumer_group_metadata_key(g),
        ] {
            out.push(Record { key, value: None });
        }
        out
    }

    /// Every record that describes the group as it is now, in replay order: what a
    /// compacted `__consumer_offsets` holds for it (offsets aside).
    pub fn records(&self) -> Vec<Record> {
        let mut out: Vec<Record> = self
            .members
            .values()
            .map(|m| self.member_record(m))
            .collect();
        if !self.subscribed_topics.is_empty() {
            out.push(self.partition_metadata_record());
        }
        out.push(self.epoch_record());
        for (member_id, assignment) in &self.target {
            out.push(self.target_member_record(member_id, assignment));
        }
        out.push(self.target_metadata_record());
        out.extend(
            self.members
                .values()
                .map(|m| self.current_assignment_record(m)),
        );
        out
    }

    // ------------------------------------------------------------ transitions

    /// Removes a member and writes its tombstones. The caller bumps the epoch.
    pub(crate) fn remove_member(&mut self, member_id: &str, records: &mut Vec<Record>) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        self.target.remove(member_id);
        records.extend(self.member_tombstones(member_id));
    }

    /// Bumps the group epoch, refreshes the subscribed topics' metadata and recomputes the
    /// target assignment, with their records in Kafka's order.
    pub(crate) fn bump_and_assign(
        &mut self,
        now_ms: i64,
        topics: &TopicsSnapshot,
        records: &mut Vec<Record>,
    ) {
        let subscribed = self.resolve_subscribed_topics(topics);
        if subscribed != self.subscribed_topics {
            self.subscribed_topics = subscribed;
            records.push(self.partition_metadata_record());
        }
        self.group_epoch += 1;
        records.push(self.epoch_record());
        self.compute_target(topics, records);
        self.state_timestamp_ms = now_ms;
    }

    /// Runs the preferred assignor at the group epoch; writes the members whose target
    /// changed, then the assignment epoch.
    fn compute_target(&mut self, topics: &TopicsSnapshot, records: &mut Vec<Record>) {
        let specs: BTreeMap<String, MemberSpec> = self
            .members
            .values()
            .map(|m| {
                let subscribed = m
                    .subscribed_topics(topics)
                    .into_iter()
                    .map(|name| topics[name].id)
                    .collect();
                let spec = MemberSpec {
                    subscribed,
                    previous: self.target_of(&m.member_id),
                };
                (m.member_id.clone(), spec)
            })
            .collect();
        let counts: BTreeMap<Uuid, i32> = self
            .subscribed_topics
            .values()
            .map(|meta| (meta.id, meta.partitions))
            .collect();
        let assignor = self.preferred_assignor().to_string();
        let new_target = assignor::assign(&assignor, &specs, &counts);
        for (member_id, assignment) in new_target {
            let assignment = normalized(assignment);
            if self.target_of(&member_id) != assignment {
                records.push(self.target_member_record(&member_id, &assignment));
                self.target.insert(member_id, assignment);
            }
        }
        self.assignment_epoch = self.group_epoch;
        records.push(self.target_metadata_record());
    }

    /// Which member owns (or must still revoke) each partition, except `except`.
    fn owners_except(&self, except: &str) -> BTreeSet<(Uuid, i32)> {
        self.members
            .values()
            .filter(|m| m.member_id != except)
            .flat_map(ConsumerMember::owned_partitions)
            .collect()
    }

    /// Moves a member towards its target (Kafka's `CurrentAssignmentBuilder`), given the
    /// partitions it says it owns (`None`: not sent). Writes its current-assignment record
    /// if anything changed; returns whether its assigned partitions changed.
    pub(crate) fn reconcile(
        &mut self,
        now_ms: i64,
        member_id: &str,
        owned: Option<&Assignment>,
        records: &mut Vec<Record>,
    ) -> bool {
        let target_epoch = self.assignment_epoch;
        let target = self.target_of(member_id);
        let member = &self.members[member_id];
        let proceed = match member.state {
            // It may move on once it no longer owns any partition it had to revoke.
            MemberState::UnrevokedPartitions => {
                !owns_any(owned, &member.partitions_pending_revocation)
            }
            MemberState::UnreleasedPartitions => true,
            MemberState::Stable => member.member_epoch != target_epoch,
        };
        if !proceed || member.member_epoch < 0 {
            return false;
        }
        let taken = self.owners_except(member_id);
        let member = self.members.get_mut(member_id).expect("member exists");
        let before = (
            member.member_epoch,
            member.previous_member_epoch,
            member.state,
            member.assigned.clone(),
            member.partitions_pending_revocation.clone(),
        );
        let mut keep = Assignment::new();
        let mut revoke = Assignment::new();
        for (topic, ps) in &member.assigned {
            let wanted = target.get(topic);
            for p in ps {
                let bucket = if wanted.is_some_and(|w| w.contains(p)) {
                    &mut keep
                } else {
                    &mut revoke
                };
                bucket.entry(*topic).or_default().insert(*p);
            }
        }
        // A member that says it no longer owns what it must give up (it rejoined, or it
        // already revoked) need not be asked to.
        if !revoke.is_empty() && owns_any(owned, &revoke) {
            // Revoke first; the epoch moves only once the member has acknowledged. The
            // revocation timer restarts with each new revocation, as in Kafka.
            member.state = MemberState::UnrevokedPartitions;
            member.assigned = keep;
            member.partitions_pending_revocation = revoke;
            member.revocation_deadline_ms =
                Some(now_ms + i64::from(member.rebalance_timeout_ms.max(0)));
        } else {
            let mut unreleased = false;
            let mut assigned = keep;
            for (topic, ps) in &target {
                for p in ps {
                    if assigned.get(topic).is_some_and(|a| a.contains(p)) {
                        continue;
                    }
                    if taken.contains(&(*topic, *p)) {
                        unreleased = true;
                    } else {
                        assigned.entry(*topic).or_default().insert(*p);
                    }
                }
            }
            member.assigned = assigned;
            member.partitions_pending_revocation = Assignment::new();
            member.revocation_deadline_ms = None;
            member.state = if unreleased {
                MemberState::UnreleasedPartitions
            } else {
                MemberState::Stable
            };
            if member.member_epoch != target_epoch {
                member.previous_member_epoch = member.member_epoch;
                member.member_epoch = target_epoch;
            }
        }
        member.stamp_assignment_epochs();
        let after = member.reconciliation();
        let changed = (before.0, before.1, before.2, &before.3, &before.4) != after;
        let assigned_changed = before.3 != member.assigned;
        if changed {
            let record = self.current_assignment_record(&self.members[member_id]);
            records.push(record);
        }
        assigned_changed
    }

    /// Panics if an invariant is broken (a bug here, never input).
    pub fn assert_invariants(&self) {
        assert!(self.assignment_epoch <= self.group_epoch);
        let mut owner: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
        for member in self.members.values() {
            for tp in member.owned_partitions() {
                if let Some(other) = owner.insert(tp, &member.member_id) {
                    panic!(
                        "partition {tp:?} owned by both {other} and {}",
                        member.member_id
                    );
                }
            }
            assert!(
                member.member_epoch <= self.assignment_epoch,
                "member epoch {} above the assignment epoch {}",
                member.member_epoch,
                self.assignment_epoch
            );
            if member.state == MemberState::Stable && member.member_epoch == self.assignment_epoch {
                assert_eq!(member.assigned, self.target_of(&member.member_id));
            }
            if member.state != MemberState::UnrevokedPartitions {
                assert!(member.partitions_pending_revocation.is_empty());
            }
            if member.member_epoch >= 0 {
                for (topic, p) in member.owned_partitions() {
                    let since = member.owned_since(topic, p).expect("owned");
                    assert!(
                        since <= member.member_epoch,
                        "{} owns {topic:?}/{p} since epoch {since}, after its epoch {}",
                        member.member_id,
                        member.member_epoch
                    );
                }
            }
        }
        let mut targeted = BTreeSet::new();
        for (member_id, assignment) in &self.target {
            assert!(
                self.members.contains_key(member_id),
                "target of a non-member"
            );
            for (topic, ps) in assignment {
                for p in ps {
                    assert!(targeted.insert((*topic, *p)), "partition targeted twice");
                }
            }
        }
        for (instance, member_id) in &self.static_members {
            let member = self.members.get(member_id).expect("static member exists");
            assert_eq!(member.instance_id.as_deref(), Some(instance.as_str()));
        }
    }
}
