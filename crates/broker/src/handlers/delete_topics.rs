//! DeleteTopics: each topic removed through the metadata quorum, by name or (v6+, KIP-516)
//! by topic id. The partition registry then closes the logs and removes their directories.

use crate::broker::Context;
use crate::codes;
use freshet_metadata::controller;
use freshet_metadata::TopicId;
use freshet_protocol::messages::delete_topics_response::DeletableTopicResult;
use freshet_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use freshet_protocol::Uuid;

/// DeleteTopics v6 names topics by name or id in `topics`; earlier versions list names.
const TOPIC_IDS_MIN_VERSION: i16 = 6;

/// A topic to delete, as the request names it.
enum Target {
    Name(String),
    Id(Uuid),
    /// Both or neither given (v6): refused as Kafka does.
    Invalid(Option<String>, Uuid),
}

pub async fn handle(
    ctx: &Context,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let targets: Vec<Target> = if version >= TOPIC_IDS_MIN_VERSION {
        request
            .topics
            .into_iter()
            .map(|t| target(t.name, t.topic_id))
            .collect()
    } else {
        request.topic_names.into_iter().map(Target::Name).collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    for t in targets {
        responses.push(delete_one(ctx, t).await);
    }
    DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}

fn target(name: Option<String>, topic_id: Uuid) -> Target {
    match (name, topic_id == Uuid::ZERO) {
        (Some(name), true) => Target::Name(name),
        (None, false) => Target::Id(topic_id),
        (name, _) => Target::Invalid(name, topic_id),
    }
}

async fn delete_one(ctx: &Context, target: Target) -> DeletableTopicResult {
    let image = ctx.quorum.image();
    let (name, topic_id, decided) = match target {
        Target::Name(name) => {
            let id = image
                .topic(&name)
                .map_or(Uuid::ZERO, |t| Uuid(t.topic_id.0));
            let decided = controller::delete_topic(&image, &name);
            (Some(name), id, decided)
        }
        Target::Id(id) => {
            let name = image.topic_by_id(TopicId(id.0)).map(|t| t.name.clone());
            (
                name,
                id,
                controller::delete_topic_by_id(&image, TopicId(id.0)),
            )
        }
        Target::Invalid(name, id) => {
            let message = "exactly one of topic name and topic id must be set".to_string();
            return result(name, id, codes::INVALID_REQUEST, Some(message));
        }
    };
    let outcome = match decided {
        Ok(records) => ctx
            .propose(records)
            .await
            .map_err(|e| (e.error_code(), e.to_string())),
        Err(e) => Err((e.error_code(), e.to_string())),
    };
    match outcome {
        Ok(()) => result(name, topic_id, codes::NONE, None),
        Err((code, message)) => result(name, topic_id, code, Some(message)),
    }
}

fn result(
    name: Option<String>,
    topic_id: Uuid,
    error_code: i16,
    error_message: Option<String>,
) -> DeletableTopicResult {
    DeletableTopicResult {
        name,
        topic_id,
        error_code,
        error_message,
        ..Default::default()
    }
}
