//! The idempotent-producer state of one partition: for each producer id, its epoch and the
//! sequences and offsets of its last five batches (Kafka's `ProducerStateManager`,
//! `ProducerStateEntry` and `ProducerAppendInfo`).
//!
//! The produce path is two steps so that a failed log write changes nothing:
//! [`ProducerStateTable::check_append`] decides (append, duplicate, or error) without
//! touching the table, and [`ProducerStateTable::on_appended`] records the batch once the log
//! holds it at its assigned offsets. Restart rebuilds the table by replaying batch headers
//! ([`ProducerStateTable::replay`]), optionally after loading a snapshot.

use std::collections::{BTreeMap, VecDeque};

use freshet_records::BatchHeader;

use crate::error::ProducerError;
use crate::producer_id::NO_PRODUCER_EPOCH;
use crate::sequence::{decrement_sequence, in_sequence, increment_sequence, NO_SEQUENCE};

/// Batches remembered per producer for duplicate detection (Kafka's
/// `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`; clients keep at most five in flight).
pub const BATCHES_RETAINED: usize = 5;
/// Kafka's `producer.id.expiration.ms` default: one day.
pub const PRODUCER_ID_EXPIRATION_MS_DEFAULT: i64 = 86_400_000;

/// The producer fields of a RecordBatch v2 header: all the state needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// -1 (or any negative value) when the producer is not idempotent.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub last_offset_delta: i32,
    /// Records in the batch; a control batch with none was emptied by compaction.
    pub record_count: i32,
    /// The batch's max timestamp after validation (the append time for LogAppendTime
    /// topics). Kafka measures producer expiry from it, not from the wall clock.
    pub max_timestamp_ms: i64,
    pub is_transactional: bool,
    pub is_control: bool,
}

impl ProducerBatch {
    pub fn from_header(header: &BatchHeader) -> ProducerBatch {
        ProducerBatch {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            last_offset_delta: header.last_offset_delta,
            record_count: header.record_count,
            max_timestamp_ms: header.max_timestamp,
            is_transactional: header.is_transactional(),
            is_control: header.is_control(),
        }
    }

    /// Whether the batch has a producer id (Kafka's `hasProducerId`: id > -1).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// The sequence of the batch's last record, wrapping past `i32::MAX` to 0.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Where one retained batch of a producer landed in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp_ms: i64,
}

impl BatchMetadata {
    /// From Kafka's representation (last sequence, last offset, offset delta), which is also
    /// the snapshot's. `offset_delta` is non-negative and at most `last_offset`.
    pub(crate) fn from_last(
        last_sequence: i32,
        last_offset: i64,
        offset_delta: i32,
        max_timestamp_ms: i64,
    ) -> BatchMetadata {
        BatchMetadata {
            first_sequence: decrement_sequence(last_sequence, offset_delta),
            last_sequence,
            base_offset: last_offset - i64::from(offset_delta),
            last_offset,
            max_timestamp_ms,
        }
    }

    /// `last_offset - base_offset`, the batch's `lastOffsetDelta`.
    pub fn offset_delta(&self) -> i32 {
        i32::try_from(self.last_offset - self.base_offset)
            .expect("invariant: a retained batch spans at most i32::MAX + 1 offsets")
    }
}

/// What the partition knows about one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub(crate) producer_epoch: i16,
    /// Oldest first; at most [`BATCHES_RETAINED`], all of `producer_epoch`.
    pub(crate) batches: VecDeque<BatchMetadata>,
    pub(crate) last_timestamp_ms: i64,
    /// Epoch of the transaction coordinator that wrote the last marker, -1 before any.
    pub(crate) coordinator_epoch: i32,
    /// First offset of the producer's open transaction in this partition.
    pub(crate) current_txn_first_offset: Option<i64>,
}

/// The state of a producer the partition has never seen (Kafka's
/// `ProducerStateEntry.empty`): no epoch, so any sequence is accepted.
static UNKNOWN_PRODUCER: ProducerEntry = ProducerEntry {
    producer_epoch: NO_PRODUCER_EPOCH,
    batches: VecDeque::new(),
    last_timestamp_ms: -1,
    coordinator_epoch: -1,
    current_txn_first_offset: None,
};

impl ProducerEntry {
    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch
    }

    /// The retained batches, oldest first.
    pub fn batches(&self) -> impl ExactSizeIterator<Item = &BatchMetadata> + '_ {
        self.batches.iter()
    }

    /// The last sequence written, or [`NO_SEQUENCE`] when no batch is retained.
    pub fn last_sequence(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_sequence)
    }

    pub fn last_timestamp_ms(&self) -> i64 {
        self.last_timestamp_ms
    }

    pub fn coordinator_epoch(&self) -> i32 {
        self.coordinator_epoch
    }

    pub fn current_txn_first_offset(&self) -> Option<i64> {
        self.current_txn_first_offset
    }

    /// A retained batch with exactly this epoch and sequence range (Kafka's
    /// `findDuplicateBatch`).
    fn find_duplicate(&self, batch: &ProducerBatch) -> Option<BatchMetadata> {
        if batch.producer_epoch != self.producer_epoch {
            return None;
        }
        let (first, last) = (batch.base_sequence, batch.last_sequence());
        self.batches
            .iter()
            .find(|b| b.first_sequence == first && b.last_sequence == last)
            .copied()
    }

    /// Kafka's `checkProducerEpoch` then `checkSequence`, for a client's data batch.
    fn validate(&self, producer_id: i64, batch: &ProducerBatch) -> Result<(), ProducerError> {
        if batch.producer_epoch < self.producer_epoch {
            return Err(ProducerError::InvalidProducerEpoch {
                producer_id,
                producer_epoch: batch.producer_epoch,
                current_epoch: self.producer_epoch,
            });
        }
        if batch.producer_epoch != self.producer_epoch {
            // A new epoch restarts sequences at 0, unless the producer is unknown here
            // (KIP-360: its data may have been deleted by retention or DeleteRecords).
            if batch.base_sequence != 0 && self.producer_epoch != NO_PRODUCER_EPOCH {
                return Err(ProducerError::NewEpochNotAtSequenceZero {
                    producer_id,
                    producer_epoch: batch.producer_epoch,
                    base_sequence: batch.base_sequence,
                });
            }
            return Ok(());
        }
        let last_sequence = self.last_sequence();
        if self.producer_epoch != NO_PRODUCER_EPOCH
            && !in_sequence(last_sequence, batch.base_sequence)
        {
            return Err(ProducerError::OutOfOrderSequence {
                producer_id,
                base_sequence: batch.base_sequence,
                last_sequence,
            });
        }
        Ok(())
    }

    /// Kafka's `appendDataBatch` after validation: remembers the batch (a new epoch forgets
    /// the old epoch's batches) and opens a transaction on the first transactional batch.
    fn add_data_batch(&mut self, batch: &ProducerBatch, base_offset: i64) {
        self.set_epoch(batch.producer_epoch);
        if self.batches.len() == BATCHES_RETAINED {
            self.batches.pop_front();
        }
        let last_offset = base_offset.saturating_add(i64::from(batch.last_offset_delta));
        self.batches.push_back(BatchMetadata {
            first_sequence: batch.base_sequence,
            last_sequence: batch.last_sequence(),
            base_offset: last_offset - i64::from(batch.last_offset_delta),
            last_offset,
            max_timestamp_ms: batch.max_timestamp_ms,
        });
        self.last_timestamp_ms = batch.max_timestamp_ms;
        if batch.is_transactional && self.current_txn_first_offset.is_none() {
            self.current_txn_first_offset = Some(base_offset);
        }
    }

    /// Kafka's `appendEndTxnMarker` (commit and abort alike close the transaction). The
    /// coordinator epoch lives in the marker's value, not the header, so it is kept as is
    /// until transactions arrive.
    fn add_end_txn_marker(&mut self, batch: &ProducerBatch) {
        self.set_epoch(batch.producer_epoch);
        self.current_txn_first_offset = None;
        self.last_timestamp_ms = batch.max_timestamp_ms;
    }

    fn set_epoch(&mut self, producer_epoch: i16) {
        if self.producer_epoch != producer_epoch {
            self.batches.clear();
            self.producer_epoch = producer_epoch;
        }
    }
}

/// What to do with a client's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendDecision {
    /// Write it (then call [`ProducerStateTable::on_appended`]).
    Append,
    /// The same producer, epoch and sequence range is already in the log: write nothing and
    /// answer success with these offsets and timestamp. Kafka 2.x+ brokers do not send
    /// DUPLICATE_SEQUENCE_NUMBER; the client sees its original base offset.
    Duplicate(BatchMetadata),
}

/// Settings of a [`ProducerStateTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStateConfig {
    /// Kafka's `producer.id.expiration.ms`: a producer idle this long is forgotten.
    pub producer_id_expiration_ms: i64,
}

impl Default for ProducerStateConfig {
    fn default() -> ProducerStateConfig {
        ProducerStateConfig {
            producer_id_expiration_ms: PRODUCER_ID_EXPIRATION_MS_DEFAULT,
        }
    }
}

/// The idempotent-producer state of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateTable {
    config: ProducerStateConfig,
    /// By producer id; a BTreeMap so snapshots list producers in one deterministic order.
    producers: BTreeMap<i64, ProducerEntry>,
}

impl ProducerStateTable {
    pub fn new(config: ProducerStateConfig) -> ProducerStateTable {
        ProducerStateTable {
            config,
            producers: BTreeMap::new(),
        }
    }

    /// A table rebuilt from the log's batches in offset order (see [`Self::replay`]).
    pub fn from_replay(
        config: ProducerStateConfig,
        batches: impl IntoIterator<Item = (ProducerBatch, i64)>,
    ) -> ProducerStateTable {
        let mut table = ProducerStateTable::new(config);
        table.replay(batches);
        table
    }

    pub fn config(&self) -> ProducerStateConfig {
        self.config
    }

    pub fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Producer ids known, ascending.
    pub fn producer_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.producers.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Decides what to do with one batch a client sent; see [`Self::check_appends`] for the
    /// rules. This is the produce hot path: it reads the table and allocates nothing.
    pub fn check_append(&self, batch: &ProducerBatch) -> Result<AppendDecision, ProducerError> {
        if batch.is_control {
            return Err(ProducerError::ControlBatchFromClient);
        }
        if !batch.has_producer_id() {
            return Ok(AppendDecision::Append);
        }
        check_fields(batch)?;
        let entry = self.entry(batch.producer_id).unwrap_or(&UNKNOWN_PRODUCER);
        if let Some(duplicate) = entry.find_duplicate(batch) {
            return Ok(AppendDecision::Duplicate(duplicate));
        }
        check_data_batch(entry, batch)?;
        Ok(AppendDecision::Append)
    }

    /// Decides what to do with the batches one produce request sends to this partition,
    /// in order, as Kafka's `UnifiedLog.analyzeAndValidateProducerState` does for a client
    /// append. The table is not changed.
    ///
    /// Per batch with a producer id, in Kafka's order: a control batch or a negative base
    /// sequence is INVALID_RECORD; a batch equal to one of the producer's last five (same
    /// epoch and sequence range) makes the whole append a [`AppendDecision::Duplicate`];
    /// a transactional batch outside an open transaction is INVALID_TXN_STATE; an epoch
    /// older than the known one is INVALID_PRODUCER_EPOCH; a newer epoch must start at
    /// sequence 0 and the same epoch must continue at the last sequence + 1 (wrapping),
    /// else OUT_OF_ORDER_SEQUENCE_NUMBER — except for a producer this partition does not
    /// know, which may start anywhere (KIP-360: Kafka 2.5+ no longer answers
    /// UNKNOWN_PRODUCER_ID); a plain batch during an open transaction is INVALID_TXN_STATE.
    /// Later batches are checked against the state the earlier ones would leave; duplicates
    /// only against the table (Kafka's `lastEntry`).
    pub fn check_appends(
        &self,
        batches: &[ProducerBatch],
    ) -> Result<AppendDecision, ProducerError> {
        if let [batch] = batches {
            return self.check_append(batch);
        }
        // Entries as the earlier batches of this request would leave them; a request
        // touches few producers (one, from any real client), so a Vec is enough.
        let mut staged: Vec<(i64, ProducerEntry)> = Vec::new();
        for batch in batches {
            if batch.is_control {
                return Err(ProducerError::ControlBatchFromClient);
            }
            if !batch.has_producer_id() {
                continue;
            }
            check_fields(batch)?;
            if let Some(duplicate) = self
                .entry(batch.producer_id)
                .and_then(|e| e.find_duplicate(batch))
            {
                return Ok(AppendDecision::Duplicate(duplicate));
            }
            let entry = self.staged_entry(&mut staged, batch.producer_id);
            check_data_batch(entry, batch)?;
            // The offset only matters for the open-transaction marker, which checks only
            // test for presence, so any value stands in for the one the log will assign.
            entry.add_data_batch(batch, 0);
        }
        Ok(AppendDecision::Append)
    }

    /// The entry of `producer_id` in `staged`, copied from the table on first use.
    fn staged_entry<'a>(
        &self,
        staged: &'a mut Vec<(i64, ProducerEntry)>,
        producer_id: i64,
    ) -> &'a mut ProducerEntry {
        let index = match staged.iter().position(|(id, _)| *id == producer_id) {
            Some(index) => index,
            None => {
                let entry = self.entry(producer_id).unwrap_or(&UNKNOWN_PRODUCER).clone();
                staged.push((producer_id, entry));
                staged.len() - 1
            }
        };
        &mut staged[index].1
    }

    /// Records a batch the log now holds at `base_offset`, without validation: call it for
    /// each batch [`Self::check_appends`] allowed, after the write succeeded. Batches
    /// without a producer id are ignored; a control batch closes the producer's
    /// transaction; a data batch with a negative sequence or offset delta (which
    /// `check_appends` refuses), or at a negative offset, is ignored.
    pub fn on_appended(&mut self, batch: &ProducerBatch, base_offset: i64) {
        if !batch.has_producer_id() || base_offset < 0 {
            return;
        }
        if batch.is_control {
            // A control batch emptied by compaction says nothing (Kafka skips it too).
            if batch.record_count > 0 {
                self.entry_mut(batch.producer_id).add_end_txn_marker(batch);
            }
            return;
        }
        if check_fields(batch).is_err() {
            return;
        }
        self.entry_mut(batch.producer_id)
            .add_data_batch(batch, base_offset);
    }

    /// Rebuilds state from the log: the headers of its batches with their base offsets, in
    /// offset order. Like Kafka's recovery (origin REPLICATION), nothing is validated: the
    /// log is the truth, even an epoch that went backwards. Never fails and never panics,
    /// whatever the headers hold.
    pub fn replay(&mut self, batches: impl IntoIterator<Item = (ProducerBatch, i64)>) {
        for (batch, base_offset) in batches {
            self.on_appended(&batch, base_offset);
        }
    }

    /// Forgets producers idle for `producer.id.expiration.ms` at `now_ms` (Kafka's
    /// `removeExpiredProducers`): no open transaction and
    /// `now_ms - last_timestamp_ms >= producer_id_expiration_ms`, where the last timestamp
    /// is the max timestamp of the producer's last batch. Returns how many were removed.
    pub fn remove_expired(&mut self, now_ms: i64) -> usize {
        let expiration_ms = self.config.producer_id_expiration_ms;
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp_ms) < expiration_ms
        });
        before - self.producers.len()
    }

    fn entry_mut(&mut self, producer_id: i64) -> &mut ProducerEntry {
        self.producers
            .entry(producer_id)
            .or_insert_with(|| UNKNOWN_PRODUCER.clone())
    }

    /// Inserts an entry decoded from a snapshot; the decoder checked its invariants.
    pub(crate) fn insert_entry(&mut self, producer_id: i64, entry: ProducerEntry) {
        self.producers.insert(producer_id, entry);
    }

    pub(crate) fn entries(&self) -> impl ExactSizeIterator<Item = (&i64, &ProducerEntry)> + '_ {
        self.producers.iter()
    }
}

/// Kafka's LogValidator rules on a producer's batch fields that the sequence checks rely on.
fn check_fields(batch: &ProducerBatch) -> Result<(), ProducerError> {
    if batch.base_sequence < 0 {
        return Err(ProducerError::InvalidSequence {
            producer_id: batch.producer_id,
            base_sequence: batch.base_sequence,
        });
    }
    if batch.last_offset_delta < 0 {
        return Err(ProducerError::InvalidOffsetDelta {
            producer_id: batch.producer_id,
            last_offset_delta: batch.last_offset_delta,
        });
    }
    Ok(())
}

/// The transaction checks around the epoch and sequence checks, in Kafka's order.
fn check_data_batch(entry: &ProducerEntry, batch: &ProducerBatch) -> Result<(), ProducerError> {
    let producer_id = batch.producer_id;
    let in_transaction = entry.current_txn_first_offset.is_some();
    if batch.is_transactional && !in_transaction {
        return Err(ProducerError::TransactionNotVerified { producer_id });
    }
    entry.validate(producer_id, batch)?;
    if in_transaction && !batch.is_transactional {
        return Err(ProducerError::NonTransactionalInTransaction { producer_id });
    }
    Ok(())
}
