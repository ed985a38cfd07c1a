//! Per-partition batches waiting to be sent, bounded by `batch.size` and `linger.ms`.
//!
//! Pure: the caller passes the time (milliseconds on any monotonic clock), so every rule is
//! tested exactly. The payload `T` rides along with each record (the sender stores the
//! record's completion there).

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use freshet_records::BATCH_HEADER_LEN;

use crate::TopicPartition;

/// A record's contents, as the batch builder will encode it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordData {
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl RecordData {
    /// Upper bound of the record's encoded size: the fields plus the largest varints.
    pub fn size_estimate_bytes(&self) -> usize {
        // length(5) + attributes(1) + timestamp delta(10) + offset delta(5) + key and value
        // lengths(5 each) + header count(5).
        const RECORD_OVERHEAD_BYTES: usize = 36;
        const HEADER_OVERHEAD_BYTES: usize = 10;
        let headers: usize = self
            .headers
            .iter()
            .map(|(key, value)| {
                HEADER_OVERHEAD_BYTES + key.len() + value.as_ref().map_or(0, Bytes::len)
            })
            .sum();
        RECORD_OVERHEAD_BYTES
            + self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + headers
    }
}

/// A batch being filled (or full and waiting for its turn).
#[derive(Debug)]
pub struct Batch<T> {
    pub tp: TopicPartition,
    pub records: Vec<(RecordData, T)>,
    /// Estimated encoded size, batch header included.
    pub size_estimate_bytes: usize,
    pub created_ms: u64,
}

impl<T> Batch<T> {
    fn new(tp: TopicPartition, created_ms: u64) -> Batch<T> {
        Batch {
            tp,
            records: Vec::new(),
            size_estimate_bytes: BATCH_HEADER_LEN,
            created_ms,
        }
    }

    /// Whether one more record of `bytes` fits. An empty batch takes any record, so a
    /// record larger than `batch.size` travels alone (as in Kafka).
    fn has_room(&self, bytes: usize, batch_bytes_max: usize) -> bool {
        self.records.is_empty() || self.size_estimate_bytes + bytes <= batch_bytes_max
    }
}

/// What [`Accumulator::append`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended<T> {
    /// Added to the partition's open batch.
    ToOpenBatch,
    /// Started a new batch for it.
    ToNewBatch,
    /// Not added: it would have started a new batch and the caller asked not to (the
    /// sticky partitioner then switches partition first).
    WouldStartNewBatch(RecordData, T),
}

/// The batches of every partition.
#[derive(Debug)]
pub struct Accumulator<T> {
    batch_bytes_max: usize,
    linger_ms: u64,
    queues: BTreeMap<TopicPartition, VecDeque<Batch<T>>>,
}

impl<T> Accumulator<T> {
    pub fn new(batch_bytes_max: usize, linger_ms: u64) -> Accumulator<T> {
        Accumulator {
            batch_bytes_max,
            linger_ms,
            queues: BTreeMap::new(),
        }
    }

    /// Adds a record to the last batch of `tp`, or to a new one when it does not fit.
    pub fn append(
        &mut self,
        tp: &TopicPartition,
        record: RecordData,
        payload: T,
        now_ms: u64,
        abort_on_new_batch: bool,
    ) -> Appended<T> {
        let bytes = record.size_estimate_bytes();
        let queue = self.queues.entry(tp.clone()).or_default();
        if let Some(open) = queue.back_mut() {
            if open.has_room(bytes, self.batch_bytes_max) {
                open.size_estimate_bytes += bytes;
                open.records.push((record, payload));
                return Appended::ToOpenBatch;
            }
        }
        if abort_on_new_batch {
            if queue.is_empty() {
                self.queues.remove(tp);
            }
            return Appended::WouldStartNewBatch(record, payload);
        }
        let mut batch = Batch::new(tp.clone(), now_ms);
        batch.size_estimate_bytes += bytes;
        batch.records.push((record, payload));
        queue.push_back(batch);
        Appended::ToNewBatch
    }

    /// Whether the first batch of `tp` may be sent now: it is full (another batch follows
    /// it, or no further record fits), it has waited `linger.ms`, or the caller is
    /// flushing.
    fn is_ready(&self, queue: &VecDeque<Batch<T>>, now_ms: u64, flushing: bool) -> bool {
        let Some(first) = queue.front() else {
            return false;
        };
        flushing
            || queue.len() > 1
            || first.size_estimate_bytes >= self.batch_bytes_max
            || now_ms.saturating_sub(first.created_ms) >= self.linger_ms
    }

    /// The partitions whose first batch may be sent now, in partition order.
    pub fn ready(&self, now_ms: u64, flushing: bool) -> Vec<TopicPartition> {
        self.queues
            .iter()
            .filter(|(_, queue)| self.is_ready(queue, now_ms, flushing))
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// When the next batch becomes ready by lingering, if any batch is waiting.
    pub fn next_linger_deadline_ms(&self) -> Option<u64> {
        self.queues
            .values()
            .filter_map(|queue| queue.front())
            .map(|batch| batch.created_ms + self.linger_ms)
            .min()
    }

    /// Takes the first batch of `tp`.
    pub fn drain(&mut self, tp: &TopicPartition) -> Option<Batch<T>> {
        let queue = self.queues.get_mut(tp)?;
        let batch = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(tp);
        }
        batch
    }

    /// Removes and returns every batch created at or before `created_before_ms` (their
    /// delivery timeout passed while they waited, e.g. for a leader).
    pub fn expire(&mut self, created_before_ms: u64) -> Vec<Batch<T>> {
        let mut expired = Vec::new();
        for queue in self.queues.values_mut() {
            while queue
                .front()
                .is_some_and(|batch| batch.created_ms <= created_before_ms)
            {
                expired.extend(queue.pop_front());
            }
        }
        self.queues.retain(|_, queue| !queue.is_empty());
        expired
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    fn record(value_bytes: usize) -> RecordData {
        RecordData {
            timestamp_ms: 0,
            key: None,
            value: Some(Bytes::from(vec![b'x'; value_bytes])),
            headers: Vec::new(),
        }
    }

    #[test]
    fn size_estimate_counts_every_field() {
        let r = RecordData {
            timestamp_ms: 0,
            key: Some(Bytes::from_static(b"kk")),
            value: Some(Bytes::from_static(b"vvv")),
            headers: vec![
                ("h".into(), Some(Bytes::from_static(b"1234"))),
                ("n".into(), None),
            ],
        };
        assert_eq!(
            r.size_estimate_bytes(),
            36 + 2 + 3 + (10 + 1 + 4) + (10 + 1)
        );
    }

    #[test]
    fn batch_waits_for_linger_then_is_ready() {
        let mut acc = Accumulator::new(16_384, 5);
        assert_eq!(
            acc.append(&tp(0), record(10), 1, 100, false),
            Appended::ToNewBatch
        );
        assert_eq!(
            acc.append(&tp(0), record(10), 2, 103, false),
            Appended::ToOpenBatch
        );
        assert!(
            acc.ready(104, false).is_empty(),
            "linger counts from the first record"
        );
        assert_eq!(acc.next_linger_deadline_ms(), Some(105));
        assert_eq!(acc.ready(105, false), vec![tp(0)]);
        assert_eq!(acc.ready(101, true), vec![tp(0)], "flush sends at once");
        let batch = acc.drain(&tp(0)).unwrap();
        assert_eq!(
            batch.records.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(acc.is_empty());
        assert_eq!(acc.next_linger_deadline_ms(), None);
    }

    #[test]
    fn full_batch_is_ready_before_linger_and_a_new_one_starts() {
        // Each record is 36 + 1000 bytes; a 61-byte header + 3 records = 3169 > 3000.
        let mut acc = Accumulator::new(3_000, 1_000);
        for i in 0..2 {
            acc.append(&tp(0), record(1_000), i, 0, false);
        }
        assert!(
            acc.ready(0, false).is_empty(),
            "2 records do not fill 3000 bytes"
        );
        assert_eq!(
            acc.append(&tp(0), record(1_000), 2, 1, false),
            Appended::ToNewBatch
        );
        assert_eq!(
            acc.ready(1, false),
            vec![tp(0)],
            "a batch followed by another is full"
        );
        assert_eq!(acc.drain(&tp(0)).unwrap().records.len(), 2);
        assert!(acc.ready(1, false).is_empty(), "the new batch lingers");
        assert_eq!(acc.drain(&tp(0)).unwrap().records.len(), 1);
    }

    #[test]
    fn oversized_record_travels_alone() {
        let mut acc = Accumulator::new(100, 5);
        assert_eq!(
            acc.append(&tp(0), record(500), 0, 0, false),
            Appended::ToNewBatch
        );
        assert_eq!(acc.ready(0, false), vec![tp(0)], "already over batch.size");
        assert_eq!(
            acc.append(&tp(0), record(1), 1, 0, false),
            Appended::ToNewBatch
        );
    }

    #[test]
    fn abort_on_new_batch_hands_the_record_back() {
        // 61 + 136 + 46 = 243 fits 300; another 136 does not.
        let mut acc = Accumulator::new(300, 5);
        assert!(matches!(
            acc.append(&tp(1), record(10), 0, 0, true),
            Appended::WouldStartNewBatch(_, 0)
        ));
        assert!(acc.is_empty(), "nothing was left behind");
        acc.append(&tp(1), record(100), 0, 0, false);
        assert_eq!(
            acc.append(&tp(1), record(10), 1, 0, true),
            Appended::ToOpenBatch
        );
        assert!(matches!(
            acc.append(&tp(1), record(100), 2, 0, true),
            Appended::WouldStartNewBatch(_, 2)
        ));
    }

    #[test]
    fn partitions_are_independent_and_expire_by_age() {
        let mut acc = Accumulator::new(16_384, 5);
        acc.append(&tp(0), record(1), 0, 10, false);
        acc.append(&tp(1), record(1), 1, 20, false);
        assert_eq!(acc.ready(15, false), vec![tp(0)]);
        assert_eq!(acc.ready(25, false), vec![tp(0), tp(1)]);
        let expired = acc.expire(10);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].tp, tp(0));
        assert_eq!(acc.ready(100, false), vec![tp(1)]);
    }
}
