//! What `perf produce` and `perf e2e` share: producer options, pacing at a target rate, and
//! a task that awaits every acknowledgement and records its latency.

use std::time::{Duration, Instant};

use freshet_client::{parse_compression, Acks, Compression, DeliveryFuture, ProducerConfig};
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::progress::Progress;
use crate::connect::ConnectArgs;

/// Producer settings of the perf commands, named after the Java producer's.
#[derive(clap::Args, Debug)]
pub struct ProducerOpts {
    /// 0, 1 or all (-1).
    #[arg(
        long,
        default_value = "all",
        value_parser = parse_acks,
        allow_negative_numbers = true
    )]
    pub acks: Acks,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = parse_codec)]
    pub compression: Compression,
    /// batch.size: a partition's batch is sent once it holds this many bytes.
    #[arg(long, default_value_t = 16_384, value_name = "BYTES")]
    pub batch_size: usize,
    /// linger.ms: how long a batch waits for more records [default: 5, 0 for e2e].
    #[arg(long, value_name = "MS")]
    pub linger_ms: Option<u64>,
    /// Create the topic with this many partitions if it does not exist (default: the
    /// broker's num.partitions).
    #[arg(long, value_name = "P")]
    pub partitions: Option<i32>,
}

fn parse_acks(text: &str) -> Result<Acks, String> {
    Acks::parse(text).ok_or_else(|| format!("'{text}' is not 0, 1, -1 or all"))
}

fn parse_codec(text: &str) -> Result<Compression, String> {
    parse_compression(text)
        .ok_or_else(|| format!("'{text}' is not none, gzip, snappy, lz4 or zstd"))
}

impl ProducerOpts {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.batch_size > 0, "--batch-size must be at least 1");
        if let Some(partitions) = self.partitions {
            anyhow::ensure!(partitions > 0, "--partitions must be at least 1");
        }
        Ok(())
    }

    pub fn config(&self, connect: &ConnectArgs, default_linger_ms: u64) -> ProducerConfig {
        let mut config = ProducerConfig::new(&connect.bootstrap_server);
        config.client = connect.client_config();
        config.client.connection.client_id = "freshet-perf".to_owned();
        config.acks = self.acks;
        config.compression = self.compression;
        config.batch_bytes_max = self.batch_size;
        config.linger_ms = self.linger_ms.unwrap_or(default_linger_ms);
        config
    }
}

/// Names an acks setting as the command line spells it.
pub fn acks_name(acks: Acks) -> &'static str {
    match acks {
        Acks::None => "0",
        Acks::Leader => "1",
        Acks::All => "all",
    }
}

/// Names a codec as the command line spells it.
pub fn codec_name(codec: Compression) -> String {
    format!("{codec:?}").to_ascii_lowercase()
}

/// Sends record `i` at `start + i / rate` (or at once without a rate). Sleeping has
/// millisecond resolution, so at high rates records leave in bursts of up to a
/// millisecond's worth; the average rate holds.
pub struct Pacer {
    pub start: Instant,
    rate: Option<f64>,
}

impl Pacer {
    /// `rate` in records per second; `None` or a negative rate for no limit.
    pub fn new(rate: Option<f64>) -> Pacer {
        Pacer {
            start: Instant::now(),
            rate: rate.filter(|rate| *rate > 0.0),
        }
    }

    pub fn due(&self, index: u64) -> Option<Instant> {
        self.rate
            .map(|rate| self.start + Duration::from_secs_f64(index as f64 / rate))
    }

    pub async fn wait(&self, index: u64) {
        if let Some(due) = self.due(index) {
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
    }
}

/// What the acknowledgement task saw.
pub struct Acked {
    /// Send-to-acknowledgement latency of each acknowledged record, in microseconds.
    pub histogram: Histogram<u64>,
    pub acked: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub last_ack: Option<Instant>,
}

/// A send time and the future of its acknowledgement.
pub type Sent = (Instant, DeliveryFuture);

/// Starts the task that awaits acknowledgements as they come (in any order across
/// partitions) and notes each one's latency; it ends when the sender is dropped and every
/// future has completed. With `progress`, it reports acknowledged records.
pub fn spawn_acknowledgements(
    mut progress: Option<Progress>,
) -> (mpsc::UnboundedSender<Sent>, JoinHandle<Acked>) {
    let (sender, mut receiver) = mpsc::unbounded_channel::<Sent>();
    let task = tokio::spawn(async move {
        // One small task per record waits for its acknowledgement and notes the time it
        // came, so that records of different partitions are timed as they complete.
        let (done_sender, mut done) = mpsc::unbounded_channel();
        let mut acked = Acked {
            histogram: super::micros_histogram(),
            acked: 0,
            errors: 0,
            first_error: None,
            last_ack: None,
        };
        let mut window = Window::default();
        let mut outstanding = 0u64;
        let mut open = true;
        while open || outstanding > 0 {
            tokio::select! {
                biased;
                Some((sent, result, at)) = done.recv() => {
                    outstanding -= 1;
                    let at: Instant = at;
                    let micros = at.duration_since(sent).as_micros() as u64;
                    match result {
                        Ok(_) => {
                            acked.acked += 1;
                            acked.histogram.saturating_record(micros);
                            window.add(micros);
                        }
                        Err(error) => {
                            acked.errors += 1;
                            if acked.first_error.is_none() {
                                acked.first_error = Some(format!("{error}"));
                            }
                        }
                    }
                    acked.last_ack = Some(acked.last_ack.map_or(at, |last| last.max(at)));
                    if let Some(progress) = progress.as_mut() {
                        progress.tick(acked.acked + acked.errors, || window.take());
                    }
                }
                received = receiver.recv(), if open => match received {
                    Some((sent, delivery)) => {
                        outstanding += 1;
                        let done_sender = done_sender.clone();
                        tokio::spawn(async move {
                            let result = delivery.await;
                            let _ = done_sender.send((sent, result, Instant::now()));
                        });
                    }
                    None => open = false,
                },
            }
        }
        if let Some(progress) = &progress {
            progress.finish();
        }
        acked
    });
    (sender, task)
}

/// Latency figures since the last progress line.
#[derive(Default)]
struct Window {
    count: u64,
    sum_micros: u64,
    max_micros: u64,
}

impl Window {
    fn add(&mut self, micros: u64) {
        self.count += 1;
        self.sum_micros += micros;
        self.max_micros = self.max_micros.max(micros);
    }

    /// The figures as a progress-line suffix; starts a new window.
    fn take(&mut self) -> String {
        let window = std::mem::take(self);
        if window.count == 0 {
            return String::new();
        }
        format!(
            ", latency avg {:.2} ms, max {:.2} ms",
            window.sum_micros as f64 / window.count as f64 / 1000.0,
            window.max_micros as f64 / 1000.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_spreads_records_over_time() {
        let pacer = Pacer::new(Some(1000.0));
        assert_eq!(pacer.due(0), Some(pacer.start));
        assert_eq!(
            pacer.due(500),
            Some(pacer.start + Duration::from_millis(500))
        );
        assert_eq!(Pacer::new(Some(-1.0)).due(10), None);
        assert_eq!(Pacer::new(None).due(10), None);
    }

    #[test]
    fn a_window_reports_and_restarts() {
        let mut window = Window::default();
        assert_eq!(window.take(), "");
        window.add(1000);
        window.add(3000);
        assert_eq!(window.take(), ", latency avg 2.00 ms, max 3.00 ms");
        assert_eq!(window.take(), "");
    }

    #[test]
    fn names_round_trip_through_the_parsers() {
        for acks in [Acks::None, Acks::Leader, Acks::All] {
            assert_eq!(parse_acks(acks_name(acks)), Ok(acks));
        }
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            assert_eq!(codec_name(parse_codec(codec).unwrap()), codec);
        }
        assert!(parse_acks("2").is_err());
        assert!(parse_codec("brotli").is_err());
    }
}
