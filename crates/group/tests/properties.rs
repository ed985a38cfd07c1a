//! Random event sequences from a few simulated clients never panic and keep the
//! coordinator's invariants.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use common::*;
use freshet_group::{codes, GroupState, Output, RequestHandle};
use freshet_protocol::messages::leave_group_request::MemberIdentity;
use freshet_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use freshet_protocol::messages::LeaveGroupRequest;
use freshet_protocol::Response;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Join {
        slot: usize,
        version: i16,
        changed: bool,
    },
    Sync {
        slot: usize,
    },
    Heartbeat {
        slot: usize,
    },
    Leave {
        slot: usize,
    },
    Commit {
        slot: usize,
    },
    Advance {
        ms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0..3usize,
            prop_oneof![Just(0i16), Just(3), Just(5), Just(9)],
            any::<bool>()
        )
            .prop_map(|(slot, version, changed)| Op::Join {
                slot,
                version,
                changed
            }),
        (0..3usize).prop_map(|slot| Op::Sync { slot }),
        (0..3usize).prop_map(|slot| Op::Heartbeat { slot }),
        (0..3usize).prop_map(|slot| Op::Leave { slot }),
        (0..3usize).prop_map(|slot| Op::Commit { slot }),
        (0..25_000i64).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// What one simulated client believes.
#[derive(Debug, Default, Clone)]
struct Client {
    member_id: String,
    generation: i32,
    /// The member list of the last JoinGroup answer that made it leader, with its generation.
    leader_of: Option<(i32, Vec<String>)>,
}

struct Sim {
    c: freshet_group::GroupCoordinator,
    now_ms: i64,
    next_handle: u64,
    clients: Vec<Client>,
    /// Handle -> slot, for JoinGroup requests still unanswered.
    joins: BTreeMap<u64, usize>,
    outstanding: BTreeSet<u64>,
    generation_seen: i32,
    /// Every record the coordinator asked to persist, in order.
    log: Vec<freshet_group::Record>,
}

impl Sim {
    fn ctx(&mut self, version: i16) -> freshet_group::RequestContext {
        self.next_handle += 1;
        self.outstanding.insert(self.next_handle);
        ctx(self.next_handle, version)
    }

    /// Slot 2 is a static member (group.instance.id "i-2").
    fn instance(slot: usize) -> Option<String> {
        (slot == 2).then(|| "i-2".to_string())
    }

    fn step(&mut self, op: &Op) {
        let out = match op.clone() {
            Op::Advance { ms } => {
                self.now_ms += ms;
                self.c.tick(self.now_ms)
            }
            Op::Join {
                slot,
                version,
                changed,
            } => {
                let version = if slot == 2 { version.max(5) } else { version };
                let metadata: &'static [u8] = if changed { b"m2" } else { b"m" };
                let mut request = join(&self.clients[slot].member_id, &[("range", metadata)]);
                request.group_instance_id = Self::instance(slot);
                let ctx = self.ctx(version);
                self.joins.insert(ctx.handle.0, slot);
                self.c.handle_join(self.now_ms, &ctx, &request)
            }
            Op::Sync { slot } => {
                let client = self.clients[slot].clone();
                let mut request = sync(&client.member_id, client.generation, &[]);
                request.group_instance_id = Self::instance(slot);
                if let Some((generation, members)) = &client.leader_of {
                    if *generation == client.generation {
                        request.assignments = members
                            .iter()
                            .map(|m| SyncGroupRequestAssignment {
                                member_id: m.clone(),
                                assignment: Bytes::from(format!("for-{m}")),
                                ..Default::default()
                            })
                            .collect();
                    }
                }
                let ctx = self.ctx(5);
                self.c.handle_sync(self.now_ms, &ctx, &request)
            }
            Op::Heartbeat { slot } => {
                let client = &self.clients[slot];
                let mut request = heartbeat(&client.member_id, client.generation);
                request.group_instance_id = Self::instance(slot);
                let ctx = self.ctx(4);
                self.c.handle_heartbeat(self.now_ms, &ctx, &request)
            }
            Op::Leave { slot } => {
                let request = LeaveGroupRequest {
                    group_id: GROUP.to_string(),
                    members: vec![MemberIdentity {
                        member_id: self.clients[slot].member_id.clone(),
                        group_instance_id: Self::instance(slot),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let ctx = self.ctx(5);
                self.c.handle_leave(self.now_ms, &ctx, &request)
            }
            Op::Commit { slot } => {
                let client = &self.clients[slot];
                let request = freshet_protocol::messages::OffsetCommitRequest {
                    group_id: GROUP.to_string(),
                    generation_id_or_member_epoch: client.generation,
                    member_id: client.member_id.clone(),
                    group_instance_id: Self::instance(slot),
                    ..Default::default()
                };
                let ctx = self.ctx(8);
                self.c.handle_offset_commit(self.now_ms, &ctx, &request)
            }
        };
        self.absorb(out);
        self.check();
    }

    fn absorb(&mut self, out: Vec<Output>) {
        for output in out {
            if let Output::Persist { records, .. } = &output {
                self.log.extend(records.iter().cloned());
            }
            let Output::Respond {
                handle: RequestHandle(h),
                response,
            } = output
            else {
                continue;
            };
            assert!(
                self.outstanding.remove(&h),
                "handle {h} answered twice or never asked"
            );
            if let (Some(slot), Response::JoinGroup(r)) = (self.joins.remove(&h), response) {
                let client = &mut self.clients[slot];
                match r.error_code {
                    codes::NONE => {
                        client.member_id = r.member_id.clone();
                        client.generation = r.generation_id;
                        if !r.members.is_empty() {
                            let ids = r.members.iter().map(|m| m.member_id.clone()).collect();
                            client.leader_of = Some((r.generation_id, ids));
                        }
                    }
                    codes::MEMBER_ID_REQUIRED => client.member_id = r.member_id.clone(),
                    codes::UNKNOWN_MEMBER_ID | codes::FENCED_INSTANCE_ID => {
                        client.member_id.clear()
                    }
                    _ => {}
                }
            }
        }
    }

    /// Replaying the records so far rebuilds the live group (when it is at rest) and its
    /// offsets.
    fn check_replay(&self) {
        let mut loaded = freshet_group::GroupCoordinator::loading(config());
        for record in &self.log {
            loaded.replay(&record.key, record.value.as_ref()).unwrap();
        }
        loaded.finish_load(self.now_ms);
        // A group with no offsets may exist on one side only (never persisted, or dropped).
        let offsets = |c: &freshet_group::GroupCoordinator| {
            c.offsets(GROUP).filter(|o| !o.is_empty()).cloned()
        };
        assert_eq!(offsets(&loaded), offsets(&self.c));
        let (Some(live), Some(back)) = (self.c.group(GROUP), loaded.group(GROUP)) else {
            return;
        };
        let view = |g: &freshet_group::classic::ClassicGroup| {
            let members: Vec<_> = g
                .members
                .values()
                .map(|m| {
                    (
                        m.member_id.clone(),
                        m.group_instance_id.clone(),
                        m.assignment.clone(),
                    )
                })
                .collect();
            (
                g.state,
                g.generation,
                g.leader.clone(),
                g.protocol_name.clone(),
                members,
                g.static_members.clone(),
            )
        };
        assert_eq!(view(back), view(live));
    }

    fn check(&mut self) {
        self.c.assert_invariants();
        let Some(group) = self.c.group(GROUP) else {
            return;
        };
        assert!(
            group.generation >= self.generation_seen,
            "generation went back"
        );
        self.generation_seen = group.generation;
        if group.state == GroupState::Stable {
            self.check_replay();
            for member in group.members.values() {
                assert!(
                    !member.assignment.is_empty(),
                    "Stable member {} without assignment",
                    member.member_id
                );
            }
        }
        // Every parked request is still outstanding at the broker.
        for member in group.members.values() {
            for parked in [member.join, member.sync].into_iter().flatten() {
                assert!(self.outstanding.contains(&parked.handle.0));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_invariants(
        ops in proptest::collection::vec(op(), 1..80),
        initial_delay_ms in prop_oneof![Just(0i64), Just(3_000)],
    ) {
        let config = freshet_group::GroupConfig { initial_rebalance_delay_ms: initial_delay_ms, ..config() };
        let mut sim = Sim {
            c: freshet_group::GroupCoordinator::new(config),
            now_ms: 0,
            next_handle: 0,
            clients: vec![Client::default(); 3],
            joins: BTreeMap::new(),
            outstanding: BTreeSet::new(),
            generation_seen: 0,
            log: Vec::new(),
        };
        for op in &ops {
            sim.step(op);
        }
        // Members leave or expire: once the timers have run every parked request is answered.
        // Follow the timers (sessions, rebalance and initial-delay re-arms) until quiet.
        for _ in 0..50 {
            let Some(at_ms) = sim.c.next_deadline_ms() else { break };
            sim.step(&Op::Advance { ms: (at_ms - sim.now_ms).max(0) });
        }
        prop_assert!(sim.outstanding.is_empty(), "unanswered: {:?}", sim.outstanding);
        if sim.c.group(GROUP).is_none_or(|g| matches!(g.state, GroupState::Empty | GroupState::Stable)) {
            sim.check_replay();
        }
    }
}
