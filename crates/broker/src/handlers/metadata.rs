//! Metadata: brokers, the cluster id and each topic's partitions and leaders; creates missing
//! topics when both the request and `auto_create_topics_enable` allow it, as Kafka does.

use std::collections::HashSet;

use crate::broker::Context;
use crate::codes;
use crate::partitions::TopicPartition;
use freshet_metadata::controller::{self, NewTopic};
use freshet_metadata::{MetadataImage, TopicId, TopicImage};
use freshet_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use freshet_protocol::messages::{MetadataRequest, MetadataResponse};
use freshet_protocol::Uuid;

/// Kafka's "not requested" value for authorized operations.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

pub async fn handle(ctx: &Context, request: MetadataRequest, version: i16) -> MetadataResponse {
    // Before v4 there was no flag and topics were always auto-created.
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let topics = match &request.topics {
        // v0: an empty list means all topics; later versions send null for that.
        None => None,
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(
            list.iter()
                .map(|t| (t.name.clone(), t.topic_id))
                .collect::<Vec<_>>(),
        ),
    };
    if let Some(requested) = &topics {
        if allow_auto_create && ctx.config.auto_create_topics_enable {
            auto_create(ctx, requested).await;
        }
    }
    let image = ctx.quorum.image();
    let served = Served {
        node: ctx.node_id(),
        offline: ctx.partitions.offline(),
    };
    let topics = match topics {
        None => image.topics().map(|t| topic_response(&served, t)).collect(),
        Some(requested) => requested
            .iter()
            .map(|(name, id)| requested_topic(&served, &image, name.as_deref(), *id))
            .collect(),
    };
    MetadataResponse {
        brokers: brokers(&image),
        cluster_id: image.cluster_id().map(str::to_string),
        controller_id: ctx.node_id(),
        topics,
        cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    }
}

async fn auto_create(ctx: &Context, requested: &[(Option<String>, Uuid)]) {
    for name in requested.iter().filter_map(|(name, _)| name.as_deref()) {
        let image = ctx.quorum.image();
        if image.topic(name).is_some() {
            continue;
        }
        if name == crate::groups::OFFSETS_TOPIC {
            // Created with its own settings (compacted, 50 partitions), as Kafka does.
            if let Err(e) = ctx.groups.ensure_offsets_topic(ctx).await {
                tracing::warn!(topic = name, error = %e, "auto-creating topic");
            }
            continue;
        }
        let new = NewTopic {
            name: name.to_string(),
            ..Default::default()
        };
        // Invalid names are reported by the lookup below (INVALID_TOPIC_EXCEPTION).
        if let Ok(records) =
            controller::create_topic(&image, &new, random_topic_id(), &ctx.controller)
        {
            if let Err(e) = ctx.propose(records).await {
                tracing::warn!(topic = name, error = %e, "auto-creating topic");
            }
        }
    }
}

pub fn random_topic_id() -> TopicId {
    TopicId(*uuid::Uuid::new_v4().as_bytes())
}

fn brokers(image: &MetadataImage) -> Vec<MetadataResponseBroker> {
    image
        .brokers()
        .values()
        .map(|b| MetadataResponseBroker {
            node_id: b.node_id,
            host: b.host.clone(),
            port: i32::from(b.port),
            rack: b.rack.clone(),
            ..Default::default()
        })
        .collect()
}

/// This node and the partitions it leads whose log a disk error took offline.
struct Served {
    node: i32,
    offline: HashSet<TopicPartition>,
}

fn requested_topic(
    served: &Served,
    image: &MetadataImage,
    name: Option<&str>,
    id: Uuid,
) -> MetadataResponseTopic {
    let found = match name {
        Some(name) => image.topic(name),
        None => image.topic_by_id(TopicId(id.0)),
    };
    match found {
        Some(topic) => topic_response(served, topic),
        None => MetadataResponseTopic {
            error_code: missing_topic_error(name),
            name: name.map(str::to_string),
            topic_id: id,
            topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
            ..Default::default()
        },
    }
}

fn missing_topic_error(name: Option<&str>) -> i16 {
    match name {
        None => codes::UNKNOWN_TOPIC_ID,
        Some(n) if freshet_metadata::names::validate_topic_name(n).is_err() => {
            codes::INVALID_TOPIC_EXCEPTION
        }
        Some(_) => codes::UNKNOWN_TOPIC_OR_PARTITION,
    }
}

/// Partitions are reported as the metadata image has them, as Kafka does: a partition whose log
/// is still being opened (created a moment ago) already shows its leader, and produce or fetch
/// to it get the retriable NOT_LEADER_OR_FOLLOWER until the log is open. A partition whose log
/// a disk error took offline has no leader and lists this node as an offline replica, as
/// Kafka reports a partition whose only replica sits in a failed log directory.
fn topic_response(served: &Served, topic: &TopicImage) -> MetadataResponseTopic {
    let node = served.node;
    let offline = |i: i32, leader: i32| {
        leader == node
            && !served.offline.is_empty()
            && served.offline.contains(&TopicPartition {
                topic: topic.name.clone(),
                partition: i,
            })
    };
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let i = i as i32;
            let offline = offline(i, p.leader);
            let leader = if offline { -1 } else { p.leader };
            MetadataResponsePartition {
                error_code: if leader < 0 {
                    codes::LEADER_NOT_AVAILABLE
                } else {
                    codes::NONE
                },
                partition_index: i,
                leader_id: leader,
                leader_epoch: p.leader_epoch,
                replica_nodes: p.replicas.clone(),
                isr_nodes: p.isr.clone(),
                offline_replicas: if offline { vec![node] } else { Vec::new() },
                ..Default::default()
            }
        })
        .collect();
    MetadataResponseTopic {
        error_code: codes::NONE,
        name: Some(topic.name.clone()),
        topic_id: Uuid(topic.topic_id.0),
        is_internal: is_internal(&topic.name),
        partitions,
        topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    }
}

pub fn is_internal(topic: &str) -> bool {
    topic == "__consumer_offsets" || topic == "__transaction_state"
}
