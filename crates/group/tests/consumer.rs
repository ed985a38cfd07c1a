//! Exact-output tests of the KIP-848 consumer group protocol (ConsumerGroupHeartbeat,
//! ConsumerGroupDescribe, topic updates, records, replay); time is an input.

mod common;

use bytes::Bytes;
use common::{ctx, respond, GROUP};
use freshet_group::records;
use freshet_group::{
    codes, ConsumerGroupState, GroupConfig, GroupCoordinator, MemberState, Output, Record,
    TopicMeta, TopicsSnapshot,
};
use freshet_protocol::internal_records::consumer_group_current_member_assignment_value::TopicPartitions as CurrentTp;
use freshet_protocol::internal_records::consumer_group_partition_metadata_value::TopicMetadata;
use freshet_protocol::internal_records::consumer_group_target_assignment_member_value::TopicPartition as TargetTp;
use freshet_protocol::internal_records::{
    ConsumerGroupCurrentMemberAssignmentValue, ConsumerGroupMemberMetadataValue,
    ConsumerGroupMetadataValue, ConsumerGroupPartitionMetadataValue,
    ConsumerGroupTargetAssignmentMemberValue, ConsumerGroupTargetAssignmentMetadataValue,
};
use freshet_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as RequestTp;
use freshet_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as ResponseAssignment, TopicPartitions as ResponseTp,
};
use freshet_protocol::messages::*;
use freshet_protocol::{Response, Uuid};

const T: Uuid = Uuid([1; 16]);
const U: Uuid = Uuid([2; 16]);
const REBALANCE_MS: i32 = 30_000;
const SESSION_MS: i64 = 45_000;

fn topics(t: i32, u: i32) -> TopicsSnapshot {
    let mut snapshot = TopicsSnapshot::new();
    snapshot.insert(
        "t".to_string(),
        TopicMeta {
            id: T,
            partitions: t,
        },
    );
    if u > 0 {
        snapshot.insert(
            "u".to_string(),
            TopicMeta {
                id: U,
                partitions: u,
            },
        );
    }
    snapshot
}

fn coordinator_with(t: i32) -> GroupCoordinator {
    let mut c = GroupCoordinator::new(GroupConfig::default());
    assert_eq!(c.update_topics(0, &topics(t, 0)), Vec::new());
    c
}

fn join(member_id: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: GROUP.to_string(),
        member_id: member_id.to_string(),
        member_epoch: 0,
        rebalance_timeout_ms: REBALANCE_MS,
        subscribed_topic_names: Some(vec!["t".to_string()]),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    }
}

fn beat(member_id: &str, epoch: i32, owned: Option<&[i32]>) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: GROUP.to_string(),
        member_id: member_id.to_string(),
        member_epoch: epoch,
        topic_partitions: owned.map(|ps| {
            vec![RequestTp {
                topic_id: T,
                partitions: ps.to_vec(),
                ..Default::default()
            }]
        }),
        ..Default::default()
    }
}

fn hb(
    c: &mut GroupCoordinator,
    now_ms: i64,
    request: &ConsumerGroupHeartbeatRequest,
) -> (Vec<Output>, ConsumerGroupHeartbeatResponse) {
    hb_v(c, now_ms, 1, request)
}

fn hb_v(
    c: &mut GroupCoordinator,
    now_ms: i64,
    version: i16,
    request: &ConsumerGroupHeartbeatRequest,
) -> (Vec<Output>, ConsumerGroupHeartbeatResponse) {
    let out = c.handle_consumer_group_heartbeat(now_ms, &ctx(7, version), request);
    c.assert_invariants();
    let response = out
        .iter()
        .find_map(|o| match o {
            Output::Respond {
                response: Response::ConsumerGroupHeartbeat(r),
                ..
            } => Some(r.clone()),
            _ => None,
        })
        .expect("a heartbeat response");
    (out, response)
}

fn assignment(ps: &[i32]) -> Option<ResponseAssignment> {
    Some(ResponseAssignment {
        topic_partitions: if ps.is_empty() {
            Vec::new()
        } else {
            vec![ResponseTp {
                topic_id: T,
                partitions: ps.to_vec(),
                ..Default::default()
            }]
        },
        ..Default::default()
    })
}

fn ok(member_id: &str, epoch: i32, assigned: Option<&[i32]>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse {
        member_id: Some(member_id.to_string()),
        member_epoch: epoch,
        heartbeat_interval_ms: 5_000,
        assignment: assigned.and_then(assignment),
        ..Default::default()
    }
}

fn err(code: i16) -> impl Fn(&ConsumerGroupHeartbeatResponse) {
    move |r| {
        assert_eq!(r.error_code, code, "{r:?}");
        assert!(r.error_message.is_some());
    }
}

// ------------------------------------------------------------------ expected records

/// Member metadata with every nullable field null (what a member that never set them has).
fn null_metadata() -> ConsumerGroupMemberMetadataValue {
    ConsumerGroupMemberMetadataValue {
        instance_id: None,
        rack_id: None,
        subscribed_topic_regex: None,
        server_assignor: None,
        ..Default::default()
    }
}

fn member_rec(member_id: &str) -> Record {
    let value = ConsumerGroupMemberMetadataValue {
        client_id: "c".to_string(),
        client_host: "/127.0.0.1".to_string(),
        subscribed_topic_names: vec!["t".to_string()],
        rebalance_timeout_ms: REBALANCE_MS,
        ..null_metadata()
    };
    Record {
        key: records::consumer_group_member_metadata_key(GROUP, member_id),
        value: Some(records::consumer_group_value(&value)),
    }
}

fn partition_metadata_rec(t: i32) -> Record {
    let value = ConsumerGroupPartitionMetadataValue {
        topics: vec![TopicMetadata {
            topic_id: T,
            topic_name: "t".to_string(),
            num_partitions: t,
            ..Default::default()
        }],
        ..Default::default()
    };
    Record {
        key: records::consumer_group_partition_metadata_key(GROUP),
        value: Some(records::consumer_group_value(&value)),
    }
}

fn epoch_rec(epoch: i32) -> Record {
    Record {
        key: records::consumer_group_metadata_key(GROUP),
        value: Some(records::consumer_group_value(&ConsumerGroupMetadataValue {
            epoch,
            ..Default::default()
        })),
    }
}

fn target_rec(member_id: &str, ps: &[i32]) -> Record {
    let value = ConsumerGroupTargetAssignmentMemberValue {
        topic_partitions: if ps.is_empty() {
            Vec::new()
        } else {
            vec![TargetTp {
                topic_id: T,
                partitions: ps.to_vec(),
                ..Default::default()
            }]
        },
        ..Default::default()
    };
    Record {
        key: records::consumer_group_target_assignment_member_key(GROUP, member_id),
        value: Some(records::consumer_group_value(&value)),
    }
}

fn target_epoch_rec(epoch: i32) -> Record {
    Record {
        key: records::consumer_group_target_assignment_metadata_key(GROUP),
        value: Some(records::consumer_group_value(
            &ConsumerGroupTargetAssignmentMetadataValue {
                assignment_epoch: epoch,
                ..Default::default()
            },
        )),
    }
}

fn tps(ps: &[i32]) -> Vec<CurrentTp> {
    if ps.is_empty() {
        return Vec::new();
    }
    vec![CurrentTp {
        topic_id: T,
        partitions: ps.to_vec(),
        ..Default::default()
    }]
}

fn current_rec(
    member_id: &str,
    epoch: i32,
    previous: i32,
    state: MemberState,
    assigned: &[i32],
    pending: &[i32],
) -> Record {
    let value = ConsumerGroupCurrentMemberAssignmentValue {
        member_epoch: epoch,
        previous_member_epoch: previous,
        state: state.value(),
        assigned_partitions: tps(assigned),
        partitions_pending_revocation: tps(pending),
        ..Default::default()
    };
    Record {
        key: records::consumer_group_current_member_assignment_key(GROUP, member_id),
        value: Some(records::consumer_group_value(&value)),
    }
}

fn persist(records: Vec<Record>) -> Output {
    Output::Persist {
        group_id: GROUP.to_string(),
        records,
    }
}

fn tombstones(member_id: &str) -> Vec<Record> {
    [
        records::consumer_group_current_member_assignment_key(GROUP, member_id),
        records::consumer_group_target_assignment_member_key(GROUP, member_id),
        records::consumer_group_member_metadata_key(GROUP, member_id),
    ]
    .into_iter()
    .map(|key| Record { key, value: None })
    .collect()
}

fn state(c: &GroupCoordinator) -> ConsumerGroupState {
    c.consumer_group(GROUP).unwrap().state()
}

/// m1 then m2 join a 4-partition topic and reconcile to Stable at epoch 2 (m1 {0,1},
/// m2 {2,3}); returns at time 400.
fn stable_pair() -> GroupCoordinator {
    let mut c = coordinator_with(4);
    hb(&mut c, 0, &join("m1"));
    hb(&mut c, 100, &join("m2"));
    hb(&mut c, 200, &beat("m1", 1, Some(&[0, 1, 2, 3])));
    hb(&mut c, 300, &beat("m1", 1, Some(&[0, 1])));
    hb(&mut c, 400, &beat("m2", 2, Some(&[])));
    assert_eq!(state(&c), ConsumerGroupState::Stable);
    c
}

// ------------------------------------------------------------------ transitions

#[test]
fn first_member_joins_and_gets_every_partition() {
    let mut c = coordinator_with(3);
    let (out, _) = hb(&mut c, 1_000, &join("m1"));
    assert_eq!(
        out,
        vec![
            persist(vec![
                member_rec("m1"),
                partition_metadata_rec(3),
                epoch_rec(1),
                target_rec("m1", &[0, 1, 2]),
                target_epoch_rec(1),
                current_rec("m1", 1, 0, MemberState::Stable, &[0, 1, 2], &[]),
            ]),
            respond(7, ok("m1", 1, Some(&[0, 1, 2]))),
            Output::ScheduleTimer {
                at_ms: 1_000 + SESSION_MS
            },
        ]
    );
    assert_eq!(state(&c), ConsumerGroupState::Stable);
    // A plain heartbeat changes nothing and carries no assignment; the session moves on.
    let (out, _) = hb(&mut c, 2_000, &beat("m1", 1, None));
    assert_eq!(
        out,
        vec![
            respond(7, ok("m1", 1, None)),
            Output::ScheduleTimer {
                at_ms: 2_000 + SESSION_MS
            },
        ]
    );
}

#[test]
fn second_member_gets_partitions_only_after_the_first_revokes_them() {
    let mut c = coordinator_with(4);
    hb(&mut c, 0, &join("m1"));
    // m2 joins: epoch 2, the target splits the partitions, but m1 still owns m2's share,
    // so m2 gets nothing yet (UNRELEASED_PARTITIONS).
    let (out, _) = hb(&mut c, 100, &join("m2"));
    assert_eq!(
        out[0],
        persist(vec![
            member_rec("m2"),
            epoch_rec(2),
            target_rec("m1", &[0, 1]),
            target_rec("m2", &[2, 3]),
            target_epoch_rec(2),
            current_rec("m2", 2, 0, MemberState::UnreleasedPartitions, &[], &[]),
        ])
    );
    assert_eq!(out[1], respond(7, ok("m2", 2, Some(&[]))));
    assert_eq!(state(&c), ConsumerGroupState::Reconciling);
    // m1, still at epoch 1, is told to keep {0,1}: {2,3} are pending revocation and its
    // epoch does not move until it acknowledges.
    let (out, r) = hb(&mut c, 200, &beat("m1", 1, Some(&[0, 1, 2, 3])));
    assert_eq!(
        out[0],
        persist(vec![current_rec(
            "m1",
            1,
            0,
            MemberState::UnrevokedPartitions,
            &[0, 1],
            &[2, 3]
        )])
    );
    assert_eq!(r, ok("m1", 1, Some(&[0, 1])));
    // Revocation timer: the rebalance timeout from when the revocation started.
    assert!(out.contains(&Output::ScheduleTimer {
        at_ms: 200 + i64::from(REBALANCE_MS)
    }));
    // m2 asks again: still nothing, nothing written.
    let (out, r) = hb(&mut c, 250, &beat("m2", 2, Some(&[])));
    assert_eq!(r, ok("m2", 2, None));
    assert!(!out.iter().any(|o| matches!(o, Output::Persist { .. })));
    // m1 still claims {2,3}: it stays where it is.
    let (out, r) = hb(&mut c, 260, &beat("m1", 1, Some(&[0, 1, 2, 3])));
    assert_eq!(r, ok("m1", 1, None));
    assert!(!out.iter().any(|o| matches!(o, Output::Persist { .. })));
    // m1 acknowledges by sending what it owns now: epoch 2, Stable.
    let (out, r) = hb(&mut c, 300, &beat("m1", 1, Some(&[0, 1])));
    assert_eq!(
        out[0],
        persist(vec![current_rec(
            "m1",
            2,
            1,
            MemberState::Stable,
            &[0, 1],
            &[]
        )])
    );
    assert_eq!(r, ok("m1", 2, None));
    // Now m2 gets {2,3}.
    let (out, r) = hb(&mut c, 400, &beat("m2", 2, Some(&[])));
    assert_eq!(
        out[0],
        persist(vec![current_rec(
            "m2",
            2,
            0,
            MemberState::Stable,
            &[2, 3],
            &[]
        )])
    );
    assert_eq!(r, ok("m2", 2, Some(&[2, 3])));
    assert_eq!(state(&c), ConsumerGroupState::Stable);
}

#[test]
fn lost_response_is_tolerated_one_epoch_back() {
    let mut c = stable_pair();
    // m1 is at epoch 2; it retries with epoch 1 (the answer that moved it to 2 was lost)
    // while owning a subset of its partitions: accepted.
    let (_, r) = hb(&mut c, 500, &beat("m1", 1, Some(&[0, 1])));
    assert_eq!(r.error_code, codes::NONE);
    assert_eq!(r.member_epoch, 2);
    // Owning a partition it no longer has, or not saying what it owns: fenced.
    let (_, r) = hb(&mut c, 600, &beat("m1", 1, Some(&[0, 1, 2])));
    err(codes::FENCED_MEMBER_EPOCH)(&r);
    let (_, r) = hb(&mut c, 600, &beat("m1", 1, None));
    err(codes::FENCED_MEMBER_EPOCH)(&r);
    // An epoch from the future: fenced.
    let (_, r) = hb(&mut c, 700, &beat("m1", 3, None));
    err(codes::FENCED_MEMBER_EPOCH)(&r);
}

#[test]
fn leave_bumps_the_epoch_and_the_rest_take_over() {
    let mut c = stable_pair();
    let (out, r) = hb(&mut c, 1_000, &beat("m2", -1, None));
    assert_eq!(
        out[0],
        persist(
            tombstones("m2")
                .into_iter()
                .chain([
                    epoch_rec(3),
                    target_rec("m1", &[0, 1, 2, 3]),
                    target_epoch_rec(3)
                ])
                .collect()
        )
    );
    assert_eq!(
        r,
        ConsumerGroupHeartbeatResponse {
            member_id: Some("m2".to_string()),
            member_epoch: -1,
            ..Default::default()
        }
    );
    // m1 gets the freed partitions straight away (nothing to revoke).
    let (_, r) = hb(&mut c, 1_100, &beat("m1", 2, Some(&[0, 1])));
    assert_eq!(r, ok("m1", 3, Some(&[0, 1, 2, 3])));
    assert_eq!(state(&c), ConsumerGroupState::Stable);
    // m2 is gone.
    let (_, r) = hb(&mut c, 1_200, &beat("m2", 2, None));
    err(codes::UNKNOWN_MEMBER_ID)(&r);
}

#[test]
fn session_timeout_removes_a_silent_member() {
    let mut c = stable_pair();
    // m1 last heartbeat at 300, m2 at 400.
    assert_eq!(c.next_deadline_ms(), Some(300 + SESSION_MS));
    hb(&mut c, 20_000, &beat("m2", 2, None));
    let out = c.tick(300 + SESSION_MS);
    c.assert_invariants();
    assert_eq!(
        out,
        vec![
            persist(
                tombstones("m1")
                    .into_iter()
                    .chain([
                        epoch_rec(3),
                        target_rec("m2", &[0, 1, 2, 3]),
                        target_epoch_rec(3)
                    ])
                    .collect()
            ),
            Output::ScheduleTimer {
                at_ms: 20_000 + SESSION_MS
            },
        ]
    );
    let (_, r) = hb(&mut c, 46_000, &beat("m2", 2, None));
    assert_eq!(r, ok("m2", 3, Some(&[0, 1, 2, 3])));
}

#[test]
fn member_that_does_not_revoke_in_time_is_removed() {
    let mut c = coordinator_with(4);
    hb(&mut c, 0, &join("m1"));
    hb(&mut c, 100, &join("m2"));
    hb(&mut c, 200, &beat("m1", 1, Some(&[0, 1, 2, 3])));
    // m1 must revoke {2,3} by 200 + rebalance timeout; keep both sessions alive meanwhile.
    hb(&mut c, 20_000, &beat("m2", 2, Some(&[])));
    hb(&mut c, 20_000, &beat("m1", 1, Some(&[0, 1, 2, 3])));
    assert_eq!(c.next_deadline_ms(), Some(200 + i64::from(REBALANCE_MS)));
    c.tick(200 + i64::from(REBALANCE_MS));
    c.assert_invariants();
    let group = c.consumer_group(GROUP).unwrap();
    assert!(!group.members.contains_key("m1"));
    assert_eq!(group.group_epoch, 3);
    let (_, r) = hb(&mut c, 31_000, &beat("m2", 2, Some(&[])));
    assert_eq!(r, ok("m2", 3, Some(&[0, 1, 2, 3])));
    let (_, r) = hb(&mut c, 31_000, &beat("m1", 1, Some(&[0, 1])));
    err(codes::UNKNOWN_MEMBER_ID)(&r);
}

#[test]
fn static_member_leaves_and_its_new_incarnation_takes_over() {
    let mut c = coordinator_with(4);
    let static_join = |id: &str| ConsumerGroupHeartbeatRequest {
        instance_id: Some("i1".to_string()),
        ..join(id)
    };
    hb(&mut c, 0, &static_join("a"));
    hb(&mut c, 0, &join("m2"));
    hb(&mut c, 10, &beat("a", 1, Some(&[0, 1, 2, 3])));
    hb(&mut c, 20, &beat("a", 1, Some(&[0, 1])));
    hb(&mut c, 30, &beat("m2", 2, Some(&[])));
    assert_eq!(state(&c), ConsumerGroupState::Stable);
    // Another member id with the same instance id while "a" is active.
    let (_, r) = hb(&mut c, 40, &static_join("b"));
    err(codes::UNRELEASED_INSTANCE_ID)(&r);
    // Static leave (-2): "a" keeps its partitions, no new epoch.
    let leave = ConsumerGroupHeartbeatRequest {
        instance_id: Some("i1".to_string()),
        ..beat("a", -2, None)
    };
    let (out, r) = hb(&mut c, 50, &leave);
    assert_eq!(r.member_epoch, -2);
    assert_eq!(
        out[0],
        persist(vec![current_rec(
            "a",
            -2,
            1,
            MemberState::Stable,
            &[0, 1],
            &[]
        )])
    );
    let group = c.consumer_group(GROUP).unwrap();
    assert_eq!(group.group_epoch, 2);
    // The restarted instance comes back with a new member id and gets {0,1} at once.
    let (out, r) = hb(&mut c, 60, &static_join("b"));
    assert_eq!(r, ok("b", 2, Some(&[0, 1])));
    let mut expected = tombstones("a");
    expected.push(target_rec("b", &[0, 1]));
    expected.push(Record {
        key: records::consumer_group_member_metadata_key(GROUP, "b"),
        value: Some(records::consumer_group_value(
            &ConsumerGroupMemberMetadataValue {
                instance_id: Some("i1".to_string()),
                client_id: "c".to_string(),
                client_host: "/127.0.0.1".to_string(),
                subscribed_topic_names: vec!["t".to_string()],
                rebalance_timeout_ms: REBALANCE_MS,
                ..null_metadata()
            },
        )),
    });
    expected.push(current_rec("b", 2, 0, MemberState::Stable, &[0, 1], &[]));
    assert_eq!(out[0], persist(expected));
    let group = c.consumer_group(GROUP).unwrap();
    assert_eq!(group.group_epoch, 2);
    assert_eq!(
        group.static_members.get("i1").map(String::as_str),
        Some("b")
    );
    // The old incarnation is fenced by its instance id.
    let stale = ConsumerGroupHeartbeatRequest {
        instance_id: Some("i1".to_string()),
        ..beat("a", 2, None)
    };
    let (_, r) = hb(&mut c, 70, &stale);
    err(codes::FENCED_INSTANCE_ID)(&r);
}

#[test]
fn adding_partitions_bumps_the_epoch_and_members_settle() {
    let mut c = stable_pair();
    let out = c.update_topics(1_000, &topics(8, 0));
    assert_eq!(
        out,
        vec![persist(vec![
            partition_metadata_rec(8),
            epoch_rec(3),
            // Sticky: the old partitions stay; the new ones alternate.
            target_rec("m1", &[0, 1, 4, 6]),
            target_rec("m2", &[2, 3, 5, 7]),
            target_epoch_rec(3),
        ])]
    );
    assert_eq!(state(&c), ConsumerGroupState::Reconciling);
    // Nobody owns the new partitions: each member gets them on its next heartbeat.
    let (_, r) = hb(&mut c, 1_100, &beat("m1", 2, Some(&[0, 1])));
    assert_eq!(r, ok("m1", 3, Some(&[0, 1, 4, 6])));
    let (_, r) = hb(&mut c, 1_200, &beat("m2", 2, Some(&[2, 3])));
    assert_eq!(r, ok("m2", 3, Some(&[2, 3, 5, 7])));
    assert_eq!(state(&c), ConsumerGroupState::Stable);
    // The same snapshot again changes nothing.
    assert_eq!(c.update_topics(1_300, &topics(8, 0)), Vec::new());
    // A topic nobody subscribes to changes nothing either.
    assert_eq!(c.update_topics(1_300, &topics(8, 5)), Vec::new());
}

#[test]
fn range_assignor_when_members_ask_for_it() {
    let mut c = coordinator_with(5);
    let range = |id: &str| ConsumerGroupHeartbeatRequest {
        server_assignor: Some("range".to_string()),
        ..join(id)
    };
    hb(&mut c, 0, &range("m1"));
    hb(&mut c, 0, &range("m2"));
    let group = c.consumer_group(GROUP).unwrap();
    assert_eq!(group.preferred_assignor(), "range");
    let target: Vec<Vec<i32>> = ["m1", "m2"]
        .iter()
        .map(|m| group.target_of(m)[&T].iter().copied().collect())
        .collect();
    assert_eq!(target, vec![vec![0, 1, 2], vec![3, 4]]);
    // An unknown assignor is refused.
    let bad = ConsumerGroupHeartbeatRequest {
        server_assignor: Some("sticky".to_string()),
        ..join("m3")
    };
    let (_, r) = hb(&mut c, 0, &bad);
    err(codes::UNSUPPORTED_ASSIGNOR)(&r);
}

#[test]
fn regex_subscription_follows_new_topics() {
    let mut c = coordinator_with(2);
    let request = ConsumerGroupHeartbeatRequest {
        subscribed_topic_names: None,
        subscribed_topic_regex: Some("t|u".to_string()),
        ..join("m1")
    };
    let (_, r) = hb(&mut c, 0, &request);
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.assignment.unwrap().topic_partitions.len(), 1);
    // A matching topic appears: new epoch, and the member gets it.
    let out = c.update_topics(10, &topics(2, 3));
    assert_eq!(out.len(), 1);
    let (_, r) = hb(&mut c, 20, &beat("m1", 1, Some(&[0, 1])));
    assert_eq!(r.member_epoch, 2);
    let assigned = r.assignment.unwrap().topic_partitions;
    assert_eq!(assigned.len(), 2);
    assert_eq!(assigned[1].topic_id, U);
    assert_eq!(assigned[1].partitions, vec![0, 1, 2]);
    // Internal topics match a regex too, as in Kafka.
    let mut with_internal = topics(2, 3);
    let offsets_id = Uuid([9; 16]);
    with_internal.insert(
        "__consumer_offsets".to_string(),
        TopicMeta {
            id: offsets_id,
            partitions: 4,
        },
    );
    c.update_topics(40, &with_internal);
    let everything = ConsumerGroupHeartbeatRequest {
        subscribed_topic_names: None,
        subscribed_topic_regex: Some(".*(?:u|__consumer_offsets).*".to_string()),
        ..join("m3")
    };
    hb(&mut c, 50, &everything);
    let group = c.consumer_group(GROUP).unwrap();
    let subscribed = group.members["m3"].subscribed_topics(&with_internal);
    assert_eq!(
        subscribed.into_iter().collect::<Vec<_>>(),
        vec!["__consumer_offsets", "u"]
    );
    assert!(
        group.target_of("m3").contains_key(&offsets_id),
        "the member's target holds __consumer_offsets partitions"
    );
    // A bad regex is refused.
    let bad = ConsumerGroupHeartbeatRequest {
        subscribed_topic_names: None,
        subscribed_topic_regex: Some("(".to_string()),
        ..join("m2")
    };
    let (_, r) = hb(&mut c, 30, &bad);
    err(codes::INVALID_REGULAR_EXPRESSION)(&r);
}

#[test]
fn request_validation_and_unknown_members() {
    let mut c = coordinator_with(2);
    // v1: the client generates the member id.
    let (_, r) = hb(&mut c, 0, &join(""));
    err(codes::INVALID_REQUEST)(&r);
    // v0: the coordinator generates it (22 characters, like a Kafka Uuid string).
    let (_, r) = hb_v(&mut c, 0, 0, &join(""));
    assert_eq!(r.error_code, codes::NONE);
    let generated = r.member_id.unwrap();
    assert_eq!(generated.len(), 22);
    assert!(c
        .consumer_group(GROUP)
        .unwrap()
        .members
        .contains_key(&generated));
    let invalid = [
        ConsumerGroupHeartbeatRequest {
            rebalance_timeout_ms: -1,
            ..join("x")
        },
        ConsumerGroupHeartbeatRequest {
            topic_partitions: None,
            ..join("x")
        },
        ConsumerGroupHeartbeatRequest {
            subscribed_topic_names: None,
            ..join("x")
        },
        ConsumerGroupHeartbeatRequest {
            group_id: String::new(),
            ..join("x")
        },
        ConsumerGroupHeartbeatRequest {
            instance_id: Some(String::new()),
            ..join("x")
        },
        beat("x", -3, None),
        beat("x", -2, None),
    ];
    for request in &invalid {
        let (out, r) = hb(&mut c, 0, request);
        err(codes::INVALID_REQUEST)(&r);
        assert!(!out.iter().any(|o| matches!(o, Output::Persist { .. })));
    }
    let (_, r) = hb(&mut c, 0, &beat("nobody", 1, None));
    err(codes::UNKNOWN_MEMBER_ID)(&r);
    let (_, r) = hb(&mut c, 0, &beat("nobody", -1, None));
    err(codes::UNKNOWN_MEMBER_ID)(&r);
    let other_group = ConsumerGroupHeartbeatRequest {
        group_id: "other".to_string(),
        ..beat("x", 1, None)
    };
    let (_, r) = hb(&mut c, 0, &other_group);
    err(codes::GROUP_ID_NOT_FOUND)(&r);
    // Loading.
    let mut loading = GroupCoordinator::loading(GroupConfig::default());
    let (_, r) = hb(&mut loading, 0, &join("m"));
    err(codes::COORDINATOR_LOAD_IN_PROGRESS)(&r);
}

#[test]
fn group_max_size() {
    let mut c = GroupCoordinator::new(GroupConfig {
        consumer_max_size: 1,
        ..GroupConfig::default()
    });
    c.update_topics(0, &topics(2, 0));
    hb(&mut c, 0, &join("m1"));
    let (_, r) = hb(&mut c, 0, &join("m2"));
    err(codes::GROUP_MAX_SIZE_REACHED)(&r);
    // A known member rejoining is not a new one.
    let (_, r) = hb(&mut c, 0, &join("m1"));
    assert_eq!(r.error_code, codes::NONE);
}

#[test]
fn rejoin_with_epoch_zero_resets_the_member() {
    let mut c = stable_pair();
    // m1 was fenced client-side and rejoins with epoch 0 and its id: it owns nothing now,
    // gets its target back at the current epoch.
    let (_, r) = hb(&mut c, 500, &join("m1"));
    assert_eq!(r, ok("m1", 2, Some(&[0, 1])));
    assert_eq!(c.consumer_group(GROUP).unwrap().group_epoch, 2);
}

// ------------------------------------------------------------------ other APIs

#[test]
fn describe_list_and_classic_apis_on_a_consumer_group() {
    let mut c = stable_pair();
    let request = ConsumerGroupDescribeRequest {
        group_ids: vec![GROUP.to_string(), "missing".to_string()],
        ..Default::default()
    };
    let out = c.handle_consumer_group_describe(&ctx(1, 0), &request);
    let Output::Respond {
        response: Response::ConsumerGroupDescribe(d),
        ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    let g = &d.groups[0];
    assert_eq!(
        (
            g.error_code,
            g.group_state.as_str(),
            g.group_epoch,
            g.assignment_epoch
        ),
        (codes::NONE, "Stable", 2, 2)
    );
    assert_eq!(g.assignor_name, "uniform");
    assert_eq!(g.members.len(), 2);
    let m1 = &g.members[0];
    assert_eq!(m1.member_id, "m1");
    assert_eq!(m1.assignment.topic_partitions[0].topic_name, "t");
    assert_eq!(m1.assignment.topic_partitions[0].partitions, vec![0, 1]);
    assert_eq!(
        m1.target_assignment.topic_partitions[0].partitions,
        vec![0, 1]
    );
    assert_eq!(d.groups[1].error_code, codes::GROUP_ID_NOT_FOUND);

    // ListGroups: type consumer, KIP-848 state names, filters.
    let list = |c: &GroupCoordinator, states: &[&str], types: &[&str]| {
        let request = ListGroupsRequest {
            states_filter: states.iter().map(|s| s.to_string()).collect(),
            types_filter: types.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        match &c.handle_list_groups(&ctx(1, 5), &request)[0] {
            Output::Respond {
                response: Response::ListGroups(r),
                ..
            } => r.groups.clone(),
            other => panic!("{other:?}"),
        }
    };
    let groups = list(&c, &[], &[]);
    assert_eq!(groups.len(), 1);
    assert_eq!(
        (
            groups[0].group_type.as_str(),
            groups[0].group_state.as_str(),
            groups[0].protocol_type.as_str()
        ),
        ("consumer", "Stable", "consumer")
    );
    assert_eq!(list(&c, &["stable"], &["CONSUMER"]).len(), 1);
    assert!(list(&c, &["Empty"], &[]).is_empty());
    assert!(list(&c, &[], &["classic"]).is_empty());

    // DescribeGroups (classic API, v0-v5): Dead with no error, as Kafka.
    let out = c.handle_describe_groups(
        &ctx(1, 5),
        &DescribeGroupsRequest {
            groups: vec![GROUP.to_string()],
            ..Default::default()
        },
    );
    match &out[0] {
        Output::Respond {
            response: Response::DescribeGroups(r),
            ..
        } => {
            assert_eq!(r.groups[0].group_state, "Dead");
            assert_eq!(r.groups[0].error_code, codes::NONE);
        }
        other => panic!("{other:?}"),
    }

    // Classic JoinGroup into it: INCONSISTENT_GROUP_PROTOCOL (migration policy disabled).
    let out = c.handle_join(500, &ctx(2, 9), &common::range_join(""));
    assert_eq!(
        out,
        vec![respond(
            2,
            common::join_error("", codes::INCONSISTENT_GROUP_PROTOCOL)
        )]
    );

    // DeleteGroups refuses a group with members.
    let delete = DeleteGroupsRequest {
        groups_names: vec![GROUP.to_string()],
        ..Default::default()
    };
    match &c.handle_delete_groups(&ctx(3, 2), &delete)[0] {
        Output::Respond {
            response: Response::DeleteGroups(r),
            ..
        } => assert_eq!(r.results[0].error_code, codes::NON_EMPTY_GROUP),
        other => panic!("{other:?}"),
    }
    // Once everybody left it is deleted with every record tombstoned.
    hb(&mut c, 600, &beat("m1", -1, None));
    hb(&mut c, 600, &beat("m2", -1, None));
    assert_eq!(state(&c), ConsumerGroupState::Empty);
    let out = c.handle_delete_groups(&ctx(3, 2), &delete);
    assert_eq!(
        out[0],
        persist(
            [
                records::consumer_group_target_assignment_metadata_key(GROUP),
                records::consumer_group_partition_metadata_key(GROUP),
                records::consumer_group_metadata_key(GROUP),
            ]
            .into_iter()
            .map(|key| Record { key, value: None })
            .collect()
        )
    );
    assert!(c.consumer_group(GROUP).is_none());
}

fn commit(member_id: &str, epoch: i32) -> OffsetCommitRequest {
    commit_partition(member_id, epoch, 0)
}

fn commit_partition(member_id: &str, epoch: i32, partition: i32) -> OffsetCommitRequest {
    use freshet_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    OffsetCommitRequest {
        group_id: GROUP.to_string(),
        generation_id_or_member_epoch: epoch,
        member_id: member_id.to_string(),
        topics: vec![OffsetCommitRequestTopic {
            name: "t".to_string(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: partition,
                committed_offset: 42,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn commit_code(c: &mut GroupCoordinator, version: i16, request: &OffsetCommitRequest) -> i16 {
    let out = c.handle_offset_commit(1_000, &ctx(4, version), request);
    out.iter()
        .find_map(|o| match o {
            Output::Respond {
                response: Response::OffsetCommit(r),
                ..
            } => Some(r.topics[0].partitions[0].error_code),
            _ => None,
        })
        .unwrap()
}

#[test]
fn offset_commit_and_fetch_check_member_epochs() {
    let mut c = stable_pair();
    assert_eq!(commit_code(&mut c, 9, &commit("m1", 2)), codes::NONE);
    assert_eq!(
        commit_code(&mut c, 9, &commit("m1", 3)),
        codes::STALE_MEMBER_EPOCH
    );
    // KIP-1251: m1 (epoch 2) has owned partition 0 since epoch 1, so a commit still
    // carrying epoch 1 is its own; partition 2 it gave up to m2, which got it at epoch 2.
    assert_eq!(commit_code(&mut c, 9, &commit("m1", 1)), codes::NONE);
    assert_eq!(
        commit_code(&mut c, 9, &commit_partition("m1", 1, 2)),
        codes::STALE_MEMBER_EPOCH
    );
    assert_eq!(
        commit_code(&mut c, 9, &commit_partition("m2", 1, 2)),
        codes::STALE_MEMBER_EPOCH
    );
    assert_eq!(
        commit_code(&mut c, 9, &commit_partition("m2", 2, 2)),
        codes::NONE
    );
    // Epoch 0 is before anything was assigned.
    assert_eq!(
        commit_code(&mut c, 9, &commit("m1", 0)),
        codes::STALE_MEMBER_EPOCH
    );
    assert_eq!(
        commit_code(&mut c, 9, &commit("zz", 2)),
        codes::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        commit_code(&mut c, 8, &commit("m1", 2)),
        codes::UNSUPPORTED_VERSION
    );
    // An admin commit (epoch -1) into a group with members.
    assert_eq!(
        commit_code(&mut c, 9, &commit("", -1)),
        codes::UNKNOWN_MEMBER_ID
    );
    assert_eq!(c.offsets(GROUP).unwrap()[&("t".to_string(), 0)].offset, 42);

    let fetch = |member_id: Option<&str>, epoch: i32| OffsetFetchRequest {
        groups: vec![offset_fetch_request::OffsetFetchRequestGroup {
            group_id: GROUP.to_string(),
            member_id: member_id.map(str::to_string),
            member_epoch: epoch,
            topics: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    let fetch_code = |c: &GroupCoordinator, request: &OffsetFetchRequest| match &c
        .handle_offset_fetch(&ctx(5, 9), request)[0]
    {
        Output::Respond {
            response: Response::OffsetFetch(r),
            ..
        } => r.groups[0].error_code,
        other => panic!("{other:?}"),
    };
    assert_eq!(fetch_code(&c, &fetch(Some("m1"), 2)), codes::NONE);
    assert_eq!(
        fetch_code(&c, &fetch(Some("m1"), 1)),
        codes::STALE_MEMBER_EPOCH
    );
    assert_eq!(
        fetch_code(&c, &fetch(Some("zz"), 2)),
        codes::UNKNOWN_MEMBER_ID
    );
    assert_eq!(fetch_code(&c, &fetch(None, -1)), codes::NONE);
    // Once empty, an admin commit is accepted.
    hb(&mut c, 600, &beat("m1", -1, None));
    hb(&mut c, 600, &beat("m2", -1, None));
    assert_eq!(commit_code(&mut c, 9, &commit("", -1)), codes::NONE);
}

#[test]
fn a_rejoin_or_a_reload_ends_commits_with_older_epochs() {
    let mut c = stable_pair();
    // m1 rejoins (epoch 0): it gets partition 0 back, but as a new ownership.
    hb(&mut c, 500, &join("m1"));
    let epoch = c.consumer_group(GROUP).unwrap().members["m1"].member_epoch;
    assert!(epoch >= 2, "{epoch}");
    assert_eq!(
        commit_code(&mut c, 9, &commit("m1", 1)),
        codes::STALE_MEMBER_EPOCH
    );
    assert_eq!(commit_code(&mut c, 9, &commit("m1", epoch)), codes::NONE);
}

#[test]
fn empty_classic_group_becomes_a_consumer_group_and_back() {
    let mut c = coordinator_with(2);
    // A standalone commit creates an empty classic group with offsets.
    assert_eq!(commit_code(&mut c, 9, &commit("", -1)), codes::NONE);
    let (out, r) = hb(&mut c, 0, &join("m1"));
    assert_eq!(r.member_epoch, 1);
    // No classic record was ever written, so no classic tombstone either.
    let Output::Persist {
        records: written, ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(written[0], member_rec("m1"));
    assert!(c.offsets(GROUP).is_some_and(|o| o.len() == 1));
    // Once empty, a classic JoinGroup turns it back, tombstoning its KIP-848 records.
    hb(&mut c, 10, &beat("m1", -1, None));
    let out = c.handle_join(20, &ctx(9, 3), &common::range_join(""));
    let Output::Persist {
        records: written, ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(written.len(), 3);
    assert!(written.iter().all(|r| r.value.is_none()));
    assert!(c.consumer_group(GROUP).is_none());
    assert!(c.offsets(GROUP).is_some_and(|o| o.len() == 1));
}

// ------------------------------------------------------------------ replay

/// Replays every record the coordinator asked to persist, in order.
fn replayed(outputs: &[Output], now_ms: i64) -> GroupCoordinator {
    let mut c = GroupCoordinator::loading(GroupConfig::default());
    for output in outputs {
        if let Output::Persist { records, .. } = output {
            for r in records {
                c.replay(&r.key, r.value.as_ref()).expect("replays");
            }
        }
    }
    c.finish_load(now_ms);
    c
}

#[test]
fn replay_rebuilds_the_group() {
    let mut c = coordinator_with(4);
    let mut all = Vec::new();
    let static_join = ConsumerGroupHeartbeatRequest {
        instance_id: Some("i".to_string()),
        ..join("s")
    };
    all.extend(hb(&mut c, 0, &join("m1")).0);
    all.extend(hb(&mut c, 10, &static_join).0);
    all.extend(hb(&mut c, 20, &join("m3")).0);
    all.extend(hb(&mut c, 30, &beat("m1", 1, Some(&[0, 1, 2, 3]))).0);
    all.extend(c.update_topics(40, &topics(6, 0)));
    all.extend(hb(&mut c, 50, &beat("m3", 3, Some(&[]))).0);
    all.extend(hb(&mut c, 60, &beat("m1", 1, None)).0);
    all.extend(hb(&mut c, 70, &beat("m3", -1, None)).0);
    let live = c.consumer_group(GROUP).unwrap().clone();
    assert_eq!(live.members.len(), 2);
    assert_ne!(live.state(), ConsumerGroupState::Stable);
    let mut loaded = replayed(&all, 1_000);
    loaded.assert_invariants();
    let mut rebuilt = loaded.consumer_group(GROUP).unwrap().clone();
    // Timers restart at load and the state timestamp is not persisted.
    for (id, member) in &mut rebuilt.members {
        member.session_deadline_ms = live.members[id].session_deadline_ms;
        member.revocation_deadline_ms = live.members[id].revocation_deadline_ms;
    }
    rebuilt.state_timestamp_ms = live.state_timestamp_ms;
    assert_eq!(rebuilt, live);
    // The group's own snapshot of records rebuilds it too.
    let snapshot = vec![persist(live.records())];
    let mut from_snapshot = replayed(&snapshot, 1_000)
        .consumer_group(GROUP)
        .unwrap()
        .clone();
    for (id, member) in &mut from_snapshot.members {
        member.session_deadline_ms = live.members[id].session_deadline_ms;
        member.revocation_deadline_ms = live.members[id].revocation_deadline_ms;
    }
    from_snapshot.state_timestamp_ms = live.state_timestamp_ms;
    assert_eq!(from_snapshot, live);
    // After load the same topics change nothing, and members carry on.
    assert_eq!(loaded.update_topics(1_000, &topics(6, 0)), Vec::new());
    let member_epoch = live.members["m1"].member_epoch;
    let (_, r) = hb(&mut loaded, 1_100, &beat("m1", member_epoch, None));
    assert_eq!(r.error_code, codes::NONE);
    // Deleted groups stay deleted.
    let mut all = all;
    all.extend(hb(&mut c, 80, &beat("m1", -1, None)).0);
    let leave_static = ConsumerGroupHeartbeatRequest {
        instance_id: Some("i".to_string()),
        ..beat("s", -1, None)
    };
    all.extend(hb(&mut c, 80, &leave_static).0);
    all.extend(c.handle_delete_groups(
        &ctx(1, 2),
        &DeleteGroupsRequest {
            groups_names: vec![GROUP.to_string()],
            ..Default::default()
        },
    ));
    assert!(c.consumer_group(GROUP).is_none());
    let loaded = replayed(&all, 2_000);
    assert!(loaded.consumer_group(GROUP).is_none());
    assert!(loaded.group_ids().next().is_none());
}

#[test]
fn garbage_consumer_records_are_errors() {
    let mut c = GroupCoordinator::loading(GroupConfig::default());
    let key = records::consumer_group_metadata_key(GROUP);
    assert!(c
        .replay(&key, Some(&Bytes::from_static(b"\x00\x01\x00")))
        .is_err());
    assert!(c
        .replay(&key, Some(&Bytes::from_static(b"\x00\x00")))
        .is_err());
    let member_key = records::consumer_group_member_metadata_key(GROUP, "m");
    assert!(c
        .replay(&member_key, Some(&Bytes::from_static(b"\x00\x00\xff\xff")))
        .is_err());
}

#[test]
fn topics_changed_while_away_are_picked_up_at_load() {
    let c = stable_pair();
    let records: Vec<Output> = vec![persist(c.consumer_group(GROUP).unwrap().records())];
    c.assert_invariants();
    // The broker restarts; meanwhile the topic grew to 6 partitions.
    let mut loaded = GroupCoordinator::loading(GroupConfig::default());
    for output in &records {
        if let Output::Persist { records, .. } = output {
            for r in records {
                loaded.replay(&r.key, r.value.as_ref()).unwrap();
            }
        }
    }
    assert_eq!(loaded.update_topics(5_000, &topics(6, 0)), Vec::new());
    let out = loaded.finish_load(5_000);
    loaded.assert_invariants();
    assert!(
        matches!(&out[0], Output::Persist { records, .. } if records[0] == partition_metadata_rec(6))
    );
    assert_eq!(loaded.consumer_group(GROUP).unwrap().group_epoch, 3);
    // Without topics from the broker, load changes nothing (unknown is not "no topics").
    let mut blind = GroupCoordinator::loading(GroupConfig::default());
    for output in &records {
        if let Output::Persist { records, .. } = output {
            for r in records {
                blind.replay(&r.key, r.value.as_ref()).unwrap();
            }
        }
    }
    let out = blind.finish_load(5_000);
    assert!(!out.iter().any(|o| matches!(o, Output::Persist { .. })));
    assert_eq!(blind.consumer_group(GROUP).unwrap().group_epoch, 2);
}

/// The benchmark's scenario: ten stable members, then the topic grows by 900 partitions.
/// New partitions are free, so each member takes its share on its very next heartbeat.
#[test]
fn ten_members_settle_in_one_round_when_900_partitions_are_added() {
    let mut c = coordinator_with(10);
    let ids: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let mut owned: Vec<Vec<i32>> = vec![Vec::new(); 10];
    let mut epochs = vec![0; 10];
    // Join everybody, then heartbeat until Stable.
    for (i, id) in ids.iter().enumerate() {
        let (_, r) = hb(&mut c, 0, &join(id));
        epochs[i] = r.member_epoch;
        owned[i] = r
            .assignment
            .unwrap()
            .topic_partitions
            .first()
            .map(|tp| tp.partitions.clone())
            .unwrap_or_default();
    }
    let round =
        |c: &mut GroupCoordinator, now: i64, owned: &mut Vec<Vec<i32>>, epochs: &mut Vec<i32>| {
            for (i, id) in ids.iter().enumerate() {
                let (_, r) = hb(c, now, &beat(id, epochs[i], Some(&owned[i])));
                assert_eq!(r.error_code, codes::NONE);
                epochs[i] = r.member_epoch;
                if let Some(a) = r.assignment {
                    owned[i] = a
                        .topic_partitions
                        .first()
                        .map(|tp| tp.partitions.clone())
                        .unwrap_or_default();
                }
            }
        };
    let mut rounds = 0;
    while state(&c) != ConsumerGroupState::Stable {
        rounds += 1;
        assert!(rounds < 5);
        round(&mut c, rounds * 100, &mut owned, &mut epochs);
    }
    assert!(owned.iter().all(|o| o.len() == 1));
    c.update_topics(1_000, &topics(910, 0));
    assert_eq!(state(&c), ConsumerGroupState::Reconciling);
    round(&mut c, 1_100, &mut owned, &mut epochs);
    assert_eq!(state(&c), ConsumerGroupState::Stable);
    assert!(owned.iter().all(|o| o.len() == 91));
    let group = c.consumer_group(GROUP).unwrap();
    assert!(epochs.iter().all(|e| *e == group.assignment_epoch));
}

#[test]
fn a_member_that_already_dropped_partitions_skips_the_revocation_step() {
    let mut c = coordinator_with(4);
    hb(&mut c, 0, &join("m1"));
    hb(&mut c, 100, &join("m2"));
    // m1 reports it owns only {0,1}: nothing to revoke, it moves to epoch 2 at once.
    let (out, r) = hb(&mut c, 200, &beat("m1", 1, Some(&[0, 1])));
    assert_eq!(r, ok("m1", 2, Some(&[0, 1])));
    assert_eq!(
        out[0],
        persist(vec![current_rec(
            "m1",
            2,
            1,
            MemberState::Stable,
            &[0, 1],
            &[]
        )])
    );
    let (_, r) = hb(&mut c, 300, &beat("m2", 2, Some(&[])));
    assert_eq!(r, ok("m2", 2, Some(&[2, 3])));
    assert_eq!(state(&c), ConsumerGroupState::Stable);
}

#[test]
fn v0_static_member_rejoining_without_an_id_gets_a_new_one() {
    let mut c = coordinator_with(2);
    let static_join = ConsumerGroupHeartbeatRequest {
        instance_id: Some("i".to_string()),
        ..join("")
    };
    let (_, r) = hb_v(&mut c, 0, 0, &static_join);
    let first = r.member_id.unwrap();
    let leave = ConsumerGroupHeartbeatRequest {
        instance_id: Some("i".to_string()),
        ..beat(&first, -2, None)
    };
    hb_v(&mut c, 10, 0, &leave);
    let (_, r) = hb_v(&mut c, 20, 0, &static_join);
    let second = r.member_id.unwrap();
    assert_eq!(second.len(), 22);
    assert_ne!(second, first);
    assert_eq!(r.assignment, assignment(&[0, 1]));
    let group = c.consumer_group(GROUP).unwrap();
    assert_eq!(group.static_members["i"], second);
    assert_eq!(group.members.len(), 1);
}
