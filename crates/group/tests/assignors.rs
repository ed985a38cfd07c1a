//! The KIP-848 server-side assignors: uniform balance and stickiness, range layout.

use std::collections::{BTreeMap, BTreeSet};

use freshet_group::assignor::{self, Assignment, MemberSpec};
use freshet_protocol::Uuid;
use proptest::prelude::*;

fn topic(n: u8) -> Uuid {
    Uuid([n; 16])
}

fn spec(subscribed: &[u8], previous: Assignment) -> MemberSpec {
    MemberSpec {
        subscribed: subscribed.iter().map(|n| topic(*n)).collect(),
        previous,
    }
}

fn counts(result: &BTreeMap<String, Assignment>) -> Vec<usize> {
    result
        .values()
        .map(|a| a.values().map(BTreeSet::len).sum())
        .collect()
}

fn flat(a: &Assignment) -> BTreeSet<(Uuid, i32)> {
    a.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
        .collect()
}

/// Every partition of `topics` appears exactly once over all members.
fn assert_complete(result: &BTreeMap<String, Assignment>, topics: &BTreeMap<Uuid, i32>) {
    let mut seen = BTreeSet::new();
    for a in result.values() {
        for tp in flat(a) {
            assert!(seen.insert(tp), "{tp:?} assigned twice");
        }
    }
    let all: BTreeSet<(Uuid, i32)> = topics
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| (*t, p)))
        .collect();
    assert_eq!(seen, all);
}

fn homogeneous(
    members: usize,
    topics: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, MemberSpec> {
    (0..members)
        .map(|i| {
            let id = format!("m{i:02}");
            let spec = MemberSpec {
                subscribed: topics.keys().copied().collect(),
                previous: previous.get(&id).cloned().unwrap_or_default(),
            };
            (id, spec)
        })
        .collect()
}

#[test]
fn range_gives_each_topic_in_consecutive_ranges() {
    let topics: BTreeMap<Uuid, i32> = [(topic(1), 5), (topic(2), 2)].into_iter().collect();
    let members: BTreeMap<String, MemberSpec> = [
        ("a".to_string(), spec(&[1, 2], Assignment::new())),
        ("b".to_string(), spec(&[1, 2], Assignment::new())),
        ("c".to_string(), spec(&[1], Assignment::new())),
    ]
    .into_iter()
    .collect();
    let result = assignor::range(&members, &topics);
    let of = |m: &str, t: u8| -> Vec<i32> {
        result[m]
            .get(&topic(t))
            .map(|ps| ps.iter().copied().collect())
            .unwrap_or_default()
    };
    assert_eq!(
        (of("a", 1), of("b", 1), of("c", 1)),
        (vec![0, 1], vec![2, 3], vec![4])
    );
    assert_eq!(
        (of("a", 2), of("b", 2), of("c", 2)),
        (vec![0], vec![1], vec![])
    );
    assert_complete(&result, &topics);
}

#[test]
fn uniform_new_member_takes_only_what_it_needs() {
    let topics: BTreeMap<Uuid, i32> = [(topic(1), 900)].into_iter().collect();
    let first = assignor::uniform(&homogeneous(10, &topics, &BTreeMap::new()), &topics);
    assert_eq!(counts(&first), vec![90; 10]);
    let second = assignor::uniform(&homogeneous(11, &topics, &first), &topics);
    assert_complete(&second, &topics);
    // 900 / 11: 9 members keep 82, 2 keep 81; nobody gains except the new member.
    let mut sizes = counts(&second);
    sizes.sort_unstable();
    assert_eq!(sizes, [vec![81, 81], vec![82; 9]].concat());
    for (id, before) in &first {
        assert!(flat(&second[id]).is_subset(&flat(before)), "{id} gained");
    }
    // Growing the topic to 1800: every member keeps all it had.
    let topics: BTreeMap<Uuid, i32> = [(topic(1), 1800)].into_iter().collect();
    let third = assignor::uniform(&homogeneous(11, &topics, &second), &topics);
    assert_complete(&third, &topics);
    for (id, before) in &second {
        assert!(flat(before).is_subset(&flat(&third[id])), "{id} lost");
    }
    let sizes = counts(&third);
    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
}

#[test]
fn uniform_honours_heterogeneous_subscriptions() {
    let topics: BTreeMap<Uuid, i32> = [(topic(1), 6), (topic(2), 6)].into_iter().collect();
    let members: BTreeMap<String, MemberSpec> = [
        ("a".to_string(), spec(&[1], Assignment::new())),
        ("b".to_string(), spec(&[1, 2], Assignment::new())),
        ("c".to_string(), spec(&[2], Assignment::new())),
    ]
    .into_iter()
    .collect();
    let result = assignor::uniform(&members, &topics);
    assert_complete(&result, &topics);
    assert!(!result["a"].contains_key(&topic(2)));
    assert!(!result["c"].contains_key(&topic(1)));
    assert_eq!(counts(&result), vec![4, 4, 4]);
}

proptest! {
    #[test]
    fn uniform_is_balanced_complete_and_sticky(
        partitions in prop::collection::vec(0..40i32, 1..4),
        members in 1..9usize,
        removed in 0..3usize,
    ) {
        let topics: BTreeMap<Uuid, i32> = partitions
            .iter()
            .enumerate()
            .map(|(i, n)| (topic(i as u8 + 1), *n))
            .collect();
        let before = assignor::uniform(&homogeneous(members, &topics, &BTreeMap::new()), &topics);
        assert_complete(&before, &topics);
        let sizes = counts(&before);
        prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        // Members leave (the last ones): the others keep everything they had.
        let left = members.saturating_sub(removed).max(1);
        let after = assignor::uniform(&homogeneous(left, &topics, &before), &topics);
        assert_complete(&after, &topics);
        let sizes = counts(&after);
        prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        for (id, now) in &after {
            prop_assert!(flat(&before[id]).is_subset(&flat(now)));
        }
        // The same input again gives the same output.
        prop_assert_eq!(
            assignor::uniform(&homogeneous(left, &topics, &before), &topics),
            after
        );
    }

    #[test]
    fn range_is_complete_and_within_one_per_topic(
        partitions in prop::collection::vec(0..40i32, 1..4),
        members in 1..9usize,
    ) {
        let topics: BTreeMap<Uuid, i32> = partitions
            .iter()
            .enumerate()
            .map(|(i, n)| (topic(i as u8 + 1), *n))
            .collect();
        let result = assignor::range(&homogeneous(members, &topics, &BTreeMap::new()), &topics);
        assert_complete(&result, &topics);
        for t in topics.keys() {
            let per: Vec<usize> = result.values().map(|a| a.get(t).map_or(0, BTreeSet::len)).collect();
            prop_assert!(per.iter().max().unwrap() - per.iter().min().unwrap() <= 1);
        }
    }
}
