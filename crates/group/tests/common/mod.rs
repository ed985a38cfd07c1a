//! Builders shared by the group tests.
#![allow(dead_code)]

use bytes::Bytes;
use freshet_group::{GroupConfig, GroupCoordinator, Output, RequestContext, RequestHandle};
use freshet_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use freshet_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use freshet_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use freshet_protocol::messages::sync_group_response::SyncGroupResponse;
use freshet_protocol::messages::*;
use freshet_protocol::Response;

pub const GROUP: &str = "g";
pub const SESSION_MS: i32 = 10_000;
pub const REBALANCE_MS: i32 = 20_000;

/// No initial delay unless a test asks, fixed member-id seed.
pub fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    }
}

pub fn coordinator() -> GroupCoordinator {
    GroupCoordinator::new(config())
}

pub fn ctx(handle: u64, api_version: i16) -> RequestContext {
    RequestContext {
        handle: RequestHandle(handle),
        api_version,
        client_id: "c".to_string(),
        client_host: "/127.0.0.1".to_string(),
    }
}

/// The id the coordinator generates for the n-th member id it hands out (seed 0).
pub fn generated_id(n: u64) -> String {
    format!("c-{:016x}-{n:08x}", 0)
}

pub fn join(member_id: &str, protocols: &[(&str, &'static [u8])]) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: GROUP.to_string(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member_id.to_string(),
        protocol_type: "consumer".to_string(),
        protocols: protocols
            .iter()
            .map(|(name, metadata)| JoinGroupRequestProtocol {
                name: name.to_string(),
                metadata: Bytes::from_static(metadata),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub fn range_join(member_id: &str) -> JoinGroupRequest {
    join(member_id, &[("range", b"m")])
}

pub fn static_join(member_id: &str, instance: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_instance_id: Some(instance.to_string()),
        ..range_join(member_id)
    }
}

pub fn sync(
    member_id: &str,
    generation: i32,
    assignments: &[(&str, &'static [u8])],
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: GROUP.to_string(),
        generation_id: generation,
        member_id: member_id.to_string(),
        assignments: assignments
            .iter()
            .map(|(m, a)| SyncGroupRequestAssignment {
                member_id: m.to_string(),
                assignment: Bytes::from_static(a),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub fn heartbeat(member_id: &str, generation: i32) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: GROUP.to_string(),
        generation_id: generation,
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

pub fn respond(handle: u64, response: impl Into<Response>) -> Output {
    Output::Respond {
        handle: RequestHandle(handle),
        response: response.into(),
    }
}

pub fn join_error(member_id: &str, error_code: i16) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code,
        generation_id: -1,
        protocol_name: Some(String::new()),
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

/// A successful JoinGroup answer; `members` is non-empty for the leader only.
pub fn join_ok(
    generation: i32,
    leader: &str,
    member_id: &str,
    members: &[&str],
) -> JoinGroupResponse {
    JoinGroupResponse {
        generation_id: generation,
        protocol_type: Some("consumer".to_string()),
        protocol_name: Some("range".to_string()),
        leader: leader.to_string(),
        member_id: member_id.to_string(),
        members: members
            .iter()
            .map(|m| JoinGroupResponseMember {
                member_id: m.to_string(),
                metadata: Bytes::from_static(b"m"),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub fn sync_ok(assignment: &'static [u8]) -> SyncGroupResponse {
    SyncGroupResponse {
        protocol_type: Some("consumer".to_string()),
        protocol_name: Some("range".to_string()),
        assignment: Bytes::from_static(assignment),
        ..Default::default()
    }
}

pub fn sync_error(error_code: i16) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code,
        ..Default::default()
    }
}

pub fn heartbeat_error(error_code: i16) -> Output {
    respond(
        0,
        HeartbeatResponse {
            error_code,
            ..Default::default()
        },
    )
}

/// Responses only (drops Persist and ScheduleTimer).
pub fn responses(outputs: &[Output]) -> Vec<Output> {
    outputs
        .iter()
        .filter(|o| matches!(o, Output::Respond { .. }))
        .cloned()
        .collect()
}

pub fn heartbeat_code(
    c: &mut GroupCoordinator,
    now_ms: i64,
    member_id: &str,
    generation: i32,
) -> i16 {
    let out = c.handle_heartbeat(now_ms, &ctx(0, 4), &heartbeat(member_id, generation));
    match responses(&out).as_slice() {
        [Output::Respond {
            response: Response::Heartbeat(r),
            ..
        }] => r.error_code,
        other => panic!("unexpected heartbeat outputs {other:?}"),
    }
}

/// Two dynamic members (ids 1 and 2, joined with JoinGroup v3 so without KIP-394) in a
/// Stable generation 1 with member 1 leading; returns at time 0.
pub fn stable_pair() -> (GroupCoordinator, String, String) {
    let mut c = coordinator();
    let a = generated_id(1);
    let b = generated_id(2);
    c.handle_join(0, &ctx(1, 3), &range_join(""));
    // a is alone: generation 1 completes at once; b's join starts generation 2.
    c.handle_sync(0, &ctx(2, 3), &sync(&a, 1, &[(&a, b"a1")]));
    c.handle_join(0, &ctx(3, 3), &range_join(""));
    c.handle_join(0, &ctx(4, 3), &range_join(&a));
    c.handle_sync(0, &ctx(5, 3), &sync(&b, 2, &[]));
    c.handle_sync(0, &ctx(6, 3), &sync(&a, 2, &[(&a, b"a"), (&b, b"b")]));
    assert_eq!(
        c.group(GROUP).unwrap().state,
        freshet_group::GroupState::Stable
    );
    (c, a, b)
}
