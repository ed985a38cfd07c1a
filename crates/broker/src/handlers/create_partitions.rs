//! CreatePartitions: grows topics through the metadata quorum (never shrinks them), with
//! `validate_only` answering without changing anything.

use crate::broker::Context;
use crate::codes;
use freshet_metadata::controller;
use freshet_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use freshet_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use freshet_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use std::collections::HashMap;

pub async fn handle(ctx: &Context, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for t in &request.topics {
        *seen.entry(t.name.as_str()).or_default() += 1;
    }
    let mut results = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        let result = if seen.get(t.name.as_str()).copied().unwrap_or(0) > 1 {
            Err((
                codes::INVALID_REQUEST,
                "Duplicate topic in request.".to_string(),
            ))
        } else {
            grow(ctx, t, request.validate_only).await
        };
        results.push(topic_result(&t.name, result));
    }
    CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}

async fn grow(
    ctx: &Context,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    if topic.assignments.is_some() {
        // The controller places replicas itself; accepting an assignment and then ignoring
        // it would mislead the caller.
        let message = "manual replica assignment is not supported by this broker".to_string();
        return Err((codes::INVALID_REPLICA_ASSIGNMENT, message));
    }
    let image = ctx.quorum.image();
    let records = controller::create_partitions(&image, &topic.name, topic.count)
        .map_err(|e| (e.error_code(), e.to_string()))?;
    if validate_only {
        return Ok(());
    }
    // Answers once the change is committed; the new logs open in the background.
    ctx.propose_committed(records)
        .await
        .map_err(|e| (e.error_code(), e.to_string()))
}

fn topic_result(name: &str, result: Result<(), (i16, String)>) -> CreatePartitionsTopicResult {
    let (error_code, error_message) = match result {
        Ok(()) => (codes::NONE, None),
        Err((code, message)) => (code, Some(message)),
    };
    CreatePartitionsTopicResult {
        name: name.to_string(),
        error_code,
        error_message,
        ..Default::default()
    }
}
