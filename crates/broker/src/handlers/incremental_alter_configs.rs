//! IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT on a topic's
//! overrides, through the metadata quorum; `validate_only` checks without changing.
//!
//! As with AlterConfigs, topic logs take new values at their next open (restart).

use super::alter_configs::{apply, check_resource, duplicated, Refusal};
use crate::broker::Context;
use crate::codes;
use freshet_metadata::controller::{self, ConfigOp};
use freshet_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use freshet_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use freshet_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

pub async fn handle(
    ctx: &Context,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
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
                let decided = ops(&r.configs).and_then(|ops| {
                    controller::incremental_alter_topic_configs(
                        &ctx.quorum.image(),
                        &r.resource_name,
                        &ops,
                        &ctx.controller,
                    )
                    .map_err(|e| (e.error_code(), e.to_string()))
                });
                apply(ctx, decided, request.validate_only).await
            }
        };
        let (error_code, error_message) = match outcome {
            Ok(()) => (codes::NONE, None),
            Err((code, message)) => (code, Some(message)),
        };
        responses.push(AlterConfigsResourceResponse {
            error_code,
            error_message,
            resource_type: r.resource_type,
            resource_name: r.resource_name.clone(),
            ..Default::default()
        });
    }
    IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

/// The request's operations, with Kafka's op codes (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT).
fn ops(configs: &[AlterableConfig]) -> Result<Vec<(String, ConfigOp)>, Refusal> {
    configs
        .iter()
        .map(|c| {
            let value = || {
                c.value.clone().ok_or_else(|| {
                    (
                        codes::INVALID_REQUEST,
                        format!("Null value not supported for : {}", c.name),
                    )
                })
            };
            let op = match c.config_operation {
                0 => ConfigOp::Set(value()?),
                1 => ConfigOp::Delete,
                2 => ConfigOp::Append(value()?),
                3 => ConfigOp::Subtract(value()?),
                other => {
                    return Err((
                        codes::INVALID_REQUEST,
                        format!("Unknown config operation {other}"),
                    ))
                }
            };
            Ok((c.name.clone(), op))
        })
        .collect()
}
