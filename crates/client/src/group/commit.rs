//! Committed offsets: OffsetCommit (with the member's generation, so a member that lost its
//! partitions cannot overwrite the new owner's progress) and OffsetFetch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use freshet_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use freshet_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use freshet_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use freshet_protocol::ApiKey;

use crate::connection::PendingResponse;
use crate::error::{Error, KafkaCode, KafkaError};
use crate::TopicPartition;

use super::membership::{Coordinator, Recovery};

/// An offset to commit: the next offset to read, with optional metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub offset: i64,
    pub metadata: Option<String>,
}

impl OffsetAndMetadata {
    pub fn new(offset: i64) -> OffsetAndMetadata {
        OffsetAndMetadata {
            offset,
            metadata: None,
        }
    }
}

impl From<i64> for OffsetAndMetadata {
    fn from(offset: i64) -> OffsetAndMetadata {
        OffsetAndMetadata::new(offset)
    }
}

/// An OffsetCommit on its way, with the generation it carries.
pub(crate) struct SentCommit {
    pending: PendingResponse,
    generation: i32,
}

impl Coordinator {
    /// Writes an OffsetCommit for `offsets` on the coordinator connection (so commits keep
    /// their order) and returns the answer to wait for.
    pub(crate) async fn send_commit(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<SentCommit, Error> {
        let connection = self.connection().await?;
        self.send_commit_on(&connection, offsets)
    }

    /// The same on a known connection, without waiting: what `commit_async` uses.
    pub(crate) fn send_commit_on(
        &self,
        connection: &crate::connection::Connection,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<SentCommit, Error> {
        let version = connection.version(ApiKey::OffsetCommit)?;
        let (member_id, generation) = {
            let state = self.state();
            (state.member_id.clone(), state.generation)
        };
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, offset) in offsets {
            topics
                .entry(&tp.topic)
                .or_default()
                .push(OffsetCommitRequestPartition {
                    partition_index: tp.partition,
                    committed_offset: offset.offset,
                    committed_metadata: Some(offset.metadata.clone().unwrap_or_default()),
                    ..Default::default()
                });
        }
        let request = OffsetCommitRequest {
            group_id: self.group_id.clone(),
            generation_id_or_member_epoch: generation,
            member_id,
            group_instance_id: self.instance_id.clone(),
            topics: topics
                .into_iter()
                .map(|(name, partitions)| OffsetCommitRequestTopic {
                    name: name.to_owned(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let pending = connection.send(ApiKey::OffsetCommit, version, &request)?;
        Ok(SentCommit {
            pending,
            generation,
        })
    }

    /// Waits for a commit's answer; the first partition error is the result, and group
    /// errors update the membership (a rebalance, a lost member).
    pub(crate) async fn finish_commit(&self, sent: SentCommit) -> Result<(), (Error, Recovery)> {
        let response = match tokio::time::timeout(
            self.request_timeout,
            sent.pending.recv::<OffsetCommitResponse>(),
        )
        .await
        {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                if error.is_retriable() {
                    self.coordinator_unknown();
                }
                return Err((error, Recovery::Rediscover));
            }
            Err(_) => {
                self.coordinator_unknown();
                return Err((
                    Error::Timeout {
                        what: "OffsetCommit".into(),
                        timeout_ms: self.request_timeout.as_millis() as u64,
                    },
                    Recovery::Rediscover,
                ));
            }
        };
        for topic in &response.topics {
            for partition in &topic.partitions {
                if partition.error_code == 0 {
                    continue;
                }
                let recovery = self.on_group_error(partition.error_code, None, sent.generation);
                let error = Error::Resource {
                    resource: format!("partition {}-{}", topic.name, partition.partition_index),
                    error: KafkaError {
                        code: KafkaCode(partition.error_code),
                        message: None,
                    },
                };
                return Err((error, recovery));
            }
        }
        Ok(())
    }

    /// Commits and waits, retrying while the coordinator moves or loads (up to one request
    /// timeout). Errors that mean the partitions are no longer this member's are returned.
    pub(crate) async fn commit_sync(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error> {
        if offsets.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let outcome = match self.send_commit(offsets).await {
                Ok(sent) => self.finish_commit(sent).await,
                Err(error) => {
                    let recovery = if error.is_retriable() {
                        Recovery::Rediscover
                    } else {
                        Recovery::Fatal
                    };
                    Err((error, recovery))
                }
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err((error, Recovery::Rediscover | Recovery::Backoff))
                    if Instant::now() < deadline =>
                {
                    let _ = error;
                    tokio::time::sleep(self.retry_backoff).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// The committed offsets of `partitions` (`None`: nothing committed), retrying while the
    /// coordinator moves or loads or offsets are unstable (pending transactions).
    pub(crate) async fn fetch_committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, Error> {
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let error = match self.fetch_committed_once(partitions).await {
                Ok(result) => return Ok(result),
                Err(error) => error,
            };
            if !error.is_retriable() || Instant::now() >= deadline {
                return Err(error);
            }
            if matches!(
                error.kafka_code().map(|code| code.0),
                Some(
                    super::membership::NOT_COORDINATOR
                        | super::membership::COORDINATOR_NOT_AVAILABLE
                )
            ) {
                self.coordinator_unknown();
            }
            tokio::time::sleep(self.retry_backoff).await;
        }
    }

    async fn fetch_committed_once(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, Error> {
        let connection = self.connection().await?;
        let version = connection.version(ApiKey::OffsetFetch)?;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let batched = version >= 8;
        let request = if batched {
            OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id: self.group_id.clone(),
                    topics: Some(
                        by_topic
                            .iter()
                            .map(|(name, indexes)| OffsetFetchRequestTopics {
                                name: (*name).to_owned(),
                                partition_indexes: indexes.clone(),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }],
                require_stable: true,
                ..Default::default()
            }
        } else {
            OffsetFetchRequest {
                group_id: self.group_id.clone(),
                topics: Some(
                    by_topic
                        .iter()
                        .map(|(name, indexes)| OffsetFetchRequestTopic {
                            name: (*name).to_owned(),
                            partition_indexes: indexes.clone(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                require_stable: version >= 7,
                ..Default::default()
            }
        };
        let response: OffsetFetchResponse = self
            .call(
                &connection,
                ApiKey::OffsetFetch,
                version,
                &request,
                self.request_timeout,
            )
            .await?;
        // (topic, partition, offset, error) in either layout.
        let mut answers: Vec<(String, i32, i64, i16)> = Vec::new();
        let group_error = if batched {
            let group = response
                .groups
                .into_iter()
                .find(|group| group.group_id == self.group_id)
                .ok_or_else(|| Error::Protocol {
                    addr: connection.addr().to_owned(),
                    reason: format!("OffsetFetch response lacks group {}", self.group_id),
                })?;
            for topic in group.topics {
                for p in topic.partitions {
                    answers.push((
                        topic.name.clone(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    ));
                }
            }
            group.error_code
        } else {
            for topic in response.topics {
                for p in topic.partitions {
                    answers.push((
                        topic.name.clone(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    ));
                }
            }
            response.error_code
        };
        crate::error::check(group_error, None)?;
        let mut result: BTreeMap<TopicPartition, Option<i64>> =
            partitions.iter().map(|tp| (tp.clone(), None)).collect();
        for (topic, partition, offset, error_code) in answers {
            let tp = TopicPartition::new(topic, partition);
            if error_code != 0 {
                return Err(Error::Resource {
                    resource: format!("partition {tp}"),
                    error: KafkaError {
                        code: KafkaCode(error_code),
                        message: None,
                    },
                });
            }
            if let Some(slot) = result.get_mut(&tp) {
                *slot = (offset >= 0).then_some(offset);
            }
        }
        Ok(result)
    }
}

/// The outcome of [`super::GroupConsumer::commit_async`]: await it for the result, or drop
/// it (the commit goes on).
#[derive(Debug)]
pub struct CommitHandle {
    task: Option<tokio::task::JoinHandle<Result<(), Error>>>,
}

impl CommitHandle {
    pub(crate) fn spawn(
        coordinator: Arc<Coordinator>,
        sent: Result<SentCommit, Error>,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> CommitHandle {
        let task = tokio::spawn(async move {
            let sent = match sent {
                Ok(sent) => sent,
                // No live coordinator connection: look it up and send now.
                Err(_) => coordinator.send_commit(&offsets).await?,
            };
            coordinator
                .finish_commit(sent)
                .await
                .map_err(|(error, _)| error)
        });
        CommitHandle { task: Some(task) }
    }

    pub(crate) fn done() -> CommitHandle {
        CommitHandle { task: None }
    }

    /// Waits for the commit's result.
    pub async fn wait(mut self) -> Result<(), Error> {
        match self.task.take() {
            None => Ok(()),
            Some(task) => task.await.unwrap_or(Err(Error::Closed)),
        }
    }
}
