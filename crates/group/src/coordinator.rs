//! The coordinator: the classic-protocol handlers, timers and replay.

use std::collections::BTreeMap;

use bytes::Bytes;
use freshet_protocol::internal_records::{GroupMetadataValue, OffsetCommitValue};
use freshet_protocol::messages::heartbeat_response::HeartbeatResponse;
use freshet_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use freshet_protocol::messages::leave_group_request::MemberIdentity;
use freshet_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use freshet_protocol::messages::sync_group_response::SyncGroupResponse;
use freshet_protocol::messages::{
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use freshet_protocol::Response;

use crate::classic::{ClassicGroup, GroupState, InitialJoin, Member, Parked};
use crate::codes;
use crate::consumer::{ConsumerGroup, TopicsSnapshot};
use crate::records::{self, DecodedKey, Record, RecordError};
use crate::{GroupConfig, Output, RequestContext, RequestHandle};

/// A group and its committed offsets. A KIP-848 group has `consumer` set; its classic
/// part then stays Empty with no members.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupEntry {
    pub(crate) group: ClassicGroup,
    pub(crate) offsets: BTreeMap<(String, i32), OffsetCommitValue>,
    pub(crate) consumer: Option<ConsumerGroup>,
}

impl GroupEntry {
    /// Whether the group has no members of either protocol.
    pub(crate) fn is_empty(&self) -> bool {
        self.group.state == GroupState::Empty
            && self.consumer.as_ref().is_none_or(|c| c.members.is_empty())
    }
}

/// The coordinator of every group in the `__consumer_offsets` partitions this broker leads.
#[derive(Debug, Clone)]
pub struct GroupCoordinator {
    pub(crate) config: GroupConfig,
    pub(crate) groups: BTreeMap<String, GroupEntry>,
    /// Counter for generated member ids (with `config.member_id_seed`).
    pub(crate) member_ids_issued: u64,
    /// The cluster's topics, for KIP-848 assignment ([`GroupCoordinator::update_topics`]).
    pub(crate) topics: TopicsSnapshot,
    /// Whether `update_topics` was called at all (an empty snapshot before that means
    /// "unknown", not "no topics").
    pub(crate) topics_known: bool,
    /// True between [`GroupCoordinator::loading`] and [`GroupCoordinator::finish_load`]:
    /// requests are answered COORDINATOR_LOAD_IN_PROGRESS meanwhile.
    pub(crate) loading: bool,
    pub(crate) next_offsets_check_ms: Option<i64>,
    last_scheduled_ms: Option<i64>,
}

/// Why a record could not be replayed; the record is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayError {
    Record(RecordError),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Record(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// Which `__consumer_offsets` partition holds a group: Kafka's
/// `Utils.abs(groupId.hashCode) % partitions`, with Java's `String.hashCode` over UTF-16.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    assert!(
        partitions > 0,
        "__consumer_offsets has at least one partition"
    );
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

/// Room left in a member id for the `-{seed}-{counter}` suffix within i16::MAX bytes.
const MEMBER_ID_CLIENT_PREFIX_BYTES_MAX: usize = i16::MAX as usize - 64;

fn prefix_at_char_boundary(text: &str, bytes_max: usize) -> &str {
    if text.len() <= bytes_max {
        return text;
    }
    let mut end = bytes_max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

pub(crate) fn respond(out: &mut Vec<Output>, handle: RequestHandle, response: impl Into<Response>) {
    out.push(Output::Respond {
        handle,
        response: response.into(),
    });
}

fn join_error(member_id: &str, error_code: i16) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code,
        generation_id: -1,
        protocol_name: Some(String::new()),
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

fn sync_error(error_code: i16) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code,
        ..Default::default()
    }
}

fn heartbeat(error_code: i16) -> HeartbeatResponse {
    HeartbeatResponse {
        error_code,
        ..Default::default()
    }
}

/// Checks a request's member against the group (Kafka's `validateMember`).
/// [`validate_member`], then the generation the member claims (ILLEGAL_GENERATION), as
/// SyncGroup and Heartbeat check them.
fn validate_member_generation(
    group: &ClassicGroup,
    member_id: &str,
    instance_id: Option<&str>,
    generation_id: i32,
) -> i16 {
    match validate_member(group, member_id, instance_id) {
        codes::NONE if generation_id != group.generation => codes::ILLEGAL_GENERATION,
        error => error,
    }
}

fn validate_member(group: &ClassicGroup, member_id: &str, instance_id: Option<&str>) -> i16 {
    if let Some(instance) = instance_id {
        match group.static_member(instance) {
            Some(known) if known == member_id => return codes::NONE,
            Some(_) => return codes::FENCED_INSTANCE_ID,
            None => return codes::UNKNOWN_MEMBER_ID,
        }
    }
    if group.members.contains_key(member_id) {
        codes::NONE
    } else {
        codes::UNKNOWN_MEMBER_ID
    }
}

impl GroupCoordinator {
    /// A coordinator with no groups, ready to answer.
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: BTreeMap::new(),
            member_ids_issued: 0,
            topics: TopicsSnapshot::new(),
            topics_known: false,
            loading: false,
            next_offsets_check_ms: None,
            last_scheduled_ms: None,
        }
    }

    /// A coordinator about to [`replay`](Self::replay) its partitions' records; it answers
    /// COORDINATOR_LOAD_IN_PROGRESS until [`finish_load`](Self::finish_load).
    pub fn loading(config: GroupConfig) -> Self {
        Self {
            loading: true,
            ..Self::new(config)
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    pub fn group(&self, group_id: &str) -> Option<&ClassicGroup> {
        self.groups.get(group_id).map(|e| &e.group)
    }

    /// Committed offsets of a group, keyed by (topic, partition).
    pub fn offsets(&self, group_id: &str) -> Option<&BTreeMap<(String, i32), OffsetCommitValue>> {
        self.groups.get(group_id).map(|e| &e.offsets)
    }

    pub fn group_ids(&self) -> impl Iterator<Item = &String> {
        self.groups.keys()
    }

    /// Panics if any group breaks an invariant (tests call it after every step).
    pub fn assert_invariants(&self) {
        for entry in self.groups.values() {
            entry.group.assert_invariants();
            if let Some(consumer) = &entry.consumer {
                consumer.assert_invariants();
                assert!(
                    entry.group.members.is_empty(),
                    "consumer group with classic members"
                );
            }
        }
    }

    fn generate_member_id(&mut self, client_id: &str) -> String {
        self.member_ids_issued += 1;
        // Request strings are at most i16::MAX bytes (the decoder enforces it), and so must
        // the id be, or the group record could not be encoded: a huge client id is cut.
        let client_id = prefix_at_char_boundary(client_id, MEMBER_ID_CLIENT_PREFIX_BYTES_MAX);
        format!(
            "{client_id}-{:016x}-{:08x}",
            self.config.member_id_seed, self.member_ids_issued
        )
    }

    // ---------------------------------------------------------------- JoinGroup

    pub fn handle_join(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &JoinGroupRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let error = self.validate_join(request);
        if error != codes::NONE {
            respond(&mut out, ctx.handle, join_error(&request.member_id, error));
            return out;
        }
        if !self.groups.contains_key(&request.group_id) {
            if !request.member_id.is_empty() {
                let error = join_error(&request.member_id, codes::UNKNOWN_MEMBER_ID);
                respond(&mut out, ctx.handle, error);
                return out;
            }
            let entry = GroupEntry {
                group: ClassicGroup::new(&request.group_id, now_ms),
                offsets: BTreeMap::new(),
                consumer: None,
            };
            self.groups.insert(request.group_id.clone(), entry);
        }
        self.convert_empty_consumer_group(now_ms, &request.group_id, &mut out);
        if request.member_id.is_empty() {
            self.join_unknown_member(now_ms, ctx, request, &mut out);
        } else {
            self.join_known_member(now_ms, ctx, request, &mut out);
        }
        self.schedule(&mut out);
        out
    }

    /// A classic JoinGroup for an empty KIP-848 group turns it into a classic group: its
    /// records are tombstoned, its offsets stay.
    fn convert_empty_consumer_group(&mut self, now_ms: i64, group_id: &str, out: &mut Vec<Output>) {
        let Some(entry) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some(consumer) = entry.consumer.take() else {
            return;
        };
        entry.group = ClassicGroup::new(group_id, now_ms);
        out.push(persist(group_id, consumer.tombstones()));
    }

    fn validate_join(&self, request: &JoinGroupRequest) -> i16 {
        if self.loading {
            return codes::COORDINATOR_LOAD_IN_PROGRESS;
        }
        if request.group_id.is_empty() {
            return codes::INVALID_GROUP_ID;
        }
        let session = request.session_timeout_ms;
        if session < self.config.session_timeout_min_ms
            || session > self.config.session_timeout_max_ms
        {
            return codes::INVALID_SESSION_TIMEOUT;
        }
        let names: Vec<String> = request.protocols.iter().map(|p| p.name.clone()).collect();
        // group.consumer.migration.policy=disabled: a KIP-848 group with members does not
        // take classic members (an empty one becomes a classic group).
        let consumer_members = self
            .groups
            .get(&request.group_id)
            .and_then(|e| e.consumer.as_ref())
            .is_some_and(|c| !c.members.is_empty());
        if consumer_members {
            return codes::INCONSISTENT_GROUP_PROTOCOL;
        }
        let compatible = match self.groups.get(&request.group_id) {
            Some(entry) => entry
                .group
                .supports_protocols(&request.protocol_type, &names),
            None => !request.protocol_type.is_empty() && !names.is_empty(),
        };
        if !compatible {
            return codes::INCONSISTENT_GROUP_PROTOCOL;
        }
        codes::NONE
    }

    fn join_unknown_member(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &JoinGroupRequest,
        out: &mut Vec<Output>,
    ) {
        let group = &self.groups[&request.group_id].group;
        if let Some(instance) = &request.group_instance_id {
            if let Some(old_id) = group.static_member(instance).cloned() {
                self.replace_static_member(now_ms, ctx, request, &old_id, out);
                return;
            }
        }
        let member_id = self.generate_member_id(&ctx.client_id);
        let group = &mut self.group_mut(&request.group_id);
        // KIP-394: from v4 a dynamic member must come back with the id we hand out, so that
        // a client that times out and retries does not leave a ghost member behind.
        if ctx.api_version >= 4 && request.group_instance_id.is_none() {
            let deadline = now_ms + i64::from(request.session_timeout_ms);
            group.pending_members.insert(member_id.clone(), deadline);
            respond(
                out,
                ctx.handle,
                join_error(&member_id, codes::MEMBER_ID_REQUIRED),
            );
            return;
        }
        self.add_member_and_rebalance(now_ms, ctx, request, member_id, out);
    }

    fn group_mut(&mut self, group_id: &str) -> &mut ClassicGroup {
        &mut self
            .groups
            .get_mut(group_id)
            .expect("caller checked the group exists")
            .group
    }

    fn new_member(
        ctx: &RequestContext,
        request: &JoinGroupRequest,
        member_id: String,
        now_ms: i64,
    ) -> Member {
        let mut member = Member {
            member_id,
            group_instance_id: request.group_instance_id.clone(),
            client_id: ctx.client_id.clone(),
            client_host: ctx.client_host.clone(),
            session_timeout_ms: 0,
            rebalance_timeout_ms: 0,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            join: None,
            sync: None,
            synced: false,
            heartbeat_deadline_ms: now_ms,
        };
        update_member(&mut member, ctx, request, now_ms);
        member
    }

    fn add_member_and_rebalance(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &JoinGroupRequest,
        member_id: String,
        out: &mut Vec<Output>,
    ) {
        let mut member = Self::new_member(ctx, request, member_id.clone(), now_ms);
        member.join = Some(Parked {
            handle: ctx.handle,
            api_version: ctx.api_version,
        });
        let group = self.group_mut(&request.group_id);
        group.pending_members.remove(&member_id);
        if let Some(instance) = &request.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), member_id.clone());
        }
        if group.members.is_empty() {
            group.protocol_type = Some(request.protocol_type.clone());
        }
        group.members.insert(member_id.clone(), member);
        if group.leader.is_none() {
            group.leader = Some(member_id);
        }
        if let Some(initial) = &mut group.initial_join {
            initial.new_member_added = true;
        }
        self.rebalance_or_complete(now_ms, &request.group_id, out);
    }

    /// After a member joined or changed: start a rebalance, or finish the one under way if
    /// everybody is in.
    fn rebalance_or_complete(&mut self, now_ms: i64, group_id: &str, out: &mut Vec<Output>) {
        match self.groups[group_id].group.state {
            GroupState::PreparingRebalance => self.maybe_complete_join(now_ms, group_id, out),
            _ => self.prepare_rebalance(now_ms, group_id, out),
        }
    }

    fn join_known_member(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &JoinGroupRequest,
        out: &mut Vec<Output>,
    ) {
        let group = &self.groups[&request.group_id].group;
        let member_id = request.member_id.clone();
        if group.pending_members.contains_key(&member_id) {
            self.add_member_and_rebalance(now_ms, ctx, request, member_id, out);
            return;
        }
        let error = validate_member(group, &member_id, request.group_instance_id.as_deref());
        if error != codes::NONE {
            respond(out, ctx.handle, join_error(&member_id, error));
            return;
        }
        let member = &group.members[&member_id];
        let unchanged = same_protocols(member, request);
        let is_leader = group.leader.as_deref() == Some(member_id.as_str());
        match group.state {
            GroupState::CompletingRebalance if unchanged => {
                let response = join_response(group, &member_id);
                respond(out, ctx.handle, response);
            }
            GroupState::Stable if unchanged && !is_leader => {
                let response = join_response(group, &member_id);
                respond(out, ctx.handle, response);
            }
            _ => self.park_join(now_ms, ctx, request, &member_id, out),
        }
    }

    /// Updates a member from its JoinGroup and parks the request until the rebalance ends.
    fn park_join(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &JoinGroupRequest,
        member_id: &str,
        out: &mut Vec<Output>,
    ) {
        let group = self.group_mut(&request.group_id);
        let member = group.members.get_mut(member_id).expect("validated member");
        if let Some(old) = member.join.take() {
            // A second JoinGroup from the same member replaces the first; the client has
            // given up on the first one, but it still gets an answer.
            respond(
                out,
                old.handle,
                join_error(member_id, codes::REBALANCE_IN_PROGRESS),
            );
        }
        update_member(member, ctx, request, now_ms);
        member.join = Some(Parked {
            handle: ctx.handle,
            api_version: ctx.api_version,
        });
        self.rebalance_or_complete(now_ms, &request.group_id, out);
    }

    /// KIP-345: a known group.instance.id joining without a member id takes over the old
    /// member's place under a new id; the old id is fenced.
    fn replace_static_member(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &JoinGroupRequest,
        old_id: &str,
        out: &mut Vec<Output>,
    ) {
        let new_id = self.generate_member_id(&ctx.client_id);
        let group = self.group_mut(&request.group_id);
        let mut member = group.members.remove(old_id).expect("static member exists");
        // The old incarnation's parked requests learn that they were replaced.
        if let Some(parked) = member.join.take() {
            respond(
                out,
                parked.handle,
                join_error(old_id, codes::FENCED_INSTANCE_ID),
            );
        }
        if let Some(parked) = member.sync.take() {
            respond(out, parked.handle, sync_error(codes::FENCED_INSTANCE_ID));
        }
        member.member_id = new_id.clone();
        update_member(&mut member, ctx, request, now_ms);
        group.members.insert(new_id.clone(), member);
        let instance = request.group_instance_id.clone().expect("static join");
        group.static_members.insert(instance, new_id.clone());
        let previous_leader = group.leader.clone().unwrap_or_default();
        if group.leader.as_deref() == Some(old_id) {
            group.leader = Some(new_id.clone());
        }
        // Kafka rebalances only if the new protocols change the group's selected protocol.
        if group.state == GroupState::Stable && group.select_protocol() == group.protocol_name {
            // Persisted so that a reload also fences the old id.
            out.push(persist(
                &request.group_id,
                vec![group_metadata_record(group, now_ms)],
            ));
            let response = static_rejoin_response(group, &new_id, ctx.api_version, previous_leader);
            respond(out, ctx.handle, response);
            return;
        }
        self.park_join(now_ms, ctx, request, &new_id, out);
    }

    fn prepare_rebalance(&mut self, now_ms: i64, group_id: &str, out: &mut Vec<Output>) {
        let initial_delay_ms = self.config.initial_rebalance_delay_ms;
        let group = self.group_mut(group_id);
        if group.state == GroupState::CompletingRebalance {
            reset_assignments_with_error(group, now_ms, out);
        }
        group.sync_deadline_ms = None;
        let rebalance_ms = group.rebalance_timeout_max_ms();
        if group.state == GroupState::Empty && initial_delay_ms > 0 {
            let delay_ms = initial_delay_ms.min(rebalance_ms);
            group.initial_join = Some(InitialJoin {
                remaining_ms: (rebalance_ms - delay_ms).max(0),
                new_member_added: false,
            });
            group.join_deadline_ms = Some(now_ms + delay_ms);
        } else {
            group.join_deadline_ms = Some(now_ms + rebalance_ms);
        }
        group.set_state(GroupState::PreparingRebalance, now_ms);
        self.maybe_complete_join(now_ms, group_id, out);
    }

    fn maybe_complete_join(&mut self, now_ms: i64, group_id: &str, out: &mut Vec<Output>) {
        let group = &self.groups[group_id].group;
        if group.state == GroupState::PreparingRebalance
            && group.initial_join.is_none()
            && group.all_members_joined()
        {
            self.complete_join(now_ms, group_id, out);
        }
    }

    /// Ends PreparingRebalance: members that did not rejoin are dropped (static ones are
    /// kept until their session expires, as in Kafka), the generation advances, and every
    /// parked JoinGroup is answered.
    fn complete_join(&mut self, now_ms: i64, group_id: &str, out: &mut Vec<Output>) {
        let not_rejoined: Vec<String> = self.groups[group_id]
            .group
            .members
            .values()
            .filter(|m| m.join.is_none() && !m.is_static())
            .map(|m| m.member_id.clone())
            .collect();
        let group = self.group_mut(group_id);
        for member_id in not_rejoined {
            remove_member_silently(group, &member_id, out);
        }
        group.initial_join = None;
        if !group.members.is_empty() && group.members.values().all(|m| m.join.is_none()) {
            // Only static members that did not rejoin are left: Kafka waits another
            // rebalance timeout rather than start a generation nobody joined.
            group.join_deadline_ms = Some(now_ms + group.rebalance_timeout_max_ms());
            return;
        }
        group.join_deadline_ms = None;
        group.generation += 1;
        if group.members.is_empty() {
            group.protocol_name = None;
            group.leader = None;
            group.set_state(GroupState::Empty, now_ms);
            let record = group_metadata_record(group, now_ms);
            out.push(persist(group_id, vec![record]));
            return;
        }
        group.protocol_name = group.select_protocol();
        let leader_joined = group
            .leader
            .as_ref()
            .and_then(|l| group.members.get(l))
            .is_some_and(|m| m.join.is_some());
        if !leader_joined {
            group.leader = group
                .members
                .values()
                .find(|m| m.join.is_some())
                .or_else(|| group.members.values().next())
                .map(|m| m.member_id.clone());
        }
        group.set_state(GroupState::CompletingRebalance, now_ms);
        group.sync_deadline_ms = Some(now_ms + group.rebalance_timeout_max_ms());
        answer_joins(group, now_ms, out);
    }

    // ---------------------------------------------------------------- SyncGroup

    pub fn handle_sync(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &SyncGroupRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        match self.validate_sync(request) {
            codes::NONE => self.sync_member(now_ms, ctx, request, &mut out),
            error => respond(&mut out, ctx.handle, sync_error(error)),
        }
        self.schedule(&mut out);
        out
    }

    fn validate_sync(&self, request: &SyncGroupRequest) -> i16 {
        if self.loading {
            return codes::COORDINATOR_LOAD_IN_PROGRESS;
        }
        let Some(entry) = self.groups.get(&request.group_id) else {
            return codes::UNKNOWN_MEMBER_ID;
        };
        let group = &entry.group;
        let error = validate_member_generation(
            group,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        );
        if error != codes::NONE {
            return error;
        }
        // As Kafka's isProtocolInconsistent: only against a value the group has (no protocol
        // is selected before the first generation).
        let differs = |asked: &Option<String>, has: &Option<String>| {
            asked
                .as_ref()
                .zip(has.as_ref())
                .is_some_and(|(a, h)| a != h)
        };
        let type_mismatch = differs(&request.protocol_type, &group.protocol_type);
        let name_mismatch = differs(&request.protocol_name, &group.protocol_name);
        if type_mismatch || name_mismatch {
            return codes::INCONSISTENT_GROUP_PROTOCOL;
        }
        codes::NONE
    }

    fn sync_member(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &SyncGroupRequest,
        out: &mut Vec<Output>,
    ) {
        let group = self.group_mut(&request.group_id);
        let member = group
            .members
            .get_mut(&request.member_id)
            .expect("validated");
        member.synced = true;
        member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        match group.state {
            GroupState::PreparingRebalance => {
                respond(out, ctx.handle, sync_error(codes::REBALANCE_IN_PROGRESS));
            }
            GroupState::Stable => {
                let assignment = member.assignment.clone();
                respond(out, ctx.handle, sync_response(group, &assignment));
                clear_sync_deadline_if_all_synced(group);
            }
            GroupState::CompletingRebalance => {
                if let Some(old) = member.sync.replace(Parked {
                    handle: ctx.handle,
                    api_version: ctx.api_version,
                }) {
                    respond(out, old.handle, sync_error(codes::REBALANCE_IN_PROGRESS));
                }
                if group.leader.as_deref() == Some(request.member_id.as_str()) {
                    self.complete_sync(now_ms, request, out);
                }
            }
            GroupState::Empty | GroupState::Dead => {
                respond(out, ctx.handle, sync_error(codes::UNKNOWN_MEMBER_ID));
            }
        }
    }

    /// The leader's SyncGroup: store the assignment (members it left out get an empty one,
    /// as in Kafka), persist the group, become Stable and answer every parked SyncGroup.
    fn complete_sync(&mut self, now_ms: i64, request: &SyncGroupRequest, out: &mut Vec<Output>) {
        let group = self.group_mut(&request.group_id);
        let assigned: BTreeMap<&str, &Bytes> = request
            .assignments
            .iter()
            .map(|a| (a.member_id.as_str(), &a.assignment))
            .collect();
        for member in group.members.values_mut() {
            member.assignment = assigned
                .get(member.member_id.as_str())
                .map(|b| (*b).clone())
                .unwrap_or_default();
        }
        group.set_state(GroupState::Stable, now_ms);
        let record = group_metadata_record(group, now_ms);
        out.push(persist(&request.group_id, vec![record]));
        let group = self.group_mut(&request.group_id);
        let parked: Vec<(Parked, Bytes)> = group
            .members
            .values_mut()
            .filter_map(|m| {
                let parked = m.sync.take()?;
                // Kafka's propagateAssignment restarts the session of each member it answers:
                // it may have waited on the leader for longer than its session.
                m.heartbeat_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
                Some((parked, m.assignment.clone()))
            })
            .collect();
        for (p, assignment) in parked {
            respond(out, p.handle, sync_response(group, &assignment));
        }
        clear_sync_deadline_if_all_synced(group);
    }

    // ---------------------------------------------------------------- Heartbeat

    pub fn handle_heartbeat(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &HeartbeatRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let error = self.heartbeat_member(now_ms, request);
        respond(&mut out, ctx.handle, heartbeat(error));
        self.schedule(&mut out);
        out
    }

    fn heartbeat_member(&mut self, now_ms: i64, request: &HeartbeatRequest) -> i16 {
        if self.loading {
            return codes::COORDINATOR_LOAD_IN_PROGRESS;
        }
        let Some(entry) = self.groups.get_mut(&request.group_id) else {
            return codes::UNKNOWN_MEMBER_ID;
        };
        let group = &mut entry.group;
        let error = validate_member_generation(
            group,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        );
        if error != codes::NONE {
            return error;
        }
        let member = group
            .members
            .get_mut(&request.member_id)
            .expect("validated");
        member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        match group.state {
            // The heartbeat still counts: the member stays alive while it rejoins.
            GroupState::PreparingRebalance => codes::REBALANCE_IN_PROGRESS,
            // Members may heartbeat between their JoinGroup and SyncGroup responses.
            GroupState::CompletingRebalance | GroupState::Stable => codes::NONE,
            GroupState::Empty | GroupState::Dead => codes::UNKNOWN_MEMBER_ID,
        }
    }

    // ---------------------------------------------------------------- LeaveGroup

    pub fn handle_leave(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &LeaveGroupRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let identities = if ctx.api_version >= 3 {
            request.members.clone()
        } else {
            vec![MemberIdentity {
                member_id: request.member_id.clone(),
                ..Default::default()
            }]
        };
        let response = self.leave_members(
            now_ms,
            ctx.api_version,
            &request.group_id,
            &identities,
            &mut out,
        );
        respond(&mut out, ctx.handle, response);
        self.schedule(&mut out);
        out
    }

    fn leave_members(
        &mut self,
        now_ms: i64,
        api_version: i16,
        group_id: &str,
        identities: &[MemberIdentity],
        out: &mut Vec<Output>,
    ) -> LeaveGroupResponse {
        let top_error = if self.loading {
            codes::COORDINATOR_LOAD_IN_PROGRESS
        } else if !self.groups.contains_key(group_id) {
            codes::UNKNOWN_MEMBER_ID
        } else {
            codes::NONE
        };
        if top_error != codes::NONE {
            return leave_response(top_error, Vec::new());
        }
        let mut results = Vec::new();
        for identity in identities {
            let error = self.leave_one(now_ms, group_id, identity, out);
            results.push(MemberResponse {
                member_id: identity.member_id.clone(),
                group_instance_id: identity.group_instance_id.clone(),
                error_code: error,
                ..Default::default()
            });
        }
        if api_version < 3 {
            let error = results.first().map_or(codes::NONE, |r| r.error_code);
            return leave_response(error, Vec::new());
        }
        leave_response(codes::NONE, results)
    }

    fn leave_one(
        &mut self,
        now_ms: i64,
        group_id: &str,
        identity: &MemberIdentity,
        out: &mut Vec<Output>,
    ) -> i16 {
        let group = self.group_mut(group_id);
        let member_id = match (&identity.group_instance_id, identity.member_id.as_str()) {
            (Some(instance), "") => match group.static_member(instance) {
                Some(id) => id.clone(),
                None => return codes::UNKNOWN_MEMBER_ID,
            },
            (instance, id) => {
                if group.pending_members.remove(id).is_some() {
                    self.maybe_complete_join(now_ms, group_id, out);
                    return codes::NONE;
                }
                let error = validate_member(group, id, instance.as_deref());
                if error != codes::NONE {
                    return error;
                }
                id.to_string()
            }
        };
        self.remove_member(now_ms, group_id, &member_id, out);
        codes::NONE
    }

    /// Removes a member (left, expired, fenced by timeout) and moves the group on.
    fn remove_member(
        &mut self,
        now_ms: i64,
        group_id: &str,
        member_id: &str,
        out: &mut Vec<Output>,
    ) {
        let group = self.group_mut(group_id);
        remove_member_silently(group, member_id, out);
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now_ms, group_id, out)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now_ms, group_id, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    // ---------------------------------------------------------------- timers

    /// Fires every timer due at `now_ms`: session expiry, KIP-394 pending member expiry, the
    /// rebalance (join) timeout, the pending-sync timeout, and offset retention.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        let group_ids: Vec<String> = self.groups.keys().cloned().collect();
        for group_id in &group_ids {
            self.expire_pending_members(now_ms, group_id, &mut out);
            self.expire_sessions(now_ms, group_id, &mut out);
            self.fire_join_deadline(now_ms, group_id, &mut out);
            self.fire_sync_deadline(now_ms, group_id, &mut out);
        }
        self.expire_consumer_members(now_ms, &mut out);
        if self.next_offsets_check_ms.is_some_and(|at| at <= now_ms) {
            self.expire_offsets(now_ms, &mut out);
        }
        self.last_scheduled_ms = None;
        self.schedule(&mut out);
        out
    }

    fn expire_pending_members(&mut self, now_ms: i64, group_id: &str, out: &mut Vec<Output>) {
        let group = self.group_mut(group_id);
        let before = group.pending_members.len();
        group
            .pending_members
            .retain(|_, deadline| *deadline > now_ms);
        if group.pending_members.len() != before {
            self.maybe_complete_join(now_ms, group_id, out);
        }
    }

    fn expire_sessions(&mut self, now_ms: i64, group_id: &str, out: &mut Vec<Output>) {
        let expired: Vec<String> = self.groups[group_id]
            .group
            .members
            .values()
            .filter(|m| !m.keeps_alive() && m.heartbeat_deadline_ms <= now_ms)
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in expired {
            self.remove_member(now_ms, group_id, &member_id, out);
        }
    }

    fn fire_join_deadline(&mut self, now_ms: i64, group_id: &str, out: &mut Vec<Output>) {
        let initial_delay_ms = self.config.initial_rebalance_delay_ms;
        let group = self.group_mut(group_id);
        if group.state != GroupState::PreparingRebalance
            || group.join_deadline_ms.is_none_or(|at| at > now_ms)
        {
            return;
        }
        if let Some(initial) = group.initial_join {
            if initial.new_member_added && initial.remaining_ms > 0 {
                let delay_ms = initial_delay_ms.min(initial.remaining_ms);
                group.initial_join = Some(InitialJoin {
                    remaining_ms: initial.remaining_ms - delay_ms,
                    new_member_added: false,
                });
                group.join_deadline_ms = Some(now_ms + delay_ms);
                return;
            }
        }
        self.complete_join(now_ms, group_id, out);
    }

    /// Kafka's pending-sync timeout: members that have not sent SyncGroup within the
    /// rebalance timeout after the JoinGroup responses are removed and the group rebalances.
    fn fire_sync_deadline(&mut self, now_ms: i64, group_id: &str, out: &mut Vec<Output>) {
        let group = self.group_mut(group_id);
        let due = group.sync_deadline_ms.is_some_and(|at| at <= now_ms);
        let syncing = matches!(
            group.state,
            GroupState::CompletingRebalance | GroupState::Stable
        );
        if !due || !syncing {
            return;
        }
        group.sync_deadline_ms = None;
        let unsynced: Vec<String> = group
            .members
            .values()
            .filter(|m| !m.synced)
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in &unsynced {
            remove_member_silently(group, member_id, out);
        }
        self.prepare_rebalance(now_ms, group_id, out);
    }

    /// The earliest time any timer is due.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.groups
            .values()
            .flat_map(|e| {
                let consumer = e
                    .consumer
                    .as_ref()
                    .and_then(ConsumerGroup::next_deadline_ms);
                e.group.next_deadline_ms().into_iter().chain(consumer)
            })
            .chain(self.next_offsets_check_ms)
            .min()
    }

    pub(crate) fn schedule(&mut self, out: &mut Vec<Output>) {
        let next = self.next_deadline_ms();
        if next != self.last_scheduled_ms {
            self.last_scheduled_ms = next;
            if let Some(at_ms) = next {
                out.push(Output::ScheduleTimer { at_ms });
            }
        }
    }

    // ---------------------------------------------------------------- load

    /// Applies one `__consumer_offsets` record read back at load. `value: None` is a
    /// tombstone. Share-group records (key versions 9+) are ignored.
    pub fn replay(&mut self, key: &Bytes, value: Option<&Bytes>) -> Result<(), ReplayError> {
        match records::decode_key(key).map_err(ReplayError::Record)? {
            DecodedKey::Offset(k) => self.replay_offset(k.group, k.topic, k.partition, value),
            DecodedKey::Group(k) => self.replay_group(k.group, value),
            DecodedKey::Other(_) => Ok(()),
            other => self.replay_consumer(&other, value).map(|_| ()),
        }
    }

    fn entry_or_new(&mut self, group_id: &str) -> &mut GroupEntry {
        self.groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupEntry {
                group: ClassicGroup::new(group_id, -1),
                offsets: BTreeMap::new(),
                consumer: None,
            })
    }

    fn replay_offset(
        &mut self,
        group_id: String,
        topic: String,
        partition: i32,
        value: Option<&Bytes>,
    ) -> Result<(), ReplayError> {
        match value {
            Some(bytes) => {
                let value = records::decode_offset_value(bytes).map_err(ReplayError::Record)?;
                let entry = self.entry_or_new(&group_id);
                entry.offsets.insert((topic, partition), value);
            }
            None => {
                if let Some(entry) = self.groups.get_mut(&group_id) {
                    entry.offsets.remove(&(topic, partition));
                }
            }
        }
        Ok(())
    }

    fn replay_group(&mut self, group_id: String, value: Option<&Bytes>) -> Result<(), ReplayError> {
        let Some(bytes) = value else {
            // The group's metadata is gone; its offsets are separate keys and stay until
            // their own tombstones.
            let keep = self
                .groups
                .get(&group_id)
                .is_some_and(|e| !e.offsets.is_empty() || e.consumer.is_some());
            if keep {
                self.entry_or_new(&group_id).group = ClassicGroup::new(&group_id, -1);
            } else {
                self.groups.remove(&group_id);
            }
            return Ok(());
        };
        let value = records::decode_group_value(bytes).map_err(ReplayError::Record)?;
        let entry = self.entry_or_new(&group_id);
        entry.group = group_from_record(&group_id, value);
        if !entry.group.members.is_empty() {
            // A classic record after the group's KIP-848 records: it became classic.
            entry.consumer = None;
        }
        Ok(())
    }

    /// Ends loading: members rebuilt from records get a full session from `now_ms`, as Kafka
    /// schedules their heartbeats on load.
    pub fn finish_load(&mut self, now_ms: i64) -> Vec<Output> {
        self.loading = false;
        let mut out = Vec::new();
        self.finish_consumer_load(now_ms, &mut out);
        for entry in self.groups.values_mut() {
            for member in entry.group.members.values_mut() {
                member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
            }
        }
        if self.groups.values().any(|e| !e.offsets.is_empty()) {
            self.next_offsets_check_ms =
                Some(now_ms + self.config.offsets_retention_check_interval_ms);
        }
        self.schedule(&mut out);
        out
    }
}

fn update_member(
    member: &mut Member,
    ctx: &RequestContext,
    request: &JoinGroupRequest,
    now_ms: i64,
) {
    member.client_id = ctx.client_id.clone();
    member.client_host = ctx.client_host.clone();
    member.session_timeout_ms = request.session_timeout_ms;
    // JoinGroup v0 has no rebalance timeout: Kafka uses the session timeout.
    member.rebalance_timeout_ms = if ctx.api_version == 0 || request.rebalance_timeout_ms < 0 {
        request.session_timeout_ms
    } else {
        request.rebalance_timeout_ms
    };
    member.protocols = request
        .protocols
        .iter()
        .map(|p| (p.name.clone(), p.metadata.clone()))
        .collect();
    member.heartbeat_deadline_ms = now_ms + i64::from(request.session_timeout_ms);
}

fn same_protocols(member: &Member, request: &JoinGroupRequest) -> bool {
    member.protocols.len() == request.protocols.len()
        && member
            .protocols
            .iter()
            .zip(&request.protocols)
            .all(|((name, metadata), p)| *name == p.name && *metadata == p.metadata)
}

/// Removes a member without moving the group on; its parked requests are answered
/// UNKNOWN_MEMBER_ID.
fn remove_member_silently(group: &mut ClassicGroup, member_id: &str, out: &mut Vec<Output>) {
    let Some(member) = group.members.remove(member_id) else {
        return;
    };
    if let Some(instance) = &member.group_instance_id {
        if group.static_members.get(instance).map(String::as_str) == Some(member_id) {
            group.static_members.remove(instance);
        }
    }
    if let Some(parked) = member.join {
        respond(
            out,
            parked.handle,
            join_error(member_id, codes::UNKNOWN_MEMBER_ID),
        );
    }
    if let Some(parked) = member.sync {
        respond(out, parked.handle, sync_error(codes::UNKNOWN_MEMBER_ID));
    }
    if group.leader.as_deref() == Some(member_id) {
        group.leader = group
            .members
            .values()
            .find(|m| m.join.is_some())
            .or_else(|| group.members.values().next())
            .map(|m| m.member_id.clone());
    }
}

/// Leaving CompletingRebalance: parked SyncGroups learn a new rebalance started and the
/// assignments of the abandoned generation are dropped.
/// Those answered get a new session, as in Kafka's propagateAssignment.
fn reset_assignments_with_error(group: &mut ClassicGroup, now_ms: i64, out: &mut Vec<Output>) {
    for member in group.members.values_mut() {
        member.assignment = Bytes::new();
        if let Some(parked) = member.sync.take() {
            member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
            respond(out, parked.handle, sync_error(codes::REBALANCE_IN_PROGRESS));
        }
    }
}

fn clear_sync_deadline_if_all_synced(group: &mut ClassicGroup) {
    if group.members.values().all(|m| m.synced) {
        group.sync_deadline_ms = None;
    }
}

fn answer_joins(group: &mut ClassicGroup, now_ms: i64, out: &mut Vec<Output>) {
    let joined: Vec<(String, Parked)> = group
        .members
        .values()
        .filter_map(|m| m.join.map(|p| (m.member_id.clone(), p)))
        .collect();
    for member in group.members.values_mut() {
        member.join = None;
        member.synced = false;
        member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
    }
    for (member_id, parked) in joined {
        let response = join_response(group, &member_id);
        respond(out, parked.handle, response);
    }
}

/// The answer to a static member that replaced its old id in a Stable group. From v9 the
/// leader gets the members with `skip_assignment` (KIP-814) so it keeps the assignment;
/// before v9 nobody gets members and the leader is named by its previous id, so a restarted
/// leader does not compute a new assignment nobody would receive (Kafka does the same).
fn static_rejoin_response(
    group: &ClassicGroup,
    member_id: &str,
    api_version: i16,
    previous_leader: String,
) -> JoinGroupResponse {
    if api_version >= 9 {
        let is_leader = group.leader.as_deref() == Some(member_id);
        return JoinGroupResponse {
            skip_assignment: is_leader,
            ..join_response(group, member_id)
        };
    }
    JoinGroupResponse {
        leader: previous_leader,
        members: Vec::new(),
        ..join_response(group, member_id)
    }
}

/// The JoinGroup answer for `member_id` in the current generation; the leader gets the
/// members' metadata for the selected protocol.
fn join_response(group: &ClassicGroup, member_id: &str) -> JoinGroupResponse {
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let is_leader = group.leader.as_deref() == Some(member_id);
    let members = if is_leader {
        group
            .members
            .values()
            .map(|m| JoinGroupResponseMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata_for(&protocol).unwrap_or_default(),
                ..Default::default()
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinGroupResponse {
        error_code: codes::NONE,
        generation_id: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol_name: Some(protocol),
        leader: group.leader.clone().unwrap_or_default(),
        member_id: member_id.to_string(),
        members,
        ..Default::default()
    }
}

fn sync_response(group: &ClassicGroup, assignment: &Bytes) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: codes::NONE,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        assignment: assignment.clone(),
        ..Default::default()
    }
}

fn leave_response(error_code: i16, members: Vec<MemberResponse>) -> LeaveGroupResponse {
    LeaveGroupResponse {
        error_code,
        members,
        ..Default::default()
    }
}

pub(crate) fn persist(group_id: &str, records: Vec<Record>) -> Output {
    Output::Persist {
        group_id: group_id.to_string(),
        records,
    }
}

pub(crate) fn group_metadata_record(group: &ClassicGroup, now_ms: i64) -> Record {
    let protocol = group.protocol_name.as_deref();
    let value = GroupMetadataValue {
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        generation: group.generation,
        protocol: group.protocol_name.clone(),
        leader: group.leader.clone(),
        current_state_timestamp: now_ms,
        members: group
            .members
            .values()
            .map(|m| records::member_metadata(m, protocol))
            .collect(),
        unknown_tagged_fields: Vec::new(),
    };
    Record {
        key: records::group_key(&group.group_id),
        value: Some(records::group_value(&value)),
    }
}

/// A group as loaded: Stable with its members if it has any, else Empty. Only the selected
/// protocol's metadata was stored, so that is each member's only protocol.
fn group_from_record(group_id: &str, value: GroupMetadataValue) -> ClassicGroup {
    let mut group = ClassicGroup::new(group_id, value.current_state_timestamp);
    group.generation = value.generation;
    group.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
    let protocol = value.protocol.filter(|p| !p.is_empty());
    for m in value.members {
        if let Some(instance) = &m.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), m.member_id.clone());
        }
        let member = Member {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
            session_timeout_ms: m.session_timeout,
            rebalance_timeout_ms: if m.rebalance_timeout < 0 {
                m.session_timeout
            } else {
                m.rebalance_timeout
            },
            protocols: protocol
                .iter()
                .map(|p| (p.clone(), m.subscription.clone()))
                .collect(),
            assignment: m.assignment,
            join: None,
            sync: None,
            synced: true,
            heartbeat_deadline_ms: i64::MAX,
        };
        group.members.insert(m.member_id, member);
    }
    if group.members.is_empty() || protocol.is_none() {
        group.members.clear();
        group.static_members.clear();
        return group;
    }
    group.protocol_name = protocol;
    group.leader = value
        .leader
        .filter(|l| group.members.contains_key(l))
        .or_else(|| group.members.keys().next().cloned());
    group.state = GroupState::Stable;
    group
}
