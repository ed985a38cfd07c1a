//! `freshet perf consume`: reads N records from every partition of a topic (assigned, no
//! group) and reports throughput overall and for the fetching alone.

use std::time::{Duration, Instant};

use freshet_client::{Consumer, ConsumerConfig, OffsetReset};
use serde_json::json;

use super::progress::Progress;
use super::{per_second, round3, CommonArgs, MIB};
use crate::connect::block_on;

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("start").multiple(false))]
pub struct ConsumeArgs {
    /// The topic to read.
    #[arg(long)]
    topic: String,
    /// How many records to read.
    #[arg(long, value_name = "N")]
    messages: u64,
    /// Start at the first record of each partition (the default).
    #[arg(long, group = "start")]
    from_beginning: bool,
    /// Start at the end: count only records produced from now on.
    #[arg(long, group = "start")]
    from_end: bool,
    /// Give up when no record arrives for this long.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    timeout_ms: u64,
    /// max.partition.fetch.bytes: the most bytes one fetch takes from a partition.
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    fetch_size: i32,
    #[command(flatten)]
    common: CommonArgs,
}

pub fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.messages > 0, "--messages must be at least 1");
    anyhow::ensure!(args.timeout_ms > 0, "--timeout-ms must be at least 1");
    anyhow::ensure!(args.fetch_size > 0, "--fetch-size must be at least 1");
    let mut config = ConsumerConfig::new(&args.common.connect.bootstrap_server);
    config.client = args.common.connect.client_config();
    config.client.connection.client_id = "freshet-perf".to_owned();
    config.auto_offset_reset = OffsetReset::Earliest;
    config.partition_fetch_bytes_max = args.fetch_size;
    let summary = block_on(consume(&args, config))??;
    summary.print(&args);
    if summary.records < args.messages {
        anyhow::bail!(
            "only {} of {} records arrived: none came for {} ms",
            summary.records,
            args.messages,
            args.timeout_ms
        );
    }
    Ok(())
}

struct Summary {
    partitions: usize,
    records: u64,
    bytes: u64,
    /// Polls that returned records.
    polls: u64,
    /// Connecting, metadata and offset look-ups, before the first fetch.
    setup_s: f64,
    /// From the first fetch to the last record counted.
    fetch_s: f64,
}

async fn consume(args: &ConsumeArgs, config: ConsumerConfig) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let mut consumer = Consumer::new(config)?;
    let partitions = consumer.partitions_for(&args.topic).await?;
    consumer.assign(partitions.clone());
    if args.from_end {
        consumer.seek_to_end(&partitions).await?;
    } else {
        consumer.seek_to_beginning(&partitions).await?;
    }
    let fetch_start = Instant::now();
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut progress = Progress::new("consume", args.messages, args.common.report_interval_ms);
    let (mut records, mut bytes, mut polls) = (0u64, 0u64, 0u64);
    let mut last_record = fetch_start;
    while records < args.messages {
        let idle = last_record.elapsed();
        if idle >= timeout {
            break;
        }
        let batch = consumer
            .poll((timeout - idle).min(Duration::from_secs(1)))
            .await?;
        if batch.is_empty() {
            continue;
        }
        last_record = Instant::now();
        polls += 1;
        for record in batch.iter().take((args.messages - records) as usize) {
            records += 1;
            bytes += (record.key.as_ref().map_or(0, |key| key.len())
                + record.value.as_ref().map_or(0, |value| value.len())) as u64;
        }
        progress.tick(records, String::new);
    }
    progress.finish();
    Ok(Summary {
        partitions: partitions.len(),
        records,
        bytes,
        polls,
        setup_s: fetch_start.duration_since(start).as_secs_f64(),
        fetch_s: last_record.duration_since(fetch_start).as_secs_f64(),
    })
}

impl Summary {
    fn print(&self, args: &ConsumeArgs) {
        let total_s = self.setup_s + self.fetch_s;
        let mib = self.bytes as f64 / MIB;
        let records_per_sec = per_second(self.records as f64, total_s);
        let mib_per_sec = per_second(mib, total_s);
        let fetch_records_per_sec = per_second(self.records as f64, self.fetch_s);
        let fetch_mib_per_sec = per_second(mib, self.fetch_s);
        let records_per_poll = per_second(self.records as f64, self.polls as f64);
        let lines = [
            format!(
                "consume: {} records ({mib:.2} MiB) from {} ({}) in {total_s:.2} s",
                self.records,
                args.topic,
                super::partitions_text(self.partitions)
            ),
            format!("throughput: {records_per_sec:.1} records/s, {mib_per_sec:.2} MiB/s (set-up included)"),
            format!(
                "fetch: {:.2} s after {:.0} ms of set-up: {fetch_records_per_sec:.1} records/s, {fetch_mib_per_sec:.2} MiB/s, {} polls, {records_per_poll:.1} records per poll",
                self.fetch_s,
                self.setup_s * 1000.0,
                self.polls
            ),
        ];
        let object = json!({
            "mode": "consume",
            "topic": args.topic,
            "partitions": self.partitions,
            "records": self.records,
            "bytes": self.bytes,
            "elapsed_s": round3(total_s),
            "records_per_sec": round3(records_per_sec),
            "mib_per_sec": round3(mib_per_sec),
            "setup_ms": round3(self.setup_s * 1000.0),
            "fetch_s": round3(self.fetch_s),
            "fetch_records_per_sec": round3(fetch_records_per_sec),
            "fetch_mib_per_sec": round3(fetch_mib_per_sec),
            "polls": self.polls,
            "records_per_poll": round3(records_per_poll),
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
        args: ConsumeArgs,
    }

    #[test]
    fn start_options_exclude_each_other() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["consume", "--topic", "t", "--messages", "5"];
            argv.extend(extra);
            Wrapper::try_parse_from(argv).map(|wrapper| wrapper.args)
        };
        let args = parse(&[]).unwrap();
        assert!(!args.from_end);
        assert_eq!(args.timeout_ms, 10_000);
        assert!(parse(&["--from-beginning"]).is_ok());
        assert!(parse(&["--from-beginning", "--from-end"]).is_err());
    }
}
