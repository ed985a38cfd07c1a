//! Group consumer tests against a real broker at `FRESHET_TEST_BOOTSTRAP` (`host:port`):
//! Apache Kafka (`tools/kafka.sh start DIR PORT`) or Freshet. Without the variable each test
//! prints a note and passes.
//!
//! Every test creates its own topics and groups with a unique suffix, so runs can repeat
//! against the same broker.

#[path = "support/live.rs"]
mod live;

use live::{bootstrap, unique};

#[path = "support/fake_wire.rs"]
mod fake_wire;

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

/// Polls until the consumer holds `partitions` partitions; fails on any record (use where
/// nothing is to be read).
async fn settle(consumer: &mut GroupConsumer, partitions: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while consumer.assignment().len() != partitions {
        assert!(
            Instant::now() < deadline,
            "never got {partitions} partitions"
        );
        let records = consumer.poll(Duration::from_millis(200)).await.unwrap();
        assert!(records.is_empty(), "unexpected records: {records:?}");
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
async fn roundrobin_group_consumes_every_record_once() {
    every_record_once(AssignmentStrategy::RoundRobin).await;
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
    let mut records = poll_records(&mut second, expected, Duration::from_secs(20)).await;
    records.extend(poll_records(&mut second, 1, Duration::from_secs(1)).await);
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
    settle(&mut second, 4).await;
    assert!(poll_records(&mut second, 1, Duration::from_secs(2))
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
    settle(&mut latest, 4).await;
    assert!(poll_records(&mut latest, 1, Duration::from_secs(2))
        .await
        .is_empty());
    let newest = produce(&servers, &topic, "newest", 5).await;
    let records = poll_records(&mut latest, 5, Duration::from_secs(10)).await;
    let got: BTreeSet<(i32, i64)> = records.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(got, newest.into_iter().collect());
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

    // More partitions for a subscribed topic: the group rebalances to include them.
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    admin.create_partitions(&first, 4).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while consumer.assignment().len() != 7 {
        assert!(Instant::now() < deadline, "new partitions never assigned");
        consumer.poll(Duration::from_millis(200)).await.unwrap();
    }
    consumer.close().await.unwrap();
}

/// The offsets `group` has committed, without metadata.
async fn committed_offsets(admin: &Admin, group: &str) -> BTreeMap<TopicPartition, i64> {
    admin
        .list_group_offsets(group, None)
        .await
        .unwrap()
        .into_iter()
        .map(|(tp, committed)| (tp, committed.offset))
        .collect()
}

/// The next offset of every partition of a new topic after `placed` (0 where none landed).
fn end_offsets(
    topic: &str,
    partitions: i32,
    placed: &[(i32, i64)],
) -> BTreeMap<TopicPartition, i64> {
    (0..partitions)
        .map(|p| {
            let count = placed.iter().filter(|(q, _)| *q == p).count() as i64;
            (TopicPartition::new(topic, p), count)
        })
        .collect()
}

/// commit_async and commit_offsets_async: the handle gives the coordinator's answer (an
/// error included), commits land in call order, and a dropped handle's commit still
/// happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_commits_report_their_result_and_keep_call_order() {
    let Some(servers) = bootstrap() else { return };
    let topic = unique("group-async-commit");
    create_topic(&servers, &topic, 2).await;
    let placed = produce(&servers, &topic, "a", 20).await;
    let ends = end_offsets(&topic, 2, &placed);
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    let group = unique("g-async");
    let mut cfg = config(&servers, &group, AssignmentStrategy::Range);
    cfg.enable_auto_commit = false;
    let mut consumer = GroupConsumer::new(cfg).unwrap();
    consumer.subscribe([topic.clone()]);
    // Nothing assigned yet: nothing to commit, and nothing is.
    consumer.commit_async().wait().await.unwrap();
    assert_eq!(
        poll_records(&mut consumer, 20, Duration::from_secs(20))
            .await
            .len(),
        20
    );
    assert_eq!(committed_offsets(&admin, &group).await, BTreeMap::new());

    // The positions of every assigned partition.
    assert_eq!(consumer.positions(), ends);
    consumer.commit_async().wait().await.unwrap();
    assert_eq!(committed_offsets(&admin, &group).await, ends);

    // Chosen offsets, with metadata.
    let tp0 = TopicPartition::new(&topic, 0);
    let tp1 = TopicPartition::new(&topic, 1);
    let chosen = BTreeMap::from([
        (
            tp0.clone(),
            OffsetAndMetadata {
                offset: 1,
                metadata: Some("m0".to_owned()),
            },
        ),
        (tp1.clone(), OffsetAndMetadata::new(2)),
    ]);
    consumer.commit_offsets_async(chosen).wait().await.unwrap();
    let listed = admin.list_group_offsets(&group, None).await.unwrap();
    assert_eq!(listed[&tp0].offset, 1);
    assert_eq!(listed[&tp0].metadata.as_deref(), Some("m0"));
    assert_eq!(listed[&tp1].offset, 2);

    // Several in flight at once: they are sent in call order, so the last one wins; the
    // handles dropped unawaited still commit.
    let mut handles: Vec<_> = (3..=7)
        .map(|offset| {
            consumer.commit_offsets_async(BTreeMap::from([(
                tp0.clone(),
                OffsetAndMetadata::new(offset),
            )]))
        })
        .collect();
    let last = handles.pop().unwrap();
    drop(handles);
    last.wait().await.unwrap();
    assert_eq!(committed_offsets(&admin, &group).await[&tp0], 7);
    drop(consumer.commit_offsets_async(BTreeMap::from([(tp1.clone(), 9.into())])));
    let deadline = Instant::now() + Duration::from_secs(10);
    while committed_offsets(&admin, &group).await[&tp1] != 9 {
        assert!(Instant::now() < deadline, "the dropped commit never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The coordinator's refusal comes back through the handle: metadata over
    // offset.metadata.max.bytes (4096 by default) is OFFSET_METADATA_TOO_LARGE, and
    // nothing is committed.
    let too_large = BTreeMap::from([(
        tp0.clone(),
        OffsetAndMetadata {
            offset: 8,
            metadata: Some("x".repeat(5_000)),
        },
    )]);
    let error = consumer
        .commit_offsets_async(too_large)
        .wait()
        .await
        .unwrap_err();
    assert_eq!(error.kafka_code(), Some(KafkaCode(12)), "{error}");
    assert_eq!(committed_offsets(&admin, &group).await[&tp0], 7);

    // The consumer goes on: the positions again.
    consumer.commit_async().wait().await.unwrap();
    assert_eq!(committed_offsets(&admin, &group).await, ends);
    consumer.close().await.unwrap();
}

/// Polls (expecting no records) until the group's committed offsets are `expected`.
async fn poll_until_committed(
    consumer: &mut GroupConsumer,
    admin: &Admin,
    expected: &BTreeMap<TopicPartition, i64>,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let committed = committed_offsets(admin, consumer.group_id()).await;
        if &committed == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "committed {committed:?}, never {expected:?}"
        );
        let records = consumer.poll(Duration::from_millis(200)).await.unwrap();
        assert!(records.is_empty(), "unexpected records: {records:?}");
    }
}

/// enable.auto.commit: a consumer that keeps polling commits its positions every
/// auto.commit.interval.ms, with no commit call and no close; nothing is committed before
/// the first interval has passed, nor with auto commit off.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_commit_commits_positions_while_polling() {
    let Some(servers) = bootstrap() else { return };
    let topic = unique("group-auto-commit");
    create_topic(&servers, &topic, 2).await;
    let placed = produce(&servers, &topic, "first", 10).await;
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();

    // Auto commit off, and on with an interval longer than the test: polling commits
    // nothing.
    for (label, enabled, interval_ms) in
        [("g-auto-off", false, 200), ("g-auto-slow", true, 120_000)]
    {
        let group = unique(label);
        let mut cfg = config(&servers, &group, AssignmentStrategy::Range);
        cfg.enable_auto_commit = enabled;
        cfg.auto_commit_interval_ms = interval_ms;
        let mut consumer = GroupConsumer::new(cfg).unwrap();
        consumer.subscribe([topic.clone()]);
        let records = poll_records(&mut consumer, 10, Duration::from_secs(20)).await;
        assert_eq!(records.len(), 10, "{label}");
        assert!(poll_records(&mut consumer, 1, Duration::from_millis(1_500))
            .await
            .is_empty());
        assert_eq!(
            committed_offsets(&admin, &group).await,
            BTreeMap::new(),
            "{label}"
        );
        // Dropped, not closed: close would commit when auto commit is on.
        drop(consumer);
    }

    // A short interval: the positions are committed while the consumer polls.
    let group = unique("g-auto-on");
    let mut cfg = config(&servers, &group, AssignmentStrategy::Range);
    cfg.auto_commit_interval_ms = 300;
    let mut consumer = GroupConsumer::new(cfg).unwrap();
    consumer.subscribe([topic.clone()]);
    let records = poll_records(&mut consumer, 10, Duration::from_secs(20)).await;
    assert_eq!(records.len(), 10);
    let ends = end_offsets(&topic, 2, &placed);
    assert_eq!(consumer.positions(), ends);
    poll_until_committed(&mut consumer, &admin, &ends, Duration::from_secs(10)).await;

    // More records: the commits follow the positions.
    let mut placed = placed;
    placed.extend(produce(&servers, &topic, "second", 6).await);
    let records = poll_records(&mut consumer, 6, Duration::from_secs(20)).await;
    assert_eq!(records.len(), 6);
    let ends = end_offsets(&topic, 2, &placed);
    assert_eq!(consumer.positions(), ends);
    poll_until_committed(&mut consumer, &admin, &ends, Duration::from_secs(10)).await;
    drop(consumer);
}

/// A scripted coordinator on 127.0.0.1:0 (also the only broker, with topic `t` of two
/// partitions): group error codes in the order a test chooses, and a record of what the
/// consumer sent. Runs without a broker.
mod scripted {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use bytes::{Bytes, BytesMut};
    use freshet_client::{
        AssignmentStrategy, GroupConsumer, GroupConsumerConfig, KafkaCode, OffsetReset,
        RebalanceEvent, TopicPartition,
    };
    use freshet_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use freshet_protocol::messages::find_coordinator_response::Coordinator;
    use freshet_protocol::messages::join_group_response::JoinGroupResponseMember;
    use freshet_protocol::messages::leave_group_response::MemberResponse;
    use freshet_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use freshet_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use freshet_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
    };
    use freshet_protocol::messages::*;
    use freshet_protocol::{ApiKey, Decode, Encode};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// (generation, member id, (partition, offset)s) of an OffsetCommit.
    type Commit = (i32, String, Vec<(i32, i64)>);

    #[derive(Default)]
    struct Script {
        join_errors: VecDeque<i16>,
        sync_errors: VecDeque<i16>,
        heartbeat_errors: VecDeque<i16>,
        /// The member id of each JoinGroup received.
        joins: Vec<String>,
        find_coordinator: usize,
        heartbeats: usize,
        generation: i32,
        next_member: usize,
        /// (generation, member id, offsets) of each OffsetCommit.
        commits: Vec<Commit>,
        leaves: Vec<String>,
        committed: Vec<(i32, i64)>,
    }

    async fn start(script: Arc<Mutex<Script>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(stream, addr.port(), script.clone()));
            }
        });
        addr.to_string()
    }

    async fn serve(mut stream: TcpStream, port: u16, script: Arc<Mutex<Script>>) {
        while let Ok(len) = stream.read_i32().await {
            let (api, version, header, mut frame) =
                crate::fake_wire::read_request_body(&mut stream, len).await;
            let mut body = BytesMut::new();
            if api == ApiKey::Fetch {
                // An empty fetch waits a little, as a broker would.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answer(api, version, &mut frame, port, &script, &mut body);
            crate::fake_wire::write_response(
                &mut stream,
                api,
                version,
                header.correlation_id,
                &body,
            )
            .await;
        }
    }

    fn answer(
        api: ApiKey,
        version: i16,
        frame: &mut Bytes,
        port: u16,
        script: &Mutex<Script>,
        body: &mut BytesMut,
    ) {
        let mut script = script.lock().unwrap();
        match api {
            ApiKey::ApiVersions => crate::fake_wire::api_versions(&[
                ApiKey::ApiVersions,
                ApiKey::Metadata,
                ApiKey::FindCoordinator,
                ApiKey::JoinGroup,
                ApiKey::SyncGroup,
                ApiKey::Heartbeat,
                ApiKey::LeaveGroup,
                ApiKey::OffsetCommit,
                ApiKey::OffsetFetch,
                ApiKey::ListOffsets,
                ApiKey::Fetch,
            ])
            .encode(body, version),
            ApiKey::Metadata => crate::fake_wire::metadata(port, 2).encode(body, version),
            ApiKey::FindCoordinator => {
                script.find_coordinator += 1;
                let request = FindCoordinatorRequest::decode(frame, version).unwrap();
                FindCoordinatorResponse {
                    node_id: 1,
                    host: "127.0.0.1".into(),
                    port: i32::from(port),
                    coordinators: request
                        .coordinator_keys
                        .into_iter()
                        .map(|key| Coordinator {
                            key,
                            node_id: 1,
                            host: "127.0.0.1".into(),
                            port: i32::from(port),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
                .encode(body, version)
            }
            ApiKey::JoinGroup => {
                let request = JoinGroupRequest::decode(frame, version).unwrap();
                script.joins.push(request.member_id.clone());
                let error = script.join_errors.pop_front().unwrap_or(0);
                let mut member_id = request.member_id.clone();
                if member_id.is_empty() {
                    script.next_member += 1;
                    member_id = format!("m-{}", script.next_member);
                }
                if error != 0 {
                    JoinGroupResponse {
                        error_code: error,
                        generation_id: -1,
                        member_id: if error == 79 {
                            member_id
                        } else {
                            String::new()
                        },
                        ..Default::default()
                    }
                    .encode(body, version)
                } else {
                    script.generation += 1;
                    let protocol = &request.protocols[0];
                    JoinGroupResponse {
                        generation_id: script.generation,
                        protocol_type: Some("consumer".into()),
                        protocol_name: Some(protocol.name.clone()),
                        leader: member_id.clone(),
                        member_id: member_id.clone(),
                        members: vec![JoinGroupResponseMember {
                            member_id,
                            group_instance_id: request.group_instance_id,
                            metadata: protocol.metadata.clone(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }
                    .encode(body, version)
                }
            }
            ApiKey::SyncGroup => {
                let request = SyncGroupRequest::decode(frame, version).unwrap();
                let error = script.sync_errors.pop_front().unwrap_or(0);
                let assignment = request
                    .assignments
                    .iter()
                    .find(|a| a.member_id == request.member_id)
                    .map(|a| a.assignment.clone())
                    .unwrap_or_default();
                SyncGroupResponse {
                    error_code: error,
                    protocol_type: request.protocol_type,
                    protocol_name: request.protocol_name,
                    assignment: if error == 0 { assignment } else { Bytes::new() },
                    ..Default::default()
                }
                .encode(body, version)
            }
            ApiKey::Heartbeat => {
                script.heartbeats += 1;
                let error = script.heartbeat_errors.pop_front().unwrap_or(0);
                HeartbeatResponse {
                    error_code: error,
                    ..Default::default()
                }
                .encode(body, version)
            }
            ApiKey::LeaveGroup => {
                let request = LeaveGroupRequest::decode(frame, version).unwrap();
                let members: Vec<String> = request
                    .members
                    .iter()
                    .map(|m| m.member_id.clone())
                    .collect();
                script.leaves.extend(members.iter().cloned());
                LeaveGroupResponse {
                    members: members
                        .into_iter()
                        .map(|member_id| MemberResponse {
                            member_id,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
                .encode(body, version)
            }
            ApiKey::OffsetCommit => {
                let request = OffsetCommitRequest::decode(frame, version).unwrap();
                let offsets: Vec<(i32, i64)> = request.topics[0]
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.committed_offset))
                    .collect();
                let code = if request.generation_id_or_member_epoch == script.generation {
                    script.committed = offsets.clone();
                    0
                } else {
                    22
                };
                script.commits.push((
                    request.generation_id_or_member_epoch,
                    request.member_id.clone(),
                    offsets.clone(),
                ));
                OffsetCommitResponse {
                    topics: vec![OffsetCommitResponseTopic {
                        name: "t".into(),
                        partitions: offsets
                            .iter()
                            .map(|(p, _)| OffsetCommitResponsePartition {
                                partition_index: *p,
                                error_code: code,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }
                .encode(body, version)
            }
            ApiKey::OffsetFetch => {
                assert!(
                    version >= 8,
                    "the scripted coordinator answers batched OffsetFetch"
                );
                let request = OffsetFetchRequest::decode(frame, version).unwrap();
                let group = &request.groups[0];
                let partitions = group.topics.as_ref().unwrap()[0].partition_indexes.clone();
                OffsetFetchResponse {
                    groups: vec![OffsetFetchResponseGroup {
                        group_id: group.group_id.clone(),
                        topics: vec![OffsetFetchResponseTopics {
                            name: "t".into(),
                            partitions: partitions
                                .iter()
                                .map(|p| OffsetFetchResponsePartitions {
                                    partition_index: *p,
                                    committed_offset: script
                                        .committed
                                        .iter()
                                        .find(|(q, _)| q == p)
                                        .map_or(-1, |(_, o)| *o),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }
                .encode(body, version)
            }
            ApiKey::ListOffsets => ListOffsetsResponse {
                topics: vec![ListOffsetsTopicResponse {
                    name: "t".into(),
                    partitions: (0..2)
                        .map(|p| ListOffsetsPartitionResponse {
                            partition_index: p,
                            offset: 0,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }
            .encode(body, version),
            ApiKey::Fetch => {
                let request = FetchRequest::decode(frame, version).unwrap();
                FetchResponse {
                    responses: request
                        .topics
                        .iter()
                        .map(|t| FetchableTopicResponse {
                            topic: t.topic.clone(),
                            partitions: t
                                .partitions
                                .iter()
                                .map(|p| PartitionData {
                                    partition_index: p.partition,
                                    high_watermark: 0,
                                    records: Some(Bytes::new()),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
                .encode(body, version)
            }
            other => panic!("unexpected {other:?}"),
        }
        .unwrap();
    }

    type Events = Arc<Mutex<Vec<String>>>;

    fn consumer(addr: &str, events: &Events) -> GroupConsumer {
        let mut config = GroupConsumerConfig::new(addr, "scripted-group");
        config.consumer.auto_offset_reset = OffsetReset::Earliest;
        config.consumer.client.retry_backoff_ms = 10;
        config.consumer.fetch_max_wait_ms = 50;
        config.heartbeat_interval_ms = 50;
        config.session_timeout_ms = 6_000;
        config.enable_auto_commit = false;
        config.assignment_strategies = vec![AssignmentStrategy::Range];
        let mut consumer = GroupConsumer::new(config).unwrap();
        let log = events.clone();
        consumer.set_rebalance_listener(move |event: RebalanceEvent<'_>| {
            let (kind, partitions) = match event {
                RebalanceEvent::Assigned(p) => ("assigned", p),
                RebalanceEvent::Revoked(p) => ("revoked", p),
                RebalanceEvent::Lost(p) => ("lost", p),
            };
            let names: Vec<String> = partitions.iter().map(ToString::to_string).collect();
            log.lock()
                .unwrap()
                .push(format!("{kind} {}", names.join(",")));
        });
        consumer.subscribe(["t"]);
        consumer
    }

    /// Polls until `done` or 5 s.
    async fn poll_until(
        consumer: &mut GroupConsumer,
        mut done: impl FnMut(&GroupConsumer) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done(consumer) {
            assert!(Instant::now() < deadline, "condition not reached");
            consumer.poll(Duration::from_millis(50)).await.unwrap();
        }
    }

    fn take(events: &Events) -> Vec<String> {
        std::mem::take(&mut *events.lock().unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_errors_lead_to_rejoin_rediscovery_or_failure() {
        let script = Arc::new(Mutex::new(Script {
            // KIP-394, then a loading coordinator, then one that moved.
            join_errors: [79, 14, 16].into(),
            // The first sync finds a new rebalance started.
            sync_errors: [27].into(),
            ..Default::default()
        }));
        let addr = start(script.clone()).await;
        let events: Events = Arc::new(Mutex::new(Vec::new()));
        let mut consumer = consumer(&addr, &events);
        poll_until(&mut consumer, |c| c.assignment().len() == 2).await;
        {
            let script = script.lock().unwrap();
            assert_eq!(
                script.joins,
                ["", "m-1", "m-1", "m-1", "m-1"],
                "{:?}",
                script.joins
            );
            assert!(
                script.find_coordinator >= 2,
                "NOT_COORDINATOR: looked up again"
            );
            assert_eq!(script.generation, 2);
        }
        assert_eq!(consumer.member_id(), "m-1");
        assert_eq!(consumer.generation(), 2);
        assert_eq!(take(&events), ["assigned t-0,t-1"]);

        // Heartbeats flow; REBALANCE_IN_PROGRESS makes the member rejoin with its id
        // (eager: revoke everything, then get it back).
        poll_until(&mut consumer, |_| script.lock().unwrap().heartbeats >= 2).await;
        script.lock().unwrap().heartbeat_errors.push_back(27);
        poll_until(&mut consumer, |c| {
            c.generation() == 3 && c.assignment().len() == 2
        })
        .await;
        assert_eq!(script.lock().unwrap().joins.last().unwrap(), "m-1");
        assert_eq!(take(&events), ["revoked t-0,t-1", "assigned t-0,t-1"]);

        // Commits carry the generation and member id.
        consumer.commit_sync().await.unwrap();
        let commit = script.lock().unwrap().commits.last().cloned().unwrap();
        assert_eq!(commit, (3, "m-1".to_owned(), vec![(0, 0), (1, 0)]));

        // UNKNOWN_MEMBER_ID: the partitions are lost and the member joins as a new one.
        script.lock().unwrap().heartbeat_errors.push_back(25);
        poll_until(&mut consumer, |c| {
            c.generation() == 4 && c.assignment().len() == 2
        })
        .await;
        assert_eq!(script.lock().unwrap().joins.last().unwrap(), "");
        assert_eq!(consumer.member_id(), "m-2");
        assert_eq!(take(&events), ["lost t-0,t-1", "assigned t-0,t-1"]);

        // ILLEGAL_GENERATION: lost too, but the member id is kept.
        script.lock().unwrap().heartbeat_errors.push_back(22);
        poll_until(&mut consumer, |c| {
            c.generation() == 5 && c.assignment().len() == 2
        })
        .await;
        assert_eq!(script.lock().unwrap().joins.last().unwrap(), "m-2");
        assert_eq!(take(&events), ["lost t-0,t-1", "assigned t-0,t-1"]);

        // A commit rejected for an old generation is an error, not a silent success.
        script.lock().unwrap().generation += 1;
        let error = consumer.commit_sync().await.unwrap_err();
        assert_eq!(error.kafka_code(), Some(KafkaCode(22)), "{error}");
        poll_until(&mut consumer, |c| {
            c.generation() == 7 && c.assignment().len() == 2
        })
        .await;
        take(&events);

        // FENCED_INSTANCE_ID is fatal: every later poll fails with it.
        script.lock().unwrap().heartbeat_errors.push_back(82);
        let deadline = Instant::now() + Duration::from_secs(5);
        let error = loop {
            assert!(Instant::now() < deadline, "never fenced");
            if let Err(error) = consumer.poll(Duration::from_millis(50)).await {
                break error;
            }
        };
        assert_eq!(error.kafka_code(), Some(KafkaCode(82)), "{error}");
        let again = consumer.poll(Duration::from_millis(50)).await.unwrap_err();
        assert_eq!(again.kafka_code(), Some(KafkaCode(82)));
        consumer.close().await.unwrap();
        assert_eq!(script.lock().unwrap().leaves, ["m-2"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_commits_and_leaves() {
        let script = Arc::new(Mutex::new(Script::default()));
        let addr = start(script.clone()).await;
        let events: Events = Arc::new(Mutex::new(Vec::new()));
        let mut config = GroupConsumerConfig::new(&addr, "scripted-close");
        config.consumer.auto_offset_reset = OffsetReset::Earliest;
        config.consumer.fetch_max_wait_ms = 50;
        config.assignment_strategies = vec![AssignmentStrategy::CooperativeSticky];
        let mut consumer = GroupConsumer::new(config).unwrap();
        let log = events.clone();
        consumer.set_rebalance_listener(move |event: RebalanceEvent<'_>| {
            log.lock().unwrap().push(format!("{event:?}"));
        });
        consumer.subscribe(["t"]);
        poll_until(&mut consumer, |c| c.assignment().len() == 2).await;
        consumer.seek(&TopicPartition::new("t", 1), 5).unwrap();
        consumer.close().await.unwrap();
        let script = script.lock().unwrap();
        assert_eq!(
            script.commits.last().unwrap(),
            &(1, "m-1".to_owned(), vec![(0, 0), (1, 5)])
        );
        assert_eq!(script.leaves, ["m-1"]);
        let partitions = format!(
            "{:?}",
            [TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
        );
        assert_eq!(
            take(&events),
            [
                format!("Assigned({partitions})"),
                format!("Revoked({partitions})")
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zero_timeout_polls_make_progress() {
        let script = Arc::new(Mutex::new(Script {
            join_errors: [79].into(),
            ..Default::default()
        }));
        let addr = start(script.clone()).await;
        let events: Events = Arc::new(Mutex::new(Vec::new()));
        let mut consumer = consumer(&addr, &events);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut polls = 0;
        while consumer.assignment().len() != 2 {
            assert!(Instant::now() < deadline, "zero-timeout polls never joined");
            consumer.poll(Duration::ZERO).await.unwrap();
            polls += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(polls > 1, "the join outlived its first poll");
        assert_eq!(script.lock().unwrap().joins, ["", "m-1"]);
        consumer.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn missing_the_poll_interval_leaves_the_group() {
        let script = Arc::new(Mutex::new(Script::default()));
        let addr = start(script.clone()).await;
        let events: Events = Arc::new(Mutex::new(Vec::new()));
        let mut config = GroupConsumerConfig::new(&addr, "scripted-slow");
        config.consumer.fetch_max_wait_ms = 50;
        config.heartbeat_interval_ms = 50;
        config.max_poll_interval_ms = 400;
        config.assignment_strategies = vec![AssignmentStrategy::Range];
        let mut consumer = GroupConsumer::new(config).unwrap();
        let log = events.clone();
        consumer.set_rebalance_listener(move |event: RebalanceEvent<'_>| {
            log.lock()
                .unwrap()
                .push(format!("{event:?}").split('(').next().unwrap().to_owned());
        });
        consumer.subscribe(["t"]);
        poll_until(&mut consumer, |c| c.assignment().len() == 2).await;
        // The application stalls longer than max.poll.interval.ms.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(script.lock().unwrap().leaves, ["m-1"]);
        poll_until(&mut consumer, |c| {
            c.assignment().len() == 2 && c.member_id() == "m-2"
        })
        .await;
        assert_eq!(take(&events), ["Assigned", "Lost", "Assigned"]);
        consumer.close().await.unwrap();
    }
}
