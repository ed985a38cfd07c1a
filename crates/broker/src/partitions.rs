//! The partitions this broker leads: one [`Log`] each, opened and closed as metadata changes.
//!
//! Invariant: a partition is in the registry exactly when the applied metadata image says this
//! node leads it; [`Partitions::sync`] restores that after every metadata change.

use crate::config::BrokerConfig;
use crate::flusher::Flusher;
use freshet_log::{FlushPolicy, Log, LogConfig, LogError};
use freshet_metadata::config::EffectiveTopicConfig;
use freshet_metadata::{MetadataImage, TopicId};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// Name of the directory holding the metadata quorum, beside the partition directories
/// (Kafka's name for its metadata log directory).
pub const METADATA_DIR: &str = "__cluster_metadata-0";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// One partition led by this broker.
pub struct Partition {
    pub topic_id: TopicId,
    pub leader_epoch: i32,
    pub log: Arc<Log>,
    /// The topic's configuration; replaced when AlterConfigs changes it (see [`Partitions::sync`]).
    config: RwLock<Arc<EffectiveTopicConfig>>,
    /// Offsets below this are visible to consumers: appended and, under the fsync policy,
    /// durable (a single node's high watermark). Long-polling fetches wait on it.
    high_watermark: watch::Sender<i64>,
    /// Idempotent-producer state. Produce holds the lock from the sequence check through the
    /// append, so two connections cannot both pass the check for the same sequence.
    pub producers: std::sync::Mutex<freshet_txn::ProducerStateTable>,
    /// Group commit for produce requests under the fsync-per-append policy.
    pub flusher: Flusher,
}

impl Partition {
    pub fn config(&self) -> Arc<EffectiveTopicConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies a changed topic configuration to the running partition and its log.
    fn reconfigure(&self, config: EffectiveTopicConfig) -> Result<(), LogError> {
        self.log.set_config(log_config(&config))?;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        Ok(())
    }

    /// Saves the idempotent-producer state for a fast, complete restart (clean shutdown).
    fn write_producer_snapshot(&self) {
        let producers = self.producers.lock().unwrap_or_else(|p| p.into_inner());
        let end_offset = self.log.log_end_offset();
        if let Err(e) =
            crate::producer_state::write_snapshot(self.log.dir(), &producers, end_offset)
        {
            tracing::warn!(dir = %self.log.dir().display(), error = %e, "writing producer snapshot");
        }
    }

    /// Forgets producers idle longer than `producer.id.expiration.ms`.
    pub fn expire_producers(&self, now_ms: i64) {
        self.producers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove_expired(now_ms);
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// Raises the high watermark (never lowers it: concurrent appenders may finish their
    /// flushes out of order) and wakes fetches waiting for data.
    pub fn advance_high_watermark(&self, offset: i64) {
        self.high_watermark.send_if_modified(|hw| {
            let raise = offset > *hw;
            if raise {
                *hw = offset;
            }
            raise
        });
    }

    /// A receiver that changes when the high watermark moves.
    pub fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Whether an append must wait for fsync before it is acknowledged and visible.
    pub fn fsync_on_append(&self) -> bool {
        self.log.config().flush == FlushPolicy::EveryAppend
    }
}

/// The registry of led partitions.
pub struct Partitions {
    data_dir: PathBuf,
    config: BrokerConfig,
    map: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Held by [`Partitions::sync`] for its whole run.
    sync_lock: std::sync::Mutex<()>,
}

/// Partitions per opening thread, at least: a thread costs tens of microseconds, one cold
/// partition open (reading checkpoints and indexes back from disk after a restart) costs
/// hundreds, so even a hundred partitions are spread over several threads.
const OPENS_PER_THREAD_MIN: usize = 8;

/// Threads that open logs at once, at least (see [`Partitions::open_all`]).
const OPEN_THREADS_MIN: usize = 8;

impl Partitions {
    pub fn new(config: &BrokerConfig) -> Self {
        Partitions {
            data_dir: config.data_dir.clone(),
            config: config.clone(),
            map: RwLock::default(),
            sync_lock: std::sync::Mutex::default(),
        }
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let key = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        self.read().get(&key).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.read().values().cloned().collect()
    }

    /// The partitions whose log a disk error took offline (usually none).
    pub fn offline(&self) -> std::collections::HashSet<TopicPartition> {
        self.read()
            .iter()
            .filter(|(_, p)| p.log.is_failed())
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the logs of partitions this node now leads and closes (and, for deleted topics,
    /// removes) the others. Errors opening one log are returned after the rest are handled.
    ///
    /// Blocking (file creation, fsync): call it off the async workers. The map's lock is held
    /// only to take out and put in entries, never while logs are opened or closed, so requests
    /// for other partitions go on while a topic of thousands of partitions is created. Syncs run
    /// one at a time, so a partition is never opened twice.
    pub fn sync(&self, image: &MetadataImage, node_id: i32) -> Result<(), LogError> {
        let _one_at_a_time = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        let wanted = led_partitions(image, node_id);
        let gone = self.take_unwanted(&wanted);
        for (tp, p) in &gone {
            close_and_remove(
                p,
                image
                    .topic(&tp.topic)
                    .is_none_or(|t| t.topic_id != p.topic_id),
            );
        }
        let mut first_error = None;
        let mut to_open = Vec::new();
        // One merge of defaults and overrides per topic, not per partition.
        let mut configs: HashMap<String, EffectiveTopicConfig> = HashMap::new();
        for (tp, (topic_id, leader_epoch)) in wanted {
            match self.get(&tp.topic, tp.partition) {
                Some(p) => {
                    let config = configs
                        .entry(tp.topic.clone())
                        .or_insert_with(|| self.effective_config(&image.topic_config(&tp.topic)));
                    if *p.config() != *config {
                        if let Err(e) = p.reconfigure(config.clone()) {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                None => to_open.push((tp, topic_id, leader_epoch)),
            }
        }
        // Directories that exist already (a restart) need no fsync of the data directory.
        let created = to_open
            .iter()
            .any(|(tp, _, _)| !partition_dir(&self.data_dir, tp).exists());
        let opened = self.open_all(image, to_open);
        if created {
            // New partition directories: one fsync of the data directory makes their entries
            // durable (each log makes its own files durable at its first flush).
            if let Err(e) = std::fs::File::open(&self.data_dir).and_then(|d| d.sync_all()) {
                tracing::error!(dir = %self.data_dir.display(), error = %e, "fsync of the data directory");
            }
        }
        let mut map = self.write();
        for (tp, result) in opened {
            match result {
                Ok(p) => {
                    map.insert(tp, Arc::new(p));
                }
                Err(e) => {
                    tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "cannot open partition log");
                    first_error.get_or_insert(e);
                }
            }
        }
        drop(map);
        first_error.map_or(Ok(()), Err)
    }

    /// Removes from the map the partitions this node no longer leads, and those whose topic
    /// was deleted and created again under the same name (a different topic id).
    fn take_unwanted(
        &self,
        wanted: &BTreeMap<TopicPartition, (TopicId, i32)>,
    ) -> Vec<(TopicPartition, Arc<Partition>)> {
        let mut map = self.write();
        let gone: Vec<TopicPartition> = map
            .iter()
            .filter(|(tp, p)| wanted.get(*tp).is_none_or(|(id, _)| *id != p.topic_id))
            .map(|(tp, _)| tp.clone())
            .collect();
        gone.into_iter()
            .filter_map(|tp| map.remove(&tp).map(|p| (tp, p)))
            .collect()
    }

    /// Opens logs on several threads: creating or reopening a partition is mostly file system
    /// work in the kernel, so thousands of partitions are opened in parallel.
    fn open_all(
        &self,
        image: &MetadataImage,
        to_open: Vec<(TopicPartition, TopicId, i32)>,
    ) -> Vec<(TopicPartition, Result<Partition, LogError>)> {
        // More threads than cores: opening is mostly waiting for the disk (file creation, the
        // fsync that makes a removed clean-shutdown marker durable).
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .max(OPEN_THREADS_MIN)
            .min(to_open.len().div_ceil(OPENS_PER_THREAD_MIN).max(1));
        if threads <= 1 {
            return to_open
                .into_iter()
                .map(|(tp, id, epoch)| {
                    let p = self.open(image, &tp, id, epoch);
                    (tp, p)
                })
                .collect();
        }
        let chunk = to_open.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = to_open
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(tp, id, epoch)| (tp.clone(), self.open(image, tp, *id, *epoch)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("opening partition logs panicked"))
                .collect()
        })
    }

    fn open(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        topic_id: TopicId,
        leader_epoch: i32,
    ) -> Result<Partition, LogError> {
        let config = self.effective_config(&image.topic_config(&tp.topic));
        let log = Log::open(partition_dir(&self.data_dir, tp), log_config(&config))?;
        let (high_watermark, _) = watch::channel(log.log_end_offset());
        let producers = std::sync::Mutex::new(crate::producer_state::rebuild(&log));
        let log = Arc::new(log);
        Ok(Partition {
            topic_id,
            leader_epoch,
            flusher: Flusher::new(log.clone()),
            log,
            config: RwLock::new(Arc::new(config)),
            high_watermark,
            producers,
        })
    }

    /// A topic's configuration: its overrides over the broker's defaults over Kafka's.
    pub fn effective_config(&self, overrides: &BTreeMap<String, String>) -> EffectiveTopicConfig {
        let mut merged: BTreeMap<String, String> = [
            ("retention.ms", self.config.log_retention_ms),
            ("retention.bytes", self.config.log_retention_bytes),
            ("segment.bytes", self.config.log_segment_bytes),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        merged.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        EffectiveTopicConfig::from_overrides(&merged).with_flush_overridden(
            overrides.contains_key("flush.messages") || overrides.contains_key("flush.ms"),
        )
    }

    /// Flushes and closes every log (clean shutdown: the logs write their clean markers).
    pub fn close_all(&self) {
        for p in self.write().drain().map(|(_, p)| p) {
            p.write_producer_snapshot();
            if let Err(e) = p.log.close() {
                tracing::error!(dir = %p.log.dir().display(), error = %e, "closing log");
            }
        }
    }
}

/// Whether the topic chose Kafka's interval flushing; without that, Freshet fsyncs every
/// append before acknowledging it (the safe default).
trait FlushOverride {
    fn with_flush_overridden(self, overridden: bool) -> Self;
}

impl FlushOverride for EffectiveTopicConfig {
    fn with_flush_overridden(mut self, overridden: bool) -> Self {
        if !overridden {
            self.flush_messages = 1;
        }
        self
    }
}

/// Maps Kafka's topic configs onto the log's.
pub fn log_config(c: &EffectiveTopicConfig) -> LogConfig {
    let positive = |v: i64| u64::try_from(v).ok().filter(|v| *v > 0);
    let flush = match (c.flush_messages, c.flush_ms) {
        (1, _) => FlushPolicy::EveryAppend,
        (i64::MAX, i64::MAX) => FlushPolicy::Never,
        (messages, ms) => FlushPolicy::Interval {
            flush_messages: positive(messages).filter(|m| *m != i64::MAX as u64),
            flush_ms: positive(ms).filter(|m| *m != i64::MAX as u64),
        },
    };
    LogConfig {
        segment_bytes_max: u32::try_from(c.segment_bytes.max(61)).unwrap_or(u32::MAX),
        segment_ms: positive(c.segment_ms).unwrap_or(u64::MAX),
        segment_index_bytes_max: u32::try_from(c.segment_index_bytes.max(24)).unwrap_or(u32::MAX),
        index_interval_bytes: u32::try_from(c.index_interval_bytes.max(1)).unwrap_or(4096),
        // A compacted-only topic keeps every segment: time and size retention are the
        // `delete` policy's (Kafka's rule), and compaction is the log cleaner's job.
        retention_ms: if c.cleanup_policy_delete {
            c.retention_ms.max(-1)
        } else {
            -1
        },
        retention_bytes: if c.cleanup_policy_delete {
            c.retention_bytes.max(-1)
        } else {
            -1
        },
        flush,
    }
}

fn led_partitions(image: &MetadataImage, node_id: i32) -> BTreeMap<TopicPartition, (TopicId, i32)> {
    let mut out = BTreeMap::new();
    for topic in image.topics() {
        for (i, p) in topic.partitions.iter().enumerate() {
            if p.leader == node_id {
                let tp = TopicPartition {
                    topic: topic.name.clone(),
                    partition: i as i32,
                };
                out.insert(tp, (topic.topic_id, p.leader_epoch));
            }
        }
    }
    out
}

pub fn partition_dir(data_dir: &Path, tp: &TopicPartition) -> PathBuf {
    data_dir.join(format!("{}-{}", tp.topic, tp.partition))
}

fn close_and_remove(p: &Partition, topic_deleted: bool) {
    if let Err(e) = p.log.close() {
        tracing::warn!(dir = %p.log.dir().display(), error = %e, "closing log");
    }
    if topic_deleted {
        if let Err(e) = std::fs::remove_dir_all(p.log.dir()) {
            tracing::warn!(dir = %p.log.dir().display(), error = %e, "removing deleted partition");
        }
    }
}
