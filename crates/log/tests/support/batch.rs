//! Test-only RecordBatch v2 builder (uncompressed, no keys, no headers), used by the log's
//! tests, the crash writer, the golden-file generator and the benchmark. Included with
//! `#[path]` so that every target shares one copy.
#![allow(dead_code)]

/// Builds a valid batch holding one record per value; record `i` has timestamp
/// `base_timestamp + i * timestamp_step_ms`. Base offset 0 and leader epoch -1, as a producer
/// sends them.
pub fn build_batch(values: &[&[u8]], base_timestamp: i64, timestamp_step_ms: i64) -> Vec<u8> {
    build_batch_with_producer(values, base_timestamp, timestamp_step_ms, (-1, -1, -1))
}

/// [`build_batch`] with `(producer_id, producer_epoch, base_sequence)` set (tests use them to
/// tag a batch with who wrote it).
pub fn build_batch_with_producer(
    values: &[&[u8]],
    base_timestamp: i64,
    timestamp_step_ms: i64,
    (producer_id, producer_epoch, base_sequence): (i64, i16, i32),
) -> Vec<u8> {
    assert!(!values.is_empty(), "a batch holds at least one record");
    let mut records = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let mut body = vec![0u8]; // record attributes
        put_varlong(&mut body, i as i64 * timestamp_step_ms);
        put_varlong(&mut body, i as i64);
        put_varlong(&mut body, -1); // null key
        put_varlong(&mut body, value.len() as i64);
        body.extend_from_slice(value);
        put_varlong(&mut body, 0); // no headers
        put_varlong(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let n = values.len() as i32;
    let max_timestamp = base_timestamp + i64::from(n - 1) * timestamp_step_ms.max(0);
    let mut out = Vec::with_capacity(61 + records.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    out.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes()); // batch length
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    out.extend_from_slice(&0i16.to_be_bytes()); // attributes
    out.extend_from_slice(&(n - 1).to_be_bytes()); // last offset delta
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    out.extend_from_slice(&max_timestamp.to_be_bytes());
    out.extend_from_slice(&producer_id.to_be_bytes());
    out.extend_from_slice(&producer_epoch.to_be_bytes());
    out.extend_from_slice(&base_sequence.to_be_bytes());
    out.extend_from_slice(&n.to_be_bytes()); // record count
    out.extend_from_slice(&records);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// A batch of `record_count` records whose values together take about `payload_bytes`,
/// filled from `seed` so that content is reproducible.
pub fn filled_batch(
    record_count: usize,
    payload_bytes: usize,
    seed: u64,
    base_timestamp: i64,
) -> Vec<u8> {
    filled_batch_with_producer(
        record_count,
        payload_bytes,
        seed,
        base_timestamp,
        (-1, -1, -1),
    )
}

/// [`filled_batch`] tagged with producer fields.
pub fn filled_batch_with_producer(
    record_count: usize,
    payload_bytes: usize,
    seed: u64,
    base_timestamp: i64,
    producer: (i64, i16, i32),
) -> Vec<u8> {
    let per_record = (payload_bytes / record_count.max(1)).max(1);
    let mut state = seed | 1;
    let values: Vec<Vec<u8>> = (0..record_count.max(1))
        .map(|_| {
            (0..per_record)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        })
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    build_batch_with_producer(&refs, base_timestamp, 1, producer)
}

/// `batch` as the log stores it: base offset and leader epoch assigned.
pub fn with_offset(batch: &[u8], base_offset: i64, leader_epoch: i32) -> Vec<u8> {
    let mut b = batch.to_vec();
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
    b[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    b
}

/// Number of records (`lastOffsetDelta + 1`) of a batch built here.
pub fn record_count(batch: &[u8]) -> i64 {
    i64::from(i32::from_be_bytes(batch[57..61].try_into().unwrap()))
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}
