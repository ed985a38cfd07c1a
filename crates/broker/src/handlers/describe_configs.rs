//! DescribeConfigs: a topic's configs (every known one, with where its value comes from) and
//! this broker's key settings.
//!
//! A topic config's value is its override (source TOPIC_CONFIG), else the broker's default
//! where Freshet layers one (`log.retention.ms`, `log.retention.bytes`, `log.segment.bytes`:
//! STATIC_BROKER_CONFIG when it differs from Kafka's), else Kafka's default (DEFAULT_CONFIG).
//! `flush.messages` is reported as 1 unless a flush setting is overridden, because Freshet
//! fsyncs every append by default (see `Partitions::effective_config`).

use crate::broker::Context;
use crate::codes;
use freshet_metadata::config::describe_topic_config;
use freshet_protocol::messages::describe_configs_request::DescribeConfigsResource;
use freshet_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use freshet_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use std::collections::BTreeMap;

/// Kafka's `ConfigResource.Type` codes.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's `DescribeConfigsResponse.ConfigSource` codes.
const SOURCE_TOPIC_CONFIG: i8 = 1;
const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
const SOURCE_DEFAULT_CONFIG: i8 = 5;

/// Kafka's `ConfigType` codes for the broker settings listed here.
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;

/// DescribeConfigs v3 added config types and documentation (KIP-569).
const TYPES_MIN_VERSION: i16 = 3;

/// What Freshet's fsync-every-append default means in Kafka's terms.
const FLUSH_MESSAGES_DEFAULT: &str = "1";

/// One described config before it is shaped for the wire.
struct Entry {
    name: String,
    value: String,
    source: i8,
    type_code: i8,
    read_only: bool,
    synonyms: Vec<(String, String, i8)>,
}

pub fn handle(
    ctx: &Context,
    request: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .iter()
        .map(|r| describe(ctx, r, request.include_synonyms, version))
        .collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}

fn describe(
    ctx: &Context,
    resource: &DescribeConfigsResource,
    include_synonyms: bool,
    version: i16,
) -> DescribeConfigsResult {
    let entries = match resource.resource_type {
        RESOURCE_TOPIC => topic_entries(ctx, &resource.resource_name),
        RESOURCE_BROKER => broker_entries(ctx, &resource.resource_name),
        other => Err((
            codes::INVALID_REQUEST,
            format!("Unsupported resource type {other}"),
        )),
    };
    let base = DescribeConfigsResult {
        resource_type: resource.resource_type,
        resource_name: resource.resource_name.clone(),
        ..Default::default()
    };
    match entries {
        Ok(entries) => {
            // Kafka treats an empty key list like a missing one: everything.
            let wanted = resource
                .configuration_keys
                .as_ref()
                .filter(|k| !k.is_empty());
            let configs = entries
                .into_iter()
                .filter(|e| wanted.is_none_or(|keys| keys.contains(&e.name)))
                .map(|e| to_wire(e, include_synonyms, version))
                .collect();
            DescribeConfigsResult { configs, ..base }
        }
        Err((error_code, message)) => DescribeConfigsResult {
            error_code,
            error_message: Some(message),
            ..base
        },
    }
}

fn to_wire(e: Entry, include_synonyms: bool, version: i16) -> DescribeConfigsResourceResult {
    let synonyms = if include_synonyms {
        e.synonyms
            .into_iter()
            .map(|(name, value, source)| DescribeConfigsSynonym {
                name,
                value: Some(value),
                source,
                ..Default::default()
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult {
        name: e.name,
        value: Some(e.value),
        read_only: e.read_only,
        is_default: e.source == SOURCE_DEFAULT_CONFIG,
        config_source: e.source,
        is_sensitive: false,
        synonyms,
        config_type: if version >= TYPES_MIN_VERSION {
            e.type_code
        } else {
            0
        },
        // Nullable: Kafka's descriptions are long prose this broker does not repeat.
        documentation: None,
        ..Default::default()
    }
}

/// Every topic config with its value, source and synonyms.
fn topic_entries(ctx: &Context, topic: &str) -> Result<Vec<Entry>, (i16, String)> {
    let image = ctx.quorum.image();
    if image.topic(topic).is_none() {
        return Err((
            codes::UNKNOWN_TOPIC_OR_PARTITION,
            format!("Topic {topic} does not exist"),
        ));
    }
    let overrides = image.topic_config(topic);
    let broker = broker_layer(ctx, &overrides);
    Ok(describe_topic_config(&overrides)
        .into_iter()
        .map(|c| {
            let layered = broker.get(c.name);
            let mut synonyms = Vec::new();
            if !c.is_default {
                synonyms.push((c.name.to_string(), c.value.clone(), SOURCE_TOPIC_CONFIG));
            }
            if let Some((key, value, source)) = layered {
                synonyms.push((key.to_string(), value.clone(), *source));
            }
            let (value, source) = match (c.is_default, layered) {
                (false, _) => (c.value, SOURCE_TOPIC_CONFIG),
                (true, Some((_, value, source))) => (value.clone(), *source),
                (true, None) => (c.value, SOURCE_DEFAULT_CONFIG),
            };
            Entry {
                name: c.name.to_string(),
                value,
                source,
                type_code: c.kind.kafka_type_code(),
                read_only: false,
                synonyms,
            }
        })
        .collect())
}

/// Topic configs whose default this broker sets: topic name -> (broker key, value, source).
fn broker_layer(
    ctx: &Context,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<&'static str, (&'static str, String, i8)> {
    let c = &ctx.config;
    let source = |name: &str, value: &str| {
        let kafka_default = freshet_metadata::config::topic_config_def(name).map(|d| d.default);
        if kafka_default == Some(value) {
            SOURCE_DEFAULT_CONFIG
        } else {
            SOURCE_STATIC_BROKER_CONFIG
        }
    };
    let mut layer = BTreeMap::new();
    for (name, key, value) in [
        (
            "retention.ms",
            "log.retention.ms",
            c.log_retention_ms.to_string(),
        ),
        (
            "retention.bytes",
            "log.retention.bytes",
            c.log_retention_bytes.to_string(),
        ),
        (
            "segment.bytes",
            "log.segment.bytes",
            c.log_segment_bytes.to_string(),
        ),
    ] {
        let s = source(name, &value);
        layer.insert(name, (key, value, s));
    }
    if !overrides.contains_key("flush.messages") && !overrides.contains_key("flush.ms") {
        layer.insert(
            "flush.messages",
            (
                "log.flush.interval.messages",
                FLUSH_MESSAGES_DEFAULT.to_string(),
                SOURCE_DEFAULT_CONFIG,
            ),
        );
    }
    layer
}

/// This broker's settings under Kafka's names (all static: read only). An empty name asks
/// for the cluster-wide dynamic defaults, of which there are none.
fn broker_entries(ctx: &Context, name: &str) -> Result<Vec<Entry>, (i16, String)> {
    if name.is_empty() {
        return Ok(Vec::new());
    }
    if name.trim().parse::<i32>().ok() != Some(ctx.node_id()) {
        return Err((
            codes::INVALID_REQUEST,
            format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                ctx.node_id()
            ),
        ));
    }
    let c = &ctx.config;
    let listener = format!("PLAINTEXT://{}", c.listen);
    let advertised = format!(
        "PLAINTEXT://{}:{}",
        ctx.advertised_host, ctx.advertised_port
    );
    let settings: [(&str, String, i8); 16] = [
        ("advertised.listeners", advertised, TYPE_STRING),
        (
            "auto.create.topics.enable",
            c.auto_create_topics_enable.to_string(),
            TYPE_BOOLEAN,
        ),
        ("broker.id", c.node_id.to_string(), TYPE_INT),
        (
            "default.replication.factor",
            ctx.controller.default_replication_factor.to_string(),
            TYPE_INT,
        ),
        ("listeners", listener, TYPE_STRING),
        ("log.dirs", c.data_dir.display().to_string(), TYPE_STRING),
        (
            "log.flush.interval.messages",
            FLUSH_MESSAGES_DEFAULT.to_string(),
            TYPE_LONG,
        ),
        (
            "log.retention.bytes",
            c.log_retention_bytes.to_string(),
            TYPE_LONG,
        ),
        (
            "log.retention.check.interval.ms",
            c.log_retention_check_interval_ms.to_string(),
            TYPE_LONG,
        ),
        (
            "log.retention.ms",
            c.log_retention_ms.to_string(),
            TYPE_LONG,
        ),
        (
            "log.segment.bytes",
            c.log_segment_bytes.to_string(),
            TYPE_INT,
        ),
        ("message.max.bytes", "1048588".to_string(), TYPE_INT),
        ("min.insync.replicas", "1".to_string(), TYPE_INT),
        ("node.id", c.node_id.to_string(), TYPE_INT),
        ("num.partitions", c.num_partitions.to_string(), TYPE_INT),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
            TYPE_INT,
        ),
    ];
    Ok(settings
        .into_iter()
        .map(|(name, value, type_code)| Entry {
            name: name.to_string(),
            synonyms: vec![(name.to_string(), value.clone(), SOURCE_STATIC_BROKER_CONFIG)],
            value,
            source: SOURCE_STATIC_BROKER_CONFIG,
            type_code,
            read_only: true,
        })
        .collect())
}
