//! A metadata directory written by an earlier build (tests/golden/v0) must still open to the
//! same image: a change of the on-disk format has to stay readable or bump a version byte.
//!
//! Regenerate (only when the format deliberately changes, with a new version):
//! `cargo test -p freshet-raft --test golden -- --ignored regenerate_golden`

use std::path::{Path, PathBuf};
use std::time::Duration;

use freshet_metadata::controller::{self, ConfigOp, ControllerSettings, NewTopic};
use freshet_metadata::{MetadataImage, TopicId};
use freshet_raft::{MetadataQuorum, QuorumOptions};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v0")
}

fn options() -> QuorumOptions {
    QuorumOptions {
        snapshot_interval_entries: 4,
        entries_kept_after_snapshot: 1,
        ..QuorumOptions::default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn check_image(image: &MetadataImage) {
    assert_eq!(image.cluster_id(), Some("golden-cluster"));
    assert_eq!(image.broker(1).unwrap().host, "golden-host");
    let names: Vec<&str> = image.topic_names().collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    assert_eq!(image.topic("beta").unwrap().topic_id, TopicId([2; 16]));
    assert_eq!(image.partitions("alpha").unwrap().len(), 5);
    assert_eq!(image.topic_config("gamma")["cleanup.policy"], "delete");
    assert_eq!(image.topic_config("alpha")["retention.ms"], "1234");
    assert_eq!(image.next_producer_id(), 2000);
}

#[tokio::test]
async fn golden_v0_directory_opens_to_the_same_image() {
    let dir = std::env::temp_dir().join(format!("freshet-golden-{}", std::process::id()));
    copy_dir(&golden_dir(), &dir);
    assert!(dir.join("metadata-snapshot").exists() && dir.join("raft-log").exists());
    let quorum = MetadataQuorum::open_single_with(&dir, 1, "golden:1", &options())
        .await
        .unwrap();
    check_image(&quorum.image());
    quorum.shutdown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
#[ignore = "writes tests/golden/v0; run only when the format changes on purpose"]
async fn regenerate_golden() {
    let dir = golden_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let quorum = MetadataQuorum::open_single_with(&dir, 1, "golden:1", &options())
        .await
        .unwrap();
    let settings = ControllerSettings::default();
    let image = quorum.image();
    let mut records = controller::bootstrap_cluster_id(&image, "golden-cluster");
    records.extend(controller::register_broker(
        &image,
        1,
        "golden-host",
        9092,
        None,
    ));
    quorum.propose(records).await.unwrap();
    for (i, name) in ["alpha", "beta", "gamma"].into_iter().enumerate() {
        let request = NewTopic {
            name: name.to_string(),
            num_partitions: Some(3),
            replication_factor: Some(1),
            configs: vec![("retention.ms".to_string(), Some("1234".to_string()))],
        };
        let id = TopicId([u8::try_from(i).unwrap() + 1; 16]);
        let records = controller::create_topic(&quorum.image(), &request, id, &settings).unwrap();
        quorum.propose(records).await.unwrap();
    }
    let grow = controller::create_partitions(&quorum.image(), "alpha", 5).unwrap();
    quorum.propose(grow).await.unwrap();
    let ops = [
        ("retention.ms".to_string(), ConfigOp::Delete),
        ("cleanup.policy".to_string(), ConfigOp::Set("delete".into())),
    ];
    let alter =
        controller::incremental_alter_topic_configs(&quorum.image(), "gamma", &ops, &settings)
            .unwrap();
    quorum.propose(alter).await.unwrap();
    for _ in 0..2 {
        let block = controller::allocate_producer_ids(&quorum.image(), 1).unwrap();
        quorum.propose(block).await.unwrap();
    }
    quorum
        .raft()
        .wait(Some(Duration::from_secs(5)))
        .metrics(|m| m.snapshot.is_some() && m.purged.is_some(), "snapshot")
        .await
        .unwrap();
    check_image(&quorum.image());
    quorum.shutdown().await.unwrap();
    // Leave only the store's own files (no *.tmp).
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tmp") {
            std::fs::remove_file(path).unwrap();
        }
    }
}
