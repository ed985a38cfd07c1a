//! Property tests of the snapshot decoder on hostile bytes: it never panics, and whatever it
//! accepts is canonical (re-encoding gives back the same bytes).

use freshet_txn::{ProducerBatch, ProducerStateConfig, ProducerStateTable};
use proptest::prelude::*;

fn sample_snapshot() -> Vec<u8> {
    let mut table = ProducerStateTable::new(ProducerStateConfig::default());
    let mut offset = 0;
    for i in 0..12 {
        let batch = ProducerBatch {
            producer_id: 7 + i64::from(i % 3),
            producer_epoch: (i / 6) as i16,
            base_sequence: i,
            last_offset_delta: 1,
            record_count: 2,
            max_timestamp_ms: 1_000 * i64::from(i),
            is_transactional: i == 11,
            is_control: false,
        };
        table.on_appended(&batch, offset);
        offset += 2;
    }
    table.encode_snapshot(offset)
}

/// Recomputes the CRC (bytes 6..10, over 10..) so that mutations reach the field checks.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() >= 10 {
        let crc = crc32c::crc32c(&bytes[10..]);
        bytes[6..10].copy_from_slice(&crc.to_be_bytes());
    }
}

fn decode_is_canonical(bytes: &[u8]) -> Result<(), TestCaseError> {
    let config = ProducerStateConfig::default();
    if let Ok(decoded) = ProducerStateTable::decode_snapshot(config, bytes) {
        prop_assert_eq!(
            decoded.table.encode_snapshot(decoded.end_offset),
            bytes.to_vec()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        decode_is_canonical(&bytes)?;
    }

    #[test]
    fn resealed_mutations_are_refused_or_canonical(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = sample_snapshot();
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        reseal(&mut bytes);
        decode_is_canonical(&bytes)?;
    }
}

#[test]
fn the_sample_decodes() {
    let bytes = sample_snapshot();
    let decoded =
        ProducerStateTable::decode_snapshot(ProducerStateConfig::default(), &bytes).unwrap();
    assert_eq!(decoded.table.len(), 3);
    assert_eq!(decoded.end_offset, 24);
    assert_eq!(decoded.table.encode_snapshot(24), bytes);
}
