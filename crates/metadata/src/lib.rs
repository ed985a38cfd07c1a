//! Freshet's cluster metadata, without I/O.
//!
//! The cluster state (topics, partitions, replicas, leaders, epochs, configs, brokers,
//! producer-id blocks, the cluster id) is the result of replaying a log of
//! [`MetadataRecord`]s into a [`MetadataImage`]. The `raft` crate replicates that log; this
//! crate only defines the records, their binary encoding ([`codec`]), the image, and the
//! [`controller`] functions that turn a request into records or a Kafka error.
//!
//! Architecture invariant: nothing here touches the disk, the network, a clock or a random
//! source. Ids and time come in as arguments, so every step is testable exactly.

pub mod codec;
pub mod config;
pub mod controller;
pub mod delta;
pub mod error;
pub mod image;
pub mod leadership;
pub mod names;
pub mod record;

pub use delta::{delta, MetadataDelta};
pub use error::{kafka_code, MetadataError, TopicError};
pub use image::{MetadataImage, PartitionState, TopicImage};
pub use record::{
    BrokerRegistration, ConfigRecord, ConfigResourceType, MetadataRecord, PartitionChange,
    PartitionRecord, ProducerIdsBlock, TopicId,
};
