//! FindCoordinator: on a single node this broker coordinates every group. The first lookup of
//! a group creates `__consumer_offsets`, as Kafka does. Transactions have no coordinator yet, which Kafka reports as COORDINATOR_NOT_AVAILABLE (what a broker that
//! cannot create its transaction-state topic answers), so clients retry rather than fail.
//!
//! Listing this API also matters beyond groups: librdkafka enables lz4 only for brokers that
//! advertise FindCoordinator, and otherwise sends lz4 batches uncompressed.

use crate::broker::Context;
use crate::codes;
use freshet_protocol::messages::find_coordinator_response::Coordinator;
use freshet_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};

/// FindCoordinator v4 replaced the single key by a batch of keys (KIP-699).
const BATCHED_KEYS_MIN_VERSION: i16 = 4;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(
    ctx: &Context,
    request: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let offsets_topic = if request.key_type == KEY_TYPE_GROUP {
        ctx.groups.ensure_offsets_topic(ctx).await
    } else {
        Ok(())
    };
    if let Err(e) = &offsets_topic {
        tracing::warn!(error = %e, "cannot create __consumer_offsets");
    }
    let available = offsets_topic.is_ok();
    if version >= BATCHED_KEYS_MIN_VERSION {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| coordinator(ctx, key, request.key_type, available))
            .collect();
        return FindCoordinatorResponse {
            coordinators,
            ..Default::default()
        };
    }
    let c = coordinator(ctx, &request.key, request.key_type, available);
    FindCoordinatorResponse {
        error_code: c.error_code,
        error_message: c.error_message,
        node_id: c.node_id,
        host: c.host,
        port: c.port,
        ..Default::default()
    }
}

fn coordinator(ctx: &Context, key: &str, key_type: i8, offsets_topic_ready: bool) -> Coordinator {
    let refused = |code: i16, message: &str| Coordinator {
        key: key.to_string(),
        node_id: -1,
        host: String::new(),
        port: -1,
        error_code: code,
        error_message: Some(message.to_string()),
        ..Default::default()
    };
    match key_type {
        KEY_TYPE_GROUP if !offsets_topic_ready => refused(
            codes::COORDINATOR_NOT_AVAILABLE,
            "the __consumer_offsets topic is not available",
        ),
        KEY_TYPE_GROUP => Coordinator {
            key: key.to_string(),
            node_id: ctx.node_id(),
            host: ctx.advertised_host.clone(),
            port: ctx.advertised_port,
            error_code: codes::NONE,
            ..Default::default()
        },
        KEY_TYPE_TRANSACTION => refused(
            codes::COORDINATOR_NOT_AVAILABLE,
            "transactions are not supported yet",
        ),
        _ => refused(codes::INVALID_REQUEST, "unknown coordinator key type"),
    }
}
