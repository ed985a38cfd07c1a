//! ApiVersions: the handshake every client starts with.

use super::SUPPORTED;
use crate::codes;
use freshet_protocol::messages::api_versions_response::ApiVersion;
use freshet_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use freshet_protocol::{ApiKey, Response};

pub fn handle(_request: &ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: codes::NONE,
        api_keys: api_keys(),
        finalized_features_epoch: -1,
        ..Default::default()
    }
}

/// The answer to a version newer than ours (KIP-511), sent with response header v0 and body
/// v0 so that any client can read it.
///
/// As in Kafka, only ApiVersions' own range is listed: the client retries at a version it
/// shares with the broker and learns the rest from that answer.
pub fn unsupported_version_response() -> Response {
    Response::ApiVersions(ApiVersionsResponse {
        error_code: codes::UNSUPPORTED_VERSION,
        api_keys: api_keys()
            .into_iter()
            .filter(|k| k.api_key == ApiKey::ApiVersions.as_i16())
            .collect(),
        ..Default::default()
    })
}

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|(key, min, max)| ApiVersion {
            api_key: key.as_i16(),
            min_version: *min,
            max_version: *max,
            ..Default::default()
        })
        .collect()
}
