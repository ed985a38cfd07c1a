//! build -> validate -> iterate -> equal, for every codec, by example and by property.

use bytes::Bytes;
use freshet_records::{
    records, set_base_offset, set_partition_leader_epoch, validate, BatchBuilder, BatchOptions,
    Compression, NewRecord, Record, TimestampType,
};
use proptest::prelude::*;

const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// An owned record for tests: (timestamp, key, value, headers).
type Owned = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(Vec<u8>, Option<Vec<u8>>)>,
);

fn build(options: BatchOptions, input: &[Owned]) -> Vec<u8> {
    let mut builder = BatchBuilder::new(options);
    for (timestamp_ms, key, value, headers) in input {
        let headers: Vec<(&[u8], Option<&[u8]>)> = headers
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        builder
            .push(&NewRecord {
                timestamp_ms: *timestamp_ms,
                key: key.as_deref(),
                value: value.as_deref(),
                headers: &headers,
            })
            .unwrap();
    }
    builder.build().unwrap()
}

fn decode(batch: Vec<u8>) -> Vec<Record> {
    records(&Bytes::from(batch), 16 << 20)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn assert_same(decoded: &[Record], input: &[Owned], base_offset: i64) {
    assert_eq!(decoded.len(), input.len());
    for (index, (record, (timestamp_ms, key, value, headers))) in
        decoded.iter().zip(input).enumerate()
    {
        assert_eq!(record.offset, base_offset + index as i64);
        assert_eq!(record.timestamp, *timestamp_ms);
        assert_eq!(record.key.as_deref(), key.as_deref());
        assert_eq!(record.value.as_deref(), value.as_deref());
        let got: Vec<(&[u8], Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|h| (&h.key[..], h.value.as_deref()))
            .collect();
        let want: Vec<(&[u8], Option<&[u8]>)> = headers
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        assert_eq!(got, want);
    }
}

fn sample_records() -> Vec<Owned> {
    (0..200)
        .map(|i: i64| {
            let key = (i % 3 != 0).then(|| format!("key-{i}").into_bytes());
            let value = (i % 7 != 0).then(|| vec![(i % 256) as u8; (i as usize * 37) % 900]);
            let headers = vec![(b"h".to_vec(), Some(vec![1])), (b"h".to_vec(), None)];
            (1_000 + (i * 13) % 101, key, value, headers)
        })
        .collect()
}

#[test]
fn every_codec_round_trips_and_header_fields_are_right() {
    let input = sample_records();
    for compression in ALL_CODECS {
        let options = BatchOptions {
            base_offset: 77,
            producer_id: 9,
            producer_epoch: 1,
            base_sequence: 500,
            transactional: true,
            compression,
            ..BatchOptions::default()
        };
        let batch = build(options, &input);
        let header = validate(&batch).unwrap();
        assert_eq!(header.compression(), compression);
        assert_eq!(header.record_count, 200);
        assert_eq!(header.last_offset_delta, 199);
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(header.max_timestamp, 1_100);
        assert!(header.is_transactional() && !header.is_control());
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (9, 1, 500)
        );
        header.check_producer_counts().unwrap();
        assert_same(&decode(batch), &input, 77);
    }
}

#[test]
fn patched_offsets_flow_into_records() {
    let input = sample_records();
    let mut batch = build(
        BatchOptions {
            compression: Compression::Lz4,
            ..BatchOptions::default()
        },
        &input,
    );
    set_base_offset(&mut batch, 1 << 33);
    set_partition_leader_epoch(&mut batch, 4);
    assert_eq!(validate(&batch).unwrap().partition_leader_epoch, 4);
    assert_same(&decode(batch), &input, 1 << 33);
}

#[test]
fn log_append_time_overrides_record_timestamps() {
    let input = sample_records();
    let options = BatchOptions {
        timestamp_type: TimestampType::LogAppendTime,
        log_append_time_ms: Some(99_999),
        ..BatchOptions::default()
    };
    let batch = build(options, &input[..3]);
    assert_eq!(validate(&batch).unwrap().max_timestamp, 99_999);
    assert!(decode(batch).iter().all(|r| r.timestamp == 99_999));
}

#[test]
fn empty_builder_gives_a_valid_empty_batch() {
    let batch = BatchBuilder::new(BatchOptions::default()).build().unwrap();
    let header = validate(&batch).unwrap();
    assert_eq!(header.record_count, 0);
    assert!(header.check_producer_counts().is_err());
    assert!(decode(batch).is_empty());
}

fn bytes_strategy() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300))
}

fn record_strategy() -> impl Strategy<Value = Owned> {
    let header = (
        proptest::collection::vec(any::<u8>(), 0..20),
        bytes_strategy(),
    );
    (
        any::<i64>(),
        bytes_strategy(),
        bytes_strategy(),
        proptest::collection::vec(header, 0..5),
    )
}

fn codec_strategy() -> impl Strategy<Value = Compression> {
    proptest::sample::select(ALL_CODECS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn build_then_iterate_returns_the_input(
        input in proptest::collection::vec(record_strategy(), 0..20),
        compression in codec_strategy(),
        base_offset in 0i64..(1 << 50),
    ) {
        let options = BatchOptions { base_offset, compression, ..BatchOptions::default() };
        let batch = build(options, &input);
        let header = validate(&batch).unwrap();
        prop_assert_eq!(header.record_count as usize, input.len());
        // Like Kafka's builder, the max starts at NO_TIMESTAMP (-1).
        let max = input.iter().map(|r| r.0).fold(-1, i64::max);
        prop_assert_eq!(header.max_timestamp, max);
        assert_same(&decode(batch), &input, base_offset);
    }
}

#[test]
fn explicit_offset_deltas_keep_gaps_like_a_compacted_batch() {
    let mut builder = BatchBuilder::new(BatchOptions {
        base_offset: 10,
        ..BatchOptions::default()
    });
    let record = NewRecord {
        timestamp_ms: 1,
        key: Some(b"k"),
        value: None,
        headers: &[],
    };
    builder.push_with_offset_delta(2, &record).unwrap();
    builder.push_with_offset_delta(7, &record).unwrap();
    assert_eq!(
        builder.push_with_offset_delta(7, &record),
        Err(freshet_records::BuildError::OffsetOrder)
    );
    builder.push(&record).unwrap();
    let batch = builder.build().unwrap();
    let header = validate(&batch).unwrap();
    assert_eq!((header.record_count, header.last_offset_delta), (3, 8));
    assert!(header.check_producer_counts().is_err());
    let offsets: Vec<i64> = decode(batch).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [12, 17, 18]);
}
