//! Consumer-group administration against a real broker at `FRESHET_TEST_BOOTSTRAP`
//! (`host:port`): Apache Kafka (`tools/kafka.sh start DIR PORT`) or Freshet. Without the
//! variable each test prints a note and passes.
//!
//! Group members are driven with raw JoinGroup / SyncGroup / LeaveGroup requests, so these
//! tests do not depend on the client's own group consumer.

#[path = "support/live.rs"]
mod live;

use live::{an_hour_ago_ms, bootstrap, unique};

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;
use freshet_client::cluster::Cluster;
use freshet_client::connection::Connection;
use freshet_client::consumer::OffsetSpec;
use freshet_client::coordinator::{coordinator_connection, CoordinatorType};
use freshet_client::{
    Admin, ClientConfig, Error, KafkaCode, NewTopic, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};
use freshet_protocol::messages::consumer_protocol_assignment::TopicPartition as WireTp;
use freshet_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use freshet_protocol::messages::leave_group_request::MemberIdentity;
use freshet_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use freshet_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, ConsumerProtocolAssignment,
    ConsumerProtocolSubscription, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use freshet_protocol::{ApiKey, Encode};

const GROUP_ID_NOT_FOUND: KafkaCode = KafkaCode(69);
const NON_EMPTY_GROUP: KafkaCode = KafkaCode(68);
const UNKNOWN_MEMBER_ID: KafkaCode = KafkaCode(25);
const ILLEGAL_GENERATION: KafkaCode = KafkaCode(22);
const GROUP_SUBSCRIBED_TO_TOPIC: KafkaCode = KafkaCode(86);

/// Creates a topic with `partitions` partitions holding `per_partition` records each, with
/// timestamps `base + offset * 1000`.
async fn topic_with_records(
    servers: &str,
    admin: &Admin,
    name: &str,
    partitions: i32,
    per_partition: i64,
    base_timestamp_ms: i64,
) {
    admin
        .create_topics(&[NewTopic::new(name, partitions, 1)], false)
        .await
        .unwrap();
    admin.wait_for_topic(name).await.unwrap();
    let producer = Producer::new(ProducerConfig::new(servers)).unwrap();
    for partition in 0..partitions {
        for i in 0..per_partition {
            let record = ProducerRecord::new(name, format!("p{partition}-{i}"))
                .with_partition(partition)
                .with_timestamp(base_timestamp_ms + 1_000 * i);
            producer.send(record).await.unwrap();
        }
    }
    producer.close().await.unwrap();
}

fn code_of(result: Result<impl std::fmt::Debug, Error>) -> KafkaCode {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error
            .kafka_code()
            .unwrap_or_else(|| panic!("not a Kafka error: {error}")),
    }
}

fn offsets(pairs: &[(&TopicPartition, i64)]) -> BTreeMap<TopicPartition, i64> {
    pairs.iter().map(|(tp, o)| ((*tp).clone(), *o)).collect()
}

/// A classic-protocol member, joined and synced by hand.
struct Member {
    connection: Arc<Connection>,
    group: String,
    member_id: String,
}

impl Member {
    /// Joins `group` as its only member, subscribed to `topic`, and as leader assigns
    /// itself `assigned` partitions of it.
    async fn join(servers: &str, group: &str, topic: &str, assigned: &[i32]) -> Member {
        let cluster = Cluster::new(ClientConfig::new(servers)).unwrap();
        // A fresh broker may still be creating __consumer_offsets: retry the lookup.
        let mut attempts = 0;
        let connection = loop {
            match coordinator_connection(&cluster, CoordinatorType::Group, group).await {
                Ok(connection) => break connection,
                Err(error) if error.is_retriable() && attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(error) => panic!("FindCoordinator: {error}"),
            }
        };
        let subscription = ConsumerProtocolSubscription {
            topics: vec![topic.to_owned()],
            ..Default::default()
        };
        let mut metadata = BytesMut::new();
        metadata.extend_from_slice(&1i16.to_be_bytes());
        subscription.encode(&mut metadata, 1).unwrap();
        let mut member_id = String::new();
        let joined: JoinGroupResponse = loop {
            let request = JoinGroupRequest {
                group_id: group.to_owned(),
                session_timeout_ms: 30_000,
                rebalance_timeout_ms: 30_000,
                member_id: member_id.clone(),
                group_instance_id: Some("static-1".into()),
                protocol_type: "consumer".into(),
                protocols: vec![JoinGroupRequestProtocol {
                    name: "range".into(),
                    metadata: metadata.clone().freeze(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let response: JoinGroupResponse = connection
                .send(ApiKey::JoinGroup, 5, &request)
                .unwrap()
                .recv()
                .await
                .unwrap();
            // MEMBER_ID_REQUIRED (KIP-394): join again with the id given.
            if response.error_code == 79 {
                member_id = response.member_id.clone();
                continue;
            }
            assert_eq!(response.error_code, 0, "JoinGroup: {response:?}");
            break response;
        };
        assert_eq!(joined.leader, joined.member_id, "the only member leads");
        let assignment = ConsumerProtocolAssignment {
            assigned_partitions: vec![WireTp {
                topic: topic.to_owned(),
                partitions: assigned.to_vec(),
            }],
            user_data: None,
        };
        let mut bytes = BytesMut::new();
        bytes.extend_from_slice(&0i16.to_be_bytes());
        assignment.encode(&mut bytes, 0).unwrap();
        let request = SyncGroupRequest {
            group_id: group.to_owned(),
            generation_id: joined.generation_id,
            member_id: joined.member_id.clone(),
            group_instance_id: Some("static-1".into()),
            assignments: vec![SyncGroupRequestAssignment {
                member_id: joined.member_id.clone(),
                assignment: bytes.freeze(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let synced: SyncGroupResponse = connection
            .send(ApiKey::SyncGroup, 3, &request)
            .unwrap()
            .recv()
            .await
            .unwrap();
        assert_eq!(synced.error_code, 0, "SyncGroup: {synced:?}");
        Member {
            connection,
            group: group.to_owned(),
            member_id: joined.member_id,
        }
    }

    async fn leave(self) {
        let request = LeaveGroupRequest {
            group_id: self.group.clone(),
            members: vec![MemberIdentity {
                member_id: self.member_id.clone(),
                group_instance_id: Some("static-1".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let response: LeaveGroupResponse = self
            .connection
            .send(ApiKey::LeaveGroup, 3, &request)
            .unwrap()
            .recv()
            .await
            .unwrap();
        assert_eq!(response.error_code, 0, "LeaveGroup: {response:?}");
        assert!(
            response.members.iter().all(|m| m.error_code == 0),
            "LeaveGroup: {response:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_of_an_empty_group_round_trip() {
    let Some(servers) = bootstrap() else { return };
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    let topic = unique("grp-offsets");
    let group = unique("g-offsets");
    let base = an_hour_ago_ms();
    topic_with_records(&servers, &admin, &topic, 3, 10, base).await;
    let tp: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(&topic, p)).collect();

    // Log start and end, and offsets for times (between records, after the last).
    let starts = admin.list_offsets(&tp, OffsetSpec::Earliest).await.unwrap();
    let ends = admin.list_offsets(&tp, OffsetSpec::Latest).await.unwrap();
    for p in &tp {
        assert_eq!((starts[p], ends[p]), (0, 10), "{p}");
    }
    let at = admin
        .list_offsets(&tp[..1], OffsetSpec::Timestamp(base + 4_500))
        .await
        .unwrap();
    assert_eq!(at[&tp[0]], 5);
    let after = admin
        .list_offsets(&tp[..1], OffsetSpec::Timestamp(base + 60_000))
        .await
        .unwrap();
    assert_eq!(after[&tp[0]], 10);

    // A group that never existed: no offsets, and describe says it is not found.
    assert!(admin
        .list_group_offsets(&group, None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        code_of(admin.describe_group(&group).await),
        GROUP_ID_NOT_FOUND
    );

    // Commit as an administrator (no member): the group springs into being, Empty.
    let committed = offsets(&[(&tp[0], 3), (&tp[1], 10), (&tp[2], 0)]);
    admin.alter_group_offsets(&group, &committed).await.unwrap();
    let fetched = admin.list_group_offsets(&group, None).await.unwrap();
    assert_eq!(
        fetched
            .iter()
            .map(|(tp, c)| (tp.clone(), c.offset))
            .collect::<BTreeMap<_, _>>(),
        committed
    );
    assert!(fetched.values().all(|c| c.leader_epoch.is_none()));
    // A partition subset, with one partition of an unknown topic left out as uncommitted.
    let other = TopicPartition::new(unique("never"), 0);
    let subset = admin
        .list_group_offsets(&group, Some(&[tp[1].clone(), other]))
        .await
        .unwrap();
    assert_eq!(
        subset.keys().cloned().collect::<Vec<_>>(),
        vec![tp[1].clone()]
    );
    assert_eq!(subset[&tp[1]].offset, 10);

    let listed = admin.list_groups(&[], &[]).await.unwrap();
    let ours = listed
        .iter()
        .find(|g| g.group_id == group)
        .unwrap_or_else(|| panic!("{group} not in {listed:?}"));
    assert_eq!(ours.protocol_type, "");
    let empty_only = admin.list_groups(&["Empty".into()], &[]).await.unwrap();
    assert!(empty_only.iter().any(|g| g.group_id == group));
    let stable_only = admin.list_groups(&["Stable".into()], &[]).await.unwrap();
    assert!(!stable_only.iter().any(|g| g.group_id == group));

    let described = admin.describe_group(&group).await.unwrap();
    assert_eq!(described.state, "Empty");
    assert!(described.members.is_empty());
    assert!(described.is_inactive());

    // Moving an offset again overwrites it.
    admin
        .alter_group_offsets(&group, &offsets(&[(&tp[0], 7)]))
        .await
        .unwrap();
    let fetched = admin.list_group_offsets(&group, None).await.unwrap();
    assert_eq!(fetched[&tp[0]].offset, 7);

    // Delete one partition's offset, then the group.
    admin
        .delete_group_offsets(&group, std::slice::from_ref(&tp[1]))
        .await
        .unwrap();
    let fetched = admin.list_group_offsets(&group, None).await.unwrap();
    assert_eq!(
        fetched.keys().cloned().collect::<Vec<_>>(),
        vec![tp[0].clone(), tp[2].clone()]
    );
    admin
        .delete_groups(std::slice::from_ref(&group))
        .await
        .unwrap();
    assert!(admin
        .list_group_offsets(&group, None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        code_of(admin.describe_group(&group).await),
        GROUP_ID_NOT_FOUND
    );
    assert_eq!(
        code_of(admin.delete_groups(std::slice::from_ref(&group)).await),
        GROUP_ID_NOT_FOUND
    );
    assert_eq!(
        code_of(
            admin
                .delete_group_offsets(&group, std::slice::from_ref(&tp[0]))
                .await
        ),
        GROUP_ID_NOT_FOUND
    );
    admin.delete_topics(&[topic]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_group_is_described_and_protected() {
    let Some(servers) = bootstrap() else { return };
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    let topic = unique("grp-active");
    let group = unique("g-active");
    topic_with_records(&servers, &admin, &topic, 3, 4, an_hour_ago_ms()).await;
    let tp: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(&topic, p)).collect();

    let member = Member::join(&servers, &group, &topic, &[2, 0]).await;
    let described = admin.describe_group(&group).await.unwrap();
    assert_eq!(described.state, "Stable");
    assert_eq!(described.protocol_type, "consumer");
    assert_eq!(described.protocol, "range");
    assert!(!described.is_inactive());
    assert_eq!(described.members.len(), 1);
    let m = &described.members[0];
    assert_eq!(m.member_id, member.member_id);
    assert_eq!(m.group_instance_id.as_deref(), Some("static-1"));
    assert_eq!(m.client_id, "freshet");
    assert!(!m.host.is_empty(), "{m:?}");
    assert_eq!(m.assignment, vec![tp[0].clone(), tp[2].clone()]);

    let stable = admin.list_groups(&["Stable".into()], &[]).await.unwrap();
    let ours = stable
        .iter()
        .find(|g| g.group_id == group)
        .unwrap_or_else(|| panic!("{group} not in {stable:?}"));
    assert_eq!(
        (ours.protocol_type.as_str(), ours.state.as_str()),
        ("consumer", "Stable")
    );

    // While a member is in the group, administrators may not commit, delete the group, or
    // delete offsets of a topic it subscribes to.
    let alter = admin
        .alter_group_offsets(&group, &offsets(&[(&tp[0], 1)]))
        .await;
    let code = code_of(alter);
    assert!(
        code == UNKNOWN_MEMBER_ID || code == ILLEGAL_GENERATION,
        "{code}"
    );
    assert_eq!(
        code_of(admin.delete_groups(std::slice::from_ref(&group)).await),
        NON_EMPTY_GROUP
    );
    assert_eq!(
        code_of(
            admin
                .delete_group_offsets(&group, std::slice::from_ref(&tp[0]))
                .await
        ),
        GROUP_SUBSCRIBED_TO_TOPIC
    );

    // Once the member leaves, the group is Empty and all of that works.
    member.leave().await;
    let described = admin.describe_group(&group).await.unwrap();
    assert_eq!(described.state, "Empty");
    assert!(described.members.is_empty());
    admin
        .alter_group_offsets(&group, &offsets(&[(&tp[0], 1), (&tp[2], 4)]))
        .await
        .unwrap();
    let fetched = admin.list_group_offsets(&group, None).await.unwrap();
    assert_eq!(
        fetched
            .iter()
            .map(|(tp, c)| (tp.partition, c.offset))
            .collect::<Vec<_>>(),
        vec![(0, 1), (2, 4)]
    );
    admin
        .delete_group_offsets(&group, std::slice::from_ref(&tp[2]))
        .await
        .unwrap();
    admin
        .delete_groups(std::slice::from_ref(&group))
        .await
        .unwrap();
    admin.delete_topics(&[topic]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topics_and_bad_requests_are_per_partition_errors() {
    let Some(servers) = bootstrap() else { return };
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    let group = unique("g-errors");
    // Nothing to commit: no request, no group.
    admin
        .alter_group_offsets(&group, &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(
        code_of(admin.describe_group(&group).await),
        GROUP_ID_NOT_FOUND
    );
    // A commit to a topic that does not exist fails at once (not retried to the timeout).
    let started = std::time::Instant::now();
    let error = admin
        .alter_group_offsets(
            &group,
            &offsets(&[(&TopicPartition::new(unique("never"), 0), 1)]),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(error.kafka_code(), Some(KafkaCode(3)), "{error}");
    let error_text = error.to_string();
    assert!(
        error_text.starts_with(&format!("group {group}, partition never-"))
            && error_text.ends_with(": UNKNOWN_TOPIC_OR_PARTITION (3)"),
        "{error_text}"
    );

    // Partitions past a topic's count are unknown too, for commits and offset deletes.
    let topic = unique("grp-errors");
    topic_with_records(&servers, &admin, &topic, 2, 1, an_hour_ago_ms()).await;
    let tp0 = TopicPartition::new(&topic, 0);
    let tp9 = TopicPartition::new(&topic, 9);
    admin
        .alter_group_offsets(&group, &offsets(&[(&tp0, 1)]))
        .await
        .unwrap();
    assert_eq!(
        code_of(
            admin
                .alter_group_offsets(&group, &offsets(&[(&tp9, 1)]))
                .await
        ),
        KafkaCode(3)
    );
    assert_eq!(
        code_of(admin.delete_group_offsets(&group, &[tp9]).await),
        KafkaCode(3)
    );
    assert_eq!(
        code_of(
            admin
                .delete_group_offsets(&group, &[TopicPartition::new(unique("never"), 0)])
                .await
        ),
        KafkaCode(3)
    );
    // Only the valid commit is there.
    let fetched = admin.list_group_offsets(&group, None).await.unwrap();
    assert_eq!(fetched.keys().collect::<Vec<_>>(), vec![&tp0]);
    admin
        .delete_groups(std::slice::from_ref(&group))
        .await
        .unwrap();
    admin.delete_topics(&[topic]).await.unwrap();
}

/// One ConsumerGroupHeartbeat (KIP-848) at `epoch`.
async fn consumer_heartbeat(
    connection: &Connection,
    group: &str,
    member_id: &str,
    epoch: i32,
    topic: &str,
) -> ConsumerGroupHeartbeatResponse {
    let joining = epoch == 0;
    let request = ConsumerGroupHeartbeatRequest {
        group_id: group.to_owned(),
        member_id: member_id.to_owned(),
        member_epoch: epoch,
        rebalance_timeout_ms: if joining { 30_000 } else { -1 },
        subscribed_topic_names: joining.then(|| vec![topic.to_owned()]),
        topic_partitions: joining.then(Vec::new),
        ..Default::default()
    };
    let response: ConsumerGroupHeartbeatResponse = connection
        .send(ApiKey::ConsumerGroupHeartbeat, 1, &request)
        .unwrap()
        .recv()
        .await
        .unwrap();
    assert_eq!(response.error_code, 0, "{response:?}");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kip848_consumer_group_is_described() {
    let Some(servers) = bootstrap() else { return };
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    let group = unique("g-kip848");
    let cluster = Cluster::new(ClientConfig::new(&servers)).unwrap();
    let connection = loop {
        match coordinator_connection(&cluster, CoordinatorType::Group, &group).await {
            Ok(connection) => break connection,
            Err(error) if error.is_retriable() => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(error) => panic!("FindCoordinator: {error}"),
        }
    };
    if connection.version(ApiKey::ConsumerGroupDescribe).is_err() {
        eprintln!("the broker does not serve ConsumerGroupDescribe: skipping the KIP-848 test");
        return;
    }
    let topic = unique("grp-kip848");
    topic_with_records(&servers, &admin, &topic, 2, 3, an_hour_ago_ms()).await;
    let member_id = unique("member");
    let mut epoch = consumer_heartbeat(&connection, &group, &member_id, 0, &topic)
        .await
        .member_epoch;
    assert!(epoch > 0);
    // Heartbeat until the coordinator reports both partitions as the member's own.
    let want = vec![
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 1),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let described = loop {
        let described = admin.describe_group(&group).await.unwrap();
        if described.members.first().map(|m| &m.assignment) == Some(&want)
            || std::time::Instant::now() > deadline
        {
            break described;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        epoch = consumer_heartbeat(&connection, &group, &member_id, epoch, &topic)
            .await
            .member_epoch;
    };
    assert_eq!(described.group_type, "consumer");
    assert_eq!(described.protocol_type, "consumer");
    assert!(described.group_epoch.unwrap() > 0);
    assert!(!described.is_inactive(), "{described:?}");
    assert_eq!(described.members.len(), 1, "{described:?}");
    let m = &described.members[0];
    assert_eq!(m.member_id, member_id);
    assert_eq!(m.client_id, "freshet");
    assert_eq!(m.assignment, want);
    assert_eq!(m.target_assignment.as_ref(), Some(&want));
    assert_eq!(m.member_epoch, Some(epoch));

    let code = code_of(
        admin
            .alter_group_offsets(&group, &offsets(&[(&want[0], 1)]))
            .await,
    );
    assert!(
        [
            UNKNOWN_MEMBER_ID,
            ILLEGAL_GENERATION,
            KafkaCode(110),
            KafkaCode(113)
        ]
        .contains(&code),
        "{code}"
    );
    assert_eq!(
        code_of(admin.delete_groups(std::slice::from_ref(&group)).await),
        NON_EMPTY_GROUP
    );

    // Leave (epoch -1): the group is Empty and can be reset and deleted.
    let request = ConsumerGroupHeartbeatRequest {
        group_id: group.clone(),
        member_id: member_id.clone(),
        member_epoch: -1,
        ..Default::default()
    };
    let left: ConsumerGroupHeartbeatResponse = connection
        .send(ApiKey::ConsumerGroupHeartbeat, 1, &request)
        .unwrap()
        .recv()
        .await
        .unwrap();
    assert_eq!(left.error_code, 0, "{left:?}");
    let described = admin.describe_group(&group).await.unwrap();
    assert_eq!(
        (described.state.as_str(), described.members.len()),
        ("Empty", 0)
    );
    admin
        .alter_group_offsets(&group, &offsets(&[(&want[0], 2)]))
        .await
        .unwrap();
    assert_eq!(
        admin.list_group_offsets(&group, None).await.unwrap()[&want[0]].offset,
        2
    );
    admin
        .delete_groups(std::slice::from_ref(&group))
        .await
        .unwrap();
    assert_eq!(
        code_of(admin.describe_group(&group).await),
        GROUP_ID_NOT_FOUND
    );
    admin.delete_topics(&[topic]).await.unwrap();
}
