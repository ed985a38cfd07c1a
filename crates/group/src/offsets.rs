//! Committed offsets (OffsetCommit, OffsetFetch, OffsetDelete, retention) and the admin
//! requests over groups (ListGroups, DescribeGroups, DeleteGroups).

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use freshet_protocol::internal_records::OffsetCommitValue;
use freshet_protocol::messages::delete_groups_response::DeletableGroupResult;
use freshet_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use freshet_protocol::messages::list_groups_response::ListedGroup;
use freshet_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use freshet_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use freshet_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use freshet_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
};

use crate::classic::{ClassicGroup, GroupState};
use crate::codes;
use crate::consumer::{ConsumerGroup, ConsumerMember};
use crate::coordinator::{group_metadata_record, persist, respond, GroupCoordinator, GroupEntry};
use crate::records::{self, Record};
use crate::{Output, RequestContext};

/// Offsets of one group keyed by (topic, partition).
type OffsetMap = BTreeMap<(String, i32), OffsetCommitValue>;

/// What OffsetFetch reports for a partition with no committed offset.
const NO_OFFSET: i64 = -1;
const NO_LEADER_EPOCH: i32 = -1;

/// The group types ListGroups v5 reports.
const CLASSIC_GROUP_TYPE: &str = "classic";
const CONSUMER_GROUP_TYPE: &str = "consumer";
/// The protocol type ListGroups reports for KIP-848 groups (as Kafka does).
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

impl GroupCoordinator {
    // ---------------------------------------------------------------- OffsetCommit

    pub fn handle_offset_commit(
        &mut self,
        now_ms: i64,
        ctx: &RequestContext,
        request: &OffsetCommitRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let since_epoch = self.commit_since_older_epoch(ctx.api_version, request);
        let error = match since_epoch {
            Some(_) => codes::NONE,
            None => self.validate_commit(now_ms, ctx.api_version, request),
        };
        let mut records = Vec::new();
        let topics = request
            .topics
            .iter()
            .map(|topic| OffsetCommitResponseTopic {
                name: topic.name.clone(),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let code = if error != codes::NONE {
                            error
                        } else if since_epoch.is_some_and(|epoch| {
                            !self.owned_since(request, &topic.name, p.partition_index, epoch)
                        }) {
                            codes::STALE_MEMBER_EPOCH
                        } else {
                            self.commit_partition(now_ms, request, &topic.name, p, &mut records)
                        };
                        OffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code: code,
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        if !records.is_empty() {
            out.push(persist(&request.group_id, records));
            self.next_offsets_check_ms
                .get_or_insert(now_ms + self.config.offsets_retention_check_interval_ms);
        }
        let response = OffsetCommitResponse {
            topics,
            ..Default::default()
        };
        respond(&mut out, ctx.handle, response);
        self.schedule(&mut out);
        out
    }

    /// KIP-1251: a KIP-848 member that commits with an epoch older than its current one
    /// (its epoch moved on while the commit was in flight) is checked partition by
    /// partition instead of being refused as a whole. Returns that older epoch, or `None`
    /// when the strict rules of [`validate_commit`](Self::validate_commit) apply.
    fn commit_since_older_epoch(
        &self,
        api_version: i16,
        request: &OffsetCommitRequest,
    ) -> Option<i32> {
        let epoch = request.generation_id_or_member_epoch;
        let group = self.groups.get(&request.group_id)?.consumer.as_ref()?;
        let member = group.members.get(&request.member_id)?;
        let older = !self.loading && api_version >= 9 && epoch >= 0 && epoch < member.member_epoch;
        older.then_some(epoch)
    }

    /// Whether the committing member has owned the partition without a break since
    /// `epoch` (KIP-1251's assignment epoch <= client epoch <= member epoch).
    fn owned_since(
        &self,
        request: &OffsetCommitRequest,
        topic: &str,
        partition: i32,
        epoch: i32,
    ) -> bool {
        let member = self.groups[&request.group_id]
            .consumer
            .as_ref()
            .and_then(|group| group.members.get(&request.member_id))
            .expect("checked by commit_since_older_epoch");
        self.topics
            .get(topic)
            .and_then(|meta| member.owned_since(meta.id, partition))
            .is_some_and(|since| since <= epoch)
    }

    /// Kafka's classic `validateOffsetCommit`. A commit with generation -1 and no member is
    /// a simple (standalone) commit, allowed only while the group has no members; the group
    /// is created Empty if needed.
    fn validate_commit(
        &mut self,
        now_ms: i64,
        api_version: i16,
        request: &OffsetCommitRequest,
    ) -> i16 {
        if self.loading {
            return codes::COORDINATOR_LOAD_IN_PROGRESS;
        }
        if request.group_id.is_empty() {
            return codes::INVALID_GROUP_ID;
        }
        let generation = request.generation_id_or_member_epoch;
        let Some(entry) = self.groups.get_mut(&request.group_id) else {
            if generation >= 0 {
                return if api_version >= 9 {
                    codes::GROUP_ID_NOT_FOUND
                } else {
                    codes::ILLEGAL_GENERATION
                };
            }
            let entry = GroupEntry {
                group: ClassicGroup::new(&request.group_id, now_ms),
                offsets: BTreeMap::new(),
                consumer: None,
            };
            self.groups.insert(request.group_id.clone(), entry);
            return codes::NONE;
        };
        if let Some(consumer) = &entry.consumer {
            return validate_consumer_commit(consumer, api_version, request);
        }
        let group = &mut entry.group;
        if generation < 0 && group.state == GroupState::Empty {
            // Admin clients and standalone consumers commit into an empty group whatever
            // member id they send.
            return codes::NONE;
        }
        let member_commit =
            generation >= 0 || !request.member_id.is_empty() || request.group_instance_id.is_some();
        if member_commit {
            let error = member_error(
                group,
                &request.member_id,
                request.group_instance_id.as_deref(),
            );
            if error != codes::NONE {
                return error;
            }
            if generation != group.generation {
                return codes::ILLEGAL_GENERATION;
            }
            // A commit is a sign of life, as in Kafka.
            let member = group
                .members
                .get_mut(&request.member_id)
                .expect("validated");
            member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        } else if group.state != GroupState::Empty {
            return codes::UNKNOWN_MEMBER_ID;
        }
        if group.state == GroupState::CompletingRebalance {
            return codes::REBALANCE_IN_PROGRESS;
        }
        codes::NONE
    }

    fn commit_partition(
        &mut self,
        now_ms: i64,
        request: &OffsetCommitRequest,
        topic: &str,
        partition: &freshet_protocol::messages::offset_commit_request::OffsetCommitRequestPartition,
        records: &mut Vec<Record>,
    ) -> i16 {
        let metadata = partition.committed_metadata.clone().unwrap_or_default();
        if metadata.len() > self.config.offset_metadata_bytes_max {
            return codes::OFFSET_METADATA_TOO_LARGE;
        }
        // OffsetCommit v2-v4 may carry a retention time; only then is an expire timestamp
        // stored (value v1), otherwise the broker's retention applies.
        let expire_timestamp = if request.retention_time_ms > 0 {
            now_ms.saturating_add(request.retention_time_ms)
        } else {
            -1
        };
        let value = OffsetCommitValue {
            offset: partition.committed_offset,
            leader_epoch: partition.committed_leader_epoch,
            metadata,
            commit_timestamp: now_ms,
            expire_timestamp,
            unknown_tagged_fields: Vec::new(),
        };
        records.push(Record {
            key: records::offset_key(&request.group_id, topic, partition.partition_index),
            value: Some(records::offset_value(&value)),
        });
        let entry = self.groups.get_mut(&request.group_id).expect("validated");
        entry
            .offsets
            .insert((topic.to_string(), partition.partition_index), value);
        codes::NONE
    }

    // ---------------------------------------------------------------- OffsetFetch

    /// OffsetFetch, one group (v0-v7) or a batch (v8+). `require_stable` is accepted: there
    /// are no pending transactional offsets yet, so every offset is stable.
    pub fn handle_offset_fetch(
        &self,
        ctx: &RequestContext,
        request: &OffsetFetchRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let response = if ctx.api_version >= 8 {
            let groups = request
                .groups
                .iter()
                .map(|g| {
                    let wanted = g.topics.as_ref().map(|ts| {
                        ts.iter()
                            .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                            .collect()
                    });
                    let member = g.member_id.as_deref().map(|id| (id, g.member_epoch));
                    let error = self.validate_consumer_fetch(&g.group_id, member, g.member_epoch);
                    if error != codes::NONE {
                        return OffsetFetchResponseGroup {
                            group_id: g.group_id.clone(),
                            error_code: error,
                            ..Default::default()
                        };
                    }
                    self.fetch_group(&g.group_id, wanted)
                })
                .collect();
            OffsetFetchResponse {
                groups,
                ..Default::default()
            }
        } else {
            let wanted = request.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                    .collect()
            });
            legacy_fetch_response(self.fetch_group(&request.group_id, wanted))
        };
        respond(&mut out, ctx.handle, response);
        out
    }

    /// OffsetFetch v9 from a KIP-848 member: it must exist and send its current epoch
    /// (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH). Without a member id (admin) anything goes.
    fn validate_consumer_fetch(
        &self,
        group_id: &str,
        member: Option<(&str, i32)>,
        member_epoch: i32,
    ) -> i16 {
        let Some(group) = self.groups.get(group_id).and_then(|e| e.consumer.as_ref()) else {
            return codes::NONE;
        };
        if self.loading || (member.is_none() && member_epoch < 0) {
            return codes::NONE;
        }
        let Some(found) = member.and_then(|(id, _)| group.members.get(id)) else {
            return codes::UNKNOWN_MEMBER_ID;
        };
        if found.member_epoch != member_epoch {
            return codes::STALE_MEMBER_EPOCH;
        }
        codes::NONE
    }

    fn fetch_group(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> OffsetFetchResponseGroup {
        if self.loading {
            return OffsetFetchResponseGroup {
                group_id: group_id.to_string(),
                error_code: codes::COORDINATOR_LOAD_IN_PROGRESS,
                ..Default::default()
            };
        }
        let empty = OffsetMap::new();
        let offsets = self.groups.get(group_id).map_or(&empty, |e| &e.offsets);
        let wanted = wanted.unwrap_or_else(|| all_partitions(offsets));
        let topics = wanted
            .into_iter()
            .map(|(name, partitions)| OffsetFetchResponseTopics {
                partitions: partitions
                    .into_iter()
                    .map(|p| fetched_partition(offsets.get(&(name.clone(), p)), p))
                    .collect(),
                name,
                ..Default::default()
            })
            .collect();
        OffsetFetchResponseGroup {
            group_id: group_id.to_string(),
            topics,
            ..Default::default()
        }
    }

    // ---------------------------------------------------------------- OffsetDelete

    /// OffsetDelete (KIP-496): allowed for an empty group, or for topics no member of a
    /// `consumer` group subscribes to.
    pub fn handle_offset_delete(
        &mut self,
        ctx: &RequestContext,
        request: &OffsetDeleteRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let response = self.delete_offsets(request, &mut out);
        respond(&mut out, ctx.handle, response);
        out
    }

    fn delete_offsets(
        &mut self,
        request: &OffsetDeleteRequest,
        out: &mut Vec<Output>,
    ) -> OffsetDeleteResponse {
        let top_error = match self.groups.get(&request.group_id) {
            _ if self.loading => codes::COORDINATOR_LOAD_IN_PROGRESS,
            None => codes::GROUP_ID_NOT_FOUND,
            Some(e)
                if e.consumer.is_none()
                    && e.group.state != GroupState::Empty
                    && e.group.protocol_type.as_deref() != Some("consumer") =>
            {
                codes::NON_EMPTY_GROUP
            }
            Some(_) => codes::NONE,
        };
        if top_error != codes::NONE {
            return OffsetDeleteResponse {
                error_code: top_error,
                ..Default::default()
            };
        }
        let entry = self.groups.get_mut(&request.group_id).expect("checked");
        let consumer_members: Option<Vec<ConsumerMember>> = entry
            .consumer
            .as_ref()
            .map(|c| c.members.values().cloned().collect());
        let subscribed = subscribed_topics(&entry.group);
        let mut records = Vec::new();
        let topics = request
            .topics
            .iter()
            .map(|topic| {
                let in_use = match &consumer_members {
                    Some(members) => members.iter().any(|m| m.subscribes_to(&topic.name)),
                    None => {
                        subscribed.as_ref().is_none_or(|s| s.contains(&topic.name))
                            && entry.group.state != GroupState::Empty
                    }
                };
                OffsetDeleteResponseTopic {
                    name: topic.name.clone(),
                    partitions: topic
                        .partitions
                        .iter()
                        .map(|p| {
                            let error_code = if in_use {
                                codes::GROUP_SUBSCRIBED_TO_TOPIC
                            } else {
                                let key = (topic.name.clone(), p.partition_index);
                                if entry.offsets.remove(&key).is_some() {
                                    records.push(offset_tombstone(&request.group_id, &key));
                                }
                                codes::NONE
                            };
                            OffsetDeleteResponsePartition {
                                partition_index: p.partition_index,
                                error_code,
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        if !records.is_empty() {
            out.push(persist(&request.group_id, records));
        }
        OffsetDeleteResponse {
            topics,
            ..Default::default()
        }
    }

    // ---------------------------------------------------------------- retention

    /// Drops the offsets of empty groups older than `offsets.retention.minutes`, then the
    /// empty groups left with no offsets (Kafka's `cleanupGroupMetadata`).
    pub(crate) fn expire_offsets(&mut self, now_ms: i64, out: &mut Vec<Output>) {
        let retention_ms = self.config.offsets_retention_ms;
        let mut dead = Vec::new();
        for (group_id, entry) in &mut self.groups {
            if !entry.is_empty() {
                continue;
            }
            let mut records = expire_group_offsets(group_id, entry, now_ms, retention_ms);
            // A group waiting for a KIP-394 member to come back is not dead yet.
            if entry.offsets.is_empty() && entry.group.pending_members.is_empty() {
                match &entry.consumer {
                    Some(consumer) => records.extend(consumer.tombstones()),
                    None => records.push(group_tombstone(group_id)),
                }
                dead.push(group_id.clone());
            }
            if !records.is_empty() {
                out.push(persist(group_id, records));
            }
        }
        for group_id in dead {
            self.groups.remove(&group_id);
        }
        let any_offsets = self.groups.values().any(|e| !e.offsets.is_empty());
        self.next_offsets_check_ms =
            any_offsets.then_some(now_ms + self.config.offsets_retention_check_interval_ms);
    }

    // ---------------------------------------------------------------- admin

    /// ListGroups with the v4 state filter (case-insensitive) and the v5 type filter.
    pub fn handle_list_groups(
        &self,
        ctx: &RequestContext,
        request: &ListGroupsRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let state_ok = |s: GroupState| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(s.name()))
        };
        let type_ok = request.types_filter.is_empty()
            || request
                .types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case(CLASSIC_GROUP_TYPE));
        let wants = |name: &str, type_name: &str| {
            let state_ok = request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(name));
            let type_ok = request.types_filter.is_empty()
                || request
                    .types_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(type_name));
            state_ok && type_ok
        };
        let groups = self
            .groups
            .values()
            .filter_map(|e| match &e.consumer {
                Some(c) => {
                    let state = c.state().name();
                    wants(state, CONSUMER_GROUP_TYPE).then(|| ListedGroup {
                        group_id: c.group_id.clone(),
                        protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
                        group_state: state.to_string(),
                        group_type: CONSUMER_GROUP_TYPE.to_string(),
                        ..Default::default()
                    })
                }
                None => (type_ok && state_ok(e.group.state)).then(|| ListedGroup {
                    group_id: e.group.group_id.clone(),
                    protocol_type: e.group.protocol_type.clone().unwrap_or_default(),
                    group_state: e.group.state.name().to_string(),
                    group_type: CLASSIC_GROUP_TYPE.to_string(),
                    ..Default::default()
                }),
            })
            .collect();
        let error_code = if self.loading {
            codes::COORDINATOR_LOAD_IN_PROGRESS
        } else {
            codes::NONE
        };
        let response = ListGroupsResponse {
            error_code,
            groups,
            ..Default::default()
        };
        respond(&mut out, ctx.handle, response);
        out
    }

    pub fn handle_describe_groups(
        &self,
        ctx: &RequestContext,
        request: &DescribeGroupsRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let groups = request.groups.iter().map(|id| self.describe(id)).collect();
        let response = DescribeGroupsResponse {
            groups,
            ..Default::default()
        };
        respond(&mut out, ctx.handle, response);
        out
    }

    /// Kafka reports an unknown group as Dead with no error; member metadata and assignments
    /// are shown only while Stable.
    fn describe(&self, group_id: &str) -> DescribedGroup {
        let mut described = DescribedGroup {
            group_id: group_id.to_string(),
            group_state: GroupState::Dead.name().to_string(),
            ..Default::default()
        };
        if self.loading {
            described.error_code = codes::COORDINATOR_LOAD_IN_PROGRESS;
            return described;
        }
        let Some(entry) = self.groups.get(group_id) else {
            return described;
        };
        if entry.consumer.is_some() {
            // DescribeGroups (v0-v5) knows classic groups only: Kafka answers a KIP-848
            // group as it answers an unknown one (Dead, no error); ConsumerGroupDescribe
            // describes it.
            return described;
        }
        let group = &entry.group;
        let stable = group.state == GroupState::Stable;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        described.group_state = group.state.name().to_string();
        described.protocol_type = group.protocol_type.clone().unwrap_or_default();
        described.protocol_data = if stable {
            protocol.clone()
        } else {
            String::new()
        };
        described.members = group
            .members
            .values()
            .map(|m| DescribedGroupMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                member_metadata: if stable {
                    m.metadata_for(&protocol).unwrap_or_default()
                } else {
                    Bytes::new()
                },
                member_assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
                ..Default::default()
            })
            .collect();
        described
    }

    /// DeleteGroups: only an Empty group may go; its offsets and metadata are tombstoned.
    pub fn handle_delete_groups(
        &mut self,
        ctx: &RequestContext,
        request: &DeleteGroupsRequest,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let results = request
            .groups_names
            .iter()
            .map(|id| DeletableGroupResult {
                group_id: id.clone(),
                error_code: self.delete_group(id, &mut out),
                ..Default::default()
            })
            .collect();
        let response = DeleteGroupsResponse {
            results,
            ..Default::default()
        };
        respond(&mut out, ctx.handle, response);
        self.schedule(&mut out);
        out
    }

    fn delete_group(&mut self, group_id: &str, out: &mut Vec<Output>) -> i16 {
        if self.loading {
            return codes::COORDINATOR_LOAD_IN_PROGRESS;
        }
        match self.groups.get(group_id) {
            None => codes::GROUP_ID_NOT_FOUND,
            Some(e) if !e.is_empty() => codes::NON_EMPTY_GROUP,
            Some(e) => {
                let mut records: Vec<Record> = e
                    .offsets
                    .keys()
                    .map(|k| offset_tombstone(group_id, k))
                    .collect();
                match &e.consumer {
                    Some(consumer) => records.extend(consumer.tombstones()),
                    None => records.push(group_tombstone(group_id)),
                }
                out.push(persist(group_id, records));
                self.groups.remove(group_id);
                codes::NONE
            }
        }
    }

    /// The group's current metadata as a record, for a broker that compacts or snapshots.
    pub fn group_record(&self, group_id: &str, now_ms: i64) -> Option<Record> {
        self.groups
            .get(group_id)
            .map(|e| group_metadata_record(&e.group, now_ms))
    }
}

/// Kafka's `ConsumerGroup.validateOffsetCommit`: an admin or standalone commit (epoch < 0)
/// only into a group without members; otherwise the member must exist, use OffsetCommit
/// v9+, and send its current member epoch.
fn validate_consumer_commit(
    group: &ConsumerGroup,
    api_version: i16,
    request: &OffsetCommitRequest,
) -> i16 {
    let epoch = request.generation_id_or_member_epoch;
    if epoch < 0 && group.members.is_empty() {
        return codes::NONE;
    }
    let Some(member) = group.members.get(&request.member_id) else {
        return codes::UNKNOWN_MEMBER_ID;
    };
    if api_version < 9 {
        return codes::UNSUPPORTED_VERSION;
    }
    if epoch != member.member_epoch {
        return codes::STALE_MEMBER_EPOCH;
    }
    codes::NONE
}

fn member_error(group: &ClassicGroup, member_id: &str, instance_id: Option<&str>) -> i16 {
    if let Some(instance) = instance_id {
        return match group.static_member(instance) {
            Some(known) if known == member_id => codes::NONE,
            Some(_) => codes::FENCED_INSTANCE_ID,
            None => codes::UNKNOWN_MEMBER_ID,
        };
    }
    if group.members.contains_key(member_id) {
        codes::NONE
    } else {
        codes::UNKNOWN_MEMBER_ID
    }
}

fn all_partitions(offsets: &OffsetMap) -> Vec<(String, Vec<i32>)> {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in offsets.keys() {
        by_topic.entry(topic.clone()).or_default().push(*partition);
    }
    by_topic.into_iter().collect()
}

fn fetched_partition(
    value: Option<&OffsetCommitValue>,
    partition: i32,
) -> OffsetFetchResponsePartitions {
    match value {
        Some(v) => OffsetFetchResponsePartitions {
            partition_index: partition,
            committed_offset: v.offset,
            committed_leader_epoch: v.leader_epoch,
            metadata: Some(v.metadata.clone()),
            error_code: codes::NONE,
            ..Default::default()
        },
        None => OffsetFetchResponsePartitions {
            partition_index: partition,
            committed_offset: NO_OFFSET,
            committed_leader_epoch: NO_LEADER_EPOCH,
            metadata: Some(String::new()),
            error_code: codes::NONE,
            ..Default::default()
        },
    }
}

/// The v0-v7 shape: one group, its error at the top level.
fn legacy_fetch_response(group: OffsetFetchResponseGroup) -> OffsetFetchResponse {
    let topics = group
        .topics
        .into_iter()
        .map(|t| OffsetFetchResponseTopic {
            name: t.name,
            partitions: t
                .partitions
                .into_iter()
                .map(|p| OffsetFetchResponsePartition {
                    partition_index: p.partition_index,
                    committed_offset: p.committed_offset,
                    committed_leader_epoch: p.committed_leader_epoch,
                    metadata: p.metadata,
                    error_code: p.error_code,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    OffsetFetchResponse {
        topics,
        error_code: group.error_code,
        ..Default::default()
    }
}

/// Kafka's rule: an empty group's offsets count from when it became empty (a standalone
/// group, which never had members, from each commit); an explicit expire timestamp
/// (OffsetCommit v2-v4 retention) wins.
fn expire_group_offsets(
    group_id: &str,
    entry: &mut GroupEntry,
    now_ms: i64,
    retention_ms: i64,
) -> Vec<Record> {
    let became_empty_ms = match &entry.consumer {
        Some(consumer) => Some(consumer.state_timestamp_ms),
        None => entry
            .group
            .protocol_type
            .as_ref()
            .map(|_| entry.group.state_timestamp_ms),
    };
    let expired: Vec<(String, i32)> = entry
        .offsets
        .iter()
        .filter(|(_, v)| {
            if v.expire_timestamp >= 0 {
                return now_ms >= v.expire_timestamp;
            }
            // Deliberately the later of the two, so that a commit into a long-empty group
            // is still kept for the full retention (Kafka would use the empty time alone).
            let base_ms = became_empty_ms.map_or(v.commit_timestamp, |t| t.max(v.commit_timestamp));
            now_ms.saturating_sub(base_ms) >= retention_ms
        })
        .map(|(k, _)| k.clone())
        .collect();
    expired
        .iter()
        .map(|key| {
            entry.offsets.remove(key);
            offset_tombstone(group_id, key)
        })
        .collect()
}

fn offset_tombstone(group_id: &str, key: &(String, i32)) -> Record {
    Record {
        key: records::offset_key(group_id, &key.0, key.1),
        value: None,
    }
}

fn group_tombstone(group_id: &str) -> Record {
    Record {
        key: records::group_key(group_id),
        value: None,
    }
}

/// Topics the members of a `consumer` group subscribe to, read from their
/// ConsumerProtocolSubscription (i16 version, then an array of i16-length strings). `None`
/// when a subscription does not parse: then every topic is treated as subscribed.
fn subscribed_topics(group: &ClassicGroup) -> Option<Vec<String>> {
    let protocol = group.protocol_name.as_deref()?;
    let mut topics = Vec::new();
    for member in group.members.values() {
        topics.extend(parse_subscription(member.metadata_for(protocol)?)?);
    }
    Some(topics)
}

fn parse_subscription(mut bytes: Bytes) -> Option<Vec<String>> {
    if bytes.remaining() < 6 {
        return None;
    }
    let _version = bytes.get_i16();
    let count = usize::try_from(bytes.get_i32()).ok()?;
    let mut topics = Vec::new();
    for _ in 0..count {
        if bytes.remaining() < 2 {
            return None;
        }
        let len = usize::try_from(bytes.get_i16()).ok()?;
        if bytes.remaining() < len {
            return None;
        }
        let name = bytes.split_to(len);
        topics.push(String::from_utf8(name.to_vec()).ok()?);
    }
    Some(topics)
}
