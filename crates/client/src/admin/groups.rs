//! Consumer-group administration: list, describe, delete groups; fetch, alter and delete
//! their committed offsets; and the log offsets (start, end, by timestamp) that resets and
//! lag need.
//!
//! Group requests go to the group's coordinator, found with FindCoordinator before every
//! attempt, so NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE and COORDINATOR_LOAD_IN_PROGRESS
//! (and lost connections) are retried against the coordinator found afresh until the
//! request timeout. Every other error code is returned at once.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshet_protocol::messages::consumer_group_describe_response;
use freshet_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use freshet_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use freshet_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use freshet_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerProtocolAssignment,
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use freshet_protocol::{ApiKey, Decode};

use super::Admin;
use crate::connection::Connection;
use crate::consumer::{Consumer, ConsumerConfig, OffsetSpec};
use crate::coordinator::{find_coordinator, CoordinatorInfo, CoordinatorType};
use crate::error::{Error, KafkaCode, KafkaError};
use crate::TopicPartition;

/// The coordinator moved, is starting, or is loading: find it again and retry.
fn is_coordinator_error(code: KafkaCode) -> bool {
    matches!(code.0, 14..=16)
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    /// "consumer" for consumer groups, "" for groups that only commit offsets.
    pub protocol_type: String,
    /// "Empty", "Stable", "PreparingRebalance", ... (empty from brokers before ListGroups v4).
    pub state: String,
    /// "classic" or "consumer" (empty from brokers before ListGroups v5).
    pub group_type: String,
}

/// A member of a classic group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    /// The partitions assigned to the member, decoded from its `ConsumerProtocolAssignment`
    /// when the group's protocol type is "consumer"; empty otherwise.
    pub assignment: Vec<TopicPartition>,
    /// The raw assignment bytes, for other protocol types (empty in consumer groups).
    pub assignment_bytes: Bytes,
    /// Consumer groups (KIP-848): the member's epoch.
    pub member_epoch: Option<i32>,
    /// Consumer groups (KIP-848): the partitions the member is moving towards.
    pub target_assignment: Option<Vec<TopicPartition>>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    /// The selected protocol: the assignor's name for consumer groups.
    pub protocol: String,
    pub members: Vec<MemberDescription>,
    /// The coordinator that answered.
    pub coordinator: CoordinatorInfo,
    /// "classic" (JoinGroup/SyncGroup) or "consumer" (KIP-848, ConsumerGroupHeartbeat).
    pub group_type: String,
    /// Consumer groups (KIP-848): the group epoch.
    pub group_epoch: Option<i32>,
}

impl GroupDescription {
    /// Kafka's rule for offset resets and group deletion: no member may be in the group.
    pub fn is_inactive(&self) -> bool {
        self.state == "Empty" || self.state == "Dead"
    }
}

/// An offset committed by a group for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// `None` when the commit carried no leader epoch.
    pub leader_epoch: Option<i32>,
    pub metadata: Option<String>,
}

impl Admin {
    /// Runs `attempt` against the coordinator of `group`, looked up before each attempt;
    /// coordinator errors and lost connections are retried until the request timeout.
    async fn on_coordinator<T, F, Fut>(&self, group: &str, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut(Arc<Connection>, CoordinatorInfo) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let deadline = Instant::now() + Duration::from_millis(self.timeout_ms);
        loop {
            let result = match self.coordinator(group).await {
                Ok((connection, info)) => attempt(connection, info).await,
                Err(error) => Err(error),
            };
            match result {
                Err(error) if retry_on_coordinator(&error) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(
                        self.cluster.config().retry_backoff_ms,
                    ))
                    .await;
                }
                result => return result,
            }
        }
    }

    /// The coordinator of `group` and a connection to it.
    async fn coordinator(&self, group: &str) -> Result<(Arc<Connection>, CoordinatorInfo), Error> {
        let info = find_coordinator(&self.cluster, CoordinatorType::Group, group).await?;
        let connection = self.cluster.connection(&info.addr()).await?;
        Ok((connection, info))
    }

    /// The groups of every broker (ListGroups), sorted by id. `states` ("Stable", "Empty",
    /// ...; case-insensitive on the broker) needs ListGroups v4, `types` ("classic",
    /// "consumer") v5; empty filters list every group.
    pub async fn list_groups(
        &self,
        states: &[String],
        types: &[String],
    ) -> Result<Vec<GroupListing>, Error> {
        self.retrying(|| self.cluster.refresh_metadata(Some(&[]), false))
            .await?;
        let mut brokers = self.cluster.brokers();
        brokers.sort_by_key(|broker| broker.node_id);
        let mut groups = BTreeMap::new();
        for broker in brokers {
            let listed = self
                .retrying(|| async {
                    let connection = self.cluster.broker_connection(broker.node_id).await?;
                    let version = connection.version(ApiKey::ListGroups)?;
                    if (!states.is_empty() && version < 4) || (!types.is_empty() && version < 5) {
                        return Err(Error::UnsupportedVersion {
                            addr: connection.addr().to_owned(),
                            api: "ListGroups with a state or type filter",
                            min: if types.is_empty() { 4 } else { 5 },
                            max: version,
                        });
                    }
                    let request = ListGroupsRequest {
                        states_filter: states.to_vec(),
                        types_filter: types.to_vec(),
                        ..Default::default()
                    };
                    let response: ListGroupsResponse = connection
                        .send(ApiKey::ListGroups, version, &request)?
                        .recv()
                        .await?;
                    crate::error::check(response.error_code, None)?;
                    Ok(response.groups)
                })
                .await?;
            for group in listed {
                groups.insert(
                    group.group_id.clone(),
                    GroupListing {
                        group_id: group.group_id,
                        protocol_type: group.protocol_type,
                        state: group.group_state,
                        group_type: group.group_type,
                    },
                );
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Describes one group at its coordinator: a classic group with DescribeGroups, a
    /// KIP-848 consumer group (which DescribeGroups reports as not found) with
    /// ConsumerGroupDescribe when the broker offers it. An unknown group gives
    /// GROUP_ID_NOT_FOUND.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, Error> {
        match self.describe_classic_group(group).await {
            Err(error) if error.kafka_code() == Some(KafkaCode(GROUP_ID_NOT_FOUND)) => {
                match self.describe_consumer_group(group).await {
                    Ok(Some(described)) => Ok(described),
                    // Not served, or not a consumer group either: the classic answer stands.
                    Ok(None) => Err(error),
                    Err(other) if other.kafka_code() == Some(KafkaCode(GROUP_ID_NOT_FOUND)) => {
                        Err(error)
                    }
                    Err(other) => Err(other),
                }
            }
            result => result,
        }
    }

    /// ConsumerGroupDescribe (KIP-848); `None` when the coordinator does not serve it.
    async fn describe_consumer_group(
        &self,
        group: &str,
    ) -> Result<Option<GroupDescription>, Error> {
        let answer = self
            .on_coordinator(group, |connection, info| async move {
                let Ok(version) = connection.version(ApiKey::ConsumerGroupDescribe) else {
                    return Ok(None);
                };
                let request = ConsumerGroupDescribeRequest {
                    group_ids: vec![group.to_owned()],
                    include_authorized_operations: false,
                    ..Default::default()
                };
                let response: ConsumerGroupDescribeResponse = connection
                    .send(ApiKey::ConsumerGroupDescribe, version, &request)?
                    .recv()
                    .await?;
                let described = response
                    .groups
                    .into_iter()
                    .find(|g| g.group_id == group)
                    .ok_or_else(|| Error::Protocol {
                        addr: connection.addr().to_owned(),
                        reason: format!("ConsumerGroupDescribe response omitted group {group}"),
                    })?;
                group_result(
                    group,
                    described.error_code,
                    described.error_message.as_deref(),
                )?;
                Ok(Some((described, info)))
            })
            .await?;
        let Some((described, coordinator)) = answer else {
            return Ok(None);
        };
        let partitions = |assignment: &consumer_group_describe_response::Assignment| {
            let mut partitions: Vec<TopicPartition> = assignment
                .topic_partitions
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|&p| TopicPartition::new(t.topic_name.clone(), p))
                })
                .collect();
            partitions.sort();
            partitions
        };
        let members = described
            .members
            .iter()
            .map(|member| MemberDescription {
                member_id: member.member_id.clone(),
                group_instance_id: member.instance_id.clone(),
                client_id: member.client_id.clone(),
                host: member.client_host.clone(),
                assignment: partitions(&member.assignment),
                assignment_bytes: Bytes::new(),
                member_epoch: Some(member.member_epoch),
                target_assignment: Some(partitions(&member.target_assignment)),
            })
            .collect();
        Ok(Some(GroupDescription {
            group_id: described.group_id,
            state: described.group_state,
            protocol_type: "consumer".into(),
            protocol: described.assignor_name,
            members,
            coordinator,
            group_type: "consumer".into(),
            group_epoch: Some(described.group_epoch),
        }))
    }

    /// DescribeGroups. A group the coordinator does not know is reported by Kafka as state
    /// "Dead" with no members; that is returned as GROUP_ID_NOT_FOUND.
    async fn describe_classic_group(&self, group: &str) -> Result<GroupDescription, Error> {
        let described = self
            .on_coordinator(group, |connection, info| async move {
                let request = DescribeGroupsRequest {
                    groups: vec![group.to_owned()],
                    include_authorized_operations: false,
                    ..Default::default()
                };
                let (_, response): (_, DescribeGroupsResponse) =
                    connection.call(ApiKey::DescribeGroups, &request).await?;
                let described = response
                    .groups
                    .into_iter()
                    .find(|g| g.group_id == group)
                    .ok_or_else(|| Error::Protocol {
                        addr: connection.addr().to_owned(),
                        reason: format!("DescribeGroups response omitted group {group}"),
                    })?;
                group_result(group, described.error_code, None)?;
                Ok((described, info))
            })
            .await?;
        let (described, coordinator) = described;
        if described.group_state == "Dead" && described.members.is_empty() {
            return Err(group_error(group, KafkaCode(GROUP_ID_NOT_FOUND), None));
        }
        let is_consumer = described.protocol_type == "consumer";
        let members = described
            .members
            .into_iter()
            .map(|member| {
                let assignment = if is_consumer {
                    decode_assignment(&member.member_assignment).map_err(|reason| {
                        Error::Protocol {
                            addr: format!("coordinator of group {group}"),
                            reason: format!("assignment of member {}: {reason}", member.member_id),
                        }
                    })?
                } else {
                    Vec::new()
                };
                Ok(MemberDescription {
                    member_id: member.member_id,
                    group_instance_id: member.group_instance_id,
                    client_id: member.client_id,
                    host: member.client_host,
                    assignment,
                    assignment_bytes: member.member_assignment,
                    member_epoch: None,
                    target_assignment: None,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(GroupDescription {
            group_id: described.group_id,
            state: described.group_state,
            protocol_type: described.protocol_type,
            protocol: described.protocol_data,
            members,
            coordinator,
            group_type: "classic".into(),
            group_epoch: None,
        })
    }

    /// Describes several groups, each at its own coordinator, in the order given.
    pub async fn describe_groups(&self, groups: &[String]) -> Result<Vec<GroupDescription>, Error> {
        let mut described = Vec::with_capacity(groups.len());
        for group in groups {
            described.push(self.describe_group(group).await?);
        }
        Ok(described)
    }

    /// The offsets `group` has committed (OffsetFetch; the batched form from v8), for the
    /// given partitions or, with `None`, every partition it committed. Partitions without
    /// a committed offset are left out. A group with no commits gives an empty map.
    pub async fn list_group_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, CommittedOffset>, Error> {
        let by_topic: Option<BTreeMap<&str, Vec<i32>>> = partitions.map(|tps| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in tps {
                by_topic.entry(&tp.topic).or_default().push(tp.partition);
            }
            by_topic
        });
        self.on_coordinator(group, |connection, _| {
            let by_topic = by_topic.clone();
            async move {
                let version = connection.version(ApiKey::OffsetFetch)?;
                let request = if version >= 8 {
                    OffsetFetchRequest {
                        groups: vec![OffsetFetchRequestGroup {
                            group_id: group.to_owned(),
                            member_id: None,
                            member_epoch: -1,
                            topics: by_topic.map(|topics| {
                                topics
                                    .into_iter()
                                    .map(|(name, partition_indexes)| OffsetFetchRequestTopics {
                                        name: name.to_owned(),
                                        partition_indexes,
                                        ..Default::default()
                                    })
                                    .collect()
                            }),
                            ..Default::default()
                        }],
                        require_stable: false,
                        ..Default::default()
                    }
                } else {
                    OffsetFetchRequest {
                        group_id: group.to_owned(),
                        topics: by_topic.map(|topics| {
                            topics
                                .into_iter()
                                .map(|(name, partition_indexes)| OffsetFetchRequestTopic {
                                    name: name.to_owned(),
                                    partition_indexes,
                                    ..Default::default()
                                })
                                .collect()
                        }),
                        require_stable: false,
                        ..Default::default()
                    }
                };
                let response: OffsetFetchResponse = connection
                    .send(ApiKey::OffsetFetch, version, &request)?
                    .recv()
                    .await?;
                fetched_offsets(group, version, response)
            }
        })
        .await
    }

    /// Commits `offsets` for `group` as an administrator (OffsetCommit with generation -1
    /// and no member id, as kafka-consumer-groups does for resets). The coordinator only
    /// accepts it while the group has no members: otherwise UNKNOWN_MEMBER_ID (or
    /// ILLEGAL_GENERATION) per partition.
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), Error> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, &offset) in offsets {
            topics
                .entry(&tp.topic)
                .or_default()
                .push(OffsetCommitRequestPartition {
                    partition_index: tp.partition,
                    committed_offset: offset,
                    committed_leader_epoch: -1,
                    commit_timestamp: -1,
                    committed_metadata: Some(String::new()),
                    ..Default::default()
                });
        }
        let request = OffsetCommitRequest {
            group_id: group.to_owned(),
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            group_instance_id: None,
            // -1: the broker's offsets.retention.minutes.
            retention_time_ms: -1,
            topics: topics
                .into_iter()
                .map(|(name, partitions)| OffsetCommitRequestTopic {
                    name: name.to_owned(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let request = &request;
        self.on_coordinator(group, |connection, _| async move {
            let (_, response): (_, OffsetCommitResponse) =
                connection.call(ApiKey::OffsetCommit, request).await?;
            let mut answered = 0;
            for topic in &response.topics {
                for partition in &topic.partitions {
                    answered += 1;
                    let code = KafkaCode(partition.error_code);
                    if code.is_ok() {
                        continue;
                    }
                    // Coordinator errors come per partition here: the whole request is retried.
                    if is_coordinator_error(code) {
                        return Err(Error::Kafka(KafkaError {
                            code,
                            message: None,
                        }));
                    }
                    return Err(group_error(
                        group,
                        code,
                        Some(format!("{}-{}", topic.name, partition.partition_index)),
                    ));
                }
            }
            if answered != offsets.len() {
                return Err(Error::Protocol {
                    addr: connection.addr().to_owned(),
                    reason: format!(
                        "OffsetCommit answered {answered} of {} partitions",
                        offsets.len()
                    ),
                });
            }
            Ok(())
        })
        .await
    }

    /// Deletes the committed offsets of `partitions` (OffsetDelete). The group must not be
    /// subscribed to their topics (GROUP_SUBSCRIBED_TO_TOPIC); an unknown group gives
    /// GROUP_ID_NOT_FOUND.
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<(), Error> {
        let mut topics: BTreeMap<&str, Vec<OffsetDeleteRequestPartition>> = BTreeMap::new();
        for tp in partitions {
            topics
                .entry(&tp.topic)
                .or_default()
                .push(OffsetDeleteRequestPartition {
                    partition_index: tp.partition,
                });
        }
        let request = OffsetDeleteRequest {
            group_id: group.to_owned(),
            topics: topics
                .into_iter()
                .map(|(name, partitions)| OffsetDeleteRequestTopic {
                    name: name.to_owned(),
                    partitions,
                })
                .collect(),
        };
        let request = &request;
        self.on_coordinator(group, |connection, _| async move {
            let (_, response): (_, OffsetDeleteResponse) =
                connection.call(ApiKey::OffsetDelete, request).await?;
            group_result(group, response.error_code, None)?;
            for topic in &response.topics {
                for partition in &topic.partitions {
                    if partition.error_code != 0 {
                        return Err(group_error(
                            group,
                            KafkaCode(partition.error_code),
                            Some(format!("{}-{}", topic.name, partition.partition_index)),
                        ));
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// Deletes groups (DeleteGroups, each at its coordinator). A group with members gives
    /// NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND; the first failure is returned.
    pub async fn delete_groups(&self, groups: &[String]) -> Result<(), Error> {
        for group in groups {
            let group = group.as_str();
            self.on_coordinator(group, |connection, _| async move {
                let request = DeleteGroupsRequest {
                    groups_names: vec![group.to_owned()],
                    ..Default::default()
                };
                let (_, response): (_, DeleteGroupsResponse) =
                    connection.call(ApiKey::DeleteGroups, &request).await?;
                let result = response
                    .results
                    .iter()
                    .find(|r| r.group_id == group)
                    .ok_or_else(|| Error::Protocol {
                        addr: connection.addr().to_owned(),
                        reason: format!("DeleteGroups response omitted group {group}"),
                    })?;
                group_result(group, result.error_code, None)
            })
            .await?;
        }
        Ok(())
    }

    /// Log offsets of partitions (ListOffsets at each leader): the log start offset for
    /// [`OffsetSpec::Earliest`], the log end offset for [`OffsetSpec::Latest`], and for a
    /// timestamp the first offset at or after it (the log end offset when there is none).
    pub async fn list_offsets(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<HashMap<TopicPartition, i64>, Error> {
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        // The consumer owns the leader routing and retries of ListOffsets.
        let mut config = ConsumerConfig::new("");
        config.client = self.cluster.config().clone();
        let consumer = Consumer::new(config)?;
        consumer.list_offsets(partitions, spec).await
    }
}

/// Kafka's GROUP_ID_NOT_FOUND.
const GROUP_ID_NOT_FOUND: i16 = 69;

fn retry_on_coordinator(error: &Error) -> bool {
    match error {
        Error::Kafka(e) | Error::Resource { error: e, .. } => is_coordinator_error(e.code),
        Error::Connect { .. }
        | Error::Disconnected { .. }
        | Error::Timeout { .. }
        | Error::NoBrokers(_) => true,
        _ => false,
    }
}

fn group_error(group: &str, code: KafkaCode, partition: Option<String>) -> Error {
    let resource = match partition {
        Some(partition) => format!("group {group}, partition {partition}"),
        None => format!("group {group}"),
    };
    Error::Resource {
        resource,
        error: KafkaError {
            code,
            message: None,
        },
    }
}

fn group_result(group: &str, code: i16, message: Option<&str>) -> Result<(), Error> {
    if code == 0 {
        return Ok(());
    }
    let code = KafkaCode(code);
    if is_coordinator_error(code) {
        return Err(Error::Kafka(KafkaError {
            code,
            message: message.map(str::to_owned),
        }));
    }
    Err(Error::Resource {
        resource: format!("group {group}"),
        error: KafkaError {
            code,
            message: message.map(str::to_owned),
        },
    })
}

/// (topic, partition, offset, epoch, metadata, error) rows of OffsetFetch topics; a macro
/// because the single-group (v0-7) and batched (v8+) layouts are distinct generated types
/// with the same fields.
macro_rules! offset_rows {
    ($topics:expr) => {
        $topics
            .into_iter()
            .flat_map(|t| {
                let name = t.name;
                t.partitions.into_iter().map(move |p| {
                    (
                        name.clone(),
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata,
                        p.error_code,
                    )
                })
            })
            .collect()
    };
}

/// The committed offsets in an OffsetFetch response, single-group or batched.
fn fetched_offsets(
    group: &str,
    version: i16,
    response: OffsetFetchResponse,
) -> Result<BTreeMap<TopicPartition, CommittedOffset>, Error> {
    // (topic, partition, offset, epoch, metadata, error) from either layout.
    type Row = (String, i32, i64, i32, Option<String>, i16);
    let rows: Vec<Row> = if version >= 8 {
        let answer = response
            .groups
            .into_iter()
            .find(|g| g.group_id == group)
            .ok_or_else(|| Error::Protocol {
                addr: format!("coordinator of group {group}"),
                reason: format!("OffsetFetch response omitted group {group}"),
            })?;
        group_result(group, answer.error_code, None)?;
        offset_rows!(answer.topics)
    } else {
        group_result(group, response.error_code, None)?;
        offset_rows!(response.topics)
    };
    let mut offsets = BTreeMap::new();
    for (topic, partition, offset, epoch, metadata, error) in rows {
        if error != 0 {
            let code = KafkaCode(error);
            if is_coordinator_error(code) {
                return Err(Error::Kafka(KafkaError {
                    code,
                    message: None,
                }));
            }
            return Err(group_error(
                group,
                code,
                Some(format!("{topic}-{partition}")),
            ));
        }
        if offset < 0 {
            continue;
        }
        offsets.insert(
            TopicPartition::new(topic, partition),
            CommittedOffset {
                offset,
                leader_epoch: (epoch >= 0).then_some(epoch),
                metadata,
            },
        );
    }
    Ok(offsets)
}

/// The partitions of a `ConsumerProtocolAssignment` (a version, then the struct). Versions
/// newer than the schema read as the newest known, as Kafka's clients do.
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<TopicPartition>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return Err("truncated version".into());
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    if version < 0 {
        return Err(format!("negative version {version}"));
    }
    let version = version.min(3);
    let assignment =
        ConsumerProtocolAssignment::decode(&mut buf, version).map_err(|e| e.to_string())?;
    let mut partitions: Vec<TopicPartition> = assignment
        .assigned_partitions
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic;
            t.partitions
                .into_iter()
                .map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .collect();
    partitions.sort();
    Ok(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_protocol::messages::consumer_protocol_assignment::TopicPartition as WireTp;
    use freshet_protocol::Encode;

    fn encoded(version: i16, assignment: &ConsumerProtocolAssignment) -> Bytes {
        let mut buf = bytes::BytesMut::new();
        buf.extend_from_slice(&version.to_be_bytes());
        assignment.encode(&mut buf, version.min(3)).unwrap();
        buf.freeze()
    }

    #[test]
    fn assignments_decode_sorted() {
        let assignment = ConsumerProtocolAssignment {
            assigned_partitions: vec![
                WireTp {
                    topic: "b".into(),
                    partitions: vec![2, 0],
                },
                WireTp {
                    topic: "a".into(),
                    partitions: vec![1],
                },
            ],
            user_data: None,
        };
        for version in [0, 1, 3, 7] {
            assert_eq!(
                decode_assignment(&encoded(version, &assignment)).unwrap(),
                vec![
                    TopicPartition::new("a", 1),
                    TopicPartition::new("b", 0),
                    TopicPartition::new("b", 2)
                ],
                "version {version}"
            );
        }
        assert_eq!(decode_assignment(&Bytes::new()).unwrap(), vec![]);
        assert!(decode_assignment(&Bytes::from_static(&[0])).is_err());
        assert!(decode_assignment(&Bytes::from_static(&[0, 0, 0, 0, 0, 9])).is_err());
    }

    #[test]
    fn offset_fetch_answers_read_in_both_layouts() {
        use freshet_protocol::messages::offset_fetch_response::{
            OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
            OffsetFetchResponseTopic, OffsetFetchResponseTopics,
        };
        // v7 and before: one group, top-level topics. -1 means no commit and is left out.
        let single = OffsetFetchResponse {
            topics: vec![OffsetFetchResponseTopic {
                name: "t".into(),
                partitions: vec![
                    OffsetFetchResponsePartition {
                        partition_index: 1,
                        committed_offset: 42,
                        committed_leader_epoch: 3,
                        metadata: Some("m".into()),
                        ..Default::default()
                    },
                    OffsetFetchResponsePartition {
                        partition_index: 0,
                        committed_offset: -1,
                        committed_leader_epoch: -1,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let read = fetched_offsets("g", 7, single).unwrap();
        assert_eq!(
            read.into_iter().collect::<Vec<_>>(),
            vec![(
                TopicPartition::new("t", 1),
                CommittedOffset {
                    offset: 42,
                    leader_epoch: Some(3),
                    metadata: Some("m".into())
                }
            )]
        );
        // v8+: batched by group; other groups are ignored, group errors surface.
        let partition = |index, offset, error_code| OffsetFetchResponsePartitions {
            partition_index: index,
            committed_offset: offset,
            committed_leader_epoch: -1,
            metadata: None,
            error_code,
            ..Default::default()
        };
        let batched = |group_error: i16, partition_error: i16| OffsetFetchResponse {
            groups: vec![
                OffsetFetchResponseGroup {
                    group_id: "other".into(),
                    error_code: 69,
                    ..Default::default()
                },
                OffsetFetchResponseGroup {
                    group_id: "g".into(),
                    topics: vec![OffsetFetchResponseTopics {
                        name: "t".into(),
                        partitions: vec![partition(0, 7, 0), partition(2, 9, partition_error)],
                        ..Default::default()
                    }],
                    error_code: group_error,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let read = fetched_offsets("g", 8, batched(0, 0)).unwrap();
        assert_eq!(
            read.iter()
                .map(|(tp, c)| (tp.partition, c.offset, c.leader_epoch))
                .collect::<Vec<_>>(),
            vec![(0, 7, None), (2, 9, None)]
        );
        let error = fetched_offsets("g", 8, batched(0, 3)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "group g, partition t-2: UNKNOWN_TOPIC_OR_PARTITION (3)"
        );
        // A coordinator error is returned bare, so that it is retried.
        let error = fetched_offsets("g", 8, batched(16, 0)).unwrap_err();
        assert!(matches!(error, Error::Kafka(_)) && retry_on_coordinator(&error));
        assert!(fetched_offsets("missing", 8, batched(0, 0)).is_err());
    }

    #[test]
    fn only_coordinator_and_transport_errors_are_retried() {
        let kafka = |code| {
            Error::Kafka(KafkaError {
                code: KafkaCode(code),
                message: None,
            })
        };
        assert!(retry_on_coordinator(&kafka(14)));
        assert!(retry_on_coordinator(&kafka(15)));
        assert!(retry_on_coordinator(&kafka(16)));
        // Retriable in general, but not a reason to rediscover the coordinator here.
        assert!(!retry_on_coordinator(&kafka(3)));
        assert!(!retry_on_coordinator(&kafka(GROUP_ID_NOT_FOUND)));
        assert!(retry_on_coordinator(&Error::Disconnected {
            addr: "a".into(),
            reason: "r".into()
        }));
    }
}
