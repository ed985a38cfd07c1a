//! Committed offsets, admin requests, records and replay.

mod common;

use bytes::Bytes;
use common::*;
use freshet_group::records::{self, Record};
use freshet_group::{codes, GroupConfig, GroupCoordinator, GroupState, Output};
use freshet_protocol::messages::delete_groups_response::DeletableGroupResult;
use freshet_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use freshet_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use freshet_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use freshet_protocol::messages::*;
use freshet_protocol::Response;

fn commit(member_id: &str, generation: i32, partitions: &[(i32, i64)]) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: GROUP.to_string(),
        generation_id_or_member_epoch: generation,
        member_id: member_id.to_string(),
        topics: vec![OffsetCommitRequestTopic {
            name: "t".to_string(),
            partitions: partitions
                .iter()
                .map(|(p, offset)| OffsetCommitRequestPartition {
                    partition_index: *p,
                    committed_offset: *offset,
                    committed_leader_epoch: 4,
                    committed_metadata: Some("meta".to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn commit_codes(out: &[Output]) -> Vec<i16> {
    match responses(out).as_slice() {
        [Output::Respond {
            response: Response::OffsetCommit(r),
            ..
        }] => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        other => panic!("unexpected {other:?}"),
    }
}

fn fetch_v8(
    c: &GroupCoordinator,
    partitions: Option<Vec<i32>>,
) -> Vec<(i32, i64, i32, Option<String>)> {
    let request = OffsetFetchRequest {
        groups: vec![OffsetFetchRequestGroup {
            group_id: GROUP.to_string(),
            topics: partitions.map(|ps| {
                vec![OffsetFetchRequestTopics {
                    name: "t".to_string(),
                    partition_indexes: ps,
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }],
        require_stable: true,
        ..Default::default()
    };
    match c.handle_offset_fetch(&ctx(1, 8), &request).as_slice() {
        [Output::Respond {
            response: Response::OffsetFetch(r),
            ..
        }] => r.groups[0]
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| {
                (
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata.clone(),
                )
            })
            .collect(),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn group_commit_checks_generation_and_member() {
    let (mut c, a, _b) = stable_pair();
    let out = c.handle_offset_commit(1_000, &ctx(1, 8), &commit(&a, 2, &[(0, 42)]));
    let value = freshet_protocol::internal_records::OffsetCommitValue {
        offset: 42,
        leader_epoch: 4,
        metadata: "meta".to_string(),
        commit_timestamp: 1_000,
        expire_timestamp: -1,
        unknown_tagged_fields: Vec::new(),
    };
    let expected_response = OffsetCommitResponse {
        topics: vec![OffsetCommitResponseTopic {
            name: "t".to_string(),
            partitions: vec![OffsetCommitResponsePartition {
                partition_index: 0,
                error_code: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        &out[..2],
        &[
            Output::Persist {
                group_id: GROUP.to_string(),
                records: vec![Record {
                    key: records::offset_key(GROUP, "t", 0),
                    value: Some(records::offset_value(&value)),
                }],
            },
            respond(1, expected_response),
        ]
    );
    assert_eq!(
        commit_codes(&c.handle_offset_commit(1, &ctx(2, 8), &commit(&a, 1, &[(0, 1)]))),
        vec![codes::ILLEGAL_GENERATION]
    );
    assert_eq!(
        commit_codes(&c.handle_offset_commit(1, &ctx(3, 8), &commit("x", 2, &[(0, 1)]))),
        vec![codes::UNKNOWN_MEMBER_ID]
    );
    // A simple commit (generation -1, no member) into a group with members is refused.
    assert_eq!(
        commit_codes(&c.handle_offset_commit(1, &ctx(4, 8), &commit("", -1, &[(0, 1)]))),
        vec![codes::UNKNOWN_MEMBER_ID]
    );
    // During CompletingRebalance commits wait for the new generation.
    c.handle_join(2, &ctx(5, 3), &join(&a, &[("range", b"z")]));
    let b = generated_id(2);
    c.handle_join(2, &ctx(6, 3), &range_join(&b));
    assert_eq!(
        c.group(GROUP).unwrap().state,
        GroupState::CompletingRebalance
    );
    assert_eq!(
        commit_codes(&c.handle_offset_commit(3, &ctx(7, 8), &commit(&a, 3, &[(0, 1)]))),
        vec![codes::REBALANCE_IN_PROGRESS]
    );
    assert_eq!(
        fetch_v8(&c, Some(vec![0, 1])),
        vec![
            (0, 42, 4, Some("meta".to_string())),
            (1, -1, -1, Some(String::new()))
        ]
    );
}

#[test]
fn simple_commit_creates_empty_group_and_fetch_v1_and_v8_agree() {
    let mut c = coordinator();
    assert_eq!(
        commit_codes(&c.handle_offset_commit(5, &ctx(1, 2), &commit("", -1, &[(0, 7), (3, 9)]))),
        vec![0, 0]
    );
    assert_eq!(c.group(GROUP).unwrap().state, GroupState::Empty);
    assert_eq!(
        fetch_v8(&c, None),
        vec![
            (0, 7, 4, Some("meta".to_string())),
            (3, 9, 4, Some("meta".to_string()))
        ]
    );
    let legacy = OffsetFetchRequest {
        group_id: GROUP.to_string(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: "t".to_string(),
            partition_indexes: vec![3],
            ..Default::default()
        }]),
        ..Default::default()
    };
    match c.handle_offset_fetch(&ctx(2, 1), &legacy).as_slice() {
        [Output::Respond {
            response: Response::OffsetFetch(r),
            ..
        }] => {
            assert_eq!(r.topics[0].partitions[0].committed_offset, 9);
        }
        other => panic!("{other:?}"),
    }
    // A group commit to a group that does not exist.
    let mut other = commit("m", 3, &[(0, 1)]);
    other.group_id = "nope".to_string();
    assert_eq!(
        commit_codes(&c.handle_offset_commit(1, &ctx(3, 8), &other)),
        vec![codes::ILLEGAL_GENERATION]
    );
    assert_eq!(
        commit_codes(&c.handle_offset_commit(1, &ctx(3, 9), &other)),
        vec![codes::GROUP_ID_NOT_FOUND]
    );
    let mut big = commit("", -1, &[(0, 1)]);
    big.topics[0].partitions[0].committed_metadata = Some("x".repeat(5_000));
    assert_eq!(
        commit_codes(&c.handle_offset_commit(1, &ctx(4, 8), &big)),
        vec![codes::OFFSET_METADATA_TOO_LARGE]
    );
}

#[test]
fn offsets_expire_after_retention_once_empty_then_group_is_dropped() {
    let config = GroupConfig {
        offsets_retention_ms: 1_000,
        offsets_retention_check_interval_ms: 100,
        ..config()
    };
    let mut c = GroupCoordinator::new(config);
    let out = c.handle_offset_commit(0, &ctx(1, 8), &commit("", -1, &[(0, 7)]));
    assert_eq!(out.last(), Some(&Output::ScheduleTimer { at_ms: 100 }));
    let out = c.tick(100);
    assert_eq!(out, vec![Output::ScheduleTimer { at_ms: 200 }]);
    assert_eq!(c.tick(900), vec![Output::ScheduleTimer { at_ms: 1_000 }]);
    let out = c.tick(1_000);
    assert_eq!(
        out,
        vec![Output::Persist {
            group_id: GROUP.to_string(),
            records: vec![
                Record {
                    key: records::offset_key(GROUP, "t", 0),
                    value: None
                },
                Record {
                    key: records::group_key(GROUP),
                    value: None
                },
            ],
        }]
    );
    assert!(c.group(GROUP).is_none());
}

/// A group whose one member committed offset 5 of t-0 at time 0, with a retention of 1 s
/// checked every 100 ms; returns the coordinator and the member id.
fn member_committed_with_short_retention() -> (GroupCoordinator, String) {
    let config = GroupConfig {
        offsets_retention_ms: 1_000,
        offsets_retention_check_interval_ms: 100,
        ..config()
    };
    let mut c = GroupCoordinator::new(config);
    let a = generated_id(1);
    c.handle_join(0, &ctx(1, 3), &range_join(""));
    c.handle_sync(0, &ctx(2, 3), &sync(&a, 1, &[]));
    c.handle_offset_commit(0, &ctx(3, 8), &commit(&a, 1, &[(0, 5)]));
    (c, a)
}

#[test]
fn offsets_of_a_group_with_members_do_not_expire() {
    let (mut c, a) = member_committed_with_short_retention();
    for t in (1_000..5_000).step_by(1_000) {
        assert_eq!(heartbeat_code(&mut c, t, &a, 1), codes::NONE);
        c.tick(t);
    }
    assert_eq!(
        fetch_v8(&c, None),
        vec![(0, 5, 4, Some("meta".to_string()))]
    );
}

/// Kafka's rule for a group that had members: the retention clock starts when the group
/// becomes Empty (here: its last member leaves), not at the commit.
#[test]
fn offsets_expire_a_retention_period_after_the_last_member_leaves() {
    let (mut c, a) = member_committed_with_short_retention();
    assert_eq!(heartbeat_code(&mut c, 2_500, &a, 1), codes::NONE);
    let leave = LeaveGroupRequest {
        group_id: GROUP.to_string(),
        member_id: a.clone(),
        ..Default::default()
    };
    c.handle_leave(3_000, &ctx(4, 0), &leave);
    assert_eq!(c.group(GROUP).unwrap().state, GroupState::Empty);
    // Long after the commit, but less than the retention since the group emptied.
    for t in (3_100..4_000).step_by(100) {
        let persisted: Vec<_> = c
            .tick(t)
            .into_iter()
            .filter(|o| matches!(o, Output::Persist { .. }))
            .collect();
        assert_eq!(persisted, vec![], "nothing expires at {t}");
    }
    assert_eq!(
        fetch_v8(&c, None),
        vec![(0, 5, 4, Some("meta".to_string()))]
    );
    let expired: Vec<Record> = c
        .tick(4_000)
        .into_iter()
        .flat_map(|o| match o {
            Output::Persist { records, .. } => records,
            _ => vec![],
        })
        .collect();
    assert_eq!(
        expired.first(),
        Some(&Record {
            key: records::offset_key(GROUP, "t", 0),
            value: None
        }),
        "the offset's tombstone"
    );
    assert!(
        expired.contains(&Record {
            key: records::group_key(GROUP),
            value: None
        }),
        "an empty group without offsets is removed: {expired:?}"
    );
    assert!(c.group(GROUP).is_none());
}

#[test]
fn delete_groups_only_when_empty_and_admin_views() {
    let (mut c, a, _) = stable_pair();
    let request = DeleteGroupsRequest {
        groups_names: vec![GROUP.to_string(), "none".to_string()],
        ..Default::default()
    };
    let out = c.handle_delete_groups(&ctx(1, 2), &request);
    let results: Vec<DeletableGroupResult> = match responses(&out).as_slice() {
        [Output::Respond {
            response: Response::DeleteGroups(r),
            ..
        }] => r.results.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        results.iter().map(|r| r.error_code).collect::<Vec<_>>(),
        vec![codes::NON_EMPTY_GROUP, codes::GROUP_ID_NOT_FOUND]
    );

    let list = |c: &GroupCoordinator, states: &[&str]| -> Vec<(String, String)> {
        let request = ListGroupsRequest {
            states_filter: states.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        match c.handle_list_groups(&ctx(2, 5), &request).as_slice() {
            [Output::Respond {
                response: Response::ListGroups(r),
                ..
            }] => r
                .groups
                .iter()
                .map(|g| (g.group_id.clone(), g.group_state.clone()))
                .collect(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        list(&c, &[]),
        vec![(GROUP.to_string(), "Stable".to_string())]
    );
    assert_eq!(
        list(&c, &["stable"]),
        vec![(GROUP.to_string(), "Stable".to_string())]
    );
    assert_eq!(list(&c, &["Empty"]), vec![]);

    let describe = DescribeGroupsRequest {
        groups: vec![GROUP.to_string(), "none".to_string()],
        ..Default::default()
    };
    match c.handle_describe_groups(&ctx(3, 5), &describe).as_slice() {
        [Output::Respond {
            response: Response::DescribeGroups(r),
            ..
        }] => {
            assert_eq!(r.groups[0].group_state, "Stable");
            assert_eq!(r.groups[0].protocol_data, "range");
            assert_eq!(r.groups[0].members.len(), 2);
            assert_eq!(r.groups[0].members[0].member_assignment.as_ref(), b"a");
            assert_eq!(r.groups[1].group_state, "Dead");
            assert_eq!(r.groups[1].error_code, codes::NONE);
        }
        other => panic!("{other:?}"),
    }

    // Everyone leaves: now the group can be deleted, with tombstones for its offsets.
    c.handle_offset_commit(1, &ctx(4, 8), &commit(&a, 2, &[(0, 1)]));
    let b = generated_id(2);
    let leave = LeaveGroupRequest {
        group_id: GROUP.to_string(),
        members: vec![
            freshet_protocol::messages::leave_group_request::MemberIdentity {
                member_id: a.clone(),
                ..Default::default()
            },
            freshet_protocol::messages::leave_group_request::MemberIdentity {
                member_id: b,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    c.handle_leave(2, &ctx(5, 4), &leave);
    assert_eq!(c.group(GROUP).unwrap().state, GroupState::Empty);
    let out = c.handle_delete_groups(
        &ctx(6, 2),
        &DeleteGroupsRequest {
            groups_names: vec![GROUP.to_string()],
            ..Default::default()
        },
    );
    assert_eq!(
        out[0],
        Output::Persist {
            group_id: GROUP.to_string(),
            records: vec![
                Record {
                    key: records::offset_key(GROUP, "t", 0),
                    value: None
                },
                Record {
                    key: records::group_key(GROUP),
                    value: None
                },
            ],
        }
    );
    assert!(c.group(GROUP).is_none());
}

#[test]
fn offset_delete_refuses_subscribed_topics_of_a_live_group() {
    let mut c = coordinator();
    let a = generated_id(1);
    // ConsumerProtocolSubscription v0: version, one topic "t".
    const SUB: &[u8] = b"\x00\x00\x00\x00\x00\x01\x00\x01t";
    c.handle_join(0, &ctx(1, 3), &join("", &[("range", SUB)]));
    c.handle_sync(0, &ctx(2, 3), &sync(&a, 1, &[]));
    c.handle_offset_commit(0, &ctx(3, 8), &commit(&a, 1, &[(0, 5)]));
    let mut other_topic = commit(&a, 1, &[(0, 6)]);
    other_topic.topics[0].name = "u".to_string();
    c.handle_offset_commit(0, &ctx(4, 8), &other_topic);
    use freshet_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    let request = |topic: &str| OffsetDeleteRequest {
        group_id: GROUP.to_string(),
        topics: vec![OffsetDeleteRequestTopic {
            name: topic.to_string(),
            partitions: vec![OffsetDeleteRequestPartition { partition_index: 0 }],
        }],
    };
    let code = |out: &[Output]| match responses(out).as_slice() {
        [Output::Respond {
            response: Response::OffsetDelete(r),
            ..
        }] => (
            r.error_code,
            r.topics.first().map(|t| t.partitions[0].error_code),
        ),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        code(&c.handle_offset_delete(&ctx(5, 0), &request("t"))),
        (0, Some(codes::GROUP_SUBSCRIBED_TO_TOPIC))
    );
    let out = c.handle_offset_delete(&ctx(6, 0), &request("u"));
    assert_eq!(code(&out), (0, Some(codes::NONE)));
    assert_eq!(
        out[0],
        Output::Persist {
            group_id: GROUP.to_string(),
            records: vec![Record {
                key: records::offset_key(GROUP, "u", 0),
                value: None
            }]
        }
    );
    let mut missing = request("t");
    missing.group_id = "none".to_string();
    assert_eq!(
        code(&c.handle_offset_delete(&ctx(7, 0), &missing)),
        (codes::GROUP_ID_NOT_FOUND, None)
    );
}

/// Every Persist output, replayed into a fresh coordinator, rebuilds the same groups and
/// offsets as the live one.
#[test]
fn replay_of_persisted_records_equals_live_state() {
    let (mut c, a, b) = stable_pair();
    let mut log: Vec<Record> = Vec::new();
    let mut keep = |out: Vec<Output>| {
        for o in out {
            if let Output::Persist { records, .. } = o {
                log.extend(records);
            }
        }
    };
    // stable_pair's own records, reproduced: the last group record is what matters.
    keep(vec![Output::Persist {
        group_id: GROUP.to_string(),
        records: vec![c.group_record(GROUP, 0).unwrap()],
    }]);
    keep(c.handle_offset_commit(1, &ctx(1, 8), &commit(&a, 2, &[(0, 10), (1, 11)])));
    keep(c.handle_offset_commit(2, &ctx(2, 8), &commit(&b, 2, &[(1, 12)])));
    let mut standalone = commit("", -1, &[(5, 50)]);
    standalone.group_id = "solo".to_string();
    keep(c.handle_offset_commit(3, &ctx(3, 8), &standalone));
    let mut gone = commit("", -1, &[(0, 1)]);
    gone.group_id = "gone".to_string();
    keep(c.handle_offset_commit(3, &ctx(4, 8), &gone));
    keep(c.handle_delete_groups(
        &ctx(5, 2),
        &DeleteGroupsRequest {
            groups_names: vec!["gone".to_string()],
            ..Default::default()
        },
    ));

    let mut loaded = GroupCoordinator::loading(config());
    let out = loaded.handle_heartbeat(4, &ctx(0, 4), &heartbeat(&a, 2));
    assert_eq!(
        responses(&out),
        vec![heartbeat_error(codes::COORDINATOR_LOAD_IN_PROGRESS)]
    );
    for record in &log {
        loaded.replay(&record.key, record.value.as_ref()).unwrap();
    }
    loaded.finish_load(4);
    assert_eq!(
        loaded.group_ids().collect::<Vec<_>>(),
        c.group_ids().collect::<Vec<_>>()
    );
    for id in c.group_ids() {
        assert_eq!(loaded.offsets(id), c.offsets(id), "offsets of {id}");
        let (live, back) = (c.group(id).unwrap(), loaded.group(id).unwrap());
        assert_eq!(
            (
                live.state,
                live.generation,
                &live.leader,
                &live.protocol_name
            ),
            (
                back.state,
                back.generation,
                &back.leader,
                &back.protocol_name
            )
        );
        let ids = |g: &freshet_group::classic::ClassicGroup| {
            g.members
                .values()
                .map(|m| (m.member_id.clone(), m.assignment.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(live), ids(back));
    }
    // The loaded group serves its members at once.
    assert_eq!(heartbeat_code(&mut loaded, 5, &a, 2), codes::NONE);
}

#[test]
fn record_bytes_match_kafka_layout() {
    // Key v1: version, group, topic (i16-length strings), partition.
    assert_eq!(
        records::offset_key("g", "t", 3).as_ref(),
        b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x03"
    );
    // Key v2: version, group.
    assert_eq!(records::group_key("g").as_ref(), b"\x00\x02\x00\x01g");
    let value = freshet_protocol::internal_records::OffsetCommitValue {
        offset: 5,
        leader_epoch: 1,
        metadata: "m".to_string(),
        commit_timestamp: 2,
        expire_timestamp: -1,
        unknown_tagged_fields: Vec::new(),
    };
    // Value v3: offset i64, leader epoch i32, metadata, commit timestamp i64.
    let mut expected = vec![0, 3];
    expected.extend(5i64.to_be_bytes());
    expected.extend(1i32.to_be_bytes());
    expected.extend(b"\x00\x01m");
    expected.extend(2i64.to_be_bytes());
    assert_eq!(records::offset_value(&value).as_ref(), expected.as_slice());
    // Garbage from disk is an error, not a panic.
    let mut c = GroupCoordinator::loading(config());
    assert!(c.replay(&Bytes::from_static(b"\x00"), None).is_err());
    assert!(c
        .replay(&Bytes::from_static(b"\x00\x01\x00\x09g"), None)
        .is_err());
    assert!(c
        .replay(
            &records::group_key("g"),
            Some(&Bytes::from_static(b"\x00\x03\xff"))
        )
        .is_err());
    // Share-group records (key versions 9+) are skipped; KIP-848 keys (3-8) must decode.
    assert!(c
        .replay(
            &Bytes::from_static(b"\x00\x07anything"),
            Some(&Bytes::new())
        )
        .is_err());
    assert!(c
        .replay(
            &Bytes::from_static(b"\x00\x0aanything"),
            Some(&Bytes::new())
        )
        .is_ok());
}
