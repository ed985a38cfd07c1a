//! KIP-848 reconciliation under random event sequences from simulated clients: no
//! partition is ever owned by two clients at once, the coordinator's invariants hold after
//! every step, everybody converges to the target once the events stop, and replaying the
//! records rebuilds the group.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{ctx, GROUP};
use freshet_group::{
    codes, ConsumerGroupState, GroupConfig, GroupCoordinator, Output, TopicMeta, TopicsSnapshot,
};
use freshet_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use freshet_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use freshet_protocol::{Response, Uuid};
use proptest::prelude::*;

const T: Uuid = Uuid([1; 16]);
const U: Uuid = Uuid([2; 16]);
const SLOTS: usize = 4;
/// Slot 2 is a static member; slot 3 subscribes to `t` only.
const STATIC_SLOT: usize = 2;
const NARROW_SLOT: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Heartbeat { slot: usize, send_owned: bool },
    Leave { slot: usize, temporary: bool },
    Crash { slot: usize },
    Assignor { slot: usize, range: bool },
    Grow { t: i32, u: i32 },
    Advance { ms: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SLOTS, prop::bool::weighted(0.8))
            .prop_map(|(slot, send_owned)| Op::Heartbeat { slot, send_owned }),
        1 => (0..SLOTS, any::<bool>()).prop_map(|(slot, temporary)| Op::Leave { slot, temporary }),
        1 => (0..SLOTS).prop_map(|slot| Op::Crash { slot }),
        1 => (0..SLOTS, any::<bool>()).prop_map(|(slot, range)| Op::Assignor { slot, range }),
        1 => (0..3i32, 0..3i32).prop_map(|(t, u)| Op::Grow { t, u }),
        2 => (0..20_000i64).prop_map(|ms| Op::Advance { ms }),
    ]
}

#[derive(Debug, Clone, Default)]
struct Client {
    /// Incarnation counter: a static client that restarts comes back with a new id.
    incarnation: u32,
    joined: bool,
    epoch: i32,
    owned: BTreeSet<(Uuid, i32)>,
    assignor: Option<String>,
    /// Set after a Crash: sends nothing until its next Heartbeat op, which restarts it.
    crashed: bool,
}

struct World {
    c: GroupCoordinator,
    now: i64,
    clients: Vec<Client>,
    topics: TopicsSnapshot,
    persisted: Vec<(bytes::Bytes, Option<bytes::Bytes>)>,
}

fn member_id(slot: usize, client: &Client) -> String {
    format!("m{slot}-{}", client.incarnation)
}

fn snapshot(t: i32, u: i32) -> TopicsSnapshot {
    let mut topics = TopicsSnapshot::new();
    topics.insert(
        "t".to_string(),
        TopicMeta {
            id: T,
            partitions: t,
        },
    );
    if u > 0 {
        topics.insert(
            "u".to_string(),
            TopicMeta {
                id: U,
                partitions: u,
            },
        );
    }
    topics
}

impl World {
    fn new(t: i32, u: i32) -> Self {
        let topics = snapshot(t, u);
        let mut c = GroupCoordinator::new(GroupConfig::default());
        c.update_topics(0, &topics);
        Self {
            c,
            now: 0,
            clients: vec![Client::default(); SLOTS],
            topics,
            persisted: Vec::new(),
        }
    }

    fn record(&mut self, out: &[Output]) {
        for o in out {
            if let Output::Persist { records, .. } = o {
                for r in records {
                    self.persisted.push((r.key.clone(), r.value.clone()));
                }
            }
        }
    }

    fn request(&self, slot: usize, send_owned: bool) -> ConsumerGroupHeartbeatRequest {
        let client = &self.clients[slot];
        let id = member_id(slot, client);
        let topics = if slot == NARROW_SLOT {
            vec!["t".to_string()]
        } else {
            vec!["t".to_string(), "u".to_string()]
        };
        let mut owned: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
        for (topic, p) in &client.owned {
            owned.entry(*topic).or_default().push(*p);
        }
        let owned = owned
            .into_iter()
            .map(|(topic_id, partitions)| TopicPartitions {
                topic_id,
                partitions,
                ..Default::default()
            })
            .collect();
        let instance_id = (slot == STATIC_SLOT).then(|| "static".to_string());
        if !client.joined {
            return ConsumerGroupHeartbeatRequest {
                group_id: GROUP.to_string(),
                member_id: id,
                member_epoch: 0,
                instance_id,
                rebalance_timeout_ms: 30_000,
                subscribed_topic_names: Some(topics),
                server_assignor: client.assignor.clone(),
                topic_partitions: Some(Vec::new()),
                ..Default::default()
            };
        }
        ConsumerGroupHeartbeatRequest {
            group_id: GROUP.to_string(),
            member_id: id,
            member_epoch: client.epoch,
            instance_id,
            server_assignor: client.assignor.clone(),
            topic_partitions: send_owned.then_some(owned),
            ..Default::default()
        }
    }

    fn send(&mut self, request: &ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        let out = self
            .c
            .handle_consumer_group_heartbeat(self.now, &ctx(1, 1), request);
        self.record(&out);
        self.c.assert_invariants();
        out.into_iter()
            .find_map(|o| match o {
                Output::Respond {
                    response: Response::ConsumerGroupHeartbeat(r),
                    ..
                } => Some(r),
                _ => None,
            })
            .expect("a response")
    }

    fn heartbeat(&mut self, slot: usize, send_owned: bool) {
        if self.clients[slot].crashed {
            // Restart: a static member comes back under a new member id.
            let client = &mut self.clients[slot];
            client.crashed = false;
            client.joined = false;
            if slot == STATIC_SLOT {
                client.incarnation += 1;
            }
        }
        let request = self.request(slot, send_owned);
        let r = self.send(&request);
        let client = &mut self.clients[slot];
        match r.error_code {
            codes::NONE => {
                client.joined = true;
                client.epoch = r.member_epoch;
                if let Some(assignment) = r.assignment {
                    let new: BTreeSet<(Uuid, i32)> = assignment
                        .topic_partitions
                        .iter()
                        .flat_map(|tp| tp.partitions.iter().map(move |p| (tp.topic_id, *p)))
                        .collect();
                    // The client revokes what is gone and takes what is new.
                    client.owned = new;
                }
            }
            codes::FENCED_MEMBER_EPOCH | codes::UNKNOWN_MEMBER_ID => {
                // Partitions lost; rejoin with epoch 0 and the same id.
                client.owned.clear();
                client.joined = false;
            }
            codes::UNRELEASED_INSTANCE_ID => {
                // The previous incarnation still holds the instance id; try again later.
                client.joined = false;
            }
            other => panic!("unexpected error {other}: {r:?} for {request:?}"),
        }
        self.check_exclusive();
    }

    fn leave(&mut self, slot: usize, temporary: bool) {
        let client = &self.clients[slot];
        if !client.joined || client.crashed {
            return;
        }
        let epoch = if temporary && slot == STATIC_SLOT {
            -2
        } else {
            -1
        };
        let request = ConsumerGroupHeartbeatRequest {
            member_epoch: epoch,
            topic_partitions: None,
            ..self.request(slot, false)
        };
        let r = self.send(&request);
        assert!(
            matches!(
                r.error_code,
                codes::NONE | codes::UNKNOWN_MEMBER_ID | codes::FENCED_INSTANCE_ID
            ),
            "{r:?}"
        );
        let client = &mut self.clients[slot];
        client.owned.clear();
        client.joined = false;
        if slot == STATIC_SLOT {
            client.incarnation += 1;
        }
    }

    fn advance(&mut self, ms: i64) {
        self.now += ms;
        if self.c.next_deadline_ms().is_some_and(|at| at <= self.now) {
            let out = self.c.tick(self.now);
            self.record(&out);
            self.c.assert_invariants();
        }
        // A client whose member the coordinator removed has lost its partitions.
        let group = self.c.consumer_group(GROUP).cloned();
        for (slot, client) in self.clients.iter_mut().enumerate() {
            let id = member_id(slot, client);
            let known = group.as_ref().is_some_and(|g| g.members.contains_key(&id));
            if !known {
                client.owned.clear();
            }
        }
    }

    /// The property: no partition is owned by two clients at once.
    fn check_exclusive(&self) {
        let mut seen = BTreeMap::new();
        for (slot, client) in self.clients.iter().enumerate() {
            for tp in &client.owned {
                if let Some(other) = seen.insert(*tp, slot) {
                    panic!("{tp:?} owned by clients {other} and {slot}");
                }
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Heartbeat { slot, send_owned } => self.heartbeat(slot, send_owned),
            Op::Leave { slot, temporary } => self.leave(slot, temporary),
            Op::Crash { slot } => {
                let client = &mut self.clients[slot];
                client.crashed = true;
                client.owned.clear();
            }
            Op::Assignor { slot, range } => {
                self.clients[slot].assignor =
                    Some(if range { "range" } else { "uniform" }.to_string());
            }
            Op::Grow { t, u } => {
                let t_now = self.topics["t"].partitions + t;
                let u_now = self.topics.get("u").map_or(0, |m| m.partitions) + u;
                self.topics = snapshot(t_now, u_now);
                let out = self.c.update_topics(self.now, &self.topics);
                self.record(&out);
                self.c.assert_invariants();
            }
            Op::Advance { ms } => self.advance(ms),
        }
    }

    /// Live clients heartbeat every 3 s for a while: crashed members expire, everybody
    /// else reconciles.
    fn settle(&mut self) {
        for _ in 0..40 {
            for slot in 0..SLOTS {
                if !self.clients[slot].crashed {
                    self.heartbeat(slot, true);
                }
            }
            self.advance(3_000);
        }
    }
}

fn all_partitions(topics: &TopicsSnapshot) -> BTreeSet<(Uuid, i32)> {
    topics
        .values()
        .flat_map(|m| (0..m.partitions).map(move |p| (m.id, p)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn reconciliation_is_exclusive_and_converges(
        t in 1..6i32,
        u in 0..4i32,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let mut w = World::new(t, u);
        for op in &ops {
            w.apply(op);
        }
        w.settle();
        let live: Vec<usize> = (0..SLOTS).filter(|s| !w.clients[*s].crashed).collect();
        let Some(group) = w.c.consumer_group(GROUP).cloned() else {
            prop_assert!(live.is_empty());
            return Ok(());
        };
        prop_assert_eq!(group.members.len(), live.len());
        let settled = if live.is_empty() {
            ConsumerGroupState::Empty
        } else {
            ConsumerGroupState::Stable
        };
        prop_assert_eq!(group.state(), settled);
        let mut union = BTreeSet::new();
        for slot in &live {
            let client = &w.clients[*slot];
            let member = &group.members[&member_id(*slot, client)];
            prop_assert_eq!(client.epoch, group.assignment_epoch);
            let assigned: BTreeSet<(Uuid, i32)> = member
                .assigned
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
                .collect();
            prop_assert_eq!(&client.owned, &assigned);
            union.extend(assigned);
        }
        // Every partition of a topic someone subscribes to is consumed.
        let wanted: BTreeSet<(Uuid, i32)> = if live.is_empty() {
            BTreeSet::new()
        } else if live.iter().any(|s| *s != NARROW_SLOT) {
            all_partitions(&w.topics)
        } else {
            all_partitions(&w.topics).into_iter().filter(|(id, _)| *id == T).collect()
        };
        prop_assert_eq!(union, wanted);

        // Replaying every persisted record rebuilds the same group.
        // So does replaying the group's own snapshot of records.
        let snapshot: Vec<(bytes::Bytes, Option<bytes::Bytes>)> =
            group.records().into_iter().map(|r| (r.key, r.value)).collect();
        for records in [&w.persisted, &snapshot] {
            let mut loaded = GroupCoordinator::loading(GroupConfig::default());
            for (key, value) in records {
                loaded.replay(key, value.as_ref()).expect("replays");
            }
            loaded.finish_load(w.now);
            loaded.assert_invariants();
            let mut rebuilt = loaded.consumer_group(GROUP).expect("rebuilt").clone();
            for (id, member) in &mut rebuilt.members {
                let live = &group.members[id];
                member.session_deadline_ms = live.session_deadline_ms;
                member.revocation_deadline_ms = live.revocation_deadline_ms;
                // Assignment epochs are not persisted: after a reload a member owns each
                // partition since no earlier epoch than it really did (never accepting
                // a commit the live group would refuse).
                for ((topic, p), since) in &member.assignment_epochs {
                    let live_since = live.owned_since(*topic, *p);
                    prop_assert!(live_since.is_some_and(|l| l <= *since));
                }
                member.assignment_epochs = live.assignment_epochs.clone();
            }
            rebuilt.state_timestamp_ms = group.state_timestamp_ms;
            prop_assert_eq!(&rebuilt, &group);
        }
    }
}

/// Found by the property: a member rejoining with a new assignor, whose target loses the
/// partition it held, must not be left revoking at epoch 0.
#[test]
fn regression_restart_after_crash() {
    let mut w = World::new(1, 0);
    for op in [
        Op::Heartbeat {
            slot: 3,
            send_owned: false,
        },
        Op::Assignor {
            slot: 3,
            range: true,
        },
        Op::Heartbeat {
            slot: 0,
            send_owned: false,
        },
        Op::Crash { slot: 3 },
        Op::Heartbeat {
            slot: 0,
            send_owned: false,
        },
        Op::Heartbeat {
            slot: 3,
            send_owned: false,
        },
    ] {
        w.apply(&op);
    }
    w.settle();
}
