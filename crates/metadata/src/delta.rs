//! What changed between two images: what a broker acts on when the applied image moves
//! (create partition logs, delete a topic's logs, reload a topic's configs, follow a new
//! leader epoch).

use std::collections::BTreeSet;

use crate::image::MetadataImage;
use crate::record::TopicId;

/// The differences from an older image to a newer one. Each list is in id (or name) order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataDelta {
    /// Topics in the new image only (by id: a name deleted and created again appears in both
    /// `topics_deleted` and `topics_created`, with different ids).
    pub topics_created: Vec<TopicId>,
    /// Topics in the old image only, with the name they had.
    pub topics_deleted: Vec<(TopicId, String)>,
    /// Partitions new in a topic that exists in both images (CreatePartitions).
    pub partitions_created: Vec<(TopicId, i32)>,
    /// Partitions in both images whose state (leader, ISR, replicas, epochs) differs.
    pub partitions_changed: Vec<(TopicId, i32)>,
    /// Topics (in both images) whose config overrides differ. (Broker-level configs are not
    /// compared: nothing consumes them yet.)
    pub topic_configs_changed: Vec<String>,
    /// Broker ids registered, re-registered or unregistered.
    pub brokers_changed: Vec<i32>,
}

impl MetadataDelta {
    pub fn is_empty(&self) -> bool {
        *self == MetadataDelta::default()
    }
}

/// Computes the delta from `old` to `new`. Cost is linear in the size of both images; the
/// broker calls it once per applied entry it observes, not per request.
pub fn delta(old: &MetadataImage, new: &MetadataImage) -> MetadataDelta {
    let mut out = MetadataDelta::default();
    for topic in new.topics() {
        match old.topic_by_id(topic.topic_id) {
            None => out.topics_created.push(topic.topic_id),
            Some(before) => {
                for (index, state) in topic.partitions.iter().enumerate() {
                    let partition = i32::try_from(index).expect("partition count fits i32");
                    match before.partitions.get(index) {
                        None => out.partitions_created.push((topic.topic_id, partition)),
                        Some(previous) if previous != state => {
                            out.partitions_changed.push((topic.topic_id, partition))
                        }
                        Some(_) => {}
                    }
                }
                if old.topic_config(&before.name) != new.topic_config(&topic.name) {
                    out.topic_configs_changed.push(topic.name.clone());
                }
            }
        }
    }
    out.topics_deleted = old
        .topics()
        .filter(|t| new.topic_by_id(t.topic_id).is_none())
        .map(|t| (t.topic_id, t.name.clone()))
        .collect();
    let broker_ids: BTreeSet<i32> = old
        .brokers()
        .keys()
        .chain(new.brokers().keys())
        .copied()
        .collect();
    out.brokers_changed = broker_ids
        .into_iter()
        .filter(|id| old.broker(*id) != new.broker(*id))
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{
        self, create_partitions, create_topic, delete_topic, ConfigOp, ControllerSettings, NewTopic,
    };
    use crate::record::{MetadataRecord, PartitionChange};

    const T1: TopicId = TopicId([1; 16]);
    const T2: TopicId = TopicId([2; 16]);
    const T3: TopicId = TopicId([3; 16]);

    fn applied(image: &MetadataImage, records: Vec<MetadataRecord>) -> MetadataImage {
        let mut next = image.clone();
        next.apply_batch(&records).unwrap();
        next
    }

    fn topic(name: &str, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: Some(partitions),
            replication_factor: Some(1),
            configs: vec![],
        }
    }

    #[test]
    fn each_kind_of_change_is_reported() {
        let settings = ControllerSettings::default();
        let base = applied(
            &MetadataImage::new(),
            controller::register_broker(&MetadataImage::new(), 1, "h", 1, None),
        );
        let base = applied(
            &base,
            create_topic(&base, &topic("a", 1), T1, &settings).unwrap(),
        );
        let base = applied(
            &base,
            create_topic(&base, &topic("b", 1), T2, &settings).unwrap(),
        );
        assert!(delta(&base, &base).is_empty());

        let mut next = applied(
            &base,
            create_topic(&base, &topic("c", 2), T3, &settings).unwrap(),
        );
        next = applied(&next, delete_topic(&next, "b").unwrap());
        next = applied(&next, create_partitions(&next, "a", 3).unwrap());
        let ops = [("retention.ms".to_string(), ConfigOp::Set("5".into()))];
        next = applied(
            &next,
            controller::incremental_alter_topic_configs(&next, "a", &ops, &settings).unwrap(),
        );
        next = applied(
            &next,
            vec![MetadataRecord::PartitionChange(PartitionChange {
                topic_id: T1,
                partition: 0,
                leader: Some(-1),
                isr: None,
                replicas: None,
            })],
        );
        next = applied(&next, controller::register_broker(&next, 1, "h2", 1, None));

        assert_eq!(
            delta(&base, &next),
            MetadataDelta {
                topics_created: vec![T3],
                topics_deleted: vec![(T2, "b".into())],
                partitions_created: vec![(T1, 1), (T1, 2)],
                partitions_changed: vec![(T1, 0)],
                topic_configs_changed: vec!["a".into()],
                brokers_changed: vec![1],
            }
        );
    }

    #[test]
    fn a_name_reused_under_a_new_id_is_a_delete_and_a_create() {
        let settings = ControllerSettings::default();
        let image = MetadataImage::new();
        let image = applied(&image, controller::register_broker(&image, 1, "h", 1, None));
        let old = applied(
            &image,
            create_topic(&image, &topic("a", 1), T1, &settings).unwrap(),
        );
        let gone = applied(&old, delete_topic(&old, "a").unwrap());
        let new = applied(
            &gone,
            create_topic(&gone, &topic("a", 1), T2, &settings).unwrap(),
        );
        let d = delta(&old, &new);
        assert_eq!(d.topics_created, vec![T2]);
        assert_eq!(d.topics_deleted, vec![(T1, "a".to_string())]);
        assert!(d.topic_configs_changed.is_empty());
    }
}
