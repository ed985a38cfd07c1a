//! What every client shares: the bootstrap list, one connection per broker, and the cached
//! cluster metadata (brokers, topics, partition leaders), refreshed on demand.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use freshet_protocol::messages::metadata_request::MetadataRequestTopic;
use freshet_protocol::messages::{MetadataRequest, MetadataResponse};
use freshet_protocol::{ApiKey, Uuid};

use crate::connection::{Connection, ConnectionConfig};
use crate::error::{Error, KafkaCode, KafkaError};

/// Settings shared by the producer, consumer and admin client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of one or more brokers, used to discover the rest.
    pub bootstrap_servers: Vec<String>,
    pub connection: ConnectionConfig,
    /// Wait between metadata attempts while a topic has no leader (`retry.backoff.ms`).
    pub retry_backoff_ms: u64,
}

impl ClientConfig {
    /// Parses a comma-separated bootstrap list (`host:port,host:port`).
    pub fn new(bootstrap_servers: &str) -> ClientConfig {
        ClientConfig {
            bootstrap_servers: bootstrap_servers
                .split(',')
                .map(str::trim)
                .filter(|server| !server.is_empty())
                .map(str::to_owned)
                .collect(),
            connection: ConnectionConfig::default(),
            retry_backoff_ms: 100,
        }
    }
}

/// One partition as the last metadata response described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline_replicas: Vec<i32>,
    pub error: KafkaCode,
}

/// One topic as the last metadata response described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub topic_id: Uuid,
    pub is_internal: bool,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionInfo>,
}

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Default)]
struct MetadataCache {
    brokers: HashMap<i32, BrokerInfo>,
    topics: HashMap<String, TopicInfo>,
    cluster_id: Option<String>,
    controller_id: i32,
}

/// The shared core of every client.
#[derive(Debug)]
pub struct Cluster {
    config: ClientConfig,
    connections: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
    metadata: RwLock<MetadataCache>,
}

impl Cluster {
    pub fn new(config: ClientConfig) -> Result<Cluster, Error> {
        if config.bootstrap_servers.is_empty() {
            return Err(Error::Config("no bootstrap servers".into()));
        }
        Ok(Cluster {
            config,
            connections: tokio::sync::Mutex::new(HashMap::new()),
            metadata: RwLock::new(MetadataCache::default()),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The connection to `addr`, opened (with its handshake) if there is none alive.
    pub async fn connection(&self, addr: &str) -> Result<Arc<Connection>, Error> {
        let mut connections = self.connections.lock().await;
        if let Some(connection) = connections.get(addr) {
            if !connection.is_dead() {
                return Ok(connection.clone());
            }
        }
        let connection = Arc::new(Connection::connect(addr, self.config.connection.clone()).await?);
        connections.insert(addr.to_owned(), connection.clone());
        Ok(connection)
    }

    /// A connection to any broker: known brokers first, then the bootstrap list.
    pub async fn any_connection(&self) -> Result<Arc<Connection>, Error> {
        let mut candidates: Vec<String> = {
            let metadata = self.metadata.read().expect("metadata lock");
            let mut brokers: Vec<&BrokerInfo> = metadata.brokers.values().collect();
            brokers.sort_by_key(|broker| broker.node_id);
            brokers.iter().map(|broker| broker.addr()).collect()
        };
        candidates.extend(self.config.bootstrap_servers.iter().cloned());
        let mut last_error = None;
        for addr in candidates {
            match self.connection(&addr).await {
                Ok(connection) => return Ok(connection),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::NoBrokers(self.config.bootstrap_servers.join(","))))
    }

    /// The connection to broker `node_id`, refreshing metadata once if it is unknown.
    pub async fn broker_connection(&self, node_id: i32) -> Result<Arc<Connection>, Error> {
        let addr = match self.broker(node_id) {
            Some(broker) => broker.addr(),
            None => {
                self.refresh_metadata(Some(&[]), false).await?;
                self.broker(node_id)
                    .ok_or_else(|| {
                        Error::NoBrokers(format!("broker {node_id} is not in the metadata"))
                    })?
                    .addr()
            }
        };
        self.connection(&addr).await
    }

    pub fn broker(&self, node_id: i32) -> Option<BrokerInfo> {
        self.metadata
            .read()
            .expect("metadata lock")
            .brokers
            .get(&node_id)
            .cloned()
    }

    pub fn brokers(&self) -> Vec<BrokerInfo> {
        let mut brokers: Vec<BrokerInfo> = self
            .metadata
            .read()
            .expect("metadata lock")
            .brokers
            .values()
            .cloned()
            .collect();
        brokers.sort_by_key(|broker| broker.node_id);
        brokers
    }

    pub fn cluster_id(&self) -> Option<String> {
        self.metadata
            .read()
            .expect("metadata lock")
            .cluster_id
            .clone()
    }

    pub fn controller_id(&self) -> i32 {
        self.metadata.read().expect("metadata lock").controller_id
    }

    /// The cached metadata of `topic`, if a refresh has described it.
    pub fn topic(&self, topic: &str) -> Option<TopicInfo> {
        self.metadata
            .read()
            .expect("metadata lock")
            .topics
            .get(topic)
            .cloned()
    }

    /// Fetches metadata for `topics` (`None`: every topic; `Some(&[])`: brokers only) and
    /// merges it into the cache. Topics answered with an error are removed from the cache
    /// and their errors returned alongside.
    pub async fn refresh_metadata(
        &self,
        topics: Option<&[String]>,
        allow_auto_topic_creation: bool,
    ) -> Result<MetadataResponse, Error> {
        let connection = self.any_connection().await?;
        let request = MetadataRequest {
            topics: topics.map(|names| {
                names
                    .iter()
                    .map(|name| MetadataRequestTopic {
                        name: Some(name.clone()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation,
            ..Default::default()
        };
        let (_, response): (_, MetadataResponse) =
            connection.call(ApiKey::Metadata, &request).await?;
        self.apply(&response, topics.is_none());
        Ok(response)
    }

    fn apply(&self, response: &MetadataResponse, all_topics: bool) {
        let mut metadata = self.metadata.write().expect("metadata lock");
        if !response.brokers.is_empty() {
            metadata.brokers = response
                .brokers
                .iter()
                .map(|broker| {
                    let info = BrokerInfo {
                        node_id: broker.node_id,
                        host: broker.host.clone(),
                        port: broker.port,
                        rack: broker.rack.clone(),
                    };
                    (broker.node_id, info)
                })
                .collect();
        }
        metadata.cluster_id = response.cluster_id.clone();
        metadata.controller_id = response.controller_id;
        if all_topics {
            metadata.topics.clear();
        }
        for topic in &response.topics {
            let Some(name) = topic.name.clone() else {
                continue;
            };
            if topic.error_code != 0 {
                metadata.topics.remove(&name);
                continue;
            }
            metadata
                .topics
                .insert(name.clone(), topic_info(name, topic));
        }
    }

    /// The metadata of `topic`, refreshed until it has a leader for every partition or the
    /// timeout passes (a new topic takes a moment to elect its leaders).
    pub async fn wait_for_topic(
        &self,
        topic: &str,
        allow_auto_topic_creation: bool,
        timeout_ms: u64,
    ) -> Result<TopicInfo, Error> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let names = [topic.to_owned()];
        loop {
            let response = self
                .refresh_metadata(Some(&names), allow_auto_topic_creation)
                .await;
            let last_error = match response {
                Ok(response) => match topic_error(&response, topic) {
                    None => match self.topic(topic) {
                        Some(info) if info.partitions.iter().all(|p| p.leader >= 0) => {
                            return Ok(info)
                        }
                        _ => Error::Kafka(KafkaError {
                            code: KafkaCode::LEADER_NOT_AVAILABLE,
                            message: None,
                        }),
                    },
                    Some(error) if error.code.is_retriable() => Error::Resource {
                        resource: format!("topic {topic}"),
                        error,
                    },
                    Some(error) => {
                        return Err(Error::Resource {
                            resource: format!("topic {topic}"),
                            error,
                        })
                    }
                },
                Err(error) if error.is_retriable() => error,
                Err(error) => return Err(error),
            };
            if Instant::now() >= deadline {
                return Err(last_error);
            }
            tokio::time::sleep(Duration::from_millis(self.config.retry_backoff_ms)).await;
        }
    }
}

fn topic_info(
    name: String,
    topic: &freshet_protocol::messages::metadata_response::MetadataResponseTopic,
) -> TopicInfo {
    let mut partitions: Vec<PartitionInfo> = topic
        .partitions
        .iter()
        .map(|partition| PartitionInfo {
            partition: partition.partition_index,
            leader: partition.leader_id,
            leader_epoch: partition.leader_epoch,
            replicas: partition.replica_nodes.clone(),
            isr: partition.isr_nodes.clone(),
            offline_replicas: partition.offline_replicas.clone(),
            error: KafkaCode(partition.error_code),
        })
        .collect();
    partitions.sort_by_key(|partition| partition.partition);
    TopicInfo {
        name,
        topic_id: topic.topic_id,
        is_internal: topic.is_internal,
        partitions,
    }
}

/// The error the response gives for `topic`, if any.
pub fn topic_error(response: &MetadataResponse, topic: &str) -> Option<KafkaError> {
    let entry = response
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic));
    match entry {
        None => Some(KafkaError {
            code: KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
            message: None,
        }),
        Some(t) if t.error_code != 0 => Some(KafkaError {
            code: KafkaCode(t.error_code),
            message: None,
        }),
        Some(_) => None,
    }
}
