//! The controller's decisions, without I/O: each function checks a request against the
//! current image and returns the records to propose, or the error to answer with.
//!
//! The records are checked again when applied (two proposals decided against the same image
//! may conflict; the second then fails at apply and changes nothing).

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{topic_config_def, validate_topic_config, ConfigKind};
use crate::error::{kafka_code, TopicError};
use crate::image::MetadataImage;
use crate::names::validate_topic_name;
use crate::record::{
    BrokerRegistration, ConfigRecord, ConfigResourceType, MetadataRecord, PartitionRecord,
    ProducerIdsBlock, TopicId,
};

/// Our own limit on partitions per topic, so one request cannot make a Raft entry or the
/// image grow without bound (Kafka has no hard limit; 100k is far beyond a single node).
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 100_000;

/// Producer ids handed to a broker at a time (Kafka's block size).
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

/// Broker-wide settings the controller decides with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerSettings {
    /// `num.partitions`: used when a request asks for -1 partitions (or auto-creation).
    pub default_num_partitions: i32,
    /// `default.replication.factor`: used when a request asks for -1.
    pub default_replication_factor: i16,
    /// While log compaction does not exist, `cleanup.policy=compact` is refused clearly
    /// instead of being accepted and silently not honoured.
    pub compact_supported: bool,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings {
            default_num_partitions: 1,
            default_replication_factor: 1,
            compact_supported: false,
        }
    }
}

/// A CreateTopics entry. `None` counts mean "the broker default" (Kafka's -1).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewTopic {
    pub name: String,
    pub num_partitions: Option<i32>,
    pub replication_factor: Option<i16>,
    /// Config overrides; a `None` value is refused as in Kafka.
    pub configs: Vec<(String, Option<String>)>,
}

/// Records that create a topic: the topic, its partitions, then its config overrides.
/// `topic_id` comes from the caller's random source (this crate does no I/O).
pub fn create_topic(
    image: &MetadataImage,
    request: &NewTopic,
    topic_id: TopicId,
    settings: &ControllerSettings,
) -> Result<Vec<MetadataRecord>, TopicError> {
    validate_topic_name(&request.name).map_err(TopicError::InvalidTopic)?;
    if image.topic(&request.name).is_some() {
        return Err(TopicError::TopicAlreadyExists(request.name.clone()));
    }
    let configs = validated_new_configs(&request.configs, settings)?;
    let num_partitions = request
        .num_partitions
        .unwrap_or(settings.default_num_partitions);
    check_partition_count(num_partitions)?;
    let replication_factor = request
        .replication_factor
        .unwrap_or(settings.default_replication_factor);
    let brokers = replica_candidates(image, replication_factor)?;
    if topic_id == TopicId::ZERO || image.topic_by_id(topic_id).is_some() {
        return Err(TopicError::InvalidRequest(format!(
            "topic id {topic_id} is not fresh"
        )));
    }
    let mut records = vec![MetadataRecord::Topic {
        name: request.name.clone(),
        topic_id,
    }];
    for partition in 0..num_partitions {
        records.push(new_partition(
            topic_id,
            partition,
            &brokers,
            replication_factor,
        ));
    }
    records.extend(
        configs
            .into_iter()
            .map(|(key, value)| topic_config_record(&request.name, key, Some(value))),
    );
    Ok(records)
}

/// Records that delete a topic by name.
pub fn delete_topic(image: &MetadataImage, name: &str) -> Result<Vec<MetadataRecord>, TopicError> {
    let topic = image
        .topic(name)
        .ok_or(TopicError::UnknownTopicOrPartition)?;
    Ok(vec![MetadataRecord::RemoveTopic {
        topic_id: topic.topic_id,
    }])
}

/// Records that delete a topic by id (DeleteTopics v6+).
pub fn delete_topic_by_id(
    image: &MetadataImage,
    topic_id: TopicId,
) -> Result<Vec<MetadataRecord>, TopicError> {
    if image.topic_by_id(topic_id).is_none() {
        return Err(TopicError::UnknownTopicId);
    }
    Ok(vec![MetadataRecord::RemoveTopic { topic_id }])
}

/// Records that grow a topic to `new_total` partitions (CreatePartitions; never shrinks).
/// New partitions get as many replicas as partition 0 has.
pub fn create_partitions(
    image: &MetadataImage,
    name: &str,
    new_total: i32,
) -> Result<Vec<MetadataRecord>, TopicError> {
    let topic = image
        .topic(name)
        .ok_or(TopicError::UnknownTopicOrPartition)?;
    let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    if new_total < current {
        return Err(TopicError::InvalidPartitions(format!(
            "The topic {name} currently has {current} partition(s); {new_total} would not be an increase."
        )));
    }
    if new_total == current {
        return Err(TopicError::InvalidPartitions(format!(
            "Topic already has {current} partition(s)."
        )));
    }
    check_partition_count(new_total)?;
    let replication_factor = topic
        .partitions
        .first()
        .map(|p| i16::try_from(p.replicas.len()).unwrap_or(i16::MAX))
        .unwrap_or(1);
    let brokers = replica_candidates(image, replication_factor)?;
    Ok((current..new_total)
        .map(|p| new_partition(topic.topic_id, p, &brokers, replication_factor))
        .collect())
}

/// One operation of IncrementalAlterConfigs (KIP-339), with Kafka's op codes in comments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigOp {
    /// 0: set the value.
    Set(String),
    /// 1: remove the override (back to the default).
    Delete,
    /// 2: add items to a list config.
    Append(String),
    /// 3: remove items from a list config.
    Subtract(String),
}

/// Records for IncrementalAlterConfigs on one topic.
pub fn incremental_alter_topic_configs(
    image: &MetadataImage,
    topic: &str,
    ops: &[(String, ConfigOp)],
    settings: &ControllerSettings,
) -> Result<Vec<MetadataRecord>, TopicError> {
    if image.topic(topic).is_none() {
        return Err(TopicError::UnknownTopicOrPartition);
    }
    reject_duplicate_keys(ops.iter().map(|(k, _)| k.as_str()))?;
    let current = image.topic_config(topic);
    ops.iter()
        .map(|(key, op)| {
            let value = altered_value(&current, key, op)?;
            if let Some(value) = &value {
                check_new_value(key, value, settings)?;
            }
            Ok(topic_config_record(topic, key.clone(), value))
        })
        .collect()
}

/// Records for the legacy AlterConfigs on one topic: the request is the whole new set of
/// overrides, so every existing override it does not name is deleted.
pub fn replace_topic_configs(
    image: &MetadataImage,
    topic: &str,
    configs: &[(String, Option<String>)],
    settings: &ControllerSettings,
) -> Result<Vec<MetadataRecord>, TopicError> {
    if image.topic(topic).is_none() {
        return Err(TopicError::UnknownTopicOrPartition);
    }
    let new = validated_new_configs(configs, settings)?;
    let mut records: Vec<MetadataRecord> = image
        .topic_config(topic)
        .into_keys()
        .filter(|key| !new.contains_key(key))
        .map(|key| topic_config_record(topic, key, None))
        .collect();
    records.extend(
        new.into_iter()
            .map(|(key, value)| topic_config_record(topic, key, Some(value))),
    );
    Ok(records)
}

/// Why producer ids could not be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerIdError {
    #[error("broker {0} is not registered")]
    BrokerNotRegistered(i32),
    #[error("producer ids are exhausted")]
    Exhausted,
}

impl ProducerIdError {
    pub fn error_code(&self) -> i16 {
        match self {
            ProducerIdError::BrokerNotRegistered(_) => kafka_code::BROKER_ID_NOT_REGISTERED,
            ProducerIdError::Exhausted => kafka_code::UNKNOWN_SERVER_ERROR,
        }
    }
}

/// The record that hands the next block of producer ids to `node_id`.
pub fn allocate_producer_ids(
    image: &MetadataImage,
    node_id: i32,
) -> Result<Vec<MetadataRecord>, ProducerIdError> {
    if image.broker(node_id).is_none() {
        return Err(ProducerIdError::BrokerNotRegistered(node_id));
    }
    let block = ProducerIdsBlock {
        assigned_to_node: node_id,
        first_producer_id: image.next_producer_id(),
        block_size: PRODUCER_ID_BLOCK_SIZE,
    };
    if block.next_producer_id().is_none() {
        return Err(ProducerIdError::Exhausted);
    }
    Ok(vec![MetadataRecord::ProducerIds(block)])
}

/// The record that (re-)registers a broker, with an epoch after any earlier registration.
pub fn register_broker(
    image: &MetadataImage,
    node_id: i32,
    host: &str,
    port: u16,
    rack: Option<&str>,
) -> Vec<MetadataRecord> {
    let broker_epoch = image
        .broker(node_id)
        .map_or(1, |b| b.broker_epoch.saturating_add(1));
    vec![MetadataRecord::RegisterBroker(BrokerRegistration {
        node_id,
        broker_epoch,
        host: host.to_string(),
        port,
        rack: rack.map(str::to_string),
    })]
}

/// The record that sets the cluster id on a fresh log; nothing once it is set.
pub fn bootstrap_cluster_id(image: &MetadataImage, cluster_id: &str) -> Vec<MetadataRecord> {
    match image.cluster_id() {
        Some(_) => Vec::new(),
        None => vec![MetadataRecord::ClusterId(cluster_id.to_string())],
    }
}

/// What a broker proposes once its quorum is open: the cluster id when the log is fresh,
/// and its own registration (a new epoch on every start), as one batch.
pub fn startup_records(
    image: &MetadataImage,
    cluster_id_if_new: &str,
    node_id: i32,
    host: &str,
    port: u16,
    rack: Option<&str>,
) -> Vec<MetadataRecord> {
    let mut records = bootstrap_cluster_id(image, cluster_id_if_new);
    records.extend(register_broker(image, node_id, host, port, rack));
    records
}

fn check_partition_count(num_partitions: i32) -> Result<(), TopicError> {
    if num_partitions <= 0 {
        return Err(TopicError::InvalidPartitions(
            "Number of partitions was set to an invalid non-positive value.".to_string(),
        ));
    }
    if num_partitions > PARTITIONS_PER_TOPIC_MAX {
        return Err(TopicError::InvalidPartitions(format!(
            "Number of partitions {num_partitions} is above this broker's limit of {PARTITIONS_PER_TOPIC_MAX}."
        )));
    }
    Ok(())
}

/// The registered broker ids to place replicas on, when there are enough of them.
fn replica_candidates(
    image: &MetadataImage,
    replication_factor: i16,
) -> Result<Vec<i32>, TopicError> {
    if replication_factor <= 0 {
        return Err(TopicError::InvalidReplicationFactor(
            "Replication factor must be larger than 0, or -1 to use the default value.".to_string(),
        ));
    }
    let brokers: Vec<i32> = image.brokers().keys().copied().collect();
    if usize::try_from(replication_factor).unwrap_or(usize::MAX) > brokers.len() {
        return Err(TopicError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only {} broker(s) are registered.",
            brokers.len()
        )));
    }
    Ok(brokers)
}

/// A new partition with replicas placed round robin: partition p starts at broker p mod n,
/// so leaders spread evenly. (Kafka starts at a random broker; a fixed start keeps the
/// controller deterministic, which tests and a future simulator rely on.)
fn new_partition(
    topic_id: TopicId,
    partition: i32,
    brokers: &[i32],
    replication_factor: i16,
) -> MetadataRecord {
    assert!(
        !brokers.is_empty(),
        "replica_candidates checked there are brokers"
    );
    let start = usize::try_from(partition).expect("partition numbers are non-negative");
    let replicas: Vec<i32> = (0..usize::try_from(replication_factor).expect("checked positive"))
        .map(|j| brokers[(start + j) % brokers.len()])
        .collect();
    MetadataRecord::Partition(PartitionRecord {
        topic_id,
        partition,
        leader: replicas[0],
        isr: replicas.clone(),
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
    })
}

fn validated_new_configs(
    configs: &[(String, Option<String>)],
    settings: &ControllerSettings,
) -> Result<BTreeMap<String, String>, TopicError> {
    reject_duplicate_keys(configs.iter().map(|(k, _)| k.as_str()))?;
    let mut valid = BTreeMap::new();
    for (key, value) in configs {
        let value = value.as_ref().ok_or_else(|| {
            TopicError::InvalidConfig(format!("Null value not supported for topic configs: {key}"))
        })?;
        check_new_value(key, value, settings)?;
        valid.insert(key.clone(), value.clone());
    }
    Ok(valid)
}

fn check_new_value(
    key: &str,
    value: &str,
    settings: &ControllerSettings,
) -> Result<(), TopicError> {
    validate_topic_config(key, value).map_err(TopicError::InvalidConfig)?;
    let compact = key == "cleanup.policy" && value.split(',').any(|s| s.trim() == "compact");
    if compact && !settings.compact_supported {
        return Err(TopicError::InvalidConfig(
            "cleanup.policy=compact is not supported by this broker yet (log compaction is not implemented)".to_string(),
        ));
    }
    Ok(())
}

fn reject_duplicate_keys<'a>(keys: impl Iterator<Item = &'a str>) -> Result<(), TopicError> {
    let mut seen = BTreeSet::new();
    for key in keys {
        if !seen.insert(key) {
            return Err(TopicError::InvalidRequest(format!(
                "Error due to duplicate config keys: {key}"
            )));
        }
    }
    Ok(())
}

/// The value a config has after `op`, `None` meaning "deleted".
fn altered_value(
    current: &BTreeMap<String, String>,
    key: &str,
    op: &ConfigOp,
) -> Result<Option<String>, TopicError> {
    let def = topic_config_def(key)
        .ok_or_else(|| TopicError::InvalidConfig(format!("Unknown topic config name: {key}")))?;
    let is_list = matches!(def.kind, ConfigKind::ListOf(_) | ConfigKind::ReplicaList);
    let items = || -> Vec<String> {
        let value = current.get(key).map_or(def.default, String::as_str);
        split_list(value)
    };
    match op {
        ConfigOp::Set(value) => Ok(Some(value.clone())),
        ConfigOp::Delete => Ok(None),
        ConfigOp::Append(_) | ConfigOp::Subtract(_) if !is_list => {
            let verb = if matches!(op, ConfigOp::Append(_)) {
                "append"
            } else {
                "subtract"
            };
            Err(TopicError::InvalidConfig(format!(
                "Config value {verb} is not allowed for config key: {key}"
            )))
        }
        ConfigOp::Append(value) => {
            let mut list = items();
            for item in split_list(value) {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
            Ok(Some(list.join(",")))
        }
        ConfigOp::Subtract(value) => {
            let remove = split_list(value);
            let list: Vec<String> = items()
                .into_iter()
                .filter(|i| !remove.contains(i))
                .collect();
            Ok(Some(list.join(",")))
        }
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn topic_config_record(topic: &str, key: String, value: Option<String>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: ConfigResourceType::Topic,
        resource_name: topic.to_string(),
        key,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: TopicId = TopicId([1; 16]);
    const T2: TopicId = TopicId([2; 16]);

    fn image_with_brokers(ids: &[i32]) -> MetadataImage {
        let mut image = MetadataImage::new();
        for id in ids {
            image
                .apply_batch(&register_broker(&image, *id, "localhost", 9092, None))
                .unwrap();
        }
        image
    }

    fn new_topic(name: &str, partitions: i32, rf: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: Some(partitions),
            replication_factor: Some(rf),
            configs: vec![],
        }
    }

    fn partition(partition: i32, replicas: Vec<i32>) -> MetadataRecord {
        MetadataRecord::Partition(PartitionRecord {
            topic_id: T1,
            partition,
            leader: replicas[0],
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
        })
    }

    fn config(topic: &str, key: &str, value: Option<&str>) -> MetadataRecord {
        topic_config_record(topic, key.into(), value.map(str::to_string))
    }

    fn settings() -> ControllerSettings {
        ControllerSettings::default()
    }

    #[test]
    fn create_topic_places_replicas_round_robin() {
        let image = image_with_brokers(&[1, 2, 3]);
        let mut request = new_topic("orders", 3, 2);
        request.configs = vec![("retention.ms".into(), Some("1000".into()))];
        let records = create_topic(&image, &request, T1, &settings()).unwrap();
        assert_eq!(
            records,
            vec![
                MetadataRecord::Topic {
                    name: "orders".into(),
                    topic_id: T1
                },
                partition(0, vec![1, 2]),
                partition(1, vec![2, 3]),
                partition(2, vec![3, 1]),
                config("orders", "retention.ms", Some("1000")),
            ]
        );
    }

    #[test]
    fn create_topic_uses_defaults_for_minus_one() {
        let image = image_with_brokers(&[7]);
        let request = NewTopic {
            name: "t".into(),
            ..NewTopic::default()
        };
        let settings = ControllerSettings {
            default_num_partitions: 2,
            ..settings()
        };
        let records = create_topic(&image, &request, T1, &settings).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2], partition(1, vec![7]));
    }

    #[test]
    fn create_topic_refusals_carry_kafka_codes() {
        let mut image = image_with_brokers(&[1]);
        image
            .apply_batch(&create_topic(&image, &new_topic("a", 1, 1), T1, &settings()).unwrap())
            .unwrap();
        let refuse =
            |request: NewTopic| create_topic(&image, &request, T2, &settings()).unwrap_err();
        assert_eq!(
            refuse(new_topic("a", 1, 1)),
            TopicError::TopicAlreadyExists("a".into())
        );
        assert_eq!(refuse(new_topic("a/b", 1, 1)).error_code(), 17);
        assert_eq!(refuse(new_topic(".", 1, 1)).error_code(), 17);
        assert_eq!(
            refuse(new_topic("b", 0, 1)),
            TopicError::InvalidPartitions(
                "Number of partitions was set to an invalid non-positive value.".into()
            )
        );
        assert_eq!(refuse(new_topic("b", 100_001, 1)).error_code(), 37);
        assert_eq!(
            refuse(new_topic("b", 1, 3)),
            TopicError::InvalidReplicationFactor(
                "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered.".into()
            )
        );
        assert_eq!(refuse(new_topic("b", 1, 0)).error_code(), 38);
        let mut bad_config = new_topic("b", 1, 1);
        bad_config.configs = vec![("retention.ms".into(), Some("x".into()))];
        assert_eq!(refuse(bad_config.clone()).error_code(), 40);
        bad_config.configs = vec![("cleanup.policy".into(), Some("compact".into()))];
        assert_eq!(refuse(bad_config.clone()).error_code(), 40);
        bad_config.configs = vec![("retention.ms".into(), None)];
        assert_eq!(
            refuse(bad_config.clone()),
            TopicError::InvalidConfig(
                "Null value not supported for topic configs: retention.ms".into()
            )
        );
        bad_config.configs = vec![
            ("retention.ms".into(), Some("1".into())),
            ("retention.ms".into(), Some("2".into())),
        ];
        assert_eq!(refuse(bad_config).error_code(), 42);
        assert_eq!(
            create_topic(&image, &new_topic("b", 1, 1), T1, &settings())
                .unwrap_err()
                .error_code(),
            42
        );
    }

    #[test]
    fn compact_is_accepted_when_supported() {
        let image = image_with_brokers(&[1]);
        let mut request = new_topic("c", 1, 1);
        request.configs = vec![("cleanup.policy".into(), Some("compact".into()))];
        let settings = ControllerSettings {
            compact_supported: true,
            ..settings()
        };
        assert!(create_topic(&image, &request, T1, &settings).is_ok());
    }

    #[test]
    fn delete_topic_by_name_and_id() {
        let mut image = image_with_brokers(&[1]);
        image
            .apply_batch(&create_topic(&image, &new_topic("a", 2, 1), T1, &settings()).unwrap())
            .unwrap();
        assert_eq!(
            delete_topic(&image, "a"),
            Ok(vec![MetadataRecord::RemoveTopic { topic_id: T1 }])
        );
        assert_eq!(
            delete_topic(&image, "b"),
            Err(TopicError::UnknownTopicOrPartition)
        );
        assert_eq!(
            delete_topic_by_id(&image, T1),
            Ok(vec![MetadataRecord::RemoveTopic { topic_id: T1 }])
        );
        assert_eq!(
            delete_topic_by_id(&image, T2).unwrap_err().error_code(),
            100
        );
    }

    #[test]
    fn create_partitions_only_grows() {
        let mut image = image_with_brokers(&[1, 2]);
        image
            .apply_batch(&create_topic(&image, &new_topic("a", 2, 2), T1, &settings()).unwrap())
            .unwrap();
        assert_eq!(
            create_partitions(&image, "a", 4),
            Ok(vec![partition(2, vec![1, 2]), partition(3, vec![2, 1])])
        );
        assert_eq!(
            create_partitions(&image, "a", 2),
            Err(TopicError::InvalidPartitions(
                "Topic already has 2 partition(s).".into()
            ))
        );
        assert_eq!(
            create_partitions(&image, "a", 1),
            Err(TopicError::InvalidPartitions(
                "The topic a currently has 2 partition(s); 1 would not be an increase.".into()
            ))
        );
        assert_eq!(
            create_partitions(&image, "zz", 5),
            Err(TopicError::UnknownTopicOrPartition)
        );
        image
            .apply_batch(&create_partitions(&image, "a", 3).unwrap())
            .unwrap();
        assert_eq!(image.partitions("a").unwrap().len(), 3);
    }

    #[test]
    fn incremental_alter_configs() {
        let mut image = image_with_brokers(&[1]);
        let mut request = new_topic("a", 1, 1);
        request.configs = vec![("retention.ms".into(), Some("5".into()))];
        image
            .apply_batch(&create_topic(&image, &request, T1, &settings()).unwrap())
            .unwrap();
        let ops = vec![
            ("retention.ms".to_string(), ConfigOp::Delete),
            ("segment.ms".to_string(), ConfigOp::Set("1000".into())),
            (
                "leader.replication.throttled.replicas".to_string(),
                ConfigOp::Append("0:1,1:1".into()),
            ),
        ];
        let records = incremental_alter_topic_configs(&image, "a", &ops, &settings()).unwrap();
        assert_eq!(
            records,
            vec![
                config("a", "retention.ms", None),
                config("a", "segment.ms", Some("1000")),
                config(
                    "a",
                    "leader.replication.throttled.replicas",
                    Some("0:1,1:1")
                ),
            ]
        );
        image.apply_batch(&records).unwrap();
        let subtract = vec![(
            "leader.replication.throttled.replicas".to_string(),
            ConfigOp::Subtract("0:1".into()),
        )];
        assert_eq!(
            incremental_alter_topic_configs(&image, "a", &subtract, &settings()).unwrap(),
            vec![config(
                "a",
                "leader.replication.throttled.replicas",
                Some("1:1")
            )]
        );
        let append_to_long = vec![("retention.ms".to_string(), ConfigOp::Append("1".into()))];
        assert_eq!(
            incremental_alter_topic_configs(&image, "a", &append_to_long, &settings()),
            Err(TopicError::InvalidConfig(
                "Config value append is not allowed for config key: retention.ms".into()
            ))
        );
        let bad = vec![("segment.ms".to_string(), ConfigOp::Set("0".into()))];
        assert_eq!(
            incremental_alter_topic_configs(&image, "a", &bad, &settings())
                .unwrap_err()
                .error_code(),
            40
        );
        assert_eq!(
            incremental_alter_topic_configs(&image, "nope", &bad, &settings()),
            Err(TopicError::UnknownTopicOrPartition)
        );
    }

    #[test]
    fn replace_configs_deletes_unnamed_overrides() {
        let mut image = image_with_brokers(&[1]);
        let mut request = new_topic("a", 1, 1);
        request.configs = vec![
            ("retention.ms".into(), Some("5".into())),
            ("segment.ms".into(), Some("9".into())),
        ];
        image
            .apply_batch(&create_topic(&image, &request, T1, &settings()).unwrap())
            .unwrap();
        let records = replace_topic_configs(
            &image,
            "a",
            &[("segment.ms".into(), Some("10".into()))],
            &settings(),
        )
        .unwrap();
        assert_eq!(
            records,
            vec![
                config("a", "retention.ms", None),
                config("a", "segment.ms", Some("10")),
            ]
        );
    }

    #[test]
    fn producer_ids_come_in_blocks_to_registered_brokers() {
        let mut image = image_with_brokers(&[1]);
        let first = allocate_producer_ids(&image, 1).unwrap();
        assert_eq!(
            first,
            vec![MetadataRecord::ProducerIds(ProducerIdsBlock {
                assigned_to_node: 1,
                first_producer_id: 0,
                block_size: 1000
            })]
        );
        image.apply_batch(&first).unwrap();
        let second = allocate_producer_ids(&image, 1).unwrap();
        assert_eq!(
            second,
            vec![MetadataRecord::ProducerIds(ProducerIdsBlock {
                assigned_to_node: 1,
                first_producer_id: 1000,
                block_size: 1000
            })]
        );
        assert_eq!(
            allocate_producer_ids(&image, 2),
            Err(ProducerIdError::BrokerNotRegistered(2))
        );
    }

    #[test]
    fn startup_records_bootstrap_once_then_reregister() {
        let mut image = MetadataImage::new();
        let first = startup_records(&image, "c1", 1, "h", 9092, Some("r"));
        assert_eq!(
            first,
            vec![
                MetadataRecord::ClusterId("c1".into()),
                MetadataRecord::RegisterBroker(BrokerRegistration {
                    node_id: 1,
                    broker_epoch: 1,
                    host: "h".into(),
                    port: 9092,
                    rack: Some("r".into())
                })
            ]
        );
        image.apply_batch(&first).unwrap();
        let second = startup_records(&image, "ignored", 1, "h2", 9093, None);
        assert_eq!(
            second,
            vec![MetadataRecord::RegisterBroker(BrokerRegistration {
                node_id: 1,
                broker_epoch: 2,
                host: "h2".into(),
                port: 9093,
                rack: None
            })]
        );
        image.apply_batch(&second).unwrap();
        assert_eq!(image.cluster_id(), Some("c1"));
        assert_eq!(image.broker(1).unwrap().port, 9093);
    }

    #[test]
    fn registration_epochs_increase_and_cluster_id_is_written_once() {
        let image = image_with_brokers(&[1, 1]);
        assert_eq!(image.broker(1).unwrap().broker_epoch, 2);
        let mut image = MetadataImage::new();
        let records = bootstrap_cluster_id(&image, "abc");
        assert_eq!(records, vec![MetadataRecord::ClusterId("abc".into())]);
        image.apply_batch(&records).unwrap();
        assert_eq!(bootstrap_cluster_id(&image, "other"), vec![]);
    }
}
