//! KIP-848 server-side assignors: `uniform` (balanced and sticky, the default) and `range`.
//!
//! An assignor sees each member's subscribed topic ids and its previous target assignment,
//! and the partition count of every subscribed topic; it returns every member's new target
//! assignment (possibly empty). It is a pure function: same input, same output.

use std::collections::{BTreeMap, BTreeSet};

use freshet_protocol::Uuid;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The assignor used when no member names one (Kafka's first configured assignor).
pub const DEFAULT_ASSIGNOR: &str = UNIFORM;
pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";

/// Whether `name` is an assignor this coordinator has (`group.consumer.assignors`).
pub fn is_supported(name: &str) -> bool {
    name == UNIFORM || name == RANGE
}

/// What an assignor knows about one member.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemberSpec {
    pub subscribed: BTreeSet<Uuid>,
    /// Its previous target assignment (the uniform assignor keeps what it can).
    pub previous: Assignment,
}

/// Runs assignor `name` (one of [`is_supported`]; anything else runs the default).
pub fn assign(
    name: &str,
    members: &BTreeMap<String, MemberSpec>,
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    if name == RANGE {
        range(members, topics)
    } else {
        uniform(members, topics)
    }
}

/// Every partition of the subscribed topics, in topic-id then partition order.
fn partitions_of(topics: &BTreeMap<Uuid, i32>, subscribed: &BTreeSet<Uuid>) -> Vec<(Uuid, i32)> {
    topics
        .iter()
        .filter(|(id, _)| subscribed.contains(id))
        .flat_map(|(id, count)| (0..*count).map(move |p| (*id, p)))
        .collect()
}

fn to_assignment(partitions: &BTreeSet<(Uuid, i32)>) -> Assignment {
    let mut out = Assignment::new();
    for (topic, partition) in partitions {
        out.entry(*topic).or_default().insert(*partition);
    }
    out
}

/// Range: for each topic, its subscribers sorted by member id get consecutive ranges;
/// the first `partitions % members` get one more. Not sticky (as the classic range).
pub fn range(
    members: &BTreeMap<String, MemberSpec>,
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    for (topic, count) in topics {
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(topic))
            .map(|(id, _)| id)
            .collect();
        if subscribers.is_empty() || *count <= 0 {
            continue;
        }
        let n = subscribers.len() as i32;
        let (base, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribers.into_iter().enumerate() {
            let take = base + i32::from((i as i32) < extra);
            if take > 0 {
                let partitions = out.get_mut(member).expect("every member has an entry");
                partitions.insert(*topic, (next..next + take).collect());
            }
            next += take;
        }
    }
    out
}

/// Uniform: every partition of a subscribed topic goes to one of its subscribers, the
/// counts are as even as the subscriptions allow (within one when everybody subscribes to
/// the same topics), and a partition stays with its previous owner unless it must move to
/// even the counts out.
pub fn uniform(
    members: &BTreeMap<String, MemberSpec>,
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut owned: BTreeMap<&str, BTreeSet<(Uuid, i32)>> = members
        .keys()
        .map(|id| (id.as_str(), BTreeSet::new()))
        .collect();
    let mut claimed: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    let eligible = |member: &MemberSpec, (topic, partition): (Uuid, i32)| {
        member.subscribed.contains(&topic) && topics.get(&topic).is_some_and(|c| partition < *c)
    };
    // 1. Stickiness: keep every previous partition that is still valid for its member.
    for (id, member) in members {
        for (topic, partitions) in &member.previous {
            for partition in partitions {
                let tp = (*topic, *partition);
                if eligible(member, tp) && claimed.insert(tp) {
                    owned.get_mut(id.as_str()).expect("entry").insert(tp);
                }
            }
        }
    }
    // 2. Hand out the rest, the most constrained partitions first, each to the eligible
    //    member that has the fewest.
    let all: BTreeSet<Uuid> = members
        .values()
        .flat_map(|m| m.subscribed.iter().copied())
        .collect();
    let mut unassigned: Vec<((Uuid, i32), Vec<&str>)> = partitions_of(topics, &all)
        .into_iter()
        .filter(|tp| !claimed.contains(tp))
        .map(|tp| {
            let who = members
                .iter()
                .filter(|(_, m)| eligible(m, tp))
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>();
            (tp, who)
        })
        .collect();
    unassigned.sort_by_key(|(tp, who)| (who.len(), *tp));
    for (tp, who) in unassigned {
        if let Some(member) = who.iter().min_by_key(|id| (owned[**id].len(), **id)) {
            owned.get_mut(*member).expect("entry").insert(tp);
        }
    }
    // 3. Even out: the fullest member that can give a partition to one that has at least
    //    two fewer gives it to the emptiest such member; repeat until nobody can. Each move
    //    lowers the sum of squared counts, so this ends.
    loop {
        let mut donors: Vec<&str> = owned.keys().copied().collect();
        donors.sort_by_key(|id| (std::cmp::Reverse(owned[id].len()), *id));
        let mut moved = None;
        'search: for donor in donors {
            let donor_count = owned[donor].len();
            for tp in owned[donor].iter().rev() {
                let receiver = members
                    .iter()
                    .filter(|(id, m)| {
                        id.as_str() != donor
                            && owned[id.as_str()].len() + 1 < donor_count
                            && eligible(m, *tp)
                    })
                    .map(|(id, _)| id.as_str())
                    .min_by_key(|id| (owned[id].len(), *id));
                if let Some(receiver) = receiver {
                    moved = Some((donor, receiver, *tp));
                    break 'search;
                }
            }
        }
        let Some((donor, receiver, tp)) = moved else {
            break;
        };
        owned.get_mut(donor).expect("entry").remove(&tp);
        owned.get_mut(receiver).expect("entry").insert(tp);
    }
    owned
        .into_iter()
        .map(|(id, partitions)| (id.to_string(), to_assignment(&partitions)))
        .collect()
}
