//! kill -9 in the middle of proposals, then reopen: every acknowledged proposal is there,
//! and what is there is a prefix of what was proposed.
//!
//! The parent test runs this same test binary as a child (the `crash_child` test, which does
//! nothing unless FRESHET_CRASH_DIR is set), reads its acknowledgements, and kills it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use freshet_metadata::controller::{self, ControllerSettings, NewTopic};
use freshet_metadata::{MetadataImage, MetadataRecord, TopicId};
use freshet_raft::MetadataQuorum;

const DIR_ENV: &str = "FRESHET_CRASH_DIR";

fn topic_records(image: &MetadataImage, n: u32) -> Vec<MetadataRecord> {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&(n + 1).to_be_bytes());
    let request = NewTopic {
        name: format!("t{n}"),
        num_partitions: Some(1),
        replication_factor: Some(1),
        configs: vec![],
    };
    controller::create_topic(image, &request, TopicId(id), &ControllerSettings::default())
        .expect("the child proposes only fresh names")
}

/// Topics t0, t1, … present in the image: how many, checking there is no gap.
fn contiguous_topics(image: &MetadataImage) -> u32 {
    let count = u32::try_from(image.topics().count()).unwrap();
    for n in 0..count {
        assert!(image.topic(&format!("t{n}")).is_some(), "gap at t{n}");
    }
    count
}

#[tokio::test]
async fn crash_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return; // Only does something when the crash test below runs it.
    };
    let quorum = MetadataQuorum::open_single(Path::new(&dir), 1, "a:1")
        .await
        .unwrap();
    if quorum.image().broker(1).is_none() {
        let records = controller::register_broker(&quorum.image(), 1, "h", 1, None);
        quorum.propose(records).await.unwrap();
    }
    let mut next = contiguous_topics(&quorum.image());
    loop {
        quorum
            .propose(topic_records(&quorum.image(), next))
            .await
            .unwrap();
        println!("ACK {next}");
        next += 1;
    }
}

fn run_and_kill(dir: &Path, acks_before_kill: u32) -> Option<u32> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut last_ack = None;
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ACK ") {
            last_ack = Some(n.trim().parse::<u32>().unwrap());
            seen += 1;
            if seen == acks_before_kill {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructors, no flush.
    child.wait().unwrap();
    last_ack
}

#[tokio::test]
async fn acknowledged_proposals_survive_kill_9() {
    let dir = std::env::temp_dir().join(format!("freshet-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut acked = None;
    for (round, acks) in [17u32, 5, 29].into_iter().enumerate() {
        let last = run_and_kill(&dir, acks).expect("the child acknowledged proposals");
        assert!(acked.is_none_or(|a| last > a), "round {round}: progress");
        acked = Some(last);
        let quorum = MetadataQuorum::open_single(&dir, 1, "a:1").await.unwrap();
        let present = contiguous_topics(&quorum.image());
        // Everything acknowledged is there; at most the in-flight proposals beyond it.
        assert!(
            present > last,
            "round {round}: t{last} acknowledged but lost"
        );
        quorum.shutdown().await.unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
