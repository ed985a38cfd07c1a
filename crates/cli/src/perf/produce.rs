//! `freshet perf produce`: sends N records of B bytes, optionally at a target rate, and
//! reports throughput and the latency from each `send` to its acknowledgement.

use std::time::Instant;

use freshet_client::{Producer, ProducerConfig, ProducerRecord};
use serde_json::json;

use super::progress::Progress;
use super::sender::{acks_name, codec_name, spawn_acknowledgements, Pacer, ProducerOpts};
use super::{CommonArgs, Latency, MIB};
use crate::connect::block_on;

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    /// The topic to write to.
    #[arg(long)]
    topic: String,
    /// How many records to send.
    #[arg(long, value_name = "N")]
    num_records: u64,
    /// Bytes in each record's value (no key).
    #[arg(long, value_name = "BYTES")]
    record_size: usize,
    /// Records per second to aim at; -1 for as fast as possible.
    #[arg(
        long,
        default_value_t = -1.0,
        allow_negative_numbers = true,
        value_name = "R"
    )]
    throughput: f64,
    #[command(flatten)]
    producer: ProducerOpts,
    #[command(flatten)]
    common: CommonArgs,
}

impl ProduceArgs {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.num_records > 0, "--num-records must be at least 1");
        anyhow::ensure!(self.record_size > 0, "--record-size must be at least 1");
        anyhow::ensure!(
            self.throughput != 0.0 && self.throughput.is_finite(),
            "--throughput must be a positive number of records per second, or -1 for no limit"
        );
        self.producer.validate()
    }
}

pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    args.validate()?;
    let config = args.producer.config(&args.common.connect, 5);
    let summary = block_on(produce(&args, config))??;
    summary.print(&args);
    match &summary.first_error {
        Some(error) => anyhow::bail!(
            "{} of {} records were not acknowledged; the first error: {error}",
            summary.errors,
            args.num_records
        ),
        None => Ok(()),
    }
}

struct Summary {
    partitions: usize,
    acked: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed_s: f64,
    latency: Latency,
}

async fn produce(args: &ProduceArgs, config: ProducerConfig) -> anyhow::Result<Summary> {
    let partitions =
        super::ensure_topic(&args.common.connect, &args.topic, args.producer.partitions).await?;
    let producer = Producer::new(config)?;
    let values = super::Values::new(args.record_size);
    let progress = Progress::new("produce", args.num_records, args.common.report_interval_ms);
    let (acknowledgements, collector) = spawn_acknowledgements(Some(progress));
    let pacer = Pacer::new(Some(args.throughput));
    for index in 0..args.num_records {
        pacer.wait(index).await;
        let record = ProducerRecord {
            topic: args.topic.clone(),
            value: Some(values.get(index)),
            ..Default::default()
        };
        let sent = Instant::now();
        let delivery = producer.send_wait(record).await;
        if acknowledgements.send((sent, delivery)).is_err() {
            break;
        }
    }
    drop(acknowledgements);
    // Failures are counted per record by the collector; flush only sends what lingers.
    let _ = producer.flush().await;
    let acked = collector.await?;
    let _ = producer.close().await;
    let end = acked.last_ack.unwrap_or_else(Instant::now);
    Ok(Summary {
        partitions,
        acked: acked.acked,
        errors: acked.errors,
        first_error: acked.first_error,
        elapsed_s: end.duration_since(pacer.start).as_secs_f64(),
        latency: Latency::from_micros(&acked.histogram),
    })
}

impl Summary {
    fn print(&self, args: &ProduceArgs) {
        let records_per_sec = super::per_second(self.acked as f64, self.elapsed_s);
        let mib_per_sec = records_per_sec * args.record_size as f64 / MIB;
        let lines = [
            format!(
                "produce: {} records of {} bytes to {} ({}, acks={}, compression {}) in {:.2} s",
                self.acked,
                args.record_size,
                args.topic,
                super::partitions_text(self.partitions),
                acks_name(args.producer.acks),
                codec_name(args.producer.compression),
                self.elapsed_s
            ),
            format!("throughput: {records_per_sec:.1} records/s, {mib_per_sec:.2} MiB/s"),
            format!("latency (ms): {}", self.latency.text()),
        ];
        let mut lines = lines.to_vec();
        if self.errors > 0 {
            lines.push(format!("errors: {} records not acknowledged", self.errors));
        }
        let object = json!({
            "mode": "produce",
            "topic": args.topic,
            "partitions": self.partitions,
            "records": self.acked,
            "errors": self.errors,
            "record_size": args.record_size,
            "acks": acks_name(args.producer.acks),
            "compression": codec_name(args.producer.compression),
            "elapsed_s": super::round3(self.elapsed_s),
            "records_per_sec": super::round3(records_per_sec),
            "mib_per_sec": super::round3(mib_per_sec),
            "latency_ms": self.latency.json(),
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
        args: ProduceArgs,
    }

    fn parse(extra: &[&str]) -> Result<ProduceArgs, clap::Error> {
        let mut argv = vec!["produce", "--topic", "t"];
        argv.extend(extra);
        Wrapper::try_parse_from(argv).map(|wrapper| wrapper.args)
    }

    #[test]
    fn defaults_and_limits() {
        let args = parse(&["--num-records", "10", "--record-size", "100"]).unwrap();
        assert_eq!(args.throughput, -1.0);
        assert_eq!(args.producer.acks, freshet_client::Acks::All);
        assert!(args.validate().is_ok());
        let args = parse(&[
            "--num-records",
            "10",
            "--record-size",
            "100",
            "--throughput",
            "0",
        ])
        .unwrap();
        assert!(args.validate().is_err());
        let args = parse(&["--num-records", "0", "--record-size", "100"]).unwrap();
        assert!(args.validate().is_err());
        assert!(parse(&["--record-size", "100"]).is_err(), "N is required");
        assert!(parse(&["--num-records", "1", "--record-size", "1", "--acks", "2"]).is_err());
        let args = parse(&["--num-records", "1", "--record-size", "1", "--acks", "-1"]).unwrap();
        assert_eq!(args.producer.acks, freshet_client::Acks::All);
    }
}
