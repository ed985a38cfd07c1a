//! CreateTopics: each topic validated and created through the metadata quorum, with
//! `validate_only` answering without creating.

use crate::broker::Context;
use crate::codes;
use freshet_metadata::config::describe_topic_config;
use freshet_metadata::controller::{self, NewTopic};
use freshet_protocol::messages::create_topics_request::CreatableTopic;
use freshet_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use freshet_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use freshet_protocol::Uuid;

/// CreateTopics v5 added the created topic's configs and counts to the response (KIP-525).
const RESULT_DETAILS_MIN_VERSION: i16 = 5;

/// DescribeConfigs' config sources: a topic override, or the default.
const CONFIG_SOURCE_TOPIC: i8 = 1;
const CONFIG_SOURCE_DEFAULT: i8 = 5;

pub async fn handle(
    ctx: &Context,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        results.push(create_one(ctx, topic, request.validate_only, version).await);
    }
    CreateTopicsResponse {
        topics: results,
        ..Default::default()
    }
}

async fn create_one(
    ctx: &Context,
    topic: &CreatableTopic,
    validate_only: bool,
    version: i16,
) -> CreatableTopicResult {
    let refuse = |code, message: String| CreatableTopicResult {
        name: topic.name.clone(),
        error_code: code,
        error_message: Some(message),
        num_partitions: -1,
        replication_factor: -1,
        ..Default::default()
    };
    if !topic.assignments.is_empty()
        && (topic.num_partitions != -1 || topic.replication_factor != -1)
    {
        let message =
            "Both numPartitions or replicationFactor and replicasAssignments were set.".to_string();
        return refuse(codes::INVALID_REQUEST, message);
    }
    let image = ctx.quorum.image();
    let new = NewTopic {
        name: topic.name.clone(),
        num_partitions: (topic.num_partitions != -1).then_some(topic.num_partitions),
        replication_factor: (topic.replication_factor != -1).then_some(topic.replication_factor),
        configs: topic
            .configs
            .iter()
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect(),
    };
    let topic_id = super::metadata::random_topic_id();
    let records = match controller::create_topic(&image, &new, topic_id, &ctx.controller) {
        Ok(records) => records,
        Err(e) => return refuse(e.error_code(), e.to_string()),
    };
    if !validate_only {
        // Answers once the topic is committed; its logs open in the background.
        if let Err(e) = ctx.propose_committed(records).await {
            return refuse(e.error_code(), e.to_string());
        }
    }
    created(
        ctx,
        &new,
        if validate_only {
            Uuid::ZERO
        } else {
            Uuid(topic_id.0)
        },
        version,
    )
}

fn created(ctx: &Context, new: &NewTopic, topic_id: Uuid, version: i16) -> CreatableTopicResult {
    let overrides = new
        .configs
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect();
    let configs = (version >= RESULT_DETAILS_MIN_VERSION).then(|| {
        describe_topic_config(&overrides)
            .into_iter()
            .map(|c| CreatableTopicConfigs {
                name: c.name.to_string(),
                value: Some(c.value),
                config_source: if c.is_default {
                    CONFIG_SOURCE_DEFAULT
                } else {
                    CONFIG_SOURCE_TOPIC
                },
                ..Default::default()
            })
            .collect()
    });
    CreatableTopicResult {
        name: new.name.clone(),
        topic_id,
        num_partitions: new
            .num_partitions
            .unwrap_or(ctx.controller.default_num_partitions),
        replication_factor: new
            .replication_factor
            .unwrap_or(ctx.controller.default_replication_factor),
        configs,
        ..Default::default()
    }
}
