//! Partition assignors, run by the group leader on every member's subscription: `range` and
//! `roundrobin` (eager: members give everything back before each rebalance) and
//! `cooperative-sticky` (members keep what does not move; a partition changing owner is first
//! revoked, then assigned in a follow-up rebalance). Names and results follow Kafka's clients
//! so that members of other clients can share a group with this one.

use std::collections::{BTreeMap, BTreeSet};

use crate::TopicPartition;

/// A `partition.assignment.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignmentStrategy {
    /// Per topic, contiguous ranges of partitions to members sorted by id (Kafka's default).
    Range,
    /// All partitions dealt out one by one to members in turn.
    RoundRobin,
    /// Balanced and sticky, with incremental (cooperative) rebalancing.
    CooperativeSticky,
}

impl AssignmentStrategy {
    /// The protocol name in JoinGroup, as Kafka's clients name it.
    pub fn name(self) -> &'static str {
        match self {
            AssignmentStrategy::Range => "range",
            AssignmentStrategy::RoundRobin => "roundrobin",
            AssignmentStrategy::CooperativeSticky => "cooperative-sticky",
        }
    }

    pub fn from_name(name: &str) -> Option<AssignmentStrategy> {
        match name {
            "range" => Some(AssignmentStrategy::Range),
            "roundrobin" => Some(AssignmentStrategy::RoundRobin),
            "cooperative-sticky" => Some(AssignmentStrategy::CooperativeSticky),
            _ => None,
        }
    }

    /// Whether members keep their partitions across a rebalance (the cooperative protocol).
    pub fn is_cooperative(self) -> bool {
        self == AssignmentStrategy::CooperativeSticky
    }

    /// Assigns the partitions of `topics` (topic → partition count) to `members`. Every
    /// member gets an entry, possibly empty.
    pub fn assign(
        self,
        members: &[MemberSubscription],
        topics: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut result = match self {
            AssignmentStrategy::Range => range(members, topics),
            AssignmentStrategy::RoundRobin => round_robin(members, topics),
            AssignmentStrategy::CooperativeSticky => cooperative_sticky(members, topics),
        };
        for member in members {
            result.entry(member.member_id.clone()).or_default();
        }
        for partitions in result.values_mut() {
            partitions.sort();
        }
        result
    }
}

/// What the leader knows of one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub topics: BTreeSet<String>,
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation of `owned_partitions` (-1 when unknown).
    pub generation: i32,
}

/// Members in Kafka's order: by group.instance.id when both have one, else by member id.
fn sorted_members(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
    sorted.sort_by(|a, b| match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.member_id.cmp(&b.member_id)),
        _ => a.member_id.cmp(&b.member_id),
    });
    sorted
}

fn range(
    members: &[MemberSubscription],
    topics: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut result: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
    let sorted = sorted_members(members);
    for (topic, &count) in topics {
        let consumers: Vec<&&MemberSubscription> = sorted
            .iter()
            .filter(|member| member.topics.contains(topic))
            .collect();
        if consumers.is_empty() || count <= 0 {
            continue;
        }
        let n = consumers.len() as i32;
        let (per, extra) = (count / n, count % n);
        for (i, member) in consumers.iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            let entry = result.entry(member.member_id.clone()).or_default();
            entry.extend((start..start + len).map(|p| TopicPartition::new(topic.clone(), p)));
        }
    }
    result
}

fn round_robin(
    members: &[MemberSubscription],
    topics: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut result: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
    let sorted = sorted_members(members);
    if sorted.is_empty() {
        return result;
    }
    let mut next = 0usize;
    for (topic, &count) in topics {
        if !sorted.iter().any(|member| member.topics.contains(topic)) {
            continue;
        }
        for partition in 0..count.max(0) {
            // The next member in the circle that subscribes to the topic.
            while !sorted[next % sorted.len()].topics.contains(topic) {
                next += 1;
            }
            let member = sorted[next % sorted.len()];
            next += 1;
            result
                .entry(member.member_id.clone())
                .or_default()
                .push(TopicPartition::new(topic.clone(), partition));
        }
    }
    result
}

/// Balanced (counts of members that could take each other's partitions differ by at most
/// one), sticky (a valid owned partition stays unless balance needs it elsewhere), and
/// cooperative: a partition whose owner changes is left out this round, so its owner revokes
/// it and the follow-up rebalance assigns it.
fn cooperative_sticky(
    members: &[MemberSubscription],
    topics: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let sorted = sorted_members(members);
    let exists = |tp: &TopicPartition| topics.get(&tp.topic).is_some_and(|&n| tp.partition < n);

    // Who owns what now. Conflicting claims go to the newest generation, then the first member.
    let mut previous_owner: BTreeMap<TopicPartition, (i32, &str)> = BTreeMap::new();
    for member in &sorted {
        for tp in &member.owned_partitions {
            if !exists(tp) || !member.topics.contains(&tp.topic) {
                continue;
            }
            let claim = (member.generation, member.member_id.as_str());
            match previous_owner.get(tp) {
                Some(&(generation, _)) if generation >= member.generation => {}
                _ => {
                    previous_owner.insert(tp.clone(), claim);
                }
            }
        }
    }

    let mut assignment: BTreeMap<&str, BTreeSet<TopicPartition>> = sorted
        .iter()
        .map(|member| (member.member_id.as_str(), BTreeSet::new()))
        .collect();
    for (tp, (_, owner)) in &previous_owner {
        assignment
            .get_mut(owner)
            .expect("owners are members")
            .insert(tp.clone());
    }

    let subscribers = |topic: &str| -> Vec<&str> {
        sorted
            .iter()
            .filter(|member| member.topics.contains(topic))
            .map(|member| member.member_id.as_str())
            .collect()
    };

    // Unowned partitions, those with the fewest possible consumers first, each to the least
    // loaded member that can take it.
    let mut unowned: Vec<(usize, TopicPartition)> = topics
        .iter()
        .flat_map(|(topic, &count)| {
            (0..count.max(0)).map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .filter(|tp| !previous_owner.contains_key(tp))
        .map(|tp| (subscribers(&tp.topic).len(), tp))
        .filter(|(eligible, _)| *eligible > 0)
        .collect();
    unowned.sort();
    for (_, tp) in unowned {
        let member = least_loaded(&assignment, &subscribers(&tp.topic));
        assignment.get_mut(member).expect("member").insert(tp);
    }

    // Move partitions from the most loaded member to a less loaded one that can take them
    // until no move helps: each move lowers the sum of squared counts, so this ends.
    loop {
        let mut moved = false;
        let mut by_load: Vec<&str> = assignment.keys().copied().collect();
        by_load.sort_by_key(|member| std::cmp::Reverse(assignment[member].len()));
        'search: for &from in &by_load {
            let from_count = assignment[from].len();
            // Partitions this member was not already owning go first, to keep stickiness.
            let mut candidates: Vec<&TopicPartition> = assignment[from].iter().collect();
            candidates.sort_by_key(|tp| {
                previous_owner
                    .get(*tp)
                    .is_some_and(|(_, owner)| *owner == from)
            });
            for tp in candidates {
                let eligible = subscribers(&tp.topic);
                let to = least_loaded(&assignment, &eligible);
                if assignment[to].len() + 1 < from_count {
                    let tp = tp.clone();
                    assignment.get_mut(from).expect("member").remove(&tp);
                    assignment.get_mut(to).expect("member").insert(tp);
                    moved = true;
                    break 'search;
                }
            }
        }
        if !moved {
            break;
        }
    }

    // The cooperative rule: nobody gets a partition that another member still owns.
    let mut result = BTreeMap::new();
    for (member, partitions) in assignment {
        let kept: Vec<TopicPartition> = partitions
            .into_iter()
            .filter(|tp| {
                previous_owner
                    .get(tp)
                    .is_none_or(|(_, owner)| *owner == member)
            })
            .collect();
        result.insert(member.to_owned(), kept);
    }
    result
}

/// The member with the fewest partitions among `eligible` (ties: the first in order).
fn least_loaded<'a>(
    assignment: &BTreeMap<&'a str, BTreeSet<TopicPartition>>,
    eligible: &[&'a str],
) -> &'a str {
    eligible
        .iter()
        .copied()
        .min_by_key(|member| assignment[member].len())
        .expect("at least one eligible member")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(
        id: &str,
        topics: &[&str],
        owned: &[(&str, i32)],
        generation: i32,
    ) -> MemberSubscription {
        MemberSubscription {
            member_id: id.into(),
            group_instance_id: None,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            owned_partitions: owned
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
            generation,
        }
    }

    fn topics(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    fn names(partitions: &[TopicPartition]) -> Vec<String> {
        partitions.iter().map(ToString::to_string).collect()
    }

    fn counts(result: &BTreeMap<String, Vec<TopicPartition>>) -> Vec<usize> {
        result.values().map(Vec::len).collect()
    }

    /// Every partition at most once; with `complete`, every partition exactly once.
    fn check_disjoint(
        result: &BTreeMap<String, Vec<TopicPartition>>,
        topics: &BTreeMap<String, i32>,
        complete: bool,
    ) {
        let mut seen = BTreeSet::new();
        for partitions in result.values() {
            for tp in partitions {
                assert!(seen.insert(tp.clone()), "{tp} assigned twice: {result:?}");
                assert!(tp.partition < topics[&tp.topic]);
            }
        }
        if complete {
            let total: i32 = topics.values().sum();
            assert_eq!(seen.len(), total as usize, "{result:?}");
        }
    }

    #[test]
    fn range_splits_each_topic_in_contiguous_ranges() {
        let members = [
            member("b", &["t", "u"], &[], -1),
            member("a", &["t", "u"], &[], -1),
        ];
        let topics = topics(&[("t", 5), ("u", 2)]);
        let result = AssignmentStrategy::Range.assign(&members, &topics);
        assert_eq!(names(&result["a"]), ["t-0", "t-1", "t-2", "u-0"]);
        assert_eq!(names(&result["b"]), ["t-3", "t-4", "u-1"]);
        check_disjoint(&result, &topics, true);
    }

    #[test]
    fn range_only_to_subscribers_and_more_members_than_partitions() {
        let members = [
            member("a", &["t"], &[], -1),
            member("b", &["t", "u"], &[], -1),
            member("c", &["t"], &[], -1),
        ];
        let topics = topics(&[("t", 2), ("u", 1)]);
        let result = AssignmentStrategy::Range.assign(&members, &topics);
        assert_eq!(names(&result["a"]), ["t-0"]);
        assert_eq!(names(&result["b"]), ["t-1", "u-0"]);
        assert!(result["c"].is_empty());
    }

    #[test]
    fn range_orders_static_members_by_instance_id() {
        let mut first = member("z-member", &["t"], &[], -1);
        first.group_instance_id = Some("instance-1".into());
        let mut second = member("a-member", &["t"], &[], -1);
        second.group_instance_id = Some("instance-2".into());
        let result = AssignmentStrategy::Range.assign(&[first, second], &topics(&[("t", 2)]));
        assert_eq!(names(&result["z-member"]), ["t-0"]);
        assert_eq!(names(&result["a-member"]), ["t-1"]);
    }

    #[test]
    fn round_robin_deals_partitions_in_turn() {
        let members = [
            member("a", &["t", "u"], &[], -1),
            member("b", &["t", "u"], &[], -1),
        ];
        let topics = topics(&[("t", 3), ("u", 2)]);
        let result = AssignmentStrategy::RoundRobin.assign(&members, &topics);
        assert_eq!(names(&result["a"]), ["t-0", "t-2", "u-1"]);
        assert_eq!(names(&result["b"]), ["t-1", "u-0"]);
    }

    #[test]
    fn sticky_first_assignment_is_balanced() {
        let members: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|id| member(id, &["t", "u"], &[], -1))
            .collect();
        let topics = topics(&[("t", 4), ("u", 3)]);
        let result = AssignmentStrategy::CooperativeSticky.assign(&members, &topics);
        check_disjoint(&result, &topics, true);
        let counts = counts(&result);
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "{counts:?}"
        );
    }

    #[test]
    fn sticky_new_member_takes_only_what_balance_needs_in_two_rounds() {
        let topics = topics(&[("t", 4)]);
        // a and b own two each; c joins.
        let round1 = [
            member("a", &["t"], &[("t", 0), ("t", 1)], 3),
            member("b", &["t"], &[("t", 2), ("t", 3)], 3),
            member("c", &["t"], &[], -1),
        ];
        let first = AssignmentStrategy::CooperativeSticky.assign(&round1, &topics);
        check_disjoint(&first, &topics, false);
        // Nobody gets a partition someone else owns: c gets nothing yet, and exactly one
        // partition is taken from a or b (revoked now, assigned in the next round).
        assert!(first["c"].is_empty(), "{first:?}");
        let kept = first["a"].len() + first["b"].len();
        assert_eq!(kept, 3, "{first:?}");
        for (id, owned) in [("a", &round1[0]), ("b", &round1[1])] {
            for tp in &first[id] {
                assert!(
                    owned.owned_partitions.contains(tp),
                    "{id} keeps only its own"
                );
            }
        }
        // Round 2: members report what they kept.
        let round2 = [
            member(
                "a",
                &["t"],
                &first["a"]
                    .iter()
                    .map(|tp| ("t", tp.partition))
                    .collect::<Vec<_>>(),
                4,
            ),
            member(
                "b",
                &["t"],
                &first["b"]
                    .iter()
                    .map(|tp| ("t", tp.partition))
                    .collect::<Vec<_>>(),
                4,
            ),
            member("c", &["t"], &[], -1),
        ];
        let second = AssignmentStrategy::CooperativeSticky.assign(&round2, &topics);
        check_disjoint(&second, &topics, true);
        assert_eq!(second["a"], first["a"]);
        assert_eq!(second["b"], first["b"]);
        assert_eq!(second["c"].len(), 1);
    }

    #[test]
    fn sticky_member_leaving_moves_only_its_partitions() {
        let topics = topics(&[("t", 6)]);
        let members = [
            member("a", &["t"], &[("t", 0), ("t", 1)], 5),
            member("b", &["t"], &[("t", 2), ("t", 3)], 5),
        ];
        // c owned 4 and 5 and left.
        let result = AssignmentStrategy::CooperativeSticky.assign(&members, &topics);
        check_disjoint(&result, &topics, true);
        assert_eq!(result["a"].len(), 3);
        assert_eq!(result["b"].len(), 3);
        assert!(names(&result["a"]).starts_with(&["t-0".to_owned(), "t-1".to_owned()]));
        assert!(names(&result["b"]).starts_with(&["t-2".to_owned(), "t-3".to_owned()]));
    }

    #[test]
    fn sticky_conflicting_claims_go_to_the_newest_generation() {
        let topics = topics(&[("t", 2)]);
        let members = [
            member("a", &["t"], &[("t", 0)], 1),
            member("b", &["t"], &[("t", 0), ("t", 1)], 2),
        ];
        let result = AssignmentStrategy::CooperativeSticky.assign(&members, &topics);
        check_disjoint(&result, &topics, false);
        // b's claim on t-0 wins; balance would move one partition to a, so it is held back.
        assert!(result["a"].is_empty(), "{result:?}");
        assert_eq!(result["b"].len(), 1);
    }

    #[test]
    fn sticky_drops_claims_on_gone_or_unsubscribed_topics() {
        let topics = topics(&[("t", 2)]);
        let members = [
            member("a", &["t"], &[("gone", 0), ("t", 5)], 1),
            member("b", &["t"], &[], 1),
        ];
        let result = AssignmentStrategy::CooperativeSticky.assign(&members, &topics);
        check_disjoint(&result, &topics, true);
        assert_eq!(counts(&result), [1, 1]);
    }

    #[test]
    fn sticky_balances_with_unequal_subscriptions() {
        let topics = topics(&[("t", 4), ("u", 4)]);
        let members = [
            member("a", &["t"], &[], -1),
            member("b", &["t", "u"], &[], -1),
            member("c", &["u"], &[], -1),
        ];
        let result = AssignmentStrategy::CooperativeSticky.assign(&members, &topics);
        check_disjoint(&result, &topics, true);
        let counts = counts(&result);
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "{counts:?}"
        );
        for tp in &result["a"] {
            assert_eq!(tp.topic, "t");
        }
        for tp in &result["c"] {
            assert_eq!(tp.topic, "u");
        }
    }

    #[test]
    fn sticky_many_rounds_stay_balanced_and_sticky() {
        // Members join one by one; each round's owned partitions feed the next round, and
        // follow-up rounds run until nothing is held back.
        let topics = topics(&[("t", 12), ("u", 5)]);
        let mut owned: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        for joined in 1..=6 {
            let ids: Vec<String> = (0..joined).map(|i| format!("m{i}")).collect();
            for round in 0..3 {
                let members: Vec<MemberSubscription> = ids
                    .iter()
                    .map(|id| MemberSubscription {
                        member_id: id.clone(),
                        group_instance_id: None,
                        topics: ["t".to_owned(), "u".to_owned()].into(),
                        owned_partitions: owned.get(id).cloned().unwrap_or_default(),
                        generation: round,
                    })
                    .collect();
                let result = AssignmentStrategy::CooperativeSticky.assign(&members, &topics);
                check_disjoint(&result, &topics, false);
                for (id, partitions) in &result {
                    let before = owned.get(id).cloned().unwrap_or_default();
                    let lost = before.iter().filter(|tp| !partitions.contains(tp)).count();
                    // Only what balance needs leaves a member: at most its surplus.
                    let fair = 17usize.div_ceil(joined);
                    assert!(
                        lost <= before.len().saturating_sub(fair - 1),
                        "{id} lost {lost}"
                    );
                }
                owned = result;
            }
            let total: usize = owned.values().map(Vec::len).sum();
            assert_eq!(total, 17, "all assigned after the follow-up round");
            let counts = counts(&owned);
            assert!(
                counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
                "{counts:?}"
            );
        }
    }
}
