//! Prints the cost of the producer-state steps on the produce path and at restart.
//!
//! `cargo run --release -p freshet-txn --example txn_bench`

use std::hint::black_box;
use std::time::Instant;

use freshet_txn::{AppendDecision, ProducerBatch, ProducerStateConfig, ProducerStateTable};

fn batch(producer_id: i64, base_sequence: i32) -> ProducerBatch {
    ProducerBatch {
        producer_id,
        producer_epoch: 0,
        base_sequence,
        last_offset_delta: 9,
        record_count: 10,
        max_timestamp_ms: 1_700_000_000_000,
        is_transactional: false,
        is_control: false,
    }
}

/// Appends `batches` batches round-robin over `producers` producers through check then
/// record; returns the table and the log it wrote.
fn produce(producers: i64, batches: i64) -> (ProducerStateTable, Vec<(ProducerBatch, i64)>, f64) {
    let mut table = ProducerStateTable::new(ProducerStateConfig::default());
    let mut log = Vec::with_capacity(batches as usize);
    let mut next_sequence = vec![0i32; producers as usize];
    let started = Instant::now();
    for i in 0..batches {
        let producer = i % producers;
        let sent = batch(producer, next_sequence[producer as usize]);
        let decision = table.check_append(black_box(&sent));
        assert_eq!(decision, Ok(AppendDecision::Append));
        table.on_appended(&sent, i * 10);
        next_sequence[producer as usize] += 10;
        log.push((sent, i * 10));
    }
    let ns_per_batch = started.elapsed().as_nanos() as f64 / batches as f64;
    (table, log, ns_per_batch)
}

fn main() {
    let batches = 2_000_000;
    for producers in [1, 1_000, 100_000] {
        let (table, log, append_ns) = produce(producers, batches);
        let started = Instant::now();
        let mut duplicates = 0;
        for (sent, _) in log.iter().rev().take(100_000) {
            if let Ok(AppendDecision::Duplicate(_)) = table.check_append(black_box(sent)) {
                duplicates += 1;
            }
        }
        let duplicate_ns = started.elapsed().as_nanos() as f64 / 100_000.0;
        let started = Instant::now();
        let replayed = ProducerStateTable::from_replay(table.config(), log.iter().copied());
        let replay_ns = started.elapsed().as_nanos() as f64 / batches as f64;
        assert_eq!(replayed, table);
        let started = Instant::now();
        let snapshot = table.encode_snapshot(batches * 10);
        let encode_ms = started.elapsed().as_secs_f64() * 1e3;
        let started = Instant::now();
        let decoded = ProducerStateTable::decode_snapshot(table.config(), &snapshot).unwrap();
        let decode_ms = started.elapsed().as_secs_f64() * 1e3;
        assert_eq!(decoded.table, table);
        println!(
            "producers {producers:>7}: check+record {append_ns:6.1} ns/batch, duplicate check \
             {duplicate_ns:6.1} ns ({duplicates} of last 100000 found), replay {replay_ns:6.1} \
             ns/batch, snapshot {} bytes, encode {encode_ms:.2} ms, decode {decode_ms:.2} ms",
            snapshot.len()
        );
    }
}
