//! Exact-output tests of the classic group state machine; time is an input.

mod common;

use common::*;
use freshet_group::codes;
use freshet_group::records;
use freshet_group::{GroupConfig, GroupCoordinator, GroupState, Output};
use freshet_protocol::internal_records::group_metadata_value::MemberMetadata;
use freshet_protocol::internal_records::GroupMetadataValue;
use freshet_protocol::messages::leave_group_request::MemberIdentity;
use freshet_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use freshet_protocol::messages::{JoinGroupResponse, LeaveGroupRequest, SyncGroupRequest};

fn member_record(id: &str, assignment: &'static [u8]) -> MemberMetadata {
    MemberMetadata {
        member_id: id.to_string(),
        group_instance_id: None,
        client_id: "c".to_string(),
        client_host: "/127.0.0.1".to_string(),
        rebalance_timeout: REBALANCE_MS,
        session_timeout: SESSION_MS,
        subscription: bytes::Bytes::from_static(b"m"),
        assignment: bytes::Bytes::from_static(assignment),
        unknown_tagged_fields: Vec::new(),
    }
}

fn group_persist(
    generation: i32,
    leader: Option<&str>,
    at_ms: i64,
    members: Vec<MemberMetadata>,
) -> Output {
    let value = GroupMetadataValue {
        protocol_type: "consumer".to_string(),
        generation,
        protocol: leader.map(|_| "range".to_string()),
        leader: leader.map(str::to_string),
        current_state_timestamp: at_ms,
        members,
        unknown_tagged_fields: Vec::new(),
    };
    Output::Persist {
        group_id: GROUP.to_string(),
        records: vec![freshet_group::Record {
            key: records::group_key(GROUP),
            value: Some(records::group_value(&value)),
        }],
    }
}

#[test]
fn join_of_one_member_with_kip394_then_leader_sync() {
    let mut c = coordinator();
    let id = generated_id(1);
    // v4+: the first join without an id is answered MEMBER_ID_REQUIRED with a fresh id,
    // remembered for one session timeout.
    let out = c.handle_join(100, &ctx(1, 5), &range_join(""));
    assert_eq!(
        out,
        vec![
            respond(1, join_error(&id, codes::MEMBER_ID_REQUIRED)),
            Output::ScheduleTimer {
                at_ms: 100 + i64::from(SESSION_MS)
            },
        ]
    );
    assert_eq!(c.group(GROUP).unwrap().state, GroupState::Empty);
    // Rejoining with it completes generation 1 at once (everybody is in, no initial delay).
    let out = c.handle_join(200, &ctx(2, 5), &range_join(&id));
    assert_eq!(
        out,
        vec![
            respond(2, join_ok(1, &id, &id, &[&id])),
            // The pending-sync timer: the rebalance timeout from now.
            Output::ScheduleTimer {
                at_ms: 200 + i64::from(SESSION_MS)
            },
        ]
    );
    assert_eq!(
        c.group(GROUP).unwrap().state,
        GroupState::CompletingRebalance
    );
    let out = c.handle_sync(300, &ctx(3, 5), &sync(&id, 1, &[(&id, b"assign")]));
    assert_eq!(
        out,
        vec![
            group_persist(1, Some(&id), 300, vec![member_record(&id, b"assign")]),
            respond(3, sync_ok(b"assign")),
            Output::ScheduleTimer {
                at_ms: 300 + i64::from(SESSION_MS)
            },
        ]
    );
    assert_eq!(c.group(GROUP).unwrap().state, GroupState::Stable);
    c.assert_invariants();
}

#[test]
fn pending_member_id_is_forgotten_after_session_timeout() {
    let mut c = coordinator();
    let id = generated_id(1);
    c.handle_join(0, &ctx(1, 5), &range_join(""));
    let out = c.tick(i64::from(SESSION_MS));
    assert!(out.is_empty(), "{out:?}");
    // The id is no longer known: the group exists (Empty) but the member does not.
    let out = c.handle_join(i64::from(SESSION_MS), &ctx(2, 5), &range_join(&id));
    assert_eq!(
        responses(&out),
        vec![respond(2, join_error(&id, codes::UNKNOWN_MEMBER_ID))]
    );
}

#[test]
fn two_members_follower_sync_waits_for_leader() {
    let mut c = coordinator();
    let a = generated_id(1);
    let b = generated_id(2);
    c.handle_join(0, &ctx(1, 3), &range_join(""));
    c.handle_sync(0, &ctx(2, 3), &sync(&a, 1, &[(&a, b"a1")]));
    // b joins: the group prepares a rebalance and waits for a.
    let out = c.handle_join(10, &ctx(3, 3), &range_join(""));
    assert_eq!(responses(&out), vec![]);
    assert_eq!(
        c.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
    assert_eq!(
        heartbeat_code(&mut c, 20, &a, 1),
        codes::REBALANCE_IN_PROGRESS
    );
    // a rejoins: generation 2; a stays leader and alone sees the member list.
    let out = c.handle_join(30, &ctx(4, 3), &range_join(&a));
    assert_eq!(
        responses(&out),
        vec![
            respond(4, join_ok(2, &a, &a, &[&a, &b])),
            respond(3, join_ok(2, &a, &b, &[]))
        ]
    );
    // The follower's sync is parked until the leader's arrives.
    let out = c.handle_sync(40, &ctx(5, 3), &sync(&b, 2, &[]));
    assert_eq!(responses(&out), vec![]);
    assert_eq!(heartbeat_code(&mut c, 45, &b, 2), codes::NONE);
    let out = c.handle_sync(50, &ctx(6, 3), &sync(&a, 2, &[(&a, b"A"), (&b, b"B")]));
    assert_eq!(
        out,
        vec![
            group_persist(
                2,
                Some(&a),
                50,
                vec![member_record(&a, b"A"), member_record(&b, b"B")]
            ),
            respond(6, sync_ok(b"A")),
            respond(5, sync_ok(b"B")),
            // Both sessions restart when their syncs are answered (Kafka's
            // propagateAssignment), later than b's heartbeat at 45.
            Output::ScheduleTimer {
                at_ms: 50 + i64::from(SESSION_MS)
            },
        ]
    );
    assert_eq!(c.group(GROUP).unwrap().state, GroupState::Stable);
    c.assert_invariants();
}

#[test]
fn initial_rebalance_delay_waits_and_extends_per_new_member() {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        ..config()
    };
    let mut c = GroupCoordinator::new(config);
    let a = generated_id(1);
    let b = generated_id(2);
    let out = c.handle_join(0, &ctx(1, 3), &range_join(""));
    assert_eq!(out, vec![Output::ScheduleTimer { at_ms: 3_000 }]);
    let out = c.handle_join(1_000, &ctx(2, 3), &range_join(""));
    assert_eq!(out, vec![]);
    // A member joined during the delay: it is re-armed for another delay.
    let out = c.tick(3_000);
    assert_eq!(out, vec![Output::ScheduleTimer { at_ms: 6_000 }]);
    let out = c.tick(6_000);
    assert_eq!(
        out,
        vec![
            respond(1, join_ok(1, &a, &a, &[&a, &b])),
            respond(2, join_ok(1, &a, &b, &[])),
            Output::ScheduleTimer {
                at_ms: 6_000 + i64::from(SESSION_MS)
            },
        ]
    );
}

#[test]
fn heartbeat_error_codes_per_state() {
    let (mut c, a, b) = stable_pair();
    assert_eq!(heartbeat_code(&mut c, 1, &a, 2), codes::NONE);
    assert_eq!(heartbeat_code(&mut c, 1, &a, 1), codes::ILLEGAL_GENERATION);
    assert_eq!(
        heartbeat_code(&mut c, 1, "nobody", 2),
        codes::UNKNOWN_MEMBER_ID
    );
    let out = c.handle_heartbeat(1, &ctx(0, 4), &heartbeat("x", 0).clone_with_group("other"));
    assert_eq!(
        responses(&out),
        vec![heartbeat_error(codes::UNKNOWN_MEMBER_ID)]
    );
    // A changed subscription from b starts a rebalance.
    c.handle_join(2, &ctx(9, 3), &join(&b, &[("range", b"new")]));
    assert_eq!(
        c.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
    assert_eq!(
        heartbeat_code(&mut c, 3, &a, 2),
        codes::REBALANCE_IN_PROGRESS
    );
    let out = c.handle_sync(3, &ctx(10, 3), &sync(&a, 2, &[]));
    assert_eq!(
        responses(&out),
        vec![respond(10, sync_error(codes::REBALANCE_IN_PROGRESS))]
    );
}

trait WithGroup {
    fn clone_with_group(&self, group: &str) -> Self;
}

impl WithGroup for freshet_protocol::messages::HeartbeatRequest {
    fn clone_with_group(&self, group: &str) -> Self {
        Self {
            group_id: group.to_string(),
            ..self.clone()
        }
    }
}

#[test]
fn session_expiry_removes_member_and_rebalances() {
    let (mut c, a, b) = stable_pair();
    let session = i64::from(SESSION_MS);
    assert_eq!(heartbeat_code(&mut c, 5_000, &a, 2), codes::NONE);
    // b's last sign of life was its SyncGroup at 0: it expires at the session timeout.
    let out = c.tick(session);
    assert_eq!(
        out,
        vec![Output::ScheduleTimer {
            at_ms: 5_000 + session
        }]
    );
    let group = c.group(GROUP).unwrap();
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert!(!group.members.contains_key(&b));
    // a learns of the rebalance by heartbeat and rejoins: alone, it completes at once.
    assert_eq!(
        heartbeat_code(&mut c, session + 1, &a, 2),
        codes::REBALANCE_IN_PROGRESS
    );
    let out = c.handle_join(session + 2, &ctx(20, 3), &range_join(&a));
    assert_eq!(
        responses(&out),
        vec![respond(20, join_ok(3, &a, &a, &[&a]))]
    );
    assert_eq!(
        heartbeat_code(&mut c, session + 3, &b, 3),
        codes::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn rebalance_timeout_drops_members_that_did_not_rejoin() {
    let (mut c, a, b) = stable_pair();
    let out = c.handle_join(1_000, &ctx(20, 3), &join(&a, &[("range", b"changed")]));
    assert_eq!(out, vec![]);
    // b keeps heartbeating but never rejoins.
    for t in [5_000, 9_000, 13_000, 17_000] {
        assert_eq!(
            heartbeat_code(&mut c, t, &b, 2),
            codes::REBALANCE_IN_PROGRESS
        );
    }
    let deadline = 1_000 + i64::from(REBALANCE_MS);
    let out = c.tick(deadline);
    let mut expected = join_ok(3, &a, &a, &[&a]);
    expected.members[0].metadata = bytes::Bytes::from_static(b"changed");
    assert_eq!(responses(&out), vec![respond(20, expected)]);
    assert_eq!(
        heartbeat_code(&mut c, deadline + 1, &b, 2),
        codes::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn pending_sync_timeout_removes_members_that_never_synced() {
    let mut c = coordinator();
    let a = generated_id(1);
    c.handle_join(0, &ctx(1, 3), &range_join(""));
    // Neither sync nor heartbeat: after the rebalance timeout the member is removed,
    // the group runs an empty generation and says so on disk.
    let out = c.tick(i64::from(REBALANCE_MS));
    assert_eq!(
        out,
        vec![group_persist(2, None, i64::from(REBALANCE_MS), vec![])]
    );
    assert_eq!(c.group(GROUP).unwrap().state, GroupState::Empty);
    assert_eq!(heartbeat_code(&mut c, 1, &a, 1), codes::UNKNOWN_MEMBER_ID);
}

#[test]
fn static_member_rejoin_replaces_id_without_rebalance() {
    let mut c = coordinator();
    let old = generated_id(1);
    let new = generated_id(2);
    c.handle_join(0, &ctx(1, 5), &static_join("", "i-1"));
    c.handle_sync(0, &ctx(2, 5), &sync(&old, 1, &[(&old, b"p0")]));
    // The restarted client knows only its instance id.
    let out = c.handle_join(100, &ctx(3, 9), &static_join("", "i-1"));
    let group = c.group(GROUP).unwrap();
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.generation, 1);
    assert_eq!(group.members[&new].assignment.as_ref(), b"p0");
    let mut expected = join_ok(1, &new, &new, &[&new]);
    expected.skip_assignment = true;
    expected.members[0].group_instance_id = Some("i-1".to_string());
    assert_eq!(responses(&out), vec![respond(3, expected)]);
    assert!(out.iter().any(|o| matches!(o, Output::Persist { .. })));
    // The old incarnation is fenced.
    let mut hb = heartbeat(&old, 1);
    hb.group_instance_id = Some("i-1".to_string());
    let out = c.handle_heartbeat(101, &ctx(0, 4), &hb);
    assert_eq!(
        responses(&out),
        vec![heartbeat_error(codes::FENCED_INSTANCE_ID)]
    );
    let out = c.handle_sync(102, &ctx(4, 5), &sync(&new, 1, &[]));
    assert_eq!(responses(&out), vec![respond(4, sync_ok(b"p0"))]);
}

#[test]
fn static_member_rejoin_that_changes_the_selected_protocol_rebalances() {
    let mut c = coordinator();
    let old = generated_id(1);
    let b = generated_id(2);
    let both_range_first: &[(&str, &'static [u8])] = &[("range", b"m"), ("roundrobin", b"m")];
    let both_rr_first: &[(&str, &'static [u8])] = &[("roundrobin", b"m"), ("range", b"m")];
    let mut first = join("", both_range_first);
    first.group_instance_id = Some("i-1".to_string());
    c.handle_join(0, &ctx(1, 5), &first);
    c.handle_sync(0, &ctx(2, 5), &sync(&old, 1, &[(&old, b"p0")]));
    c.handle_join(0, &ctx(3, 3), &join("", both_rr_first));
    let mut again = join(&old, both_range_first);
    again.group_instance_id = Some("i-1".to_string());
    c.handle_join(0, &ctx(4, 5), &again);
    c.handle_sync(0, &ctx(5, 3), &sync(&b, 2, &[]));
    c.handle_sync(0, &ctx(6, 5), &sync(&old, 2, &[(&old, b"o"), (&b, b"b")]));
    // One vote each: the tie goes to "range".
    assert_eq!(
        c.group(GROUP).unwrap().protocol_name.as_deref(),
        Some("range")
    );
    // The restarted static member now prefers roundrobin: two votes, the protocol changes.
    let mut restarted = join("", both_rr_first);
    restarted.group_instance_id = Some("i-1".to_string());
    let out = c.handle_join(10, &ctx(7, 5), &restarted);
    assert_eq!(responses(&out), vec![]);
    assert_eq!(
        c.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
    assert_eq!(
        heartbeat_code(&mut c, 11, &b, 2),
        codes::REBALANCE_IN_PROGRESS
    );
    c.assert_invariants();
}

#[test]
fn leave_batched_v3_and_single_v0() {
    let (mut c, a, b) = stable_pair();
    let request = LeaveGroupRequest {
        group_id: GROUP.to_string(),
        members: vec![
            MemberIdentity {
                member_id: b.clone(),
                ..Default::default()
            },
            MemberIdentity {
                member_id: "ghost".to_string(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let out = c.handle_leave(10, &ctx(7, 3), &request);
    let expected = LeaveGroupResponse {
        members: vec![
            MemberResponse {
                member_id: b.clone(),
                group_instance_id: None,
                error_code: codes::NONE,
                ..Default::default()
            },
            MemberResponse {
                member_id: "ghost".to_string(),
                group_instance_id: None,
                error_code: codes::UNKNOWN_MEMBER_ID,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    assert_eq!(responses(&out), vec![respond(7, expected)]);
    assert_eq!(
        c.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
    // The last member leaves with v0: the group becomes Empty with a new generation.
    let request = LeaveGroupRequest {
        group_id: GROUP.to_string(),
        member_id: a.clone(),
        ..Default::default()
    };
    let out = c.handle_leave(20, &ctx(8, 0), &request);
    assert_eq!(
        out,
        vec![
            group_persist(3, None, 20, vec![]),
            respond(8, LeaveGroupResponse::default())
        ]
    );
    assert_eq!(c.group(GROUP).unwrap().state, GroupState::Empty);
}

#[test]
fn join_validation_errors() {
    let mut c = coordinator();
    let mut bad = range_join("");
    bad.session_timeout_ms = 1;
    let out = c.handle_join(0, &ctx(1, 5), &bad);
    assert_eq!(
        out,
        vec![respond(1, join_error("", codes::INVALID_SESSION_TIMEOUT))]
    );
    let mut bad = range_join("");
    bad.group_id = String::new();
    let out = c.handle_join(0, &ctx(2, 5), &bad);
    assert_eq!(
        out,
        vec![respond(2, join_error("", codes::INVALID_GROUP_ID))]
    );
    let out = c.handle_join(0, &ctx(3, 5), &range_join("who"));
    assert_eq!(
        out,
        vec![respond(3, join_error("who", codes::UNKNOWN_MEMBER_ID))]
    );
    let (mut c, _, _) = stable_pair();
    let out = c.handle_join(0, &ctx(4, 3), &join("", &[("roundrobin", b"m")]));
    assert_eq!(
        out,
        vec![respond(
            4,
            join_error("", codes::INCONSISTENT_GROUP_PROTOCOL)
        )]
    );
}

#[test]
fn protocol_selection_takes_the_most_votes_among_common_protocols() {
    let mut c = coordinator();
    let config_ids: Vec<String> = (1..=3).map(generated_id).collect();
    c.handle_join(
        0,
        &ctx(1, 3),
        &join("", &[("sticky", b"s"), ("range", b"r")]),
    );
    let leader = &config_ids[0];
    c.handle_sync(0, &ctx(2, 3), &sync(leader, 1, &[]));
    c.handle_join(
        0,
        &ctx(3, 3),
        &join("", &[("range", b"r"), ("sticky", b"s")]),
    );
    c.handle_join(
        0,
        &ctx(4, 3),
        &join("", &[("range", b"r"), ("sticky", b"s"), ("other", b"o")]),
    );
    let out = c.handle_join(
        0,
        &ctx(5, 3),
        &join(leader, &[("sticky", b"s"), ("range", b"r")]),
    );
    let group = c.group(GROUP).unwrap();
    assert_eq!(group.protocol_name.as_deref(), Some("range"));
    assert_eq!(responses(&out).len(), 3);
    let leader_response: Vec<JoinGroupResponse> = out
        .iter()
        .filter_map(|o| match o {
            Output::Respond {
                response: freshet_protocol::Response::JoinGroup(r),
                ..
            } if !r.members.is_empty() => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(leader_response.len(), 1);
    assert!(leader_response[0]
        .members
        .iter()
        .all(|m| m.metadata.as_ref() == b"r"));
}

#[test]
fn partition_for_matches_java_string_hash() {
    // "hello".hashCode() == 99162322 in Java.
    assert_eq!(freshet_group::partition_for("hello", 50), 99_162_322 % 50);
    assert_eq!(freshet_group::partition_for("", 50), 0);
    for id in [
        "group-1",
        "é",
        "a-very-long-group-name-with-overflowing-hash",
    ] {
        let p = freshet_group::partition_for(id, 50);
        assert!((0..50).contains(&p));
    }
}

#[test]
fn static_replacement_fences_the_old_parked_join() {
    let mut c = coordinator();
    let old = generated_id(1);
    let b = generated_id(2);
    let d = generated_id(3);
    let new = generated_id(4);
    c.handle_join(0, &ctx(1, 5), &static_join("", "i-1"));
    c.handle_sync(0, &ctx(2, 5), &sync(&old, 1, &[(&old, b"p0")]));
    c.handle_join(0, &ctx(3, 3), &range_join(""));
    c.handle_join(0, &ctx(4, 5), &static_join(&old, "i-1"));
    c.handle_sync(0, &ctx(5, 3), &sync(&b, 2, &[]));
    c.handle_sync(0, &ctx(6, 5), &sync(&old, 2, &[(&old, b"o"), (&b, b"b")]));
    // d joins: a rebalance starts; the static member rejoins and waits for b.
    c.handle_join(1, &ctx(7, 3), &range_join(""));
    let out = c.handle_join(2, &ctx(8, 5), &static_join(&old, "i-1"));
    assert_eq!(responses(&out), vec![]);
    // Its restarted process joins with the same instance id: the parked join is fenced.
    let out = c.handle_join(3, &ctx(9, 5), &static_join("", "i-1"));
    assert_eq!(
        responses(&out),
        vec![respond(8, join_error(&old, codes::FENCED_INSTANCE_ID))]
    );
    // b rejoins: generation 3 completes with the new incarnation as leader.
    let out = c.handle_join(4, &ctx(10, 3), &range_join(&b));
    let mut leader = join_ok(3, &new, &new, &[&b, &d, &new]);
    leader.members[2].group_instance_id = Some("i-1".to_string());
    assert_eq!(
        responses(&out),
        vec![
            respond(10, join_ok(3, &new, &b, &[])),
            respond(7, join_ok(3, &new, &d, &[])),
            respond(9, leader),
        ]
    );
    c.assert_invariants();
}

#[test]
fn static_leader_rejoin_before_v9_gets_no_members_and_the_old_leader_id() {
    let mut c = coordinator();
    let old = generated_id(1);
    let new = generated_id(2);
    c.handle_join(0, &ctx(1, 5), &static_join("", "i-1"));
    c.handle_sync(0, &ctx(2, 5), &sync(&old, 1, &[(&old, b"p0")]));
    // New metadata but the same selected protocol: still no rebalance.
    let mut request = static_join("", "i-1");
    request.protocols[0].metadata = bytes::Bytes::from_static(b"m");
    let out = c.handle_join(10, &ctx(3, 8), &request);
    assert_eq!(
        responses(&out),
        vec![respond(3, join_ok(1, &old, &new, &[]))]
    );
    assert_eq!(
        c.group(GROUP).unwrap().leader.as_deref(),
        Some(new.as_str())
    );
    assert_eq!(c.group(GROUP).unwrap().state, GroupState::Stable);
}

#[test]
fn rebalance_with_only_absent_static_members_waits_another_timeout() {
    let mut c = coordinator();
    let s = generated_id(1);
    let d = generated_id(2);
    c.handle_join(0, &ctx(1, 5), &static_join("", "i-1"));
    c.handle_sync(0, &ctx(2, 5), &sync(&s, 1, &[(&s, b"p")]));
    c.handle_join(0, &ctx(3, 3), &range_join(""));
    c.handle_join(0, &ctx(4, 5), &static_join(&s, "i-1"));
    c.handle_sync(0, &ctx(5, 3), &sync(&d, 2, &[]));
    c.handle_sync(0, &ctx(6, 5), &sync(&s, 2, &[(&s, b"s"), (&d, b"d")]));
    // d leaves: a rebalance starts that the static member never joins, though it heartbeats.
    let leave = LeaveGroupRequest {
        group_id: GROUP.to_string(),
        member_id: d.clone(),
        ..Default::default()
    };
    c.handle_leave(1_000, &ctx(7, 0), &leave);
    assert_eq!(
        heartbeat_code(&mut c, 15_000, &s, 2),
        codes::REBALANCE_IN_PROGRESS
    );
    let deadline = 1_000 + i64::from(REBALANCE_MS);
    let out = c.tick(deadline);
    assert_eq!(
        out,
        vec![Output::ScheduleTimer {
            at_ms: 15_000 + i64::from(SESSION_MS)
        }]
    );
    let group = c.group(GROUP).unwrap();
    assert_eq!(
        (group.state, group.generation),
        (GroupState::PreparingRebalance, 2)
    );
    assert_eq!(
        group.join_deadline_ms,
        Some(deadline + i64::from(REBALANCE_MS))
    );
    // Its session then runs out: the group empties with a new generation.
    let out = c.tick(15_000 + i64::from(SESSION_MS));
    assert_eq!(out, vec![group_persist(3, None, 25_000, vec![])]);
}

#[test]
fn huge_client_id_still_gives_an_encodable_member_id() {
    let mut c = coordinator();
    let mut context = ctx(1, 3);
    // The longest client id a request header can carry, nearly: the id's suffix must not
    // push the member id past i16::MAX bytes.
    context.client_id = "a".repeat(32_760);
    c.handle_join(0, &context, &range_join(""));
    let group = c.group(GROUP).unwrap();
    let member_id = group.members.keys().next().unwrap().clone();
    assert!(member_id.len() <= i16::MAX as usize);
    // The leader's sync persists the group record, which must encode.
    let out = c.handle_sync(0, &ctx(2, 3), &sync(&member_id, 1, &[]));
    assert!(matches!(out[0], Output::Persist { .. }));
}

/// Two members that have their generation-2 JoinGroup answers, no SyncGroup yet.
fn completing_pair() -> (GroupCoordinator, String, String) {
    let mut c = coordinator();
    let a = generated_id(1);
    let b = generated_id(2);
    c.handle_join(0, &ctx(1, 3), &range_join(""));
    c.handle_sync(0, &ctx(2, 3), &sync(&a, 1, &[(&a, b"a1")]));
    c.handle_join(0, &ctx(3, 3), &range_join(""));
    c.handle_join(0, &ctx(4, 3), &range_join(&a));
    assert_eq!(
        c.group(GROUP).unwrap().state,
        GroupState::CompletingRebalance
    );
    (c, a, b)
}

#[test]
fn leave_during_completing_rebalance_answers_parked_syncs() {
    let (mut c, a, b) = completing_pair();
    let out = c.handle_sync(10, &ctx(5, 3), &sync(&b, 2, &[]));
    assert_eq!(responses(&out), vec![]);
    let request = LeaveGroupRequest {
        group_id: GROUP.to_string(),
        member_id: a.clone(),
        ..Default::default()
    };
    // The leader leaves before assigning: b's parked sync learns of the new rebalance, and
    // b alone has not rejoined yet, so the group waits for it.
    let out = c.handle_leave(20, &ctx(6, 0), &request);
    assert_eq!(
        responses(&out),
        vec![
            respond(5, sync_error(codes::REBALANCE_IN_PROGRESS)),
            respond(6, LeaveGroupResponse::default()),
        ]
    );
    let group = c.group(GROUP).unwrap();
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(group.leader.as_deref(), Some(b.as_str()));
    let out = c.handle_join(30, &ctx(7, 3), &range_join(&b));
    assert_eq!(responses(&out), vec![respond(7, join_ok(3, &b, &b, &[&b]))]);
}

#[test]
fn follower_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let (mut c, a, b) = completing_pair();
    c.handle_sync(0, &ctx(5, 3), &sync(&a, 2, &[(&a, b"A"), (&b, b"B")]));
    assert_eq!(c.group(GROUP).unwrap().state, GroupState::Stable);
    // b heartbeats (so its session holds) but never sends SyncGroup.
    for t in [5_000, 10_000, 15_000] {
        assert_eq!(heartbeat_code(&mut c, t, &b, 2), codes::NONE);
        assert_eq!(heartbeat_code(&mut c, t, &a, 2), codes::NONE);
    }
    let out = c.tick(i64::from(REBALANCE_MS));
    assert_eq!(responses(&out), vec![]);
    let group = c.group(GROUP).unwrap();
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert!(!group.members.contains_key(&b));
    assert_eq!(
        heartbeat_code(&mut c, 20_001, &b, 2),
        codes::UNKNOWN_MEMBER_ID
    );
}

// ------------------------------------------------------------ rejoins of known members

#[test]
fn stable_follower_rejoin_with_unchanged_protocols_gets_the_current_generation() {
    let (mut c, a, b) = stable_pair();
    // Kafka (ClassicGroup, Stable, follower whose protocols match): the current generation,
    // no members, no rebalance; nothing changes so no timer moves.
    let out = c.handle_join(100, &ctx(7, 5), &range_join(&b));
    assert_eq!(out, vec![respond(7, join_ok(2, &a, &b, &[]))]);
    let group = c.group(GROUP).unwrap();
    assert_eq!((group.state, group.generation), (GroupState::Stable, 2));
    assert_eq!(heartbeat_code(&mut c, 150, &a, 2), codes::NONE);
    // It may sync again and gets the assignment it already has.
    let out = c.handle_sync(200, &ctx(8, 5), &sync(&b, 2, &[]));
    assert_eq!(
        out,
        vec![
            respond(8, sync_ok(b"b")),
            // a's heartbeat at 150 is now the oldest sign of life.
            Output::ScheduleTimer {
                at_ms: 150 + i64::from(SESSION_MS)
            },
        ]
    );
    c.assert_invariants();
}

#[test]
fn stable_follower_rejoin_with_reordered_protocols_rebalances() {
    let mut c = coordinator();
    let a = generated_id(1);
    let b = generated_id(2);
    let range_first: &[(&str, &'static [u8])] = &[("range", b"m"), ("roundrobin", b"m")];
    let rr_first: &[(&str, &'static [u8])] = &[("roundrobin", b"m"), ("range", b"m")];
    c.handle_join(0, &ctx(1, 3), &join("", range_first));
    c.handle_sync(0, &ctx(2, 3), &sync(&a, 1, &[]));
    c.handle_join(0, &ctx(3, 3), &join("", range_first));
    c.handle_join(0, &ctx(4, 3), &join(&a, range_first));
    c.handle_sync(0, &ctx(5, 3), &sync(&b, 2, &[]));
    c.handle_sync(0, &ctx(6, 3), &sync(&a, 2, &[(&a, b"a"), (&b, b"b")]));
    assert_eq!(c.group(GROUP).unwrap().state, GroupState::Stable);
    // Same protocols in another order: Kafka compares them as ordered lists, so this is a
    // change and the join is parked for a rebalance.
    let out = c.handle_join(100, &ctx(7, 5), &join(&b, rr_first));
    assert_eq!(out, vec![]);
    assert_eq!(
        c.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
    c.assert_invariants();
}

#[test]
fn stable_leader_rejoin_with_unchanged_protocols_starts_a_rebalance() {
    let (mut c, a, b) = stable_pair();
    // Kafka: a JoinGroup from the leader in Stable always rebalances (it is how a leader
    // asks for a new assignment when topic metadata changed). The join is parked; the
    // earliest deadline is still b's session (10_000), so no timer is output.
    let out = c.handle_join(100, &ctx(7, 5), &range_join(&a));
    assert_eq!(out, vec![]);
    let group = c.group(GROUP).unwrap();
    assert_eq!(
        (group.state, group.generation),
        (GroupState::PreparingRebalance, 2)
    );
    assert_eq!(group.join_deadline_ms, Some(100 + i64::from(REBALANCE_MS)));
    assert_eq!(
        heartbeat_code(&mut c, 200, &b, 2),
        codes::REBALANCE_IN_PROGRESS
    );
    // b rejoins: generation 3, a still leads and alone gets the members.
    let out = c.handle_join(300, &ctx(8, 5), &range_join(&b));
    assert_eq!(
        out,
        vec![
            respond(7, join_ok(3, &a, &a, &[&a, &b])),
            respond(8, join_ok(3, &a, &b, &[])),
            Output::ScheduleTimer {
                at_ms: 300 + i64::from(SESSION_MS)
            },
        ]
    );
    let out = c.handle_sync(400, &ctx(9, 5), &sync(&b, 3, &[]));
    assert_eq!(out, vec![]);
    let out = c.handle_sync(500, &ctx(10, 5), &sync(&a, 3, &[(&a, b"A3"), (&b, b"B3")]));
    assert_eq!(
        out,
        vec![
            group_persist(
                3,
                Some(&a),
                500,
                vec![member_record(&a, b"A3"), member_record(&b, b"B3")]
            ),
            respond(10, sync_ok(b"A3")),
            respond(9, sync_ok(b"B3")),
            // Both syncs were answered at 500: Kafka restarts the session of every member
            // whose SyncGroup it answers.
            Output::ScheduleTimer {
                at_ms: 500 + i64::from(SESSION_MS)
            },
        ]
    );
    c.assert_invariants();
}

#[test]
fn completing_rebalance_rejoin_with_unchanged_protocols_gets_the_join_answer_again() {
    let (mut c, a, b) = completing_pair();
    // b's sync is parked, then b (which lost its JoinGroup answer, say) joins again.
    let out = c.handle_sync(10, &ctx(5, 5), &sync(&b, 2, &[]));
    assert_eq!(out, vec![]);
    let out = c.handle_join(20, &ctx(6, 5), &range_join(&b));
    assert_eq!(out, vec![respond(6, join_ok(2, &a, &b, &[]))]);
    // The leader too: Kafka answers it with the members again (no rebalance).
    let out = c.handle_join(30, &ctx(7, 5), &range_join(&a));
    assert_eq!(out, vec![respond(7, join_ok(2, &a, &a, &[&a, &b]))]);
    let group = c.group(GROUP).unwrap();
    assert_eq!(
        (group.state, group.generation),
        (GroupState::CompletingRebalance, 2)
    );
    // b's parked sync survived and is answered by the leader's.
    let out = c.handle_sync(40, &ctx(8, 5), &sync(&a, 2, &[(&a, b"A"), (&b, b"B")]));
    assert_eq!(
        out,
        vec![
            group_persist(
                2,
                Some(&a),
                40,
                vec![member_record(&a, b"A"), member_record(&b, b"B")]
            ),
            respond(8, sync_ok(b"A")),
            respond(5, sync_ok(b"B")),
            Output::ScheduleTimer {
                at_ms: 40 + i64::from(SESSION_MS)
            },
        ]
    );
    c.assert_invariants();
}

#[test]
fn completing_rebalance_rejoin_with_changed_protocols_rebalances() {
    let (mut c, a, b) = completing_pair();
    c.handle_sync(10, &ctx(5, 5), &sync(&b, 2, &[]));
    // New metadata: a new rebalance; b's parked sync learns of it.
    let out = c.handle_join(20, &ctx(6, 5), &join(&a, &[("range", b"new")]));
    assert_eq!(
        out,
        vec![
            respond(5, sync_error(codes::REBALANCE_IN_PROGRESS)),
            // b's session restarts with that answer; a's join is parked.
            Output::ScheduleTimer {
                at_ms: 20 + i64::from(SESSION_MS)
            },
        ]
    );
    assert_eq!(
        c.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
    let out = c.handle_join(30, &ctx(7, 5), &range_join(&b));
    let mut leader = join_ok(3, &a, &a, &[&a, &b]);
    leader.members[0].metadata = bytes::Bytes::from_static(b"new");
    assert_eq!(
        responses(&out),
        vec![respond(6, leader), respond(7, join_ok(3, &a, &b, &[]))]
    );
    c.assert_invariants();
}

// ------------------------------------------------------------ SyncGroup errors

/// A SyncGroup v5 naming the protocol type and name it expects.
fn sync_v5(
    member_id: &str,
    generation: i32,
    protocol_type: &str,
    protocol: &str,
) -> SyncGroupRequest {
    SyncGroupRequest {
        protocol_type: Some(protocol_type.to_string()),
        protocol_name: Some(protocol.to_string()),
        ..sync(member_id, generation, &[])
    }
}

#[test]
fn sync_error_codes_in_a_stable_group() {
    let (mut c, _a, b) = stable_pair();
    let cases: Vec<(SyncGroupRequest, i16)> = vec![
        (sync("nobody", 2, &[]), codes::UNKNOWN_MEMBER_ID),
        // The member is checked before the generation.
        (sync("nobody", 1, &[]), codes::UNKNOWN_MEMBER_ID),
        (
            SyncGroupRequest {
                group_id: "other".to_string(),
                ..sync(&b, 2, &[])
            },
            codes::UNKNOWN_MEMBER_ID,
        ),
        // An instance id the group does not know.
        (
            SyncGroupRequest {
                group_instance_id: Some("i-9".to_string()),
                ..sync(&b, 2, &[])
            },
            codes::UNKNOWN_MEMBER_ID,
        ),
        (sync(&b, 1, &[]), codes::ILLEGAL_GENERATION),
        (sync(&b, 3, &[]), codes::ILLEGAL_GENERATION),
        // The generation is checked before the protocol.
        (
            sync_v5(&b, 1, "connect", "range"),
            codes::ILLEGAL_GENERATION,
        ),
        (
            sync_v5(&b, 2, "connect", "range"),
            codes::INCONSISTENT_GROUP_PROTOCOL,
        ),
        (
            sync_v5(&b, 2, "consumer", "roundrobin"),
            codes::INCONSISTENT_GROUP_PROTOCOL,
        ),
    ];
    for (handle, (request, error)) in (100..).zip(cases) {
        let out = c.handle_sync(10, &ctx(handle, 5), &request);
        assert_eq!(out, vec![respond(handle, sync_error(error))], "{request:?}");
    }
    let group = c.group(GROUP).unwrap();
    assert_eq!((group.state, group.generation), (GroupState::Stable, 2));
    assert_eq!(group.members[&b].assignment.as_ref(), b"b");
    // Matching type and name (v5), or none named (before v5): the assignment.
    let out = c.handle_sync(20, &ctx(200, 5), &sync_v5(&b, 2, "consumer", "range"));
    assert_eq!(out, vec![respond(200, sync_ok(b"b"))]);
    let out = c.handle_sync(30, &ctx(201, 4), &sync(&b, 2, &[]));
    assert_eq!(out, vec![respond(201, sync_ok(b"b"))]);
    c.assert_invariants();
}

#[test]
fn sync_error_codes_while_preparing_rebalance() {
    let (mut c, a, _b) = stable_pair();
    // A third member joins: the group waits for a and b to rejoin.
    c.handle_join(100, &ctx(7, 3), &range_join(""));
    assert_eq!(
        c.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
    let cases: Vec<(SyncGroupRequest, i16)> = vec![
        (sync(&a, 2, &[]), codes::REBALANCE_IN_PROGRESS),
        (
            sync_v5(&a, 2, "consumer", "range"),
            codes::REBALANCE_IN_PROGRESS,
        ),
        // Member, generation and protocol are checked before the state.
        (sync("nobody", 2, &[]), codes::UNKNOWN_MEMBER_ID),
        (sync(&a, 1, &[]), codes::ILLEGAL_GENERATION),
        (
            sync_v5(&a, 2, "consumer", "roundrobin"),
            codes::INCONSISTENT_GROUP_PROTOCOL,
        ),
    ];
    for (handle, (request, error)) in (200..).zip(cases) {
        let out = c.handle_sync(200, &ctx(handle, 5), &request);
        assert_eq!(out, vec![respond(handle, sync_error(error))], "{request:?}");
    }
    assert_eq!(
        c.group(GROUP).unwrap().state,
        GroupState::PreparingRebalance
    );
    c.assert_invariants();
}

#[test]
fn sync_v5_during_the_first_rebalance_is_rebalance_in_progress() {
    // The first rebalance of an empty group has no protocol selected yet: Kafka checks the
    // request's protocol name only against a selected one, so the answer is
    // REBALANCE_IN_PROGRESS.
    let mut c = GroupCoordinator::new(GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        ..config()
    });
    let a = generated_id(1);
    c.handle_join(0, &ctx(1, 3), &range_join(""));
    let group = c.group(GROUP).unwrap();
    assert_eq!(
        (
            group.state,
            group.generation,
            group.protocol_name.as_deref()
        ),
        (GroupState::PreparingRebalance, 0, None)
    );
    let out = c.handle_sync(10, &ctx(2, 5), &sync_v5(&a, 0, "consumer", "range"));
    assert_eq!(
        out,
        vec![respond(2, sync_error(codes::REBALANCE_IN_PROGRESS))]
    );
    // The protocol type is set by the first member, so it is still checked.
    let out = c.handle_sync(10, &ctx(3, 5), &sync_v5(&a, 0, "connect", "range"));
    assert_eq!(
        out,
        vec![respond(3, sync_error(codes::INCONSISTENT_GROUP_PROTOCOL))]
    );
}

#[test]
fn answered_parked_syncs_restart_the_member_session() {
    // Kafka's propagateAssignment reschedules the heartbeat of every member whose parked
    // SyncGroup it answers: a member that waited longer than its session for the leader
    // must not expire right after getting its assignment.
    let session = i64::from(SESSION_MS);
    let (mut c, a, b) = completing_pair();
    assert_eq!(c.handle_sync(0, &ctx(5, 5), &sync(&b, 2, &[])), vec![]);
    assert_eq!(heartbeat_code(&mut c, 8_000, &a, 2), codes::NONE);
    // b's session (from 0) has run out, but its sync is parked: it stays.
    assert_eq!(
        c.tick(session),
        vec![Output::ScheduleTimer {
            at_ms: 8_000 + session
        }]
    );
    let out = c.handle_sync(15_000, &ctx(6, 5), &sync(&a, 2, &[(&a, b"A"), (&b, b"B")]));
    assert_eq!(
        out,
        vec![
            group_persist(
                2,
                Some(&a),
                15_000,
                vec![member_record(&a, b"A"), member_record(&b, b"B")]
            ),
            respond(6, sync_ok(b"A")),
            respond(5, sync_ok(b"B")),
            Output::ScheduleTimer {
                at_ms: 15_000 + session
            },
        ]
    );
    assert_eq!(
        c.tick(15_001),
        vec![Output::ScheduleTimer {
            at_ms: 15_000 + session
        }]
    );
    assert_eq!(heartbeat_code(&mut c, 20_000, &b, 2), codes::NONE);
}

#[test]
fn parked_sync_answered_rebalance_in_progress_restarts_the_member_session() {
    let session = i64::from(SESSION_MS);
    let (mut c, a, b) = completing_pair();
    assert_eq!(c.handle_sync(0, &ctx(5, 5), &sync(&b, 2, &[])), vec![]);
    assert_eq!(heartbeat_code(&mut c, 8_000, &a, 2), codes::NONE);
    assert_eq!(
        c.tick(session),
        vec![Output::ScheduleTimer {
            at_ms: 8_000 + session
        }]
    );
    // The leader changes its metadata instead of syncing: b's sync is answered with the
    // error and b gets a full session to rejoin.
    let out = c.handle_join(15_000, &ctx(6, 5), &join(&a, &[("range", b"new")]));
    assert_eq!(
        out,
        vec![
            respond(5, sync_error(codes::REBALANCE_IN_PROGRESS)),
            Output::ScheduleTimer {
                at_ms: 15_000 + session
            },
        ]
    );
    assert_eq!(
        c.tick(15_001),
        vec![Output::ScheduleTimer {
            at_ms: 15_000 + session
        }]
    );
    let out = c.handle_join(16_000, &ctx(7, 5), &range_join(&b));
    let mut leader = join_ok(3, &a, &a, &[&a, &b]);
    leader.members[0].metadata = bytes::Bytes::from_static(b"new");
    assert_eq!(
        responses(&out),
        vec![respond(6, leader), respond(7, join_ok(3, &a, &b, &[]))]
    );
}
