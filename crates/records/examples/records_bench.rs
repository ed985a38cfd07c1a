//! Prints the figures that matter for the broker's hot path and for codec choice.
//! Run: `cargo run --release -p freshet-records --example records_bench`
//!
//! - header parse + CRC32C validation of one 1,000-record batch with 100-byte values
//! - record iteration rate over that batch
//! - compress / decompress throughput per codec, on the same records section

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshet_records::{
    compress, decompress, records, validate, BatchBuilder, BatchOptions, Compression, NewRecord,
};

const RECORDS_PER_BATCH: usize = 1_000;
const VALUE_BYTES: usize = 100;

/// Text that compresses roughly like real JSON events: repeated field names, varying numbers.
fn value(index: usize) -> Vec<u8> {
    let text = format!(
        "{{\"id\":{index},\"user\":\"u{}\",\"amount\":{}.{:02},\"kind\":\"order\",\"ok\":true}}",
        index * 7919 % 10_007,
        index * 31 % 997,
        index % 100
    );
    let mut bytes = text.into_bytes();
    bytes.resize(VALUE_BYTES, b' ');
    bytes
}

fn build(compression: Compression) -> Vec<u8> {
    let mut builder = BatchBuilder::new(BatchOptions {
        compression,
        ..BatchOptions::default()
    });
    for index in 0..RECORDS_PER_BATCH {
        let key = format!("key-{}", index % 64);
        let value = value(index);
        let record = NewRecord {
            timestamp_ms: 1_700_000_000_000 + index as i64,
            key: Some(key.as_bytes()),
            value: Some(&value),
            headers: &[],
        };
        builder.push(&record).expect("bench records fit a batch");
    }
    builder.build().expect("bench batch builds")
}

/// Runs `work` repeatedly for about `budget` and returns the mean time of one run.
fn time_per_run(budget: Duration, mut work: impl FnMut()) -> Duration {
    work(); // warm up caches and lazy CPU-feature detection
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < budget {
        work();
        runs += 1;
    }
    start.elapsed() / runs
}

fn mb_per_s(bytes: usize, per_run: Duration) -> f64 {
    bytes as f64 / per_run.as_secs_f64() / 1e6
}

fn main() {
    let budget = Duration::from_millis(500);
    let batch = build(Compression::None);
    println!(
        "batch: {RECORDS_PER_BATCH} records x {VALUE_BYTES}-byte values = {} bytes",
        batch.len()
    );

    let validate_time = time_per_run(budget, || {
        black_box(validate(black_box(&batch)).expect("valid"));
    });
    println!(
        "validate (header parse + CRC32C): {:.2} us per batch ({:.0} MB/s)",
        validate_time.as_secs_f64() * 1e6,
        mb_per_s(batch.len(), validate_time)
    );

    let shared = Bytes::from(batch.clone());
    let iterate_time = time_per_run(budget, || {
        let count = records(&shared, 1 << 24)
            .expect("valid")
            .filter(|r| r.is_ok())
            .count();
        assert_eq!(black_box(count), RECORDS_PER_BATCH);
    });
    println!(
        "iterate (validate + decode every record): {:.2} us per batch, {:.1} M records/s",
        iterate_time.as_secs_f64() * 1e6,
        RECORDS_PER_BATCH as f64 / iterate_time.as_secs_f64() / 1e6
    );

    let section = &batch[freshet_records::BATCH_HEADER_LEN..];
    println!("codecs on the {}-byte records section:", section.len());
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        bench_codec(codec, section, budget);
    }
}

fn bench_codec(codec: Compression, section: &[u8], budget: Duration) {
    let mut compressed = Vec::new();
    compress(codec, section, &mut compressed).expect("compress");
    let compress_time = time_per_run(budget, || {
        let mut out = Vec::with_capacity(section.len());
        compress(codec, black_box(section), &mut out).expect("compress");
        black_box(out);
    });
    let decompress_time = time_per_run(budget, || {
        black_box(decompress(codec, black_box(&compressed), section.len()).expect("decompress"));
    });
    println!(
        "  {:<6} ratio {:>5.2}  compress {:>7.1} MB/s  decompress {:>7.1} MB/s",
        format!("{codec:?}").to_lowercase(),
        section.len() as f64 / compressed.len() as f64,
        mb_per_s(section.len(), compress_time),
        mb_per_s(section.len(), decompress_time)
    );
}
