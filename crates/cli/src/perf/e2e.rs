//! `freshet perf e2e`: produces at a fixed rate while a consumer in the same process reads
//! the topic from its end; each record carries its send time, so the latency is the time
//! from `send` to the poll that returned it, on one monotonic clock.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use freshet_client::{
    Bytes, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord,
};
use hdrhistogram::Histogram;
use serde_json::json;

use super::progress::Progress;
use super::sender::{acks_name, codec_name, spawn_acknowledgements, Pacer, ProducerOpts};
use super::{per_second, round3, CommonArgs, Latency};
use crate::connect::block_on;

/// Bytes at the start of every value: the run's id, then the send time.
const PREFIX_BYTES: usize = 16;

#[derive(clap::Args, Debug)]
pub struct E2eArgs {
    /// The topic to write to and read from.
    #[arg(long)]
    topic: String,
    /// Records per second to send.
    #[arg(long, value_name = "R")]
    rate: f64,
    /// Bytes in each record's value (at least 16: the run id and send time ride in it).
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    record_size: usize,
    /// Send for this long (rate × duration records) [default: 10].
    #[arg(long, value_name = "S", conflicts_with = "num_records")]
    duration_s: Option<f64>,
    /// Send this many records instead.
    #[arg(long, value_name = "N")]
    num_records: Option<u64>,
    /// Give up when no record arrives for this long after the last send.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    timeout_ms: u64,
    #[command(flatten)]
    producer: ProducerOpts,
    #[command(flatten)]
    common: CommonArgs,
}

impl E2eArgs {
    /// How many records to send.
    fn records(&self) -> anyhow::Result<u64> {
        anyhow::ensure!(
            self.rate > 0.0 && self.rate.is_finite(),
            "--rate must be a positive number of records per second"
        );
        anyhow::ensure!(
            self.record_size >= PREFIX_BYTES,
            "--record-size must be at least {PREFIX_BYTES} bytes (the run id and send time ride in the value)"
        );
        anyhow::ensure!(self.timeout_ms > 0, "--timeout-ms must be at least 1");
        self.producer.validate()?;
        let records = match (self.num_records, self.duration_s) {
            (Some(records), _) => records,
            (None, duration_s) => {
                let duration_s = duration_s.unwrap_or(10.0);
                anyhow::ensure!(
                    duration_s > 0.0 && duration_s.is_finite(),
                    "--duration-s must be a positive number of seconds"
                );
                (self.rate * duration_s).round() as u64
            }
        };
        anyhow::ensure!(
            records > 0,
            "no records to send: --num-records, or --rate × --duration-s, must be at least 1"
        );
        Ok(records)
    }
}

pub fn run(args: E2eArgs) -> anyhow::Result<()> {
    let records = args.records()?;
    let config = args.producer.config(&args.common.connect, 0);
    let summary = block_on(e2e(&args, records, config))??;
    summary.print(&args);
    if let Some(error) = &summary.first_error {
        anyhow::bail!(
            "{} of {records} records were not acknowledged; the first error: {error}",
            summary.errors
        );
    }
    if summary.latency.count < records {
        anyhow::bail!(
            "only {} of {records} records came back: none for {} ms",
            summary.latency.count,
            args.timeout_ms
        );
    }
    Ok(())
}

struct Summary {
    partitions: usize,
    sent: u64,
    send_s: f64,
    errors: u64,
    first_error: Option<String>,
    latency: Latency,
    ack_latency: Latency,
}

async fn e2e(args: &E2eArgs, records: u64, config: ProducerConfig) -> anyhow::Result<Summary> {
    let partitions =
        super::ensure_topic(&args.common.connect, &args.topic, args.producer.partitions).await?;
    // The consumer's positions are fixed at the current ends before anything is sent.
    let mut consumer_config = ConsumerConfig::new(&args.common.connect.bootstrap_server);
    consumer_config.client = args.common.connect.client_config();
    consumer_config.client.connection.client_id = "freshet-perf".to_owned();
    consumer_config.auto_offset_reset = OffsetReset::Latest;
    let mut consumer = Consumer::new(consumer_config)?;
    let assigned = consumer.partitions_for(&args.topic).await?;
    consumer.assign(assigned.clone());
    consumer.seek_to_end(&assigned).await?;

    let clock = Instant::now();
    let run_id = run_id();
    let sending_ended = Arc::new(OnceLock::new());
    let receiver = tokio::spawn(receive(Receive {
        consumer,
        run_id,
        clock,
        records,
        timeout: Duration::from_millis(args.timeout_ms),
        sending_ended: sending_ended.clone(),
        progress: Progress::new("e2e", records, args.common.report_interval_ms),
    }));

    let producer = Producer::new(config)?;
    let fillers = super::Values::new(args.record_size - PREFIX_BYTES);
    let (acknowledgements, collector) = spawn_acknowledgements(None);
    let pacer = Pacer::new(Some(args.rate));
    let mut sent = 0;
    for index in 0..records {
        pacer.wait(index).await;
        let now = Instant::now();
        let mut value = Vec::with_capacity(args.record_size);
        value.extend_from_slice(&run_id.to_be_bytes());
        value.extend_from_slice(&(now.duration_since(clock).as_nanos() as u64).to_be_bytes());
        value.extend_from_slice(&fillers.get(index));
        let record = ProducerRecord {
            topic: args.topic.clone(),
            value: Some(Bytes::from(value)),
            ..Default::default()
        };
        let delivery = producer.send_wait(record).await;
        if acknowledgements.send((now, delivery)).is_err() {
            break;
        }
        sent += 1;
    }
    let send_s = pacer.start.elapsed().as_secs_f64();
    let _ = sending_ended.set(Instant::now());
    drop(acknowledgements);
    let _ = producer.flush().await;
    let acked = collector.await?;
    let _ = producer.close().await;
    let latencies = receiver.await??;
    Ok(Summary {
        partitions,
        sent,
        send_s,
        errors: acked.errors,
        first_error: acked.first_error,
        latency: Latency::from_micros(&latencies),
        ack_latency: Latency::from_micros(&acked.histogram),
    })
}

/// A run id that tells this run's records from others' in the same topic.
fn run_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// The send time (nanoseconds on the run's clock) in a value of this run, if it is one.
fn send_time(value: &[u8], run_id: u64) -> Option<u64> {
    let id = u64::from_be_bytes(value.get(0..8)?.try_into().ok()?);
    if id != run_id {
        return None;
    }
    Some(u64::from_be_bytes(value.get(8..16)?.try_into().ok()?))
}

struct Receive {
    consumer: Consumer,
    run_id: u64,
    clock: Instant,
    records: u64,
    timeout: Duration,
    sending_ended: Arc<OnceLock<Instant>>,
    progress: Progress,
}

/// Polls until every record of the run came back, or none came for `timeout` after
/// sending ended; returns the latencies in microseconds.
async fn receive(mut state: Receive) -> anyhow::Result<Histogram<u64>> {
    let mut histogram = super::micros_histogram();
    let mut last_record = Instant::now();
    let mut window_max_micros = 0u64;
    while histogram.len() < state.records {
        if let Some(&ended) = state.sending_ended.get() {
            if last_record.max(ended).elapsed() >= state.timeout {
                break;
            }
        }
        let batch = state.consumer.poll(Duration::from_millis(200)).await?;
        let now_nanos = state.clock.elapsed().as_nanos() as u64;
        for record in &batch {
            let Some(sent) = record
                .value
                .as_deref()
                .and_then(|value| send_time(value, state.run_id))
            else {
                continue;
            };
            let micros = now_nanos.saturating_sub(sent) / 1000;
            histogram.saturating_record(micros);
            window_max_micros = window_max_micros.max(micros);
            last_record = Instant::now();
            if histogram.len() >= state.records {
                break;
            }
        }
        state.progress.tick(histogram.len(), || {
            let max = std::mem::take(&mut window_max_micros);
            format!(", latency max {:.2} ms", max as f64 / 1000.0)
        });
    }
    state.progress.finish();
    Ok(histogram)
}

impl Summary {
    fn print(&self, args: &E2eArgs) {
        let achieved = per_second(self.sent as f64, self.send_s);
        let lines = [
            format!(
                "e2e: {} of {} records of {} bytes came back from {} ({}, acks={}, compression {})",
                self.latency.count,
                self.sent,
                args.record_size,
                args.topic,
                super::partitions_text(self.partitions),
                acks_name(args.producer.acks),
                codec_name(args.producer.compression),
            ),
            format!(
                "rate: {:.1} records/s asked, {achieved:.1} sent over {:.2} s",
                args.rate, self.send_s
            ),
            format!("end-to-end latency (ms): {}", self.latency.text()),
            format!("acknowledgement latency (ms): {}", self.ack_latency.text()),
        ];
        let object = json!({
            "mode": "e2e",
            "topic": args.topic,
            "partitions": self.partitions,
            "records": self.sent,
            "received": self.latency.count,
            "errors": self.errors,
            "record_size": args.record_size,
            "acks": acks_name(args.producer.acks),
            "compression": codec_name(args.producer.compression),
            "rate": args.rate,
            "achieved_rate": round3(achieved),
            "send_s": round3(self.send_s),
            "latency_ms": self.latency.json(),
            "ack_latency_ms": self.ack_latency.json(),
        });
        super::print_summary(args.common.json, &lines, &object);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: E2eArgs,
    }

    fn parse(extra: &[&str]) -> Result<E2eArgs, clap::Error> {
        let mut argv = vec!["e2e", "--topic", "t"];
        argv.extend(extra);
        Wrapper::try_parse_from(argv).map(|wrapper| wrapper.args)
    }

    #[test]
    fn record_count_from_rate_and_duration() {
        assert_eq!(parse(&["--rate", "100"]).unwrap().records().unwrap(), 1000);
        let args = parse(&["--rate", "100", "--duration-s", "2.5"]).unwrap();
        assert_eq!(args.records().unwrap(), 250);
        let args = parse(&["--rate", "100", "--num-records", "7"]).unwrap();
        assert_eq!(args.records().unwrap(), 7);
        assert!(parse(&["--rate", "1", "--num-records", "7", "--duration-s", "1"]).is_err());
        assert!(parse(&["--rate", "0"]).unwrap().records().is_err());
        let args = parse(&["--rate", "10", "--record-size", "15"]).unwrap();
        assert!(args.records().is_err());
        let args = parse(&["--rate", "10", "--duration-s", "0.01"]).unwrap();
        assert!(args.records().is_err(), "0 records");
    }

    #[test]
    fn send_times_only_from_this_run() {
        let mut value = 42u64.to_be_bytes().to_vec();
        value.extend_from_slice(&1234u64.to_be_bytes());
        value.extend_from_slice(b"filler");
        assert_eq!(send_time(&value, 42), Some(1234));
        assert_eq!(send_time(&value, 43), None);
        assert_eq!(send_time(&value[..10], 42), None);
        assert_eq!(send_time(b"", 42), None);
    }
}
