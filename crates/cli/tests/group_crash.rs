//! Kill -9 while a consumer group commits offsets: every commit the broker acknowledged must
//! be there after restart (it was appended to `__consumer_offsets`, and fsynced, before the
//! answer; kill -9 keeps the page cache, so this checks the order and the replay, while the
//! fsync itself is the log's, tested in `freshet-log`), and nothing newer than the last commit
//! attempted. Rounds: FRESHET_CRASH_ROUNDS (default 3).

mod support;

use freshet_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use freshet_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use freshet_protocol::messages::{FindCoordinatorRequest, OffsetCommitRequest, OffsetFetchRequest};
use freshet_protocol::{Request, Response};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use support::{BrokerProcess, RawClient};

const GROUP: &str = "crash-group";
const TOPIC: &str = "crash-topic";
const PARTITIONS: i32 = 4;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;

/// Offsets committed so far: the highest acknowledged and the highest attempted.
#[derive(Default)]
struct Progress {
    acked: AtomicI64,
    attempted: AtomicI64,
}

fn find_coordinator(client: &mut RawClient) {
    let request = FindCoordinatorRequest {
        key_type: 0,
        coordinator_keys: vec![GROUP.into()],
        ..Default::default()
    };
    match client.call(6, Request::FindCoordinator(request)).unwrap() {
        Response::FindCoordinator(r) => assert_eq!(r.coordinators[0].error_code, 0),
        other => panic!("unexpected {other:?}"),
    }
}

/// Commits offset n for every partition (as a consumer outside any generation does, like
/// kafka-consumer-groups --reset-offsets), n = 1, 2, ..., until the connection breaks.
fn commit_until_killed(addr: SocketAddr, start: i64, progress: Arc<Progress>) {
    let Ok(mut client) = RawClient::connect(addr) else {
        return;
    };
    for offset in start.. {
        progress.attempted.store(offset, Ordering::SeqCst);
        let request = OffsetCommitRequest {
            group_id: GROUP.into(),
            generation_id_or_member_epoch: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: TOPIC.into(),
                partitions: (0..PARTITIONS)
                    .map(|p| OffsetCommitRequestPartition {
                        partition_index: p,
                        committed_offset: offset,
                        committed_leader_epoch: -1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        match client.call(9, Request::OffsetCommit(request)) {
            Ok(Response::OffsetCommit(r)) => {
                for p in &r.topics[0].partitions {
                    assert_eq!(p.error_code, 0, "commit of {offset} refused");
                }
                progress.acked.store(offset, Ordering::SeqCst);
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => return,
        }
    }
}

/// The committed offset of every partition, waiting out the coordinator's load.
fn committed(addr: SocketAddr) -> Vec<i64> {
    let mut client = RawClient::connect(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: GROUP.into(),
                member_epoch: -1,
                topics: Some(vec![OffsetFetchRequestTopics {
                    name: TOPIC.into(),
                    partition_indexes: (0..PARTITIONS).collect(),
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        };
        let Response::OffsetFetch(r) = client.call(9, Request::OffsetFetch(request)).unwrap()
        else {
            panic!("not an OffsetFetch response");
        };
        let group = &r.groups[0];
        if group.error_code == COORDINATOR_LOAD_IN_PROGRESS && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert_eq!(group.error_code, 0);
        return group.topics[0]
            .partitions
            .iter()
            .map(|p| p.committed_offset)
            .collect();
    }
}

#[test]
fn acknowledged_offset_commits_survive_sigkill() {
    let rounds: usize = std::env::var("FRESHET_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut rng = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    eprintln!("group crash test seed {rng}");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path());
    let mut client = RawClient::connect(broker.addr).unwrap();
    support::create_topic(&mut client, TOPIC, PARTITIONS);
    find_coordinator(&mut client);
    let mut next = 1;
    for round in 0..rounds {
        let progress = Arc::new(Progress::default());
        let committer = {
            let (addr, progress) = (broker.addr, progress.clone());
            std::thread::spawn(move || commit_until_killed(addr, next, progress))
        };
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(300 + (rng >> 33) % 700));
        broker.kill9();
        committer.join().unwrap();
        let acked = progress.acked.load(Ordering::SeqCst);
        let attempted = progress.attempted.load(Ordering::SeqCst);
        assert!(acked >= next, "round {round}: no commit was acknowledged");
        broker = BrokerProcess::start(dir.path());
        for (partition, offset) in committed(broker.addr).into_iter().enumerate() {
            assert!(
                (acked..=attempted).contains(&offset),
                "round {round}, partition {partition}: committed {offset}, \
                 acknowledged {acked}, attempted {attempted}"
            );
        }
        eprintln!("round {round}: commits acknowledged up to {acked} survived");
        next = attempted + 1;
    }
}
