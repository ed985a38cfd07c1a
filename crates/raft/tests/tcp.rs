//! Three voters talking over real TCP on 127.0.0.1: replication, then the leader stops and
//! the other two carry on.

use std::collections::BTreeMap;
use std::time::Duration;

use freshet_metadata::{BrokerRegistration, MetadataRecord};
use freshet_raft::{tcp, MetadataQuorum, ProposeError, QuorumOptions, TcpNetwork};
use openraft::BasicNode;
use tokio::net::TcpListener;

fn register(node_id: i32) -> Vec<MetadataRecord> {
    vec![MetadataRecord::RegisterBroker(BrokerRegistration {
        node_id,
        broker_epoch: 1,
        host: "127.0.0.1".into(),
        port: 9092,
        rack: None,
    })]
}

/// Options for a test cluster: fast failover, but AppendEntries timeouts (the heartbeat
/// interval) long enough for fsync on a loaded CI machine.
fn options() -> QuorumOptions {
    QuorumOptions {
        heartbeat_interval_ms: 100,
        election_timeout_min_ms: 500,
        election_timeout_max_ms: 1000,
        ..QuorumOptions::default()
    }
}

/// Proposes on whichever node leads, retrying while leadership moves (a loaded machine can
/// trigger an extra election at any time).
async fn propose_on_leader(
    nodes: &[(MetadataQuorum, tokio::task::JoinHandle<()>)],
    records: Vec<MetadataRecord>,
) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let leader = nodes.iter().find_map(|(q, _)| q.current_leader());
        if let Some((quorum, _)) = nodes.iter().find(|(q, _)| Some(q.node_id()) == leader) {
            match quorum.propose(records.clone()).await {
                Ok(index) => return index,
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

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_over_tcp() {
    let dir = std::env::temp_dir().join(format!("freshet-tcp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut listeners = Vec::new();
    let mut voters = BTreeMap::new();
    for id in 1..=3u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        voters.insert(id, BasicNode::new(listener.local_addr().unwrap()));
        listeners.push(listener);
    }
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let quorum = MetadataQuorum::open(
            &dir.join(format!("node{id}")),
            id,
            &options(),
            TcpNetwork,
            (id == 1).then(|| voters.clone()),
        )
        .await
        .unwrap();
        let server = tcp::serve(listener, quorum.raft().clone());
        nodes.push((quorum, server));
    }

    wait_until("a leader all agree on", || {
        let leader = nodes[0].0.current_leader();
        leader.is_some() && nodes.iter().all(|(q, _)| q.current_leader() == leader)
    })
    .await;
    let index = propose_on_leader(&nodes, register(1)).await;
    wait_until("all applied", || {
        nodes
            .iter()
            .all(|(q, _)| q.applied().applied_index >= index)
    })
    .await;
    for (quorum, _) in &nodes {
        assert!(quorum.image().broker(1).is_some());
    }

    // Stop the leader entirely: process gone, port closed.
    let leader_id = nodes[0].0.current_leader().unwrap();
    let leader_at = nodes
        .iter()
        .position(|(q, _)| q.node_id() == leader_id)
        .unwrap();
    let (old_leader, server) = nodes.remove(leader_at);
    server.abort();
    old_leader.shutdown().await.unwrap();
    wait_until("a new leader", || {
        let leader = nodes[0].0.current_leader();
        leader.is_some_and(|l| l != leader_id)
            && nodes.iter().all(|(q, _)| q.current_leader() == leader)
    })
    .await;
    let new_leader = nodes[0].0.current_leader().unwrap();
    let quorum = &nodes
        .iter()
        .find(|(q, _)| q.node_id() == new_leader)
        .unwrap()
        .0;
    let index = quorum.propose(register(2)).await.unwrap();
    wait_until("survivors applied", || {
        nodes
            .iter()
            .all(|(q, _)| q.applied().applied_index >= index)
    })
    .await;
    for (quorum, server) in nodes {
        assert!(quorum.image().broker(2).is_some());
        server.abort();
        quorum.shutdown().await.unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
