//! Which versions of each API this client speaks, and the choice against a broker's list.

use std::collections::HashMap;

use freshet_protocol::messages::ApiVersionsResponse;
use freshet_protocol::ApiKey;

/// The ApiVersions version sent first; brokers that do not know it answer per KIP-511.
pub const API_VERSIONS_FIRST_TRY: i16 = 3;

/// The versions of `api` this client implements, inclusive. The lower bounds are where the
/// request carries what the client needs (Produce v3 and Fetch v4 carry RecordBatch v2
/// with transactional isolation); Fetch stops at 12 because v13+ name topics by id only.
pub fn client_range(api: ApiKey) -> (i16, i16) {
    let spec_max = api.valid_versions().1;
    match api {
        ApiKey::Produce => (3, spec_max.min(11)),
        ApiKey::Fetch => (4, spec_max.min(12)),
        ApiKey::ListOffsets => (1, spec_max.min(10)),
        ApiKey::Metadata => (1, spec_max.min(12)),
        ApiKey::ApiVersions => (0, API_VERSIONS_FIRST_TRY),
        ApiKey::CreateTopics => (2, spec_max.min(7)),
        ApiKey::DeleteTopics => (1, spec_max.min(6)),
        ApiKey::CreatePartitions => (0, spec_max.min(3)),
        ApiKey::DescribeConfigs => (1, spec_max.min(4)),
        ApiKey::IncrementalAlterConfigs => (0, spec_max.min(1)),
        ApiKey::InitProducerId => (0, spec_max.min(5)),
        // Groups: coordinator lookup, committed offsets and group administration.
        ApiKey::FindCoordinator => (0, spec_max.min(6)),
        ApiKey::OffsetCommit => (2, spec_max.min(9)),
        ApiKey::OffsetFetch => (1, spec_max.min(9)),
        // Group membership (the group consumer); JoinGroup v2 is the lowest Kafka 4 serves.
        ApiKey::JoinGroup => (2, spec_max.min(9)),
        ApiKey::SyncGroup => (0, spec_max.min(5)),
        ApiKey::Heartbeat => (0, spec_max.min(4)),
        ApiKey::LeaveGroup => (0, spec_max.min(5)),
        ApiKey::ListGroups => (0, spec_max.min(5)),
        ApiKey::DescribeGroups => (0, spec_max.min(5)),
        ApiKey::DeleteGroups => (0, spec_max.min(2)),
        ApiKey::OffsetDelete => (0, spec_max.min(0)),
        ApiKey::ConsumerGroupDescribe => (0, spec_max.min(0)),
        // Not used by this client: an empty range.
        _ => (0, -1),
    }
}

/// The highest common version of each API, from a broker's ApiVersions response.
#[derive(Debug, Clone, Default)]
pub struct VersionTable {
    chosen: HashMap<i16, i16>,
}

impl VersionTable {
    pub fn from_response(response: &ApiVersionsResponse) -> VersionTable {
        let mut chosen = HashMap::new();
        for api in &response.api_keys {
            let Some(key) = ApiKey::from_i16(api.api_key) else {
                continue;
            };
            if let Some(version) = choose(client_range(key), (api.min_version, api.max_version)) {
                chosen.insert(api.api_key, version);
            }
        }
        VersionTable { chosen }
    }

    /// The version to use for `api`, `None` when the ranges do not overlap.
    pub fn choose(&self, api: ApiKey) -> Option<i16> {
        self.chosen.get(&api.as_i16()).copied()
    }
}

/// The highest version inside both ranges.
pub fn choose(client: (i16, i16), broker: (i16, i16)) -> Option<i16> {
    let high = client.1.min(broker.1);
    let low = client.0.max(broker.0);
    (high >= low).then_some(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_common_version() {
        assert_eq!(choose((3, 11), (0, 13)), Some(11));
        assert_eq!(choose((3, 11), (0, 7)), Some(7));
        assert_eq!(choose((3, 11), (12, 13)), None);
        assert_eq!(choose((4, 12), (4, 4)), Some(4));
        assert_eq!(choose((0, -1), (0, 5)), None);
    }

    #[test]
    fn table_from_response() {
        use freshet_protocol::messages::api_versions_response::ApiVersion;
        let response = ApiVersionsResponse {
            api_keys: vec![
                ApiVersion {
                    api_key: 0,
                    min_version: 0,
                    max_version: 13,
                    ..Default::default()
                },
                ApiVersion {
                    api_key: 1,
                    min_version: 13,
                    max_version: 17,
                    ..Default::default()
                },
                // An API key this code has never heard of is ignored.
                ApiVersion {
                    api_key: 999,
                    min_version: 0,
                    max_version: 1,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let table = VersionTable::from_response(&response);
        assert_eq!(
            table.choose(ApiKey::Produce),
            Some(client_range(ApiKey::Produce).1)
        );
        assert_eq!(table.choose(ApiKey::Fetch), None);
        assert_eq!(table.choose(ApiKey::Metadata), None);
    }
}
