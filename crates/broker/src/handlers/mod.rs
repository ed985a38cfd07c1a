//! One module per Kafka API, dispatched from a single `match`.
//!
//! A handler does its ordered work (appends, metadata proposals started) before it returns,
//! so requests of one connection take effect in the order they were sent; what remains
//! (waiting for fsync, long polls) is the returned future, and responses still go out in
//! request order (see `connection`).

pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod fetch;
pub mod find_coordinator;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod produce;

use crate::broker::Context;
use freshet_protocol::{ApiKey, Request, RequestHeader, Response};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

/// What a handler gives back.
pub enum Reply {
    Now(Response),
    Later(Pin<Box<dyn Future<Output = Response> + Send>>),
    /// No response at all (Produce with acks=0).
    Nothing,
    /// No response, and the connection closes once the responses before this one are
    /// written (Produce with acks=0 that was refused: the only way to tell the producer).
    Close(String),
}

impl Reply {
    pub fn later(f: impl Future<Output = Response> + Send + 'static) -> Reply {
        Reply::Later(Box::pin(f))
    }
}

/// Every API this broker serves, with the versions it serves: exactly what ApiVersions
/// advertises. Ranges follow Kafka 4.0, which dropped versions older than Kafka 2.1 (KIP-896).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    // Produce v0-2 are advertised as Kafka 4 does (librdkafka 2.0 sends compressed batches
    // uncompressed when the minimum is 3) and answered with UNSUPPORTED_VERSION.
    (ApiKey::Produce, 0, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::FindCoordinator, 0, 6),
    // Consumer groups (classic protocol and committed offsets), answered by `groups`.
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    // KIP-848: the consumer group protocol with server-side assignment.
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 0),
];

pub fn supported_range(api_key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == api_key)
        .map(|(_, min, max)| (*min, *max))
}

pub fn is_supported(api_key: ApiKey, version: i16) -> bool {
    supported_range(api_key).is_some_and(|(min, max)| (min..=max).contains(&version))
}

/// Routes a decoded request to its handler. Only APIs in [`SUPPORTED`] reach here (the
/// connection closes on the others, as Kafka does).
pub fn dispatch(
    ctx: Arc<Context>,
    header: RequestHeader,
    request: Request,
    peer: SocketAddr,
) -> Reply {
    let version = header.request_api_version;
    match request {
        Request::FindCoordinator(r) => Reply::later(async move {
            Response::FindCoordinator(find_coordinator::handle(&ctx, &r, version).await)
        }),
        Request::JoinGroup(_)
        | Request::SyncGroup(_)
        | Request::Heartbeat(_)
        | Request::LeaveGroup(_)
        | Request::OffsetCommit(_)
        | Request::OffsetFetch(_)
        | Request::ListGroups(_)
        | Request::DescribeGroups(_)
        | Request::DeleteGroups(_)
        | Request::OffsetDelete(_)
        | Request::ConsumerGroupHeartbeat(_)
        | Request::ConsumerGroupDescribe(_) => Reply::later(async move {
            // Kafka reports a client's host as Java's InetAddress prints it: "/127.0.0.1".
            let host = format!("/{}", peer.ip());
            ctx.groups
                .call(&ctx, version, header.client_id, host, request)
                .await
        }),
        Request::ApiVersions(r) => {
            Reply::Now(Response::ApiVersions(api_versions::handle(&r, version)))
        }
        Request::Metadata(r) => {
            Reply::later(
                async move { Response::Metadata(metadata::handle(&ctx, r, version).await) },
            )
        }
        Request::Produce(r) => produce::handle(ctx, r, version, header.client_id.as_deref()),
        Request::Fetch(r) => {
            Reply::later(async move { Response::Fetch(fetch::handle(ctx, r, version).await) })
        }
        Request::ListOffsets(r) => Reply::Now(Response::ListOffsets(list_offsets::handle(
            &ctx, r, version,
        ))),
        Request::CreateTopics(r) => Reply::later(async move {
            Response::CreateTopics(create_topics::handle(&ctx, r, version).await)
        }),
        Request::InitProducerId(r) => Reply::later(async move {
            Response::InitProducerId(init_producer_id::handle(&ctx, r).await)
        }),
        Request::DeleteTopics(r) => Reply::later(async move {
            Response::DeleteTopics(delete_topics::handle(&ctx, r, version).await)
        }),
        Request::CreatePartitions(r) => Reply::later(async move {
            Response::CreatePartitions(create_partitions::handle(&ctx, r).await)
        }),
        Request::DescribeConfigs(r) => Reply::Now(Response::DescribeConfigs(
            describe_configs::handle(&ctx, &r, version),
        )),
        Request::AlterConfigs(r) => {
            Reply::later(
                async move { Response::AlterConfigs(alter_configs::handle(&ctx, r).await) },
            )
        }
        Request::IncrementalAlterConfigs(r) => Reply::later(async move {
            Response::IncrementalAlterConfigs(incremental_alter_configs::handle(&ctx, r).await)
        }),
        Request::DescribeCluster(r) => Reply::Now(Response::DescribeCluster(
            describe_cluster::handle(&ctx, &r),
        )),
        Request::DeleteRecords(r) => {
            Reply::later(
                async move { Response::DeleteRecords(delete_records::handle(ctx, r).await) },
            )
        }
        other => {
            // Unreachable while SUPPORTED and this match agree; a test checks that they do.
            tracing::error!(
                api = other.api_key().name(),
                "no handler for a supported API"
            );
            Reply::Nothing
        }
    }
}
