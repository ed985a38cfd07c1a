//! `freshet produce TOPIC`: one record per line of standard input.

use std::collections::VecDeque;
use std::io::BufRead;

use anyhow::{bail, Context};
use freshet_client::{
    parse_compression, Acks, Bytes, DeliveryFuture, Producer, ProducerConfig, ProducerRecord,
};
use tokio::sync::mpsc;

use crate::connect::{block_on, ConnectArgs};

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    /// The topic to write to (created by the broker if auto-creation is on).
    topic: String,
    /// Split each line at the first SEP into key and value; lines without it are errors.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Write every record to this partition (default: by key, or sticky for keyless lines).
    #[arg(long)]
    partition: Option<i32>,
    /// 0, 1 or all (-1).
    #[arg(
        long,
        default_value = "all",
        value_parser = parse_acks,
        allow_negative_numbers = true
    )]
    acks: Acks,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = parse_codec)]
    compression: freshet_client::Compression,
    /// How long a batch waits for more records.
    #[arg(long, default_value_t = 5, value_name = "MS")]
    linger_ms: u64,
    /// A header added to every record, `key=value`; repeatable.
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    #[command(flatten)]
    connect: ConnectArgs,
}

fn parse_acks(text: &str) -> Result<Acks, String> {
    Acks::parse(text).ok_or_else(|| format!("'{text}' is not 0, 1, -1 or all"))
}

fn parse_codec(text: &str) -> Result<freshet_client::Compression, String> {
    parse_compression(text)
        .ok_or_else(|| format!("'{text}' is not none, gzip, snappy, lz4 or zstd"))
}

/// Acknowledgements waited for at once; reading stdin pauses beyond this.
const PENDING_RECORDS_MAX: usize = 10_000;

pub fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let headers = parse_headers(&args.headers)?;
    let mut config = ProducerConfig::new(&args.connect.bootstrap_server);
    config.client = args.connect.client_config();
    config.acks = args.acks;
    config.compression = args.compression;
    config.linger_ms = args.linger_ms;
    block_on(produce(args, config, headers))?
}

async fn produce(
    args: ProduceArgs,
    config: ProducerConfig,
    headers: Vec<(String, Option<Bytes>)>,
) -> anyhow::Result<()> {
    let producer = Producer::new(config)?;
    // A blocking read of stdin would stall the runtime: a thread reads, the runtime sends.
    let (lines_tx, mut lines) = mpsc::channel::<std::io::Result<String>>(1024);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if lines_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut line_number = 0u64;
    while let Some(line) = lines.recv().await {
        line_number += 1;
        let line = line.context("cannot read standard input")?;
        let record =
            to_record(&args, &headers, &line).with_context(|| format!("line {line_number}"))?;
        pending.push_back(producer.send_wait(record).await);
        if pending.len() >= PENDING_RECORDS_MAX {
            if let Some(oldest) = pending.pop_front() {
                oldest.await?;
            }
        }
    }
    producer.flush().await?;
    for delivery in pending {
        delivery.await?;
    }
    producer.close().await?;
    Ok(())
}

fn to_record(
    args: &ProduceArgs,
    headers: &[(String, Option<Bytes>)],
    line: &str,
) -> anyhow::Result<ProducerRecord> {
    let (key, value) = match &args.key_separator {
        None => (None, line),
        Some(separator) => match line.split_once(separator.as_str()) {
            Some((key, value)) => (Some(Bytes::copy_from_slice(key.as_bytes())), value),
            None => bail!("no key separator {separator:?} in {line:?}"),
        },
    };
    Ok(ProducerRecord {
        topic: args.topic.clone(),
        partition: args.partition,
        key,
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: headers.to_vec(),
        timestamp: None,
    })
}

fn parse_headers(headers: &[String]) -> anyhow::Result<Vec<(String, Option<Bytes>)>> {
    headers
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => Ok((
                key.to_owned(),
                Some(Bytes::copy_from_slice(value.as_bytes())),
            )),
            None => bail!("header '{pair}' is not KEY=VALUE"),
        })
        .collect()
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

    fn args(extra: &[&str]) -> ProduceArgs {
        let mut argv = vec!["produce", "events"];
        argv.extend(extra);
        Wrapper::parse_from(argv).args
    }

    #[test]
    fn lines_split_at_the_first_separator() {
        let args = args(&["--key-separator", ":"]);
        let record = to_record(&args, &[], "user-1:a:b").unwrap();
        assert_eq!(record.key.as_deref(), Some(&b"user-1"[..]));
        assert_eq!(record.value.as_deref(), Some(&b"a:b"[..]));
        assert!(to_record(&args, &[], "no separator").is_err());
    }

    #[test]
    fn without_separator_the_line_is_the_value() {
        let args = args(&["--partition", "2", "--acks", "1", "--compression", "zstd"]);
        assert_eq!(args.acks, Acks::Leader);
        assert_eq!(args.compression, freshet_client::Compression::Zstd);
        let headers = parse_headers(&["a=1".into()]).unwrap();
        let record = to_record(&args, &headers, "k:v").unwrap();
        assert_eq!(record.key, None);
        assert_eq!(record.partition, Some(2));
        assert_eq!(record.value.as_deref(), Some(&b"k:v"[..]));
        assert_eq!(
            record.headers,
            vec![("a".to_owned(), Some(Bytes::from_static(b"1")))]
        );
    }

    #[test]
    fn bad_options_are_rejected() {
        assert!(Wrapper::try_parse_from(["produce", "t", "--acks", "2"]).is_err());
        // The documented -1 is a value, not a flag.
        let args = Wrapper::try_parse_from(["produce", "t", "--acks", "-1"]).unwrap();
        assert_eq!(args.args.acks, Acks::All);
        assert!(Wrapper::try_parse_from(["produce", "t", "--compression", "brotli"]).is_err());
        assert!(parse_headers(&["novalue".into()]).is_err());
    }
}
