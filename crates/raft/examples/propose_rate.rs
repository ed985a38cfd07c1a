//! Prints how fast a single-voter quorum opens, reopens and commits proposals on this disk.
//! `cargo run --release -p freshet-raft --example propose_rate [proposals] [dir]`

use std::path::PathBuf;
use std::time::Instant;

use freshet_metadata::controller::{self, ControllerSettings, NewTopic};
use freshet_metadata::TopicId;
use freshet_raft::MetadataQuorum;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let proposals: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("freshet-propose-rate-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);

    let started = Instant::now();
    let quorum = MetadataQuorum::open_single(&dir, 1, "127.0.0.1:9093")
        .await
        .expect("open");
    println!("first open (initialize + elect): {:?}", started.elapsed());
    let image = quorum.image();
    quorum
        .propose(controller::register_broker(
            &image,
            1,
            "127.0.0.1",
            9092,
            None,
        ))
        .await
        .expect("register");

    let started = Instant::now();
    for n in 0..proposals {
        let request = NewTopic {
            name: format!("topic-{n}"),
            num_partitions: Some(3),
            replication_factor: Some(1),
            configs: vec![],
        };
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&(n + 1).to_be_bytes());
        let records = controller::create_topic(
            &quorum.image(),
            &request,
            TopicId(id),
            &ControllerSettings::default(),
        )
        .expect("valid topic");
        quorum.propose(records).await.expect("committed");
    }
    let elapsed = started.elapsed();
    println!(
        "{proposals} sequential CreateTopic proposals: {elapsed:?} ({:.0}/s, {:.2} ms each)",
        f64::from(proposals) / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / f64::from(proposals)
    );
    quorum.shutdown().await.expect("shutdown");

    let started = Instant::now();
    let quorum = MetadataQuorum::open_single(&dir, 1, "127.0.0.1:9093")
        .await
        .expect("reopen");
    println!(
        "reopen (recover + elect + apply {} topics): {:?}",
        quorum.image().topics().count(),
        started.elapsed()
    );
    quorum.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
