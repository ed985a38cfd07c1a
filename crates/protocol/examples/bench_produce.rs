//! Encode and decode rates of a ProduceRequest carrying one RecordBatch v2 of 1,000 records
//! with 100-byte values (the records field is opaque bytes here, so this measures the protocol
//! layer: headers, lengths, the copy of the batch on encode and the zero-copy slice on decode).
//!
//! Run: `cargo run --release -p freshet-protocol --example bench_produce`

use bytes::{BufMut, Bytes, BytesMut};
use freshet_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use freshet_protocol::messages::ProduceRequest;
use freshet_protocol::{Decode, Encode};
use std::hint::black_box;
use std::time::{Duration, Instant};

const RECORDS: usize = 1_000;
const VALUE_BYTES: usize = 100;

fn put_varint(buf: &mut BytesMut, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// CRC-32C (Castagnoli), bit by bit: only run once, to make the batch plausible.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A RecordBatch v2 (magic 2, uncompressed) of `RECORDS` records with null keys.
fn record_batch() -> Bytes {
    let mut records = BytesMut::new();
    for i in 0..RECORDS {
        let mut record = BytesMut::new();
        record.put_i8(0); // attributes
        put_varint(&mut record, i as i64); // timestamp delta
        put_varint(&mut record, i as i64); // offset delta
        put_varint(&mut record, -1); // null key
        put_varint(&mut record, VALUE_BYTES as i64);
        record.put_slice(&[b'v'; VALUE_BYTES]);
        put_varint(&mut record, 0); // no headers
        put_varint(&mut records, record.len() as i64);
        records.put_slice(&record);
    }
    // The part the CRC covers: attributes to the end.
    let mut tail = BytesMut::new();
    tail.put_i16(0); // attributes: no compression, create time
    tail.put_i32(RECORDS as i32 - 1); // last offset delta
    tail.put_i64(1_700_000_000_000); // base timestamp
    tail.put_i64(1_700_000_000_000 + RECORDS as i64 - 1); // max timestamp
    tail.put_i64(-1); // producer id
    tail.put_i16(-1); // producer epoch
    tail.put_i32(-1); // base sequence
    tail.put_i32(RECORDS as i32);
    tail.put_slice(&records);
    let mut batch = BytesMut::new();
    batch.put_i64(0); // base offset
    batch.put_i32((4 + 1 + 4 + tail.len()) as i32); // batch length: after this field
    batch.put_i32(-1); // partition leader epoch
    batch.put_i8(2); // magic
    batch.put_u32(crc32c(&tail));
    batch.put_slice(&tail);
    batch.freeze()
}

fn request(batch: Bytes) -> ProduceRequest {
    ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "bench".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Runs `f` repeatedly for about `budget` and returns calls per second.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            f();
        }
        calls += 100;
    }
    calls as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let batch = record_batch();
    let batch_bytes = batch.len();
    let produce = request(batch);
    let budget = Duration::from_secs(2);
    println!("ProduceRequest, 1 partition, RecordBatch v2 of {RECORDS} x {VALUE_BYTES}-byte records ({batch_bytes} bytes)");
    for version in [7i16, 11] {
        let len = produce.encoded_len(version).expect("len");
        let mut buf = BytesMut::with_capacity(len);
        let encodes = rate(budget, || {
            buf.clear();
            produce.encode(&mut buf, version).expect("encode");
            black_box(&buf);
        });
        let encoded = buf.clone().freeze();
        let decodes = rate(budget, || {
            let mut input = encoded.clone();
            black_box(ProduceRequest::decode(&mut input, version).expect("decode"));
        });
        let mib = len as f64 / (1024.0 * 1024.0);
        println!(
            "v{version:<2} {len} bytes  encode {encodes:>10.0} req/s {:>8.0} MiB/s {:>11.0} records/s | decode {decodes:>10.0} req/s {:>8.0} MiB/s {:>11.0} records/s",
            encodes * mib,
            encodes * RECORDS as f64,
            decodes * mib,
            decodes * RECORDS as f64,
        );
    }
}
