//! A classic-protocol group: its state, members and the pure rules over them. The
//! transitions that produce outputs live in the coordinator.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::RequestHandle;

/// Kafka's classic group states (the names are what ListGroups/DescribeGroups report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// A parked long-poll request (JoinGroup or SyncGroup) to answer later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parked {
    pub handle: RequestHandle,
    pub api_version: i16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// The protocols this member supports, most preferred first, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// This member's assignment for the current generation (empty until the leader syncs).
    pub assignment: Bytes,
    /// Its JoinGroup, parked until the rebalance completes.
    pub join: Option<Parked>,
    /// Its SyncGroup, parked until the leader's SyncGroup arrives.
    pub sync: Option<Parked>,
    /// Whether it sent SyncGroup in this generation; the pending-sync timer removes those
    /// that did not.
    pub synced: bool,
    /// The member is removed when this passes without a heartbeat, unless a join or sync is
    /// parked (Kafka keeps those alive).
    pub heartbeat_deadline_ms: i64,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Option<Bytes> {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    pub(crate) fn keeps_alive(&self) -> bool {
        self.join.is_some() || self.sync.is_some()
    }
}

/// The initial delayed join of an empty group (`group.initial.rebalance.delay.ms`): when it
/// fires and a member joined since it was armed, it re-arms while rebalance time remains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialJoin {
    pub remaining_ms: i64,
    pub new_member_added: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassicGroup {
    pub group_id: String,
    pub state: GroupState,
    /// When `state` last changed; an empty group's offsets expire relative to it.
    pub state_timestamp_ms: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> member id (KIP-345).
    pub static_members: BTreeMap<String, String>,
    /// KIP-394: ids handed out with MEMBER_ID_REQUIRED, with the time they are forgotten if
    /// the client does not join with them.
    pub pending_members: BTreeMap<String, i64>,
    /// When the current PreparingRebalance gives up waiting for members.
    pub join_deadline_ms: Option<i64>,
    pub initial_join: Option<InitialJoin>,
    /// When members that have not sent SyncGroup are removed.
    pub sync_deadline_ms: Option<i64>,
}

impl ClassicGroup {
    pub fn new(group_id: &str, now_ms: i64) -> Self {
        Self {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            join_deadline_ms: None,
            initial_join: None,
            sync_deadline_ms: None,
        }
    }

    pub(crate) fn set_state(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    /// Protocols every member supports, in no particular order.
    fn candidate_protocols(&self) -> Vec<String> {
        let Some(first) = self.members.values().next() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(name, _)| name.clone())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect()
    }

    /// Kafka's rule (`ClassicGroup.selectProtocol`): among the protocols every member
    /// supports, each member votes for the first one in its own preference order; the most
    /// votes wins. Ties go to the smallest name so the choice is deterministic.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(n))
            {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        votes
            .into_iter()
            .find(|(_, count)| *count == best)
            .map(|(name, _)| name.to_string())
    }

    /// Whether a member with this protocol type and these protocols may join (Kafka's
    /// `supportsProtocols`): anything non-empty joins an empty group, otherwise the type must
    /// match and one protocol must be supported by everybody.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[String]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        let candidates = self.candidate_protocols();
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| candidates.contains(p))
    }

    pub fn rebalance_timeout_max_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    pub fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.join.is_some())
    }

    /// The member id that `group.instance.id` currently maps to, if any.
    pub fn static_member(&self, instance_id: &str) -> Option<&String> {
        self.static_members.get(instance_id)
    }

    /// The earliest time this group needs a tick.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let heartbeats = self
            .members
            .values()
            .filter(|m| !m.keeps_alive())
            .map(|m| m.heartbeat_deadline_ms);
        let pending = self.pending_members.values().copied();
        heartbeats
            .chain(pending)
            .chain(self.join_deadline_ms)
            .chain(self.sync_deadline_ms)
            .min()
    }

    /// Panics if an invariant of the state machine is broken (a bug here, never input).
    pub fn assert_invariants(&self) {
        if let Some(leader) = &self.leader {
            assert!(
                self.members.contains_key(leader),
                "leader {leader} is not a member"
            );
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                assert!(
                    self.members.is_empty(),
                    "{:?} group has members",
                    self.state
                )
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                assert!(self.leader.is_some() && self.protocol_name.is_some());
                assert!(self.members.values().all(|m| m.join.is_none()));
            }
            GroupState::PreparingRebalance => assert!(self.join_deadline_ms.is_some()),
        }
        if self.state != GroupState::CompletingRebalance {
            assert!(self.members.values().all(|m| m.sync.is_none()));
        }
        for (instance, member_id) in &self.static_members {
            let member = self.members.get(member_id).expect("static member exists");
            assert_eq!(member.group_instance_id.as_deref(), Some(instance.as_str()));
        }
    }
}
