//! Hostile input: truncation, flipped bits, lying counts and lengths, decompression bombs.
//! Each must give an error (with the Kafka error code the broker will send), never a panic
//! or an allocation beyond what the input can hold.

use bytes::Bytes;
use freshet_records::{
    compress, decompress, kafka_error, records, scan_records, split_batches, validate,
    BatchBuilder, BatchError, BatchHeader, BatchOptions, CodecError, Compression, NewRecord,
    RecordError, BATCH_HEADER_LEN,
};

const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn batch_of(compression: Compression, values: &[&[u8]]) -> Vec<u8> {
    let mut builder = BatchBuilder::new(BatchOptions {
        compression,
        ..BatchOptions::default()
    });
    for value in values {
        let headers: [(&[u8], Option<&[u8]>); 1] = [(b"k", Some(b"v"))];
        builder
            .push(&NewRecord {
                timestamp_ms: 5,
                key: Some(b"key"),
                value: Some(value),
                headers: &headers,
            })
            .unwrap();
    }
    builder.build().unwrap()
}

/// Replaces the records section (uncompressed) and fixes length and CRC, so the header is
/// valid and only the records lie.
fn with_section(record_count: i32, section: &[u8]) -> Bytes {
    let mut batch = batch_of(Compression::None, &[]);
    batch.truncate(BATCH_HEADER_LEN);
    batch.extend_from_slice(section);
    let batch_length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    batch[57..61].copy_from_slice(&record_count.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(batch)
}

fn drain(batch: &Bytes) -> Result<usize, RecordError> {
    records(batch, 1 << 20)?.try_fold(0, |n, r| r.map(|_| n + 1))
}

#[test]
fn every_truncation_of_every_codec_is_an_error() {
    for codec in ALL_CODECS {
        let batch = batch_of(codec, &[b"hello", &[7u8; 3000], b"world"]);
        for cut in 0..batch.len() {
            let err = validate(&batch[..cut]).unwrap_err();
            assert!(
                matches!(err, BatchError::Truncated { .. }),
                "{codec:?} cut {cut}: {err:?}"
            );
            assert_eq!(err.kafka_error_code(), kafka_error::CORRUPT_MESSAGE);
            assert!(split_batches(&batch[..cut]).any(|item| item.is_err()) || cut == 0);
        }
    }
}

#[test]
fn every_single_bit_flip_in_crc_covered_bytes_is_detected() {
    let batch = batch_of(Compression::Gzip, &[b"hello", b"world"]);
    for index in 21..batch.len() {
        for bit in 0..8 {
            let mut bad = batch.clone();
            bad[index] ^= 1 << bit;
            // A flip in the codec bits may be caught as an unknown codec before the CRC.
            assert!(validate(&bad).is_err(), "byte {index} bit {bit}");
        }
    }
}

#[test]
fn huge_record_count_with_few_bytes_is_missing_records() {
    let one = batch_of(Compression::None, &[b"x"]);
    let section = &one[BATCH_HEADER_LEN..];
    let err = drain(&with_section(i32::MAX, section)).unwrap_err();
    assert_eq!(
        err,
        RecordError::MissingRecords {
            expected: i32::MAX,
            found: 1
        }
    );
    assert_eq!(err.kafka_error_code(), kafka_error::INVALID_RECORD);
}

#[test]
fn extra_bytes_after_declared_records_are_rejected() {
    let two = batch_of(Compression::None, &[b"x", b"y"]);
    let err = drain(&with_section(1, &two[BATCH_HEADER_LEN..])).unwrap_err();
    assert!(matches!(err, RecordError::TrailingBytes { .. }), "{err:?}");
}

#[test]
fn negative_record_count_yields_nothing_but_the_trailing_error() {
    let one = batch_of(Compression::None, &[b"x"]);
    let err = drain(&with_section(-5, &one[BATCH_HEADER_LEN..])).unwrap_err();
    assert!(matches!(err, RecordError::TrailingBytes { .. }), "{err:?}");
}

#[test]
fn lying_lengths_inside_records_are_malformed() {
    let cases: [&[u8]; 8] = [
        // record length larger than what follows
        &[0x7e, 0, 0, 0],
        // negative record length (-1)
        &[0x01],
        // key length 1,000,000 in a 6-byte record
        &[0x0c, 0, 0, 0, 0x80, 0x89, 0x7a],
        // header count 2^30 in a small record
        &[
            0x14, 0, 0, 0, 0x01, 0x01, 0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0, 0, 0,
        ],
        // null header key (-1)
        &[0x0c, 0, 0, 0, 0x01, 0x01, 0x02, 0x01, 0x01],
        // value length -2 (only -1 means null)
        &[0x0a, 0, 0, 0, 0x01, 0x03, 0x00],
        // record length says 3 but the fields need more
        &[0x06, 0, 0, 0, 0x01, 0x01, 0x00],
        // overlong varint in the timestamp delta
        &[
            0x18, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0,
        ],
    ];
    for section in cases {
        let err = drain(&with_section(1, section)).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::Malformed {
                    record_index: 0,
                    ..
                }
            ),
            "{section:?}: {err:?}"
        );
        assert_eq!(err.kafka_error_code(), kafka_error::INVALID_RECORD);
    }
}

#[test]
fn record_length_shorter_than_its_fields_is_malformed() {
    // A correct record followed by a claim that it is one byte shorter.
    let one = batch_of(Compression::None, &[b"abc"]);
    let mut section = one[BATCH_HEADER_LEN..].to_vec();
    section[0] -= 2; // zigzag: length - 1
    let err = drain(&with_section(1, &section)).unwrap_err();
    assert!(matches!(err, RecordError::Malformed { .. }), "{err:?}");
}

/// 1 MiB of zeros shrinks at least 16-fold with every codec (thousands-fold with most):
/// a decoder without a limit would hand back 16 times what the producer sent.
#[test]
fn decompression_bombs_stop_at_the_limit() {
    let zeros = vec![0u8; 1 << 20];
    let limit_bytes = 64 << 10;
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut bomb = Vec::new();
        compress(codec, &zeros, &mut bomb).unwrap();
        assert!(
            bomb.len() < zeros.len() / 16,
            "{codec:?} bomb is {} bytes",
            bomb.len()
        );
        let err = decompress(codec, &bomb, limit_bytes).unwrap_err();
        assert_eq!(
            err,
            CodecError::TooLarge {
                max_decompressed_bytes: limit_bytes
            },
            "{codec:?}"
        );
    }
}

#[test]
fn a_bomb_inside_a_valid_batch_is_a_codec_error() {
    let big = vec![0u8; 4 << 20];
    let batch = Bytes::from(batch_of(Compression::Zstd, &[&big]));
    let err = records(&batch, 1 << 20).unwrap_err();
    assert!(
        matches!(err, RecordError::Codec(CodecError::TooLarge { .. })),
        "{err:?}"
    );
    assert_eq!(err.kafka_error_code(), kafka_error::MESSAGE_TOO_LARGE);
}

#[test]
fn snappy_block_declaring_a_huge_length_is_refused_before_allocating() {
    // A raw snappy block whose preamble claims 2^31 bytes of output.
    let claim: &[u8] = &[0x80, 0x80, 0x80, 0x80, 0x08, 0x00];
    let err = decompress(Compression::Snappy, claim, 1 << 20).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::TooLarge { .. } | CodecError::Corrupt { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn garbage_compressed_section_is_a_codec_error() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut batch = with_section(1, &[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]).to_vec();
        batch[22] = codec.id();
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        let err = drain(&Bytes::from(batch)).unwrap_err();
        // Garbage read as a raw snappy block may claim a length past the limit instead.
        assert!(matches!(err, RecordError::Codec(_)), "{codec:?}: {err:?}");
        if matches!(err, RecordError::Codec(CodecError::Corrupt { .. })) {
            assert_eq!(err.kafka_error_code(), kafka_error::INVALID_RECORD);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    // A cheap deterministic generator (xorshift) so the test needs no extra dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 200) as usize;
        let noise: Vec<u8> = (0..len).map(|i| (state >> (i % 56)) as u8).collect();
        let _ = BatchHeader::parse(&noise);
        let _ = split_batches(&noise).count();
        let _ = drain(&with_section((state % 5) as i32, &noise));
        assert_scan_agrees(&with_section((state % 5) as i32, &noise));
    }
}

/// The produce-time check walks records without building them; it must accept exactly what
/// the iterator accepts and find the same timestamps.
fn assert_scan_agrees(batch: &Bytes) {
    let header = BatchHeader::parse(batch).unwrap();
    let body = &batch[BATCH_HEADER_LEN..];
    let iterated: Result<Vec<i64>, RecordError> = records(batch, 1 << 20)
        .unwrap()
        .map(|r| r.map(|r| r.timestamp))
        .collect();
    match (scan_records(&header, body), iterated) {
        (Ok(scanned), Ok(timestamps)) if !timestamps.is_empty() => {
            assert_eq!(scanned.min_timestamp, *timestamps.iter().min().unwrap());
            assert_eq!(scanned.max_timestamp, *timestamps.iter().max().unwrap());
        }
        (Ok(_), Ok(_)) => assert!(header.record_count <= 0),
        (Err(scanned), Err(iterated)) => assert_eq!(scanned, iterated),
        (scanned, iterated) => panic!("scan {scanned:?} but iteration {iterated:?}"),
    }
}

#[test]
fn scanning_records_accepts_exactly_what_iteration_accepts() {
    let good = Bytes::from(batch_of(
        Compression::None,
        &[b"hello", b"", &[7u8; 300], b"x"],
    ));
    let section = good[BATCH_HEADER_LEN..].to_vec();
    assert_scan_agrees(&good);
    for at in 0..section.len() {
        for replacement in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut mutated = section.clone();
            mutated[at] = replacement;
            for count in [3, 4, 5] {
                assert_scan_agrees(&with_section(count, &mutated));
            }
        }
        assert_scan_agrees(&with_section(4, &section[..at]));
    }
    // One record whose only header has a null key (-1), every length otherwise consistent:
    // Kafka refuses it, so both must.
    let null_header_key = with_section(1, &[0x10, 0, 0, 0, 0x01, 0x01, 0x02, 0x01, 0x01]);
    let header = BatchHeader::parse(&null_header_key).unwrap();
    assert!(scan_records(&header, &null_header_key[BATCH_HEADER_LEN..]).is_err());
    assert_scan_agrees(&null_header_key);
}

#[test]
fn scanning_finds_the_timestamp_range_of_the_records() {
    let mut builder = BatchBuilder::new(BatchOptions::default());
    for timestamp_ms in [1_000, 900, 5_000, 1_200] {
        builder
            .push(&NewRecord {
                timestamp_ms,
                key: None,
                value: Some(b"v"),
                headers: &[],
            })
            .unwrap();
    }
    let batch = builder.build().unwrap();
    let header = BatchHeader::parse(&batch).unwrap();
    let scanned = scan_records(&header, &batch[BATCH_HEADER_LEN..]).unwrap();
    assert_eq!((scanned.min_timestamp, scanned.max_timestamp), (900, 5_000));
}
