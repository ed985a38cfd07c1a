//! The consumer without groups: assign partitions, seek (offset, beginning, end,
//! timestamp), poll. Positions live here; nothing is committed to the broker.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshet_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use freshet_protocol::messages::fetch_response::PartitionData;
use freshet_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use freshet_protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
};
use freshet_protocol::ApiKey;
use freshet_records::{split_batches, BatchError};

use crate::cluster::{ClientConfig, Cluster};
use crate::error::{Error, KafkaCode, KafkaError};
use crate::TopicPartition;

/// Where to start when a partition has no valid position (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// Fail the poll instead.
    None,
}

/// Consumer settings, named after the Java client's, with its defaults.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub client: ClientConfig,
    pub auto_offset_reset: OffsetReset,
    /// `fetch.max.wait.ms`: how long the broker may hold a fetch waiting for `min_bytes`.
    pub fetch_max_wait_ms: u64,
    /// `fetch.min.bytes`.
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`: the whole response.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub partition_fetch_bytes_max: i32,
    /// Largest decompressed records section accepted from one batch.
    pub decompressed_batch_bytes_max: usize,
}

impl ConsumerConfig {
    pub fn new(bootstrap_servers: &str) -> ConsumerConfig {
        ConsumerConfig {
            client: ClientConfig::new(bootstrap_servers),
            auto_offset_reset: OffsetReset::Latest,
            fetch_max_wait_ms: 500,
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            partition_fetch_bytes_max: 1024 * 1024,
            decompressed_batch_bytes_max: 64 * 1024 * 1024,
        }
    }
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch: the producer's, or the broker's with LogAppendTime.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Keys may repeat; order is kept. Keys that are not UTF-8 are converted lossily.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// A logical offset for ListOffsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first offset whose timestamp is at or after this one (the end if none).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire_timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

/// Where a partition's next fetch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Offset(i64),
    /// Look the offset up (by the reset policy) before the next fetch.
    NeedsReset,
}

/// A consumer of assigned partitions. Not shared: one task polls it.
#[derive(Debug)]
pub struct Consumer {
    cluster: Arc<Cluster>,
    config: ConsumerConfig,
    positions: BTreeMap<TopicPartition, Position>,
    /// Assigned partitions that poll does not fetch until resumed.
    paused: BTreeSet<TopicPartition>,
}

impl Consumer {
    pub fn new(config: ConsumerConfig) -> Result<Consumer, Error> {
        Ok(Consumer {
            cluster: Arc::new(Cluster::new(config.client.clone())?),
            config,
            positions: BTreeMap::new(),
            paused: BTreeSet::new(),
        })
    }

    /// Replaces the assignment. Partitions kept keep their positions; new ones start per
    /// `auto.offset.reset` unless sought.
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) {
        let mut positions = BTreeMap::new();
        for tp in partitions {
            let position = self
                .positions
                .get(&tp)
                .copied()
                .unwrap_or(Position::NeedsReset);
            positions.insert(tp, position);
        }
        self.positions = positions;
        let positions = &self.positions;
        self.paused.retain(|tp| positions.contains_key(tp));
    }

    /// Stops fetching from `partitions` (positions are kept) until [`Consumer::resume`].
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<(), Error> {
        if let Some(tp) = partitions
            .iter()
            .find(|tp| !self.positions.contains_key(*tp))
        {
            return Err(not_assigned(tp));
        }
        self.paused.extend(partitions.iter().cloned());
        Ok(())
    }

    /// Fetches from `partitions` again. Partitions not paused are ignored.
    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.paused.remove(tp);
        }
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.paused.iter().cloned().collect()
    }

    /// The cluster view (connections, metadata) this consumer uses.
    pub(crate) fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.positions.keys().cloned().collect()
    }

    /// Every partition of `topic`, from metadata. A topic the broker does not know is an
    /// error at once; one still electing leaders is waited for.
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<TopicPartition>, Error> {
        let names = [topic.to_owned()];
        let response = self.cluster.refresh_metadata(Some(&names), false).await?;
        if let Some(error) = crate::cluster::topic_error(&response, topic) {
            if error.code == KafkaCode::UNKNOWN_TOPIC_OR_PARTITION || !error.code.is_retriable() {
                return Err(Error::Resource {
                    resource: format!("topic {topic}"),
                    error,
                });
            }
        }
        let info = self
            .cluster
            .wait_for_topic(
                topic,
                false,
                self.config.client.connection.request_timeout_ms,
            )
            .await?;
        Ok(info
            .partitions
            .iter()
            .map(|p| TopicPartition::new(topic, p.partition))
            .collect())
    }

    /// The offset the next poll reads from, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        match self.positions.get(tp) {
            Some(Position::Offset(offset)) => Some(*offset),
            _ => None,
        }
    }

    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), Error> {
        let position = self.positions.get_mut(tp).ok_or_else(|| not_assigned(tp))?;
        *position = Position::Offset(offset);
        Ok(())
    }

    pub async fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.seek_to_spec(partitions, OffsetSpec::Earliest).await
    }

    pub async fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<(), Error> {
        self.seek_to_spec(partitions, OffsetSpec::Latest).await
    }

    /// Seeks to the first record with a timestamp at or after `timestamp_ms`, or to the
    /// end when there is none.
    pub async fn seek_to_timestamp(
        &mut self,
        partitions: &[TopicPartition],
        timestamp_ms: i64,
    ) -> Result<(), Error> {
        self.seek_to_spec(partitions, OffsetSpec::Timestamp(timestamp_ms))
            .await
    }

    async fn seek_to_spec(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<(), Error> {
        if let Some(tp) = partitions
            .iter()
            .find(|tp| !self.positions.contains_key(*tp))
        {
            return Err(not_assigned(tp));
        }
        let offsets = self.list_offsets(partitions, spec).await?;
        for (tp, offset) in offsets {
            self.positions.insert(tp, Position::Offset(offset));
        }
        Ok(())
    }

    /// Looks offsets up with ListOffsets at each partition's leader. A timestamp with no
    /// record at or after it resolves to the end of the partition.
    pub async fn list_offsets(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<HashMap<TopicPartition, i64>, Error> {
        let mut result = HashMap::new();
        let mut remaining: Vec<TopicPartition> = partitions.to_vec();
        let deadline = Instant::now()
            + Duration::from_millis(self.config.client.connection.request_timeout_ms);
        loop {
            let mut retry = Vec::new();
            let mut last_error = None;
            for (leader, tps) in self.group_by_leader(&remaining).await? {
                match self.list_offsets_at(leader, &tps, spec).await {
                    Ok(answers) => {
                        for (tp, answer) in answers {
                            match answer {
                                Ok(offset) => {
                                    result.insert(tp, offset);
                                }
                                Err(error) if error.code.is_retriable() => {
                                    last_error = Some(resource_error(&tp, error));
                                    retry.push(tp);
                                }
                                Err(error) => return Err(resource_error(&tp, error)),
                            }
                        }
                    }
                    Err(error) if error.is_retriable() => {
                        last_error = Some(error);
                        retry.extend(tps);
                    }
                    Err(error) => return Err(error),
                }
            }
            if retry.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(last_error.unwrap_or(Error::Closed));
            }
            tokio::time::sleep(Duration::from_millis(self.config.client.retry_backoff_ms)).await;
            self.refresh_topics(&retry).await;
            remaining = retry;
        }
        if let OffsetSpec::Timestamp(_) = spec {
            let missing: Vec<TopicPartition> = result
                .iter()
                .filter(|(_, &o)| o < 0)
                .map(|(tp, _)| tp.clone())
                .collect();
            if !missing.is_empty() {
                let ends = Box::pin(self.list_offsets(&missing, OffsetSpec::Latest)).await?;
                result.extend(ends);
            }
        }
        Ok(result)
    }

    async fn list_offsets_at(
        &self,
        leader: i32,
        tps: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<Vec<(TopicPartition, Result<i64, KafkaError>)>, Error> {
        let connection = self.cluster.broker_connection(leader).await?;
        let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for tp in tps {
            topics
                .entry(&tp.topic)
                .or_default()
                .push(ListOffsetsPartition {
                    partition_index: tp.partition,
                    timestamp: spec.wire_timestamp(),
                    ..Default::default()
                });
        }
        let request = ListOffsetsRequest {
            // -1: an ordinary consumer, not a replica.
            replica_id: -1,
            isolation_level: 0,
            topics: topics
                .into_iter()
                .map(|(name, partitions)| ListOffsetsTopic {
                    name: name.to_owned(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            timeout_ms: i32::try_from(self.config.client.connection.request_timeout_ms)
                .unwrap_or(i32::MAX),
            ..Default::default()
        };
        let (_, response): (_, ListOffsetsResponse) =
            connection.call(ApiKey::ListOffsets, &request).await?;
        let mut answers = Vec::new();
        for tp in tps {
            let answer = response
                .topics
                .iter()
                .filter(|t| t.name == tp.topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == tp.partition);
            let answer = match answer {
                None => Err(KafkaError {
                    code: KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                    message: Some("missing from the ListOffsets response".into()),
                }),
                Some(p) if p.error_code != 0 => Err(KafkaError {
                    code: KafkaCode(p.error_code),
                    message: None,
                }),
                Some(p) => Ok(p.offset),
            };
            answers.push((tp.clone(), answer));
        }
        Ok(answers)
    }

    /// Partitions grouped by their leader; refreshes metadata for topics not known yet.
    async fn group_by_leader(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<i32, Vec<TopicPartition>>, Error> {
        let mut grouped: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for tp in partitions {
            let info = match self.cluster.topic(&tp.topic) {
                Some(info) => info,
                None => {
                    self.cluster
                        .wait_for_topic(
                            &tp.topic,
                            false,
                            self.config.client.connection.request_timeout_ms,
                        )
                        .await?
                }
            };
            let partition = info
                .partitions
                .iter()
                .find(|p| p.partition == tp.partition)
                .ok_or_else(|| {
                    resource_error(
                        tp,
                        KafkaError {
                            code: KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                            message: None,
                        },
                    )
                })?;
            // No leader now: the -1 group is retried after a metadata refresh.
            grouped
                .entry(partition.leader)
                .or_default()
                .push(tp.clone());
        }
        Ok(grouped)
    }

    async fn refresh_topics(&self, partitions: &[TopicPartition]) {
        let mut topics: Vec<String> = partitions.iter().map(|tp| tp.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        // A failed refresh keeps the old view; the next attempt reports the error.
        let _ = self.cluster.refresh_metadata(Some(&topics), false).await;
    }

    /// Returns the records available now, waiting up to `timeout` for some to arrive.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            self.reset_positions().await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let max_wait_ms =
                (self.config.fetch_max_wait_ms as u128).min(remaining.as_millis()) as i32;
            let records = self.fetch_once(max_wait_ms).await?;
            if !records.is_empty() || Instant::now() >= deadline {
                return Ok(records);
            }
        }
    }

    /// Resolves every `NeedsReset` position with the reset policy.
    async fn reset_positions(&mut self) -> Result<(), Error> {
        let pending: Vec<TopicPartition> = self
            .positions
            .iter()
            .filter(|(_, position)| **position == Position::NeedsReset)
            .map(|(tp, _)| tp.clone())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let spec = match self.config.auto_offset_reset {
            OffsetReset::Earliest => OffsetSpec::Earliest,
            OffsetReset::Latest => OffsetSpec::Latest,
            OffsetReset::None => {
                return Err(Error::Config(format!(
                    "no position for {} and auto.offset.reset is none",
                    pending[0]
                )))
            }
        };
        let offsets = self.list_offsets(&pending, spec).await?;
        for (tp, offset) in offsets {
            self.positions.insert(tp, Position::Offset(offset));
        }
        Ok(())
    }

    /// One Fetch to each leader of an assigned partition, in parallel.
    async fn fetch_once(&mut self, max_wait_ms: i32) -> Result<Vec<ConsumerRecord>, Error> {
        let assigned: Vec<TopicPartition> = self
            .positions
            .keys()
            .filter(|tp| !self.paused.contains(*tp))
            .cloned()
            .collect();
        if assigned.is_empty() {
            tokio::time::sleep(Duration::from_millis(max_wait_ms.max(0) as u64)).await;
            return Ok(Vec::new());
        }
        let grouped = self.group_by_leader(&assigned).await?;
        let mut pending = Vec::new();
        let mut leaderless = Vec::new();
        for (leader, tps) in grouped {
            if leader < 0 {
                leaderless.extend(tps);
                continue;
            }
            let connection = match self.cluster.broker_connection(leader).await {
                Ok(connection) => connection,
                Err(error) if error.is_retriable() => {
                    leaderless.extend(tps);
                    continue;
                }
                Err(error) => return Err(error),
            };
            let request = self.fetch_request(&tps, max_wait_ms);
            let version = connection.version(ApiKey::Fetch)?;
            pending.push((tps, connection.send(ApiKey::Fetch, version, &request)?));
        }
        let mut records = Vec::new();
        let mut stale = leaderless;
        for (tps, response) in pending {
            match response.recv::<FetchResponse>().await {
                Ok(response) => {
                    crate::error::check(response.error_code, None)?;
                    for tp in tps {
                        self.apply_partition(&tp, &response, &mut records, &mut stale)?;
                    }
                }
                Err(error) if error.is_retriable() => stale.extend(tps),
                Err(error) => return Err(error),
            }
        }
        if !stale.is_empty() {
            tokio::time::sleep(Duration::from_millis(self.config.client.retry_backoff_ms)).await;
            self.refresh_topics(&stale).await;
        }
        Ok(records)
    }

    fn fetch_request(&self, tps: &[TopicPartition], max_wait_ms: i32) -> FetchRequest {
        let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
        for tp in tps {
            let Some(Position::Offset(offset)) = self.positions.get(tp) else {
                continue;
            };
            topics.entry(&tp.topic).or_default().push(FetchPartition {
                partition: tp.partition,
                fetch_offset: *offset,
                partition_max_bytes: self.config.partition_fetch_bytes_max,
                ..Default::default()
            });
        }
        FetchRequest {
            replica_id: -1,
            max_wait_ms,
            min_bytes: self.config.fetch_min_bytes,
            max_bytes: self.config.fetch_max_bytes,
            // read_uncommitted, the Java consumer's default.
            isolation_level: 0,
            // Session id 0 with epoch -1: a full fetch without a session (KIP-227).
            session_id: 0,
            session_epoch: -1,
            topics: topics
                .into_iter()
                .map(|(topic, partitions)| FetchTopic {
                    topic: topic.to_owned(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn apply_partition(
        &mut self,
        tp: &TopicPartition,
        response: &FetchResponse,
        records: &mut Vec<ConsumerRecord>,
        stale: &mut Vec<TopicPartition>,
    ) -> Result<(), Error> {
        let data = response
            .responses
            .iter()
            .filter(|t| t.topic == tp.topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == tp.partition);
        let Some(data) = data else {
            return Ok(());
        };
        let code = KafkaCode(data.error_code);
        if code == KafkaCode::OFFSET_OUT_OF_RANGE {
            if self.config.auto_offset_reset == OffsetReset::None {
                return Err(resource_error(
                    tp,
                    KafkaError {
                        code,
                        message: None,
                    },
                ));
            }
            self.positions.insert(tp.clone(), Position::NeedsReset);
            return Ok(());
        }
        if code.is_retriable() {
            stale.push(tp.clone());
            return Ok(());
        }
        if !code.is_ok() {
            return Err(resource_error(
                tp,
                KafkaError {
                    code,
                    message: None,
                },
            ));
        }
        let Some(Position::Offset(position)) = self.positions.get(tp).copied() else {
            return Ok(());
        };
        let next = read_partition(
            tp,
            data,
            position,
            self.config.decompressed_batch_bytes_max,
            records,
        )?;
        self.positions.insert(tp.clone(), Position::Offset(next));
        Ok(())
    }
}

fn not_assigned(tp: &TopicPartition) -> Error {
    Error::NotAssigned {
        topic: tp.topic.clone(),
        partition: tp.partition,
    }
}

fn resource_error(tp: &TopicPartition, error: KafkaError) -> Error {
    Error::Resource {
        resource: format!("partition {tp}"),
        error,
    }
}

/// Appends the records at or after `position` from a fetched partition and returns the
/// next position. Control batches (transaction markers) are skipped but move the position;
/// a batch cut short at the end of the response is left for the next fetch.
pub fn read_partition(
    tp: &TopicPartition,
    data: &PartitionData,
    mut position: i64,
    decompressed_batch_bytes_max: usize,
    out: &mut Vec<ConsumerRecord>,
) -> Result<i64, Error> {
    let Some(bytes) = &data.records else {
        return Ok(position);
    };
    let corrupt = |offset: i64, reason: String| Error::CorruptRecords {
        topic: tp.topic.clone(),
        partition: tp.partition,
        offset,
        reason,
    };
    for batch in split_batches(bytes) {
        let (start, header) = match batch {
            Ok(batch) => batch,
            // Brokers cut the response at max bytes, often inside a batch.
            Err(BatchError::Truncated { .. }) => break,
            Err(error) => return Err(corrupt(position, error.to_string())),
        };
        if header.last_offset() < position {
            continue;
        }
        if header.is_control() {
            position = header.last_offset() + 1;
            continue;
        }
        let batch_bytes = bytes.slice(start..start + header.total_len());
        let batch_records = freshet_records::records(&batch_bytes, decompressed_batch_bytes_max)
            .map_err(|error| corrupt(header.base_offset, error.to_string()))?;
        for record in batch_records {
            let record = record.map_err(|error| corrupt(header.base_offset, error.to_string()))?;
            if record.offset < position {
                continue;
            }
            out.push(ConsumerRecord {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: record.offset,
                timestamp: record.timestamp,
                key: record.key,
                value: record.value,
                headers: record
                    .headers
                    .into_iter()
                    .map(|h| (String::from_utf8_lossy(&h.key).into_owned(), h.value))
                    .collect(),
            });
        }
        // Compaction may leave gaps: the batch's last offset decides, not its last record.
        position = header.last_offset() + 1;
    }
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_records::{BatchBuilder, BatchOptions, Compression, NewRecord};

    fn batch(
        base_offset: i64,
        values: &[&str],
        compression: Compression,
        control: bool,
    ) -> Vec<u8> {
        let mut builder = BatchBuilder::new(BatchOptions {
            base_offset,
            compression,
            control,
            ..BatchOptions::default()
        });
        for (i, value) in values.iter().enumerate() {
            let headers = [(&b"h"[..], Some(&b"x"[..]))];
            builder
                .push(&NewRecord {
                    timestamp_ms: 1_000 + i as i64,
                    key: Some(b"k"),
                    value: Some(value.as_bytes()),
                    headers: &headers,
                })
                .unwrap();
        }
        builder.build().unwrap()
    }

    fn partition_data(bytes: Vec<u8>) -> PartitionData {
        PartitionData {
            records: Some(Bytes::from(bytes)),
            ..Default::default()
        }
    }

    fn values(records: &[ConsumerRecord]) -> Vec<(i64, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn reads_from_the_position_inside_a_compressed_batch() {
        let tp = TopicPartition::new("t", 0);
        let mut bytes = batch(10, &["a", "b", "c"], Compression::Gzip, false);
        bytes.extend(batch(13, &["d"], Compression::None, false));
        let mut out = Vec::new();
        let next = read_partition(&tp, &partition_data(bytes), 11, 1 << 20, &mut out).unwrap();
        assert_eq!(next, 14);
        assert_eq!(
            values(&out),
            vec![(11, "b".into()), (12, "c".into()), (13, "d".into())]
        );
        assert_eq!(
            out[0].headers,
            vec![("h".to_owned(), Some(Bytes::from_static(b"x")))]
        );
        assert_eq!(out[0].timestamp, 1_001);
    }

    #[test]
    fn skips_control_batches_and_stops_at_a_cut_batch() {
        let tp = TopicPartition::new("t", 0);
        let mut bytes = batch(0, &["a"], Compression::None, false);
        bytes.extend(batch(1, &["marker"], Compression::None, true));
        bytes.extend(batch(2, &["b"], Compression::Snappy, false));
        let cut = batch(3, &["c", "d"], Compression::None, false);
        bytes.extend(&cut[..cut.len() - 5]);
        let mut out = Vec::new();
        let next = read_partition(&tp, &partition_data(bytes), 0, 1 << 20, &mut out).unwrap();
        assert_eq!(values(&out), vec![(0, "a".into()), (2, "b".into())]);
        assert_eq!(next, 3, "the cut batch is fetched again");
    }

    #[test]
    fn corrupt_batch_is_an_error_not_a_panic() {
        let tp = TopicPartition::new("t", 0);
        let mut bytes = batch(0, &["a", "b"], Compression::None, false);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let mut out = Vec::new();
        let error = read_partition(&tp, &partition_data(bytes), 0, 1 << 20, &mut out).unwrap_err();
        assert!(matches!(error, Error::CorruptRecords { .. }), "{error}");
    }
}
