//! The metadata quorum end to end: one voter on disk, restarts, snapshots, and three voters
//! in one process with a leader failover.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use freshet_metadata::controller::{self, ControllerSettings, NewTopic};
use freshet_metadata::{MetadataImage, MetadataRecord, TopicId};
use freshet_raft::{InProcessRouter, MetadataQuorum, ProposeError, QuorumError, QuorumOptions};
use openraft::BasicNode;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("freshet-quorum-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The records a broker proposes at first start and when a client creates a topic.
fn bootstrap(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut records = controller::bootstrap_cluster_id(image, "test-cluster");
    records.extend(controller::register_broker(
        image,
        1,
        "127.0.0.1",
        9092,
        None,
    ));
    records
}

fn create_topic(image: &MetadataImage, name: &str, partitions: i32, id: u8) -> Vec<MetadataRecord> {
    let request = NewTopic {
        name: name.to_string(),
        num_partitions: Some(partitions),
        replication_factor: Some(1),
        configs: vec![("retention.ms".to_string(), Some("60000".to_string()))],
    };
    controller::create_topic(
        image,
        &request,
        TopicId([id; 16]),
        &ControllerSettings::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn single_voter_survives_restart_with_the_same_image() {
    let dir = temp_dir("restart");
    let quorum = MetadataQuorum::open_single(&dir, 1, "127.0.0.1:9093")
        .await
        .unwrap();
    assert_eq!(quorum.current_leader(), Some(1));
    quorum.propose(bootstrap(&quorum.image())).await.unwrap();
    let index = quorum
        .propose(create_topic(&quorum.image(), "orders", 3, 7))
        .await
        .unwrap();
    let image = quorum.image();
    assert_eq!(quorum.applied().applied_index, index);
    assert_eq!(image.cluster_id(), Some("test-cluster"));
    assert_eq!(image.partitions("orders").unwrap().len(), 3);
    assert_eq!(image.topic_config("orders")["retention.ms"], "60000");
    quorum.shutdown().await.unwrap();

    let reopened = MetadataQuorum::open_single(&dir, 1, "127.0.0.1:9093")
        .await
        .unwrap();
    assert_eq!(*reopened.image(), *image);
    assert!(
        reopened.applied().applied_index >= index,
        "{} < {index}",
        reopened.applied().applied_index
    );
    let next = reopened
        .propose(create_topic(&reopened.image(), "payments", 1, 8))
        .await
        .unwrap();
    assert!(next > index);
    assert_eq!(
        reopened.image().topic_names().collect::<Vec<_>>(),
        ["orders", "payments"]
    );
    reopened.shutdown().await.unwrap();

    // The directory belongs to node 1: opening it as node 2 is refused at once.
    match MetadataQuorum::open_single(&dir, 2, "127.0.0.1:9093").await {
        Err(QuorumError::WrongNode {
            stored: 1,
            requested: 2,
        }) => {}
        Err(other) => panic!("expected WrongNode, got {other}"),
        Ok(_) => panic!("expected WrongNode, got a quorum"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn refused_batch_changes_nothing_and_carries_the_kafka_code() {
    let dir = temp_dir("refused");
    let quorum = MetadataQuorum::open_single(&dir, 1, "127.0.0.1:9093")
        .await
        .unwrap();
    quorum.propose(bootstrap(&quorum.image())).await.unwrap();
    // Two creations decided against the same image: the second loses at apply time.
    let image = quorum.image();
    let first = create_topic(&image, "t", 1, 1);
    let second = create_topic(&image, "t", 2, 2);
    quorum.propose(first).await.unwrap();
    let before = quorum.image();
    let err = quorum.propose(second).await.unwrap_err();
    match &err {
        ProposeError::Rejected(rejected) => assert_eq!(rejected.index, 0),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(err.error_code(), 36);
    assert_eq!(*quorum.image(), *before);
    quorum.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn snapshots_and_purges_then_restarts_from_the_snapshot() {
    let dir = temp_dir("snapshot");
    let options = QuorumOptions {
        snapshot_interval_entries: 5,
        entries_kept_after_snapshot: 2,
        ..QuorumOptions::default()
    };
    let quorum = MetadataQuorum::open_single_with(&dir, 1, "a:1", &options)
        .await
        .unwrap();
    quorum.propose(bootstrap(&quorum.image())).await.unwrap();
    for i in 0..20u8 {
        let image = quorum.image();
        quorum
            .propose(create_topic(&image, &format!("t{i}"), 1, i + 1))
            .await
            .unwrap();
    }
    // Producer ids: a block after the snapshot must continue after the restored ones.
    quorum
        .propose(controller::allocate_producer_ids(&quorum.image(), 1).unwrap())
        .await
        .unwrap();
    let applied = quorum.applied().applied_index;
    quorum
        .raft()
        .wait(Some(Duration::from_secs(5)))
        .metrics(
            |m| m.purged.is_some() && m.snapshot.is_some(),
            "snapshot and purge",
        )
        .await
        .unwrap();
    let image = quorum.image();
    quorum.shutdown().await.unwrap();
    assert!(dir.join("metadata-snapshot").exists());

    let reopened = MetadataQuorum::open_single_with(&dir, 1, "a:1", &options)
        .await
        .unwrap();
    assert_eq!(*reopened.image(), *image);
    assert!(
        reopened.applied().applied_index >= applied,
        "{} < {applied}",
        reopened.applied().applied_index
    );
    assert_eq!(reopened.image().next_producer_id(), 1000);
    reopened.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn watchers_wake_on_every_change() {
    let dir = temp_dir("watch");
    let quorum = MetadataQuorum::open_single(&dir, 1, "a:1").await.unwrap();
    let mut watch = quorum.watch();
    watch.borrow_and_update();
    let index = quorum.propose(bootstrap(&quorum.image())).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), watch.changed())
        .await
        .unwrap()
        .unwrap();
    let seen = watch.borrow_and_update().clone();
    assert_eq!(seen.applied_index, index);
    assert_eq!(seen.image.cluster_id(), Some("test-cluster"));
    quorum.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn cluster_options() -> QuorumOptions {
    QuorumOptions {
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        ..QuorumOptions::default()
    }
}

/// Proposes on whichever member leads, retrying while leadership moves (a loaded machine can
/// trigger an extra election at any time). Returns the log index and the leader used.
async fn propose_on_leader(
    members: &[&MetadataQuorum],
    records: impl Fn(&MetadataImage) -> Vec<MetadataRecord>,
) -> (u64, u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let leader = members.iter().find_map(|m| m.current_leader());
        if let Some(member) = members.iter().find(|m| Some(m.node_id()) == leader) {
            match member.propose(records(&member.image())).await {
                Ok(index) => return (index, member.node_id()),
                Err(ProposeError::NotLeader { .. }) => {}
                Err(e) => panic!("proposal failed: {e}"),
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no leader took the proposal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn open_member(
    router: &InProcessRouter,
    dir: &std::path::Path,
    id: u64,
    init: bool,
) -> MetadataQuorum {
    let voters: BTreeMap<u64, BasicNode> = (1..=3)
        .map(|n| (n, BasicNode::new(format!("node{n}"))))
        .collect();
    let quorum = MetadataQuorum::open(
        &dir.join(format!("node{id}")),
        id,
        &cluster_options(),
        router.network_for(id),
        init.then_some(voters),
    )
    .await
    .unwrap();
    router.register(id, quorum.raft().clone());
    quorum
}

async fn wait_for_leader(members: &[&MetadataQuorum], excluded: Option<u64>) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let leaders: Vec<Option<u64>> = members.iter().map(|m| m.current_leader()).collect();
        if let Some(Some(leader)) = leaders.first() {
            if Some(*leader) != excluded && leaders.iter().all(|l| *l == Some(*leader)) {
                return *leader;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no leader agreed: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_applied(member: &MetadataQuorum, index: u64) {
    let mut watch = member.watch();
    tokio::time::timeout(
        Duration::from_secs(10),
        watch.wait_for(|applied| applied.applied_index >= index),
    )
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_replicate_and_fail_over() {
    let dir = temp_dir("cluster");
    let router = InProcessRouter::new();
    let n1 = open_member(&router, &dir, 1, true).await;
    let n2 = open_member(&router, &dir, 2, false).await;
    let n3 = open_member(&router, &dir, 3, false).await;
    let members = [&n1, &n2, &n3];
    wait_for_leader(&members, None).await;
    propose_on_leader(&members, bootstrap).await;
    let (index, leader_id) =
        propose_on_leader(&members, |image| create_topic(image, "replicated", 2, 1)).await;
    let leader = members[(leader_id - 1) as usize];
    for member in members {
        wait_applied(member, index).await;
        assert_eq!(*member.image(), *leader.image());
    }
    // A follower refuses proposals and names the leader it knows.
    let follower = members.iter().find(|m| m.node_id() != leader_id).unwrap();
    match follower.propose(vec![]).await {
        Err(ProposeError::NotLeader { leader_id: Some(_) }) => {}
        other => panic!("expected NotLeader, got {other:?}"),
    }

    // Cut the current leader off: the other two elect one of themselves and keep going.
    let cut_id = leader.current_leader().unwrap_or(leader_id);
    let cut = members[(cut_id - 1) as usize];
    router.set_isolated(cut_id, true);
    let survivors: Vec<&MetadataQuorum> = members
        .iter()
        .copied()
        .filter(|m| m.node_id() != cut_id)
        .collect();
    wait_for_leader(&survivors, Some(cut_id)).await;
    let (after, new_leader_id) = propose_on_leader(&survivors, |image| {
        create_topic(image, "after-failover", 1, 2)
    })
    .await;
    assert_ne!(new_leader_id, cut_id);
    for member in &survivors {
        wait_applied(member, after).await;
    }

    // The old leader comes back, learns the new term and catches up.
    router.set_isolated(cut_id, false);
    wait_applied(cut, after).await;
    let new_leader = members[(new_leader_id - 1) as usize];
    assert_eq!(*cut.image(), *new_leader.image());
    assert!(cut.image().topic("after-failover").is_some());

    for member in [n1, n2, n3] {
        router.unregister(member.node_id());
        member.shutdown().await.unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_joining_late_gets_a_snapshot_and_follows() {
    let dir = temp_dir("learner");
    let router = InProcessRouter::new();
    let options = QuorumOptions {
        snapshot_interval_entries: 5,
        entries_kept_after_snapshot: 0,
        ..QuorumOptions::default()
    };
    let voters = BTreeMap::from([(1, BasicNode::new("node1"))]);
    let voter = MetadataQuorum::open(
        &dir.join("v"),
        1,
        &options,
        router.network_for(1),
        Some(voters),
    )
    .await
    .unwrap();
    router.register(1, voter.raft().clone());
    voter
        .wait_leader_applied(1, Duration::from_secs(10))
        .await
        .unwrap();
    voter.propose(bootstrap(&voter.image())).await.unwrap();
    for i in 0..12u8 {
        voter
            .propose(create_topic(&voter.image(), &format!("t{i}"), 1, i + 1))
            .await
            .unwrap();
    }
    voter
        .raft()
        .wait(Some(Duration::from_secs(5)))
        .metrics(|m| m.purged.is_some_and(|p| p.index > 5), "purged")
        .await
        .unwrap();

    // The entries it would need are gone from the log: only a snapshot can bring it up.
    let learner = MetadataQuorum::open(&dir.join("l"), 2, &options, router.network_for(2), None)
        .await
        .unwrap();
    router.register(2, learner.raft().clone());
    voter
        .raft()
        .add_learner(2, BasicNode::new("node2"), true)
        .await
        .unwrap();
    let index = voter
        .propose(create_topic(&voter.image(), "after-join", 1, 100))
        .await
        .unwrap();
    wait_applied(&learner, index).await;
    assert_eq!(*learner.image(), *voter.image());
    assert!(learner.raft().get_snapshot().await.unwrap().is_some());
    match learner.propose(vec![]).await {
        Err(ProposeError::NotLeader { leader_id }) => assert_eq!(leader_id, Some(1)),
        other => panic!("a learner cannot propose: {other:?}"),
    }
    for member in [voter, learner] {
        router.unregister(member.node_id());
        member.shutdown().await.unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_of_one_name_let_exactly_one_win() {
    let dir = temp_dir("race");
    let quorum = std::sync::Arc::new(MetadataQuorum::open_single(&dir, 1, "a:1").await.unwrap());
    quorum.propose(bootstrap(&quorum.image())).await.unwrap();
    let image = quorum.image();
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let records = create_topic(&image, "contended", 1, i + 1);
        let quorum = quorum.clone();
        tasks.push(tokio::spawn(async move { quorum.propose(records).await }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(e.error_code(), 36, "{e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(quorum.image().topics().count(), 1);
    std::sync::Arc::into_inner(quorum)
        .unwrap()
        .shutdown()
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
