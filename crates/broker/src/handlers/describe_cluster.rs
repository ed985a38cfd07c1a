//! DescribeCluster: the cluster id, a controller id and the registered brokers (KIP-700).

use crate::broker::Context;
use crate::codes;
use freshet_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use freshet_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};

/// Kafka's "not requested" value for authorized operations.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// KIP-919 endpoint types: brokers serve the broker view only.
const ENDPOINT_TYPE_BROKERS: i8 = 1;
const ENDPOINT_TYPE_CONTROLLERS: i8 = 2;

pub fn handle(ctx: &Context, request: &DescribeClusterRequest) -> DescribeClusterResponse {
    let refuse = |error_code, message: &str| DescribeClusterResponse {
        error_code,
        error_message: Some(message.to_string()),
        endpoint_type: request.endpoint_type,
        cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    };
    match request.endpoint_type {
        ENDPOINT_TYPE_BROKERS => {}
        ENDPOINT_TYPE_CONTROLLERS => {
            return refuse(
                codes::MISMATCHED_ENDPOINT_TYPE,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            )
        }
        _ => return refuse(codes::UNSUPPORTED_ENDPOINT_TYPE, "Unsupported endpoint type"),
    }
    let image = ctx.quorum.image();
    let brokers = image
        .brokers()
        .values()
        .map(|b| DescribeClusterBroker {
            broker_id: b.node_id,
            host: b.host.clone(),
            port: i32::from(b.port),
            rack: b.rack.clone(),
            ..Default::default()
        })
        .collect();
    DescribeClusterResponse {
        error_code: codes::NONE,
        endpoint_type: request.endpoint_type,
        cluster_id: image.cluster_id().unwrap_or_default().to_string(),
        // As in Metadata: the quorum is embedded in this broker, so clients are pointed here.
        controller_id: ctx.node_id(),
        brokers,
        cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    }
}
