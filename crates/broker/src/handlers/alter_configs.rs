//! AlterConfigs (the legacy form): each topic resource's overrides are replaced by the
//! request's set, through the metadata quorum; `validate_only` checks without changing.
//!
//! Topic logs take new values when the partition is next opened (at restart): neither the
//! log nor the partition registry can change a config in place yet.

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::Context;
use crate::codes;
use freshet_metadata::controller;
use freshet_metadata::MetadataRecord;
use freshet_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use freshet_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use std::collections::HashMap;

/// A resource-level refusal: the Kafka code and its message.
pub type Refusal = (i16, String);

pub async fn handle(ctx: &Context, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let duplicates = duplicated(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in &request.resources {
        let outcome = match check_resource(r.resource_type, &r.resource_name, &duplicates) {
            Err(refusal) => Err(refusal),
            Ok(()) => {
                let configs: Vec<(String, Option<String>)> = r
                    .configs
                    .iter()
                    .map(|c| (c.name.clone(), c.value.clone()))
                    .collect();
                let image = ctx.quorum.image();
                let decided = controller::replace_topic_configs(
                    &image,
                    &r.resource_name,
                    &configs,
                    &ctx.controller,
                )
                .map_err(|e| (e.error_code(), e.to_string()));
                apply(ctx, decided, request.validate_only).await
            }
        };
        responses.push(resource_response(
            r.resource_type,
            &r.resource_name,
            outcome,
        ));
    }
    AlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

/// Resources named more than once in a request (Kafka refuses each of them).
pub fn duplicated<'a>(
    resources: impl Iterator<Item = (i8, &'a str)>,
) -> HashMap<(i8, &'a str), usize> {
    let mut seen: HashMap<(i8, &str), usize> = HashMap::new();
    for key in resources {
        *seen.entry(key).or_default() += 1;
    }
    seen.retain(|_, n| *n > 1);
    seen
}

/// Only topic configs can be changed; broker configs are static (set at start).
pub fn check_resource(
    resource_type: i8,
    name: &str,
    duplicates: &HashMap<(i8, &str), usize>,
) -> Result<(), Refusal> {
    if duplicates.contains_key(&(resource_type, name)) {
        return Err((
            codes::INVALID_REQUEST,
            format!("Duplicate resource {name} in request"),
        ));
    }
    match resource_type {
        RESOURCE_TOPIC => Ok(()),
        RESOURCE_BROKER => Err((
            codes::INVALID_REQUEST,
            "broker configs are static on this broker: change them in its configuration and restart".to_string(),
        )),
        other => Err((codes::INVALID_REQUEST, format!("Unsupported resource type {other}"))),
    }
}

/// Proposes the records unless only validating.
pub async fn apply(
    ctx: &Context,
    decided: Result<Vec<MetadataRecord>, Refusal>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let records = decided?;
    if validate_only {
        return Ok(());
    }
    ctx.propose(records)
        .await
        .map_err(|e| (e.error_code(), e.to_string()))
}

fn resource_response(
    resource_type: i8,
    name: &str,
    outcome: Result<(), Refusal>,
) -> AlterConfigsResourceResponse {
    let (error_code, error_message) = match outcome {
        Ok(()) => (codes::NONE, None),
        Err((code, message)) => (code, Some(message)),
    };
    AlterConfigsResourceResponse {
        error_code,
        error_message,
        resource_type,
        resource_name: name.to_string(),
        ..Default::default()
    }
}
