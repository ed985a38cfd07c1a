//! Group consumer tests against a real broker at `FRESHET_TEST_BOOTSTRAP` (`host:port`):
//! Apache Kafka (`tools/kafka.sh start DIR PORT`) or Freshet. Without the variable each test
//! prints a note and passes.
//!
//! Every test creates its own topics and groups with a unique suffix, so runs can repeat
//! against the same broker.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshet_client::{
    Admin, AssignmentStrategy, ClientConfig, Error, GroupConsumer, GroupConsumerConfig, KafkaCode,
    NewTopic, OffsetAndMetadata, OffsetReset, Producer, ProducerConfig, ProducerRecord,
    RebalanceEvent, TopicPartition,
};
use tokio::sync::watch;

fn bootstrap() -> Option<String> {
    match std::env::var("FRESHET_TEST_BOOTSTRAP") {
        Ok(servers) if !servers.is_empty() => Some(servers),
        _ => {
            eprintln!("FRESHET_TEST_BOOTSTRAP is not set: skipping this broker test");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

async fn create_topic(servers: &str, name: &str, partitions: i32) {
    let admin = Admin::new(ClientConfig::new(servers)).unwrap();
    admin
        .create_topics(&[NewTopic::new(name, partitions, 1)], false)
        .await
        .unwrap();
    admin.wait_for_topic(name).await.unwrap();
}

/// Produces `count` records with values `{label}-{i}`, spread over the partitions by key;
/// returns where each landed.
async fn produce(servers: &str, topic: &str, label: &str, count: usize) -> Vec<(i32, i64)> {
    let producer = Producer::new(ProducerConfig::new(servers)).unwrap();
    let futures: Vec<_> = (0..count)
        .map(|i| {
            producer.send(ProducerRecord {
                topic: topic.to_owned(),
                partition: None,
                key: Some(Bytes::from(format!("{label}-key-{i}"))),
                value: Some(Bytes::from(format!("{label}-{i}"))),
                headers: Vec::new(),
                timestamp: None,
            })
        })
        .collect();
    let mut placed = Vec::new();
    for future in futures {
        let metadata = future.await.unwrap();
        placed.push((metadata.partition, metadata.offset));
    }
    producer.close().await.unwrap();
    placed
}

/// A config for tests: short session and heartbeat, quick fetches, earliest reset.
fn config(servers: &str, group: &str, strategy: AssignmentStrategy) -> GroupConsumerConfig {
    let mut config = GroupConsumerConfig::new(servers, group);
    config.consumer.auto_offset_reset = OffsetReset::Earliest;
    config.consumer.fetch_max_wait_ms = 200;
    config.session_timeout_ms = 6_000;
    config.heartbeat_interval_ms = 500;
    config.max_poll_interval_ms = 15_000;
    config.assignment_strategies = vec![strategy];
    config
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `count` records came or `timeout` passed.
async fn poll_records(
    consumer: &mut GroupConsumer,
    count: usize,
    timeout: Duration,
) -> Vec<freshet_client::ConsumerRecord> {
    let deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    while records.len() < count && Instant::now() < deadline {
        records.extend(consumer.poll(Duration::from_millis(300)).await.unwrap());
    }
    records
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    /// Commit and leave the group.
    Close,
    /// Stop heartbeating without leaving: the coordinator drops the member after the
    /// session timeout.
    Drop,
}

type Ledger = Arc<Mutex<Vec<(String, i32, i64)>>>;

/// A member polling in its own task: every record it gets goes to the ledger, and it
/// commits after each batch (process, then commit: at least once; with no crash between
/// the two, exactly once).
struct Member {
    name: String,
    stop: watch::Sender<Stop>,
    assignment: Arc<Mutex<Vec<TopicPartition>>>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl Member {
    fn spawn(name: &str, config: GroupConsumerConfig, topic: &str, ledger: Ledger) -> Member {
        let (stop, mut stopped) = watch::channel(Stop::Run);
        let assignment = Arc::new(Mutex::new(Vec::new()));
        let seen = assignment.clone();
        let topic = topic.to_owned();
        let label = name.to_owned();
        let task = tokio::spawn(async move {
            let mut consumer = GroupConsumer::new(config)?;
            consumer.subscribe([topic]);
            loop {
                let stop = *stopped.borrow_and_update();
                match stop {
                    Stop::Close => return consumer.close().await,
                    Stop::Drop => return Ok(()),
                    Stop::Run => {}
                }
                let records = consumer.poll(Duration::from_millis(200)).await?;
                if !records.is_empty() {
                    ledger.lock().unwrap().extend(
                        records
                            .iter()
                            .map(|r| (label.clone(), r.partition, r.offset)),
                    );
                    consumer.commit_sync().await?;
                }
                *seen.lock().unwrap() = consumer.assignment();
            }
        });
        Member {
            name: name.to_owned(),
            stop,
            assignment,
            task,
        }
    }

    fn assigned(&self) -> Vec<TopicPartition> {
        self.assignment.lock().unwrap().clone()
    }

    async fn finish(self, how: Stop) {
        self.stop.send(how).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .unwrap_or_else(|_| panic!("{} did not stop", self.name))
            .unwrap();
        result.unwrap_or_else(|error| panic!("{} failed: {error}", self.name));
    }
}

/// Waits until the members share the 4 partitions with these counts (sorted).
async fn wait_for_shares(members: &[&Member], counts: &[usize]) {
    wait_until(
        &format!("the members hold {counts:?} partitions"),
        Duration::from_secs(30),
        || {
            let mut seen = BTreeSet::new();
            let mut sizes = Vec::new();
            for member in members {
                let assigned = member.assigned();
                sizes.push(assigned.len());
                seen.extend(assigned);
            }
            sizes.sort_unstable();
            seen.len() == 4 && sizes == counts
        },
    )
    .await;
}

/// Members join and leave (cleanly, and by being dropped) a group on a 4-partition topic
/// while records are produced; every record is consumed exactly once across the group.
async fn every_record_once(strategy: AssignmentStrategy) {
    let Some(servers) = bootstrap() else { return };
    let topic = unique(&format!("group-once-{}", strategy.name()));
    let group = unique("g-once");
    create_topic(&servers, &topic, 4).await;
    let ledger: Ledger = Arc::new(Mutex::new(Vec::new()));
    let mut produced: Vec<(i32, i64)> = Vec::new();
    let member = |name: &str| {
        Member::spawn(
            name,
            config(&servers, &group, strategy),
            &topic,
            ledger.clone(),
        )
    };
    let consumed_all = |expected: usize| {
        let ledger = ledger.clone();
        move || ledger.lock().unwrap().len() >= expected
    };

    // A group of one.
    let a = member("a");
    produced.extend(produce(&servers, &topic, "one", 100).await);
    wait_for_shares(&[&a], &[4]).await;
    wait_until(
        "a consumed batch one",
        Duration::from_secs(20),
        consumed_all(produced.len()),
    )
    .await;

    // Two.
    let b = member("b");
    wait_for_shares(&[&a, &b], &[2, 2]).await;
    produced.extend(produce(&servers, &topic, "two", 100).await);
    wait_until(
        "batch two consumed",
        Duration::from_secs(20),
        consumed_all(produced.len()),
    )
    .await;

    // Four; records keep coming while they join.
    let c = member("c");
    let d = member("d");
    produced.extend(produce(&servers, &topic, "three", 100).await);
    wait_for_shares(&[&a, &b, &c, &d], &[1, 1, 1, 1]).await;
    produced.extend(produce(&servers, &topic, "four", 100).await);
    wait_until(
        "batch four consumed",
        Duration::from_secs(20),
        consumed_all(produced.len()),
    )
    .await;

    // d leaves cleanly: its partition moves at once.
    d.finish(Stop::Close).await;
    wait_for_shares(&[&a, &b, &c], &[1, 1, 2]).await;
    produced.extend(produce(&servers, &topic, "five", 100).await);
    wait_until(
        "batch five consumed",
        Duration::from_secs(20),
        consumed_all(produced.len()),
    )
    .await;

    // c dies without leaving: its partitions move after the session timeout.
    let c_partitions = c.assigned();
    c.finish(Stop::Drop).await;
    produced.extend(produce(&servers, &topic, "six", 100).await);
    wait_for_shares(&[&a, &b], &[2, 2]).await;
    wait_until(
        "batch six consumed",
        Duration::from_secs(30),
        consumed_all(produced.len()),
    )
    .await;
    assert!(!c_partitions.is_empty());

    a.finish(Stop::Close).await;
    b.finish(Stop::Close).await;

    let ledger = ledger.lock().unwrap().clone();
    let mut seen: BTreeMap<(i32, i64), Vec<String>> = BTreeMap::new();
    for (member, partition, offset) in ledger {
        seen.entry((partition, offset)).or_default().push(member);
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, by)| by.len() > 1).collect();
    assert!(
        duplicates.is_empty(),
        "consumed more than once: {duplicates:?}"
    );
    let expected: BTreeSet<(i32, i64)> = produced.into_iter().collect();
    let got: BTreeSet<(i32, i64)> = seen.keys().copied().collect();
    assert_eq!(
        got, expected,
        "every produced record consumed, nothing else"
    );
    let consumers: BTreeSet<&String> = seen.values().flatten().collect();
    assert_eq!(
        consumers.len(),
        4,
        "every member consumed something: {consumers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn range_group_consumes_every_record_once() {
    every_record_once(AssignmentStrategy::Range).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_sticky_group_consumes_every_record_once() {
    every_record_once(AssignmentStrategy::CooperativeSticky).await;
}

type Events = Arc<Mutex<Vec<(char, Vec<TopicPartition>)>>>;

fn recorder(events: &Events) -> impl FnMut(RebalanceEvent<'_>) + Send + 'static {
    let events = events.clone();
    move |event| {
        let (kind, partitions) = match event {
            RebalanceEvent::Assigned(p) => ('a', p),
            RebalanceEvent::Revoked(p) => ('r', p),
            RebalanceEvent::Lost(p) => ('l', p),
        };
        events.lock().unwrap().push((kind, partitions.to_vec()));
    }
}

/// Cooperative: when a second member joins, the first gives up only the partitions that
/// move, and the newcomer gets them in the follow-up rebalance. Eager: everything is
/// revoked first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_revokes_only_what_moves() {
    let Some(servers) = bootstrap() else { return };
    for strategy in [
        AssignmentStrategy::CooperativeSticky,
        AssignmentStrategy::Range,
    ] {
        let topic = unique("group-coop");
        let group = unique("g-coop");
        create_topic(&servers, &topic, 4).await;
        let events: Events = Arc::new(Mutex::new(Vec::new()));
        let mut first = GroupConsumer::new(config(&servers, &group, strategy)).unwrap();
        first.set_rebalance_listener(recorder(&events));
        first.subscribe([topic.clone()]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while first.assignment().len() < 4 {
            assert!(Instant::now() < deadline);
            first.poll(Duration::from_millis(200)).await.unwrap();
        }
        assert_eq!(first.protocol().as_deref(), Some(strategy.name()));
        assert!(first.is_leader());
        let all = first.assignment();
        events.lock().unwrap().clear();

        let mut second = GroupConsumer::new(config(&servers, &group, strategy)).unwrap();
        second.subscribe([topic.clone()]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while first.assignment().len() != 2 || second.assignment().len() != 2 {
            assert!(Instant::now() < deadline, "{strategy:?}: no 2/2 split");
            let (a, b) = tokio::join!(
                first.poll(Duration::from_millis(200)),
                second.poll(Duration::from_millis(200))
            );
            a.unwrap();
            b.unwrap();
        }
        let kept = first.assignment();
        let moved: Vec<TopicPartition> = all
            .iter()
            .filter(|tp| !kept.contains(tp))
            .cloned()
            .collect();
        assert_eq!(second.assignment(), moved);
        let events = events.lock().unwrap().clone();
        let revoked: Vec<TopicPartition> = events
            .iter()
            .filter(|(kind, _)| *kind == 'r')
            .flat_map(|(_, p)| p.clone())
            .collect();
        assert!(events.iter().all(|(kind, _)| *kind != 'l'), "{events:?}");
        if strategy.is_cooperative() {
            assert_eq!(
                revoked, moved,
                "only the moved partitions are revoked: {events:?}"
            );
            let assigned: Vec<TopicPartition> = events
                .iter()
                .filter(|(kind, _)| *kind == 'a')
                .flat_map(|(_, p)| p.clone())
                .collect();
            assert!(
                assigned.is_empty(),
                "first member gets nothing new: {events:?}"
            );
        } else {
            assert_eq!(revoked, all, "eager revokes everything: {events:?}");
        }
        second.close().await.unwrap();
        first.close().await.unwrap();
    }
}

/// Committed offsets are where the next consumer of the group starts: explicit offsets,
/// auto commit on close, and auto.offset.reset where nothing is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_consumer_resumes_from_committed_offsets() {
    let Some(servers) = bootstrap() else { return };
    let topic = unique("group-resume");
    create_topic(&servers, &topic, 4).await;
    let placed = produce(&servers, &topic, "r", 80).await;
    let mut per_partition: BTreeMap<i32, i64> = BTreeMap::new();
    for (partition, _) in &placed {
        *per_partition.entry(*partition).or_default() += 1;
    }

    // Explicit offsets: half of each partition.
    let group = unique("g-explicit");
    let mut cfg = config(&servers, &group, AssignmentStrategy::Range);
    cfg.enable_auto_commit = false;
    let mut first = GroupConsumer::new(cfg.clone()).unwrap();
    first.subscribe([topic.clone()]);
    let records = poll_records(&mut first, 80, Duration::from_secs(20)).await;
    assert_eq!(records.len(), 80);
    let halves: BTreeMap<TopicPartition, OffsetAndMetadata> = per_partition
        .iter()
        .map(|(p, n)| {
            (
                TopicPartition::new(&topic, *p),
                OffsetAndMetadata::new(n / 2),
            )
        })
        .collect();
    first.commit_offsets_sync(halves.clone()).await.unwrap();
    let committed = first.committed(&first.assignment()).await.unwrap();
    for (tp, offset) in &halves {
        assert_eq!(committed[tp], Some(offset.offset));
    }
    first.close().await.unwrap(); // auto commit is off: nothing more is committed
    let mut second = GroupConsumer::new(cfg).unwrap();
    second.subscribe([topic.clone()]);
    let expected: usize = per_partition.values().map(|n| (n - n / 2) as usize).sum();
    let records = poll_records(&mut second, expected + 1, Duration::from_secs(3)).await;
    assert_eq!(records.len(), expected);
    for record in &records {
        assert!(
            record.offset >= per_partition[&record.partition] / 2,
            "{record:?}"
        );
    }
    second.close().await.unwrap();

    // Auto commit: close commits what was consumed; the next consumer only sees new records.
    let group = unique("g-auto");
    let cfg = config(&servers, &group, AssignmentStrategy::CooperativeSticky);
    let mut first = GroupConsumer::new(cfg.clone()).unwrap();
    first.subscribe([topic.clone()]);
    assert_eq!(
        poll_records(&mut first, 80, Duration::from_secs(20))
            .await
            .len(),
        80
    );
    first.close().await.unwrap();
    let mut second = GroupConsumer::new(cfg).unwrap();
    second.subscribe([topic.clone()]);
    assert!(poll_records(&mut second, 1, Duration::from_secs(3))
        .await
        .is_empty());
    let more = produce(&servers, &topic, "more", 12).await;
    let records = poll_records(&mut second, 12, Duration::from_secs(10)).await;
    let got: BTreeSet<(i32, i64)> = records.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(got, more.into_iter().collect());
    second.close().await.unwrap();

    // Nothing committed: latest starts at the end, none is an error.
    let mut cfg = config(&servers, &unique("g-latest"), AssignmentStrategy::Range);
    cfg.consumer.auto_offset_reset = OffsetReset::Latest;
    let mut latest = GroupConsumer::new(cfg).unwrap();
    latest.subscribe([topic.clone()]);
    assert!(poll_records(&mut latest, 1, Duration::from_secs(3))
        .await
        .is_empty());
    assert_eq!(latest.assignment().len(), 4);
    latest.close().await.unwrap();
    let mut cfg = config(&servers, &unique("g-none"), AssignmentStrategy::Range);
    cfg.consumer.auto_offset_reset = OffsetReset::None;
    let mut none = GroupConsumer::new(cfg).unwrap();
    none.subscribe([topic.clone()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let error = loop {
        match none.poll(Duration::from_millis(300)).await {
            Err(error) => break error,
            Ok(records) => assert!(records.is_empty()),
        }
        assert!(
            Instant::now() < deadline,
            "auto.offset.reset=none never failed"
        );
    };
    assert!(error.to_string().contains("auto.offset.reset"), "{error}");
}

/// A static member (group.instance.id) restarting gets its partitions back without a
/// rebalance; a second live consumer with its instance id fences the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn static_member_rejoins_without_rebalance() {
    let Some(servers) = bootstrap() else { return };
    let topic = unique("group-static");
    let group = unique("g-static");
    create_topic(&servers, &topic, 4).await;
    let static_config = |instance: &str| {
        let mut config = config(&servers, &group, AssignmentStrategy::Range);
        config.group_instance_id = Some(instance.to_owned());
        config
    };
    let events: Events = Arc::new(Mutex::new(Vec::new()));
    let mut a = GroupConsumer::new(static_config("instance-a")).unwrap();
    a.subscribe([topic.clone()]);
    let mut b = GroupConsumer::new(static_config("instance-b")).unwrap();
    b.set_rebalance_listener(recorder(&events));
    b.subscribe([topic.clone()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.assignment().len() != 2 || b.assignment().len() != 2 {
        assert!(Instant::now() < deadline, "no 2/2 split");
        let (x, y) = tokio::join!(
            a.poll(Duration::from_millis(200)),
            b.poll(Duration::from_millis(200))
        );
        x.unwrap();
        y.unwrap();
    }
    let generation = b.generation();
    let a_partitions = a.assignment();
    let b_partitions = b.assignment();
    events.lock().unwrap().clear();
    // A static member does not leave on close.
    a.close().await.unwrap();

    let mut a2 = GroupConsumer::new(static_config("instance-a")).unwrap();
    a2.subscribe([topic.clone()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while a2.assignment().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the restarted member got nothing"
        );
        let (x, y) = tokio::join!(
            a2.poll(Duration::from_millis(200)),
            b.poll(Duration::from_millis(200))
        );
        x.unwrap();
        y.unwrap();
    }
    assert_eq!(a2.assignment(), a_partitions);
    assert_eq!(a2.generation(), generation, "no new generation");
    // b goes on in the same generation, hearing of no rebalance.
    for _ in 0..6 {
        b.poll(Duration::from_millis(200)).await.unwrap();
    }
    assert_eq!(b.generation(), generation);
    assert_eq!(b.assignment(), b_partitions);
    assert!(
        events.lock().unwrap().is_empty(),
        "{:?}",
        events.lock().unwrap()
    );

    // A third consumer with instance-a fences a2.
    let mut a3 = GroupConsumer::new(static_config("instance-a")).unwrap();
    a3.subscribe([topic.clone()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while a3.assignment().is_empty() {
        assert!(Instant::now() < deadline, "the third member got nothing");
        a3.poll(Duration::from_millis(200)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        if let Err(error) = a2.poll(Duration::from_millis(200)).await {
            break error;
        }
        assert!(Instant::now() < deadline, "a2 was never fenced");
    };
    assert_eq!(error.kafka_code(), Some(KafkaCode(82)), "{error}");
    a3.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_and_resume() {
    let Some(servers) = bootstrap() else { return };
    let topic = unique("group-pause");
    create_topic(&servers, &topic, 4).await;
    let mut consumer = GroupConsumer::new(config(
        &servers,
        &unique("g-pause"),
        AssignmentStrategy::CooperativeSticky,
    ))
    .unwrap();
    consumer.subscribe([topic.clone()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while consumer.assignment().len() < 4 {
        assert!(Instant::now() < deadline);
        consumer.poll(Duration::from_millis(200)).await.unwrap();
    }
    let paused = vec![
        TopicPartition::new(&topic, 0),
        TopicPartition::new(&topic, 2),
    ];
    consumer.pause(&paused).unwrap();
    assert_eq!(consumer.paused(), paused);
    assert!(consumer
        .pause(&[TopicPartition::new("not-assigned", 0)])
        .is_err());
    let placed = produce(&servers, &topic, "p", 60).await;
    let open = placed.iter().filter(|(p, _)| *p == 1 || *p == 3).count();
    let records = poll_records(&mut consumer, open + 1, Duration::from_secs(4)).await;
    assert_eq!(records.len(), open);
    assert!(records.iter().all(|r| r.partition == 1 || r.partition == 3));
    consumer.resume(&paused);
    assert!(consumer.paused().is_empty());
    let records = poll_records(&mut consumer, placed.len() - open, Duration::from_secs(10)).await;
    assert_eq!(records.len(), placed.len() - open);
    assert!(records.iter().all(|r| r.partition == 0 || r.partition == 2));
    consumer.close().await.unwrap();
}

/// A pattern subscription picks up topics created later (after a metadata refresh) and
/// ignores topics that do not match the whole pattern.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pattern_subscription_follows_new_topics() {
    let Some(servers) = bootstrap() else { return };
    let prefix = unique("grx");
    let first = format!("{prefix}-a");
    create_topic(&servers, &first, 2).await;
    create_topic(&servers, &format!("x{prefix}-z"), 1).await;
    let mut cfg = config(
        &servers,
        &unique("g-pattern"),
        AssignmentStrategy::CooperativeSticky,
    );
    cfg.metadata_max_age_ms = 1_000;
    let mut consumer = GroupConsumer::new(cfg).unwrap();
    consumer.subscribe_pattern(&format!("{prefix}-.*")).unwrap();
    assert!(consumer.subscribe_pattern("(unclosed").is_err());
    consumer.subscribe_pattern(&format!("{prefix}-.*")).unwrap();
    produce(&servers, &first, "a", 10).await;
    assert_eq!(
        poll_records(&mut consumer, 10, Duration::from_secs(20))
            .await
            .len(),
        10
    );
    assert_eq!(consumer.subscription(), vec![first.clone()]);

    let second = format!("{prefix}-b");
    create_topic(&servers, &second, 3).await;
    produce(&servers, &second, "b", 15).await;
    let records = poll_records(&mut consumer, 15, Duration::from_secs(20)).await;
    assert_eq!(records.len(), 15);
    assert!(records.iter().all(|r| r.topic == second));
    assert_eq!(consumer.subscription(), vec![first.clone(), second.clone()]);
    assert_eq!(consumer.assignment().len(), 5);
    consumer.close().await.unwrap();
}
