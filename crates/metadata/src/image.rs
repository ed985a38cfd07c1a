//! The cluster state that replaying the metadata log produces.

use std::collections::BTreeMap;

use crate::config::EffectiveTopicConfig;
use crate::error::MetadataError;
use crate::names::validate_topic_name;
use crate::record::{
    BrokerRegistration, ConfigRecord, ConfigResourceType, MetadataRecord, PartitionChange,
    PartitionRecord, ProducerIdsBlock, TopicId,
};

/// One partition as the image holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// One topic: its name, id and partitions (dense, index = partition number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: TopicId,
    pub partitions: Vec<PartitionState>,
}

/// The whole cluster state at one point of the log. Cloning is a deep copy; readers share an
/// image behind an `Arc` rather than cloning it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataImage {
    cluster_id: Option<String>,
    topics: BTreeMap<TopicId, TopicImage>,
    topic_ids_by_name: BTreeMap<String, TopicId>,
    /// Explicit overrides only; defaults live in [`crate::config`].
    configs: BTreeMap<(ConfigResourceType, String), BTreeMap<String, String>>,
    brokers: BTreeMap<i32, BrokerRegistration>,
    /// The first producer id not yet handed out in a block.
    next_producer_id: i64,
    last_producer_ids_block: Option<ProducerIdsBlock>,
}

impl MetadataImage {
    /// The empty image, before the first record.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids_by_name
            .get(name)
            .and_then(|id| self.topics.get(id))
    }

    pub fn topic_by_id(&self, topic_id: TopicId) -> Option<&TopicImage> {
        self.topics.get(&topic_id)
    }

    /// Topics in id order.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }

    /// Topic names in name order (what Metadata with all topics lists).
    pub fn topic_names(&self) -> impl Iterator<Item = &str> {
        self.topic_ids_by_name.keys().map(String::as_str)
    }

    /// The partitions of a topic, or `None` when there is no such topic.
    pub fn partitions(&self, topic: &str) -> Option<&[PartitionState]> {
        self.topic(topic).map(|t| t.partitions.as_slice())
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        let index = usize::try_from(partition).ok()?;
        self.partitions(topic)?.get(index)
    }

    /// Explicit config overrides of a topic (empty when none or when there is no such topic).
    pub fn topic_config(&self, topic: &str) -> BTreeMap<String, String> {
        self.resource_config(ConfigResourceType::Topic, topic)
    }

    /// A topic's configs parsed, Kafka defaults filled in (what the log and produce path use).
    pub fn effective_topic_config(&self, topic: &str) -> EffectiveTopicConfig {
        EffectiveTopicConfig::from_overrides(&self.topic_config(topic))
    }

    /// Explicit config overrides of any resource.
    pub fn resource_config(
        &self,
        resource_type: ConfigResourceType,
        name: &str,
    ) -> BTreeMap<String, String> {
        self.configs
            .get(&(resource_type, name.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Registered brokers by node id.
    pub fn brokers(&self) -> &BTreeMap<i32, BrokerRegistration> {
        &self.brokers
    }

    pub fn broker(&self, node_id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&node_id)
    }

    /// The first producer id the next block will start at.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// The block most recently handed out, if any.
    pub fn last_producer_ids_block(&self) -> Option<ProducerIdsBlock> {
        self.last_producer_ids_block
    }

    /// Records that rebuild this image when applied, in order, to an empty one: the snapshot
    /// format of the metadata log (Kafka writes its snapshots the same way).
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        if let Some(id) = &self.cluster_id {
            records.push(MetadataRecord::ClusterId(id.clone()));
        }
        for broker in self.brokers.values() {
            records.push(MetadataRecord::RegisterBroker(broker.clone()));
        }
        for topic in self.topics.values() {
            push_topic_records(topic, &mut records);
        }
        for ((resource_type, name), entries) in &self.configs {
            for (key, value) in entries {
                records.push(MetadataRecord::Config(ConfigRecord {
                    resource_type: *resource_type,
                    resource_name: name.clone(),
                    key: key.clone(),
                    value: Some(value.clone()),
                }));
            }
        }
        if let Some(block) = self.last_producer_ids_block {
            records.push(MetadataRecord::ProducerIds(block));
        }
        records
    }

    /// Rebuilds an image from [`to_records`](Self::to_records) output.
    pub fn from_records(records: &[MetadataRecord]) -> Result<Self, (usize, MetadataError)> {
        let mut image = MetadataImage::new();
        image.apply_batch(records)?;
        Ok(image)
    }

    /// Applies a batch all or nothing: on error the image is as before and the index of the
    /// refused record is returned. A Raft entry is one batch, so a multi-record operation
    /// (a topic with its partitions and configs) is never half applied.
    pub fn apply_batch(
        &mut self,
        records: &[MetadataRecord],
    ) -> Result<(), (usize, MetadataError)> {
        let mut next = self.clone();
        for (index, record) in records.iter().enumerate() {
            next.apply(record).map_err(|e| (index, e))?;
        }
        *self = next;
        Ok(())
    }

    /// Applies one record. Validates first, so on error the image is unchanged.
    pub fn apply(&mut self, record: &MetadataRecord) -> Result<(), MetadataError> {
        match record {
            MetadataRecord::ClusterId(id) => self.apply_cluster_id(id),
            MetadataRecord::RegisterBroker(b) => self.apply_register_broker(b),
            MetadataRecord::UnregisterBroker {
                node_id,
                broker_epoch,
            } => self.apply_unregister_broker(*node_id, *broker_epoch),
            MetadataRecord::Topic { name, topic_id } => self.apply_topic(name, *topic_id),
            MetadataRecord::Partition(p) => self.apply_partition(p),
            MetadataRecord::PartitionChange(c) => self.apply_partition_change(c),
            MetadataRecord::RemoveTopic { topic_id } => self.apply_remove_topic(*topic_id),
            MetadataRecord::Config(c) => self.apply_config(c),
            MetadataRecord::ProducerIds(b) => self.apply_producer_ids(b),
        }
    }

    fn apply_cluster_id(&mut self, id: &str) -> Result<(), MetadataError> {
        match &self.cluster_id {
            Some(existing) if existing != id => Err(MetadataError::ClusterIdAlreadySet {
                existing: existing.clone(),
                proposed: id.to_string(),
            }),
            _ => {
                self.cluster_id = Some(id.to_string());
                Ok(())
            }
        }
    }

    fn apply_register_broker(&mut self, b: &BrokerRegistration) -> Result<(), MetadataError> {
        if let Some(current) = self.brokers.get(&b.node_id) {
            if b.broker_epoch <= current.broker_epoch {
                return Err(MetadataError::StaleBrokerEpoch {
                    node_id: b.node_id,
                    current: current.broker_epoch,
                    proposed: b.broker_epoch,
                });
            }
        }
        self.brokers.insert(b.node_id, b.clone());
        Ok(())
    }

    fn apply_unregister_broker(&mut self, node_id: i32, epoch: i64) -> Result<(), MetadataError> {
        let current = self
            .brokers
            .get(&node_id)
            .ok_or(MetadataError::UnknownBroker(node_id))?;
        if current.broker_epoch != epoch {
            return Err(MetadataError::StaleBrokerEpoch {
                node_id,
                current: current.broker_epoch,
                proposed: epoch,
            });
        }
        self.brokers.remove(&node_id);
        Ok(())
    }

    fn apply_topic(&mut self, name: &str, topic_id: TopicId) -> Result<(), MetadataError> {
        if validate_topic_name(name).is_err() {
            return Err(MetadataError::InvalidTopicName(name.to_string()));
        }
        if self.topic_ids_by_name.contains_key(name) {
            return Err(MetadataError::DuplicateTopicName(name.to_string()));
        }
        if topic_id == TopicId::ZERO || self.topics.contains_key(&topic_id) {
            return Err(MetadataError::DuplicateTopicId(topic_id));
        }
        self.topic_ids_by_name.insert(name.to_string(), topic_id);
        let topic = TopicImage {
            name: name.to_string(),
            topic_id,
            partitions: Vec::new(),
        };
        self.topics.insert(topic_id, topic);
        Ok(())
    }

    fn apply_partition(&mut self, p: &PartitionRecord) -> Result<(), MetadataError> {
        let topic = self
            .topics
            .get_mut(&p.topic_id)
            .ok_or(MetadataError::UnknownTopicId(p.topic_id))?;
        // Partitions are created in order, so the vector index is the partition number.
        let expected = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if p.partition != expected {
            return Err(MetadataError::PartitionOutOfOrder {
                topic_id: p.topic_id,
                partition: p.partition,
                expected,
            });
        }
        let state = PartitionState {
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
        };
        validate_partition_state(&state)?;
        topic.partitions.push(state);
        Ok(())
    }

    fn apply_partition_change(&mut self, c: &PartitionChange) -> Result<(), MetadataError> {
        let unknown = MetadataError::UnknownPartition {
            topic_id: c.topic_id,
            partition: c.partition,
        };
        let topic = self
            .topics
            .get_mut(&c.topic_id)
            .ok_or(MetadataError::UnknownTopicId(c.topic_id))?;
        let index = usize::try_from(c.partition).map_err(|_| unknown.clone())?;
        let current = topic.partitions.get_mut(index).ok_or(unknown)?;
        let next = changed_partition(current, c);
        validate_partition_state(&next)?;
        *current = next;
        Ok(())
    }

    fn apply_remove_topic(&mut self, topic_id: TopicId) -> Result<(), MetadataError> {
        let topic = self
            .topics
            .remove(&topic_id)
            .ok_or(MetadataError::UnknownTopicId(topic_id))?;
        self.topic_ids_by_name.remove(&topic.name);
        self.configs
            .remove(&(ConfigResourceType::Topic, topic.name));
        Ok(())
    }

    fn apply_config(&mut self, c: &ConfigRecord) -> Result<(), MetadataError> {
        if c.resource_type == ConfigResourceType::Topic
            && !self.topic_ids_by_name.contains_key(&c.resource_name)
        {
            return Err(MetadataError::UnknownTopicName(c.resource_name.clone()));
        }
        let key = (c.resource_type, c.resource_name.clone());
        match &c.value {
            Some(value) => {
                let entries = self.configs.entry(key).or_default();
                entries.insert(c.key.clone(), value.clone());
            }
            None => {
                if let Some(entries) = self.configs.get_mut(&key) {
                    entries.remove(&c.key);
                    if entries.is_empty() {
                        self.configs.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn apply_producer_ids(&mut self, b: &ProducerIdsBlock) -> Result<(), MetadataError> {
        // Blocks never overlap ids already handed out; a gap is harmless (a snapshot restores
        // only the last block, which starts after earlier ones).
        if b.first_producer_id < self.next_producer_id {
            return Err(MetadataError::ProducerIdsOutOfOrder {
                expected: self.next_producer_id,
                proposed: b.first_producer_id,
            });
        }
        if b.block_size <= 0 {
            return Err(MetadataError::InvalidProducerIds(
                "block size must be positive",
            ));
        }
        let next = b
            .next_producer_id()
            .ok_or(MetadataError::InvalidProducerIds("producer ids exhausted"))?;
        self.next_producer_id = next;
        self.last_producer_ids_block = Some(*b);
        Ok(())
    }
}

fn push_topic_records(topic: &TopicImage, records: &mut Vec<MetadataRecord>) {
    records.push(MetadataRecord::Topic {
        name: topic.name.clone(),
        topic_id: topic.topic_id,
    });
    for (index, p) in topic.partitions.iter().enumerate() {
        records.push(MetadataRecord::Partition(PartitionRecord {
            topic_id: topic.topic_id,
            partition: i32::try_from(index).expect("partition count fits i32 by construction"),
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
        }));
    }
}

/// The partition after a change: a new leader bumps the leader epoch, any change bumps the
/// partition epoch.
fn changed_partition(current: &PartitionState, c: &PartitionChange) -> PartitionState {
    let mut next = current.clone();
    if let Some(leader) = c.leader {
        if leader != current.leader {
            next.leader = leader;
            next.leader_epoch = current.leader_epoch.saturating_add(1);
        }
    }
    if let Some(isr) = &c.isr {
        next.isr = isr.clone();
    }
    if let Some(replicas) = &c.replicas {
        next.replicas = replicas.clone();
    }
    next.partition_epoch = current.partition_epoch.saturating_add(1);
    next
}

/// Replicas are non-empty and distinct, the ISR is a subset of them, and the leader is one of
/// the ISR (or -1 for none).
fn validate_partition_state(p: &PartitionState) -> Result<(), MetadataError> {
    if p.replicas.is_empty() {
        return Err(MetadataError::InvalidPartitionState("no replicas"));
    }
    let mut sorted = p.replicas.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != p.replicas.len() {
        return Err(MetadataError::InvalidPartitionState("duplicate replica"));
    }
    if p.isr.iter().any(|r| !p.replicas.contains(r)) {
        return Err(MetadataError::InvalidPartitionState(
            "in-sync replica not in replicas",
        ));
    }
    if p.leader != -1 && !p.isr.contains(&p.leader) {
        return Err(MetadataError::InvalidPartitionState("leader not in sync"));
    }
    if p.leader_epoch < 0 || p.partition_epoch < 0 {
        return Err(MetadataError::InvalidPartitionState("negative epoch"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: TopicId = TopicId([1; 16]);
    const T2: TopicId = TopicId([2; 16]);

    fn topic(name: &str, topic_id: TopicId) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            topic_id,
        }
    }

    fn partition(topic_id: TopicId, partition: i32, replicas: Vec<i32>) -> MetadataRecord {
        MetadataRecord::Partition(PartitionRecord {
            topic_id,
            partition,
            isr: replicas.clone(),
            leader: replicas[0],
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
        })
    }

    fn config(name: &str, key: &str, value: Option<&str>) -> MetadataRecord {
        MetadataRecord::Config(ConfigRecord {
            resource_type: ConfigResourceType::Topic,
            resource_name: name.into(),
            key: key.into(),
            value: value.map(str::to_string),
        })
    }

    fn broker(node_id: i32, broker_epoch: i64) -> MetadataRecord {
        MetadataRecord::RegisterBroker(BrokerRegistration {
            node_id,
            broker_epoch,
            host: "localhost".into(),
            port: 9092,
            rack: None,
        })
    }

    fn image_with_topic() -> MetadataImage {
        let mut image = MetadataImage::new();
        image
            .apply_batch(&[
                topic("a", T1),
                partition(T1, 0, vec![1]),
                partition(T1, 1, vec![1]),
            ])
            .unwrap();
        image
    }

    #[test]
    fn topic_and_partitions_are_visible_by_name_and_id() {
        let image = image_with_topic();
        assert_eq!(image.topic("a").unwrap().topic_id, T1);
        assert_eq!(image.topic_by_id(T1).unwrap().name, "a");
        assert_eq!(image.partitions("a").unwrap().len(), 2);
        assert_eq!(
            image.partition("a", 1),
            Some(&PartitionState {
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0
            })
        );
        assert_eq!(image.partition("a", 2), None);
        assert_eq!(image.partition("a", -1), None);
        assert_eq!(image.topic_names().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn duplicate_topic_name_or_id_is_refused() {
        let mut image = image_with_topic();
        assert_eq!(
            image.apply(&topic("a", T2)),
            Err(MetadataError::DuplicateTopicName("a".into()))
        );
        assert_eq!(
            image.apply(&topic("b", T1)),
            Err(MetadataError::DuplicateTopicId(T1))
        );
        assert_eq!(
            image.apply(&topic("b", TopicId::ZERO)),
            Err(MetadataError::DuplicateTopicId(TopicId::ZERO))
        );
        assert_eq!(
            image.apply(&topic("a b", T2)),
            Err(MetadataError::InvalidTopicName("a b".into()))
        );
    }

    #[test]
    fn partitions_must_reference_a_topic_and_come_in_order() {
        let mut image = image_with_topic();
        assert_eq!(
            image.apply(&partition(T2, 0, vec![1])),
            Err(MetadataError::UnknownTopicId(T2))
        );
        assert_eq!(
            image.apply(&partition(T1, 3, vec![1])),
            Err(MetadataError::PartitionOutOfOrder {
                topic_id: T1,
                partition: 3,
                expected: 2
            })
        );
        assert_eq!(
            image.apply(&partition(T1, 2, vec![1, 1])),
            Err(MetadataError::InvalidPartitionState("duplicate replica"))
        );
        assert_eq!(image.apply(&partition(T1, 2, vec![1, 2])), Ok(()));
    }

    #[test]
    fn failed_batch_leaves_image_unchanged() {
        let mut image = image_with_topic();
        let before = image.clone();
        let result = image.apply_batch(&[topic("b", T2), topic("b", TopicId([3; 16]))]);
        assert_eq!(
            result,
            Err((1, MetadataError::DuplicateTopicName("b".into())))
        );
        assert_eq!(image, before);
    }

    #[test]
    fn partition_change_bumps_epochs() {
        let mut image = image_with_topic();
        image.apply(&partition(T1, 2, vec![1, 2])).unwrap();
        let change = |leader, isr: Option<Vec<i32>>| {
            MetadataRecord::PartitionChange(PartitionChange {
                topic_id: T1,
                partition: 2,
                leader,
                isr,
                replicas: None,
            })
        };
        image.apply(&change(Some(2), None)).unwrap();
        let p = image.partition("a", 2).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 1));
        image.apply(&change(None, Some(vec![2]))).unwrap();
        let p = image.partition("a", 2).unwrap();
        assert_eq!(
            (p.isr.clone(), p.leader_epoch, p.partition_epoch),
            (vec![2], 1, 2)
        );
        assert_eq!(
            image.apply(&change(Some(1), None)),
            Err(MetadataError::InvalidPartitionState("leader not in sync"))
        );
        assert_eq!(
            image.apply(&MetadataRecord::PartitionChange(PartitionChange {
                topic_id: T1,
                partition: 9,
                leader: None,
                isr: None,
                replicas: None
            })),
            Err(MetadataError::UnknownPartition {
                topic_id: T1,
                partition: 9
            })
        );
    }

    #[test]
    fn configs_set_delete_and_vanish_with_topic() {
        let mut image = image_with_topic();
        image
            .apply(&config("a", "retention.ms", Some("1000")))
            .unwrap();
        image
            .apply(&config("a", "segment.bytes", Some("2000000")))
            .unwrap();
        image.apply(&config("a", "segment.bytes", None)).unwrap();
        let expected: BTreeMap<String, String> =
            [("retention.ms".to_string(), "1000".to_string())].into();
        assert_eq!(image.topic_config("a"), expected);
        assert_eq!(image.effective_topic_config("a").retention_ms, 1000);
        assert_eq!(
            image.effective_topic_config("a").segment_bytes,
            1_073_741_824
        );
        assert_eq!(
            image.apply(&config("nope", "retention.ms", Some("1"))),
            Err(MetadataError::UnknownTopicName("nope".into()))
        );
        image
            .apply(&MetadataRecord::RemoveTopic { topic_id: T1 })
            .unwrap();
        assert!(image.topic("a").is_none());
        assert!(image.topic_config("a").is_empty());
        // The name is free again, under a new id.
        image.apply(&topic("a", T2)).unwrap();
        assert!(image.topic_config("a").is_empty());
        assert_eq!(
            image.apply(&MetadataRecord::RemoveTopic { topic_id: T1 }),
            Err(MetadataError::UnknownTopicId(T1))
        );
    }

    #[test]
    fn broker_epochs_only_move_forward() {
        let mut image = MetadataImage::new();
        image.apply(&broker(1, 1)).unwrap();
        assert_eq!(
            image.apply(&broker(1, 1)),
            Err(MetadataError::StaleBrokerEpoch {
                node_id: 1,
                current: 1,
                proposed: 1
            })
        );
        image.apply(&broker(1, 2)).unwrap();
        assert_eq!(
            image.apply(&MetadataRecord::UnregisterBroker {
                node_id: 1,
                broker_epoch: 1
            }),
            Err(MetadataError::StaleBrokerEpoch {
                node_id: 1,
                current: 2,
                proposed: 1
            })
        );
        image
            .apply(&MetadataRecord::UnregisterBroker {
                node_id: 1,
                broker_epoch: 2,
            })
            .unwrap();
        assert!(image.brokers().is_empty());
    }

    #[test]
    fn producer_id_blocks_are_contiguous() {
        let mut image = MetadataImage::new();
        let block = |first, size| {
            MetadataRecord::ProducerIds(ProducerIdsBlock {
                assigned_to_node: 1,
                first_producer_id: first,
                block_size: size,
            })
        };
        image.apply(&block(0, 1000)).unwrap();
        assert_eq!(image.next_producer_id(), 1000);
        image.apply(&block(5000, 10)).unwrap();
        assert_eq!(image.next_producer_id(), 5010);
        assert_eq!(
            image.apply(&block(0, 1000)),
            Err(MetadataError::ProducerIdsOutOfOrder {
                expected: 5010,
                proposed: 0
            })
        );
        assert_eq!(
            image.apply(&block(6000, 0)),
            Err(MetadataError::InvalidProducerIds(
                "block size must be positive"
            ))
        );
    }

    #[test]
    fn to_records_rebuilds_the_same_image() {
        let mut image = image_with_topic();
        image
            .apply_batch(&[
                MetadataRecord::ClusterId("c".into()),
                broker(1, 3),
                config("a", "retention.ms", Some("5")),
                MetadataRecord::ProducerIds(ProducerIdsBlock {
                    assigned_to_node: 1,
                    first_producer_id: 2000,
                    block_size: 1000,
                }),
                MetadataRecord::PartitionChange(PartitionChange {
                    topic_id: T1,
                    partition: 1,
                    leader: Some(-1),
                    isr: Some(vec![]),
                    replicas: None,
                }),
            ])
            .unwrap();
        let rebuilt = MetadataImage::from_records(&image.to_records()).unwrap();
        assert_eq!(rebuilt, image);
        assert_eq!(rebuilt.next_producer_id(), 3000);
    }

    #[test]
    fn cluster_id_is_set_once() {
        let mut image = MetadataImage::new();
        image
            .apply(&MetadataRecord::ClusterId("c1".into()))
            .unwrap();
        image
            .apply(&MetadataRecord::ClusterId("c1".into()))
            .unwrap();
        assert_eq!(
            image.apply(&MetadataRecord::ClusterId("c2".into())),
            Err(MetadataError::ClusterIdAlreadySet {
                existing: "c1".into(),
                proposed: "c2".into()
            })
        );
        assert_eq!(image.cluster_id(), Some("c1"));
    }
}
