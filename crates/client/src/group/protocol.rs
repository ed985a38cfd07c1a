//! The "consumer" embedded protocol: what members put in JoinGroup (their subscription) and
//! what the leader hands out through SyncGroup (each member's assignment). Both are Kafka's
//! `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment`, prefixed by an i16 version,
//! so Java and librdkafka members can share a group with this client.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use freshet_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use freshet_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use freshet_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use freshet_protocol::{Decode, Encode};

use crate::TopicPartition;

/// The `protocol_type` of consumer groups.
pub const PROTOCOL_TYPE: &str = "consumer";

/// The version this client writes (the newest: owned partitions, generation, rack).
pub const SUBSCRIPTION_VERSION: i16 = 3;
pub const ASSIGNMENT_VERSION: i16 = 3;
/// Newest versions this client reads; newer ones are read as these (fields are only ever
/// appended, as Kafka's own clients assume).
const SUBSCRIPTION_VERSION_MAX: i16 = 3;
const ASSIGNMENT_VERSION_MAX: i16 = 3;

/// A member's subscription as carried in JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Sorted topic names.
    pub topics: Vec<String>,
    pub user_data: Option<Bytes>,
    /// What the member owns now (cooperative rebalancing relies on it).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which the member got `owned_partitions`, -1 when unknown.
    pub generation_id: i32,
    pub rack_id: Option<String>,
}

/// A member's assignment as carried in SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// Sorted.
    pub partitions: Vec<TopicPartition>,
    pub user_data: Option<Bytes>,
}

/// Why embedded protocol bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {reason}")]
pub struct ProtocolError {
    pub what: &'static str,
    pub reason: String,
}

fn group_by_topic(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    for list in topics.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    topics
}

fn flatten(topics: impl IntoIterator<Item = (String, Vec<i32>)>) -> Vec<TopicPartition> {
    let mut partitions: Vec<TopicPartition> = topics
        .into_iter()
        .flat_map(|(topic, list)| {
            list.into_iter()
                .map(move |partition| TopicPartition::new(topic.clone(), partition))
        })
        .collect();
    partitions.sort();
    partitions.dedup();
    partitions
}

/// Splits the i16 version prefix off and says which version to read the rest as.
fn read_version(bytes: &mut Bytes, what: &'static str, max: i16) -> Result<i16, ProtocolError> {
    if bytes.remaining() < 2 {
        return Err(ProtocolError {
            what,
            reason: "shorter than its version".into(),
        });
    }
    let version = bytes.get_i16();
    if version < 0 {
        return Err(ProtocolError {
            what,
            reason: format!("negative version {version}"),
        });
    }
    Ok(version.min(max))
}

impl Subscription {
    pub fn encode(&self) -> Bytes {
        let message = ConsumerProtocolSubscription {
            topics: self.topics.clone(),
            user_data: self.user_data.clone(),
            owned_partitions: group_by_topic(&self.owned_partitions)
                .into_iter()
                .map(|(topic, partitions)| OwnedTopic {
                    topic: topic.to_owned(),
                    partitions,
                })
                .collect(),
            generation_id: self.generation_id,
            rack_id: self.rack_id.clone(),
        };
        let mut buf = BytesMut::new();
        buf.put_i16(SUBSCRIPTION_VERSION);
        message
            .encode(&mut buf, SUBSCRIPTION_VERSION)
            .expect("a subscription always encodes");
        buf.freeze()
    }

    pub fn decode(mut bytes: Bytes) -> Result<Subscription, ProtocolError> {
        const WHAT: &str = "consumer subscription";
        let version = read_version(&mut bytes, WHAT, SUBSCRIPTION_VERSION_MAX)?;
        let message =
            ConsumerProtocolSubscription::decode(&mut bytes, version).map_err(|error| {
                ProtocolError {
                    what: WHAT,
                    reason: error.to_string(),
                }
            })?;
        let mut topics = message.topics;
        topics.sort();
        topics.dedup();
        Ok(Subscription {
            topics,
            user_data: message.user_data,
            owned_partitions: flatten(
                message
                    .owned_partitions
                    .into_iter()
                    .map(|t| (t.topic, t.partitions)),
            ),
            generation_id: message.generation_id,
            rack_id: message.rack_id,
        })
    }

    /// The generation of the owned partitions: the field of v2+, else the one the
    /// cooperative-sticky assignor of older clients put in its user data.
    pub fn owned_generation(&self) -> i32 {
        if self.generation_id >= 0 {
            return self.generation_id;
        }
        match &self.user_data {
            Some(data) if data.len() == 4 => {
                i32::from_be_bytes([data[0], data[1], data[2], data[3]])
            }
            _ => -1,
        }
    }
}

impl Assignment {
    pub fn encode(&self) -> Bytes {
        let message = ConsumerProtocolAssignment {
            assigned_partitions: group_by_topic(&self.partitions)
                .into_iter()
                .map(|(topic, partitions)| AssignedTopic {
                    topic: topic.to_owned(),
                    partitions,
                })
                .collect(),
            user_data: self.user_data.clone(),
        };
        let mut buf = BytesMut::new();
        buf.put_i16(ASSIGNMENT_VERSION);
        message
            .encode(&mut buf, ASSIGNMENT_VERSION)
            .expect("an assignment always encodes");
        buf.freeze()
    }

    /// Reads an assignment; empty bytes (what a coordinator sends a member the leader gave
    /// nothing) are an empty assignment.
    pub fn decode(mut bytes: Bytes) -> Result<Assignment, ProtocolError> {
        const WHAT: &str = "consumer assignment";
        if bytes.is_empty() {
            return Ok(Assignment::default());
        }
        let version = read_version(&mut bytes, WHAT, ASSIGNMENT_VERSION_MAX)?;
        let message = ConsumerProtocolAssignment::decode(&mut bytes, version).map_err(|error| {
            ProtocolError {
                what: WHAT,
                reason: error.to_string(),
            }
        })?;
        Ok(Assignment {
            partitions: flatten(
                message
                    .assigned_partitions
                    .into_iter()
                    .map(|t| (t.topic, t.partitions)),
            ),
            user_data: message.user_data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(list: &[(&str, i32)]) -> Vec<TopicPartition> {
        list.iter()
            .map(|(topic, partition)| TopicPartition::new(*topic, *partition))
            .collect()
    }

    #[test]
    fn subscription_round_trip() {
        let subscription = Subscription {
            topics: vec!["a".into(), "b".into()],
            user_data: Some(Bytes::from_static(&[0, 0, 0, 7])),
            owned_partitions: tps(&[("a", 0), ("a", 3), ("b", 1)]),
            generation_id: 7,
            rack_id: Some("rack-1".into()),
        };
        let bytes = subscription.encode();
        assert_eq!(&bytes[..2], &[0, 3], "version prefix");
        assert_eq!(Subscription::decode(bytes).unwrap(), subscription);
    }

    #[test]
    fn subscription_bytes_match_kafka_layout() {
        // Version 0 as written by old clients: version, topics array, null user data.
        let mut buf = BytesMut::new();
        buf.put_i16(0);
        buf.put_i32(1);
        buf.put_i16(3);
        buf.put_slice(b"top");
        buf.put_i32(-1);
        let decoded = Subscription::decode(buf.freeze()).unwrap();
        assert_eq!(decoded.topics, vec!["top".to_owned()]);
        assert_eq!(decoded.user_data, None);
        assert!(decoded.owned_partitions.is_empty());
        assert_eq!(decoded.generation_id, -1);
        assert_eq!(decoded.owned_generation(), -1);

        // Our v3: version 3, topics, user data, owned partitions, generation, rack.
        let ours = Subscription {
            topics: vec!["t".into()],
            user_data: None,
            owned_partitions: tps(&[("t", 2)]),
            generation_id: 4,
            rack_id: None,
        }
        .encode();
        let mut expected = BytesMut::new();
        expected.put_i16(3);
        expected.put_i32(1);
        expected.put_i16(1);
        expected.put_slice(b"t");
        expected.put_i32(-1);
        expected.put_i32(1);
        expected.put_i16(1);
        expected.put_slice(b"t");
        expected.put_i32(1);
        expected.put_i32(2);
        expected.put_i32(4);
        expected.put_i16(-1);
        assert_eq!(ours, expected.freeze());
    }

    #[test]
    fn newer_subscription_versions_read_as_known_fields() {
        let mut bytes = BytesMut::from(
            &Subscription {
                topics: vec!["x".into()],
                generation_id: 2,
                ..Default::default()
            }
            .encode()[..],
        );
        // A future version 4 that appends a field.
        bytes[0..2].copy_from_slice(&4i16.to_be_bytes());
        bytes.put_i32(12345);
        let decoded = Subscription::decode(bytes.freeze()).unwrap();
        assert_eq!(decoded.topics, vec!["x".to_owned()]);
        assert_eq!(decoded.generation_id, 2);
    }

    #[test]
    fn generation_from_cooperative_user_data() {
        let subscription = Subscription {
            user_data: Some(Bytes::from_static(&[0, 0, 1, 2])),
            generation_id: -1,
            ..Default::default()
        };
        assert_eq!(subscription.owned_generation(), 258);
    }

    #[test]
    fn assignment_round_trip() {
        let assignment = Assignment {
            partitions: tps(&[("a", 1), ("b", 0), ("b", 2)]),
            user_data: None,
        };
        let decoded = Assignment::decode(assignment.encode()).unwrap();
        assert_eq!(decoded, assignment);
        assert_eq!(
            Assignment::decode(Bytes::new()).unwrap(),
            Assignment::default()
        );
    }

    #[test]
    fn truncated_bytes_are_errors() {
        let bytes = Assignment {
            partitions: tps(&[("a", 1)]),
            user_data: None,
        }
        .encode();
        for cut in [1, 3, bytes.len() - 1] {
            assert!(
                Assignment::decode(bytes.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
        let bytes = Subscription {
            topics: vec!["abc".into()],
            ..Default::default()
        }
        .encode();
        for cut in [0, 1, 5, bytes.len() - 1] {
            assert!(
                Subscription::decode(bytes.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
    }
}
