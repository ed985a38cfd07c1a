//! Pieces of a scripted Kafka broker for tests: the request framing, the response framing,
//! and the ApiVersions and Metadata answers of a one-broker, one-partition cluster.

#![allow(dead_code)] // Each test file uses a different part of this.

use bytes::{Bytes, BytesMut};
use freshet_protocol::messages::api_versions_response::ApiVersion;
use freshet_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use freshet_protocol::messages::{ApiVersionsResponse, MetadataResponse};
use freshet_protocol::{ApiKey, Decode, Encode, RequestHeader, ResponseHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request frame of `len` bytes (its size prefix already read): API, version, header, and
/// the body left in the returned bytes.
pub async fn read_request_body(
    stream: &mut TcpStream,
    len: i32,
) -> (ApiKey, i16, RequestHeader, Bytes) {
    let mut frame = vec![0u8; len as usize];
    stream.read_exact(&mut frame).await.unwrap();
    let mut frame = Bytes::from(frame);
    let api = ApiKey::from_i16(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version)).unwrap();
    (api, version, header, frame)
}

/// Writes one response frame: size, header for `api` at `version`, then the encoded body.
pub async fn write_response(
    stream: &mut TcpStream,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &[u8],
) {
    let mut out = BytesMut::new();
    ResponseHeader {
        correlation_id,
        unknown_tagged_fields: Vec::new(),
    }
    .encode(&mut out, api.response_header_version(version))
    .unwrap();
    out.extend_from_slice(body);
    stream.write_i32(out.len() as i32).await.unwrap();
    stream.write_all(&out).await.unwrap();
}

/// The APIs a fake broker offers a producer.
pub const PRODUCER_APIS: &[ApiKey] = &[
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::InitProducerId,
    ApiKey::Produce,
];

/// ApiVersions offering every version the specs define of `apis`.
pub fn api_versions(apis: &[ApiKey]) -> ApiVersionsResponse {
    ApiVersionsResponse {
        api_keys: apis
            .iter()
            .map(|api| ApiVersion {
                api_key: api.as_i16(),
                min_version: 0,
                max_version: api.valid_versions().1,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Metadata of one broker (node 1 on 127.0.0.1:`port`) leading partition 0 of topic "t".
pub fn metadata_one_partition(port: u16) -> MetadataResponse {
    metadata(port, 1)
}

/// Metadata of one broker (node 1 on 127.0.0.1:`port`) leading partitions 0..`partitions` of
/// topic "t".
pub fn metadata(port: u16, partitions: i32) -> MetadataResponse {
    MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: 1,
            host: "127.0.0.1".into(),
            port: i32::from(port),
            ..Default::default()
        }],
        cluster_id: Some("fake".into()),
        controller_id: 1,
        topics: vec![MetadataResponseTopic {
            name: Some("t".into()),
            partitions: (0..partitions)
                .map(|p| MetadataResponsePartition {
                    partition_index: p,
                    leader_id: 1,
                    replica_nodes: vec![1],
                    isr_nodes: vec![1],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}
