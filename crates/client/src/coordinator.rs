//! Finding the coordinator of a consumer group (or transactional id): FindCoordinator, with
//! the batched form of v4+ (KIP-699) and the single-key form before it.

use std::sync::Arc;

use freshet_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use freshet_protocol::ApiKey;

use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{check, Error};

/// What a coordinator key names (Kafka's `CoordinatorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorType {
    Group = 0,
    Transaction = 1,
}

/// The broker that coordinates `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

impl CoordinatorInfo {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Asks any broker which broker coordinates `key`. Errors such as COORDINATOR_NOT_AVAILABLE
/// and COORDINATOR_LOAD_IN_PROGRESS are returned as they are (retriable); callers retry.
pub async fn find_coordinator(
    cluster: &Cluster,
    key_type: CoordinatorType,
    key: &str,
) -> Result<CoordinatorInfo, Error> {
    let connection = cluster.any_connection().await?;
    let version = connection.version(ApiKey::FindCoordinator)?;
    let batched = version >= 4;
    let request = FindCoordinatorRequest {
        key: if batched {
            String::new()
        } else {
            key.to_owned()
        },
        key_type: key_type as i8,
        coordinator_keys: if batched {
            vec![key.to_owned()]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    let response: FindCoordinatorResponse = connection
        .send(ApiKey::FindCoordinator, version, &request)?
        .recv()
        .await?;
    if !batched {
        check(response.error_code, response.error_message.as_deref())?;
        return Ok(CoordinatorInfo {
            node_id: response.node_id,
            host: response.host,
            port: response.port,
        });
    }
    let coordinator = response
        .coordinators
        .into_iter()
        .find(|coordinator| coordinator.key == key)
        .ok_or_else(|| Error::Protocol {
            addr: connection.addr().to_owned(),
            reason: format!("FindCoordinator response lacks key {key:?}"),
        })?;
    check(coordinator.error_code, coordinator.error_message.as_deref())?;
    Ok(CoordinatorInfo {
        node_id: coordinator.node_id,
        host: coordinator.host,
        port: coordinator.port,
    })
}

/// A connection to the coordinator of `key`.
pub async fn coordinator_connection(
    cluster: &Cluster,
    key_type: CoordinatorType,
    key: &str,
) -> Result<Arc<Connection>, Error> {
    let info = find_coordinator(cluster, key_type, key).await?;
    cluster.connection(&info.addr()).await
}
