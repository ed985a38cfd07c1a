//! Consumer groups through the broker: the coordinator task, `__consumer_offsets` on disk,
//! and reloading after a restart. The state machine itself is tested in `freshet-group`.

mod support;

use bytes::Bytes;
use freshet_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use freshet_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use freshet_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use freshet_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use freshet_protocol::messages::*;
use support::{Client, TestBroker};

const GROUP: &str = "g1";
const MEMBER_ID_REQUIRED: i16 = 79;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const GROUP_ID_NOT_FOUND: i16 = 69;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn join(member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: GROUP.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: member_id.into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"subscription"),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Joins as the only member and completes the rebalance; returns (member id, generation).
async fn join_and_sync(c: &mut Client) -> (String, i32) {
    let first = call!(c, 9, JoinGroup, join(""));
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED, "KIP-394 first join");
    let joined = call!(c, 9, JoinGroup, join(&first.member_id));
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader, joined.member_id, "the only member leads");
    assert_eq!(joined.members.len(), 1);
    let synced = call!(
        c,
        5,
        SyncGroup,
        SyncGroupRequest {
            group_id: GROUP.into(),
            generation_id: joined.generation_id,
            member_id: joined.member_id.clone(),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: vec![SyncGroupRequestAssignment {
                member_id: joined.member_id.clone(),
                assignment: Bytes::from_static(b"assignment"),
                ..Default::default()
            }],
            ..Default::default()
        }
    );
    assert_eq!(synced.error_code, 0);
    assert_eq!(synced.assignment, Bytes::from_static(b"assignment"));
    (joined.member_id, joined.generation_id)
}

async fn commit(c: &mut Client, member: &str, generation: i32, topic: &str, offset: i64) -> i16 {
    commit_to(c, GROUP, member, generation, topic, offset).await
}

/// OffsetCommit v9 of `topic`-0 for `group`; the partition's error code.
async fn commit_to(
    c: &mut Client,
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    offset: i64,
) -> i16 {
    let response = call!(
        c,
        9,
        OffsetCommit,
        OffsetCommitRequest {
            group_id: group.into(),
            generation_id_or_member_epoch: generation,
            member_id: member.into(),
            topics: vec![OffsetCommitRequestTopic {
                name: topic.into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: offset,
                    committed_leader_epoch: 3,
                    committed_metadata: Some("meta".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    );
    response.topics[0].partitions[0].error_code
}

/// (offset, leader epoch, metadata) committed for `topic`-0, via the batched OffsetFetch v9.
async fn fetch_committed(c: &mut Client, topic: &str) -> (i64, i32, Option<String>) {
    let response = call!(
        c,
        9,
        OffsetFetch,
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: GROUP.into(),
                member_epoch: -1,
                topics: Some(vec![OffsetFetchRequestTopics {
                    name: topic.into(),
                    partition_indexes: vec![0],
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }
    );
    let group = &response.groups[0];
    assert_eq!(group.error_code, 0);
    let p = &group.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    (
        p.committed_offset,
        p.committed_leader_epoch,
        p.metadata.clone(),
    )
}

/// Creates topic "t" (one partition), which the commits of these tests name.
async fn create_topic_t(c: &mut Client) {
    support::create_topic(c, "t", 1, &[]).await;
}

async fn find_coordinator(c: &mut Client) -> FindCoordinatorResponse {
    create_topic_t(c).await;
    call!(
        c,
        6,
        FindCoordinator,
        FindCoordinatorRequest {
            key_type: 0,
            coordinator_keys: vec![GROUP.into()],
            ..Default::default()
        }
    )
}

#[tokio::test]
async fn find_coordinator_creates_the_internal_offsets_topic() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let found = find_coordinator(&mut c).await;
    let coordinator = &found.coordinators[0];
    assert_eq!(coordinator.error_code, 0);
    assert_eq!(coordinator.port, i32::from(broker.addr().port()));
    let metadata = call!(
        c,
        12,
        Metadata,
        MetadataRequest {
            topics: Some(vec![metadata_request::MetadataRequestTopic {
                name: Some("__consumer_offsets".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    );
    let topic = &metadata.topics[0];
    assert_eq!(topic.error_code, 0);
    assert!(topic.is_internal);
    // The test broker sets offsets_topic_num_partitions = 3.
    assert_eq!(topic.partitions.len(), 3);
    let configs = call!(
        c,
        4,
        DescribeConfigs,
        DescribeConfigsRequest {
            resources: vec![describe_configs_request::DescribeConfigsResource {
                resource_type: 2,
                resource_name: "__consumer_offsets".into(),
                configuration_keys: Some(vec!["cleanup.policy".into()]),
                ..Default::default()
            }],
            ..Default::default()
        }
    );
    assert_eq!(
        configs.results[0].configs[0].value.as_deref(),
        Some("compact")
    );
    // Transactions have no coordinator yet.
    let txn = call!(
        c,
        6,
        FindCoordinator,
        FindCoordinatorRequest {
            key_type: 1,
            coordinator_keys: vec!["t".into()],
            ..Default::default()
        }
    );
    assert_eq!(txn.coordinators[0].error_code, COORDINATOR_NOT_AVAILABLE);
}

#[tokio::test]
async fn a_member_joins_commits_and_the_offsets_survive_a_restart() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    find_coordinator(&mut c).await;
    let (member, generation) = join_and_sync(&mut c).await;
    let heartbeat = call!(
        c,
        4,
        Heartbeat,
        HeartbeatRequest {
            group_id: GROUP.into(),
            generation_id: generation,
            member_id: member.clone(),
            ..Default::default()
        }
    );
    assert_eq!(heartbeat.error_code, 0);
    assert_eq!(commit(&mut c, &member, generation, "t", 42).await, 0);
    assert_eq!(
        commit(&mut c, "nobody", generation, "t", 43).await,
        UNKNOWN_MEMBER_ID
    );
    // Kafka checks that the partition exists before the group does.
    assert_eq!(
        commit(&mut c, &member, generation, "no-such-topic", 1).await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        fetch_committed(&mut c, "t").await,
        (42, 3, Some("meta".into()))
    );

    drop(c);
    let broker = broker.restart().await;
    let mut c = broker.client().await;
    // Loading may still be under way: COORDINATOR_LOAD_IN_PROGRESS is retriable.
    let described = loop {
        let described = call!(
            c,
            5,
            DescribeGroups,
            DescribeGroupsRequest {
                groups: vec![GROUP.into()],
                ..Default::default()
            }
        );
        if described.groups[0].error_code != 14 {
            break described;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let group = &described.groups[0];
    assert_eq!(group.error_code, 0);
    assert_eq!(
        group.group_state, "Stable",
        "the member came back from the log"
    );
    assert_eq!(group.members[0].member_id, member);
    assert_eq!(
        fetch_committed(&mut c, "t").await,
        (42, 3, Some("meta".into()))
    );
    // The reloaded member is still a member of the same generation.
    assert_eq!(commit(&mut c, &member, generation, "t", 44).await, 0);
    assert_eq!(fetch_committed(&mut c, "t").await.0, 44);
}

#[tokio::test]
async fn group_records_are_in_kafkas_format_in_consumer_offsets() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    find_coordinator(&mut c).await;
    let (member, generation) = join_and_sync(&mut c).await;
    assert_eq!(commit(&mut c, &member, generation, "t", 7).await, 0);
    let partition = freshet_group::partition_for(GROUP, 3);
    let mut keys = Vec::new();
    for (_, key, _) in support::read_all(&broker, "__consumer_offsets", partition).await {
        let key = key.expect("every record has a key");
        keys.push(i16::from_be_bytes([key[0], key[1]]));
    }
    // Group metadata (key version 2) at join and sync, then the offset commit (version 1).
    assert!(keys.contains(&2), "{keys:?}");
    assert_eq!(keys.last(), Some(&1), "{keys:?}");
}

#[tokio::test]
async fn empty_groups_are_listed_and_deleted() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    find_coordinator(&mut c).await;
    let (member, generation) = join_and_sync(&mut c).await;
    assert_eq!(commit(&mut c, &member, generation, "t", 1).await, 0);
    let left = call!(
        c,
        5,
        LeaveGroup,
        LeaveGroupRequest {
            group_id: GROUP.into(),
            members: vec![leave_group_request::MemberIdentity {
                member_id: member.clone(),
                ..Default::default()
            }],
            ..Default::default()
        }
    );
    assert_eq!(left.error_code, 0);
    let listed = call!(c, 5, ListGroups, ListGroupsRequest::default());
    let g = listed
        .groups
        .iter()
        .find(|g| g.group_id == GROUP)
        .expect("listed");
    assert_eq!(g.group_state, "Empty");
    let deleted = call!(
        c,
        2,
        DeleteGroups,
        DeleteGroupsRequest {
            groups_names: vec![GROUP.into()],
            ..Default::default()
        }
    );
    assert_eq!(deleted.results[0].error_code, 0);
    let again = call!(
        c,
        2,
        DeleteGroups,
        DeleteGroupsRequest {
            groups_names: vec![GROUP.into()],
            ..Default::default()
        }
    );
    assert_eq!(again.results[0].error_code, GROUP_ID_NOT_FOUND);
    // Deleted for good: tombstones keep it deleted across a restart.
    drop(c);
    let broker = broker.restart().await;
    let mut c = broker.client().await;
    let listed = loop {
        let listed = call!(c, 5, ListGroups, ListGroupsRequest::default());
        if listed.error_code != 14 {
            break listed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(listed.groups.iter().all(|g| g.group_id != GROUP));
}

/// OffsetFetch v8+ names several groups in one request (KIP-709); each gets its own answer,
/// an unknown group an empty one.
#[tokio::test]
async fn one_offset_fetch_answers_for_several_groups() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    find_coordinator(&mut c).await;
    // Commits outside any generation (a consumer that assigns its own partitions).
    assert_eq!(commit_to(&mut c, "g1", "", -1, "t", 11).await, 0);
    assert_eq!(commit_to(&mut c, "g2", "", -1, "t", 22).await, 0);
    let group = |group_id: &str| OffsetFetchRequestGroup {
        group_id: group_id.into(),
        member_epoch: -1,
        topics: None,
        ..Default::default()
    };
    let response = call!(
        c,
        9,
        OffsetFetch,
        OffsetFetchRequest {
            groups: vec![group("g1"), group("g2"), group("g3")],
            ..Default::default()
        }
    );
    // (group, error code, [(topic, partition, committed offset)])
    type Answer = (String, i16, Vec<(String, i32, i64)>);
    let answers: Vec<Answer> = response
        .groups
        .iter()
        .map(|g| {
            let offsets = g
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (t.name.clone(), p.partition_index, p.committed_offset))
                })
                .collect();
            (g.group_id.clone(), g.error_code, offsets)
        })
        .collect();
    assert_eq!(
        answers,
        vec![
            ("g1".to_string(), 0, vec![("t".to_string(), 0, 11)]),
            ("g2".to_string(), 0, vec![("t".to_string(), 0, 22)]),
            ("g3".to_string(), 0, vec![]),
        ]
    );
}

/// Kafka handles a connection's requests one at a time, so an OffsetCommit pipelined behind
/// the member's own JoinGroup is judged after the rebalance that JoinGroup joins, against the
/// new generation (librdkafka sends exactly this). Freshet holds a connection's later requests
/// behind an unanswered JoinGroup or SyncGroup to keep that order.
#[tokio::test]
async fn a_commit_pipelined_behind_a_rejoin_sees_the_new_generation() {
    let broker = TestBroker::start().await;
    let mut a = broker.client().await;
    find_coordinator(&mut a).await;
    let (id_a, first_generation) = join_and_sync(&mut a).await;

    // B joins: A must rejoin, then both sync generation 2.
    let mut b = broker.client().await;
    let first = call!(b, 9, JoinGroup, join(""));
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    let id_b = first.member_id;
    b.send_only(9, join(&id_b).into()).await;
    let rejoined = call!(a, 9, JoinGroup, join(&id_a));
    let generation = rejoined.generation_id;
    assert_eq!(generation, first_generation + 1);
    let (_, joined_b) = b.receive(freshet_protocol::ApiKey::JoinGroup, 9).await;
    let freshet_protocol::Response::JoinGroup(joined_b) = joined_b else {
        panic!("not a JoinGroup answer");
    };
    assert_eq!(joined_b.generation_id, generation);
    let sync = |member: &str, assignments: Vec<SyncGroupRequestAssignment>| SyncGroupRequest {
        group_id: GROUP.into(),
        generation_id: generation,
        member_id: member.into(),
        assignments,
        ..Default::default()
    };
    b.send_only(5, sync(&id_b, vec![]).into()).await;
    let assignment = |member: &str| SyncGroupRequestAssignment {
        member_id: member.into(),
        assignment: Bytes::from_static(b"assignment"),
        ..Default::default()
    };
    let synced = call!(
        a,
        5,
        SyncGroup,
        sync(&id_a, vec![assignment(&id_a), assignment(&id_b)])
    );
    assert_eq!(synced.error_code, 0);
    b.receive(freshet_protocol::ApiKey::SyncGroup, 5).await;

    // A rejoins and, in the same breath, commits for the generation it has.
    a.send_only(9, join(&id_a).into()).await;
    let commit = OffsetCommitRequest {
        group_id: GROUP.into(),
        generation_id_or_member_epoch: generation,
        member_id: id_a.clone(),
        topics: vec![OffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 7,
                committed_leader_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    a.send_only(9, commit.into()).await;
    // B rejoins a little later, which ends the rebalance A's JoinGroup waits in.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    b.send_only(9, join(&id_b).into()).await;
    let (_, rejoined) = a.receive(freshet_protocol::ApiKey::JoinGroup, 9).await;
    let freshet_protocol::Response::JoinGroup(rejoined) = rejoined else {
        panic!("not a JoinGroup answer");
    };
    assert_eq!(rejoined.generation_id, generation + 1);
    let (_, committed) = a.receive(freshet_protocol::ApiKey::OffsetCommit, 9).await;
    let freshet_protocol::Response::OffsetCommit(committed) = committed else {
        panic!("not an OffsetCommit answer");
    };
    assert_eq!(
        committed.topics[0].partitions[0].error_code, ILLEGAL_GENERATION,
        "the commit was judged before the rebalance it was sent behind"
    );
}

#[tokio::test]
async fn clients_cannot_produce_to_consumer_offsets() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    find_coordinator(&mut c).await;
    let produce = |_: ()| ProduceRequest {
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![produce_request::TopicProduceData {
            name: "__consumer_offsets".into(),
            partition_data: vec![produce_request::PartitionProduceData {
                index: 0,
                records: Some(support::batch(&["forged"])),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = call!(c, 11, Produce, produce(()));
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 17, "INVALID_TOPIC_EXCEPTION");
    assert!(support::read_all(&broker, "__consumer_offsets", 0)
        .await
        .is_empty());
}

fn consumer_heartbeat(
    member_id: &str,
    epoch: i32,
    owned: Option<Vec<i32>>,
    topic_id: freshet_protocol::Uuid,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: "kip848".into(),
        member_id: member_id.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: (epoch == 0).then(|| vec!["t".to_string()]),
        topic_partitions: owned.map(|partitions| {
            let owned = consumer_group_heartbeat_request::TopicPartitions {
                topic_id,
                partitions,
                ..Default::default()
            };
            // A member that owns nothing sends an empty list, not an empty topic.
            Some(owned)
                .filter(|o| !o.partitions.is_empty())
                .into_iter()
                .collect()
        }),
        ..Default::default()
    }
}

fn assigned(response: &ConsumerGroupHeartbeatResponse) -> Option<Vec<i32>> {
    let assignment = response.assignment.as_ref()?;
    let mut partitions: Vec<i32> = assignment
        .topic_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().copied())
        .collect();
    partitions.sort();
    Some(partitions)
}

/// KIP-848: the server assigns; partitions added to a subscribed topic reach the member at
/// its next heartbeat, with a new epoch.
#[tokio::test]
async fn consumer_protocol_members_get_added_partitions() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    find_coordinator(&mut c).await;
    let all_topics = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let metadata = call!(c, 12, Metadata, all_topics);
    let topic_id = metadata
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some("t"))
        .expect("topic t")
        .topic_id;
    let member = "member-a-0000000000000";
    let joined = call!(
        c,
        1,
        ConsumerGroupHeartbeat,
        consumer_heartbeat(member, 0, Some(vec![]), topic_id)
    );
    assert_eq!(joined.error_code, 0, "{:?}", joined.error_message);
    assert_eq!(assigned(&joined), Some(vec![0]));
    let epoch = joined.member_epoch;
    assert!(epoch > 0);

    let grown = call!(
        c,
        3,
        CreatePartitions,
        CreatePartitionsRequest {
            topics: vec![create_partitions_request::CreatePartitionsTopic {
                name: "t".into(),
                count: 3,
                assignments: None,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        }
    );
    assert_eq!(grown.results[0].error_code, 0);
    // The coordinator learns of the change from the metadata log, asynchronously.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let beat = call!(
            c,
            1,
            ConsumerGroupHeartbeat,
            consumer_heartbeat(member, epoch, Some(vec![0]), topic_id)
        );
        assert_eq!(beat.error_code, 0, "{:?}", beat.error_message);
        if assigned(&beat) == Some(vec![0, 1, 2]) {
            assert!(
                beat.member_epoch > epoch,
                "a new assignment comes with a new epoch"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "added partitions never assigned"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let listed = call!(c, 5, ListGroups, ListGroupsRequest::default());
    let g = listed
        .groups
        .iter()
        .find(|g| g.group_id == "kip848")
        .expect("listed");
    assert_eq!(g.group_type, "consumer");
}
