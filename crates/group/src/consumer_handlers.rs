//! The KIP-848 handlers: ConsumerGroupHeartbeat, ConsumerGroupDescribe, topic metadata
//! updates, the consumer groups' timers and the replay of their records.

use std::collections::BTreeMap;

use bytes::Bytes;
use freshet_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member as DescribedMember,
    TopicPartitions as DescribedTopicPartitions,
};
use freshet_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as HeartbeatAssignment, TopicPartitions as HeartbeatTopicPartitions,
};
use freshet_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
};
use freshet_protocol::Uuid;

use crate::assignor::{self, Assignment};
use crate::classic::ClassicGroup;
use crate::codes;
use crate::consumer::{
    compile_regex, normalized, ConsumerGroup, ConsumerMember, MemberState, TopicsSnapshot,
    LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH,
};
use crate::coordinator::{persist, respond, GroupCoordinator, GroupEntry, ReplayError};
use crate::records::{self, DecodedKey, Record};
use crate::{Output, RequestContext};

/// From this ConsumerGroupHeartbeat version the client generates its member id (KIP-1082).
const CLIENT_GENERATED_MEMBER_ID_VERSION: i16 = 1;

/// An error answer: code and message.
type HeartbeatError = (i16, String);

fn error(code: i16, message: impl Into<String>) -> HeartbeatError {
    (code, message.into())
}

/// What a heartbeat does to the member it names, decided before anything changes.
enum Join {
    /// A new member (the group may not exist yet).
    New,
    /// An existing member, by id.
    Existing,
    /// A static member rejoining with a new id replaces the one that left with epoch -2.
    ReplaceStatic { old_member_id: String },
}

/// Base64url without padding of 16 bytes, the shape of Kafka's `Uuid.toString()`.
fn uuid_string(bytes: [u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

fn to_assignment(
    partitions: &[freshet_protocol::messages::consumer_group_heartbeat_request::TopicPartitions],
) -> Assignment {
    let mut out = Assignment::new();
    for tp in partitions {
        out.entry(tp.topic_id)
            .or_default()
            .extend(tp.partitions.iter().copied());
    }
    normalized(out)
}

fn heartbeat_assignment(assignment: &Assignment) -> HeartbeatAssignment {
    HeartbeatAssignment {
        topic_partitions: assignment
            .iter()
            .map(|(topic, ps)| HeartbeatTopicPartitions {
                topic_id: *topic,
                partitions: ps.iter().copied().collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

impl GroupCoordinator {
    /// The KIP-848 group `group_id`, if it is one.
    pub fn consumer_group(&self, group_id: &str) -> Option<&ConsumerGroup> {
        self.groups.get(group_id).and_then(|e| e.consumer.as_ref())
    }

    /// The topics the coordinator assigns from (the last [`Self::update_topics`]).
    pub fn topics(&self) -> &TopicsSnapshot {
        &self.topics
    }

    /// The broker's topics changed (or are known for the first time, at load): every
    /// consumer group whose subscribed topics now resolve to other ids or partition
    /// counts gets a new group epoch and target assignment. Its members pick the change up
    /// with their next heartbeat.
    pub fn update_topics(&mut self, now_ms: i64, topics: &TopicsSnapshot) -> Vec<Output> {
        let mut out = Vec::new();
        self.topics = topics.clone();
        self.topics_known = true;
        if self.loading {
            return out;
        }
        self.refresh_consumer_groups(now_ms, &mut out);
        self.schedule(&mut out);
        out
    }

    /// Gives a new epoch and target to every consumer group whose subscribed topics
    /// resolve differently against the current topics.
    fn refresh_consumer_groups(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        for (group_id, entry) in &mut self.groups {
            let Some(group) = entry.consumer.as_mut() else {
                continue;
            };
            if group.resolve_subscribed_topics(&self.topics) == group.subscribed_topics {
                continue;
            }
            let mut records = Vec::new();
            group.bump_and_assign(now_ms, &self.topics, &mut records);
            out.push(persist(group_id, records));
        }
    }

    // ---------------------------------------------------------------- heartbeat

    /// ConsumerGroupHeartbeat (v0-v1): join (member epoch 0), heartbeat and reconcile
    /// (epoch > 0), leave (-1), static leave (-2).
    pub fn handle_consumer_group_heartbeat(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let mut records = Vec::new();
        let response = match self.consumer_heartbeat(now_ms, ctx, request, &mut records) {
            Ok(response) => response,
            Err((error_code, message)) => ConsumerGroupHeartbeatResponse {
                error_code,
                error_message: Some(message),
                ..Default::default()
            },
        };
        if !records.is_empty() {
            out.push(persist(&request.group_id, records));
        }
        respond(&mut out, ctx.handle, response);
        self.schedule(&mut out);
        out
    }

    fn validate_heartbeat(
        &self,
        ctx: &RequestContext,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> Result<(), HeartbeatError> {
        if self.loading {
            return Err(error(
                codes::COORDINATOR_LOAD_IN_PROGRESS,
                "The coordinator is loading.",
            ));
        }
        let invalid = |m: &str| Err(error(codes::INVALID_REQUEST, m));
        let epoch = request.member_epoch;
        if request.group_id.is_empty() {
            return invalid("GroupId can't be empty.");
        }
        if request.instance_id.as_deref() == Some("") {
            return invalid("InstanceId can't be empty.");
        }
        if request.rack_id.as_deref() == Some("") {
            return invalid("RackId can't be empty.");
        }
        let id_required = ctx.api_version >= CLIENT_GENERATED_MEMBER_ID_VERSION
            || epoch > 0
            || epoch == LEAVE_GROUP_MEMBER_EPOCH;
        if id_required && request.member_id.is_empty() {
            return invalid("MemberId can't be empty.");
        }
        if epoch == 0 {
            if request.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if request
                .topic_partitions
                .as_ref()
                .is_none_or(|t| !t.is_empty())
            {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none()
            {
                return invalid(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                );
            }
        } else if epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            if request.instance_id.is_none() {
                return invalid("InstanceId can't be null.");
            }
        } else if epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return invalid("MemberEpoch is invalid.");
        }
        if let Some(regex) = request.subscribed_topic_regex.as_deref() {
            if !regex.is_empty() && compile_regex(regex).is_none() {
                return Err(error(
                    codes::INVALID_REGULAR_EXPRESSION,
                    format!("SubscribedTopicRegex `{regex}` is not a valid regular expression."),
                ));
            }
        }
        if let Some(name) = request.server_assignor.as_deref() {
            if !assignor::is_supported(name) {
                return Err(error(
                    codes::UNSUPPORTED_ASSIGNOR,
                    format!("ServerAssignor {name} is not supported. Supported assignors: uniform, range."),
                ));
            }
        }
        Ok(())
    }

    fn consumer_heartbeat(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &ConsumerGroupHeartbeatRequest,
        records: &mut Vec<Record>,
    ) -> Result<ConsumerGroupHeartbeatResponse, HeartbeatError> {
        self.validate_heartbeat(ctx, request)?;
        let group_id = &request.group_id;
        let epoch = request.member_epoch;
        let not_found = || {
            error(
                codes::GROUP_ID_NOT_FOUND,
                format!("Group {group_id} not found."),
            )
        };
        let not_consumer = || {
            error(
                codes::GROUP_ID_NOT_FOUND,
                format!("Group {group_id} is not a consumer group."),
            )
        };
        let existing = match self.groups.get(group_id) {
            None if epoch != 0 => return Err(not_found()),
            None => None,
            Some(entry) => match &entry.consumer {
                Some(group) => Some(group),
                // An empty classic group (offsets only) becomes a consumer group on join;
                // one with members is served by the classic protocol only.
                None if entry.group.members.is_empty() && epoch == 0 => None,
                None => return Err(not_consumer()),
            },
        };
        if epoch < 0 {
            let group = existing.ok_or_else(not_found)?;
            let member_id = leaving_member(group, request)?;
            return Ok(self.leave(now_ms, group_id, &member_id, epoch, records));
        }
        let join = match existing {
            Some(group) => check_member(group, request, self.config.consumer_max_size)?,
            None => Join::New,
        };
        // From here on the request is valid: change state.
        let member_id = match join {
            // v0 joins may leave the id to the coordinator (a static one too).
            Join::New | Join::ReplaceStatic { .. } if request.member_id.is_empty() => {
                self.generate_uuid_member_id()
            }
            Join::New | Join::Existing | Join::ReplaceStatic { .. } => request.member_id.clone(),
        };
        self.consumer_group_or_create(now_ms, group_id, records);
        let topics = &self.topics;
        let entry = self.groups.get_mut(group_id).expect("created");
        let group = entry.consumer.as_mut().expect("created");
        let mut bump = false;
        let new_record = !matches!(join, Join::Existing);
        let assigned_before = group
            .members
            .get(&member_id)
            .map(|m| m.assigned.clone())
            .unwrap_or_default();
        match join {
            Join::New => {
                let mut member = ConsumerMember::new(&member_id);
                member.instance_id = request.instance_id.clone();
                if let Some(instance) = &request.instance_id {
                    group
                        .static_members
                        .insert(instance.clone(), member_id.clone());
                }
                group.members.insert(member_id.clone(), member);
                bump = true;
            }
            Join::ReplaceStatic { old_member_id } => {
                let old = group.members[&old_member_id].clone();
                let old_target = group.target_of(&old_member_id);
                group.remove_member(&old_member_id, records);
                // The new incarnation takes over what the old one held.
                let member = ConsumerMember {
                    member_id: member_id.clone(),
                    member_epoch: 0,
                    previous_member_epoch: old.previous_member_epoch,
                    state: MemberState::Stable,
                    partitions_pending_revocation: Assignment::new(),
                    revocation_deadline_ms: None,
                    ..old
                };
                group.static_members.insert(
                    member.instance_id.clone().expect("static"),
                    member_id.clone(),
                );
                group.members.insert(member_id.clone(), member);
                if !old_target.is_empty() {
                    group.target.insert(member_id.clone(), old_target.clone());
                    records.push(target_record(group, &member_id, &old_target));
                }
            }
            Join::Existing => {}
        }
        let member = group.members.get_mut(&member_id).expect("member exists");
        let metadata_before = member.metadata_value();
        let subscription_before = (
            member.subscribed_topic_names.clone(),
            member.subscribed_topic_regex.clone(),
            member.server_assignor.clone(),
        );
        let instance_before = member.instance_id.clone();
        update_member(member, ctx, request);
        let instance_after = member.instance_id.clone();
        if instance_after != instance_before {
            // A member that names (another) instance id from now on is static under it.
            if let Some(old) = instance_before {
                if group.static_members.get(&old) == Some(&member_id) {
                    group.static_members.remove(&old);
                }
            }
            if let Some(instance) = instance_after {
                group.static_members.insert(instance, member_id.clone());
            }
        }
        let member = &group.members[&member_id];
        let subscription_after = (
            member.subscribed_topic_names.clone(),
            member.subscribed_topic_regex.clone(),
            member.server_assignor.clone(),
        );
        if new_record || member.metadata_value() != metadata_before {
            records.push(group.member_record(member));
        }
        bump |= subscription_after != subscription_before;
        if bump {
            group.bump_and_assign(now_ms, topics, records);
        }
        if epoch == 0 {
            // The client owns nothing when it (re)joins: what it held and is still its
            // (new) target is handed back at once; everything else is released.
            let target = group.target.get(&member_id).cloned().unwrap_or_default();
            let member = group.members.get_mut(&member_id).expect("member exists");
            member.assigned = intersect(&member.assigned, &target);
            member.partitions_pending_revocation = Assignment::new();
            // A rejoin starts a new ownership: commits from before it are not its own.
            member.assignment_epochs.clear();
            member.revocation_deadline_ms = None;
            member.state = MemberState::Stable;
            if member.member_epoch > 0 {
                member.previous_member_epoch = member.member_epoch;
            }
            member.member_epoch = 0;
        }
        let owned = request.topic_partitions.as_deref().map(to_assignment);
        group.reconcile(now_ms, &member_id, owned.as_ref(), records);
        let member = group.members.get_mut(&member_id).expect("member exists");
        member.session_deadline_ms = now_ms + i64::from(self.config.consumer_session_timeout_ms);
        let member = &group.members[&member_id];
        let full_request = request.rebalance_timeout_ms != -1
            && (request.subscribed_topic_names.is_some()
                || request.subscribed_topic_regex.is_some())
            && request.topic_partitions.is_some();
        let send_assignment = epoch == 0 || full_request || member.assigned != assigned_before;
        Ok(ConsumerGroupHeartbeatResponse {
            error_code: codes::NONE,
            member_id: Some(member_id.clone()),
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: self.config.consumer_heartbeat_interval_ms,
            assignment: send_assignment.then(|| heartbeat_assignment(&member.assigned)),
            ..Default::default()
        })
    }

    /// Member epoch -1 (leave; a static member leaves for good) or -2 (a static member
    /// leaves for now and keeps its partitions until its session expires).
    fn leave(
        &mut self,
        now_ms: i64,
        group_id: &str,
        member_id: &str,
        epoch: i32,
        records: &mut Vec<Record>,
    ) -> ConsumerGroupHeartbeatResponse {
        let topics = &self.topics;
        let entry = self.groups.get_mut(group_id).expect("exists");
        let group = entry.consumer.as_mut().expect("consumer group");
        if epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            let member = group.members.get_mut(member_id).expect("member exists");
            member.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            member.partitions_pending_revocation = Assignment::new();
            member.state = MemberState::Stable;
            member.revocation_deadline_ms = None;
            let record = group.current_assignment_record(&group.members[member_id]);
            records.push(record);
        } else {
            group.remove_member(member_id, records);
            group.bump_and_assign(now_ms, topics, records);
        }
        ConsumerGroupHeartbeatResponse {
            member_id: Some(member_id.to_string()),
            member_epoch: epoch,
            ..Default::default()
        }
    }

    fn generate_uuid_member_id(&mut self) -> String {
        self.member_ids_issued += 1;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.config.member_id_seed.to_be_bytes());
        bytes[8..].copy_from_slice(&self.member_ids_issued.to_be_bytes());
        uuid_string(bytes)
    }

    /// The group as a consumer group, created (or converted from an empty classic group,
    /// whose metadata is tombstoned and whose offsets stay) if needed.
    fn consumer_group_or_create(&mut self, now_ms: i64, group_id: &str, records: &mut Vec<Record>) {
        let entry = self
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupEntry {
                group: ClassicGroup::new(group_id, now_ms),
                offsets: BTreeMap::new(),
                consumer: None,
            });
        if entry.consumer.is_none() {
            if entry.group.generation > 0 || entry.group.protocol_type.is_some() {
                records.push(Record {
                    key: records::group_key(group_id),
                    value: None,
                });
            }
            entry.group = ClassicGroup::new(group_id, now_ms);
            entry.consumer = Some(ConsumerGroup::new(group_id, now_ms));
        }
    }

    // ---------------------------------------------------------------- describe

    /// ConsumerGroupDescribe (v0, the only version of its spec).
    pub fn handle_consumer_group_describe(
        &self,
        ctx: &RequestContext,
        request: &ConsumerGroupDescribeRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let names: BTreeMap<Uuid, &str> = self
            .topics
            .iter()
            .map(|(name, meta)| (meta.id, name.as_str()))
            .collect();
        let groups = request
            .group_ids
            .iter()
            .map(|id| self.describe_consumer_group(id, &names))
            .collect();
        let response = ConsumerGroupDescribeResponse {
            groups,
            ..Default::default()
        };
        respond(&mut out, ctx.handle, response);
        out
    }

    fn describe_consumer_group(
        &self,
        group_id: &str,
        names: &BTreeMap<Uuid, &str>,
    ) -> DescribedGroup {
        let failed = |error_code: i16, message: String| DescribedGroup {
            group_id: group_id.to_string(),
            error_code,
            error_message: Some(message),
            group_state: "Dead".to_string(),
            ..Default::default()
        };
        if self.loading {
            return failed(
                codes::COORDINATOR_LOAD_IN_PROGRESS,
                "The coordinator is loading.".to_string(),
            );
        }
        let group = match self.groups.get(group_id) {
            None => {
                return failed(
                    codes::GROUP_ID_NOT_FOUND,
                    format!("Group {group_id} not found."),
                )
            }
            Some(entry) => match &entry.consumer {
                Some(group) => group,
                None => {
                    return failed(
                        codes::GROUP_ID_NOT_FOUND,
                        format!("Group {group_id} is not a consumer group."),
                    )
                }
            },
        };
        let describe = |assignment: &Assignment| DescribedAssignment {
            topic_partitions: assignment
                .iter()
                .map(|(topic, ps)| DescribedTopicPartitions {
                    topic_id: *topic,
                    topic_name: names.get(topic).map(|n| n.to_string()).unwrap_or_default(),
                    partitions: ps.iter().copied().collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let members = group
            .members
            .values()
            .map(|m| DescribedMember {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                member_epoch: m.member_epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: m.subscribed_topic_names.clone(),
                subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                assignment: describe(&m.assigned),
                target_assignment: describe(&group.target_of(&m.member_id)),
                ..Default::default()
            })
            .collect();
        DescribedGroup {
            group_id: group_id.to_string(),
            group_state: group.state().name().to_string(),
            group_epoch: group.group_epoch,
            assignment_epoch: group.assignment_epoch,
            assignor_name: group.preferred_assignor().to_string(),
            members,
            ..Default::default()
        }
    }

    // ---------------------------------------------------------------- timers

    /// Removes members whose session or revocation deadline passed, then gives the group a
    /// new epoch and target assignment (once per group and tick).
    pub(crate) fn expire_consumer_members(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let topics = &self.topics;
        for (group_id, entry) in &mut self.groups {
            let Some(group) = entry.consumer.as_mut() else {
                continue;
            };
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    m.session_deadline_ms <= now_ms
                        || m.revocation_deadline_ms.is_some_and(|at| at <= now_ms)
                })
                .map(|m| m.member_id.clone())
                .collect();
            if expired.is_empty() {
                continue;
            }
            let mut records = Vec::new();
            for member_id in &expired {
                group.remove_member(member_id, &mut records);
            }
            group.bump_and_assign(now_ms, topics, &mut records);
            out.push(persist(group_id, records));
        }
    }

    // ---------------------------------------------------------------- replay

    /// Applies one KIP-848 record; `Ok(false)` if the key is not one.
    pub(crate) fn replay_consumer(
        &mut self,
        key: &DecodedKey,
        value: Option<&Bytes>,
    ) -> Result<bool, ReplayError> {
        let decode_err = ReplayError::Record;
        match key {
            DecodedKey::ConsumerGroupMetadata(k) => match value {
                Some(bytes) => {
                    let v: freshet_protocol::internal_records::ConsumerGroupMetadataValue =
                        records::decode_consumer_group_value(bytes).map_err(decode_err)?;
                    self.replayed_group(&k.group_id).group_epoch = v.epoch;
                }
                None => {
                    if let Some(entry) = self.groups.get_mut(&k.group_id) {
                        entry.consumer = None;
                        if entry.offsets.is_empty() {
                            self.groups.remove(&k.group_id);
                        }
                    }
                }
            },
            DecodedKey::ConsumerGroupPartitionMetadata(k) => match value {
                Some(bytes) => {
                    let v = records::decode_consumer_group_value(bytes).map_err(decode_err)?;
                    self.replayed_group(&k.group_id).apply_partition_metadata(v);
                }
                None => {
                    if let Some(g) = self.replayed_group_if_any(&k.group_id) {
                        g.subscribed_topics.clear();
                    }
                }
            },
            DecodedKey::ConsumerGroupTargetAssignmentMetadata(k) => match value {
                Some(bytes) => {
                    let v: freshet_protocol::internal_records::ConsumerGroupTargetAssignmentMetadataValue =
                        records::decode_consumer_group_value(bytes).map_err(decode_err)?;
                    self.replayed_group(&k.group_id).assignment_epoch = v.assignment_epoch;
                }
                None => {
                    if let Some(g) = self.replayed_group_if_any(&k.group_id) {
                        g.assignment_epoch = 0;
                    }
                }
            },
            DecodedKey::ConsumerGroupMemberMetadata(k) => match value {
                Some(bytes) => {
                    let v = records::decode_consumer_group_value(bytes).map_err(decode_err)?;
                    let group = self.replayed_group(&k.group_id);
                    let member = group
                        .members
                        .entry(k.member_id.clone())
                        .or_insert_with(|| ConsumerMember::new(&k.member_id));
                    member.apply_metadata(v);
                    if let Some(instance) = member.instance_id.clone() {
                        group.static_members.insert(instance, k.member_id.clone());
                    }
                }
                None => {
                    if let Some(g) = self.replayed_group_if_any(&k.group_id) {
                        g.remove_member(&k.member_id, &mut Vec::new());
                    }
                }
            },
            DecodedKey::ConsumerGroupTargetAssignmentMember(k) => match value {
                Some(bytes) => {
                    let v = records::decode_consumer_group_value(bytes).map_err(decode_err)?;
                    self.replayed_group(&k.group_id)
                        .apply_target_member(&k.member_id, v);
                }
                None => {
                    if let Some(g) = self.replayed_group_if_any(&k.group_id) {
                        g.target.remove(&k.member_id);
                    }
                }
            },
            DecodedKey::ConsumerGroupCurrentMemberAssignment(k) => match value {
                Some(bytes) => {
                    let v = records::decode_consumer_group_value(bytes).map_err(decode_err)?;
                    self.replayed_group(&k.group_id)
                        .members
                        .entry(k.member_id.clone())
                        .or_insert_with(|| ConsumerMember::new(&k.member_id))
                        .apply_assignment(v);
                }
                None => {
                    if let Some(g) = self.replayed_group_if_any(&k.group_id) {
                        if let Some(m) = g.members.get_mut(&k.member_id) {
                            m.member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                            m.previous_member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                            m.state = MemberState::Stable;
                            m.assigned.clear();
                            m.partitions_pending_revocation.clear();
                            m.assignment_epochs.clear();
                        }
                    }
                }
            },
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn replayed_group(&mut self, group_id: &str) -> &mut ConsumerGroup {
        let entry = self
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupEntry {
                group: ClassicGroup::new(group_id, -1),
                offsets: BTreeMap::new(),
                consumer: None,
            });
        entry
            .consumer
            .get_or_insert_with(|| ConsumerGroup::new(group_id, -1))
    }

    fn replayed_group_if_any(&mut self, group_id: &str) -> Option<&mut ConsumerGroup> {
        self.groups.get_mut(group_id)?.consumer.as_mut()
    }

    /// At the end of loading: consumer members get a full session from `now_ms`, and a
    /// revocation deadline if they were revoking; if the broker already told the topics,
    /// groups whose topics changed while the coordinator was away get a new assignment.
    pub(crate) fn finish_consumer_load(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let session_ms = i64::from(self.config.consumer_session_timeout_ms);
        for entry in self.groups.values_mut() {
            let Some(group) = entry.consumer.as_mut() else {
                continue;
            };
            for member in group.members.values_mut() {
                member.session_deadline_ms = now_ms + session_ms;
                member.revocation_deadline_ms = (member.state == MemberState::UnrevokedPartitions)
                    .then(|| now_ms + i64::from(member.rebalance_timeout_ms.max(0)));
            }
        }
        if self.topics_known {
            self.refresh_consumer_groups(now_ms, out);
        }
    }
}

/// The member a leave (epoch -1 or -2) names: by instance id for a static member.
fn leaving_member(
    group: &ConsumerGroup,
    request: &ConsumerGroupHeartbeatRequest,
) -> Result<String, HeartbeatError> {
    match &request.instance_id {
        Some(instance) => {
            let Some(known) = group.static_members.get(instance) else {
                return Err(error(
                    codes::UNKNOWN_MEMBER_ID,
                    format!("Instance id {instance} is unknown."),
                ));
            };
            if *known != request.member_id {
                return Err(error(
                    codes::FENCED_INSTANCE_ID,
                    format!("Instance id {instance} belongs to another member."),
                ));
            }
            Ok(known.clone())
        }
        None if group.members.contains_key(&request.member_id) => Ok(request.member_id.clone()),
        None => Err(error(
            codes::UNKNOWN_MEMBER_ID,
            format!(
                "Member {} is not a member of group {}.",
                request.member_id, group.group_id
            ),
        )),
    }
}

fn target_record(group: &ConsumerGroup, member_id: &str, assignment: &Assignment) -> Record {
    use freshet_protocol::internal_records::consumer_group_target_assignment_member_value::TopicPartition;
    let value = freshet_protocol::internal_records::ConsumerGroupTargetAssignmentMemberValue {
        topic_partitions: assignment
            .iter()
            .map(|(topic, ps)| TopicPartition {
                topic_id: *topic,
                partitions: ps.iter().copied().collect(),
                unknown_tagged_fields: Vec::new(),
            })
            .collect(),
        unknown_tagged_fields: Vec::new(),
    };
    Record {
        key: records::consumer_group_target_assignment_member_key(&group.group_id, member_id),
        value: Some(records::consumer_group_value(&value)),
    }
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (topic, ps) in a {
        if let Some(other) = b.get(topic) {
            let both: std::collections::BTreeSet<i32> = ps.intersection(other).copied().collect();
            if !both.is_empty() {
                out.insert(*topic, both);
            }
        }
    }
    out
}

/// Applies the fields a heartbeat sets (null = unchanged).
fn update_member(
    member: &mut ConsumerMember,
    ctx: &RequestContext,
    request: &ConsumerGroupHeartbeatRequest,
) {
    member.client_id = ctx.client_id.clone();
    member.client_host = ctx.client_host.clone();
    if let Some(instance) = &request.instance_id {
        member.instance_id = Some(instance.clone());
    }
    if let Some(rack) = &request.rack_id {
        member.rack_id = Some(rack.clone());
    }
    if request.rebalance_timeout_ms != -1 {
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
    }
    if let Some(names) = &request.subscribed_topic_names {
        member.subscribed_topic_names = names.clone();
    }
    if let Some(regex) = &request.subscribed_topic_regex {
        member.subscribed_topic_regex = Some(regex.clone()).filter(|r| !r.is_empty());
    }
    if let Some(name) = &request.server_assignor {
        member.server_assignor = Some(name.clone());
    }
}

/// Kafka's member checks for epoch >= 0, against an existing consumer group.
fn check_member(
    group: &ConsumerGroup,
    request: &ConsumerGroupHeartbeatRequest,
    max_size: usize,
) -> Result<Join, HeartbeatError> {
    let epoch = request.member_epoch;
    let member_id = &request.member_id;
    let unknown = || {
        error(
            codes::UNKNOWN_MEMBER_ID,
            format!(
                "Member {member_id} is not a member of group {}.",
                group.group_id
            ),
        )
    };
    let full = || {
        error(
            codes::GROUP_MAX_SIZE_REACHED,
            format!("The consumer group has reached its maximum capacity of {max_size} members."),
        )
    };
    if let Some(instance) = &request.instance_id {
        match group.static_members.get(instance) {
            Some(known) if known == member_id => {}
            Some(known) if epoch == 0 => {
                let old = &group.members[known];
                if old.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                    return Err(error(
                        codes::UNRELEASED_INSTANCE_ID,
                        format!(
                            "Static member {known} with instance id {instance} is not released yet."
                        ),
                    ));
                }
                return Ok(Join::ReplaceStatic {
                    old_member_id: known.clone(),
                });
            }
            Some(_) => {
                return Err(error(
                    codes::FENCED_INSTANCE_ID,
                    format!("Instance id {instance} belongs to another member."),
                ))
            }
            None if epoch == 0 => {
                if group.members.contains_key(member_id) {
                    return Ok(Join::Existing);
                }
                if group.members.len() >= max_size {
                    return Err(full());
                }
                return Ok(Join::New);
            }
            None => return Err(unknown()),
        }
    }
    let Some(member) = group.members.get(member_id) else {
        if epoch != 0 {
            return Err(unknown());
        }
        if group.members.len() >= max_size {
            return Err(full());
        }
        return Ok(Join::New);
    };
    if epoch == 0 {
        return Ok(Join::Existing);
    }
    // A member one epoch behind whose response was lost may catch up, if it owns nothing
    // it should not.
    let fenced = || {
        error(
            codes::FENCED_MEMBER_EPOCH,
            format!(
                "The member epoch {epoch} does not match the expected {}.",
                member.member_epoch
            ),
        )
    };
    if epoch > member.member_epoch {
        return Err(fenced());
    }
    if epoch < member.member_epoch {
        let owned = request.topic_partitions.as_deref().map(to_assignment);
        let subset = owned.is_some_and(|owned| {
            owned
                .iter()
                .all(|(t, ps)| member.assigned.get(t).is_some_and(|a| ps.is_subset(a)))
        });
        if epoch != member.previous_member_epoch || !subset {
            return Err(fenced());
        }
    }
    Ok(Join::Existing)
}
