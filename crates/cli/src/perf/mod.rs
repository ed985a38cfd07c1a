//! `freshet perf produce|consume|e2e`: load generators that report throughput and latency
//! percentiles from an HDR histogram, in the manner of Kafka's ProducerPerformance,
//! ConsumerPerformance and EndToEndLatency tools. A progress bar runs on a terminal, a
//! periodic line on stderr otherwise; the summary goes to stdout, as text or `--json`.

mod consume;
mod e2e;
mod produce;
mod progress;
mod sender;

use anyhow::Context;
use freshet_client::{Admin, Bytes, KafkaCode, NewTopic};
use hdrhistogram::Histogram;
use serde_json::json;

use crate::connect::ConnectArgs;
use crate::output::say;

#[derive(clap::Args, Debug)]
pub struct PerfArgs {
    #[command(subcommand)]
    command: PerfCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PerfCommand {
    /// Send records (rate-limited or as fast as possible) and report throughput and
    /// acknowledgement latency.
    Produce(produce::ProduceArgs),
    /// Read records from every partition of a topic and report throughput.
    Consume(consume::ConsumeArgs),
    /// Produce at a fixed rate while consuming, and report send-to-receive latency.
    E2e(e2e::E2eArgs),
}

pub fn run(args: PerfArgs) -> anyhow::Result<()> {
    match args.command {
        PerfCommand::Produce(args) => produce::run(args),
        PerfCommand::Consume(args) => consume::run(args),
        PerfCommand::E2e(args) => e2e::run(args),
    }
}

/// Options every perf subcommand has.
#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// How often a progress line goes to stderr when stderr is not a terminal (0: never).
    #[arg(long, default_value_t = 5_000, value_name = "MS")]
    report_interval_ms: u64,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Bytes in the MiB of every "MiB/s" figure (Kafka's perf tools' "MB" is the same unit).
const MIB: f64 = 1024.0 * 1024.0;

/// A histogram of microseconds, from 1 µs to an hour, to 3 significant digits.
fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_max(3_600_000_000, 3).expect("valid histogram bounds")
}

/// The figures of a latency histogram (recorded in microseconds), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Latency {
    count: u64,
    min_ms: f64,
    avg_ms: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn from_micros(histogram: &Histogram<u64>) -> Latency {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |quantile: f64| ms(histogram.value_at_quantile(quantile));
        let empty = histogram.is_empty();
        Latency {
            count: histogram.len(),
            min_ms: if empty { 0.0 } else { ms(histogram.min()) },
            avg_ms: if empty {
                0.0
            } else {
                histogram.mean() / 1000.0
            },
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: if empty { 0.0 } else { ms(histogram.max()) },
        }
    }

    fn text(&self) -> String {
        format!(
            "min {:.3}, avg {:.3}, p50 {:.3}, p95 {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3}",
            self.min_ms,
            self.avg_ms,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms
        )
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "count": self.count,
            "min": round3(self.min_ms),
            "avg": round3(self.avg_ms),
            "p50": round3(self.p50_ms),
            "p95": round3(self.p95_ms),
            "p99": round3(self.p99_ms),
            "p99_9": round3(self.p999_ms),
            "max": round3(self.max_ms),
        })
    }
}

/// Keeps JSON figures readable: three decimals are below the clock's noise anyway.
fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// "1 partition", "3 partitions".
fn partitions_text(count: usize) -> String {
    if count == 1 {
        "1 partition".to_owned()
    } else {
        format!("{count} partitions")
    }
}

/// `count / seconds`, 0 for an empty interval.
fn per_second(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count / seconds
    } else {
        0.0
    }
}

/// Prints a summary: text lines, or one JSON object.
fn print_summary(json: bool, lines: &[String], object: &serde_json::Value) {
    if json {
        say!("{object}");
    } else {
        for line in lines {
            say!("{line}");
        }
    }
}

/// Creates `topic` when it does not exist (with `partitions`, or the broker's default count)
/// and waits until every partition has a leader; returns the partition count.
async fn ensure_topic(
    connect: &ConnectArgs,
    topic: &str,
    partitions: Option<i32>,
) -> anyhow::Result<usize> {
    let admin = Admin::new(connect.client_config())?;
    let existing = admin.list_topics(false).await?;
    if !existing.iter().any(|name| name == topic) {
        let new_topic = NewTopic::new(topic, partitions.unwrap_or(-1), -1);
        match admin.create_topics(&[new_topic], false).await {
            Ok(()) => {}
            Err(error) if error.kafka_code() == Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let description = admin
        .wait_for_topic(topic)
        .await
        .with_context(|| format!("topic {topic} is not ready"))?;
    let count = description.partitions.len();
    if let Some(wanted) = partitions {
        if usize::try_from(wanted).ok() != Some(count) {
            eprintln!("freshet: topic {topic} already has {count} partitions (--partitions {wanted} not applied)");
        }
    }
    Ok(count)
}

/// Values of one size cut from a pool of pseudo-random capital letters at moving offsets,
/// so that records differ and compression sees realistic input (Kafka's ProducerPerformance
/// repeats one value, which compresses far better than real data would).
struct Values {
    pool: Bytes,
    size: usize,
    /// Offsets step by a prime, so consecutive values do not overlap.
    step: usize,
}

impl Values {
    fn new(size: usize) -> Values {
        let pool_size = (size * 64).max(1 << 20);
        Values {
            pool: Bytes::from(payload(pool_size)),
            size,
            step: 7919,
        }
    }

    /// The value of record `index`: `size` bytes, shared with the pool (no copy).
    fn get(&self, index: u64) -> Bytes {
        let starts = self.pool.len() - self.size + 1;
        let start = ((index as u128 * self.step as u128) % starts as u128) as usize;
        self.pool.slice(start..start + self.size)
    }
}

/// `size` pseudo-random capital letters, different on each run.
fn payload(size: usize) -> Vec<u8> {
    let mut state = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9e37_79b9_7f4a_7c15, |elapsed| elapsed.as_nanos() as u64)
        | 1;
    (0..size)
        .map(|_| {
            // xorshift64: enough to keep compression honest, not cryptography.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_figures_are_ordered_milliseconds() {
        let mut histogram = micros_histogram();
        for micros in 1..=10_000u64 {
            histogram.record(micros).unwrap();
        }
        let latency = Latency::from_micros(&histogram);
        assert_eq!(latency.count, 10_000);
        assert!((latency.p50_ms - 5.0).abs() < 0.01, "{latency:?}");
        assert!((latency.p99_ms - 9.9).abs() < 0.01, "{latency:?}");
        assert!((latency.max_ms - 10.0).abs() < 0.01, "{latency:?}");
        assert!(latency.min_ms <= latency.p50_ms);
        assert!(latency.p50_ms <= latency.p95_ms && latency.p95_ms <= latency.p99_ms);
        assert!(latency.p99_ms <= latency.p999_ms && latency.p999_ms <= latency.max_ms);
        assert!((latency.avg_ms - 5.0).abs() < 0.01, "{latency:?}");
    }

    #[test]
    fn an_empty_histogram_reports_zeros() {
        let latency = Latency::from_micros(&micros_histogram());
        assert_eq!(latency.count, 0);
        assert_eq!(latency.max_ms, 0.0);
        assert_eq!(latency.avg_ms, 0.0);
    }

    #[test]
    fn payloads_are_letters_of_the_asked_size() {
        let bytes = payload(1000);
        assert_eq!(bytes.len(), 1000);
        assert!(bytes.iter().all(u8::is_ascii_uppercase));
        // Not one repeated letter.
        assert!(bytes.iter().any(|&b| b != bytes[0]));
    }

    #[test]
    fn values_have_the_size_and_differ() {
        for size in [1, 100, 1024, 100_000] {
            let values = Values::new(size);
            let first = values.get(0);
            let second = values.get(1);
            assert_eq!(first.len(), size);
            assert_eq!(values.get(u64::MAX).len(), size);
            if size > 1 {
                assert_ne!(first, second, "size {size}");
            }
        }
    }
}
