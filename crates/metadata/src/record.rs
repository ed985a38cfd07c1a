//! The records of the metadata log. Every change to cluster state is one of these; the
//! [`MetadataImage`](crate::MetadataImage) is what replaying them in order produces.

use std::fmt;

/// A topic's identity, a random 128-bit UUID as in Kafka (KIP-516). Topic names can be reused
/// after a delete; ids never are, so records refer to topics by id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    /// Kafka's "no topic id" (all zero), never assigned to a real topic.
    pub const ZERO: TopicId = TopicId([0; 16]);
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicId({self})")
    }
}

impl fmt::Display for TopicId {
    /// Hex, grouped like a UUID (Kafka prints base64; hex is easier to read in logs and tests).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Which kind of resource a config record applies to. The numbers are Kafka's
/// `ConfigResource.Type` codes, so they can be passed through to DescribeConfigs unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigResourceType {
    Topic,
    Broker,
}

impl ConfigResourceType {
    /// Kafka's wire code for the resource type (TOPIC = 2, BROKER = 4).
    pub fn code(self) -> u8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
        }
    }

    /// The inverse of [`code`](Self::code); `None` for types this log does not store.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            2 => Some(ConfigResourceType::Topic),
            4 => Some(ConfigResourceType::Broker),
            _ => None,
        }
    }
}

/// A broker announcing itself: where clients reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub node_id: i32,
    /// Increases with every registration of the same node, so a stale unregister from an
    /// earlier incarnation cannot remove the current one.
    pub broker_epoch: i64,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

/// One partition's full state, written when the partition is created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRecord {
    pub topic_id: TopicId,
    pub partition: i32,
    /// Replica broker ids in preference order; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// In-sync replicas, a subset of `replicas`.
    pub isr: Vec<i32>,
    /// Current leader, or -1 when the partition has none.
    pub leader: i32,
    pub leader_epoch: i32,
    /// Bumped on every change of this partition, leader or not (Kafka's partition epoch).
    pub partition_epoch: i32,
}

/// A change of an existing partition. Absent fields stay as they are. A leader change bumps
/// the leader epoch; every change bumps the partition epoch (as Kafka's PartitionChangeRecord).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionChange {
    pub topic_id: TopicId,
    pub partition: i32,
    pub leader: Option<i32>,
    pub isr: Option<Vec<i32>>,
    pub replicas: Option<Vec<i32>>,
}

/// One config key set (`value` is `Some`) or deleted (`None`, back to the default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRecord {
    pub resource_type: ConfigResourceType,
    /// Topic name for topics; broker id in decimal, or "" for the cluster-wide default.
    pub resource_name: String,
    pub key: String,
    pub value: Option<String>,
}

/// A block of producer ids handed to one broker, which gives them out to producers
/// (InitProducerId) without going through the log for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerIdsBlock {
    pub assigned_to_node: i32,
    pub first_producer_id: i64,
    pub block_size: i32,
}

impl ProducerIdsBlock {
    /// The id after the last one of this block. The caller checked it does not overflow.
    pub fn next_producer_id(&self) -> Option<i64> {
        self.first_producer_id
            .checked_add(i64::from(self.block_size))
    }
}

/// One entry of the metadata log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataRecord {
    /// The cluster id, written once, by the first proposal on an empty log.
    ClusterId(String),
    RegisterBroker(BrokerRegistration),
    UnregisterBroker {
        node_id: i32,
        broker_epoch: i64,
    },
    Topic {
        name: String,
        topic_id: TopicId,
    },
    Partition(PartitionRecord),
    PartitionChange(PartitionChange),
    /// Removes the topic, its partitions and its configs.
    RemoveTopic {
        topic_id: TopicId,
    },
    Config(ConfigRecord),
    ProducerIds(ProducerIdsBlock),
}

impl fmt::Display for MetadataRecord {
    /// A one-line summary for logs (the full record is in `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataRecord::ClusterId(id) => write!(f, "ClusterId({id})"),
            MetadataRecord::RegisterBroker(b) => {
                write!(f, "RegisterBroker({} at {}:{})", b.node_id, b.host, b.port)
            }
            MetadataRecord::UnregisterBroker { node_id, .. } => {
                write!(f, "UnregisterBroker({node_id})")
            }
            MetadataRecord::Topic { name, topic_id } => write!(f, "Topic({name}, {topic_id})"),
            MetadataRecord::Partition(p) => write!(f, "Partition({}-{})", p.topic_id, p.partition),
            MetadataRecord::PartitionChange(c) => {
                write!(f, "PartitionChange({}-{})", c.topic_id, c.partition)
            }
            MetadataRecord::RemoveTopic { topic_id } => write!(f, "RemoveTopic({topic_id})"),
            MetadataRecord::Config(c) => write!(f, "Config({}/{})", c.resource_name, c.key),
            MetadataRecord::ProducerIds(b) => {
                write!(f, "ProducerIds({} x{})", b.first_producer_id, b.block_size)
            }
        }
    }
}
