//! Round-trip checks with librdkafka through the `rdkafka` crate (librdkafka bundled, built with
//! cmake): the same 50-record data set as the other compatibility drivers (docs/compat.md).
//!
//! Usage: compat-rdkafka [--bootstrap HOST:PORT] TOPIC   (default $BOOTSTRAP, else 127.0.0.1:9092)
//!
//! Sections: create the topic (AdminClient), idempotent produce of 10 records per codec, then
//! consumers with `assign` from the beginning, from offset 25, from timestamps
//! (offsets_for_times), from the end plus one more record, watermarks, and topic deletion.
//! Each prints `rdkafka: <section>: OK` or `... FAILED: <first difference>`; the process exits 1
//! with one `rdkafka: MISMATCH: ...` line naming the first difference if any section failed.

use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Message, Offset, Timestamp, TopicPartitionList};

const CLIENT: &str = "rdkafka";
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const RECORDS_PER_CODEC: usize = 10;
const RECORD_COUNT: usize = CODECS.len() * RECORDS_PER_CODEC;
const PARTITION: i32 = 0;
/// Every wait is bounded by this, as in the other drivers.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// librdkafka must have resolved the end offset before the "after the end" record is sent.
const END_SETTLE: Duration = Duration::from_millis(500);
/// After the one expected record, this long without another one proves it was the only one.
const QUIET_AFTER_END: Duration = Duration::from_secs(1);

type Check<T = ()> = Result<T, String>;

/// librdkafka's debug line for each produced batch ("Produce MessageSet with N message(s) (…,
/// PID{…}, lz4)"). A round trip cannot show whether a batch was really compressed (librdkafka
/// silently sends batches uncompressed when it thinks the broker lacks the codec) or carried a
/// producer id, so the produce check reads these lines.
static BATCH_LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn take_batch_lines() -> Vec<String> {
    std::mem::take(&mut *BATCH_LINES.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Prints librdkafka's notices, warnings and errors to stderr, so that a failing run's log
/// shows why, and keeps the produced-batch debug lines.
struct Ctx;

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if (level as i32) <= RDKafkaLogLevel::Notice as i32 {
            eprintln!("librdkafka {level:?} {fac}: {log_message}");
        }
        if log_message.contains("Produce MessageSet with") {
            BATCH_LINES
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(log_message.to_string());
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("librdkafka error: {error}: {reason}");
    }
}

impl ConsumerContext for Ctx {}

/// One record as sent and as expected back.
#[derive(Clone, Debug, PartialEq)]
struct Record {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp_ms: i64,
}

fn expected_record(i: usize, base_ms: i64) -> Record {
    let key = (!i.is_multiple_of(RECORDS_PER_CODEC)).then(|| format!("key-{i}").into_bytes());
    let value = if i % RECORDS_PER_CODEC == 5 {
        format!("value-{i}-{}", "x".repeat(20_000))
    } else {
        format!("value-{i}-é✓")
    };
    let header = |k: &str, v: &[u8]| (k.to_string(), Some(v.to_vec()));
    Record {
        key,
        value: value.into_bytes(),
        headers: vec![
            header("h-index", i.to_string().as_bytes()),
            header("dup", b"first"),
            header("dup", b"second"),
            header("empty", b""),
        ],
        timestamp_ms: base_ms + i as i64 * 1000,
    }
}

fn after_end_record(base_ms: i64) -> Record {
    Record {
        key: Some(b"k".to_vec()),
        value: b"after-end".to_vec(),
        headers: vec![("h".to_string(), Some(b"v".to_vec()))],
        timestamp_ms: base_ms + 3_000_000,
    }
}

/// Whole seconds an hour ago: well inside the broker's timestamp acceptance window.
fn base_timestamp_ms() -> i64 {
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (now_s as i64 - 3600) * 1000
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn show(bytes: &Option<Vec<u8>>) -> String {
    match bytes {
        None => "null".to_string(),
        Some(b) if b.len() > 60 => format!(
            "{:?}... ({} bytes)",
            String::from_utf8_lossy(&b[..60]),
            b.len()
        ),
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
    }
}

fn expect<T: PartialEq + std::fmt::Debug>(what: &str, want: T, got: T) -> Check {
    if want == got {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {got:?}"))
    }
}

fn received(msg: &BorrowedMessage<'_>) -> Record {
    let headers = msg.headers().map_or_else(Vec::new, |h| {
        h.iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .collect()
    });
    Record {
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map_or_else(Vec::new, <[u8]>::to_vec),
        headers,
        timestamp_ms: msg.timestamp().to_millis().unwrap_or(-1),
    }
}

/// Compares every field of one consumed record, null against empty, and the timestamp type.
fn verify(msg: &BorrowedMessage<'_>, offset: i64, want: &Record) -> Check {
    let what = format!("record at offset {offset}");
    expect(&format!("{what} offset"), offset, msg.offset())?;
    expect(&format!("{what} partition"), PARTITION, msg.partition())?;
    let got = received(msg);
    if got.key != want.key {
        return Err(format!(
            "{what} key: expected {}, got {}",
            show(&want.key),
            show(&got.key)
        ));
    }
    if msg.payload().is_none() {
        return Err(format!(
            "{what} value: expected {}, got null",
            show(&Some(want.value.clone()))
        ));
    }
    if got.value != want.value {
        let (w, g) = (Some(want.value.clone()), Some(got.value.clone()));
        return Err(format!(
            "{what} value: expected {}, got {}",
            show(&w),
            show(&g)
        ));
    }
    expect(
        &format!("{what} timestamp"),
        Timestamp::CreateTime(want.timestamp_ms),
        msg.timestamp(),
    )?;
    if got.headers != want.headers {
        let (w, g) = (show_headers(&want.headers), show_headers(&got.headers));
        return Err(format!("{what} headers: expected {w}, got {g}"));
    }
    Ok(())
}

fn show_headers(headers: &[(String, Option<Vec<u8>>)]) -> String {
    let shown: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{k:?}={}", show(v)))
        .collect();
    format!("[{}]", shown.join(", "))
}

fn producer(bootstrap: &str, codec: &str) -> Check<FutureProducer<Ctx>> {
    ClientConfig::new()
        // debug=msg logs one line per produced batch, with its codec and producer id.
        .set_log_level(RDKafkaLogLevel::Debug)
        .set("debug", "msg")
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        // librdkafka leaves idempotence off by default; the Java client turns it on.
        .set("enable.idempotence", "true")
        .set("compression.type", codec)
        .set("linger.ms", "20")
        .set("message.timeout.ms", "30000")
        .create_with_context(Ctx)
        .map_err(|e| format!("creating a {codec} producer: {e}"))
}

/// Sends `records` (queued together, so they share batches) and checks every delivery report.
async fn produce(
    bootstrap: &str,
    topic: &str,
    codec: &str,
    records: &[Record],
    first_offset: i64,
) -> Check {
    let p = producer(bootstrap, codec)?;
    let mut pending = Vec::with_capacity(records.len());
    for r in records {
        let headers = r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: v.as_deref(),
            })
        });
        let mut fr = FutureRecord::to(topic)
            .partition(PARTITION)
            .payload(&r.value)
            .timestamp(r.timestamp_ms)
            .headers(headers);
        if let Some(k) = &r.key {
            fr = fr.key(k);
        }
        let future = p
            .send_result(fr)
            .map_err(|(e, _)| format!("{codec}: queueing a record: {e}"))?;
        pending.push(future);
    }
    for (i, (future, r)) in pending.into_iter().zip(records).enumerate() {
        let what = format!("{codec} record {i}");
        let delivery = tokio::time::timeout(STEP_TIMEOUT + Duration::from_secs(5), future)
            .await
            .map_err(|_| format!("{what}: no delivery report within {STEP_TIMEOUT:?}"))?
            .map_err(|_| format!("{what}: delivery report dropped"))?
            .map_err(|(e, _)| format!("{what} delivery failed: {e}"))?;
        expect(&format!("{what} partition"), PARTITION, delivery.partition)?;
        expect(
            &format!("{what} offset"),
            first_offset + i as i64,
            delivery.offset,
        )?;
        expect(
            &format!("{what} timestamp"),
            Timestamp::CreateTime(r.timestamp_ms),
            delivery.timestamp,
        )?;
    }
    Ok(())
}

/// Every batch must have been sent with the codec under test and a producer id (idempotence).
fn check_batches(codec: &str, lines: &[String]) -> Check {
    let wanted = if codec == "none" {
        "uncompressed"
    } else {
        codec
    };
    if lines.is_empty() {
        return Err(format!(
            "{codec}: librdkafka logged no produced batch (debug=msg)"
        ));
    }
    for line in lines {
        let summary = line.rsplit('(').next().unwrap_or(line);
        if !line.ends_with(&format!(", {wanted})")) {
            // librdkafka's rdkafka_feature.c: its LZ4 feature depends on FindCoordinator.
            let hint = if codec == "lz4" {
                "; librdkafka uses lz4 only if the broker's ApiVersions lists FindCoordinator"
            } else {
                ""
            };
            return Err(format!(
                "{codec}: a batch was not sent {wanted}: ({summary}{hint}"
            ));
        }
        if line.contains("PID{Invalid}") {
            return Err(format!(
                "{codec}: a batch was sent without a producer id: ({summary}"
            ));
        }
    }
    Ok(())
}

/// Produces the data set, codec after codec. Ok holds the codec problems found in librdkafka's
/// batch lines (see [`check_batches`]): a separate section, so that the consume checks still run.
async fn produce_all(bootstrap: &str, topic: &str, expected: &[Record]) -> Check<Vec<String>> {
    let mut batch_problems = Vec::new();
    for (n, codec) in CODECS.iter().enumerate() {
        let first = n * RECORDS_PER_CODEC;
        let records = &expected[first..first + RECORDS_PER_CODEC];
        take_batch_lines();
        produce(bootstrap, topic, codec, records, first as i64).await?;
        if let Err(problem) = check_batches(codec, &take_batch_lines()) {
            batch_problems.push(problem);
        }
    }
    Ok(batch_problems)
}

/// An assign-only consumer. librdkafka wants a group.id even for `assign`; with auto-commit and
/// the offset store off it never joins or commits (it may still look up the coordinator).
fn consumer(bootstrap: &str) -> Check<BaseConsumer<Ctx>> {
    ClientConfig::new()
        .set_log_level(RDKafkaLogLevel::Notice)
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "compat-rdkafka-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("check.crcs", "true")
        .create_with_context(Ctx)
        .map_err(|e| format!("creating a consumer: {e}"))
}

fn assigned(bootstrap: &str, topic: &str, start: Offset) -> Check<BaseConsumer<Ctx>> {
    let c = consumer(bootstrap)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, PARTITION, start)
        .map_err(|e| format!("offset {start:?}: {e}"))?;
    c.assign(&tpl)
        .map_err(|e| format!("assign at {start:?}: {e}"))?;
    Ok(c)
}

/// Polls until `count` records arrived, comparing each with `expected[offset]` as it comes.
fn consume_and_verify(
    c: &BaseConsumer<Ctx>,
    first_offset: i64,
    expected: &[Record],
    count: usize,
) -> Check {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut got = 0;
    while got < count {
        if Instant::now() > deadline {
            return Err(format!("expected {count} records from offset {first_offset} within {STEP_TIMEOUT:?}, got {got}"));
        }
        match c.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(e)) => return Err(format!("consumer error: {e}")),
            Some(Ok(msg)) => {
                let offset = first_offset + got as i64;
                let want = usize::try_from(offset)
                    .ok()
                    .and_then(|o| expected.get(o))
                    .ok_or_else(|| {
                        format!(
                            "record at offset {} beyond the {} expected",
                            msg.offset(),
                            expected.len()
                        )
                    })?;
                verify(&msg, offset, want)?;
                got += 1;
            }
        }
    }
    Ok(())
}

fn check_watermarks(bootstrap: &str, topic: &str, high: i64) -> Check {
    let c = consumer(bootstrap)?;
    let marks = c
        .fetch_watermarks(topic, PARTITION, STEP_TIMEOUT)
        .map_err(|e| format!("fetch_watermarks: {e}"))?;
    expect("watermarks (low, high)", (0, high), marks)
}

fn offset_for_time(c: &BaseConsumer<Ctx>, topic: &str, timestamp_ms: i64) -> Check<Offset> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, PARTITION, Offset::Offset(timestamp_ms))
        .map_err(|e| format!("timestamp {timestamp_ms}: {e}"))?;
    let found = c
        .offsets_for_times(tpl, STEP_TIMEOUT)
        .map_err(|e| format!("offsets_for_times({timestamp_ms}): {e}"))?;
    let elem = found.find_partition(topic, PARTITION).ok_or_else(|| {
        format!("offsets_for_times({timestamp_ms}) answered without partition {PARTITION}")
    })?;
    elem.error()
        .map_err(|e| format!("offsets_for_times({timestamp_ms}): partition error {e}"))?;
    Ok(elem.offset())
}

fn check_times(bootstrap: &str, topic: &str, expected: &[Record]) -> Check {
    const TARGET: usize = 33;
    let ts = expected[TARGET].timestamp_ms;
    let c = consumer(bootstrap)?;
    let exact = offset_for_time(&c, topic, ts)?;
    expect(
        "offsets_for_times at a record's timestamp",
        Offset::Offset(TARGET as i64),
        exact,
    )?;
    let between = offset_for_time(&c, topic, ts - 500)?;
    expect(
        "offsets_for_times between two records",
        Offset::Offset(TARGET as i64),
        between,
    )?;
    let after = offset_for_time(&c, topic, now_ms() + 86_400_000)?;
    expect(
        "offsets_for_times after the last record",
        Offset::End,
        after,
    )?;
    let c = assigned(bootstrap, topic, exact)?;
    consume_and_verify(&c, TARGET as i64, expected, 1)
}

/// Assigned at the end, the consumer must receive the one record produced after it and no other.
async fn check_end(bootstrap: &str, topic: &str, expected: &[Record], extra: &Record) -> Check {
    let c = assigned(bootstrap, topic, Offset::End)?;
    // Poll (nothing may arrive) while librdkafka resolves the end offset.
    let settle_until = Instant::now() + END_SETTLE;
    while Instant::now() < settle_until {
        if let Some(r) = c.poll(Duration::from_millis(100)) {
            let r = r.map_err(|e| format!("consumer error: {e}"))?;
            return Err(format!(
                "record at offset {} arrived before anything was produced after the end",
                r.offset()
            ));
        }
    }
    let end = RECORD_COUNT as i64;
    take_batch_lines();
    produce(bootstrap, topic, "none", std::slice::from_ref(extra), end).await?;
    check_batches("none", &take_batch_lines())?;
    let mut all = expected.to_vec();
    all.push(extra.clone());
    consume_and_verify(&c, end, &all, 1)?;
    let quiet_until = Instant::now() + QUIET_AFTER_END;
    while Instant::now() < quiet_until {
        if let Some(r) = c.poll(Duration::from_millis(100)) {
            let r = r.map_err(|e| format!("consumer error: {e}"))?;
            return Err(format!(
                "a second record (offset {}) arrived after the end",
                r.offset()
            ));
        }
    }
    check_watermarks(bootstrap, topic, end + 1)
}

fn admin(bootstrap: &str) -> Check<AdminClient<Ctx>> {
    ClientConfig::new()
        .set_log_level(RDKafkaLogLevel::Notice)
        .set("bootstrap.servers", bootstrap)
        .create_with_context(Ctx)
        .map_err(|e| format!("creating an admin client: {e}"))
}

fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(STEP_TIMEOUT))
        .operation_timeout(Some(STEP_TIMEOUT))
}

fn one_result(what: &str, results: Result<Vec<rdkafka::admin::TopicResult>, KafkaError>) -> Check {
    let results = results.map_err(|e| format!("{what}: {e}"))?;
    match results.as_slice() {
        [Ok(_)] => Ok(()),
        [Err((name, code))] => Err(format!("{what} {name}: {code:?}")),
        other => Err(format!("{what}: expected one result, got {}", other.len())),
    }
}

async fn create_topic(bootstrap: &str, topic: &str) -> Check {
    let a = admin(bootstrap)?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    one_result(
        "create_topics",
        a.create_topics([&new], &admin_options()).await,
    )?;
    // The topic must be visible in metadata with one partition that has a leader.
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let md = a
            .inner()
            .fetch_metadata(Some(topic), STEP_TIMEOUT)
            .map_err(|e| format!("metadata of {topic}: {e}"))?;
        let ready = md.topics().iter().any(|t| {
            t.name() == topic
                && t.error().is_none()
                && t.partitions().len() == 1
                && t.partitions()[0].leader() >= 0
        });
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{topic} not in metadata with 1 partition and a leader within {STEP_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn delete_topic(bootstrap: &str, topic: &str) -> Check {
    let a = admin(bootstrap)?;
    one_result(
        "delete_topics",
        a.delete_topics(&[topic], &admin_options()).await,
    )?;
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let md = a
            .inner()
            .fetch_metadata(None, STEP_TIMEOUT)
            .map_err(|e| format!("metadata: {e}"))?;
        if !md.topics().iter().any(|t| t.name() == topic) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{topic} still listed {STEP_TIMEOUT:?} after delete_topics"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs independent sections so that one failure does not hide the others.
#[derive(Default)]
struct Sections {
    failed: Vec<String>,
    first_mismatch: Option<String>,
    /// When the previous section ended (the sections run one after the other).
    last_end: Option<Instant>,
}

impl Sections {
    fn record(&mut self, name: &str, outcome: Check) -> bool {
        let elapsed_ms = self
            .last_end
            .replace(Instant::now())
            .map_or(0, |t| t.elapsed().as_millis());
        match outcome {
            Ok(()) => {
                println!("{CLIENT}: {name}: OK ({elapsed_ms} ms)");
                true
            }
            Err(e) => {
                println!("{CLIENT}: {name}: FAILED: {e}");
                self.failed.push(name.to_string());
                self.first_mismatch.get_or_insert(e);
                false
            }
        }
    }
}

fn parse_args() -> Result<(String, String), String> {
    let mut bootstrap = std::env::var("BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_string());
    let mut topic = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bootstrap" => bootstrap = args.next().ok_or("--bootstrap needs HOST:PORT")?,
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ => topic = Some(arg),
        }
    }
    Ok((bootstrap, topic.ok_or("a topic name is required")?))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (bootstrap, topic) = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{CLIENT}: {e}\nusage: compat-rdkafka [--bootstrap HOST:PORT] TOPIC");
            return ExitCode::from(2);
        }
    };
    let (bootstrap, topic) = (bootstrap.as_str(), topic.as_str());
    let (version_n, version) = rdkafka::util::get_rdkafka_version();
    println!(
        "{CLIENT}: librdkafka {version} (0x{version_n:08x}), bootstrap {bootstrap}, topic {topic}"
    );
    let base_ms = base_timestamp_ms();
    let expected: Vec<Record> = (0..RECORD_COUNT)
        .map(|i| expected_record(i, base_ms))
        .collect();
    let extra = after_end_record(base_ms);
    let mut s = Sections {
        last_end: Some(Instant::now()),
        ..Sections::default()
    };

    let created = s.record(
        "admin: create topic (1 partition)",
        create_topic(bootstrap, topic).await,
    );
    let produced = if created {
        produce_all(bootstrap, topic, &expected).await
    } else {
        Err("not run: the topic could not be created".to_string())
    };
    let delivered = created
        && s.record(
            "idempotent produce (5 codecs), every delivery report",
            produced.as_ref().map(|_| ()).map_err(String::clone),
        );
    if delivered {
        let batches = match produced.as_deref() {
            Ok([first, ..]) => Err(first.clone()),
            _ => Ok(()),
        };
        s.record(
            "every batch sent with its codec and a producer id (librdkafka debug=msg)",
            batches,
        );
        s.record(
            "watermarks",
            check_watermarks(bootstrap, topic, RECORD_COUNT as i64),
        );
        let from_start = assigned(bootstrap, topic, Offset::Beginning)
            .and_then(|c| consume_and_verify(&c, 0, &expected, RECORD_COUNT));
        s.record("assign at Offset::Beginning, all 50 records", from_start);
        let from_25 = assigned(bootstrap, topic, Offset::Offset(25))
            .and_then(|c| consume_and_verify(&c, 25, &expected, RECORD_COUNT - 25));
        s.record("assign at Offset::Offset(25)", from_25);
        s.record(
            "offsets_for_times (exact, between, after the end) and assign there",
            check_times(bootstrap, topic, &expected),
        );
        s.record(
            "assign at Offset::End, one more record, watermarks",
            check_end(bootstrap, topic, &expected, &extra).await,
        );
    }
    s.record("admin: delete topic", delete_topic(bootstrap, topic).await);

    match s.first_mismatch {
        None => {
            println!("{CLIENT}: OK");
            ExitCode::SUCCESS
        }
        Some(first) => {
            eprintln!(
                "{CLIENT}: MISMATCH: {first} (failed: {})",
                s.failed.join("; ")
            );
            ExitCode::FAILURE
        }
    }
}
