//! Stress test of the idempotent producer against a real broker at
//! `FRESHET_TEST_BOOTSTRAP` (skipped without it): a fresh multi-partition topic, produced
//! to at once (no waiting for its leaders) with many keyed records in small batches, five
//! in flight per partition. Every record must be acknowledged exactly once, with dense
//! offsets per partition in send order, and read back exactly once.
//!
//! With `FRESHET_STRESS_UPSTREAM=host:port` the test also runs a proxy on the
//! `FRESHET_TEST_BOOTSTRAP` address that forwards to the broker at the upstream address
//! (the broker must advertise the bootstrap address) and cuts every connection after a
//! random lifetime, so requests in flight end with unknown outcomes and are retried.
//! `FRESHET_STRESS_RECORDS` (default 20000), `FRESHET_STRESS_CUT_MS` (longest connection
//! lifetime, default 400), `FRESHET_STRESS_LAG_MS` (delay added to the broker's answers,
//! default 0) and `FRESHET_STRESS_SEED` tune a run.

#[path = "support/live.rs"]
mod live;

use live::unique;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshet_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PARTITIONS: i32 = 12;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// xorshift64*: enough randomness for cut times, reproducible from the printed seed.
struct Rng(AtomicU64);

impl Rng {
    fn below(&self, bound: u64) -> u64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

/// Forwards connections from `listen` to `upstream`; while `disrupt` is set, each
/// connection is cut (both sides closed) after a random 5..5+`cut_ms` ms. Returns the number
/// of connections cut so far.
async fn start_proxy(
    listen: &str,
    upstream: String,
    disrupt: Arc<AtomicBool>,
    rng: Arc<Rng>,
    cut_ms: u64,
    lag: Duration,
) -> Arc<AtomicU64> {
    let listener = TcpListener::bind(listen).await.unwrap();
    let cuts = Arc::new(AtomicU64::new(0));
    let counter = cuts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            let upstream = upstream.clone();
            let lifetime = Duration::from_millis(5 + rng.below(cut_ms));
            let disrupt = disrupt.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                // Answers travel through a delay line, so a cut loses answers to requests
                // the broker has already carried out.
                let (lagged, mut lagged_rx) = tokio::sync::mpsc::unbounded_channel();
                let answers_in = async {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = server_read.read(&mut buffer).await {
                        let due = tokio::time::Instant::now() + lag;
                        if lagged.send((due, buffer[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                };
                let answers_out = async {
                    while let Some((due, bytes)) = lagged_rx.recv().await {
                        tokio::time::sleep_until(due).await;
                        if client_write.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                };
                let forward = async {
                    tokio::select! {
                        _ = tokio::io::copy(&mut client_read, &mut server_write) => {}
                        _ = answers_in => {}
                        _ = answers_out => {}
                    }
                };
                let cut = async {
                    tokio::time::sleep(lifetime).await;
                    while !disrupt.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                };
                tokio::select! {
                    _ = forward => {}
                    _ = cut => { counter.fetch_add(1, Ordering::Relaxed); }
                }
                // Dropping both halves closes both connections.
            });
        }
    });
    cuts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_topic_many_keyed_records_in_flight_exactly_once() {
    let Some(servers) = env("FRESHET_TEST_BOOTSTRAP") else {
        eprintln!("FRESHET_TEST_BOOTSTRAP is not set: skipping this broker test");
        return;
    };
    let count: usize = env("FRESHET_STRESS_RECORDS").map_or(20_000, |v| v.parse().unwrap());
    let seed: u64 = env("FRESHET_STRESS_SEED").map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        },
        |v| v.parse().unwrap(),
    );
    let cut_ms: u64 = env("FRESHET_STRESS_CUT_MS").map_or(400, |v| v.parse().unwrap());
    let lag = Duration::from_millis(env("FRESHET_STRESS_LAG_MS").map_or(0, |v| v.parse().unwrap()));
    eprintln!("seed {seed}, {count} records");
    let rng = Arc::new(Rng(AtomicU64::new(seed)));
    let disrupt = Arc::new(AtomicBool::new(false));
    let cuts = match env("FRESHET_STRESS_UPSTREAM") {
        Some(upstream) => Some(
            start_proxy(
                &servers,
                upstream,
                disrupt.clone(),
                rng.clone(),
                cut_ms,
                lag,
            )
            .await,
        ),
        None => None,
    };

    let topic = unique("producer-stress");
    let admin = Admin::new(ClientConfig::new(&servers)).unwrap();
    admin
        .create_topics(&[NewTopic::new(&topic, PARTITIONS, 1)], false)
        .await
        .unwrap();
    // No waiting for the topic's leaders: the first batches race the topic's creation.
    disrupt.store(cuts.is_some(), Ordering::Relaxed);

    let mut config = ProducerConfig::new(&servers);
    config.max_in_flight_per_partition = 5;
    config.batch_bytes_max = 600;
    config.linger_ms = 2;
    config.retry_backoff_ms = 20;
    config.delivery_timeout_ms = 90_000;
    config.client.connection.request_timeout_ms = 5_000;
    let producer = Producer::new(config).unwrap();
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("key-{}", i % 997);
        let record = ProducerRecord::new(&topic, format!("value-{i}-{}", "x".repeat(i % 61)))
            .with_key(Bytes::from(key));
        deliveries.push(producer.send_wait(record).await);
        if i % 500 == 499 {
            // Let batches form and go while sending continues.
            tokio::task::yield_now().await;
        }
    }
    let mut acked: Vec<(i32, i64)> = Vec::with_capacity(count);
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut first_errors = Vec::new();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        match delivery.await {
            Ok(metadata) => acked.push((metadata.partition, metadata.offset)),
            Err(error) => {
                let text = error.to_string();
                if first_errors.len() < 5 {
                    first_errors.push(format!("record {i}: {text}"));
                }
                let kind = if text.contains("OUT_OF_ORDER") {
                    "OUT_OF_ORDER_SEQUENCE_NUMBER".to_owned()
                } else {
                    text
                };
                *errors.entry(kind).or_default() += 1;
                acked.push((-1, -1));
            }
        }
    }
    producer.close().await.unwrap();
    disrupt.store(false, Ordering::Relaxed);
    let cut = cuts.map_or(0, |c| c.load(Ordering::Relaxed));
    eprintln!(
        "produced {count} records in {:?}, {cut} connections cut",
        started.elapsed()
    );
    assert!(
        errors.is_empty(),
        "failed deliveries {errors:?}; first: {first_errors:?}"
    );

    // Per partition: offsets dense from 0, each once, increasing in send order.
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for &(partition, offset) in &acked {
        per_partition.entry(partition).or_default().push(offset);
    }
    for (partition, offsets) in &per_partition {
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "partition {partition}: offsets not increasing in send order"
        );
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, &expected,
            "partition {partition}: offsets not dense"
        );
    }

    // Read back: exactly the records sent, each once, where they were acknowledged.
    let mut consumer_config = ConsumerConfig::new(&servers);
    consumer_config.auto_offset_reset = OffsetReset::Earliest;
    consumer_config.fetch_max_wait_ms = 200;
    let mut consumer = Consumer::new(consumer_config).unwrap();
    let partitions: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(&topic, p))
        .collect();
    consumer.assign(partitions.clone());
    consumer.seek_to_beginning(&partitions).await.unwrap();
    let mut read: BTreeMap<(i32, i64), Bytes> = BTreeMap::new();
    let mut total = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while total < count && Instant::now() < deadline {
        for record in consumer.poll(Duration::from_millis(500)).await.unwrap() {
            total += 1;
            let previous = read.insert(
                (record.partition, record.offset),
                record.value.unwrap_or_default(),
            );
            assert!(previous.is_none(), "offset read twice");
        }
    }
    assert_eq!(total, count, "records in the topic");
    for (i, position) in acked.iter().enumerate() {
        let value = read
            .get(position)
            .unwrap_or_else(|| panic!("record {i} missing at {position:?}"));
        let expected = format!("value-{i}-{}", "x".repeat(i % 61));
        assert_eq!(value, expected.as_bytes(), "record {i} at {position:?}");
    }
    admin.delete_topics(&[topic]).await.unwrap();
}
