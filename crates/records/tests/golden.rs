//! Decodes batches written by the official Kafka Java client (kafka-clients 4.1.0,
//! `MemoryRecordsBuilder`) and checks every field of every record. The files and their
//! generator live in tests/golden/ (regenerate with tests/golden/gen/generate.sh).

use bytes::Bytes;
use freshet_records::control::{
    parse_control_key, parse_end_txn_coordinator_epoch, ControlRecordType,
};
use freshet_records::{
    records, split_batches, validate, Compression, Record, TimestampType, BATCH_HEADER_LEN,
};

const BASE_OFFSET: i64 = 1000;
const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;
const MAX_DECOMPRESSED_BYTES: usize = 1 << 20;

fn golden(name: &str) -> Bytes {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// The generator's bigValue(): `(i % 251) ^ (i / 1000)` as a byte, 150,000 bytes.
fn big_value() -> Vec<u8> {
    (0..150_000usize)
        .map(|i| ((i % 251) ^ (i / 1000)) as u8)
        .collect()
}

type Expected = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(&'static str, Option<&'static [u8]>)>,
);

/// Mirrors GoldenBatches.expectedRecords() in the Java generator.
fn golden_records() -> Vec<Expected> {
    let some = |s: &str| Some(s.as_bytes().to_vec());
    vec![
        (
            BASE_TIMESTAMP_MS,
            some("key-0"),
            some("value-0"),
            vec![
                ("dup", Some(b"first".as_slice())),
                ("dup", Some(b"second".as_slice())),
                ("null-value", None),
                ("empty", Some(b"".as_slice())),
            ],
        ),
        (
            BASE_TIMESTAMP_MS + 50,
            None,
            some("value with a null key"),
            vec![],
        ),
        (
            BASE_TIMESTAMP_MS + 20,
            some("tombstone"),
            None,
            vec![("ünïcödé", Some("✓".as_bytes()))],
        ),
        (
            BASE_TIMESTAMP_MS + 30,
            some("big"),
            Some(big_value()),
            vec![],
        ),
        (BASE_TIMESTAMP_MS - 10, Some(vec![]), Some(vec![]), vec![]),
    ]
}

fn check_records(actual: &[Record], base_offset: i64) {
    let expected = golden_records();
    assert_eq!(actual.len(), expected.len());
    for (index, (record, (timestamp, key, value, headers))) in
        actual.iter().zip(expected).enumerate()
    {
        assert_eq!(record.offset_delta, index as i32);
        assert_eq!(record.offset, base_offset + index as i64);
        assert_eq!(record.timestamp, timestamp, "record {index}");
        assert_eq!(record.timestamp_delta, timestamp - BASE_TIMESTAMP_MS);
        assert_eq!(record.attributes, 0);
        assert_eq!(record.key.as_deref(), key.as_deref(), "record {index} key");
        assert_eq!(
            record.value.as_deref(),
            value.as_deref(),
            "record {index} value"
        );
        let actual_headers: Vec<_> = record
            .headers
            .iter()
            .map(|h| (std::str::from_utf8(&h.key).unwrap(), h.value.as_deref()))
            .collect();
        assert_eq!(actual_headers, headers, "record {index} headers");
    }
}

fn check_file(name: &str, compression: Compression, transactional: bool) {
    let batch = golden(name);
    let header = validate(&batch).unwrap();
    assert_eq!(header.compression(), compression, "{name}");
    assert_eq!(header.base_offset, BASE_OFFSET);
    assert_eq!(header.partition_leader_epoch, 5);
    assert_eq!(header.record_count, 5);
    assert_eq!(header.last_offset_delta, 4);
    assert_eq!(header.last_offset(), BASE_OFFSET + 4);
    assert_eq!(header.base_timestamp, BASE_TIMESTAMP_MS);
    assert_eq!(header.max_timestamp, BASE_TIMESTAMP_MS + 50);
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence
        ),
        (4242, 3, 17)
    );
    assert_eq!(header.is_transactional(), transactional);
    assert!(!header.is_control());
    assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
    assert_eq!(header.total_len(), batch.len());
    header.check_producer_counts().unwrap();
    let decoded: Vec<Record> = records(&batch, MAX_DECOMPRESSED_BYTES)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    check_records(&decoded, BASE_OFFSET);
}

#[test]
fn java_uncompressed() {
    check_file("none.bin", Compression::None, false);
}

#[test]
fn java_gzip() {
    check_file("gzip.bin", Compression::Gzip, false);
}

#[test]
fn java_snappy_xerial() {
    let batch = golden("snappy.bin");
    // snappy-java's stream header: the proof that this file uses the xerial framing.
    assert_eq!(
        &batch[BATCH_HEADER_LEN..BATCH_HEADER_LEN + 8],
        b"\x82SNAPPY\0"
    );
    check_file("snappy.bin", Compression::Snappy, false);
}

#[test]
fn java_lz4() {
    check_file("lz4.bin", Compression::Lz4, false);
}

#[test]
fn java_zstd() {
    check_file("zstd.bin", Compression::Zstd, false);
}

#[test]
fn java_zstd_transactional() {
    check_file("zstd-transactional.bin", Compression::Zstd, true);
}

#[test]
fn uncompressed_java_records_are_zero_copy_slices_of_the_batch() {
    let batch = golden("none.bin");
    let range = batch.as_ptr() as usize..batch.as_ptr() as usize + batch.len();
    let mut checked = 0;
    for record in records(&batch, MAX_DECOMPRESSED_BYTES).unwrap() {
        // Empty slices need not point into the buffer; every other value must.
        if let Some(value) = record.unwrap().value.filter(|v| !v.is_empty()) {
            assert!(range.contains(&(value.as_ptr() as usize)));
            checked += 1;
        }
    }
    assert_eq!(checked, 3);
}

#[test]
fn java_commit_marker() {
    let batch = golden("control-commit.bin");
    let header = validate(&batch).unwrap();
    assert!(header.is_control() && header.is_transactional());
    assert_eq!(
        (header.base_offset, header.producer_id, header.base_sequence),
        (2000, 4242, -1)
    );
    let all: Vec<Record> = records(&batch, 1024)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 1);
    let key = all[0].key.as_deref().unwrap();
    assert_eq!(parse_control_key(key), Some(ControlRecordType::Commit));
    assert_eq!(
        parse_end_txn_coordinator_epoch(all[0].value.as_deref().unwrap()),
        Some(77)
    );
}

#[test]
fn our_marker_batch_is_byte_identical_to_javas() {
    use freshet_records::control::{end_txn_marker_batch, EndTxnMarker};
    let ours = end_txn_marker_batch(&EndTxnMarker {
        commit: true,
        coordinator_epoch: 77,
        producer_id: 4242,
        producer_epoch: 3,
        base_offset: 2000,
        partition_leader_epoch: 5,
        timestamp_ms: BASE_TIMESTAMP_MS,
    })
    .unwrap();
    assert_eq!(ours, golden("control-commit.bin").to_vec());
}

fn build_golden(compression: Compression) -> Vec<u8> {
    use freshet_records::{BatchBuilder, BatchOptions, NewRecord};
    let mut builder = BatchBuilder::new(BatchOptions {
        base_offset: BASE_OFFSET,
        partition_leader_epoch: 5,
        producer_id: 4242,
        producer_epoch: 3,
        base_sequence: 17,
        compression,
        ..BatchOptions::default()
    });
    for (timestamp_ms, key, value, headers) in golden_records() {
        let headers: Vec<(&[u8], Option<&[u8]>)> =
            headers.iter().map(|(k, v)| (k.as_bytes(), *v)).collect();
        builder
            .push(&NewRecord {
                timestamp_ms,
                key: key.as_deref(),
                value: value.as_deref(),
                headers: &headers,
            })
            .unwrap();
    }
    builder.build().unwrap()
}

#[test]
fn our_uncompressed_batch_is_byte_identical_to_javas() {
    assert_eq!(build_golden(Compression::None), golden("none.bin").to_vec());
}

/// Writes the golden records built by this crate, one file per codec, into the folder named
/// by `FRESHET_RECORDS_OUT`, for tests/golden/gen/verify-ours.sh to decode with Java.
#[test]
#[ignore = "run by tests/golden/gen/verify-ours.sh, which then reads the files with Java"]
fn write_batches_for_java() {
    let out = std::env::var("FRESHET_RECORDS_OUT").expect("FRESHET_RECORDS_OUT");
    for codec in ALL_CODECS {
        let path = format!("{out}/ours-{codec:?}.bin");
        std::fs::write(&path, build_golden(codec)).unwrap();
    }
}

const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

#[test]
fn split_walks_all_golden_files_concatenated() {
    let names = [
        "none.bin",
        "gzip.bin",
        "snappy.bin",
        "lz4.bin",
        "zstd.bin",
        "control-commit.bin",
    ];
    let mut all = Vec::new();
    let mut starts = Vec::new();
    for name in names {
        starts.push(all.len());
        all.extend_from_slice(&golden(name));
    }
    let found: Vec<usize> = split_batches(&all).map(|item| item.unwrap().0).collect();
    assert_eq!(found, starts);
}

/// Batches written by librdkafka 2.16 (confluent-kafka), captured by
/// tests/golden/gen/librdkafka_capture.py from a fake broker. Same records as the Java files.
fn check_librdkafka(codec_name: &str, compression: Compression) {
    let batch = golden(&format!("librdkafka-{codec_name}.bin"));
    let header = validate(&batch).unwrap();
    assert_eq!(header.compression(), compression);
    assert_eq!((header.record_count, header.last_offset_delta), (5, 4));
    assert_eq!(header.base_timestamp, BASE_TIMESTAMP_MS);
    assert_eq!(header.max_timestamp, BASE_TIMESTAMP_MS + 50);
    // Not idempotent: no producer id, epoch or sequence.
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence
        ),
        (-1, -1, -1)
    );
    let decoded: Vec<Record> = records(&batch, MAX_DECOMPRESSED_BYTES)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    check_records(&decoded, header.base_offset);
}

#[test]
fn librdkafka_uncompressed() {
    check_librdkafka("none", Compression::None);
}

#[test]
fn librdkafka_gzip() {
    check_librdkafka("gzip", Compression::Gzip);
}

#[test]
fn librdkafka_snappy_is_a_raw_block() {
    let batch = golden("librdkafka-snappy.bin");
    // librdkafka writes one bare snappy block, not the xerial framing Java writes.
    assert_ne!(
        &batch[BATCH_HEADER_LEN..BATCH_HEADER_LEN + 8],
        b"\x82SNAPPY\0"
    );
    check_librdkafka("snappy", Compression::Snappy);
}

#[test]
fn librdkafka_lz4() {
    check_librdkafka("lz4", Compression::Lz4);
}

#[test]
fn librdkafka_zstd() {
    check_librdkafka("zstd", Compression::Zstd);
}
