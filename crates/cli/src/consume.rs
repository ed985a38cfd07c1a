//! `freshet consume TOPIC`: prints records of a topic's partitions, from a chosen start,
//! until the end (or forever with `--follow`).

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use freshet_client::{Consumer, ConsumerConfig, OffsetReset, OffsetSpec, TopicPartition};

use crate::connect::{block_on, ConnectArgs};
use crate::output::{write_record, Fields};

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("start").multiple(false))]
pub struct ConsumeArgs {
    /// The topic to read.
    topic: String,
    /// Read only this partition; repeatable (default: every partition).
    #[arg(long = "partition")]
    partitions: Vec<i32>,
    /// Start at the first record of each partition (the default).
    #[arg(long, group = "start")]
    from_beginning: bool,
    /// Start at this offset in each partition read.
    #[arg(long, group = "start", value_name = "N")]
    offset: Option<i64>,
    /// Start after the last record: print only what arrives from now on (with --follow).
    #[arg(long, group = "start")]
    from_end: bool,
    /// Start at the first record with a timestamp at or after MS (milliseconds since the epoch).
    #[arg(long, group = "start", value_name = "MS")]
    timestamp: Option<i64>,
    /// Keep waiting for new records instead of stopping at the end.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
    #[arg(long)]
    print_key: bool,
    #[arg(long)]
    print_partition: bool,
    #[arg(long)]
    print_offset: bool,
    #[arg(long)]
    print_timestamp: bool,
    #[arg(long)]
    print_headers: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

impl ConsumeArgs {
    fn fields(&self) -> Fields {
        Fields {
            key: self.print_key,
            partition: self.print_partition,
            offset: self.print_offset,
            timestamp: self.print_timestamp,
            headers: self.print_headers,
        }
    }

    fn start(&self) -> Start {
        match (self.offset, self.timestamp, self.from_end) {
            (Some(offset), _, _) => Start::Offset(offset),
            (_, Some(timestamp_ms), _) => Start::Spec(OffsetSpec::Timestamp(timestamp_ms)),
            (_, _, true) => Start::Spec(OffsetSpec::Latest),
            _ => Start::Spec(OffsetSpec::Earliest),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Offset(i64),
    Spec(OffsetSpec),
}

pub fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    if let Some(offset) = args.offset {
        anyhow::ensure!(offset >= 0, "--offset must be 0 or more");
    }
    let mut config = ConsumerConfig::new(&args.connect.bootstrap_server);
    config.client = args.connect.client_config();
    // --offset is clamped into the log when consuming starts (see `consume`); this covers
    // only a log start that retention moves past the position afterwards.
    config.auto_offset_reset = OffsetReset::Earliest;
    let consumer = Consumer::new(config)?;
    block_on(consume(args, consumer))?
}

async fn consume(args: ConsumeArgs, mut consumer: Consumer) -> anyhow::Result<()> {
    let partitions = partitions(&args, &consumer).await?;
    consumer.assign(partitions.clone());
    match args.start() {
        Start::Offset(offset) => {
            // Past the end means "from the end" (with --follow, what arrives next); before the
            // log start (records deleted by retention), from the first record still there.
            let earliest = consumer
                .list_offsets(&partitions, OffsetSpec::Earliest)
                .await?;
            let latest = consumer
                .list_offsets(&partitions, OffsetSpec::Latest)
                .await?;
            for tp in &partitions {
                let (first, end) = (earliest[tp], latest[tp]);
                consumer.seek(tp, offset.clamp(first, end.max(first)))?;
            }
        }
        Start::Spec(OffsetSpec::Earliest) => consumer.seek_to_beginning(&partitions).await?,
        Start::Spec(OffsetSpec::Latest) => consumer.seek_to_end(&partitions).await?,
        Start::Spec(OffsetSpec::Timestamp(ms)) => {
            consumer.seek_to_timestamp(&partitions, ms).await?
        }
    }
    // Without --follow, stop at the end as it was when we started.
    let ends = if args.follow {
        HashMap::new()
    } else {
        consumer
            .list_offsets(&partitions, OffsetSpec::Latest)
            .await?
    };
    let fields = args.fields();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    loop {
        if limit_reached(args.max_messages, printed) || (!args.follow && reached(&consumer, &ends))
        {
            break;
        }
        let records = consumer.poll(Duration::from_millis(500)).await?;
        for record in records {
            if limit_reached(args.max_messages, printed) {
                break;
            }
            if !args.follow
                && ends
                    .get(&TopicPartition::new(&record.topic, record.partition))
                    .is_some_and(|&end| record.offset >= end)
            {
                continue;
            }
            if !write_or_stop(write_record(&mut out, &record, fields))? {
                return Ok(());
            }
            printed += 1;
        }
        if !write_or_stop(out.flush())? {
            return Ok(());
        }
    }
    write_or_stop(out.flush())?;
    Ok(())
}

async fn partitions(
    args: &ConsumeArgs,
    consumer: &Consumer,
) -> anyhow::Result<Vec<TopicPartition>> {
    let all = consumer.partitions_for(&args.topic).await?;
    if args.partitions.is_empty() {
        return Ok(all);
    }
    args.partitions
        .iter()
        .map(|&p| {
            all.iter()
                .find(|tp| tp.partition == p)
                .cloned()
                .with_context(|| {
                    format!(
                        "topic {} has no partition {p} ({} partitions)",
                        args.topic,
                        all.len()
                    )
                })
        })
        .collect()
}

fn limit_reached(max_messages: Option<u64>, printed: u64) -> bool {
    max_messages.is_some_and(|max| printed >= max)
}

/// Whether every partition's position reached its end offset.
fn reached(consumer: &Consumer, ends: &HashMap<TopicPartition, i64>) -> bool {
    ends.iter().all(|(tp, &end)| {
        consumer
            .position(tp)
            .is_some_and(|position| position >= end)
    })
}

/// `Ok(false)` when the reader went away (`| head`): stop quietly, as `cat` does.
fn write_or_stop(result: std::io::Result<()>) -> anyhow::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error).context("cannot write to standard output"),
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

    fn parse(extra: &[&str]) -> Result<ConsumeArgs, clap::Error> {
        let mut argv = vec!["consume", "events"];
        argv.extend(extra);
        Wrapper::try_parse_from(argv).map(|w| w.args)
    }

    #[test]
    fn start_positions() {
        assert_eq!(
            parse(&[]).unwrap().start(),
            Start::Spec(OffsetSpec::Earliest)
        );
        assert_eq!(parse(&["--offset", "5"]).unwrap().start(), Start::Offset(5));
        assert_eq!(
            parse(&["--from-end"]).unwrap().start(),
            Start::Spec(OffsetSpec::Latest)
        );
        assert_eq!(
            parse(&["--timestamp", "1700000000000"]).unwrap().start(),
            Start::Spec(OffsetSpec::Timestamp(1_700_000_000_000))
        );
    }

    #[test]
    fn start_options_exclude_each_other() {
        assert!(parse(&["--from-beginning", "--from-end"]).is_err());
        assert!(parse(&["--offset", "1", "--timestamp", "2"]).is_err());
    }

    #[test]
    fn print_flags_select_fields() {
        let args = parse(&["--print-key", "--print-offset", "--max-messages", "3", "-f"]).unwrap();
        assert_eq!(
            args.fields(),
            Fields {
                key: true,
                offset: true,
                ..Fields::default()
            }
        );
        assert!(args.follow);
        assert!(limit_reached(args.max_messages, 3));
        assert!(!limit_reached(args.max_messages, 2));
        assert!(!limit_reached(None, 1_000));
    }
}
