//! Exact-output tests of the producer state rules and the snapshot.

use crate::*;

const PID: i64 = 4000;

/// A non-transactional data batch of `records` records.
fn batch(producer_epoch: i16, base_sequence: i32, records: i32) -> ProducerBatch {
    ProducerBatch {
        producer_id: PID,
        producer_epoch,
        base_sequence,
        last_offset_delta: records - 1,
        record_count: records,
        max_timestamp_ms: 1_000 + i64::from(base_sequence),
        is_transactional: false,
        is_control: false,
    }
}

fn table() -> ProducerStateTable {
    ProducerStateTable::new(ProducerStateConfig::default())
}

/// Checks then records `batch` at `base_offset`, as the broker's produce path does.
fn append(table: &mut ProducerStateTable, batch: ProducerBatch, base_offset: i64) {
    assert_eq!(table.check_append(&batch), Ok(AppendDecision::Append));
    table.on_appended(&batch, base_offset);
}

fn code(result: Result<AppendDecision, ProducerError>) -> i16 {
    result.unwrap_err().kafka_error_code()
}

#[test]
fn batches_without_producer_id_always_append() {
    let mut table = table();
    let plain = ProducerBatch {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        ..batch(0, 0, 3)
    };
    assert_eq!(table.check_append(&plain), Ok(AppendDecision::Append));
    table.on_appended(&plain, 0);
    table.on_appended(&plain, 3);
    assert!(table.is_empty());
}

#[test]
fn first_batch_is_recorded_with_its_offsets() {
    let mut table = table();
    append(&mut table, batch(0, 0, 3), 10);
    let entry = table.entry(PID).unwrap();
    assert_eq!(entry.producer_epoch(), 0);
    assert_eq!(entry.last_sequence(), 2);
    assert_eq!(entry.last_timestamp_ms(), 1_000);
    assert_eq!(
        entry.batches().copied().collect::<Vec<_>>(),
        vec![BatchMetadata {
            first_sequence: 0,
            last_sequence: 2,
            base_offset: 10,
            last_offset: 12,
            max_timestamp_ms: 1_000,
        }]
    );
}

#[test]
fn duplicate_of_any_of_the_last_five_returns_the_original_offsets() {
    let mut table = table();
    // Six batches of two records at offsets 100, 102, ..., 110 (sequences 0-1, ..., 10-11).
    for i in 0..6 {
        append(&mut table, batch(0, 2 * i, 2), 100 + 2 * i64::from(i));
    }
    for i in 1..6 {
        let expected = BatchMetadata {
            first_sequence: 2 * i,
            last_sequence: 2 * i + 1,
            base_offset: 100 + 2 * i64::from(i),
            last_offset: 101 + 2 * i64::from(i),
            max_timestamp_ms: 1_000 + i64::from(2 * i),
        };
        assert_eq!(
            table.check_append(&batch(0, 2 * i, 2)),
            Ok(AppendDecision::Duplicate(expected))
        );
    }
    // The first batch fell out of the window: its retry is out of order, not a duplicate.
    assert_eq!(
        table.check_append(&batch(0, 0, 2)),
        Err(ProducerError::OutOfOrderSequence {
            producer_id: PID,
            base_sequence: 0,
            last_sequence: 11
        })
    );
    assert_eq!(table.entry(PID).unwrap().batches().len(), 5);
}

#[test]
fn retry_with_a_different_range_is_not_a_duplicate() {
    let mut table = table();
    append(&mut table, batch(0, 0, 4), 0);
    assert_eq!(code(table.check_append(&batch(0, 0, 2))), 45);
}

#[test]
fn duplicate_needs_the_same_epoch() {
    let mut table = table();
    append(&mut table, batch(3, 0, 1), 0);
    // Same sequence range at a newer epoch is a new batch (new epochs start at 0).
    assert_eq!(
        table.check_append(&batch(4, 0, 1)),
        Ok(AppendDecision::Append)
    );
}

#[test]
fn gap_is_out_of_order_sequence() {
    let mut table = table();
    append(&mut table, batch(0, 0, 5), 0);
    let error = table.check_append(&batch(0, 6, 1)).unwrap_err();
    assert_eq!(
        error,
        ProducerError::OutOfOrderSequence {
            producer_id: PID,
            base_sequence: 6,
            last_sequence: 4
        }
    );
    assert_eq!(error.kafka_error_code(), 45);
    assert_eq!(
        table.check_append(&batch(0, 5, 1)),
        Ok(AppendDecision::Append)
    );
}

#[test]
fn older_epoch_is_fenced_with_invalid_producer_epoch() {
    let mut table = table();
    append(&mut table, batch(5, 0, 1), 0);
    let error = table.check_append(&batch(4, 1, 1)).unwrap_err();
    assert_eq!(
        error,
        ProducerError::InvalidProducerEpoch {
            producer_id: PID,
            producer_epoch: 4,
            current_epoch: 5
        }
    );
    assert_eq!(error.kafka_error_code(), 47);
}

#[test]
fn epoch_bump_must_restart_at_sequence_zero() {
    let mut table = table();
    append(&mut table, batch(0, 0, 3), 0);
    assert_eq!(
        table.check_append(&batch(1, 3, 1)),
        Err(ProducerError::NewEpochNotAtSequenceZero {
            producer_id: PID,
            producer_epoch: 1,
            base_sequence: 3
        })
    );
    append(&mut table, batch(1, 0, 2), 3);
    let entry = table.entry(PID).unwrap();
    assert_eq!(entry.producer_epoch(), 1);
    // The old epoch's batches are forgotten.
    assert_eq!(entry.batches().len(), 1);
    assert_eq!(code(table.check_append(&batch(0, 3, 1))), 47);
}

#[test]
fn unknown_producer_may_start_at_any_sequence() {
    // KIP-360: Kafka 2.5+ accepts it (its earlier data may have been deleted).
    let mut table = table();
    append(&mut table, batch(2, 1234, 3), 50);
    assert_eq!(table.entry(PID).unwrap().last_sequence(), 1236);
    assert_eq!(code(table.check_append(&batch(2, 1238, 1))), 45);
    assert_eq!(
        table.check_append(&batch(2, 1237, 1)),
        Ok(AppendDecision::Append)
    );
}

#[test]
fn sequence_wraps_from_max_to_zero() {
    let mut table = table();
    append(&mut table, batch(0, i32::MAX - 1, 2), 0);
    assert_eq!(table.entry(PID).unwrap().last_sequence(), i32::MAX);
    append(&mut table, batch(0, 0, 1), 2);
    // A batch that itself crosses the wrap: sequences MAX-1, MAX, 0, 1.
    let mut other = table.clone();
    let crossing = ProducerBatch {
        producer_id: PID + 1,
        ..batch(0, i32::MAX - 1, 4)
    };
    assert_eq!(crossing.last_sequence(), 1);
    assert_eq!(other.check_append(&crossing), Ok(AppendDecision::Append));
    other.on_appended(&crossing, 10);
    assert_eq!(
        other.check_append(&crossing),
        Ok(AppendDecision::Duplicate(BatchMetadata {
            first_sequence: i32::MAX - 1,
            last_sequence: 1,
            base_offset: 10,
            last_offset: 13,
            max_timestamp_ms: crossing.max_timestamp_ms,
        }))
    );
    assert_eq!(
        other.check_append(&ProducerBatch {
            producer_id: PID + 1,
            ..batch(0, 2, 1)
        }),
        Ok(AppendDecision::Append)
    );
}

#[test]
fn client_control_batches_and_negative_sequences_are_invalid_records() {
    let table = table();
    let control = ProducerBatch {
        is_control: true,
        ..batch(0, 0, 1)
    };
    assert_eq!(
        table.check_append(&control),
        Err(ProducerError::ControlBatchFromClient)
    );
    assert_eq!(code(table.check_append(&batch(0, -1, 1))), 87);
    let negative_delta = ProducerBatch {
        last_offset_delta: -1,
        ..batch(0, 0, 1)
    };
    assert_eq!(code(table.check_append(&negative_delta)), 87);
}

#[test]
fn transactional_batch_without_a_coordinator_is_invalid_txn_state() {
    let table = table();
    let transactional = ProducerBatch {
        is_transactional: true,
        ..batch(0, 0, 1)
    };
    assert_eq!(
        table.check_append(&transactional),
        Err(ProducerError::TransactionNotVerified { producer_id: PID })
    );
    assert_eq!(code(table.check_append(&transactional)), 48);
}

#[test]
fn replayed_transaction_is_tracked_until_its_marker() {
    let transactional = ProducerBatch {
        is_transactional: true,
        ..batch(0, 0, 2)
    };
    let marker = ProducerBatch {
        base_sequence: -1,
        last_offset_delta: 0,
        record_count: 1,
        is_control: true,
        is_transactional: true,
        max_timestamp_ms: 9_000,
        ..batch(0, 0, 1)
    };
    let mut table =
        ProducerStateTable::from_replay(ProducerStateConfig::default(), [(transactional, 20)]);
    assert_eq!(
        table.entry(PID).unwrap().current_txn_first_offset(),
        Some(20)
    );
    // Inside the open transaction, a plain batch is refused and a transactional one goes on.
    assert_eq!(
        table.check_append(&batch(0, 2, 1)),
        Err(ProducerError::NonTransactionalInTransaction { producer_id: PID })
    );
    let next = ProducerBatch {
        is_transactional: true,
        ..batch(0, 2, 1)
    };
    assert_eq!(table.check_append(&next), Ok(AppendDecision::Append));
    table.replay([(next, 22), (marker, 23)]);
    let entry = table.entry(PID).unwrap();
    assert_eq!(entry.current_txn_first_offset(), None);
    assert_eq!(entry.last_timestamp_ms(), 9_000);
    assert_eq!(entry.last_sequence(), 2);
}

#[test]
fn later_batches_of_one_request_see_the_earlier_ones() {
    let mut table = table();
    append(&mut table, batch(0, 0, 2), 0);
    assert_eq!(
        table.check_appends(&[batch(0, 2, 2), batch(0, 4, 1)]),
        Ok(AppendDecision::Append)
    );
    assert_eq!(
        table.check_appends(&[batch(0, 2, 2), batch(0, 5, 1)]),
        Err(ProducerError::OutOfOrderSequence {
            producer_id: PID,
            base_sequence: 5,
            last_sequence: 3
        })
    );
    // Checking changed nothing.
    assert_eq!(table.entry(PID).unwrap().last_sequence(), 1);
}

#[test]
fn replay_equals_live_state() {
    let mut live = table();
    let mut log = Vec::new();
    let mut offset = 0;
    let other = |b: ProducerBatch| ProducerBatch {
        producer_id: PID + 7,
        ..b
    };
    let plain = ProducerBatch {
        producer_id: -1,
        ..batch(0, 0, 4)
    };
    let sends = [
        batch(0, 0, 3),
        other(batch(0, 0, 1)),
        plain,
        batch(0, 3, 2),
        batch(1, 0, 1),
        other(batch(0, 1, 5)),
        batch(1, 1, 1),
    ];
    for send in sends {
        append(&mut live, send, offset);
        log.push((send, offset));
        offset += i64::from(send.last_offset_delta) + 1;
    }
    let replayed = ProducerStateTable::from_replay(ProducerStateConfig::default(), log);
    assert_eq!(replayed, live);
    assert_eq!(replayed.len(), 2);
}

#[test]
fn replay_from_real_headers() {
    let build = |base_sequence: i32, records: i32| {
        let mut builder = freshet_records::BatchBuilder::new(freshet_records::BatchOptions {
            producer_id: PID,
            producer_epoch: 2,
            base_sequence,
            ..freshet_records::BatchOptions::default()
        });
        for i in 0..records {
            let value = [i as u8];
            builder
                .push(&freshet_records::NewRecord {
                    timestamp_ms: 5_000 + i64::from(i),
                    key: None,
                    value: Some(&value),
                    headers: &[],
                })
                .unwrap();
        }
        builder.build().unwrap()
    };
    let bytes = [build(0, 3), build(3, 2)];
    let mut base_offset = 40;
    let mut log = Vec::new();
    for batch_bytes in &bytes {
        let header = freshet_records::validate(batch_bytes).unwrap();
        log.push((ProducerBatch::from_header(&header), base_offset));
        base_offset += i64::from(header.last_offset_delta) + 1;
    }
    let table = ProducerStateTable::from_replay(ProducerStateConfig::default(), log);
    let entry = table.entry(PID).unwrap();
    assert_eq!(entry.producer_epoch(), 2);
    assert_eq!(
        entry
            .batches()
            .map(|b| (
                b.first_sequence,
                b.last_sequence,
                b.base_offset,
                b.last_offset
            ))
            .collect::<Vec<_>>(),
        vec![(0, 2, 40, 42), (3, 4, 43, 44)]
    );
    assert_eq!(entry.last_timestamp_ms(), 5_001);
}

#[test]
fn replay_accepts_what_a_client_could_not_send() {
    // The log is the truth: an epoch going backwards is applied (Kafka only logs it), and
    // headers that cannot be a client's batch are skipped, never a panic.
    let mut table = table();
    table.replay([
        (batch(5, 0, 1), 0),
        (batch(3, 7, 1), 1),
        (batch(3, -4, 1), 2),
        (
            ProducerBatch {
                last_offset_delta: i32::MIN,
                ..batch(3, 0, 1)
            },
            3,
        ),
        (batch(3, 8, 1), -9),
        (batch(3, 8, 1), i64::MAX),
    ]);
    let entry = table.entry(PID).unwrap();
    assert_eq!(entry.producer_epoch(), 3);
    assert_eq!(
        entry
            .batches()
            .map(|b| (b.first_sequence, b.base_offset))
            .collect::<Vec<_>>(),
        vec![(7, 1), (8, i64::MAX)]
    );
    let decoded = ProducerStateTable::decode_snapshot(table.config(), &table.encode_snapshot(4));
    assert_eq!(decoded.map(|d| d.table), Ok(table));
}

#[test]
fn idle_producers_expire_unless_in_a_transaction() {
    let config = ProducerStateConfig {
        producer_id_expiration_ms: 1_000,
    };
    let mut table = ProducerStateTable::new(config);
    table.on_appended(&batch(0, 0, 1), 0); // max timestamp 1_000
    let in_txn = ProducerBatch {
        producer_id: PID + 1,
        is_transactional: true,
        ..batch(0, 0, 1)
    };
    table.on_appended(&in_txn, 1);
    assert_eq!(table.remove_expired(1_999), 0);
    assert_eq!(table.remove_expired(2_000), 1);
    assert!(table.entry(PID).is_none());
    assert!(table.entry(PID + 1).is_some());
    assert_eq!(table.remove_expired(i64::MIN), 0);
    assert_eq!(table.remove_expired(i64::MAX), 0);
}

fn sample_table() -> ProducerStateTable {
    let mut table = table();
    for i in 0..7 {
        append(&mut table, batch(1, 3 * i, 3), 100 + 3 * i64::from(i));
    }
    let transactional = ProducerBatch {
        producer_id: 9,
        is_transactional: true,
        ..batch(0, 0, 1)
    };
    table.on_appended(&transactional, 500);
    table
}

#[test]
fn snapshot_round_trips() {
    let table = sample_table();
    let bytes = table.encode_snapshot(501);
    // Header 22 + two entries of 31 fixed bytes + 5 + 1 batches of 24 bytes.
    assert_eq!(bytes.len(), 22 + 2 * 31 + 6 * 24);
    let decoded = ProducerStateTable::decode_snapshot(table.config(), &bytes).unwrap();
    assert_eq!(decoded.end_offset, 501);
    assert_eq!(decoded.table, table);
    assert_eq!(decoded.table.encode_snapshot(501), bytes);
}

#[test]
fn snapshot_bytes_are_exact() {
    let mut table = table();
    table.on_appended(&batch(2, 5, 2), 7);
    let bytes = table.encode_snapshot(9);
    let mut expected = Vec::new();
    expected.extend_from_slice(b"FPST");
    expected.extend_from_slice(&[0, 1]);
    let crc_at = expected.len();
    expected.extend_from_slice(&[0; 4]);
    expected.extend_from_slice(&9i64.to_be_bytes()); // end offset
    expected.extend_from_slice(&1u32.to_be_bytes()); // entries
    expected.extend_from_slice(&PID.to_be_bytes());
    expected.extend_from_slice(&2i16.to_be_bytes()); // epoch
    expected.extend_from_slice(&(-1i32).to_be_bytes()); // coordinator epoch
    expected.extend_from_slice(&1_005i64.to_be_bytes()); // last timestamp
    expected.extend_from_slice(&(-1i64).to_be_bytes()); // no transaction
    expected.push(1); // batches
    expected.extend_from_slice(&6i32.to_be_bytes()); // last sequence
    expected.extend_from_slice(&8i64.to_be_bytes()); // last offset
    expected.extend_from_slice(&1i32.to_be_bytes()); // offset delta
    expected.extend_from_slice(&1_005i64.to_be_bytes()); // max timestamp
    let crc = crc32c::crc32c(&expected[crc_at + 4..]);
    expected[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(bytes, expected);
}

#[test]
fn corrupt_snapshots_are_rejected() {
    let config = ProducerStateConfig::default();
    let bytes = sample_table().encode_snapshot(501);
    let decode = |b: &[u8]| ProducerStateTable::decode_snapshot(config, b).map(|_| ());
    // Every single flipped bit is caught (by the CRC, or by the magic and version).
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x10;
        assert!(decode(&flipped).is_err(), "bit flip at byte {at} accepted");
    }
    // Every truncation is caught.
    for len in 0..bytes.len() {
        assert!(
            decode(&bytes[..len]).is_err(),
            "truncation to {len} accepted"
        );
    }
    assert!(matches!(decode(b"XXXX"), Err(SnapshotError::BadMagic(_))));
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(decode(&extra).is_err());
}

/// Rewrites the CRC so that a test reaches the field checks behind it.
fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&bytes[10..]);
    bytes[6..10].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn snapshot_field_checks_behind_a_valid_crc() {
    let config = ProducerStateConfig::default();
    let bytes = sample_table().encode_snapshot(501);
    let decode = |b: Vec<u8>| ProducerStateTable::decode_snapshot(config, &reseal(b)).map(|_| ());
    let mut version = bytes.clone();
    version[5] = 2;
    assert_eq!(decode(version), Err(SnapshotError::UnsupportedVersion(2)));
    let mut huge_count = bytes.clone();
    huge_count[18..22].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        decode(huge_count),
        Err(SnapshotError::Truncated { .. })
    ));
    // Entries: producer 9 (one batch, in a transaction) at 22, then PID at 22 + 31 + 24.
    let pid_at = 77;
    let mut negative_id = bytes.clone();
    negative_id[22..30].copy_from_slice(&(-2i64).to_be_bytes());
    assert_eq!(
        decode(negative_id),
        Err(SnapshotError::InvalidField("producer id"))
    );
    let mut reordered = bytes.clone();
    reordered[pid_at..pid_at + 8].copy_from_slice(&9i64.to_be_bytes());
    assert_eq!(
        decode(reordered),
        Err(SnapshotError::ProducerIdsNotAscending {
            previous: 9,
            next: 9
        })
    );
    let mut txn_offset = bytes.clone();
    txn_offset[44..52].copy_from_slice(&(-5i64).to_be_bytes());
    assert!(decode(txn_offset).is_err());
    let mut batch_count = bytes.clone();
    batch_count[pid_at + 30] = 6;
    assert_eq!(
        decode(batch_count),
        Err(SnapshotError::InvalidField("batch count"))
    );
    let first_batch = pid_at + 31;
    let mut sequence = bytes.clone();
    sequence[first_batch..first_batch + 4].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(decode(sequence).is_err());
    let mut delta = bytes.clone();
    delta[first_batch + 12..first_batch + 16].copy_from_slice(&i32::MAX.to_be_bytes());
    assert_eq!(
        decode(delta),
        Err(SnapshotError::InvalidField("batch offsets"))
    );
    let mut end_offset = bytes;
    end_offset[10..18].copy_from_slice(&(-1i64).to_be_bytes());
    assert_eq!(
        decode(end_offset),
        Err(SnapshotError::InvalidField("end offset"))
    );
}

#[test]
fn snapshot_then_replay_of_the_tail_equals_full_replay() {
    let mut log = Vec::new();
    for i in 0..10 {
        log.push((batch(0, 2 * i, 2), 2 * i64::from(i)));
    }
    let full = ProducerStateTable::from_replay(ProducerStateConfig::default(), log.clone());
    let head = ProducerStateTable::from_replay(ProducerStateConfig::default(), log[..4].to_vec());
    let mut restored =
        ProducerStateTable::decode_snapshot(head.config(), &head.encode_snapshot(8)).unwrap();
    assert_eq!(restored.end_offset, 8);
    restored.table.replay(log[4..].iter().copied());
    assert_eq!(restored.table, full);
}
